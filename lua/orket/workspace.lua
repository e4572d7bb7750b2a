-- orket.workspace: the confined filesystem agents act on (core/workspace.c). Every path is
-- resolved by the kernel beneath the root; protected project files are read-only.
--   local ws, err, code = require("orket.workspace").open(root [, {resolve="walk"}])
--   ws:read(path [, {offset=, limit=}]) -> data, {size=, truncated=}
--   ws:write / append(path, data) -> bytes;  ws:list([dir]) -> entries, truncated
--   ws:stat(path) -> {type=, size=, mtime=, mode=, nlink=};  ws:mkdir / delete(path) -> true
--   ws:move(from, to) -> true;  ws:close()
-- Expected failures return nil, "workspace: ...", CODE (EPERM for escapes and protected
-- paths). The contract is in docs/workspace.md.
return require "orket.c.workspace"
