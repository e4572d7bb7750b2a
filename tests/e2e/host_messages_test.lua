-- A hardened host's problems, each said with the path, the error and the variable the
-- operator needs (reports of a locked-down CI runner and of a packager's install):
-- - a read-only /tmp: the confined runner's temp dir was "cannot make the run's temp dir:
--   Read-only file system", naming neither the dir nor that $TMPDIR is not used (core/proc.c);
-- - a TMPDIR that cannot be written: a browser check was skipped with "cannot make a
--   temporary browser profile", no path, no errno, no variable (sandboxes/accept.lua);
-- - a PATH without /usr/bin: chromium and chromedriver were "not installed" when they were;
-- - an install only root can read (made under umask 077): "cannot find Orket's Lua library:
--   not beside the executable", hiding the EACCES and the ../share/orket it tried (core/home.c);
-- - no /proc: the confinement helper was /proc/self/exe, not the orket-confine installed
--   beside orket (core/proc.c).
local H = require "tests.helpers"

local function is_root() return io.popen("id -u"):read("l") == "0" end

-- a private mount namespace can be made here (root, unshare(1))
local function can_unshare()
  return is_root() and os.execute("command -v unshare >/dev/null && unshare -m true 2>/dev/null")
end

-- a directory others may enter (nobody runs from it), removed by cleanup
local dirs = {}
local function open_dir()
  local d = io.popen("mktemp -d /tmp/orket-hostmsg-XXXXXX"):read("l")
  assert(os.execute("chmod 0755 " .. H.quote(d)))
  dirs[#dirs + 1] = d
  return d
end

-- a Lua script file holding src -> its path
local function script(src)
  local path = open_dir() .. "/s.lua"
  H.write(path, src)
  assert(os.execute("chmod 0644 " .. H.quote(path)))
  return path
end

describe("a hardened host's messages", function()
  after_each(function()
    for _, d in ipairs(dirs) do os.execute("rm -rf " .. H.quote(d)) end
    dirs = {}
    H.cleanup()
  end)

  it("name the confined run's temp dir in /tmp and that $TMPDIR is not used", function()
    if not can_unshare() then return pending("needs root and unshare(1) for a read-only /tmp") end
    local s = script [[
      local proc = require "orket.c.proc"
      local r, err = proc.run { argv = { "true" }, cwd = "/" }
      io.stdout:write(tostring(r and "ran" or err), "\n")
    ]]
    local scratch = open_dir()
    local st, out = H.sh(string.format("unshare -m sh -c %s", H.quote(string.format(
      "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && TMPDIR=%s %s lua %s",
      H.quote(scratch), H.quote(H.BIN), H.quote(s)))))
    assert.equal(0, st, out)
    assert.matches("cannot make the run's temp dir /tmp/orket%-run%-%d+%-%d+%-XXXXXX: Read%-only file system "
      .. "%(confined runs always make it in /tmp, not in %$TMPDIR=" .. scratch:gsub("%p", "%%%0")
      .. ": make /tmp writable%)", out)
  end)

  it("name the TMPDIR and the error when no browser profile can be made there", function()
    if not can_unshare() then return pending("needs root and unshare(1) for a read-only TMPDIR") end
    local accept = require "orket.sandboxes.accept"
    if not accept.browser_available() then return pending("chromium and chromedriver are not installed") end
    local ro = open_dir()
    local s = script [[
      local accept = require "orket.sandboxes.accept"
      local b, why = accept.browsers().get("/nonexistent/app.sock", 5000)
      io.stdout:write(tostring(b and "started" or why), "\n")
    ]]
    -- as root a TMPDIR closed to others is passed over for /tmp: this one is open, but read-only
    local st, out = H.sh(string.format("unshare -m sh -c %s", H.quote(string.format(
      "mount --bind %s %s && mount -o remount,bind,ro %s && TMPDIR=%s %s lua %s", H.quote(ro), H.quote(ro),
      H.quote(ro), H.quote(ro), H.quote(H.BIN), H.quote(s)))))
    assert.equal(0, st, out)
    assert.matches("cannot make a temporary browser profile in $TMPDIR=" .. ro .. ": EROFS", out, 1, true)
    assert.matches("(set TMPDIR to a writable directory)", out, 1, true)
  end)

  it("find chromium and chromedriver in /usr/bin when PATH leaves it out", function()
    local s = script [[
      local accept = require "orket.sandboxes.accept"
      local browser, driver = accept.browser_available()
      io.stdout:write(tostring(browser), " ", tostring(driver), "\n")
    ]]
    local installed = os.execute("test -x /usr/bin/chromedriver && test -x /usr/bin/chromium")
    local st, out = H.sh(string.format("env PATH=/nonexistent %s lua %s", H.quote(H.BIN), H.quote(s)))
    assert.equal(0, st, out)
    if installed then
      assert.matches(" /usr/bin/chromedriver\n$", out)
    else
      -- not there at all: said as not found, with the PATH and the places looked in
      assert.matches("not found on PATH (/nonexistent) nor in /usr/local/bin, /usr/bin, /bin", out, 1, true)
    end
  end)

  it("say that an installed library cannot be read, and where it was looked for", function()
    if not is_root() or not os.execute("command -v setpriv >/dev/null") then
      return pending("runs orket as nobody (setpriv), which needs root")
    end
    local prefix = open_dir()
    -- an install made under umask 077: bin/orket for everyone, share/orket for root alone
    assert(os.execute(string.format("mkdir -p %s/bin %s/share/orket && cp %s %s/bin/orket && chmod 0755 %s/bin "
      .. "%s/bin/orket && cp -R %s/lua %s/share/orket/ && chmod -R go-rwx %s/share/orket/lua", H.quote(prefix),
      H.quote(prefix), H.quote(H.BIN), H.quote(prefix), H.quote(prefix), H.quote(prefix), H.quote(H.ROOT),
      H.quote(prefix), H.quote(prefix))))
    local st, out = H.sh(string.format("cd / && env -u ORKET_HOME setpriv --reuid=65534 --regid=65534 "
      .. "--clear-groups %s/bin/orket version", H.quote(prefix)))
    assert.equal(1, st, out)
    assert.matches("cannot find Orket's Lua library", out, 1, true)
    assert.matches(prefix .. "/share/orket (its lua/orket/init.lua cannot be read: Permission denied; make the "
      .. "library readable to every user: chmod -R a+rX " .. prefix .. "/share/orket)", out, 1, true)
    assert.matches("tried " .. prefix .. " (no lua/orket/init.lua)", out, 1, true)
    -- ORKET_HOME naming it: the same reason, not "does not hold"
    st, out = H.sh(string.format("cd / && env ORKET_HOME=%s/share/orket setpriv --reuid=65534 --regid=65534 "
      .. "--clear-groups %s/bin/orket version", H.quote(prefix), H.quote(prefix)))
    assert.equal(1, st, out)
    assert.matches("does not hold a readable lua/orket/init.lua: " .. prefix .. "/share/orket (its "
      .. "lua/orket/init.lua cannot be read: Permission denied", out, 1, true)
  end)

  it("find the confinement helper beside orket when /proc is not mounted", function()
    if not can_unshare() then return pending("needs root and unshare(1) to unmount /proc") end
    if H.sanitized() then return pending("a sanitizer build cannot run without /proc (LeakSanitizer reads it)") end
    local s = script [[io.stdout:write(require("orket.c.proc").helper(), "\n")]]
    local bin = H.BIN:match("^(.*)/[^/]+$")
    if not os.execute("test -x " .. H.quote(bin .. "/orket-confine")) then
      return pending("no orket-confine beside " .. H.BIN)
    end
    local real = io.popen("realpath " .. H.quote(bin)):read("l")
    -- by a path, and by its name on PATH
    for _, how in ipairs { H.quote(H.BIN), "env PATH=" .. H.quote(bin) .. ":/usr/bin:/bin orket" } do
      local st, out = H.sh(string.format("unshare -m sh -c %s", H.quote(string.format("umount -l /proc && %s lua %s",
        how, H.quote(s)))))
      assert.equal(0, st, out)
      assert.equal(real .. "/orket-confine\n", out)
    end
  end)
end)
