-- A project whose .orket/ (0700) is another uid's: a container run as another user than the
-- project's owner (the image's uid 1000 on a host user's project, a pod's runAsUser that
-- changed). The store could not even be looked at, and every command said "no board
-- (.orket/orket.db not found); run 'orket import' first", which then failed too: each now
-- says the folder cannot be entered, whose it is, and to run as the owner.
local H = require "tests.helpers"

describe("a project whose .orket/ is another uid's", function()
  after_each(function() H.cleanup() end)

  it("says the folder cannot be entered, whose it is and what to do, in every command", function()
    if io.popen("id -u"):read("l") ~= "0" then
      return pending("skipped: runs the commands as another uid (nobody), which needs root")
    end
    local ex = H.example("notes")
    assert.equal(0, H.orket("run NOTES --json", { cwd = ex }).status)
    os.execute("chmod 755 " .. H.quote(ex)) -- the temp dir itself, made 0700; .orket/ stays 0700
    -- nobody may not reach the build (a clone under /root is 0700): an installed copy of its
    -- own, laid out as `make install` does (as board_test's read-only store)
    local prefix = H.tmpdir()
    local copy = string.format("chmod 755 %s && mkdir -p %s/bin %s/share/orket && cp %s %s/bin/ && cp -R",
      H.quote(prefix), H.quote(prefix), H.quote(prefix), H.quote(H.BIN), H.quote(prefix))
    for _, d in ipairs { "lua", "roles", "tools", "policies", "templates" } do copy = copy .. " " .. H.quote(H.ROOT .. "/" .. d) end
    assert(os.execute(copy .. " " .. H.quote(prefix .. "/share/orket/") .. " && chmod -R a+rX " .. H.quote(prefix)))
    local o = { cwd = ex, wrap = "setpriv --reuid=65534 --regid=65534 --clear-groups", bin = prefix .. "/bin/orket" }
    for _, c in ipairs { "board", "runs", "card NOTES-1", "import", "serve --listen 127.0.0.1:0" } do
      local r = H.orket(c, o)
      assert.equal(1, r.status, c)
      assert.matches("orket: store: .orket/orket.db: permission denied: .orket is uid 0's (mode 0700) and this "
        .. "process runs as uid 65534, which may not enter it; run the command as the project's owner (docker or "
        .. "podman run --user 0:0, a pod's securityContext runAsUser: 0)", r.stderr, 1, true)
      assert.is_nil(r.stderr:find("import' first", 1, true), c .. ": " .. r.stderr)
    end
    -- the owner's commands are as before
    assert.matches("NOTES%-4%s+done", H.orket("board", { cwd = ex }).stdout)
  end)
end)
