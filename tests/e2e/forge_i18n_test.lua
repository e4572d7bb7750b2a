-- Text in other scripts through the forge: a card's long Japanese description goes into its
-- pull request's body cut on a character's start (the JSON request stays UTF-8), and a long
-- Japanese request for changes becomes the card's comment and its review cycle's text cut
-- on a character's start, the comment with its heading within a comment's 64 KiB.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local G = require "orket.c.gitrepo"
local crypto = require "orket.c.crypto"
local cjson = require "cjson"

local SECRET, TOKEN = F.FORGE_SECRET, F.FORGE_TOKEN

local function get(url)
  local status, text = H.fetch { url = url, total_timeout_ms = 10000 }
  assert.equal(200, status)
  return cjson.decode(text)
end

-- a project reviewed by people on a Gitea at api_url, its card F-1's description 1400 "日"
-- (4200 bytes: past the 4000 of a pull request's body, 4000 being no character's start)
local function project(api_url)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  assert(G.init_bare(dir .. "/remote.git"))
  H.write(dir .. "/orket.lua", string.format([[
name = "forge"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
git = { remote = %q, forge = "gitea", repo = "acme/notes", api_url = %q, token_env = "FORGE_TOKEN",
  webhook_secret_env = "FORGE_HOOK_SECRET" }
review = { human = true }
]], "file://" .. dir .. "/remote.git", api_url))
  H.write(dir .. "/script.lua", F.writer_script { { card = "F-1", path = "a.txt", content = "first\n" } })
  H.write(dir .. "/epics/f.json", cjson.encode { id = "F", name = "Forge", issues = {
    { id = "F-1", summary = "ログイン画面 🔐", seat = "senior_developer", description = ("日"):rep(1400) } } })
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

describe("non-ASCII text through the forge", function()
  local forge
  before_each(function() forge = H.fake_forge() end)
  after_each(function()
    H.kill_servers()
    forge.stop()
    H.cleanup()
  end)

  it("cuts a pull request's body and a review's text on a character's start", function()
    local dir = project(forge.url)
    local r = H.orket("run F --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
    assert.equal(3, r.status, r.stderr .. r.stdout) -- waiting for people on the forge
    local prs = get(forge.url .. "/__prs")
    assert.equal(1, #prs)
    local body = prs[1].body
    assert.truthy(utf8.len(body), "the pull request's body is not UTF-8: " .. body:sub(-40))
    -- as much of the description as fits whole characters in 4000 bytes: 1333 of them
    assert.truthy(body:find("\n\n" .. ("日"):rep(1333) .. "\n\nOrket-Card: F-1", 1, true), body:sub(-60))
    local number = math.tointeger(prs[1].number)

    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET } })
    local doc = cjson.decode(H.read(H.ROOT .. "/tests/fixtures/forge/gitea_review_rejected.json"))
    doc.number, doc.pull_request.number = number, number
    -- 70,001 bytes: past a comment's 64 KiB, with "ab" first so no cut at 3 bytes is whole
    local text = "ab" .. ("日"):rep(23333)
    doc.review.content = text
    local payload = cjson.encode(doc)
    local status, answer = H.fetch { url = s.url .. "/v1/webhooks/gitea", method = "POST",
      headers = { "Content-Type: application/json", "X-Gitea-Event: pull_request",
        "X-Gitea-Event-Type: pull_request_review_rejected", "X-Gitea-Delivery: i-1",
        "X-Gitea-Signature: " .. crypto.hmac_sha256(SECRET, payload) }, body = payload, total_timeout_ms = 30000 }
    assert.equal(200, status, answer)
    assert.equal("in_progress", cjson.decode(answer).outcome)
    assert.equal(0, s.stop())

    -- read from the store as stored (a view would show broken bytes as U+FFFD)
    local db = assert(require("orket.project").open_store(dir))
    local comments = require("orket.store.comments").of_card(db, "F-1")
    local cycles = require("orket.store.forge").review_cycles(db, "F-1")
    db:close()
    local comment = comments[#comments].body
    local heading = "Changes requested on the forge:\n\n"
    assert.equal(heading, comment:sub(1, #heading))
    assert.truthy(utf8.len(comment), "the comment is not UTF-8: " .. comment:sub(-8))
    assert.is_true(#comment <= 65536, "the comment has " .. #comment .. " bytes")
    -- the most whole characters that fit with the heading
    assert.equal(text:sub(1, 2 + 3 * ((65536 - #heading - 2) // 3)), comment:sub(#heading + 1))
    local note = cycles[#cycles].body
    assert.equal("string", type(note), cjson.encode(cycles[#cycles]))
    assert.truthy(utf8.len(note), "the review cycle's text is not UTF-8: " .. note:sub(-8))
    assert.equal(text:sub(1, 2 + 3 * ((65536 - 2) // 3)), note)
  end)
end)
