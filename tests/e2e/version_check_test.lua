-- orket version --check against the fake forge (tests/fake_forge_server.lua), on Gitea and
-- GitHub: the releases API of the forge orket.lua's updates section names is asked only
-- by that command (not by `orket version`, not during a run); drafts, pre-releases and
-- tags that are no version are passed over; the token goes in the forge's header only
-- when updates.token_env names one; a failing forge is an error naming it.
local H = require "tests.helpers"
local cjson = require "cjson"

local TOKEN = "updates-token-for-tests"

local function forge()
  local f = H.fake_forge()
  function f.control(path)
    local status, text = H.fetch { url = f.url .. path, method = "POST", body = "", total_timeout_ms = 10000 }
    assert.equal(200, status, text)
  end
  function f.log()
    local status, text = H.fetch { url = f.url .. "/__log", total_timeout_ms = 10000 }
    assert.equal(200, status, text)
    return cjson.decode(text)
  end
  return f
end

local function project(updates)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir) .. " --yes")
  assert.equal(0, r.status, r.stderr)
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\n" .. updates .. "\n")
  return dir
end

local function check(dir, env)
  return H.orket("version --check", { cwd = dir, env = env })
end

for _, kind in ipairs { "gitea", "github" } do
  describe("orket version --check on " .. kind, function()
    local f
    before_each(function() f = forge() end)
    after_each(function()
      f.stop()
      H.cleanup()
    end)

    it("says whether a newer release than this one is out", function()
      local dir = project(string.format('updates = { forge = %q, api_url = %q, repo = "orket/orket" }', kind, f.url))
      local r = check(dir)
      assert.equal(0, r.status, r.stderr)
      assert.equal("orket 0.1.0 (Lua 5.4; store schema 31, PostgreSQL schema 22)\nno release of orket/orket yet\n", r.stdout)
      -- the same version, older ones, and what is not a release: up to date
      for _, q in ipairs { "tag=v0.0.9", "tag=v0.1.0", "tag=v3.0.0&prerelease=1", "tag=v5.0.0&draft=1",
        "tag=v9.0.0-rc1", "tag=nightly" } do
        f.control("/__release?repo=orket/orket&" .. q)
      end
      f.control("/__release?repo=someone/else&tag=v7.0.0")
      r = check(dir)
      assert.equal(0, r.status, r.stderr)
      assert.equal("orket 0.1.0 (Lua 5.4; store schema 31, PostgreSQL schema 22)\nup to date: the newest release of orket/orket is v0.1.0\n", r.stdout)
      f.control("/__release?repo=orket/orket&tag=v0.10.0") -- 10 > 2: compared as numbers
      f.control("/__release?repo=orket/orket&tag=0.2.0")
      r = check(dir)
      assert.equal(0, r.status, r.stderr)
      assert.equal("orket 0.1.0 (Lua 5.4; store schema 31, PostgreSQL schema 22)\na newer release is out: v0.10.0 http://forge.invalid/orket/orket/releases/tag/v0.10.0\n",
        r.stdout)
      local log = f.log()
      assert.equal(3, #log)
      for _, e in ipairs(log) do
        assert.equal("GET", e.method)
        assert.equal((kind == "gitea" and "/api/v1" or "") .. "/repos/orket/orket/releases", e.path)
        assert.is_nil(e.authorization) -- no token_env: asked without one
      end
      -- a release page that is no plain URL is not printed
      f.control("/__release?repo=orket/orket&tag=v1.0.0&url=" .. "javascript:alert(1)")
      r = check(dir)
      assert.equal("orket 0.1.0 (Lua 5.4; store schema 31, PostgreSQL schema 22)\na newer release is out: v1.0.0\n", r.stdout)
    end)

    it("asks only when told to: not `orket version`, not a run", function()
      local dir = project(string.format('updates = { forge = %q, api_url = %q, repo = "orket/orket" }', kind, f.url))
      f.control("/__release?repo=orket/orket&tag=v0.2.0")
      local r = H.orket("version", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      assert.equal("orket 0.1.0 (Lua 5.4; store schema 31, PostgreSQL schema 22)\n", r.stdout)
      r = H.orket("run START", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      assert.same({}, f.log())
      assert.equal(0, check(dir).status)
      assert.equal(1, #f.log())
    end)

    it("sends the token updates.token_env names, and says when the forge fails", function()
      local dir = project(string.format('updates = { forge = %q, api_url = %q, repo = "orket/orket", token_env = "ORKET_UPDATES_TOKEN" }',
        kind, f.url))
      local r = check(dir)
      assert.equal(1, r.status)
      assert.matches("the environment variable ORKET_UPDATES_TOKEN (updates.token_env) is not set", r.stderr, 1, true)
      r = check(dir, { ORKET_UPDATES_TOKEN = TOKEN })
      assert.equal(0, r.status, r.stderr)
      assert.equal((kind == "gitea" and "token " or "Bearer ") .. TOKEN, f.log()[1].authorization)
      -- (asked three times: a passing failure is asked again)
      f.control("/__fail?status=503&times=3")
      r = check(dir, { ORKET_UPDATES_TOKEN = TOKEN })
      assert.equal(1, r.status)
      assert.equal("orket 0.1.0 (Lua 5.4; store schema 31, PostgreSQL schema 22)\n", r.stdout)
      assert.matches("forge: GET " .. f.url .. (kind == "gitea" and "/api/v1" or "") .. "/repos/orket/orket/releases: HTTP 503",
        r.stderr, 1, true)
      assert.is_nil(r.stderr:find(TOKEN, 1, true))
      -- an answer that quotes the token (a proxy rewriting links with it) is masked as a
      -- failure's text is: the release's URL was printed with the token in it
      f.control("/__release?repo=orket/orket&tag=v2.0.0&url=https://x/" .. TOKEN)
      r = check(dir, { ORKET_UPDATES_TOKEN = TOKEN })
      assert.equal(0, r.status, r.stderr)
      assert.is_nil((r.stdout .. r.stderr):find(TOKEN, 1, true), r.stdout)
      assert.matches("a newer release is out: v2.0.0", r.stdout, 1, true)
    end)
  end)
end

describe("orket.lua's updates section", function()
  after_each(H.cleanup)

  it("takes the forge and its URL from the git section, and refuses what is wrong by name", function()
    local f = forge()
    local dir = project(string.format('git = { remote = "../remote.git", forge = "gitea", repo = "team/app", api_url = %q, '
      .. 'token_env = "FORGE_TOKEN" }\nupdates = { repo = "orket/orket" }', f.url .. "/"))
    f.control("/__release?repo=orket/orket&tag=v0.1.1")
    local r = check(dir)
    assert.equal(0, r.status, r.stderr)
    assert.matches("a newer release is out: v0.1.1", r.stdout, 1, true)
    assert.equal("/api/v1/repos/orket/orket/releases", f.log()[1].path)
    assert.is_nil(f.log()[1].authorization) -- the git section's token is not the updates'
    f.stop()
    for _, case in ipairs {
      { 'updates = { forge = "github" }', "updates.repo: is needed" },
      { 'updates = { repo = "orket/orket" }', "updates.forge: is needed without git.forge" },
      { 'updates = { repo = "orket/orket", forge = "gitea" }', "updates.api_url: is needed with forge \"gitea\"" },
      { 'updates = { repo = "orket/orket", forge = "github", channel = "beta" }', "updates.channel: unknown setting" },
      { 'updates = { repo = "orket", forge = "github" }', "updates.repo: must be \"owner/name\"" },
      { 'updates = { repo = "orket/orket", forge = "github", token_env = "a b" }', "updates.token_env: must name an environment variable" },
      { 'updates = "github"', "updates: must be a table" },
    } do
      dir = project(case[1])
      r = check(dir)
      assert.equal(1, r.status, case[1])
      assert.matches(case[2], r.stderr, 1, true)
      r = H.orket("validate", { cwd = dir })
      assert.equal(1, r.status, case[1])
      assert.matches(case[2], r.stdout, 1, true)
    end
    -- without the section, --check says what to add
    r = check(project(""))
    assert.equal(1, r.status)
    assert.matches("has no updates section", r.stderr, 1, true)
  end)
end)
