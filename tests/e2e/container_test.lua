-- The process runner where namespaces are refused, as in a default Docker container: Docker's
-- default seccomp profile refuses unshare and clone with namespace flags to a container
-- without CAP_SYS_ADMIN. nsdeny (tests/tools/nsdeny.c) runs orket under those rules. The
-- report names each missing layer with the kernel's refusal, a project requiring one fails
-- closed, and the whole hostile suite (tests/spec/core/proc_spec.lua) still holds with the
-- layers that remain (spawned with uv_spawn, as where pidfd_open is refused too).
local H = require "tests.helpers"
local uv = require "luv"

local NSDENY = H.BIN:gsub("orket$", "nsdeny")

local function orket_lua(dir, code, flags)
  local f = dir .. "/report.lua"
  H.write(f, code)
  local p = io.popen(string.format("%s %s %s lua %s 2>&1", H.quote(NSDENY), flags or "", H.quote(H.BIN), H.quote(f)))
  local out = p:read("a")
  local ok, _, status = p:close()
  return out, ok and 0 or status
end

describe("the process runner in a default container (namespaces refused)", function()
  after_each(H.cleanup)

  for _, flags in ipairs { "", "--no-pidfd" } do
  it("reports each missing layer with why, applies the others, and fails closed when one is required "
    .. (flags == "" and "(helper spawned with posix_spawn)" or "(pidfd_open refused: helper spawned with uv_spawn)"), function()
    local dir = H.tmpdir()
    assert(os.execute("mkdir " .. H.quote(dir .. "/ws")))
    local out, status = orket_lua(dir, string.format([[
local proc = require "orket.c.proc"
local r = assert(proc.run { argv = { "sh", "-c", "echo > %s/outside.txt && echo written" }, cwd = %q })
print("layers: " .. table.concat(r.layers, " "))
local names = {}
for n in pairs(r.missing) do names[#names + 1] = n end
table.sort(names)
for _, n in ipairs(names) do print("missing " .. n .. ": " .. r.missing[n]) end
print("stdout: " .. r.stdout)
r = assert(proc.run { argv = { "sh", "-c", "grep '^Cap' /proc/self/status | tr '\\n\\t' '  '" }, cwd = %q })
print("caps: " .. r.stdout)
local ok, msg, code = proc.run { argv = { "true" }, cwd = %q, require = { "netns" } }
print("require netns: " .. tostring(ok) .. " " .. tostring(msg) .. " " .. tostring(code))
]], dir, dir .. "/ws", dir .. "/ws", dir .. "/ws"), flags)
    assert.equal(0, status, out)
    assert.matches("missing userns: unshare%(CLONE_NEWUSER%): Operation not permitted", out)
    assert.matches("missing netns: unshare%(CLONE_NEWNET%): Operation not permitted", out)
    assert.matches("missing pidns: unshare%(CLONE_NEWPID%): Operation not permitted", out)
    local layers = out:match("layers: ([^\n]*)")
    for _, name in ipairs { "session", "fds", "env", "cwd", "rlimits", "no_new_privs", "seccomp" } do
      assert.matches("%f[%w_]" .. name .. "%f[^%w_]", layers, 1)
    end
    -- capabilities go without a namespace too, where the runner may drop them: as root
    -- (a container's root keeps CAP_SETPCAP), not as another user
    if uv.getuid() == 0 then
      assert.matches("%f[%w_]caps%f[^%w_]", layers)
      for _, set in ipairs { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" } do
        assert.matches(set .. ":%s+0000000000000000 ", out)
      end
    else
      assert.matches("missing caps: the bounding set stays: PR_CAPBSET_DROP: Operation not permitted", out)
    end
    -- Landlock where the kernel has it: the write outside the workspace is refused
    if layers:find("landlock", 1, true) then
      assert.is_nil(io.open(dir .. "/outside.txt"))
      assert.matches("stdout: \n", out)
    end
    assert.matches("require netns: nil proc: required layer 'netns' is not available: unshare%(CLONE_NEWNET%): "
      .. "Operation not permitted ELAYER", out)
  end)
  end

  it("emulates the container from inside one too: as root without CAP_SYS_ADMIN", function()
    -- a container's root cannot load a filter without no_new_privs; nsdeny sets it there
    if uv.getuid() ~= 0 then -- another user: the runs above are that case
      return pending("skipped: not root; the runs above are this case for another user")
    end
    local dir = H.tmpdir()
    H.write(dir .. "/report.lua", string.format([[
local r = assert(require("orket.c.proc").run { argv = { "true" }, cwd = %q })
print("layers: " .. table.concat(r.layers, " "))
]], dir))
    local p = io.popen(string.format("setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin -- %s %s lua %s 2>&1",
      H.quote(NSDENY), H.quote(H.BIN), H.quote(dir .. "/report.lua")))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    local layers = assert(out:match("layers: ([^\n]*)"), out)
    for _, name in ipairs { "no_new_privs", "caps", "seccomp" } do
      assert.matches("%f[%w_]" .. name .. "%f[^%w_]", layers)
    end
    assert.is_nil(layers:find("netns", 1, true), layers)
  end)

  it("the hostile suite holds with the remaining layers", function()
    -- with pidfd_open refused too, so the suite also covers the runner's uv_spawn path
    local p = io.popen(string.format("cd %s && %s --no-pidfd %s lua tests/busted.lua -o tests/busted_output.lua "
      .. "tests/spec/core/proc_spec.lua 2>&1", H.quote(H.ROOT), H.quote(NSDENY), H.quote(H.BIN)))
    local out = p:read("a")
    p:close()
    local passed, failed = out:match("spec: (%d+) passed, (%d+) failed")
    assert.is_not_nil(passed, out)
    assert.equal("0", failed, out)
    assert.is_true(tonumber(passed) > 50, out)
  end)
end)
