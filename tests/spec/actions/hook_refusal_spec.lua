-- orket.actions.prbranch.refusal: a push of a card's branch refused (EREJECTED) is told
-- apart by what the remote said: its own refusal (a hook, a rule), quoted and capped; Orket's
-- on its behalf (a path remote's hook that would not run), whole; or the branch having moved
-- since it was read (a push meanwhile: libgit2's own non-fast-forward, or the remote's report
-- of one). tests/e2e/hook_refusal_test.lua: a real hook over git://.
local prbranch = require "orket.actions.prbranch"

local REF = "git: the remote refused refs/heads/orket/K-1 ("

describe("a refused push of a card's branch", function()
  it("is the remote's own refusal when its report says so, quoted", function()
    assert.same({ "remote", "pre-receive hook declined" }, { prbranch.refusal(REF .. "pre-receive hook declined)") })
    assert.same({ "remote", "hook declined" }, { prbranch.refusal(REF .. "hook declined)") })
    assert.same({ "remote", "deny updating a hidden ref" }, { prbranch.refusal(REF .. "deny updating a hidden ref)") })
    -- words the remote added after its status are kept, made inert and capped
    local why, long = prbranch.refusal(REF .. "pre-receive hook declined): \27[31m" .. string.rep("frozen ", 100))
    assert.equal("remote", why)
    assert.matches("^pre%-receive hook declined%): .*frozen frozen", long)
    assert.is_nil(long:find("\27", 1, true))
    assert.is_true(#long <= prbranch.REFUSAL_MAX + 40, long)
  end)

  it("is Orket's own refusal on the remote's behalf, said whole", function()
    local msg = "git: pushing orket/K-1: the remote /r.git has a hook git runs on a push, /r.git/hooks/pre-receive, "
      .. "which a push to a path or file:// URL would not run (...): nothing was pushed. Serve the remote over git://"
    assert.same({ "refused", msg }, { prbranch.refusal(msg) })
    msg = "git: pushing orket/K-1: the remote /r.git refuses a push that is not a fast-forward "
      .. "(receive.denyNonFastForwards), and its refs/heads/orket/K-1 at 0123 is not in the history of the commit pushed"
    assert.same({ "refused", msg }, { prbranch.refusal(msg) })
  end)

  it("is the branch having moved when libgit2 or the remote says non-fast-forward", function()
    assert.equal("moved", prbranch.refusal("git: pushing orket/K-1: cannot push because a reference that you are trying "
      .. "to update on the remote contains commits that are not present locally. (the remote /r.git: orket.lua's "
      .. "git.remote)"))
    assert.equal("moved", prbranch.refusal("git: pushing orket/K-1: cannot push non-fastforwardable reference (the "
      .. "remote /r.git: orket.lua's git.remote)"))
    for _, status in ipairs { "non-fast-forward", "fetch first", "stale info", "failed to lock",
      "cannot lock ref 'refs/heads/orket/K-1': is at 1 but expected 2" } do
      assert.equal("moved", prbranch.refusal(REF .. status .. ")"), status)
    end
  end)
end)
