-- The forge REST calls (orket.forge) against the fake forge API, which follows the forges'
-- documented behaviour: every page of a list is read (Link headers, page numbers), a
-- duplicate pull request answers with the one open, merges are refused when the head moved,
-- rate limits and outages come back as codes a caller can act on, and a Link header cannot
-- send the token to another host.
local H = require "tests.helpers"
local forge = require "orket.forge"
local cjson = require "cjson"

local TOKEN = "forge-token-for-tests"

local function fake_forge()
  local f = H.fake_forge()
  local url = f.url
  local function control(path)
    local status, text = H.fetch { url = url .. path, method = "POST", body = "", total_timeout_ms = 10000 }
    assert.equal(200, status, text)
    return cjson.decode(text)
  end
  local function get(path)
    local status, text = H.fetch { url = url .. path, total_timeout_ms = 10000 }
    assert.equal(200, status, text)
    return cjson.decode(text)
  end
  return { url = url, control = control, get = get, stop = f.stop }
end

for _, kind in ipairs { "gitea", "github" } do
  describe("the forge API on " .. kind, function()
    local f, g
    before_each(function()
      f = fake_forge()
      g = { forge = kind, repo = "acme/notes", api_url = f.url }
    end)
    after_each(function()
      f.stop()
      H.cleanup()
    end)

    it("reads every page of the open pull requests to find a card's", function()
      f.control("/__seed?repo=acme/notes&count=120")
      local pr = assert(forge.open_pr(g, TOKEN, { branch = "orket/N-1", title = "N-1", body = "b" }))
      f.control("/__seed?repo=acme/notes&count=5")
      -- on Gitea the list has every open request; GitHub filters by head, so one page
      local all = assert(forge.list(g, TOKEN, "/repos/acme/notes/pulls?state=open"))
      assert.equal(126, #all)
      local found = assert(forge.find_pr(g, TOKEN, "orket/N-1"))
      assert.equal(pr.number, found.number)
      -- a second open asks again and answers the same request: no duplicate
      local again = assert(forge.open_pr(g, TOKEN, { branch = "orket/N-1", title = "N-1", body = "b" }))
      assert.equal(pr.number, again.number)
      local gets = 0
      for _, req in ipairs(f.get("/__log")) do
        assert.equal(kind == "github" and "Bearer " .. TOKEN or "token " .. TOKEN, req.authorization)
        if req.method == "GET" then gets = gets + 1 end
      end
      assert.is_true(gets >= 4)
      assert.equal(1, #(function()
        local mine = {}
        for _, p in ipairs(f.get("/__prs")) do if p.head.ref == "orket/N-1" then mine[#mine + 1] = p end end
        return mine
      end)())
    end)

    -- a pull request from another repository's branch of the card's name (a stranger's fork,
    -- or a fork in the same organisation, which GitHub's head= filter lets through), or from
    -- the repository's own branch into another base (a backport), is never taken for the
    -- card's: its merge would finish the card with work nobody reviewed
    it("takes only the repository's own branch into main for a card's pull request, never a fork's", function()
      f.control("/__fork?repo=acme/notes&branch=orket/N-6")
      f.control("/__fork?repo=acme/notes&branch=orket/N-6&from=acme/notes-mirror")
      f.control("/__fork?repo=acme/notes&branch=orket/N-6&from=acme/notes&base=release-1")
      assert.equal(false, forge.find_pr(g, TOKEN, "orket/N-6"))
      local pr = assert(forge.open_pr(g, TOKEN, { branch = "orket/N-6", title = "N-6", body = "" }))
      assert.equal(4, pr.number)
      local found = assert(forge.find_pr(g, TOKEN, "orket/N-6"))
      assert.equal(4, found.number)
      local mine = {}
      for _, p in ipairs(f.get("/__prs")) do
        if p.user.login == "orket-bot" then mine[#mine + 1] = p end
      end
      assert.equal(1, #mine)
      assert.same({ "acme/notes", "main" }, { mine[1].head.repo.full_name, mine[1].base.ref })
    end)

    it("answers the open request when the forge refuses a duplicate made at the same moment", function()
      local pr = assert(forge.open_pr(g, TOKEN, { branch = "orket/N-2", title = "N-2", body = "" }))
      -- the lookup misses it (one failure), the create is refused as a duplicate, the lookup
      -- after it finds it
      local saved = forge.find_pr
      local calls = 0
      forge.find_pr = function(...)
        calls = calls + 1
        if calls == 1 then return false end
        return saved(...)
      end
      local ok, res, code = pcall(forge.open_pr, g, TOKEN, { branch = "orket/N-2", title = "N-2", body = "" })
      forge.find_pr = saved
      assert.is_true(ok, res)
      assert.is_table(res, code)
      assert.equal(pr.number, res.number)
      assert.equal(2, calls)
    end)

    it("merges only the head it was given, and reads the request back merged", function()
      local pr = assert(forge.open_pr(g, TOKEN, { branch = "orket/N-3", title = "N-3", body = "" }))
      local got = assert(forge.get_pr(g, TOKEN, pr.number))
      assert.equal("open", got.state)
      assert.is_false(got.merged)
      local ok, err, code = forge.merge_pr(g, TOKEN, pr.number, { head = string.rep("f", 40), title = "t" })
      assert.is_nil(ok)
      assert.equal("ECONFLICT", code)
      assert.matches("HTTP 409", err)
      assert(forge.merge_pr(g, TOKEN, pr.number, { head = got.head, title = "t", message = "m" }))
      got = assert(forge.get_pr(g, TOKEN, pr.number))
      assert.is_true(got.merged)
      assert.equal("closed", got.state)
      -- merging it again: refused as not mergeable
      ok, err, code = forge.merge_pr(g, TOKEN, pr.number, { head = got.head })
      assert.is_nil(ok)
      assert.equal("ECONFLICT", code)
      assert.matches("HTTP 405", err)
    end)

    it("closes a request with a comment, or marks it merged by a commit on Gitea", function()
      local pr = assert(forge.open_pr(g, TOKEN, { branch = "orket/N-4", title = "N-4", body = "" }))
      local commit = string.rep("ab", 20)
      local ok, err, code = forge.mark_merged(g, TOKEN, pr.number, commit)
      if kind == "github" then
        assert.is_nil(ok)
        assert.equal("ENOTSUP", code, err)
        assert(forge.close_pr(g, TOKEN, pr.number, "Merged into main as " .. commit .. " by Orket."))
        local got = assert(forge.get_pr(g, TOKEN, pr.number))
        assert.equal("closed", got.state)
        assert.is_false(got.merged)
        local comments = f.get("/__comments")
        assert.equal(1, #comments)
        assert.equal(pr.number, math.tointeger(comments[1].number))
        assert.matches(commit, comments[1].body)
      else
        assert.is_true(ok, err)
        local got = assert(forge.get_pr(g, TOKEN, pr.number))
        assert.is_true(got.merged)
        assert.equal(commit, got.merge_commit)
      end
    end)

    it("posts commit statuses, cutting a long description to the forge's limit", function()
      local sha = string.rep("c", 40)
      assert(forge.post_status(g, TOKEN, sha, { state = "failure", context = "orket/verify",
        description = string.rep("x", 300), target_url = "http://127.0.0.1/v1/cards/N-5" }))
      assert(forge.post_status(g, TOKEN, sha, { state = "success", context = "orket/sandbox" }))
      local st = f.get("/__statuses")
      assert.equal(2, #st)
      assert.equal("failure", st[1].state)
      assert.equal("orket/verify", st[1].context)
      assert.equal(140, #st[1].description)
      assert.equal(sha, st[2].sha)
      assert.has_error(function() forge.post_status(g, TOKEN, sha, { state = "bogus" }) end)
      assert.has_error(function() forge.post_status(g, TOKEN, "not a sha", { state = "success" }) end)
    end)

    it("says when the forge is down, the token lacks a right, or the rate limit is reached", function()
      local retry = forge.RETRY
      forge.RETRY = { attempts = 3, base_ms = 10, wait_max_s = 5 }
      finally(function() forge.RETRY = retry end)
      -- a passing 503 is asked again; one that stays is said, with the calls made
      f.control("/__fail?status=503&times=1")
      assert.equal(false, forge.find_pr(g, TOKEN, "orket/X"))
      f.control("/__fail?status=503&times=3")
      local ok, err, code = forge.find_pr(g, TOKEN, "orket/X")
      assert.is_nil(ok)
      assert.equal("EUNAVAILABLE", code)
      assert.matches("HTTP 503: .* %(after 3 calls%)$", err)
      assert.not_matches(TOKEN, err)
      -- a 500 or a gateway's 502 to a POST (a comment the forge may have made) is not asked
      -- again, nor a PUT (GitHub's merge)
      for _, status in ipairs { 500, 502 } do
        f.control("/__fail?status=" .. status .. "&times=1")
        ok, err, code = forge.comment(g, TOKEN, 1, "hello")
        assert.is_nil(ok)
        assert.equal("EUNAVAILABLE", code)
        assert.is_nil(err:find("after", 1, true))
      end
      f.control("/__fail?status=502&times=1")
      ok, err = forge.merge_pr(g, TOKEN, 1, { head = string.rep("a", 40) })
      assert.is_nil(ok)
      assert.matches("HTTP 502", err)
      assert.is_nil(err:find("after", 1, true))
      -- a rate limit with a short wait is waited for and asked again
      f.control("/__ratelimit?kind=secondary&times=1&after=1")
      assert.equal(false, forge.find_pr(g, TOKEN, "orket/X"))
      f.control("/__fail?status=401&times=1")
      ok, err, code = forge.find_pr(g, TOKEN, "orket/X")
      assert.is_nil(ok)
      assert.equal("EAUTH", code, err)
      f.control("/__ratelimit?kind=primary&times=1")
      local _, info
      ok, err, code, info = forge.list(g, TOKEN, "/repos/acme/notes/pulls")
      assert.is_nil(ok)
      assert.equal("ERATELIMIT", code, err)
      assert.is_true(info.retry_after >= 1 and info.retry_after <= forge.MAX_RETRY_AFTER, tostring(info.retry_after))
      f.control("/__ratelimit?kind=secondary&times=1")
      _, err, code, info = forge.list(g, TOKEN, "/repos/acme/notes/pulls")
      assert.equal("ERATELIMIT", code, err)
      assert.equal(7, info.retry_after)
      assert.matches("retry in 7 s", err)
      -- GitHub sends a secondary limit as a 403 too: a wait, not a missing right
      f.control("/__ratelimit?kind=secondary403&times=1")
      _, err, code, info = forge.list(g, TOKEN, "/repos/acme/notes/pulls")
      assert.equal("ERATELIMIT", code, err)
      assert.equal(7, info.retry_after)
      -- a proxy's page quoting the token where its 200 bytes are cut: masked before the cut
      f.control("/__fail?status=502&times=1&html=1")
      ok, err = forge.comment(g, TOKEN, 1, "hello")
      assert.is_nil(ok)
      assert.matches("Authorization: ", err, 1, true)
      assert.is_nil(err:find(TOKEN:sub(1, 6), 1, true), err)
      -- nothing was created by the failed calls, and the forge works again
      assert.equal(false, forge.find_pr(g, TOKEN, "orket/X"))
      local _, _, c404 = forge.get_pr(g, TOKEN, 999)
      assert.equal("ENOTFOUND", c404)
    end)
  end)
end

describe("the forge's Link header", function()
  local httpd = require "orket.c.httpd"

  it("is never followed to another origin, so the token stays with the forge", function()
    -- a hostile forge whose first page points its next page at a different port
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
    local other = assert(httpd.listen { host = "127.0.0.1", port = 0 })
    local seen_other = false
    local t = orket.spawn(function()
      local req = srv:accept()
      local items = {}
      for i = 1, forge.PAGE_SIZE do items[i] = { number = i, head = { ref = "b" .. i } } end
      req:respond(200, { "Content-Type: application/json",
        string.format('Link: <http://127.0.0.1:%d/api/v1/repos/a/b/pulls?page=2>; rel="next"', other:port()) },
        cjson.encode(items))
      req:close()
    end)
    local t2 = orket.spawn(function()
      local req = other:accept()
      if req then seen_other = true; req:respond(200, {}, "[]"); req:close() end
    end)
    local g = { forge = "gitea", repo = "a/b", api_url = "http://127.0.0.1:" .. srv:port() }
    local ok, err, code = forge.list(g, TOKEN, "/repos/a/b/pulls")
    assert.is_nil(ok)
    assert.equal("EFORGE", code)
    assert.matches("outside", err)
    assert.is_false(seen_other)
    srv:close()
    other:close()
    t:cancel()
    t2:cancel()
    H.cleanup()
  end)
end)
