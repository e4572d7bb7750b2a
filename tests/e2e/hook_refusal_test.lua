-- A remote whose pre-receive hook declines the push of a card's branch (served over git://
-- by `git daemon` on 127.0.0.1, as a team's server runs its hooks): the hand-in fails and
-- the card is skipped, as before, but said as the remote's own refusal, quoting it, not as
-- "moved after it was read (a push meanwhile)", which sent people looking for a push that
-- never happened (docs/git.md, *A hand-in*). With the hook gone, `orket resume` finishes.
local H = require "tests.helpers"
local G = require "orket.c.gitrepo"
local cjson = require "cjson"

local RP = require "tests.remote_card_project"

-- `git daemon` serving dir's repositories on 127.0.0.1 with pushes on -> port, stop()
local function daemon(dir)
  local port = H.free_port()
  local pid_file = dir .. "/daemon.pid"
  local st, out = H.sh(string.format("git daemon --listen=127.0.0.1 --port=%d --base-path=%s --export-all "
    .. "--enable=receive-pack --reuseaddr --detach --pid-file=%s %s", port, H.quote(dir), H.quote(pid_file), H.quote(dir)))
  assert(st == 0, out)
  local pid = tonumber(H.wait_for(function() return (H.read(pid_file) or ""):match("^%d+") end, "git daemon's pid"))
  -- it answers once ls-remote does
  H.wait_for(function() return G.ls_remote(string.format("git://127.0.0.1:%d/remote.git", port)) end, "git daemon")
  return port, function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    H.wait_for(function() return not H.alive(pid) end, "git daemon to end")
  end
end

describe("a remote's hook that declines a card's branch", function()
  after_each(function() H.cleanup() end)

  it("is said as the remote's refusal, quoting it, and the card goes on once it accepts", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/served"))
    assert(G.init_bare(dir .. "/served/remote.git"))
    local port, stop = daemon(dir .. "/served")
    finally(stop)
    RP.make(dir, "hookrefusal", string.format("git://127.0.0.1:%d/remote.git", port))
    local hook = dir .. "/served/remote.git/hooks/pre-receive"
    H.write(hook, "#!/bin/sh\necho 'pushes are frozen for release 1.2' >&2\nexit 1\n")
    assert(os.execute("chmod +x " .. H.quote(hook)))
    local r = H.orket("run K --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr .. r.stdout)
    local skipped
    for l in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(l)
      if ev.type == "card_skipped" then skipped = ev end
    end
    assert.equal("K-1", skipped and skipped.card, r.stdout)
    assert.matches('^the remote refused orket/K%-1: "pre%-receive hook declined', skipped.reason)
    assert.matches("(its hook or rule, not a push meanwhile); nothing was pushed, the next hand-in tries again",
      skipped.reason, 1, true)
    assert.is_nil(skipped.reason:find("moved after it was read", 1, true))
    assert.equal("code_review", H.card_json(dir, "K-1").card.status)
    assert.is_nil(assert(G.ls_remote(string.format("git://127.0.0.1:%d/remote.git", port)))["refs/heads/orket/K-1"])
    -- the remote takes pushes again: the resumed run hands the card in and finishes it
    assert(os.remove(hook))
    r = H.orket("resume --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    assert.equal("done", H.card_json(dir, "K-1").card.status)
    local refs = assert(G.ls_remote(string.format("git://127.0.0.1:%d/remote.git", port)))
    assert.equal(refs["refs/heads/main"], refs["refs/heads/orket/K-1"])
  end)
end)
