-- orket.scriptfile: how the host reads an operator's files (roles, tools, policies,
-- routing.lua, orket.lua, epics): only regular files under a size cap, never blocking
-- (orket.c.runtime.read_script); scripts run in a script environment with errors that name the file;
-- what a script returns is detached (orket.c.plain.detach), so the host then reads it with
-- ordinary indexing and pairs and no script metamethod runs. Contract: docs/roles.md.
local uv = require "luv"
local rt = require "orket.c.runtime"
local plain = require "orket.c.plain"
local inert = require "orket.inert"
local sourcepos = require "orket.sourcepos"

local M = {}

M.MAX_BYTES = 1024 * 1024 -- a role, tool, policy or orket.lua larger than this is a mistake

--- text(src) -> src as a loader takes it | nil, "is saved as UTF-16 ...": what an editor
--- saved that is no part of the text taken off, for every script and epic alike (read's).
--- A UTF-8 byte order mark (Windows editors save one) is skipped: Lua's load said
--- "unexpected symbol near '<\239>'" and cjson "invalid token". Old Mac line ends (a CR
--- alone) become LF: Lua counts them as lines, and so must every line a message gives
--- (orket.fieldline, a JSON error's), which count LF; CRLF stays. A file saved as UTF-16
--- (Windows editors' "Unicode") or UTF-32, with or without its byte order mark, is said as
--- such, where Lua said "unexpected symbol near '<\255>'" (no script or JSON text has a NUL
--- in its first two bytes).
function M.text(src)
  if src:find("^\255\254") or src:find("^\254\255") or src:find("^%z%z\254\255")
      or src:find("^[^%z]%z") or src:find("^%z[^%z]") then
    return nil, "is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8"
  end
  if src:sub(1, 3) == "\239\187\191" then src = src:sub(4) end
  if src:find("\r[^\n]") or src:sub(-1) == "\r" then -- (a CRLF file is left as it is)
    src = src:gsub("\r(\n?)", function(lf) if lf == "" then return "\n" end end)
  end
  return src
end

--- read(path[, max]) -> text | nil, "path: message", CODE. Only a regular file (links
--- followed) of at most max bytes (MAX_BYTES): a FIFO, a device, a directory or a larger
--- file is refused by name (EINVAL, EISDIR, EFBIG) without blocking; ENOENT when missing.
--- The text is M.text's (EINVAL: saved as UTF-16 or UTF-32), so that every reader of a
--- script, its loader's and a message's line alike, reads the same lines.
function M.read(path, max)
  if type(path) ~= "string" then error("bad argument #1 to 'read' (string expected, got " .. type(path) .. ")", 2) end
  local src, err, code = rt.read_script(path, max or M.MAX_BYTES)
  if not src then return nil, err, code end
  local text, terr = M.text(src)
  if not text then return nil, path .. ": " .. terr, "EINVAL" end
  return text
end

--- is_name(name) -> whether a file name is a script's: NAME.lua, NAME of letters, digits,
--- '_' and '-' (what a loader reads; misnamed refuses the others list lists)
function M.is_name(name)
  return name:match("^[%w_%-]+%.lua$") ~= nil
end

--- meant(name) -> whether a folder's entry is taken for a script: its name ends in ".lua",
--- in any case, and is not hidden. A hidden name (emacs's .#x.lua lock, macOS's ._x.lua,
--- vim's .x.lua.swp) or another ending (x.lua~, x.lua.orig) is an editor's or the OS's.
function M.meant(name)
  return name:sub(1, 1) ~= "." and name:sub(-4):lower() == ".lua"
end

--- list(dir) -> sorted paths "dir/name" of dir's entries taken for scripts (meant), of any
--- kind: a FIFO or a folder so named is listed, for read to refuse by name, and so is a
--- name no script has ("deny v2.lua"), for the loaders to refuse (misnamed): skipped,
--- either would be a role or policy silently missing. {} when dir does not exist.
function M.list(dir)
  local out = {}
  local h = uv.fs_scandir(dir)
  if not h then return out end
  while true do
    local name = uv.fs_scandir_next(h)
    if not name then break end
    if M.meant(name) then out[#out + 1] = dir .. "/" .. name end
  end
  table.sort(out)
  return out
end

--- misnamed(path, chunk) -> nil | "chunk: message", "EINVAL": a listed script (list) whose
--- file name is not NAME.lua, which a loader refuses rather than skip: a policy file skipped
--- is a deny that never fires, a role or tool skipped leaves the built-in in its place.
function M.misnamed(path, chunk)
  local name = path:match("[^/]*$")
  if M.is_name(name) then return nil end
  local folder = chunk:match("([^/]+)/[^/]*$")
  -- (the name made inert: a file's name may hold anything but '/' and NUL)
  return string.format("%s: the file's name is no script's: a script is named NAME.lua, NAME of letters, "
    .. "digits, '_' and '-'; rename it, or move it out of %s", inert.line(chunk),
    folder and (inert.line(folder) .. "/") or "its folder"), "EINVAL"
end

--- name(path[, base]) -> the name a script is loaded under: path relative to the project
--- directory base when it lies there ("roles/x.lua" for "/srv/p/roles/x.lua", "./roles/x.lua"
--- or "sub//roles/x.lua"), else path itself (Orket's own scripts, a file loaded alone). As
--- the chunk's name it is what every error and traceback of the script gives, at its load
--- and in a turn later, whichever way the project was given (".", -C DIR, a server's
--- absolute path); the path itself stays the file's for reading and watching.
function M.name(path, base)
  if type(base) ~= "string" then return path end
  base = base:gsub("/+$", "")
  if base == "" then return path end -- "/": a path from the root names itself
  local rest = path:sub(#base + 1):match("^/+(.+)$")
  if path:sub(1, #base) ~= base or not rest then return path end
  return (rest:gsub("^%./+", ""))
end

--- shown(def, default) -> how a message names a loaded script (a role): by the name it was
--- loaded under (def.chunk, M.name's), else its path without "./", else default (a
--- definition made by hand, as specs make them: "roles/NAME.lua")
function M.shown(def, default)
  return def.chunk or (def.file or default):gsub("^%./", "")
end

--- message(err, chunk) -> "chunk[:line]: message", the first line of a script's error. A
--- budget error ("script: instruction budget exceeded ...") names no file, nor a value
--- raised that is no message, nor one raised in Orket's own code the script called (its
--- position is taken off: orket.sourcepos): the chunk is put in front, with the line of the
--- script's innermost frame in the traceback.
function M.message(err, chunk)
  err = tostring(err)
  local first = err:match("^[^\n]*")
  if first:sub(1, #chunk + 1) == chunk .. ":" then return first end
  first = sourcepos.plain(first)
  local line
  for src, n in err:gmatch("\n%s*([^\n]-):(%d+):") do
    -- Lua shortens a long file name to "...its end" in tracebacks
    if src == chunk or (src:sub(1, 3) == "..." and chunk:sub(-(#src - 3)) == src:sub(4)) then
      line = n
      break
    end
  end
  return chunk .. (line and (":" .. line) or "") .. ": " .. first
end

--- said(err, chunk) -> message(err, chunk) for a turn's readers (a card's comment, the
--- model): Orket's own script, loaded under its path, named "orket:roles/x.lua" as a policy
--- is (orket.policy.shown_name), so that no directory of the machine is in it
function M.said(err, chunk)
  local msg = M.message(err, chunk)
  local home = rt.home()
  if type(home) == "string" and home ~= "" and msg:sub(1, #home + 1) == home .. "/" then
    msg = "orket:" .. msg:sub(#home + 2)
  end
  return msg
end

--- plain_error(err) -> orket.c.plain's refusal of a value ("value.issues.2.acceptance:
--- function is not plain data") with the value's path written as every other message
--- names a field ("issues[2].acceptance: function is not plain data"); the value itself
--- ("value: cycle"): the reason alone. Other messages are left as they are.
function M.plain_error(err)
  local path, why = tostring(err):match("^value(.-): (.*)$")
  if not path then return err end
  local out = {}
  for key in path:gmatch("%.([^.]*)") do
    if key:match("^%d+$") then out[#out + 1] = "[" .. key .. "]"
    elseif key:match("^[%a_][%w_]*$") then out[#out + 1] = (#out > 0 and "." or "") .. key
    else out[#out + 1] = "[\"" .. inert.line(key) .. "\"]" end
  end
  if #out == 0 then return why end
  return table.concat(out) .. ": " .. why
end

--- run(box, path[, {chunk=, result=}]) -> true, value | false, "file[:line]: message", CODE
--- Reads path (read), compiles it in box and runs it under box's budget. value is the
--- script's first result, detached (a copy with raw access, no metatables, functions
--- kept); a value that cannot be (a cycle, userdata, a key that is a table) is refused.
--- chunk: the name the script and its errors give (default path; M.name's, for a
--- project's), a file that cannot be read included. result = false: the result is not wanted
--- (with any_result = true, whether there was one: its type's name as value, nothing detached).
function M.run(box, path, opts)
  opts = opts or {}
  local chunk = opts.chunk or path
  local src, err, code = M.read(path)
  if not src then
    if err:sub(1, #path + 2) == path .. ": " then err = chunk .. err:sub(#path + 1) end
    return false, err, code
  end
  local fn, lerr, lcode = box:load(src, chunk)
  if not fn then return false, lerr, lcode end
  local ok, v, pcode = box:pcall(fn)
  if not ok then return false, M.message(v, chunk), pcode or "ERUNTIME" end
  if v == nil then return true, nil end
  if opts.result == false then return true, opts.any_result and type(v) or nil end
  local copy, derr = plain.detach(v)
  if derr then return false, chunk .. ": " .. M.plain_error(derr), "EINVAL" end
  return true, copy
end

return M
