-- orket.engine.reload: a script folder that cannot be listed is refused, never read as
-- empty; a script emptied mid-run (a save in progress) is held at its loaded version; a
-- refusal for a provider orket.lua added mid-run says the run keeps its models; a broken
-- orket.lua is among `problems`; a role that is a link to nothing names its target.
local H = require "tests.helpers"
local uv = require "luv"
local project = require "orket.project"
local import = require "orket.import"
local setup = require "orket.engine.setup"
local reload = require "orket.engine.reload"
local config = require "orket.config"
local scriptfile = require "orket.scriptfile"
local validate = require "orket.validate"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function notes_project()
  local dir = H.tmpdir()
  os.execute("cp -R " .. q(H.ROOT .. "/examples/notes/.") .. " " .. q(dir))
  local db = assert(project.open_store(dir, true))
  assert(import.import(db, dir))
  db:close()
  os.execute("mkdir " .. q(dir .. "/roles") .. " " .. q(dir .. "/policies"))
  return dir
end

local function open(dir)
  local events = {}
  local e = assert(setup.open(dir, { emit = function(ev) events[#events + 1] = ev end }))
  return e, events
end

local function count(events, ty)
  local n = 0
  for _, ev in ipairs(events) do if ev.type == ty then n = n + 1 end end
  return n
end

-- the policy set's verdict on a write_file call by the coder
local function writes_denied(e)
  for _, rule in ipairs(e.policies.rules) do
    if rule.tool == "write_file" and rule.level == "deny" then return true end
  end
  return false
end

local FREEZE = "deny { tool = \"write_file\", reason = \"operator freeze\" }\n"

-- uv.fs_scandir failing as for a folder the process may not read (EACCES): root reads any
-- mode, and the specs run as root in CI. Restored by the returned function.
local function unreadable(path)
  local real = uv.fs_scandir
  uv.fs_scandir = function(p, ...)
    if p == path then return nil, "EACCES: permission denied: " .. p, "EACCES" end
    return real(p, ...)
  end
  return function() uv.fs_scandir = real end
end

describe("a script folder that cannot be listed", function()
  after_each(function() H.cleanup() end)

  it("is an error from scriptfile.list, and {} only when the folder is not there", function()
    local dir = H.tmpdir()
    assert.same({}, (scriptfile.list(dir .. "/none")))
    assert.is_nil(select(2, scriptfile.list(dir .. "/none")))
    os.execute("mkdir " .. q(dir .. "/policies"))
    local restore = unreadable(dir .. "/policies")
    local list, err, code = scriptfile.list(dir .. "/policies", "policies")
    restore()
    assert.same({}, list)
    assert.equal("EACCES", code)
    assert.equal("policies: cannot be listed (EACCES: permission denied)", err)
  end)

  it("is named by orket validate and refused by a run's setup", function()
    local dir = notes_project()
    H.write(dir .. "/policies/freeze.lua", FREEZE)
    local restore = unreadable(dir .. "/policies")
    local ok, report = pcall(validate.check, dir)
    local e, err, code = setup.open(dir, {})
    local ferr, fcode = config.script_folders(dir)
    restore()
    assert(ok, report)
    assert.is_nil(e)
    assert.equal("EACCES", code)
    assert.matches("^policies: cannot be listed %(EACCES: permission denied%)", err)
    assert.equal("EACCES", fcode)
    assert.equal(err, ferr)
    local found
    for _, p in ipairs(report.problems or report) do
      if type(p) == "table" and p.file == "policies" and tostring(p.message):find("EACCES", 1, true) then found = p end
    end
    assert.is_table(found, "orket validate names policies/ and EACCES")
  end)

  it("mid-run is a reload_error that keeps the project's policies, never a reload without them", function()
    local dir = notes_project()
    H.write(dir .. "/policies/freeze.lua", FREEZE)
    local e, events = open(dir)
    local kept = e.policies
    assert.is_true(writes_denied(e))
    local restore = unreadable(dir .. "/policies")
    local ok, err, code = reload.apply(e, { ["policies/freeze.lua"] = true })
    restore()
    assert.is_nil(ok)
    assert.equal("EACCES", code)
    assert.matches("^policies: cannot be listed %(EACCES", err)
    assert.equal(kept, e.policies)
    assert.equal(0, count(events, "reload"))
    local last = events[#events]
    assert.equal("reload_error", last.type)
    assert.matches("^policies: cannot be listed", last.problems[1])
    e.close_all()
  end)

  it("made unreadable after the folders were checked is refused by the loaders too", function()
    local dir = notes_project()
    H.write(dir .. "/roles/coder.lua", "return { intent = 'own', tools = {}, system = 's' }\n")
    H.write(dir .. "/policies/freeze.lua", FREEZE)
    local e = open(dir)
    local real = config.script_folders
    config.script_folders = function() return nil end -- as if the check ran before the chmod
    for _, name in ipairs { "roles", "policies" } do
      local restore = unreadable(dir .. "/" .. name)
      local ok, s, err, code = pcall(reload.load, dir)
      restore()
      if not ok then config.script_folders = real error(s) end
      assert.is_nil(s)
      assert.equal("EACCES", code)
      assert.equal(name .. ": cannot be listed (EACCES: permission denied)", err)
    end
    config.script_folders = real
    e.close_all()
  end)
end)

describe("a script emptied during a run", function()
  after_each(function() H.cleanup() end)

  it("is held as a save in progress: the policy's denies stay until it has content, said once", function()
    local dir = notes_project()
    H.write(dir .. "/policies/freeze.lua", FREEZE)
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 }) -- only trigger() reloads here
    assert.is_true(writes_denied(e))
    -- an editor's save: truncated, the text written later than the quiet period
    H.write(dir .. "/policies/freeze.lua", "")
    w:touch("policies/freeze.lua")
    assert.is_true(w:trigger())
    assert.is_true(writes_denied(e))
    assert.equal(0, count(events, "reload"))
    assert.equal(1, count(events, "reload_held"))
    local ev = events[#events]
    assert.equal("reload_held", ev.type)
    assert.equal("policies/freeze.lua", ev.file)
    assert.same({ "policies/freeze.lua" }, ev.files)
    assert.matches("policies/freeze.lua is empty, taken for a save in progress", ev.message)
    local row = e.db:row("SELECT data FROM events WHERE kind = 'reload_held'")
    assert.equal("policies/freeze.lua", require("cjson").decode(row.data).file)
    -- another edit meanwhile is taken, the held file still at its loaded version; the hold
    -- is not said again while it stands
    H.write(dir .. "/roles/coder.lua", "return { intent = 'OTHER', tools = {}, system = 's' }\n")
    w:touch("roles/coder.lua")
    assert.is_true(w:trigger())
    assert.equal("OTHER", e.roles.by_name.coder.intent)
    assert.is_true(writes_denied(e))
    assert.same({ "roles/coder.lua" }, events[#events].files)
    assert.equal(1, count(events, "reload_held"))
    -- the text written: reloaded as usual
    H.write(dir .. "/policies/freeze.lua", "deny { tool = \"delete_file\", reason = \"v2\" }\n")
    w:touch("policies/freeze.lua")
    assert.is_true(w:trigger())
    assert.is_false(writes_denied(e))
    assert.same({ "policies/freeze.lua" }, events[#events].files)
    w:close()
    e.close_all()
  end)

  it("holds a role, a tool and orket.lua alike; removing the file removes the script", function()
    local dir = notes_project()
    os.execute("mkdir " .. q(dir .. "/tools"))
    H.write(dir .. "/tools/shout.lua", "return { name = 'shout', description = 'Shouts.', effect = 'read',\n"
      .. "  handler = function(args) return { said = 'HEY' } end }\n")
    H.write(dir .. "/roles/coder.lua", "return { intent = 'OWN', tools = { 'shout' }, system = 's' }\n")
    local e, events = open(dir)
    local orket_text = H.read(dir .. "/orket.lua")
    for _, f in ipairs { "roles/coder.lua", "tools/shout.lua", "orket.lua" } do H.write(dir .. "/" .. f, "") end
    local ok, err = reload.apply(e, { ["roles/coder.lua"] = true, ["tools/shout.lua"] = true, ["orket.lua"] = true })
    assert.is_true(ok, err)
    assert.equal("OWN", e.roles.by_name.coder.intent)
    assert.is_table(e.tools:get("shout"))
    assert.equal(0, count(events, "reload_error"))
    assert.same({ "orket.lua", "roles/coder.lua", "tools/shout.lua" }, events[#events].files)
    assert.matches("are empty", events[#events].message)
    -- orket.lua back as it was, the role removed: the built-in coder, which lists no shout
    H.write(dir .. "/orket.lua", orket_text)
    os.remove(dir .. "/roles/coder.lua")
    os.remove(dir .. "/tools/shout.lua")
    assert.is_true(reload.apply(e, { ["roles/coder.lua"] = true, ["tools/shout.lua"] = true }))
    assert.matches("careful software developer", e.roles.by_name.coder.system({ seat = "x" }) or "")
    assert.is_nil(e.tools:get("shout"))
    e.close_all()
  end)

  it("holds a new empty file as not there, a built-in of its name kept", function()
    local dir = notes_project()
    local e = open(dir)
    local n = #e.policies.rules
    H.write(dir .. "/policies/default.lua", "") -- would replace Orket's default policies
    assert.is_true(reload.apply(e, { ["policies/default.lua"] = true }))
    assert.equal(n, #e.policies.rules)
    -- and at a later reload of another file, which swaps in a new set: the built-in stays
    H.write(dir .. "/roles/coder.lua", "return { intent = 'x', tools = { 'read_file' }, system = function() return 'later' end }\n")
    assert.is_true(reload.apply(e, { ["roles/coder.lua"] = true }))
    assert.equal("later", e.roles.by_name.coder.system({ seat = "x" }))
    assert.equal(n, #e.policies.rules)
    -- so for a tool: an empty tools/write_file.lua leaves the built-in write_file
    os.execute("mkdir -p " .. q(dir .. "/tools"))
    H.write(dir .. "/tools/write_file.lua", "")
    assert.is_true(reload.apply(e, { ["tools/write_file.lua"] = true }))
    H.write(dir .. "/roles/coder.lua", "return { intent = 'x', tools = { 'write_file' }, system = function() return 'again' end }\n")
    assert.is_true(reload.apply(e, { ["roles/coder.lua"] = true }))
    assert.is_table(e.tools:get("write_file"))
    e.close_all()
  end)
end)

describe("a reload refused", function()
  after_each(function() H.cleanup() end)

  it("for a provider orket.lua added mid-run says the run keeps its models and what to do", function()
    local dir = notes_project()
    local e, events = open(dir)
    local text = H.read(dir .. "/orket.lua")
    local added = text:gsub("providers = {", "providers = { p2 = { kind = \"scripted\", rules = {}, default = "
      .. "{ content = \"ok\" } },", 1)
    assert.not_equal(text, added)
    H.write(dir .. "/orket.lua", added)
    H.write(dir .. "/roles/coder.lua", "return { intent = 'x', tools = {}, system = 's',\n  model = 'p2:x' }\n")
    local ok, err = reload.apply(e, { ["orket.lua"] = true, ["roles/coder.lua"] = true })
    assert.is_nil(ok)
    assert.matches("roles/coder%.lua:2: model: names provider 'p2', which is not configured", err)
    assert.matches("orket.lua configures p2 now, but a run keeps orket.lua's models from its start", err, 1, true)
    assert.matches("orket resume", err, 1, true)
    assert.equal(err, events[#events].error)
    -- a provider configured nowhere: the message as it was
    H.write(dir .. "/roles/coder.lua", "return { intent = 'x', tools = {}, system = 's',\n  model = 'nope:x' }\n")
    ok, err = reload.apply(e, { ["roles/coder.lua"] = true })
    assert.is_nil(ok)
    assert.not_matches("keeps orket.lua's models", err, 1, true)
    e.close_all()
  end)

  it("for a broken orket.lua lists its error in problems", function()
    local dir = notes_project()
    local e, events = open(dir)
    local f = assert(io.open(dir .. "/orket.lua", "a"))
    f:write("x = = 1\n")
    f:close()
    local ok, err, code = reload.apply(e, { ["orket.lua"] = true })
    assert.is_nil(ok)
    assert.equal("ESYNTAX", code)
    local ev = events[#events]
    assert.equal("reload_error", ev.type)
    assert.equal(1, #ev.problems)
    assert.equal(err, ev.problems[1])
    assert.matches("^orket.lua:%d+: ", ev.problems[1])
    -- with a broken role too: both
    H.write(dir .. "/roles/coder.lua", "return {{\n")
    reload.apply(e, { ["roles/coder.lua"] = true })
    ev = events[#events]
    assert.equal(2, #ev.problems)
    assert.matches("^orket.lua:", ev.problems[1])
    assert.matches("^roles/coder.lua:", ev.problems[2])
    e.close_all()
  end)
end)

describe("a role that is a link to a missing file", function()
  after_each(function() H.cleanup() end)

  it("is said naming the link's target", function()
    local dir = H.tmpdir()
    assert(uv.fs_symlink("/nonexistent/dir/coder.lua", dir .. "/coder.lua"))
    local text, err, code = scriptfile.read(dir .. "/coder.lua")
    assert.is_nil(text)
    assert.equal("ENOENT", code)
    assert.matches("%(a link to /nonexistent/dir/coder.lua, which does not exist%)$", err)
    -- a plain missing file: no link named
    local _, err2 = scriptfile.read(dir .. "/gone.lua")
    assert.not_matches("a link to", err2, 1, true)
  end)
end)
