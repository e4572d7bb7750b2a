-- orket.import: loads a project's epics/ folder (JSON in the original Orket's field names,
-- or Lua files returning the same shape, run in a sandbox) into the board. Everything is
-- validated before anything is written, then one transaction upserts the cards: ids are
-- stable (explicit or derived), so a re-import updates definitions and keeps status and
-- history (writes: orket.store.imports). Errors name the file and the field path. Format:
-- docs/board.md.
local uv = require "luv"
local json = require "cjson.safe"
local jsonout = require "orket.jsonout"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"
local cards_store = require "orket.store.cards"
local store_runs = require "orket.store.runs"
local journal_reads = require "orket.store.journal_reads"
local sandbox_checks = require "orket.actions.sandbox_checks"
local scriptfile = require "orket.scriptfile"
local crypto = require "orket.c.crypto"
local jsondup = require "orket.c.jsondup"
local scriptenv = require "orket.scriptenv"
local fieldline = require "orket.fieldline"
local inert = require "orket.inert"
local nearest = require "orket.nearest"
local config = require "orket.config"
local project = require "orket.project"

local M = {}
M.MAX_FILE = 16 * 1024 * 1024
M.ISSUE_KEYS = { "issues", "stories", "cards" }

-- "Add the login form!" -> "add-the-login-form"
function M.slug(s)
  s = s:lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  if #s > 48 then s = s:sub(1, 48):gsub("%-+$", "") end
  return s
end

-- Only a regular file of at most MAX_FILE bytes, read without blocking (orket.scriptfile):
-- text | nil, "path: message"
local function read_file(path) return scriptfile.read(path, M.MAX_FILE) end

-- read_file's refusals of what a file now is (a larger one, a FIFO or a folder so named, not
-- text): a file the last import read that is one of these has changed (changed)
local CHANGED_UNREAD = { EFBIG = true, EINVAL = true, EISDIR = true }

-- The endings of files meant as epics that are not read: said (list_files' skipped).
-- (csv, tsv, xml: another tracker's export, the commonest thing put there to convert)
local EXPORTS = { csv = true, tsv = true, xml = true }
local NOT_READ = { json = true, lua = true, yaml = true, yml = true, jsonc = true, json5 = true }
for ext in pairs(EXPORTS) do NOT_READ[ext] = true end

-- The twins among the epic files and department folders listed (names: {{rel=folder,
-- names=}...}): files.twins, {shown=, message=} refusing each name a clone on macOS or
-- Windows would take for another of its folder (orket.scriptfile.twins, the rule of the
-- project's every folder); and the files whose names look the same as another's (differing
-- only in Unicode normalization, here or in their department's name) shown with their
-- non-ASCII bytes escaped (f.shown), or two messages would name them alike
local function twins_of(files, names)
  files.twins = {}
  for _, folder in ipairs(names) do
    for _, t in ipairs(scriptfile.twins(folder.names)) do
      local msg, shown = scriptfile.twin_message(folder.rel .. "/" .. t[1], folder.rel .. "/" .. t[2], t[3])
      files.twins[#files.twins + 1] = { shown = shown, message = msg }
    end
  end
  local look = {}
  for _, f in ipairs(files) do
    local k = scriptfile.decomposed(f.rel)
    look[k] = look[k] or {}
    table.insert(look[k], f)
  end
  for _, same in pairs(look) do
    if #same > 1 then
      for _, f in ipairs(same) do f.shown = scriptfile.apart(f.rel) end
    end
  end
end

-- Files under epics/ (and one level of department folders), sorted: {rel=, path=,
-- department=}, skipped: a note of each file that looks meant as an epic and is not read,
-- twins (twins_of), and names: {{rel=folder, names=}...}, each folder's entries read
local function list_files(dir)
  local root = dir .. "/epics"
  local st = uv.fs_stat(root)
  -- Epics/ (saved so on Windows, where the two names are one) named, with the rename
  local near = not st and scriptfile.near_miss(dir, "epics") or ""
  if st and st.type ~= "directory" then
    return nil, string.format("import: %s: a %s, not a folder: the epics are files in an epics/ folder "
      .. "(docs/board.md)", config.shown(root), st.type), "ENOTDIR"
  elseif near ~= "" then
    return nil, string.format("import: %s: no such folder%s", config.shown(root), near), "ENOENT"
  elseif not st and uv.fs_stat(dir .. "/orket.lua") then
    -- the project's own folder: asking for it again would not help
    return nil, string.format("import: %s: no such folder: write the project's epics there (docs/board.md)",
      config.shown(root)),
      "ENOENT"
  elseif not st then
    -- inside a project's workspace/, the project above is the one meant (config.no_project)
    local hint = config.holding(dir) and config.no_project(dir) or "give the project directory"
    return nil, string.format("import: %s: no epics/ folder here (%s)", config.shown(root), hint), "ENOENT"
  end
  local files, names = { skipped = {} }, {} -- names: the folder's entries read, by folder
  -- the epic files under a folder deeper than a department's, said as not read (a few
  -- levels down: a copied tree of something else is not walked whole)
  local function too_deep(path, rel, depth)
    local h = depth <= 4 and uv.fs_scandir(path)
    if not h then return end
    while true do
      local name, ty = uv.fs_scandir_next(h)
      if not name then break end
      if name:sub(1, 1) ~= "." then
        if ty == "link" then
          local st = uv.fs_stat(path .. "/" .. name)
          ty = st and st.type == "directory" and "directory" or "file"
        end
        if ty == "directory" then
          too_deep(path .. "/" .. name, rel .. "/" .. name, depth + 1)
        elseif name:match("%.json$") or name:match("%.lua$") then
          files.skipped[#files.skipped + 1] = string.format("%s/%s: not read: epic files are in epics/ or in one "
            .. "department folder under it (epics/DEPARTMENT/)", config.shown(rel), config.shown(name))
        end
      end
    end
  end
  local function scan(path, rel, department)
    local h, serr, scode = uv.fs_scandir(path)
    -- a folder that cannot be listed (too many open files, a refused access) is said: taken
    -- for an empty one, its epics were "removed" since the last import
    if not h then
      files.unlisted = files.unlisted or { rel = rel, err = serr, code = scode }
      return
    end
    local here = {}
    names[#names + 1] = { rel = rel, names = here }
    while true do
      local name, ty = uv.fs_scandir_next(h)
      if not name then break end
      if ty == "link" then
        -- a link to a folder is a department; to anything else, read (and refused unless
        -- it is a regular file) as the file it stands for
        local st = uv.fs_stat(path .. "/" .. name)
        ty = st and st.type == "directory" and "directory" or "file"
      end
      if ty ~= "directory" then ty = "file" end -- a FIFO or a device is refused by name when read
      if name:sub(1, 1) ~= "." then
        if ty == "directory" and department == nil then
          here[#here + 1] = name .. "/" -- (said as a folder)
          scan(path .. "/" .. name, rel .. "/" .. name, name)
        elseif ty == "directory" then
          -- a folder in a department is read no more than one in a folder would be; an epic
          -- put there would be missing from the board without a word
          too_deep(path .. "/" .. name, rel .. "/" .. name, 1)
        elseif ty == "file" and (name:match("%.json$") or name:match("%.lua$")) then
          here[#here + 1] = name
          files[#files + 1] = { path = path .. "/" .. name, rel = rel .. "/" .. name, department = department,
            stem = name:gsub("%.%w+$", "") }
        elseif ty == "file" and scriptfile.notepad(name) then
          -- web.json.txt: Notepad's "Text Document", its ending hidden by Explorer
          files.skipped[#files.skipped + 1] = string.format("%s/%s: not read: %s; rename it %s/%s",
            config.shown(rel), config.shown(name), scriptfile.NOTEPAD, config.shown(rel),
            config.shown(scriptfile.notepad(name)))
        elseif ty == "file" and NOT_READ[(name:match("%.(%w+)$") or ""):lower()] then
          -- an epic written as YAML, or saved as WEB.JSON, would be passed over without a
          -- word, its cards missing from the board (other files, a README, are no epics)
          local ext = (name:match("%.(%w+)$") or ""):lower()
          local why = EXPORTS[ext] and "another tracker's export is not read: convert it to an epic's JSON (docs/board.md)"
            or "epic files are named *.json or *.lua (lower case), and YAML is not read"
          files.skipped[#files.skipped + 1] = string.format("%s/%s: not read: %s", config.shown(rel), config.shown(name),
            why)
        end
      end
    end
  end
  scan(root, "epics", nil)
  local un = files.unlisted
  if un then
    return nil, string.format("import: %s: cannot list the folder: %s", config.shown(un.rel), tostring(un.err)),
      un.code or "EIO"
  end
  table.sort(files, function(a, b) return a.rel < b.rel end)
  table.sort(files.skipped)
  twins_of(files, names)
  files.names = names -- (orket.validate's: the names a Windows clone cannot check out)
  -- the digests the last import recorded, for check_file (validate has no store to give it):
  -- read once for the listing, when first asked, from a SQLite store alone, read only (a
  -- project on PostgreSQL is not asked: validate opens no connection)
  local known
  local function recorded()
    if known then return known end
    known = {}
    if project.database_url(dir) == false and uv.fs_stat(project.db_path(dir)) then
      local db = project.open_store(dir, false, true)
      if db then
        known = imports.files(db)
        db:close()
      end
    end
    return known
  end
  for _, f in ipairs(files) do f.recorded = recorded end
  return files
end

-- cjson reports "at character N"; people want a line.
local function json_error(text, err)
  local pos = tonumber(err:match("character (%d+)"))
  if not pos then return err end
  local line = 1
  for _ in text:sub(1, pos - 1):gmatch("\n") do line = line + 1 end
  -- (cjson's "invalid token" of a mark that does not open the file: scriptfile.text took off
  -- only those that do)
  if text:sub(pos, pos + 2) == "\239\187\191" then return string.format("%d: %s", line, scriptfile.STRAY_BOM) end
  return string.format("%d: %s", line, err)
end

-- The content digest of a file's text, recorded by import (imported_files) so a run can
-- tell which epics/ files changed since (a timestamp would flag files only touched).
local function digest(text) return crypto.hash(text) end

-- The first key given twice in one object of a JSON text: offset (the bytes up to the end
-- of the second copy's key), key | nil | false, message, offset (not JSON). cjson keeps the last
-- silently, so a second "issues" (a merge, a paste) dropped the first's cards, and a second
-- "depends_on" in an issue its dependencies. yajl reads the text (core/jsondup.c): keys
-- compare unescaped, as cjson keys them ("issues" and "\u0069ssues" are one).
local duplicate_key = jsondup.duplicate_key
M.duplicate_key = duplicate_key

local function parse_file(f)
  -- the file's name as messages print it (config.shown: a newline or an escape sequence in
  -- it cannot split a message or reach the terminal); f.rel stays the name a card records
  f.shown = f.shown or config.shown(f.rel)
  if not utf8.len(f.rel) then return nil, string.format("%s: the file's name is not valid UTF-8; rename it", f.shown) end
  -- (a UTF-8 byte order mark skipped, UTF-16 or UTF-32 refused: scriptfile.text, as for
  -- every script; JSON allows a reader to skip the mark)
  local text, rerr = read_file(f.path)
  if not text then return nil, f.shown .. rerr:sub(#f.path + 1) end
  f.digest = digest(text)
  f.text = text -- to find the line of a field (Ctx:unknown)
  if f.rel:match("%.json$") then
    -- cjson would say "Expected value but found T_END", of a file just created or emptied
    if not text:find("%S") then return nil, f.shown .. ": is empty; it must hold an object (a rock or an epic)" end
    local v, err = json.decode(text)
    if v == nil then return nil, string.format("%s:%s", f.shown, json_error(text, err or "not JSON")) end
    -- cjson decodes [] and {} alike; an empty array would import as an epic named after the file
    if text:match("^%s*%[") then
      return nil, string.format("%s: must hold an object (a rock or an epic), not an array", f.shown)
    end
    local at, key, stop = duplicate_key(text)
    if at == false then
      -- what cjson takes beyond JSON (hex numbers, NaN, Infinity) yajl refuses, as would
      -- any other JSON tool
      local _, nl = text:sub(1, stop):gsub("\n", "")
      return nil, string.format("%s:%d: not JSON: %s", f.shown, nl + 1, key)
    end
    if at then
      local _, nl = text:sub(1, at):gsub("\n", "")
      return nil, string.format("%s:%d: %q is given twice in one object; JSON keeps only the last, and what the first "
        .. "holds would be dropped: merge them into one", f.shown, nl + 1, key)
    end
    return v
  end
  local box = scriptenv.new { name = f.shown }
  local fn, err = box:load(text, f.shown) -- box:load adds the "@"
  if not fn then return nil, scriptfile.load_error(err, text) end
  local ok, v = box:pcall(fn)
  if not ok then return nil, scriptfile.message(v, f.shown) end
  if v == nil then return nil, f.shown .. ": returns nothing; return a table (a rock or an epic)" end
  local copy, cerr = scriptenv.copy(v)
  if copy == nil then
    -- (issues[2].acceptance: said in that issue, the second of the list as written)
    local why = scriptfile.plain_error(tostring(cerr))
    local key, n = why:match("^([%a_][%w_]*)%[(%d+)%]")
    return nil, string.format("%s: %s", f.shown, why), key and fieldline.element(text, key, tonumber(n), true)
  end
  return copy
end

-- Field checking with paths: ctx = {file=, shown= (file as messages print it), base=0|1
-- (index base of the file's language)}
local Ctx = {}
Ctx.__index = Ctx

-- The error carries the anchor of the object being checked (where its id, summary or name
-- is set), so `orket validate` finds the line of this card's field, not the first one like it.
function Ctx:fail(path, fmt, ...)
  error({ import_error = string.format("%s: %s%s", self.shown, path ~= "" and (path .. ": ") or "",
    string.format(fmt, ...)), anchor = self.anchor }, 0)
end

-- The place in the file's text where object t starts to be told apart: {pattern, nth}, nth
-- counting objects of the file with the same pattern (a duplicate id is the second one).
function Ctx:anchor_of(t)
  local pat
  if type(t) == "table" then
    if type(t.id) == "string" then pat = fieldline.id_set(t.id)
    elseif type(t.summary) == "string" then pat = fieldline.key_set("summary", t.summary)
    elseif type(t.name) == "string" then pat = fieldline.key_set("name", t.name)
    elseif type(t.epic) == "string" then pat = fieldline.key_set("epic", t.epic) end
  end
  if not pat then return nil end
  self.seen[pat] = (self.seen[pat] or 0) + 1
  return { pat, self.seen[pat] }
end

-- An array with no holes and no other keys: ipairs would stop at a nil (a Lua epic's
-- `{ {...}, nil, {...} }`) and skip an object's keys (JSON "issues": {"a": {...}}), dropping
-- cards without a word.
function Ctx:array(v, path, what)
  local n, max = 0, 0
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 then
      self:fail(path, "must be an array of %s, not an object (it has the key %q)", what, tostring(k))
    end
    n = n + 1
    if k > max then max = k end
  end
  if n ~= max then
    for i = 1, max do
      if v[i] == nil then
        self:fail(self:idx(path, i), "is nil: a hole in the array of %s (everything after it would be dropped)", what)
      end
    end
  end
  return v
end

function Ctx:idx(path, i) return string.format("%s[%d]", path, i - 1 + self.base) end
function Ctx:field(path, k) return path == "" and k or (path .. "." .. k) end

function Ctx:str(t, path, k, required)
  local v = t[k]
  if v == nil or v == json.null then
    if required then self:fail(self:field(path, k), "required string is missing") end
    return nil
  end
  if type(v) ~= "string" then self:fail(self:field(path, k), "must be a string, not %s", type(v)) end
  self:utf8(v, self:field(path, k))
  return v
end

-- Text reaches the board and, from there, JSON output and the model: it must be UTF-8.
function Ctx:utf8(s, path)
  local ok, at = utf8.len(s)
  if not ok then self:fail(path, "is not valid UTF-8 (byte %d); save the file as UTF-8", at) end
end

-- requirements / acceptance: a string or an array of strings (joined one per line)
function Ctx:text(t, path, k)
  local v = t[k]
  if v == nil or v == json.null then return nil end
  if type(v) == "string" then
    self:utf8(v, self:field(path, k))
    return v
  end
  if type(v) == "table" then
    local out = {}
    self:array(v, self:field(path, k), "strings")
    for i, s in ipairs(v) do
      if type(s) ~= "string" then self:fail(self:idx(self:field(path, k), i), "must be a string") end
      self:utf8(s, self:idx(self:field(path, k), i))
      out[i] = s
    end
    return table.concat(out, "\n")
  end
  self:fail(self:field(path, k), "must be a string or an array of strings")
end

-- An argv: a non-empty array of strings (never a shell string).
function Ctx:argv(v, path)
  if type(v) ~= "table" or v[1] == nil then
    self:fail(path, "must be an argv array of strings, e.g. [\"sh\", \"test.sh\"] (never one shell string)")
  end
  self:array(v, path, "strings")
  for i, s in ipairs(v) do
    if type(s) ~= "string" then self:fail(self:idx(path, i), "must be a string") end
    self:utf8(s, self:idx(path, i))
  end
  return v
end

local function count_field(ctx, t, path, k, min)
  local v = t[k]
  if v == nil or v == json.null then return nil end
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) or v < min or v > 1e12 then
    ctx:fail(ctx:field(path, k), "must be an integer of at least %d", min)
  end
  return math.tointeger(v)
end

-- An issue's acceptance checks (docs/verify.md): {command=, expect_exit=, timeout_ms=,
-- scenarios={{name=, command=, expect_exit=}...}}, as a JSON text for cards.verification.
-- The original Orket's `fixture` (a script) maps onto command = {"sh", fixture}.
function Ctx:verification(t, path)
  local v = t.verification
  if v == nil or v == json.null then return nil end
  local p = self:field(path, "verification")
  if type(v) ~= "table" or v[1] ~= nil then self:fail(p, "must be an object {command=, expect_exit=, timeout_ms=, scenarios=}") end
  local out = {}
  for k in pairs(v) do
    if k ~= "command" and k ~= "expect_exit" and k ~= "timeout_ms" and k ~= "scenarios" and k ~= "fixture" then
      self:fail(self:field(p, tostring(k)), "unknown field (fields: command, expect_exit, timeout_ms, scenarios, fixture)")
    end
  end
  if v.command ~= nil then out.command = self:argv(v.command, self:field(p, "command")) end
  if v.fixture ~= nil then
    if out.command then self:fail(self:field(p, "fixture"), "give command or fixture, not both") end
    out.command = { "sh", self:str(v, p, "fixture") }
  end
  out.expect_exit = count_field(self, v, p, "expect_exit", 0)
  out.timeout_ms = count_field(self, v, p, "timeout_ms", 1)
  if v.scenarios ~= nil then
    local sp = self:field(p, "scenarios")
    if type(v.scenarios) ~= "table" then self:fail(sp, "must be an array of {name=, command=, expect_exit=}") end
    self:array(v.scenarios, sp, "scenarios")
    out.scenarios = {}
    for i, s in ipairs(v.scenarios) do
      local ip = self:idx(sp, i)
      if type(s) ~= "table" then self:fail(ip, "must be an object {name=, command=, expect_exit=}") end
      out.scenarios[i] = { name = self:str(s, ip, "name"), command = self:argv(s.command, self:field(ip, "command")),
        expect_exit = count_field(self, s, ip, "expect_exit", 0) }
    end
  end
  if not out.command and not (out.scenarios and out.scenarios[1]) then
    self:fail(p, "needs a command (or scenarios) to run")
  end
  return out
end

-- An issue's checks against its running sandbox (docs/sandbox.md): an array of {http={...}}
-- or {browser={...}}, in the normal form of orket.actions.sandbox_checks (which owns their shape).
function Ctx:sandbox_checks(t, path)
  local v = t.sandbox_checks
  if v == nil or v == json.null then return nil end
  local p = self:field(path, "sandbox_checks")
  local checks, i, f, why = sandbox_checks.normalize_list(v)
  if not checks then
    local at = i and self:idx(p, i) or p
    if f and f ~= "" then at = at .. "." .. f end
    self:fail(at, "%s", why)
  end
  return checks
end

-- What cards.verification holds (JSON): the verification's fields, and the sandbox checks
-- beside them under sandbox_checks; nil when the issue has neither.
function Ctx:checks_text(t, path)
  local out = self:verification(t, path)
  local sc = self:sandbox_checks(t, path)
  if sc then
    out = out or {}
    out.sandbox_checks = sc
  end
  return out and json.encode(out) or nil
end

function Ctx:priority(t, path)
  local v = t.priority
  if v == nil or v == json.null then return 2 end
  local p, err = board_mod.priority(v)
  if not p then self:fail(self:field(path, "priority"), "%s", err) end
  return p
end

function Ctx:id(t, path, derived)
  local v = self:str(t, path, "id")
  if v == nil then
    if derived == nil or derived == "" then
      self:fail(self:field(path, "id"), "cannot derive an id (no ASCII letter or digit to make one of); give one")
    end
    if not board_mod.id_ok(derived) then
      self:fail(self:field(path, "id"), "the id derived, %q, is no usable id (an id is %s); give one", derived,
        board_mod.ID_RULE)
    end
    return derived, true
  end
  if not board_mod.id_ok(v) then self:fail(self:field(path, "id"), "bad id %q: an id is %s", v, board_mod.ID_RULE) end
  return v
end

function Ctx:deps(t, path)
  local v = t.depends_on
  if v == nil or v == json.null then return {} end
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then self:fail(self:field(path, "depends_on"), "must be an array of card ids") end
  self:array(v, self:field(path, "depends_on"), "card ids")
  local out = {}
  for i, d in ipairs(v) do
    if type(d) ~= "string" then self:fail(self:idx(self:field(path, "depends_on"), i), "must be a card id string") end
    out[i] = { id = d, path = self:idx(self:field(path, "depends_on"), i) }
  end
  return out
end

-- The fields each kind of object may have. Any other is an error, named with its file and
-- line (and, by orket.nearest, the known field nearest to it): a misspelt field ("seet",
-- "depends_on ") would otherwise vanish, and the seat or the dependency with it.
local COMMON = { "id", "name", "summary", "description", "note", "seat", "priority", "depends_on",
  "requirements", "acceptance", "status" }
local function field_set(extra)
  local set, list = {}, {}
  for _, k in ipairs(COMMON) do set[k] = true; list[#list + 1] = k end
  for _, k in ipairs(extra) do set[k] = true; list[#list + 1] = k end
  return { set = set, text = table.concat(list, ", ") }
end
local FIELDS = {
  issue = field_set { "sandbox_checks", "verification" },
  epic = field_set { "type", "issues", "stories", "cards" },
  rock = field_set { "type", "epics" },
  rock_epic = { set = { epic = true, department = true }, text = "epic, department" },
}

-- The original Orket's fields (its rocks', epics' and issues') that have no place on a card
-- here: read, so its epics import as they are, and ignored with a note saying where Orket
-- keeps the same thing (any value, as the original's own shapes vary). Any other field is
-- still an error, so a near miss of a real one (depends_onn) is not lost.
M.IGNORED = {
  team = "the seats are orket.lua's team",
  environment = "agent code runs as orket.lua's verify section says",
  iterations = "a card's turns are bounded by orket.lua's budgets.turns_per_card",
  architecture_governance = "say such rules in requirements, or in a role's system prompt",
  lessons_learned = "a card's comments and its runs' journal keep what was learnt",
  params = "for model_overrides, give the seat a model in orket.lua (team.SEAT.model) or the role one in its file (model =)",
  references = "give what to read in the description or requirements",
  handshake_enabled = "the gate and the policies decide what a role may do",
  example_task = "give the task in the description",
  task = "give the task in the description",
  build_id = "a run's commits and branch say what was built",
  metrics = "a run's figures are its own (orket log, GET /v1/metrics)",
  labels = "a card has no labels here",
  wait_reason = "a card waits through its transitions",
  parent_id = "a card's parent is the epic or rock that holds it",
  owner_department = "the department is the epics/ folder the file is in",
  assignee = "the seat works the card",
  sprint = "priorities and dependencies order the work",
  retry_count = "retries are counted by the runs, within orket.lua's budgets",
  max_retries = "retries are counted by the runs, within orket.lua's budgets",
}
local IGNORED_ORDER = {}
for k in pairs(M.IGNORED) do IGNORED_ORDER[#IGNORED_ORDER + 1] = k end
table.sort(IGNORED_ORDER)
local WHOSE = { issue = "an issue's", epic = "an epic's", rock = "a rock's", rock_epic = "a rock's epic entry's" }

-- Records each field of t that `kind` does not have (a misspelt one first, then by name:
-- orket.nearest.ordered) in self.unknowns as {message=, anchor=, field= (its path)}; a name
-- that is no identifier ("depends_on ") is shown quoted, path["depends_on "], so the space
-- can be seen.
function Ctx:unknown(t, path, kind)
  local f, extra = FIELDS[kind], {}
  for k in pairs(t) do
    if M.IGNORED[k] and kind ~= "rock_epic" then
      self:ignored(k)
    elseif not f.set[k] then
      if type(k) == "string" then self:utf8(k, self:field(path, "(a field name)")) end
      extra[#extra + 1] = tostring(k)
    end
  end
  -- a misspelt field first ("sumary"): its hint names the field meant, and a missing
  -- summary is said as it (Ctx's issues); then the rest, the same order each time
  for _, k in ipairs(nearest.ordered(extra, f.text)) do
    local where = k:match("^[%a_][%w_]*$") and self:field(path, k) or string.format("%s[%q]", path, k)
    local line = fieldline.of(self.source, k, self.anchor) or fieldline.of(self.source, k)
    local u = { message = string.format("%s%s: %s: unknown field (%s fields: %s)",
      self.shown, line and (":" .. line) or "", where, WHOSE[kind], f.text), anchor = self.anchor, field = where,
      key = k }
    self.unknowns[#self.unknowns + 1] = u
    self.problems[#self.problems + 1] = u
  end
end

-- said(fw, from) -> the message of the unknown field fw[from], and the paths of those after
-- it (at most 10): orket validate lists each with its line
local function said(fw, from)
  local n = #fw - from
  if n < 1 then return fw[from].message end
  local out = {}
  for i = from + 1, math.min(#fw, from + 10) do out[#out + 1] = fw[i].field end
  if n > 10 then out[#out + 1] = "..." end
  return string.format("%s (and %d more unknown field%s: %s; 'orket validate' lists them)", fw[from].message, n,
    n > 1 and "s" or "", table.concat(out, ", "))
end

-- Counts a field of the original's that is read and ignored (one note per field and file,
-- at its first line: Ctx:notes).
function Ctx:ignored(k)
  local n = self.ignored_seen[k]
  if n then
    n.count = n.count + 1
    return
  end
  self.ignored_seen[k] = { count = 1, line = fieldline.of(self.source, k, self.anchor) or fieldline.of(self.source, k) }
end

-- The notes of the fields read and ignored: "file:line: field: read and ignored (...)".
function Ctx:notes()
  local out = {}
  for _, k in ipairs(IGNORED_ORDER) do
    local n = self.ignored_seen[k]
    if n then
      out[#out + 1] = string.format("%s%s: %s%s: read and ignored, as Orket has no such field (%s)", self.shown,
        n.line and (":" .. n.line) or "", k, n.count > 1 and string.format(" (%d times)", n.count) or "", M.IGNORED[k])
    end
  end
  return out
end

-- try(fn, ...) -> fn's results, or nil when it failed on a field (Ctx:fail): the failure is
-- recorded (self.errors; self.problems too, unless it only says an unknown field again) and
-- the file's other fields are still checked, so validate reports them all in one pass.
function Ctx:try(fn, ...)
  local ok, a, b = pcall(fn, ...)
  if ok then return a, b end
  if type(a) ~= "table" or not a.import_error then error(a, 0) end
  local e = { message = a.import_error, anchor = a.anchor }
  self.errors[#self.errors + 1] = e
  if not a.again then self.problems[#self.problems + 1] = e end
  return nil
end

local STRINGS = { "name", "summary", "description", "note", "seat" }

-- The most characters of a card's text (code points, as the API's schemas count them; a byte
-- that is not UTF-8 counts as one), as the API's POST /v1/cards takes a new card (its schema
-- reads the same constants, orket.serve.writes): a file's card is held to them too, as its
-- text is in every model request for the card and every view of the board. No text may hold
-- a NUL byte, which the API refuses in any text (and PostgreSQL's text cannot keep); a
-- seat's length is left to the team's check.
local TEXT_LIMITS = { { "name", board_mod.NOTE_MAX }, { "summary", board_mod.NOTE_MAX },
  { "note", board_mod.NOTE_MAX }, { "description", board_mod.TEXT_MAX }, { "requirements", board_mod.TEXT_MAX },
  { "acceptance", board_mod.TEXT_MAX }, { "seat", math.huge } }

-- Records in self.held each of card's fields past the API's limits (TEXT_LIMITS, a NUL
-- byte, board.DEPENDS_MAX), as {message=, anchor=}: refused unless the file is as the last
-- import read it (M.held_split), so a board imported before these limits still imports.
function Ctx:limits(card, path)
  for i = 1, #TEXT_LIMITS do
    local k, max = TEXT_LIMITS[i][1], TEXT_LIMITS[i][2]
    local v = card[k]
    local n = v and inert.chars(v)
    if n and n > max then
      self:held_at(path, k, "%d characters, more than the %d a card's %s may have (as POST /v1/cards takes it): "
        .. "shorten it", n, max, k)
    end
    local at = v and v:find("\0", 1, true)
    if at then
      self:held_at(path, k, "holds a NUL byte (byte %d), which a card's text may not (as POST /v1/cards refuses it): "
        .. "remove it", at)
    end
  end
  if card.deps and #card.deps > board_mod.DEPENDS_MAX then
    self:held_at(path, "depends_on", "%d card ids, more than the %d a card may depend on (as POST /v1/cards takes "
      .. "it): depend on an epic, which waits for all its issues, or split the card", #card.deps, board_mod.DEPENDS_MAX)
  end
end

function Ctx:held_at(path, k, fmt, ...)
  self.held[#self.held + 1] = { message = string.format("%s: %s: " .. fmt, self.shown, self:field(path, k), ...),
    anchor = self.anchor }
end

-- The board's statuses, which a file's `status` may name (and no more: read and ignored)
local STATUS_LIST = board_mod.statuses()
local STATUSES, STATUS_TEXT = {}, table.concat(STATUS_LIST, ", ")
for _, st in ipairs(STATUS_LIST) do STATUSES[st] = true end

-- A card's `status`: a status of the board's, or nil. It is read and ignored (a card's
-- status changes only by its moves), and import warns when it is not the board's
-- (status_notes); one that is no status at all (a typo, "bananas") is refused, as it says
-- nothing the board could ever agree with.
function Ctx:status(t, path)
  local v = t.status
  if v == nil or v == json.null then return nil end
  if type(v) == "string" and STATUSES[v] then return v end
  local hint = type(v) == "string" and nearest.nearest(v, STATUS_TEXT)
  self:fail(self:field(path, "status"), "%s is no status (a card's statuses: %s); a card's status is the board's, "
    .. "changed by its moves, and this field is read and ignored: leave it out%s", type(v) == "string"
    and inert.clip(v, 60, function(x) return json.encode(x) or "?" end) or ("a " .. type(v)), STATUS_TEXT,
    hint and string.format("; did you mean '%s'?", hint) or "")
end

-- The fields every card has, all at once: raises at the first wrong one.
local function common_fields(ctx, t, path, card)
  for _, k in ipairs(STRINGS) do card[k] = ctx:str(t, path, k) end
  card.requirements = ctx:text(t, path, "requirements")
  card.acceptance = ctx:text(t, path, "acceptance")
  card.priority = ctx:priority(t, path)
  card.deps = ctx:deps(t, path)
  card.file_status = ctx:status(t, path)
end

local function common(ctx, t, path, card)
  -- one protected call for the fields of a card that has no wrong one (most): a call per
  -- field made validate's check of 50,000 issues a fifth slower. The checks change nothing,
  -- so a card that has one is checked again field by field, each error recorded.
  if not pcall(common_fields, ctx, t, path, card) then
    for _, k in ipairs(STRINGS) do card[k] = ctx:try(ctx.str, ctx, t, path, k) end
    card.requirements = ctx:try(ctx.text, ctx, t, path, "requirements")
    card.acceptance = ctx:try(ctx.text, ctx, t, path, "acceptance")
    card.priority = ctx:try(ctx.priority, ctx, t, path) or 2
    card.deps = ctx:try(ctx.deps, ctx, t, path) or {}
    card.file_status = ctx:try(ctx.status, ctx, t, path)
  end
  ctx:limits(card, path)
  card.file, card.shown = ctx.file, ctx.shown
  card.path = path
  return card
end

-- One issue of the epic's list: added to cards when it has an id.
local function issue_of(ctx, t, i, key, epic, cards)
  local p = ctx:idx(key, i)
  ctx.anchor = ctx:anchor_of(t)
  -- one without an id is found by its place in the list: its summary may be missing, or
  -- give no line (the id it lacks would be sought from the top of the file)
  if not (type(t) == "table" and type(t.id) == "string") then
    ctx.anchor = fieldline.element(ctx.source, key, i, ctx.base == 1) or ctx.anchor
  end
  if type(t) ~= "table" then ctx:fail(p, "must be an object") end
  local known = #ctx.unknowns
  ctx:try(ctx.unknown, ctx, t, p, "issue")
  local issue = common(ctx, t, p, { type = "issue", parent = epic.id })
  local title = issue.summary or issue.name
  if not title or not title:find("%S") then
    local function given(k) return t[k] ~= nil and t[k] ~= json.null and issue[k] == nil end
    -- a summary or name of the wrong type is said already, as its field's error
    if not (given("summary") or given("name")) then
      -- a misspelt summary ("sumary") is the likelier fault: said as its unknown field, which
      -- names the field meant (to validate, which lists that field already, said again)
      -- (only one near summary or name: a tracker's "key" is no summary, and standing in for
      -- the missing one it hid that error until the field was removed)
      local u = ctx.unknowns[known + 1]
      if u and not (type(u.key) == "string" and nearest.nearest(u.key, { "summary", "name" })) then u = nil end
      if u then
        ctx:try(error, { import_error = said(ctx.unknowns, known + 1), anchor = u.anchor, again = true }, 0)
      else
        ctx:try(ctx.fail, ctx, p, "needs a summary or a name")
      end
    end
    title = nil
  end
  -- without an id of its own, the issue's is derived from its summary and its epic's id
  if t.id == nil and not (title and epic.id) then return end
  -- a summary with no letter or digit of ASCII ("日本語") has no slug: "E-" was derived, and
  -- a second such issue of the epic clashed with it
  local slug = title and M.slug(title)
  issue.id, issue.derived = ctx:try(ctx.id, ctx, t, p, slug and slug ~= "" and epic.id and (epic.id .. "-" .. slug) or nil)
  issue.verification = ctx:try(ctx.checks_text, ctx, t, p)
  issue.anchor = ctx.anchor
  if issue.id and epic.id then cards[#cards + 1] = issue end
end

-- The line of a rock's or an epic's own depends_on, for a message about one of its entries:
-- to orket.fieldline a path "depends_on[0]" reads as an object in an array (issues[0]), whose
-- line is its id's. Its own key, not the first depends_on after its '{' (one of its issues'
-- when the epic's comes after its issues, as a serializer appending a key writes it).
local function deps_line(ctx, card)
  if not card.deps[1] then return nil end
  return fieldline.own(ctx.source, "depends_on", card.anchor, ctx.base == 1) or fieldline.of(ctx.source, "depends_on", card.anchor)
    or fieldline.of(ctx.source, "depends_on")
end

-- One file's value -> list of card definitions (rock or epic first, then issues), its
-- problems (unknown fields and the errors of its fields, in order), notes, the errors of its
-- fields (Ctx:try; import refuses the first), the unknown fields, and the fields past the
-- API's limits (Ctx:limits, decided by M.held_split). A value
-- that is not an object raises. Every field is checked, so that validate reports them all;
-- a card whose id could not be had is left out, and an epic's issues with it.
local function shape(f, v)
  local ctx = setmetatable({ file = f.rel, shown = f.shown, base = f.rel:match("%.lua$") and 1 or 0, unknowns = {},
    seen = {}, source = f.text, ignored_seen = {}, errors = {}, problems = {}, held = {} }, Ctx)
  if type(v) ~= "table" then ctx:fail("", "must hold an object (a rock or an epic), not %s", type(v)) end
  if v[1] ~= nil then ctx:fail("", "must hold an object (a rock or an epic), not an array") end
  local cards = {}
  local kind = v.type
  if kind ~= nil and kind ~= "rock" and kind ~= "epic" then ctx:fail("type", "must be \"rock\" or \"epic\"") end
  local function done() return cards, ctx.problems, ctx:notes(), ctx.errors, ctx.unknowns, ctx.held end
  if kind == "rock" or (kind == nil and v.epics ~= nil) then
    ctx:try(ctx.unknown, ctx, v, "", "rock")
    -- a rock's depends_on was taken and followed nowhere: its epics' issues ran before it
    -- was met, and the rock itself, held back from in_progress, stayed ready for good
    if v.depends_on ~= nil then
      ctx:try(ctx.fail, ctx, "depends_on", "a rock's dependencies are not followed (an epic's and an issue's are): "
        .. "put the dependency on the epics that need it")
    end
    local rock = common(ctx, v, "", { type = "rock", department = f.department })
    rock.id, rock.derived = ctx:try(ctx.id, ctx, v, "", f.stem)
    rock.anchor = type(v.id) == "string" and ctx:anchor_of(v) or nil
    rock.deps_line = deps_line(ctx, rock)
    rock.epics = {}
    if rock.id then cards[1] = rock end
    if not ctx:try(function()
      if type(v.epics) ~= "table" then ctx:fail("epics", "must be an array of {epic=, department=}") end
      return ctx:array(v.epics, "epics", "{epic=, department=}")
    end) then return done() end
    for i, e in ipairs(v.epics) do
      ctx:try(function()
        local p = ctx:idx("epics", i)
        ctx.anchor = ctx:anchor_of(type(e) == "string" and { epic = e } or e)
        if type(e) == "string" then e = { epic = e } end
        if type(e) ~= "table" then ctx:fail(p, "must be {epic=, department=} or an epic id") end
        ctx:try(ctx.unknown, ctx, e, p, "rock_epic")
        local epic, department = ctx:try(ctx.str, ctx, e, p, "epic", true), ctx:try(ctx.str, ctx, e, p, "department")
        if epic then rock.epics[#rock.epics + 1] = { epic = epic, department = department, path = p } end
      end)
    end
    ctx.anchor = nil
    return done()
  end
  ctx:try(ctx.unknown, ctx, v, "", "epic")
  local epic = common(ctx, v, "", { type = "epic", department = f.department })
  epic.id, epic.derived = ctx:try(ctx.id, ctx, v, "", f.stem)
  epic.anchor = type(v.id) == "string" and ctx:anchor_of(v) or nil
  epic.deps_line = deps_line(ctx, epic)
  if epic.id then cards[1] = epic end
  local key, list
  for _, k in ipairs(M.ISSUE_KEYS) do
    if v[k] ~= nil then
      if key then
        ctx:try(ctx.fail, ctx, k, "give issues under one key only (found %s and %s)", key, k)
      else
        key, list = k, v[k]
      end
    end
  end
  if list == nil then return done() end
  if not ctx:try(function()
    if type(list) ~= "table" then ctx:fail(key, "must be an array of issues") end
    return ctx:array(list, key, "issues")
  end) then return done() end
  for i, t in ipairs(list) do ctx:try(issue_of, ctx, t, i, key, epic, cards) end
  ctx.anchor = nil
  return done()
end

-- For `orket validate`, which checks each file on its own to report every broken file:
-- list_files(dir) -> {rel=, path=, ...} | nil, msg, CODE;
-- check_file(f) -> cards (those that could be had), problems ({message=, anchor=}: every
-- unknown field and every field's error, in the file's order), notes (the original's fields
-- read and ignored, as text) | nil, msg, anchor (a file that cannot be read, parsed or is no
-- object).
M.list_files = list_files

-- Why a field past the API's limits (Ctx:limits) is imported all the same from a file that
-- is as the last import read it: its card came in before the limits, and refusing it would
-- block every import of the project for a file nobody touched.
M.KEPT = "imported as it is, as the file is unchanged since the last import; a change to the file must bring it " ..
  "within the limit"

--- held_split(held, known, rel, digest) -> refused, kept: a file's fields past the API's
--- limits (Ctx:limits' {message=, anchor=}) refused when the file (rel, its text's digest)
--- is new or changed since the last import (known: store.imports.files'), else kept, to be
--- warned of (M.KEPT). Import and validate decide with this one function.
function M.held_split(held, known, rel, digest)
  if known[rel] == nil or known[rel] ~= digest then return held, {} end
  return {}, held
end

function M.check_file(f)
  local v, perr, panchor = parse_file(f)
  if v == nil then return nil, perr, panchor end
  local ok, cards, problems, notes, _, _, held = pcall(shape, f, v)
  if ok and held[1] then
    -- (the store is read only when a field is past a limit: list_files' recorded)
    local refused, kept = M.held_split(held, f.recorded and f.recorded() or {}, f.rel, f.digest)
    table.move(refused, 1, #refused, #problems + 1, problems)
    for _, k in ipairs(kept) do
      local file, line, text = fieldline.place(k.message, function() return f.text end, nil, k.anchor)
      notes[#notes + 1] = string.format("%s%s: %s; %s", file or f.shown, line and (":" .. line) or "", text, M.KEPT)
    end
  end
  if ok then return cards, problems, notes end
  if type(cards) == "table" and cards.import_error then return nil, cards.import_error, cards.anchor end
  error(cards, 0)
end

-- Why two ids differing only in case cannot both be cards (the board's rule), and the way out.
M.CASE_CLASH = board_mod.CASE_RULE .. "; change one of the two ids"
-- The same of a pair an older Orket imported, both on the board: renaming one would make a
-- new card and leave the old one with its status and history.
M.CASE_OLD = board_mod.CASE_RULE .. "; work this project on a case-sensitive filesystem only, or end one of "
  .. "the two (orket cancel ID \"reason\") and give its work a new id"
-- Of an id that is a Windows device name (the board's rule), a card an older Orket
-- imported: the way out.
M.DEVICE_OLD = board_mod.DEVICE_RULE .. "; work this project where no clone is on Windows, or end the card "
  .. "(orket cancel ID \"reason\") and give its work a new id"

--- link(parsed) -> {cards=, by_id=}, problems: the checks across files, over the cards of
--- the files that parsed (parsed: {{file=f, cards=...}...} in file order): ids used twice,
--- rocks naming unknown epics or epics another rock holds, a card depending on its own epic
--- or rock, ids differing only in case, an id that is a Windows device name. Each problem
--- is {message=, anchor=} (and board = {ids = {id[, other id]}, said = the message without
--- its reason, old = the reason of a warning} for the last two kinds, which case_pairs
--- decides with the board); a card whose id is taken stays out of cards. Every problem is
--- collected (orket validate reports them all; load the first).
function M.link(parsed)
  local defs, by_id, epics, problems, folded = {}, {}, {}, {}, {}
  local function bad(anchor, fmt, ...)
    problems[#problems + 1] = { message = string.format(fmt, ...), anchor = anchor }
  end
  for _, p in ipairs(parsed) do
    local f = p.file
    for _, c in ipairs(p.cards) do
      local prev = by_id[c.id]
      if prev then
        -- a derived id is mended by giving one; two given ids only by changing one
        bad(c.anchor, "%s: %s: card id %q is already used by %s%s; %s",
          c.shown, c.path ~= "" and c.path or "id", c.id, prev.shown, prev.path ~= "" and (" " .. prev.path) or "",
          (c.derived or prev.derived) and "give one of them an explicit id" or "change one of the two ids")
      else
        -- cards become directories and git branches (orket/<id>): on a case-insensitive
        -- filesystem (macOS, Windows) API-1 and api-1 are one, and one card's work would
        -- land in the other's
        local other = folded[c.id:lower()]
        if other then
          local said = string.format("%s: %s: card id %q differs only in case from %q (%s%s)", c.shown,
            c.path ~= "" and c.path or "id", c.id, other.id, other.shown, other.path ~= "" and (" " .. other.path) or "")
          bad(c.anchor, "%s: %s", said, M.CASE_CLASH)
          problems[#problems].board = { ids = { c.id, other.id }, said = said, old = M.CASE_OLD }
        else
          folded[c.id:lower()] = c
        end
        -- (the same reason: a name Windows keeps for a device is no branch nor folder there)
        local device = board_mod.device_name(c.id)
        if device then
          local said = string.format("%s: %s: card id %q is the Windows device name %s", c.shown,
            c.path ~= "" and c.path or "id", c.id, device)
          bad(c.anchor, "%s: %s; %s", said, board_mod.DEVICE_RULE,
            c.derived and "give the card an id (this one is derived from the file's name)" or "change the id")
          problems[#problems].board = { ids = { c.id }, said = said, old = M.DEVICE_OLD }
        end
        by_id[c.id] = c
        defs[#defs + 1] = c
        if c.type == "epic" then epics[#epics + 1] = { card = c, stem = f.stem, department = f.department } end
      end
    end
  end
  -- Rocks name their epics by id, file name or name, optionally within a department.
  for _, r in ipairs(defs) do
    if r.type == "rock" then
      local listed = {} -- epic id -> the link that named it first
      for _, link in ipairs(r.epics) do
        -- an id names one epic; a file name or a name may name several (epics/web/backend.json
        -- and epics/api/backend.json), and taking the first would put the other's work
        -- under the rock unseen
        local found, also
        for _, e in ipairs(epics) do
          if (link.department == nil or link.department == e.department) and e.card.id == link.epic then
            found = e.card
            break
          end
        end
        if not found then
          for _, e in ipairs(epics) do
            if (link.department == nil or link.department == e.department)
              and (e.stem == link.epic or e.card.name == link.epic) then
              if found then
                also = also or {}
                also[#also + 1] = string.format("%s in %s", e.card.id, e.card.shown)
              else
                found = e.card
              end
            end
          end
        end
        if also then
          bad(r.anchor, "%s: %s.epic: %q names %d epics (%s in %s, %s): give the epic's id%s", r.shown, link.path,
            link.epic, #also + 1, found.id, found.shown, table.concat(also, ", "),
            link.department and "" or ", or its department")
        elseif not found and by_id[link.epic] and by_id[link.epic].type ~= "epic" then
          -- the card is there, it is just no epic: said so (rocks do not nest, nor hold issues)
          local other = by_id[link.epic]
          bad(r.anchor, "%s: %s.epic: %q is %s %s (in %s), not an epic: a rock holds epics, which hold issues",
            r.shown, link.path, link.epic, other.type == "issue" and "an" or "a", other.type, other.shown)
        elseif not found then
          bad(r.anchor, "%s: %s.epic: unknown epic %q%s", r.shown, link.path, link.epic,
            link.department and (" in department " .. link.department) or "")
        elseif found.parent and found.parent ~= r.id then
          bad(r.anchor, "%s: %s.epic: epic %q already belongs to rock %q", r.shown, link.path, found.id, found.parent)
        elseif listed[found.id] then
          -- (a slip: two lines of a list, one meant for another epic)
          bad(r.anchor, "%s: %s.epic: epic %q is listed already, as %s; name each epic once", r.shown, link.path,
            found.id, listed[found.id].path)
        else
          found.parent = r.id
        end
        if found then listed[found.id] = listed[found.id] or link end
      end
    end
  end
  -- A card waits for its dependencies and its epic or rock for its cards: a dependency on
  -- an ancestor is a cycle through the parent, and the run would stall on it forever.
  for _, c in ipairs(defs) do
    for _, d in ipairs(c.deps) do
      local up, seen = c.parent, {}
      while up and not seen[up] do
        if up == d.id then
          local a = by_id[up]
          bad(c.anchor, "%s: %s: %s depends on %q, the %s it belongs to; it could never start",
            c.shown, d.path, c.id, d.id, a and a.type or "card")
          break
        end
        seen[up] = true
        up = by_id[up] and by_id[up].parent
      end
    end
  end
  return { cards = defs, by_id = by_id }, problems
end

--- load(dir) -> {files=n, cards={def...}, warnings={...}} | nil, msg, CODE, anchor. warnings:
--- the original Orket's fields read and ignored (an unknown field is an error). Validates
--- everything that does not need the board (ids, duplicates,
--- rock links, dependencies within the files, no card depending on its own epic or rock);
--- a field past the API's limits (held, by file) is left to import, which reads the record
--- of the last import (M.held_split).
--- anchor ({pattern, nth}, orket.fieldline) locates the card the message is about in its file,
--- and the message says its line, as `orket validate` does (orket.fieldline.place).
--- case_pairs(problems, on_board) -> refused, warned: link's problems of two ids differing
--- only in case and of an id that is a Windows device name (those with .board), split by
--- the board (on_board(id) -> whether a card of that id is on it). A pair both on the board
--- already, or such a card (an older Orket imported them), creates nothing: a warning
--- naming them, so neither import nor validate is blocked for good by it; any other would
--- make a card a clone on Windows or macOS cannot hold: refused. Each a {message=, anchor=}.
--- Import and validate decide with this one function.
function M.case_pairs(problems, on_board)
  local refused, warned = {}, {}
  for _, p in ipairs(problems) do
    if p.board then
      local all = true
      for _, id in ipairs(p.board.ids) do all = all and on_board(id) end
      if all then
        warned[#warned + 1] = { message = string.format("%s, %son the board already: %s", p.board.said,
          #p.board.ids > 1 and "both " or "", p.board.old), anchor = p.anchor }
      else
        refused[#refused + 1] = p
      end
    end
  end
  return refused, warned
end

local function load_files(dir)
  local files, err, code = list_files(dir)
  if not files then return nil, err, code end
  if files.twins[1] then return nil, files.twins[1].shown .. ": " .. files.twins[1].message, "EINVAL" end
  local parsed, digests, texts, warnings = {}, {}, {}, table.move(files.skipped, 1, #files.skipped, 1, {})
  local held = {} -- fields past the API's limits, by file: import decides them (M.held_split)
  for _, f in ipairs(files) do
    local v, perr, panchor = parse_file(f)
    if v == nil then return nil, perr, "EINVAL", panchor end
    digests[#digests + 1] = { rel = f.rel, digest = f.digest }
    texts[dir .. "/" .. f.rel] = f.text
    -- a message names the file as shown, and is placed by that name (another file's own
    -- name kept, should it read the same)
    if texts[dir .. "/" .. f.shown] == nil then texts[dir .. "/" .. f.shown] = f.text end
    local ok, cards, _, notes, errs, fw, over = pcall(shape, f, v)
    if not ok then
      if type(cards) == "table" and cards.import_error then return nil, cards.import_error, "EINVAL", cards.anchor end
      error(cards, 0)
    end
    -- a field's error first, as a misspelt summary is said (validate lists them all)
    if errs[1] then return nil, errs[1].message, "EINVAL", errs[1].anchor end
    if fw[1] then return nil, said(fw, 1), "EINVAL", fw[1].anchor end
    parsed[#parsed + 1] = { file = f, cards = cards }
    table.move(notes, 1, #notes, #warnings + 1, warnings)
    if over[1] then held[#held + 1] = { rel = f.rel, digest = f.digest, held = over } end
  end
  local set, problems = M.link(parsed)
  -- two ids differing only in case are refused by import when it would create one of them:
  -- a pair an older Orket imported stays importable (import.import decides, with the board)
  local cases = {}
  for _, p in ipairs(problems) do
    if not p.board then return nil, p.message, "EINVAL", p.anchor end
    cases[#cases + 1] = p
  end
  return { files = #files, cards = set.cards, by_id = set.by_id, warnings = warnings, digests = digests, cases = cases,
    texts = texts, held = held }
end

-- msg ("file: path: text") with the line of path in the card anchor points at, when found;
-- texts: {[dir/file] = text} of the files as checked (a file edited since is not read)
local function placed(dir, msg, anchor, texts)
  local file, line, text = fieldline.in_project(msg, dir, function(path)
    return texts and texts[path] or (scriptfile.read(path, M.MAX_FILE))
  end, nil, anchor)
  if line then msg = string.format("%s:%d: %s", file, line, text) end
  return msg
end

--- own_deps_at(c) -> ":LINE" of a rock's or epic's own depends_on, for a message about one of
--- its entries (deps_line), or "": an issue's is placed by its anchor. Import's and validate's.
function M.own_deps_at(c)
  return c.path == "" and c.deps_line and (":" .. c.deps_line) or ""
end

-- A message about c's depends_on entry ("depends_on[0]: text", the path first), with its
-- file and line as validate gives them: an issue's entry at its depends_on key (placed), an
-- epic's or rock's own at the line of its depends_on (as a cycle is said).
local function dep_placed(dir, c, text, texts)
  if c.path == "" and c.deps_line then return string.format("%s:%d: %s", c.shown, c.deps_line, text) end
  return placed(dir, string.format("%s: %s", c.shown, text), c.anchor, texts)
end

function M.load(dir)
  -- a project a killed init left half made is said so, before its files (epics/ may be missing)
  local unfinished = config.unfinished(dir)
  if unfinished then return nil, unfinished, "EINVAL" end
  local set, msg, code, anchor = load_files(dir)
  if set or code ~= "EINVAL" then return set, msg, code, anchor end
  return nil, placed(dir, msg, anchor), code, anchor
end

-- Whether list (a seat's roles, names of seats) holds x.
local function has(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

--- seat_problems(cards, team) -> {{card=, message="file: path.seat: why"}...}: the cards
--- (M.load's, M.link's) whose seat could not work them, in the words validate refuses them
--- with and import warns of them (M.unseated). team: {SEAT = {roles = {...}}} (orket.settings'),
--- a seat's roles nil when not known (only the seat's existence is checked). A seat the team
--- lacks: another seat would work the card, unseen. For an issue, the only seat holding
--- integrity_guard (no seat reviews its own work, so it could never be done), or a seat
--- holding integrity_guard alone (the reviewer's role would be given the work, with no tool
--- to do it, its every turn spent until the budget ends).
function M.seat_problems(cards, team)
  local seats, reviewers, working = {}, {}, {}
  for seat, t in pairs(team) do
    seats[#seats + 1] = seat
    if t.roles and has(t.roles, "integrity_guard") then reviewers[#reviewers + 1] = seat end
    for _, r in ipairs(t.roles or {}) do
      if r ~= "integrity_guard" then working[#working + 1] = seat break end
    end
  end
  table.sort(seats)
  table.sort(working)
  local out = {}
  for _, c in ipairs(cards) do
    local field, msg = c.path == "" and "seat" or (c.path .. ".seat"), nil
    local roles = c.seat and team[c.seat] and team[c.seat].roles
    if c.seat and not team[c.seat] then
      msg = string.format("no seat %q in orket.lua's team, so another seat would work the card (seats: %s)", c.seat,
        table.concat(seats, ", "))
    elseif roles and c.type == "issue" and #reviewers == 1 and reviewers[1] == c.seat then
      msg = string.format("%q is the only seat holding integrity_guard, and no seat reviews its own work: the card "
        .. "could never be done; seat it elsewhere or add a reviewer seat", c.seat)
    elseif roles and c.type == "issue" and not has(working, c.seat) then
      msg = string.format("%q holds only integrity_guard, so no working role could do the card (the reviewer's "
        .. "role would be given the work, and could never hand it in); seat it at a seat with a working role (%s)",
        c.seat, #working > 0 and table.concat(working, ", ") or "none: add one to orket.lua's team")
    end
    if msg then out[#out + 1] = { card = c, message = string.format("%s: %s: %s", c.shown, field, msg) } end
  end
  return out
end

--- unseated(dir, set, seats[, team]) -> the warnings of set's cards (M.load's) whose seat
--- could not work them (M.seat_problems; seats: the team's names, sorted, when team, the
--- resolved team with its roles, is not given: then only a seat the team lacks is said),
--- each with its line. A warning, not a refusal: the team may be changed in orket.lua after
--- the files (validate counts it).
function M.unseated(dir, set, seats, team)
  if not team then
    team = {}
    for _, s in ipairs(seats) do team[s] = {} end
  end
  local out = {}
  for _, p in ipairs(M.seat_problems(set.cards, team)) do
    out[#out + 1] = placed(dir, p.message, p.card.anchor, set.texts)
  end
  return out
end

--- cycle_problem(cycle, via, by_id) -> message, anchor: a cycle board.find_cycle found in
--- board.waits_for's graph, said at the depends_on entry that closes it (the last edge of
--- the cycle that is one of a file's cards: the line to change). by_id: the files' cards.
--- The one wording of a cycle, import's and validate's.
function M.cycle_problem(cycle, via, by_id)
  local text = #cycle == 2 and (cycle[1] .. " depends on itself") or board_mod.cycle_text(cycle)
  local first
  for i = #cycle - 1, 1, -1 do
    local c = by_id[via[cycle[i]] or cycle[i]]
    if c then
      first = first or c
      for _, d in ipairs(c.deps) do
        if d.id == cycle[i + 1] then
          return string.format("%s%s: %s: dependency cycle: %s", c.shown, c.deps_line and (":" .. c.deps_line) or "",
            d.path, text), c.anchor
        end
      end
    end
  end
  return string.format("%s: dependency cycle: %s", first and first.shown or "epics", text), first and first.anchor
end

-- The first of the files' cards (nodes, in order; on_files tells a graph node that stands
-- for one) that lies on a cycle of graph, as a shortest cycle through it ({id, ..., id}),
-- else nil. For when find_cycle met first a cycle of the board's cards alone, which may
-- hide one this import closes: the strongly connected components (Tarjan's, iterative, as
-- a ring of 200,000 cards must not overflow the stack), then a breadth-first walk in the
-- card's component back to it.
local function cycle_through(graph, nodes, on_files)
  local EMPTY = {}
  local index, low, on, comp, size = {}, {}, {}, {}, {}
  local stack, n, ncomp = {}, 0, 0
  local function enter(v)
    n = n + 1
    index[v], low[v], on[v] = n, n, true
    stack[#stack + 1] = v
  end
  for _, root in ipairs(nodes) do
    if not index[root] then
      enter(root)
      local path, at, top = { root }, { 1 }, 1
      while top > 0 do
        local v = path[top]
        local w = (graph[v] or EMPTY)[at[top]]
        if w ~= nil then
          at[top] = at[top] + 1
          if not index[w] then
            enter(w)
            top = top + 1
            path[top], at[top] = w, 1
          elseif on[w] and index[w] < low[v] then
            low[v] = index[w]
          end
        else
          path[top], at[top] = nil, nil
          top = top - 1
          if top > 0 and low[v] < low[path[top]] then low[path[top]] = low[v] end
          if low[v] == index[v] then
            ncomp = ncomp + 1
            local k = 0
            repeat
              local u = table.remove(stack)
              on[u], comp[u], k = nil, ncomp, k + 1
            until u == v
            size[ncomp] = k
          end
        end
      end
    end
  end
  for _, f in ipairs(nodes) do
    if on_files(f) and size[comp[f]] > 1 then
      local cyc = board_mod.cycle_back(graph, f, function(w) return comp[w] == comp[f] end)
      if cyc then return cyc end
    end
  end
  return nil
end

--- board_waits(db, row, defined, waits) -> had: the board's cards the files do not define
--- (row: the board's cards by id, as store.imports.cards gives them; defined: the files'
--- cards by id) appended to waits as the board has them, with their dependencies; had
--- holds "card\0dependency" for every dependency on the board
function M.board_waits(db, row, defined, waits)
  local kept, had = {}, {}
  for _, r in ipairs(imports.dependencies(db)) do
    if not defined[r.card_id] then
      local l = kept[r.card_id]
      if not l then l = {}; kept[r.card_id] = l end
      l[#l + 1] = r.depends_on
    end
    had[r.card_id .. "\0" .. r.depends_on] = true
  end
  local others = {}
  for id in pairs(row) do
    if not defined[id] then others[#others + 1] = id end
  end
  table.sort(others) -- one order, so one cycle of several is named each time
  for _, id in ipairs(others) do
    local r = row[id]
    waits[#waits + 1] = { id = id, type = r.type, parent = r.parent, deps = kept[id] or {}, status = r.status }
  end
  return had
end

--- cycle_of(waits, nodes, defined) -> cycle | nil, via, old_cycle | nil: the cycle of what
--- the scheduler would wait for (board.waits_for) that runs through a card the files define
--- (nodes: their ids; defined: their cards by id), and a cycle of the board's cards alone
--- met first: there before this import, which neither made it nor can mend it (its cards
--- go on waiting, and the caller says so)
function M.cycle_of(waits, nodes, defined)
  local wgraph, via = board_mod.waits_for(waits)
  local cycle = board_mod.find_cycle(wgraph, nodes)
  local function on_files(id) return defined[via[id] or id] ~= nil end
  local old_cycle
  if cycle then
    local ours = false
    for _, id in ipairs(cycle) do ours = ours or on_files(id) end
    if not ours then old_cycle, cycle = cycle, cycle_through(wgraph, nodes, on_files) end
  end
  return cycle, via, old_cycle
end

--- old_cycle_warning(cycle) -> what cycle_of's old cycle is said as
function M.old_cycle_warning(cycle)
  return string.format("dependency cycle already on the board: %s (no card of epics/ is on it): cards depending "
    .. "on it wait for ever; to break it, define one of its cards in an epic file without the dependency that "
    .. "closes it, and import", board_mod.cycle_text(cycle))
end

--- finished_parent(c, row) -> message | nil: a file's card c put under a parent the board has
--- finished (row: the board's cards by id). A parent follows its children: a finished one
--- cannot take new work, which would run under a parent that says it is over.
function M.finished_parent(c, row)
  local cur, parent = row[c.id], c.parent and row[c.parent]
  if parent and board_mod.FINAL[parent.status] and not (cur and (cur.parent == c.parent
      or board_mod.FINAL[cur.status])) then
    return string.format("%s: %s: %s %q is %s, so it cannot take the %s %q; put it in a new %s", c.shown,
      c.path ~= "" and c.path or "id", parent.type, c.parent, parent.status, c.type, c.id, parent.type)
  end
  return nil
end

-- The statuses from which an issue can be done without starting again: dependencies hold
-- back only a start (docs/board.md, Guards 3), so one added now would not hold it back.
local UNDER_WAY = { in_progress = true, waiting_for_developer = true, ready_for_testing = true, code_review = true,
  done = true }

-- A dependency this import adds, not done, to an issue on the board that is under way or
-- done: the issue would be finished without it, and the board would show done work
-- depending on work not done. -> message, anchor | nil. (An epic's new dependency holds
-- back its issues not yet started, which is how the rest of an epic is held: allowed.)
-- row: the board's cards by id; had: "card\0dependency" of the board's dependencies.
local function late_dependency(set, row, had)
  -- A new dependency on a card canceled or archived: it blocks until it is done, which it
  -- never will be (Guards 3), so the card (an epic: its issues) could never start, and a
  -- run would stall on it. One the board had before stays as it is. An issue under way
  -- has started, so is not held back: the loop below refuses its new dependency, saying so.
  for _, c in ipairs(set.cards) do
    local cur = row[c.id]
    if not (cur and (board_mod.FINAL[cur.status] or c.type == "issue" and UNDER_WAY[cur.status])) then
      for _, d in ipairs(c.deps) do
        local dst = row[d.id] and row[d.id].status
        if (dst == "canceled" or dst == "archived") and not had[c.id .. "\0" .. d.id] then
          return string.format("%s%s: %s: %s is %s, so %s could never start (a dependency holds back a start until it "
            .. "is done): drop the dependency, or depend on the card that does its work now", c.shown,
            M.own_deps_at(c), d.path, d.id, dst,
            c.type == "issue" and c.id or string.format("the issues of %s %s", c.type, c.id)), c.anchor
        end
      end
    end
  end
  -- An issue under way or done moved into an epic that waits for a card not done gets that
  -- dependency as surely as one of its own: it would not hold it back either, and the epic,
  -- which may not start while it waits (Guards 3), could not follow its started child (a
  -- `ready` epic with its work under way).
  for _, c in ipairs(set.cards) do
    local cur = row[c.id]
    local epic = c.type == "issue" and cur and cur.parent ~= c.parent and UNDER_WAY[cur.status]
      and set.by_id[c.parent]
    for _, d in ipairs(epic and epic.deps or {}) do
      local dst = row[d.id] and row[d.id].status or "ready"
      -- (an id nothing holds or makes is an unknown card, said as such, not a card to wait for)
      if dst ~= "done" and (row[d.id] or set.by_id[d.id]) then
        local at = string.format("%s: %s: ", c.shown, c.path ~= "" and c.path or "id")
        if cur.status == "done" then
          return string.format("%s%s is done, so moved into epic %s it would be done work under an epic that waits "
            .. "for %s (%s): leave it in its epic, or drop %s from %s's depends_on", at, c.id, c.parent, d.id, dst,
            d.id, c.parent), c.anchor
        end
        return string.format("%s%s is %s, so moved into epic %s it would not wait for %s's dependency %s (%s) as "
          .. "its issues do (dependencies hold back only a start): leave %s in its epic until %s is done, or drop %s "
          .. "from %s's depends_on", at, c.id, cur.status, c.parent, c.parent, d.id, dst, c.id, d.id, d.id, c.parent),
          c.anchor
      end
    end
  end
  for _, c in ipairs(set.cards) do
    local cur = row[c.id]
    for _, d in ipairs(cur and c.type == "issue" and c.deps or {}) do
      local dst = row[d.id] and row[d.id].status or "ready" -- a card this import creates is ready
      -- (an id nothing holds or makes is an unknown card, said as such, not a new ready one)
      if dst ~= "done" and (row[d.id] or set.by_id[d.id]) and not had[c.id .. "\0" .. d.id] then
        local started = UNDER_WAY[cur.status] and c.id
        if started then
          local st, who = row[started].status, started
          local at = string.format("%s%s: %s: ", c.shown, M.own_deps_at(c),
            d.path)
          if st == "done" then
            return string.format("%s%s is done, so it was done without the new dependency %s (%s): drop the "
              .. "dependency, or give the work that needs %s to a new card that depends on it", at, who, d.id, dst,
              d.id), c.anchor
          end
          return string.format("%s%s is %s, so the new dependency %s (%s) would not hold it back (dependencies hold "
            .. "back only a start): drop the dependency, or cancel %s and give its work to a new card that depends "
            .. "on %s", at, who, st, d.id, dst, started, d.id), c.anchor
        end
      end
    end
  end
  return nil
end

-- Whether any of the statuses (a set) is one of work under way: neither ready nor finished
local function under_way(statuses)
  for st in pairs(statuses) do
    if st ~= "ready" and not board_mod.FINAL[st] then return true end
  end
  return false
end

--- late_dependency(set, row, had) -> message, anchor | nil: as above, for validate too
M.late_dependency = late_dependency
-- Whether two JSON texts (or nils) hold the same value: a store gives JSON back in its own
-- form (PostgreSQL's jsonb orders keys its way), and cjson's object order varies by run.
local function same_json(a, b)
  if a == nil or b == nil then return a == b end
  return a == b or jsonout.same(json.decode(a), json.decode(b))
end

local COMPARED = { "type", "parent", "name", "summary", "description", "note", "requirements",
  "acceptance", "priority", "seat", "department", "source" }

-- How a card gets to status `want` (id: the card's, or "ID" for several), for a file's
-- status the board does not have (status_notes)
local function status_how(want, id)
  if want == "canceled" then
    return string.format("orket cancel %s \"reason\" ends %s without review", id, id == "ID" and "each" or "it")
  end
  if want == "done" then
    return string.format("a run's review finishes it (orket run %s), or a person's move: POST /v1/cards/%s/move "
      .. "{\"to\":\"done\"}", id, id)
  end
  if want == "archived" then return string.format("POST /v1/cards/%s/move {\"to\":\"archived\"} archives it", id) end
  if want == "ready" then
    return string.format("orket retry %s puts a blocked card back to ready; one further on does not go back", id)
  end
  if want == "blocked" then
    return string.format("a person blocks it: POST /v1/cards/%s/move {\"to\":\"blocked\",\"reason\":\"resource\"}", id)
  end
  if want == "waiting_for_developer" then return "only a turn makes a card wait (a question, a held tool call)" end
  return string.format("a run moves it there as it works it (orket run %s)", id)
end

-- At most this many cards are named in one status note, then "and N more"
local STATUS_NAMED = 5

-- At most this many cards with a turn half done are read of one run (as
-- orket.engine.recorded reads them), and said of one import
local OPEN_READ, OPEN_SAID = 1001, 10

-- The notes of the issues this import moved to another parent (moved: {{card=, from=}...})
-- on which a run that did not finish (killed, stopped, or going now) has a turn half done:
-- that run, not the new parent's, finishes it (a new run of the parent is refused until
-- then: orket.engine.recorded.unfinished_overlap), then leaves the card to its new parent.
local function half_done_notes(db, moved)
  local out, n = {}, 0
  local runs = store_runs.unfinished(db)
  for _, r in ipairs(runs) do
    local open = {}
    for _, id in ipairs(journal_reads.open_turn_cards(db, r.id, OPEN_READ)) do open[id] = true end
    for _, m in ipairs(moved) do
      if open[m.card.id] then
        n = n + 1
        if n <= OPEN_SAID then
          out[#out + 1] = string.format("%s moved from %s to %s with a turn of run %d (%s) on it not finished: "
            .. "that run finishes the turn (a run going now, or 'orket resume %d' of one killed or stopped), then "
            .. "leaves %s to %s; until then a run of %s is refused, as it would redo that turn", m.card.id, tostring(m.from),
            tostring(m.card.parent), r.id, r.target, r.id, m.card.id, tostring(m.card.parent), tostring(m.card.parent))
        end
      end
    end
  end
  if n > OPEN_SAID then
    out[#out + 1] = string.format("and %d more cards moved with a turn of an unfinished run on them ('orket runs')",
      n - OPEN_SAID)
  end
  return out
end

-- The notes of the cards whose file gives a `status` (c.file_status) the board does not have
-- (now: id -> its status on the board, after this import; a new card is ready): one a file
-- and status given, at the first such card's field, naming its cards and the way to that
-- status. A person who writes "canceled" or "done" in a file to end a card was told nothing,
-- and the next run worked it. at(msg, anchor): the message with its line.
local function status_notes(cards, now, at)
  local groups, order = {}, {}
  for _, c in ipairs(cards) do
    local want, has = c.file_status, now[c.id] or "ready"
    if want and want ~= has then
      local key = c.shown .. "\0" .. want
      local g = groups[key]
      if not g then
        g = { card = c, cards = {} }
        groups[key], order[#order + 1] = g, key
      end
      g.cards[#g.cards + 1] = string.format("%s %s", c.id, has)
    end
  end
  local out = {}
  for _, key in ipairs(order) do
    local g = groups[key]
    local c, n = g.card, #g.cards
    local field = c.path == "" and "status" or (c.path .. ".status")
    local text
    if n == 1 then
      text = string.format("%q is not %s's status on the board (%s), and is read and ignored: a card's status changes "
        .. "only by its moves (%s)", c.file_status, c.id, g.cards[1]:match("%S+$"), status_how(c.file_status, c.id))
    else
      local named = table.concat(g.cards, ", ", 1, math.min(n, STATUS_NAMED))
      if n > STATUS_NAMED then named = string.format("%s and %d more", named, n - STATUS_NAMED) end
      text = string.format("%q is not the board's status of %d cards of this file (%s), and is read and ignored: a "
        .. "card's status changes only by its moves (%s)", c.file_status, n, named, status_how(c.file_status, "ID"))
    end
    out[#out + 1] = at(string.format("%s: %s: %s", c.shown, field, text), c.anchor)
  end
  return out
end

--- import(db, dir) -> {files=, cards=, created=, updated=, unchanged=, warnings=, followed=} | nil, msg, CODE.
--- followed: each status of an epic or rock on the board that the import's moves changed, to
--- be said (nil when none). emptied: {id=, type=, status=} of each epic or rock of the files
--- in progress (or review) that the moves left with no children (nil when none): it stays
--- so, to be said with the command that ends it.
--- Nothing is written when any file is invalid, a dependency is unknown or forms a cycle, or
--- a file new or changed since the last import has a field past the API's limits.
--- With the cards, the files' digests as read are recorded (imported_files, see changed).
--- set: what M.load(dir) gave, when the caller checked the files already: imported as it was
--- checked (a file edited since is not read again: what is written, the digests recorded and
--- the caller's warnings are of the same text, and a large epic is parsed once).
function M.import(db, dir, set)
  local err, code
  if not set then set, err, code = M.load(dir) end
  if not set then return nil, err, code end
  -- a refusal's line, found in the text that was checked, not in the file as it is now
  local function at(msg, anchor) return placed(dir, msg, anchor, set.texts) end
  local function dep_at(c, text) return dep_placed(dir, c, text, set.texts) end
  local b = board_mod.open(db)
  return db:tx(function()
    -- Dependencies resolve against the files, then the board.
    local existing, row = {}, {}
    for _, r in ipairs(imports.cards(db)) do
      existing[r.id], row[r.id] = r.type, r
    end
    -- the warnings said: the files' (set's, left as the caller has them) and the board's
    local warnings = table.move(set.warnings, 1, #set.warnings, 1, {})
    -- ids differing only in case: a pair in the files (link's) refused unless both are on
    -- the board already, then a new card against the board's (the board's one check)
    local refused, warned = M.case_pairs(set.cases or {}, function(id) return existing[id] ~= nil end)
    if refused[1] then return nil, at(refused[1].message, refused[1].anchor), "EINVAL" end
    for _, w in ipairs(warned) do warnings[#warnings + 1] = at(w.message, w.anchor) end
    -- a field past the API's limits: refused in a file new or changed since the last import
    -- (its record as this transaction reads it), else imported as it is, warned of
    local known = set.held and set.held[1] and imports.files(db)
    for _, h in ipairs(set.held or {}) do
      local over, kept = M.held_split(h.held, known, h.rel, h.digest)
      if over[1] then return nil, at(over[1].message, over[1].anchor), "EINVAL" end
      for _, k in ipairs(kept) do warnings[#warnings + 1] = at(k.message, k.anchor) .. "; " .. M.KEPT end
    end
    local new = {}
    for _, c in ipairs(set.cards) do
      if not existing[c.id] then new[#new + 1] = c.id end
    end
    local twins = board_mod.case_twins(db, new)
    local graph, nodes, waits = {}, {}, {}
    for _, c in ipairs(set.cards) do
      local other = twins[c.id]
      if other then
        return nil, at(string.format("%s: %s: card id %q differs only in case from %q on the board: %s",
          c.shown, c.path ~= "" and c.path or "id", c.id, other, M.CASE_CLASH), c.anchor), "EINVAL"
      end
      if existing[c.id] and existing[c.id] ~= c.type then
        return nil, at(string.format("%s: %s: card %q is a%s %s on the board, not a%s %s", c.shown,
          c.path ~= "" and c.path or "id", c.id, existing[c.id] == "epic" and "n" or "",
          existing[c.id], c.type == "rock" and "" or "n", c.type), c.anchor), "EINVAL"
      end
      local finished = M.finished_parent(c, row)
      if finished then return nil, at(finished, c.anchor), "EINVAL" end
      local ids, listed = {}, {}
      for _, d in ipairs(c.deps) do
        if not set.by_id[d.id] and not existing[d.id] then
          return nil, dep_at(c, string.format("%s: unknown card %q", d.path, d.id)), "EINVAL"
        end
        if d.id == c.id then
          return nil, dep_at(c, string.format("%s: a card cannot depend on itself", d.path)), "EINVAL"
        end
        -- a dependency listed twice is one (the board keeps one row): kept twice here, the
        -- card never compared equal, and every import journaled "depends_on changed"
        if not listed[d.id] then
          listed[d.id] = true
          ids[#ids + 1] = d.id
        end
      end
      graph[c.id] = ids
      nodes[#nodes + 1] = c.id
      waits[#waits + 1] = { id = c.id, type = c.type, parent = c.parent, deps = ids, status = row[c.id] and row[c.id].status }
    end
    local had = M.board_waits(db, row, set.by_id, waits)
    local cycle, via, old_cycle = M.cycle_of(waits, nodes, set.by_id)
    if cycle then
      local msg, anchor = M.cycle_problem(cycle, via, set.by_id)
      return nil, at(msg, anchor), "ECYCLE"
    end
    if old_cycle then warnings[#warnings + 1] = M.old_cycle_warning(old_cycle) end
    local late, lanchor = late_dependency(set, row, had)
    if late then return nil, at(late, lanchor), "EINVAL" end

    -- Parents before children (foreign keys), creation order kept within a type.
    local rank = { rock = 1, epic = 2, issue = 3 }
    local ordered = {}
    for r = 1, 3 do
      for _, c in ipairs(set.cards) do
        if rank[c.type] == r then ordered[#ordered + 1] = c end
      end
    end

    local created, updated, unchanged = 0, 0, 0
    local checks = imports.verifications(db) -- the issues' acceptance checks as stored
    -- the parents a card left or joined: they follow their children below
    local moved, left, joined = {}, {}, {}
    local followed, emptied = {}, {} -- what their following changed, and those left started and empty: said
    local moved_issues = {} -- {card=, from=}: issues given another parent (half_done_notes)
    for _, c in ipairs(ordered) do
      c.source = c.file
      local cur = existing[c.id] and b:get(c.id)
      local deps = graph[c.id]
      if cur and cur.parent ~= c.parent then
        if c.type == "issue" then moved_issues[#moved_issues + 1] = { card = c, from = cur.parent } end
        if cur.parent then moved[cur.parent], left[cur.parent] = true, true end
        if c.parent then
          -- what moved in, by status: said when the parent follows (under way, or finished)
          moved[c.parent] = true
          joined[c.parent] = joined[c.parent] or {}
          joined[c.parent][cur.status] = true
        end
      end
      -- A card made on the board (by a run, the API, orket bug: it has no source) that a
      -- file's card shares an id with: a run's START-3 and a new issue the operator
      -- numbered START-3 are two pieces of work, and taking it over would replace the
      -- run's definition and give the new work its status (done, say). Taken over only when
      -- the file gives it the board's summary (or name): defining that very card. The
      -- transaction returns nil, so nothing of this import is kept.
      if cur and not cur.source and (c.summary or c.name) ~= (cur.summary or cur.name) then
        return nil, at(string.format("%s: %s: card %q was made on the board, not imported (%q, %s): give this "
          .. "%s another id; or, to define that card in the file, give it the board's %s", c.shown,
          c.path ~= "" and c.path or "id", c.id, cur.summary or cur.name or "", cur.status, c.type,
          cur.summary and "summary" or "name"), c.anchor), "EINVAL"
      end
      if not cur then
        imports.insert_card(db, c)
        created = created + 1
        db:event { kind = "import", card = c.id, data = { source = c.source, created = true } }
      else
        local changed = {}
        for _, k in ipairs(COMPARED) do
          if cur[k] ~= c[k] then changed[#changed + 1] = k end
        end
        if table.concat(cur.depends_on, "\0") ~= table.concat(deps, "\0") then changed[#changed + 1] = "depends_on" end
        -- acceptance checks changed are a change of the card too: said as "0 updated" and
        -- journaled nowhere, a new check went unseen
        if c.type == "issue" and not same_json(checks[c.id], c.verification) then
          changed[#changed + 1] = "verification"
        end
        if #changed == 0 then
          unchanged = unchanged + 1
        else
          imports.update_card(db, c)
          imports.clear_dependencies(db, c.id)
          updated = updated + 1
          db:event { kind = "import", card = c.id, data = { source = c.source, changed = changed } }
        end
        c.keep_deps = #changed == 0
      end
    end
    -- Acceptance checks (engine/verify.lua), written apart from the compared fields.
    for _, c in ipairs(ordered) do
      if c.type == "issue" then
        imports.set_verification(db, c.id, c.verification)
      end
    end
    -- Dependencies after every card exists (they may point forward).
    for _, c in ipairs(ordered) do
      if not c.keep_deps then
        for i, d in ipairs(graph[c.id]) do
          imports.add_dependency(db, c.id, d, i)
        end
      end
    end
    -- A card moved between epics (or an epic between rocks) changes where both parents
    -- stand: the one it left may now have only finished children, the one it joined a
    -- started one. They follow their children as after a child's move (docs/board.md,
    -- "Parents follow their children"), epics before rocks, as the engine's moves, so the
    -- board does not show an epic in progress with all its work done, or ready with its
    -- work under way.
    if next(moved) then
      local parents, kind = {}, {}
      for id in pairs(moved) do
        local c = set.by_id[id] or row[id]
        if c then parents[#parents + 1], kind[id] = id, rank[c.type] end
      end
      table.sort(parents, function(x, y)
        if kind[x] ~= kind[y] then return kind[x] > kind[y] end
        return x < y
      end)
      local after = board_mod.open(db) -- the cards as this import left them
      for _, id in ipairs(parents) do
        after:follow(id)
        -- A parent with no children stays as it is (the board's rule: a new epic takes its
        -- issues later). One started whose children all moved away stays in progress, a
        -- rock above it unfinished: said, for a person to give it work or end it (orket
        -- cancel), a decision nobody made by moving issues. One epics/ no longer defines is
        -- said among the cards gone from it.
        local p = after:get(id)
        if p and set.by_id[id] and (p.status == "in_progress" or p.status == "code_review")
            and cards_store.child_count(db, id) == 0 then
          emptied[#emptied + 1] = { id = id, type = p.type, status = p.status }
        end
      end
      -- said, as a run's moves are: a finished epic takes no work back, so moving an issue
      -- back into one that its last unfinished issue left is refused later. A rock above
      -- follows its epic in turn (Board:transition): said too.
      local said, seen = {}, {}
      for _, id in ipairs(parents) do
        local up = id
        while up and not seen[up] do
          seen[up] = true
          said[#said + 1] = up
          local c = after:get(up)
          up = c and c.parent
        end
      end
      table.sort(said, function(x, y)
        local kx, ky = rank[(row[x] or set.by_id[x]).type], rank[(row[y] or set.by_id[y]).type]
        if kx ~= ky then return kx > ky end
        return x < y
      end)
      for _, id in ipairs(said) do
        local was, now = row[id] and row[id].status, after:get(id)
        if was and now and was ~= now.status then
          -- said from what the moves did to it: a parent that took finished work lost none
          local all = now.status == "done" and "finished" or "canceled"
          local why = not moved[id] and "its children followed the moves"
            or now.status == "in_progress" and (joined[id] and (under_way(joined[id])
              and "one of its children under way moved in" or "a finished child moved in") or "its children moved")
            or not board_mod.FINAL[now.status] and "its children moved"
            or not joined[id] and (now.status == "done" and "its unfinished children moved away, and the rest is finished"
              or "its unfinished children moved away, and the rest was canceled")
            or not left[id] and ("finished children moved in, and all its children are " .. all)
            or ("its children moved, and all of them are " .. all)
          followed[#followed + 1] = string.format("%s %s: %s -> %s (%s)%s", now.type, id, was, now.status, why,
            board_mod.FINAL[now.status] and string.format("; a finished %s takes no new work: put any in a new %s",
              now.type, now.type) or "")
        end
      end
    end
    -- a status given in the files that is not the board's: said (the board's, after the moves)
    for _, c in ipairs(set.cards) do
      if c.file_status then
        local now = {}
        for _, r in ipairs(imports.cards(db)) do now[r.id] = r.status end
        local notes = status_notes(set.cards, now, at)
        table.move(notes, 1, #notes, #warnings + 1, warnings)
        break
      end
    end
    -- an issue moved with a turn of an unfinished run on it: said, with what finishes it
    if moved_issues[1] then
      local notes = half_done_notes(db, moved_issues)
      table.move(notes, 1, #notes, #warnings + 1, warnings)
    end
    -- what this import read, replacing the last one's record
    imports.replace_files(db, set.digests)
    return { files = set.files, cards = #set.cards, created = created, updated = updated, unchanged = unchanged,
      warnings = warnings, followed = followed[1] and followed or nil, emptied = emptied[1] and emptied or nil }
  end)
end

--- changed(db, dir) -> array of the epics/ files ("epics/x.json") that are new or differ
--- from what the last import read, in path order, then those it read that are gone
--- ("epics/x.json (removed)"); {} when none, when there is no epics/
--- folder, or when no import has been recorded (a board imported by an orket before store
--- version 9, or never imported). Reads the files; changes nothing. A file or folder that
--- cannot be read (too many open files, a refused access) is neither changed nor removed:
--- the second result says which and why, "epics/x.json: ...; ..." (nil when all were read).
--- A file that is no longer one the import takes (too large, not a regular file, not text)
--- did change.
function M.changed(db, dir)
  local known, any = imports.files(db)
  if not any then return {} end
  local files, lerr, lcode = list_files(dir)
  if not files then return {}, lcode ~= "ENOENT" and lerr or nil end
  local out, unread = {}, {}
  for _, f in ipairs(files) do
    local text, rerr, rcode = read_file(f.path)
    if text then
      if known[f.rel] ~= digest(text) then out[#out + 1] = f.rel end
    elseif CHANGED_UNREAD[rcode] then
      out[#out + 1] = f.rel
    elseif rcode ~= "ENOENT" then -- (gone since the listing: removed, below)
      unread[#unread + 1] = tostring(rerr)
    end
    if rcode ~= "ENOENT" then known[f.rel] = nil end
  end
  -- what the last import read and is gone now (its cards stay on the board until then)
  local gone = {}
  for rel in pairs(known) do gone[#gone + 1] = rel end
  table.sort(gone)
  for _, rel in ipairs(gone) do out[#out + 1] = rel .. " (removed)" end
  return out, unread[1] and table.concat(unread, "; ") or nil
end

return M
