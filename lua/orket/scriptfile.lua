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
local wsnames = require "orket.c.workspace" -- its name rules (core/workspace.c): twins by case or composition

local M = {}

M.MAX_BYTES = 1024 * 1024 -- a role, tool, policy or orket.lua larger than this is a mistake

--- encoding(src) -> src without the UTF-8 byte order marks opening it | nil, why: a text saved
--- as UTF-16 or UTF-32, with or without its mark, said as such. The one check of a file's
--- encoding: text's, and a package.json's or a secret's value read from a file.
function M.encoding(src)
  if src:find("^\255\254") or src:find("^\254\255") or src:find("^%z%z\254\255")
      or src:find("^[^%z]%z") or src:find("^%z[^%z]") then
    return nil, "is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8"
  end
  -- (every mark opening it: two, where a tool added one to a file that had one)
  while src:sub(1, 3) == "\239\187\191" do src = src:sub(4) end
  return src
end

--- text(src) -> src as a loader takes it | nil, "is saved as UTF-16 ...": what an editor
--- saved that is no part of the text taken off, for every script and epic alike (read's).
--- A UTF-8 byte order mark (Windows editors save one) is skipped, every one opening the
--- text (two, where a tool added one to a file that had one; one elsewhere is load_error's):
--- Lua's load said
--- "unexpected symbol near '<\239>'" and cjson "invalid token". Old Mac line ends (a CR
--- alone) become LF: Lua counts them as lines, and so must every line a message gives
--- (orket.fieldline, a JSON error's), which count LF; CRLF stays. A file saved as UTF-16
--- (Windows editors' "Unicode") or UTF-32, with or without its byte order mark, is said as
--- such, where Lua said "unexpected symbol near '<\255>'" (no script or JSON text has a NUL
--- in its first two bytes).
function M.text(src)
  local err
  src, err = M.encoding(src)
  if not src then return nil, err end
  if src:find("\r[^\n]") or src:sub(-1) == "\r" then -- (a CRLF file is left as it is)
    src = src:gsub("\r(\n?)", function(lf) if lf == "" then return "\n" end end)
  end
  return src
end

--- STRAY_BOM: what a byte order mark not opening a file is said as (load_error's, a JSON
--- epic's: orket.import)
M.STRAY_BOM = "a byte order mark (U+FEFF) that does not open the file, as where two files were joined; remove it"

--- load_error(err, src) -> err, a loader's message of text src ("chunk:LINE: unexpected
--- symbol near '<\239>'"), said as the byte order mark it is when that line holds one: a
--- mark not opening the file (where two files were joined, the second's opens a line) is
--- text, which Lua cannot read outside a string. Other messages are returned as they are.
function M.load_error(err, src)
  local chunk, line = tostring(err):match("^(.-):(%d+): .*near '<\\239>'")
  if not line then return err end
  local n = 1
  for l in (src .. "\n"):gmatch("([^\n]*)\n") do
    if n == tonumber(line) then
      if l:find("\239\187\191", 1, true) then
        return string.format("%s:%s: %s", chunk, line, M.STRAY_BOM)
      end
      break
    end
    n = n + 1
  end
  return err
end

--- read(path[, max]) -> text | nil, "path: message", CODE. Only a regular file (links
--- followed) of at most max bytes (MAX_BYTES): a FIFO, a device, a directory or a larger
--- file is refused by name (EINVAL, EISDIR, EFBIG) without blocking; ENOENT when missing,
--- and a link whose target is missing names the target ("(a link to X, which does not
--- exist)"): `ls` shows the link, so "no such file" alone reads as wrong.
--- The text is M.text's (EINVAL: saved as UTF-16 or UTF-32), so that every reader of a
--- script, its loader's and a message's line alike, reads the same lines.
function M.read(path, max)
  if type(path) ~= "string" then error("bad argument #1 to 'read' (string expected, got " .. type(path) .. ")", 2) end
  local src, err, code = rt.read_script(path, max or M.MAX_BYTES)
  if not src then
    local to = code == "ENOENT" and uv.fs_readlink(path)
    if to then err = string.format("%s (a link to %s, which does not exist)", err, inert.line(to)) end
    return nil, err, code
  end
  local text, terr = M.text(src)
  if not text then return nil, path .. ": " .. terr, "EINVAL" end
  return text
end

-- What NAME may be in a folder's NAME.lua, by what the name is used as. A role's and a
-- tool's name is its file's (orket.engine.roles, orket.tools) and is written in seats,
-- policies and a role's tools, which read letters, digits and _ (orket.policy's NAMES): a
-- file name with a - passed here and was then refused as "name must be a word"; a tool's is
-- also what the model calls, snake_case. A policy's file name is no name: - is fine.
-- suggest: the name a misnamed stem was likely meant to be.
local KINDS = {
  role = { rule = "letters, digits and '_' (the role's name: seats and policies name it)",
    ok = function(stem) return stem:match("^[%w_]+$") ~= nil end,
    suggest = function(stem) return (stem:gsub("[^%w_]+", "_")) end },
  tool = { rule = "lower-case letters, digits and '_', a letter first, at most 64 (the tool's name, "
      .. "which the model calls)",
    ok = function(stem) return #stem <= 64 and stem:match("^[a-z][a-z0-9_]*$") ~= nil end,
    suggest = function(stem) return (stem:gsub("(%l)(%u)", "%1_%2"):lower():gsub("[^a-z0-9_]+", "_")) end },
  policy = { rule = "letters, digits, '_' and '-'", ok = function(stem) return stem:match("^[%w_%-]+$") ~= nil end },
}

--- is_name(name[, kind]) -> whether a file name is a script's: NAME.lua, NAME as KINDS
--- says (kind "role", "tool"; any other: a policy's, letters, digits, '_' and '-')
function M.is_name(name, kind)
  local stem = name:match("^(.+)%.lua$")
  return stem ~= nil and (KINDS[kind] or KINDS.policy).ok(stem)
end

--- notepad(name) -> the name without the ".txt" Windows Notepad adds when a file is saved
--- as a "Text Document" (x.lua.txt, web.json.txt: Explorer hides the ending, so the one who
--- saved it sees x.lua) | nil when name does not end in .lua.txt or .json.txt (any case)
function M.notepad(name)
  local lower = name:lower()
  if lower:sub(-8) == ".lua.txt" or lower:sub(-9) == ".json.txt" then return name:sub(1, -5) end
end

--- NOTEPAD: why such a name is not read, said after it
M.NOTEPAD = "its name ends in .txt, as Windows Notepad saves a \"Text Document\" (Explorer hides the ending)"

--- meant(name) -> whether a folder's entry is taken for a script: its name ends in ".lua",
--- in any case, or in ".lua.txt" (notepad's: list refuses the folder, or a policy would be
--- passed over unseen), and is not hidden. A hidden name (emacs's .#x.lua lock, macOS's
--- ._x.lua, vim's .x.lua.swp) or another ending (x.lua~, x.lua.orig) is an editor's or the OS's.
function M.meant(name)
  if name:sub(1, 1) == "." then return false end
  return name:sub(-4):lower() == ".lua" or name:sub(-8):lower() == ".lua.txt"
end

--- case_variant(dir, name) -> the entry of dir, other than name, that differs from it only
--- in letter case (the workspace's fold, core/workspace.c ws_name_fold: ASCII and the Latin
--- letters of U+00C0-U+017F), and its type ("directory", "file" ...) | nil. On Windows and
--- macOS Policies/ is policies/, so a teammate's project works there; here it is not read.
function M.case_variant(dir, name)
  local h = uv.fs_scandir(dir)
  if not h then return nil end
  local key = wsnames.name_fold(name)
  while true do
    local n, ty = uv.fs_scandir_next(h)
    if not n then return nil end
    if n ~= name and wsnames.name_fold(n) == key then
      if ty == "link" then
        local st = uv.fs_stat(dir .. "/" .. n)
        ty = st and st.type or ty
      end
      return n, ty
    end
  end
end

--- near_miss(dir, name) -> "; NAME is there, which ... rename it" for a name dir does not
--- hold but holds a case variant of (case_variant), else "": said after "not found"
function M.near_miss(dir, name)
  local other, ty = M.case_variant(dir, name)
  if not other then return "" end
  local slash = ty == "directory" and "/" or ""
  return string.format("; %s%s is there, which differs from it only in letter case: Linux tells the two apart "
    .. "(Windows and macOS do not), so it is not read; rename it %s%s", inert.line(other), slash, name, slash)
end

--- list(dir) -> sorted paths "dir/name" of dir's entries taken for scripts (meant), of any
--- kind: a FIFO or a folder so named is listed, for read to refuse by name, and so is a
--- name no script has ("deny v2.lua"), for the loaders to refuse (misnamed): skipped,
--- either would be a role or policy silently missing. {} when dir does not exist, but
--- {}, "shown: not there; Policies/ is there ...", ENOENT when a name differing only in
--- case is (near_miss). Scripts saved as NAME.lua.txt (notepad): the others' paths, then
--- notepad_message's, EINVAL, for the caller to refuse as it refuses a misnamed file.
--- A dir that is there and cannot be listed (EACCES, EIO, ENOTDIR ...): {}, "shown: cannot
--- be listed (CODE: reason)", CODE (shown: how the message names dir, default dir), for
--- the caller to refuse: read as empty, a policies/ the process may not read would drop the
--- project's denies unseen.
function M.list(dir, shown)
  local out, txt = {}, {}
  local h, err, code = uv.fs_scandir(dir)
  if not h and code == "ENOENT" then
    -- Policies/ for policies/ (saved so on Windows, where the two are one): its scripts
    -- read as none would drop the project's denies unseen, so it is refused as unlisted
    local parent, base = dir:match("^(.*)/([^/]+)$")
    local near = parent and M.near_miss(parent, base) or ""
    if near ~= "" then
      return out, string.format("%s: not there%s", inert.line(shown or dir), near), "ENOENT"
    end
    return out
  end
  if not h then return out, M.unlisted(dir, err, code, shown), code end
  while true do
    local name, nerr, ncode = uv.fs_scandir_next(h)
    if not name then
      if nerr then return {}, M.unlisted(dir, nerr, ncode, shown), ncode end
      break
    end
    if M.notepad(name) and M.meant(name) then
      txt[#txt + 1] = name
    elseif M.meant(name) then
      out[#out + 1] = dir .. "/" .. name
    end
  end
  table.sort(out)
  if #txt > 0 then return out, M.notepad_message(shown or dir, txt), "EINVAL" end
  return out
end

--- notepad_message(shown, names) -> "shown/NAME.lua.txt: not read: ...; rename it ...": the
--- scripts of a folder saved with Notepad's ".txt" (list's), the first by name and a count
--- of the others. Refused, not skipped: a policy's deny would never fire, a role or tool
--- would leave the built-in in its place, as misnamed says of other names.
function M.notepad_message(shown, names)
  table.sort(names)
  local folder = inert.line(shown):gsub("/+$", "") .. "/"
  return string.format("%s%s: not read: %s; rename it %s%s%s", folder, inert.line(names[1]), M.NOTEPAD, folder,
    inert.line(M.notepad(names[1])), #names > 1 and string.format(" (and %d more such files here)", #names - 1) or "")
end

--- cause(err, code, path) -> "CODE: reason": luv's message of a call on path ("EACCES:
--- permission denied: path") without the path it ends with, which the message names already
function M.cause(err, code, path)
  local why = tostring(err):match("^[%u%d_]+: (.*)$") or tostring(err)
  if why:sub(-(#path + 2)) == ": " .. path then why = why:sub(1, -(#path + 3)) end
  return tostring(code) .. ": " .. why
end

--- unlisted(dir, err, code[, shown]) -> "shown: cannot be listed (CODE: reason)" (list's)
function M.unlisted(dir, err, code, shown)
  return string.format("%s: cannot be listed (%s)", inert.line(shown or dir), M.cause(err, code, dir))
end

--- misnamed(path, chunk[, kind]) -> nil | "chunk: message", "EINVAL": a listed script
--- (list) whose file name is not NAME.lua (is_name's, kind "role", "tool" or a policy's),
--- which a loader refuses rather than skip: a policy file skipped is a deny that never
--- fires, a role or tool skipped leaves the built-in in its place. The message names a
--- name that is one (KINDS' suggest), where one is near.
function M.misnamed(path, chunk, kind)
  local name = path:match("[^/]*$")
  if M.is_name(name, kind) then return nil end
  local k = KINDS[kind] or KINDS.policy
  local folder = chunk:match("([^/]+)/[^/]*$")
  -- (meant's: the name ends in .lua, in any case)
  local near = k.suggest and (k.suggest(name:sub(1, -5)) .. ".lua")
  local rename = near and M.is_name(near, kind) and near ~= name
    and ("rename it " .. inert.line(chunk:match("^(.*/)[^/]*$") or "") .. near) or "rename it"
  -- (the name made inert: a file's name may hold anything but '/' and NUL)
  return string.format("%s: the file's name is no script's: a %s is named NAME.lua, NAME of %s; %s, or move it "
    .. "out of %s", inert.line(chunk), KINDS[kind] and kind or "script", k.rule, rename,
    folder and (inert.line(folder) .. "/") or "its folder"), "EINVAL"
end

--- decomposed(name) -> name with each precomposed letter of U+00C0-U+017F written as its
--- letter and combining mark, as NFD writes it, case kept: two names that differ only in
--- normalization (caf\u{e9} and cafe\u{301}) decompose alike. The workspace's rule
--- (core/workspace.c ws_name_fold), and its limit, said in docs/board.md: other precomposed
--- letters (Vietnamese's two marks, Greek, Hangul) are left as they are, so such twins are
--- not found.
function M.decomposed(name)
  return wsnames.name_fold(name, { case = false })
end

--- apart(name) -> name as a message shows it (inert.line) with every non-ASCII byte
--- escaped (\xNN): for a name another one in the same messages would look like
function M.apart(name)
  return (inert.line(name):gsub("[\128-\255]", function(c) return string.format("\\x%02x", c:byte()) end))
end

--- twin_rule(how) -> why two names of one folder that differ only in letter case or
--- Unicode normalization (twins' how) are refused, as card ids that differ only in case are
--- (orket.board): macOS's filesystems ignore both, Windows' case only
function M.twin_rule(how)
  return string.format("on %s the two are one file, so a clone there holds one of them where this has two (git: "
    .. "\"the following paths have collided\"); rename or remove one of the two",
    how == "case" and "macOS and Windows" or "macOS")
end

--- twins(list) -> {{name, other, how}...}: the names among list (of one folder) that a
--- case-insensitive or normalizing filesystem (macOS's, Windows') takes for one, each
--- said against the first, in sorted order, it is one with; how: "case", "Unicode
--- normalization" or "case and Unicode normalization". The workspace's rule, which its
--- writes refuse such twins by (core/workspace.c ws_name_fold, ws_name_twin): Latin letters
--- of U+00C0-U+017F decomposed and lower-cased, \u{c9} and \u{e9} one as E and e are.
function M.twins(list)
  local sorted = table.move(list, 1, #list, 1, {})
  table.sort(sorted)
  local first, out = {}, {}
  for _, n in ipairs(sorted) do
    local key = wsnames.name_fold(n)
    local other = first[key]
    if not other then
      first[key] = n
    elseif other ~= n then
      out[#out + 1] = { n, other, wsnames.name_twin(n, other) }
    end
  end
  return out
end

--- twin_message(path, other, how) -> "differs only in HOW from OTHER: twin_rule's", path as
--- shown (the message is said of it): the two names apart (escaped) when they would look
--- the same
function M.twin_message(path, other, how)
  local show = how == "case" and inert.line or M.apart
  return string.format("differs only in %s from %s: %s", how, show(other), M.twin_rule(how)), show(path)
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
  if not fn then return false, M.load_error(lerr, src), lcode end
  local ok, v, pcode = box:pcall(fn)
  if not ok then return false, M.message(v, chunk), pcode or "ERUNTIME" end
  if v == nil then return true, nil end
  if opts.result == false then return true, opts.any_result and type(v) or nil end
  local copy, derr = plain.detach(v)
  if derr then return false, chunk .. ": " .. M.plain_error(derr), "EINVAL" end
  return true, copy
end

return M
