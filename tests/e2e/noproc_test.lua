-- End-to-end: the binary finds its Lua library when /proc is not mounted (a chroot, a
-- minimal container): from argv[0] as a path, or as a name looked up on PATH, in the
-- source tree and in an installed layout (PREFIX/bin/orket, PREFIX/share/orket). /proc is
-- hidden by a tmpfs mounted over it in a private mount namespace (unshare, as root).
local H = require "tests.helpers"

-- Runs sh code with /proc hidden; nil when this machine cannot make such a namespace.
local function without_proc(code)
  local p = io.popen(string.format("unshare -m sh -c %s 2>&1; echo \"exit $?\"",
    H.quote("mount -t tmpfs none /proc || exit 99; test -e /proc/self/exe && exit 98; " .. code)))
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("exit (%d+)\n$"))
  if status == 99 or status == 98 or out:match("^unshare:") then return nil end
  return out:gsub("exit %d+\n$", ""), status
end

describe("orket without /proc", function()
  after_each(H.cleanup)

  it("finds its library from argv[0]: a path, or a name on PATH", function()
    -- a sanitizer build (make asan) cannot run without /proc: its runtime reads its
    -- options and the threads it checks for leaks there
    if H.sanitized() then
      io.write("\n  skipped: a sanitizer build needs /proc\n")
      return pending("skipped: a sanitizer build needs /proc")
    end
    local out, status = without_proc(H.quote(H.BIN) .. " version")
    if not out then
      io.write("\n  skipped: cannot hide /proc here (unshare -m needs root)\n")
      return pending("skipped: cannot hide /proc here")
    end
    assert.equal(0, status, out)
    assert.matches("^orket %S+ %(Lua 5%.4; store schema %d+, PostgreSQL schema %d+%)\n$", out)
    -- an installed layout, found by name on PATH
    local prefix = H.tmpdir()
    os.execute(string.format("mkdir -p %s/bin %s/share/orket && cp %s %s/bin/orket && cp -R %s/lua %s/share/orket/",
      H.quote(prefix), H.quote(prefix), H.quote(H.BIN), H.quote(prefix), H.quote(H.ROOT), H.quote(prefix)))
    out, status = without_proc("cd / && PATH=/nonexistent:" .. H.quote(prefix .. "/bin") .. ":/usr/bin:/bin exec orket version")
    assert.equal(0, status, out)
    assert.matches("^orket %S+ %(Lua 5%.4; store schema %d+, PostgreSQL schema %d+%)\n$", out)
  end)
end)
