-- What a card's prompt holds, end to end against the fake model server: the card's comments
-- stay within a share of context.max_chars in every call's brief (30 comments of 60 KB made
-- each call 1.8 MB whatever max_chars said), and a card whose turns were cut at the output
-- limit is blocked saying that, not blaming tool calling (docs/llm.md).
local H = require "tests.helpers"

local function project(fake, models, extra)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/orket.lua", string.format([[
name = "prompts"
models = { default = %q, providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" }, model = %q } }
%s
]], models[1], fake.url .. "/v1", models[2], extra or ""))
  H.write(dir .. "/epics/p.json", [[
{ "id": "P", "name": "Prompts", "issues": [ { "id": "P-1", "summary": "Do it", "seat": "senior_developer" } ] }
]])
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function events(stdout)
  local out = {}
  for line in stdout:gmatch("[^\n]+") do out[#out + 1] = require("cjson").decode(line) end
  return out
end

describe("a card's prompt", function()
  after_each(H.cleanup)

  it("holds its comments within a share of context.max_chars, the newest whole, the rest named", function()
    local fake = require("tests.fake_server").start()
    local dir = project(fake, { "fake:tool=update_issue_status,arg_status=code_review",
      "fake:tool=update_issue_status,arg_status=done" }, "context = { max_chars = 8000 }")
    for i = 1, 12 do
      local r = H.orket(string.format("comment P-1 %s", H.quote(string.format("%02d", i) .. string.rep("x", 20000))),
        { cwd = dir })
      assert.equal(0, r.status, r.stderr)
    end
    H.orket("comment P-1 'the last word: keep it short'", { cwd = dir })
    local r = H.orket("run P --json", { cwd = dir })
    local log = fake.log()
    fake.stop()
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("done", H.card_json(dir, "P-1").card.status)
    assert.is_true(#log >= 2, #log)
    for _, entry in ipairs(log) do
      local chars = 0
      for _, m in ipairs(entry.request.messages) do chars = chars + #(m.content or "") end
      -- 240 KB of comments went into each call: now about a quarter of max_chars of them
      assert.is_true(chars < 8000, tostring(chars))
      local brief = entry.request.messages[2].content
      assert.matches("- local:root: the last word: keep it short", brief, 1, true)
      assert.matches("earlier comments, %d+ bytes, left out of this brief to keep it within 25%% of context%.max_chars; "
        .. "'orket card P%-1' shows every comment", brief)
    end
    -- the card itself keeps every comment
    local c = H.orket("card P-1 --json", { cwd = dir })
    assert.is_true(#c.stdout > 12 * 20000, tostring(#c.stdout))
  end)

  it("cut at the output limit in every turn blocks the card saying so, without the tool-calling advice", function()
    local fake = require("tests.fake_server").start()
    local dir = project(fake, { "fake:wire=length", "fake:tool=update_issue_status,arg_status=done" },
      "budgets = { turns_per_card = 2, max_output_tokens = 300 }")
    local r = H.orket("run P --json", { cwd = dir })
    fake.stop()
    local blocked, ended
    for _, ev in ipairs(events(r.stdout)) do
      if ev.type == "card_blocked" then blocked = ev end
      if ev.type == "run_end" then ended = ev end
    end
    assert.is_table(ended, r.stdout)
    assert.is_table(blocked, r.stdout)
    -- the cut is the cause, and what to do about it leads to the retry
    assert.matches("as the provider ended its answers; raising budgets.turns_per_card would not help. The model's "
      .. "last answer: the answer was cut at the output limit (finish_reason length): raise budgets.max_output_tokens, "
      .. "or give the seat a model with more room; then 'orket retry P-1' puts it back to ready.", blocked.detail, 1, true)
    assert.is_nil(blocked.detail:find("dialect", 1, true), blocked.detail)
    assert.is_nil(blocked.detail:find("Check that the model can call tools", 1, true), blocked.detail)
  end)
end)
