-- What a prompt holds and how it is counted (docs/cost.md): an estimated prompt counts the
-- tools' definitions as the spend's estimate does, and a card's comments are bounded in the
-- brief by a share of context.max_chars, the newest whole, at a cut that new comments leave
-- where it was.
local common = require "orket.llm.common"
local turn = require "orket.engine.turn"
local prompt = require "orket.engine.prompt"

local function tool(i)
  return { name = "tool_" .. i, description = string.rep("d", 300),
    parameters = { type = "object", properties = { path = { type = "string" } } } }
end

describe("an estimated prompt", function()
  it("counts the request's tools, as the estimate before the call does", function()
    local msgs = { { role = "system", content = string.rep("s", 400) }, { role = "user", content = string.rep("u", 400) } }
    local tools = {}
    for i = 1, 10 do tools[i] = tool(i) end
    local req = { messages = msgs, tools = tools }
    local u = common.finish_usage(nil, req, "ok", {})
    assert.is_true(u.estimated)
    assert.equal(common.estimate_tokens(common.messages_chars(msgs) + common.tools_chars(req)), u.prompt_tokens)
    assert.is_true(u.prompt_tokens > 3 * common.estimate_tokens(800), tostring(u.prompt_tokens))
    -- a provider's counts stay its own
    local sent = common.finish_usage({ prompt_tokens = 7, completion_tokens = 1 }, req, "ok", {})
    assert.equal(7, sent.prompt_tokens)
    assert.is_false(sent.estimated)
  end)
end)

local function comments(n, size)
  local out = {}
  for i = 1, n do out[i] = { author = "local:root", body = string.format("%03d", i) .. string.rep("x", size - 3) } end
  return out
end

local function brief_chars(list)
  return #prompt.comments(list)
end

describe("a card's comments in the brief", function()
  it("that fit are kept as they are", function()
    local list = comments(3, 100)
    assert.equal(list, turn.fold_comments(list, 8000, "C-1"))
  end)

  it("are bounded by a share of context.max_chars, the newest whole, the rest said with how to read them", function()
    local list = comments(30, 60000)
    local out = turn.fold_comments(list, 8000, "C-1")
    -- 30 comments of 60 KB went into every call: now about a quarter of max_chars
    assert.is_true(brief_chars(out) < 8000 * turn.COMMENTS_PERCENT // 100 + 300, tostring(brief_chars(out)))
    assert.equal("orket", out[1].author)
    assert.same({ comments = 29, bytes = 29 * 60000 }, out[1].omitted)
    assert.matches("29 earlier comments, 1740000 bytes, left out of this brief", out[1].body, 1, true)
    assert.matches("'orket card C-1' shows every comment", out[1].body, 1, true)
    -- the newest, past the share alone, is clipped with its whole length said
    assert.equal(2, #out)
    assert.matches("^030x+%.%.%. %(60000 bytes%)$", out[2].body)

    local small = turn.fold_comments(comments(40, 300), 8000, "C-1")
    assert.equal(40, tonumber(small[#small].body:sub(1, 3)))
    assert.equal(300, #small[#small].body) -- whole
    assert.is_true(brief_chars(small) <= 2000 + 300, tostring(brief_chars(small)))
    assert.equal(small[1].omitted.comments + #small - 1, 40)
  end)

  it("are cut at a place new comments leave where it was until they pass the share again", function()
    local list = comments(40, 100)
    local first = turn.fold_comments(list, 8000, "C-1")
    local cut = first[1].omitted.comments
    local moves = 0
    for n = 41, 80 do
      list[n] = { author = "local:root", body = string.format("%03d", n) .. string.rep("x", 97) }
      local out = turn.fold_comments(list, 8000, "C-1")
      assert.is_true(brief_chars(out) <= 2000 + 300)
      assert.equal(n, tonumber(out[#out].body:sub(1, 3))) -- the newest is there
      if out[1].omitted.comments ~= cut then
        moves = moves + 1
        -- a move goes a group on: at least half the share's bytes
        assert.is_true((out[1].omitted.comments - cut) * 100 >= 1000 / 2, tostring(out[1].omitted.comments - cut))
        cut = out[1].omitted.comments
      end
    end
    -- comments of 114 bytes in the brief: a move every 9 comments (a group of 1,000 bytes), not at each
    assert.is_true(moves >= 1 and moves <= 6, tostring(moves))
  end)
end)

describe("a card whose answers the provider cut at the output limit", function()
  local H = require "tests.helpers"
  local F = require "tests.engine_fakes"
  after_each(H.cleanup)

  -- the stall report's next step said "once the model calls tools", as for a model that
  -- cannot call them: the output limit is what to raise
  it("is reported as cut, with the output limit to raise, in the run's stall report", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" } })
    local client = F.llm(b, {})
    function client:chat(req)
      self.requests[#self.requests + 1] = req
      return { content = "a long answer", tool_calls = {}, finish_reason = "length", model = "fake:model",
        usage = { prompt_tokens = 100, completion_tokens = 300 } }
    end
    local e = F.engine(db, b, { llm = client, config = { budgets = { turns_per_card = 2 } } })
    local status, report = e:execute(assert(e:start("E")))
    assert.equal("failed", status)
    assert.equal("blocked", b:get("E-1").status)
    assert.equal("raise budgets.max_output_tokens (or give the seat a model with more room), then orket retry E-1",
      report.stuck[1].next)
    db:close()
  end)
end)

describe("a card whose answers the provider's content filter stopped", function()
  local H = require "tests.helpers"
  local F = require "tests.engine_fakes"
  after_each(H.cleanup)

  -- it was said as cut at the output limit: raising max_output_tokens changes nothing there
  it("is reported as filtered, never as the output limit", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" } })
    local client = F.llm(b, {})
    function client:chat(req)
      self.requests[#self.requests + 1] = req
      return { content = "", tool_calls = {}, finish_reason = "content_filter", model = "fake:model",
        usage = { prompt_tokens = 100, completion_tokens = 3 } }
    end
    local e = F.engine(db, b, { llm = client, config = { budgets = { turns_per_card = 2 } } })
    local status, report = e:execute(assert(e:start("E")))
    assert.equal("failed", status)
    assert.equal("reword the card or give the seat another model (see the card's last comment), then orket retry E-1",
      report.stuck[1].next)
    local cs = b:comments("E-1")
    assert.matches("as the provider's content filter stopped its answers; raising budgets.turns_per_card would not "
      .. "help. The model's last answer: the provider's content filter stopped the answer (finish_reason "
      .. "content_filter): reword the card, or give the seat another model, then 'orket retry E-1' puts it back to "
      .. "ready.", cs[#cs].body, 1, true)
    assert.is_nil(cs[#cs].body:find("max_output_tokens", 1, true))
    db:close()
  end)
end)
