-- orket.c.proc's sessions = true (a sandbox's services): setsid passes the seccomp layer
-- only when the run has a PID namespace of its own, whose end takes every session; without
-- the option, or without that namespace, seccomp refuses it as before.
local proc = require "orket.c.proc"
local H = require "tests.helpers"

local offered = proc.probe()

-- -> the run's result, the set of the layers it applied
local function setsid(o)
  local ws = H.tmpdir()
  local r, msg, code = proc.run { argv = { "sh", "-c", "setsid echo in-a-session-of-its-own" }, cwd = ws,
    timeout_ms = 10000, sessions = o.sessions, layers = o.layers }
  assert.is_table(r, tostring(msg) .. " " .. tostring(code))
  local on = {}
  for _, name in ipairs(r.layers) do on[name] = true end
  return r, on
end

describe("setsid in a confined run", function()
  after_each(H.cleanup)

  it("passes the seccomp layer with sessions = true and a PID namespace of its own", function()
    if not (offered.seccomp and offered.pidns) then
      return pending("skipped: the kernel offers no seccomp or no PID namespace here")
    end
    local r, on = setsid { sessions = true }
    assert.is_true(on.seccomp, "seccomp applied")
    assert.is_true(on.pidns, "pidns applied")
    assert.equal("in-a-session-of-its-own\n", r.stdout)
  end)

  it("is refused without sessions = true, or without the PID namespace", function()
    if not offered.seccomp then return pending("skipped: the kernel offers no seccomp here") end
    for _, o in ipairs { {}, { sessions = true, layers = { pidns = false } } } do
      local r, on = setsid(o)
      assert.is_true(on.seccomp, "seccomp applied")
      assert.equal("", r.stdout)
      assert.matches("setsid failed: Operation not permitted", r.stderr)
    end
  end)

  it("takes a boolean", function()
    assert.has_error(function() proc.run { argv = { "true" }, cwd = "/tmp", sessions = "yes" } end,
      "bad argument #1 to 'run' (sessions must be a boolean)")
  end)
end)
