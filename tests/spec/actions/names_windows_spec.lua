-- Names a Windows teammate's project holds that Orket on Linux did not read and said nothing
-- of: Notepad's x.lua.txt and web.json.txt, folders and files in another letter case
-- (Policies/, Epics/, Orket.lua, roles/Coder.lua beside the built-in coder), names a Windows
-- clone cannot check out; and a byte order mark or UTF-16 in a secret and a package.json.
local H = require "tests.helpers"
local scriptfile = require "orket.scriptfile"
local validate = require "orket.validate"
local import = require "orket.import"
local config = require "orket.config"
local policy = require "orket.policy"
local roles = require "orket.engine.roles"
local secrets = require "orket.store.secrets"
local plan = require "orket.sandboxes.plan"
local ss = require "orket.settings.sandbox"
local workspace = require "orket.workspace"
local rt = require "orket.c.runtime"

local ORKET = [[
name = "names"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
concurrency = 1
]]

local EPIC = '{ "id": "W", "name": "web", "issues": [ { "id": "W-1", "summary": "x", "seat": "senior_developer" } ] }\r\n'
local DENY = 'deny{ tool = "run_command", reason = "no shell in this project" }\r\n'
local ROLE = 'return { intent = "x", tools = {}, system = "WINDOWS-EDITED" }\r\n'

local function project(files)
  local dir = H.tmpdir()
  local all = { ["orket.lua"] = ORKET, ["script.lua"] = 'return { rules = {}, default = { content = "done" } }\n' }
  for name, text in pairs(files or {}) do all[name] = text end
  for name, text in pairs(all) do
    if text then
      os.execute("mkdir -p " .. H.quote((dir .. "/" .. name):match("^(.*)/")))
      H.write(dir .. "/" .. name, text)
    end
  end
  return dir
end

-- validate's problems or warnings, "file: message"
local function said(list)
  local out = {}
  for _, p in ipairs(list) do out[#out + 1] = validate.format(p) end
  table.sort(out)
  return table.concat(out, "\n")
end

local function has(text, what) return text:find(what, 1, true) ~= nil end

describe("a Windows teammate's names", function()
  after_each(H.cleanup)

  it("refuse a script saved by Notepad as NAME.lua.txt, in validate and in a run's load", function()
    local dir = project { ["policies/no_shell.lua.txt"] = DENY, ["roles/coder.lua.txt"] = ROLE }
    local problems = validate.check(dir)
    local text = said(problems)
    assert.truthy(has(text, "policies/no_shell.lua.txt: not read: its name ends in .txt, as Windows Notepad saves"),
      text)
    assert.truthy(has(text, "rename it policies/no_shell.lua"), text)
    assert.truthy(has(text, "roles/coder.lua.txt: not read: its name ends in .txt"), text)
    assert.truthy(has(text, "rename it roles/coder.lua"), text)
    -- the run's loaders (orket.engine.reload.load): refused, not read as no policy
    local _, perr, pcode = policy.files_in({ rt.home() .. "/policies", dir .. "/policies" }, dir)
    assert.equal("EINVAL", pcode)
    assert.truthy(has(perr, "policies/no_shell.lua.txt: not read"), perr)
    local set, rerr = roles.load(roles.dirs(dir), dir)
    assert.is_nil(set)
    assert.truthy(has(rerr, "roles/coder.lua.txt: not read"), rerr)
    -- saved during a run, the hot reload's digest moves, so the reload that refuses it comes
    -- (no digest moved, and nothing was said until a reload from another cause)
    local reload = require "orket.engine.reload"
    local live = project {}
    assert(os.execute("mkdir -p " .. H.quote(live .. "/policies")))
    local before = reload.digest(live)
    H.write(live .. "/policies/no_shell.lua.txt", DENY)
    local after = reload.digest(live)
    assert.is_not.same(before, after)
    -- other endings stay an editor's (docs/roles.md: x.lua.orig, notes.txt)
    local other = project { ["policies/x.lua.orig"] = DENY, ["policies/notes.txt"] = "n", ["policies/x.txt"] = "n" }
    local plist, oerr = scriptfile.list(other .. "/policies", "policies")
    assert.same({}, plist)
    assert.is_nil(oerr)
  end)

  it("warn of an epic saved as web.json.txt, naming the name meant", function()
    local dir = project { ["epics/web.json.txt"] = EPIC }
    local problems, _, warnings = validate.check(dir)
    assert.equal("", said(problems))
    assert.truthy(has(said(warnings), "epics/web.json.txt: not read: its name ends in .txt, as Windows Notepad saves"),
      said(warnings))
    assert.truthy(has(said(warnings), "rename it epics/web.json"), said(warnings))
    local files = assert(import.list_files(dir))
    assert.equal(1, #files.skipped)
  end)

  it("name a script folder, epics/ and orket.lua there in another letter case", function()
    local dir = project { ["Policies/no_shell.lua"] = DENY, ["Roles/coder.lua"] = ROLE }
    local text = said((validate.check(dir)))
    assert.truthy(has(text, "policies: not there; Policies/ is there, which differs from it only in letter case"),
      text)
    assert.truthy(has(text, "roles: not there; Roles/ is there"), text)
    assert.truthy(has(text, "rename it policies/"), text)
    local _, perr, pcode = policy.files_in({ rt.home() .. "/policies", dir .. "/policies" }, dir)
    assert.equal("ENOENT", pcode)
    assert.truthy(has(perr, "policies: not there; Policies/ is there"), perr)
    -- no folder and no variant: no scripts, as before
    assert.is_nil(select(2, scriptfile.list(dir .. "/tools", "tools")))

    local e = project { ["Epics/web.json"] = EPIC, ["orket.lua"] = false, ["Orket.lua"] = ORKET }
    local etext = said((validate.check(e)))
    assert.truthy(has(etext, "orket.lua: not found; Orket.lua is there, which differs from it only in letter case"),
      etext)
    assert.truthy(has(config.not_a_project(e, "ENOENT"), "Orket.lua is there"))
    local _, ierr = import.list_files(e)
    assert.truthy(has(ierr, "no such folder; Epics/ is there, which differs from it only in letter case"), ierr)
    assert.truthy(has(ierr, "rename it epics/"), ierr)
  end)

  it("refuse a role or policy file differing only in case from a built-in one", function()
    local dir = project { ["roles/Coder.lua"] = ROLE, ["policies/Default.lua"] = DENY }
    local text = said((validate.check(dir)))
    assert.truthy(has(text, "roles/Coder.lua: differs only in case from the built-in role coder"), text)
    assert.truthy(has(text, "rename it roles/coder.lua"), text)
    assert.truthy(has(text, "policies/Default.lua: differs only in case from the built-in policy file default"), text)
    -- the same name replaces it, as before
    local same = project { ["roles/coder.lua"] = ROLE, ["epics/web.json"] = EPIC }
    assert.equal("", said((validate.check(same))))
  end)

  it("refuse names a Windows clone cannot check out, unless portable_names is off", function()
    local files = {
      ["epics/aux.json"] = (EPIC:gsub('"W', '"AUXEPIC')), ["epics/PRN/web.json"] = (EPIC:gsub('"W', '"PE')),
      ["epics/what?.json"] = (EPIC:gsub('"W', '"Q')), ["roles/con.lua"] = ROLE, ["policies/nul.lua"] = DENY,
      ["epics/a|b.json"] = (EPIC:gsub('"W', '"AB')),
    }
    local dir = project(files)
    local text = said((validate.check(dir)))
    for _, name in ipairs { "epics/aux.json", "epics/PRN/", "epics/what?.json", "roles/con.lua", "policies/nul.lua",
      "epics/a|b.json" } do
      assert.truthy(has(text, name .. ": the name "), name .. " in:\n" .. text)
    end
    assert.truthy(has(text, "cannot be checked out on Windows: Windows reads it as a device"), text)
    files["orket.lua"] = ORKET .. "workspace = { portable_names = false }\n"
    assert.equal("", said((validate.check(project(files)))))
  end)

  it("say a secret saved as UTF-16, or holding a byte order mark, as what it is", function()
    assert.equal("is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8",
      secrets.bad_value("\255\254g\0h\0p\0\r\0\n\0"))
    assert.truthy(has(secrets.bad_value("g\0h\0p\0_\0"), "UTF-16"))
    assert.truthy(has(secrets.bad_value("\239\187\191ghp_abc"), "holds a byte order mark (U+FEFF) at byte 1"))
    -- a NUL or a line break alone is still a pasted line break
    assert.truthy(has(secrets.bad_value("ghp\nabc"), "line break at byte 4"))
    assert.is_nil(secrets.bad_value("ghp_abc123"))
  end)

  it("plan a package.json with a byte order mark as npm runs it; say UTF-16 as such", function()
    local function detect(text)
      local dir = H.tmpdir()
      H.write(dir .. "/package.json", text)
      H.write(dir .. "/server.js", "")
      local ws = assert(workspace.open(dir))
      local p, err, _, why = plan.detect(ws, ss.sandbox { sandbox = nil })
      ws:close()
      return p, err, why
    end
    local p = detect('\239\187\191{\r\n  "name": "app",\r\n  "scripts": { "start": "node server.js" }\r\n}\r\n')
    assert.truthy(p, "no plan")
    assert.equal("node", p.stack)
    assert.equal("npm start", table.concat(p.command, " "))
    local _, err, why = detect('\255\254{\0}\0')
    assert.truthy(err)
    assert.truthy(has(table.concat(why or {}, "\n") .. tostring(err), "package.json is saved as UTF-16 or UTF-32, not UTF-8"),
      tostring(err))
  end)
end)
