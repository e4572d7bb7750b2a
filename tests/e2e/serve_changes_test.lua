-- GET /v1/cards/{id}/diff (what an agent changed: files against main, unified diffs, binary
-- files named, the commit of each turn; capped) and GET /v1/violations (the gate's refusals
-- across the board), against a project a scripted run worked.
local H = require "tests.helpers"
local project = require("tests.changes_project").make

local function by_path(doc)
  local t = {}
  for _, f in ipairs(doc.files) do t[f.path] = f end
  return t
end

describe("orket serve: a card's change and the violations", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("shows what each card's branch changed, merged or not, within caps", function()
    local dir = project()
    local key = H.api_key(dir, "viewer", "viewer")
    local s = H.serve(dir)
    -- CHG-1: done, its branch merged into main; the change is still its own
    local st, doc = H.api(s, "GET", "/v1/cards/CHG-1/diff", key)
    assert.equal(200, st)
    assert.equal("orket.change/1", doc.format)
    assert.equal("orket/CHG-1", doc.branch)
    assert.is_string(doc.merged)
    assert.equal(2, doc.changed)
    local f = by_path(doc)
    assert.equal("A", f["notes.txt"].status)
    assert.equal(2, f["notes.txt"].additions)
    assert.matches("\n%+hello\n%+world\n$", f["notes.txt"].patch)
    assert.is_true(f["data.bin"].binary)
    assert.equal(require("cjson").null, f["data.bin"].patch)
    assert.is_nil(f["config"]) -- the refused write left nothing
    assert.equal(1, #doc.commits)
    assert.equal(doc.tip, doc.commits[1].id)
    assert.same({ 1, 1, "senior_developer" }, { doc.commits[1].turn, doc.commits[1].run, doc.commits[1].seat })
    -- CHG-2: blocked, never merged: against where it left main, not main's later merge of CHG-1
    st, doc = H.api(s, "GET", "/v1/cards/CHG-2/diff", key)
    assert.equal(200, st)
    assert.equal("main", doc.base_from)
    assert.same({ "b.txt" }, (function() local p = {} for i, x in ipairs(doc.files) do p[i] = x.path end return p end)())
    -- caps: one file, or no diff text
    st, doc = H.api(s, "GET", "/v1/cards/CHG-1/diff?max_files=1", key)
    assert.equal(200, st)
    assert.equal(1, #doc.files)
    assert.is_true(doc.truncated)
    st, doc = H.api(s, "GET", "/v1/cards/CHG-1/diff?max_bytes=5", key)
    assert.is_true(by_path(doc)["notes.txt"].omitted)
    assert.equal(0, doc.bytes)
    -- refusals: bad caps, an epic (no branch), no such card, no key
    local bst, bdoc = H.api(s, "GET", "/v1/cards/CHG-1/diff?max_files=0", key)
    assert.same({ 400, "bad_query" }, { bst, bdoc.error.code }) -- as every route's malformed query
    assert.equal(400, (H.api(s, "GET", "/v1/cards/CHG-1/diff?max_bytes=x", key)))
    -- digits past 64 bits read as the largest number, held to the route's cap, as a
    -- listing's ?limit= reads them (they were 400)
    st, doc = H.api(s, "GET", "/v1/cards/CHG-1/diff?max_bytes=99999999999999999999&max_files=18446744073709551616", key)
    assert.equal(200, st)
    assert.equal(2, #doc.files)
    assert.is_falsy(doc.truncated)
    assert.is_falsy(by_path(doc)["notes.txt"].omitted)
    st, doc = H.api(s, "GET", "/v1/cards/CHG/diff", key)
    assert.equal(404, st)
    assert.matches("CHG has no branch", doc.error.message)
    assert.equal(404, (H.api(s, "GET", "/v1/cards/NOPE-1/diff", key)))
    assert.equal(401, (H.api(s, "GET", "/v1/cards/CHG-1/diff")))
    assert.equal(0, s.stop())
  end)

  it("lists the violations newest first, by card and rule, in pages", function()
    local dir = project()
    local key = H.api_key(dir, "viewer", "viewer")
    local s = H.serve(dir)
    local st, doc = H.api(s, "GET", "/v1/violations", key)
    assert.equal(200, st)
    assert.equal("orket.violations/1", doc.format)
    assert.equal(1, #doc.violations)
    local v = doc.violations[1]
    assert.same({ "CHG-1", "PATH_PROTECTED", "senior_developer", 1, 1 }, { v.card, v.rule, v.seat, v.run, v.turn })
    assert.matches("protected path: .git/config", v.reason)
    assert.matches('"path":".git/config"', v.attempt, 1, true) -- "/" as written, not "\/"
    assert.is_string(v.remedy)
    assert.same({ { rule = "PATH_PROTECTED", n = 1 } }, doc.by_rule)
    assert.same({ { card = "CHG-1", n = 1 } }, doc.by_card)
    assert.equal(require("cjson").null, doc.next_before)
    st, doc = H.api(s, "GET", "/v1/violations?card=CHG-2", key)
    assert.same({}, doc.violations)
    st, doc = H.api(s, "GET", "/v1/violations?rule=PATH_PROTECTED&limit=1", key)
    assert.equal(1, #doc.violations)
    assert.equal(doc.violations[1].id, doc.next_before)
    st, doc = H.api(s, "GET", "/v1/violations?before=" .. math.tointeger(doc.next_before), key)
    assert.equal(200, st)
    assert.same({}, doc.violations)
    local vst, vdoc = H.api(s, "GET", "/v1/violations?limit=-1", key)
    assert.same({ 400, "bad_query" }, { vst, vdoc.error.code })
    -- both routes are in the OpenAPI document, every response described
    local _, oa = H.api(s, "GET", "/v1/openapi.json", key)
    for _, p in ipairs { "/v1/violations", "/v1/cards/{id}/diff" } do
      assert.is_table(oa.paths[p] and oa.paths[p].get, p)
      for status, r in pairs(oa.paths[p].get.responses) do
        assert.is_string(r.description, p .. " " .. status)
        assert.is_true(#r.description > 0)
      end
    end
    assert.equal(0, s.stop())
  end)
end)
