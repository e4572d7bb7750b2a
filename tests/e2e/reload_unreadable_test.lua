-- A script folder that is there but cannot be listed (mode 000 for the user Orket runs as):
-- read as empty, orket validate said ok, orket gate check allowed what the project's deny
-- refuses and a run used the built-in policies. Now each names the folder and the errno.
-- Root reads any mode, so the commands run as nobody (setpriv), as a non-root user would.
local H = require "tests.helpers"
local uv = require "luv"

local NOBODY = "setpriv --reuid=nobody --regid=nogroup --clear-groups"

-- why a command cannot run here as another user who is refused mode 000, or nil
local function no_other_user()
  if uv.getuid() ~= 0 then
    return "the tests do not run as root: this user's own chmod 000 is the check, and it cannot run as nobody"
  end
  if not (os.execute("command -v setpriv >/dev/null 2>&1") and os.execute("id nobody >/dev/null 2>&1")) then
    return "no setpriv or no 'nobody' user to run the commands as a user a folder's mode refuses"
  end
end

-- A project nobody can reach and write (its store too), or nil, why
local function project()
  local dir = H.tmpdir() .. "/p"
  assert(uv.fs_mkdir(dir, tonumber("755", 8)))
  H.write(dir .. "/orket.lua", [[
name = "perm"
vision = "x"
models = { default = "scripted:m", providers = { scripted = { kind = "scripted", rules = {}, default = { content = "ok" } } } }
team = { dev = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
  assert(uv.fs_mkdir(dir .. "/epics", tonumber("755", 8)))
  H.write(dir .. "/epics/start.json", '{"id":"START","name":"First","description":"x","issues":[{"id":"START-1",'
    .. '"summary":"Write a file","seat":"dev","description":"Create a.txt","acceptance":["a.txt exists"]}]}')
  assert(uv.fs_mkdir(dir .. "/policies", tonumber("755", 8)))
  H.write(dir .. "/policies/freeze.lua", "deny { tool = \"write_file\", reason = \"no writes, operator freeze\" }\n")
  os.execute("chown -R nobody:nogroup " .. H.quote(dir) .. " && chmod a+x " .. H.quote(dir:match("^(.*)/p$")))
  -- each folder above must let nobody through (the test's scratch may be 0700)
  if not os.execute(NOBODY .. " test -r " .. H.quote(dir .. "/orket.lua")) then
    return nil, "nobody cannot reach the test's scratch folder " .. H.scratch() .. " (a folder above it is closed)"
  end
  return dir
end

local function as_nobody(args, dir)
  return H.orket(args, { cwd = dir, wrap = NOBODY .. " env HOME=" .. H.quote(dir), env = { ORKET_HOME = H.ROOT } })
end

describe("a script folder that cannot be listed", function()
  after_each(H.cleanup)

  it("is named by validate and refused by gate check and run, never read as empty", function()
    local why = no_other_user()
    if why then return pending(why) end
    local dir, perr = project()
    if not dir then return pending(perr) end
    local args = "gate check --role coder --tool write_file --args '{\"path\":\"a.txt\",\"content\":\"x\"}'"
    local r = as_nobody(args, dir)
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("^deny %(POLICY_DENY%)", r.stdout)
    local v = as_nobody("validate", dir)
    assert.equal(0, v.status, v.stdout .. v.stderr)
    local imp = as_nobody("import", dir)
    assert.equal(0, imp.status, imp.stdout .. imp.stderr)
    os.execute("chmod 000 " .. H.quote(dir .. "/policies"))
    local said = "policies: cannot be listed (EACCES: permission denied): its scripts would not be read and the "
      .. "built-in ones used in their place"
    r = as_nobody(args, dir)
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.not_matches("allow", r.stdout, 1, true)
    assert.matches("orket: " .. said, r.stderr, 1, true)
    r = as_nobody("validate", dir)
    assert.equal(1, r.status, r.stdout)
    assert.matches(said, r.stdout, 1, true)
    r = as_nobody("run START", dir)
    assert.not_equal(0, r.status)
    assert.matches("orket: " .. said, r.stderr, 1, true)
    os.execute("chmod 755 " .. H.quote(dir .. "/policies"))
  end)
end)
