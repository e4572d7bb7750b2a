-- Prompts built for a prompt cache (docs/cost.md): the same tools and tool instructions are
-- the same bytes in every process (lua-cjson's key order follows a per-process hash seed),
-- and `orket log --cache` shows, per call, how much of the prompt repeated the call before
-- on the same card and seat.
local H = require "tests.helpers"
local cjson = require "cjson"

describe("prompts built for the cache", function()
  after_each(H.cleanup)

  it("are byte-identical across processes: the tools as sent, the json dialect's instructions", function()
    local dir = H.tmpdir()
    H.write(dir .. "/print.lua", string.format([[
local tools = require "orket.tools"
local common = require "orket.llm.common"
local prompt = require "orket.engine.prompt"
local reg = assert(tools.load_dirs { %q })
local specs = reg:specs()
local _, text = common.wire_tools { tools = specs, fixed_tools = true }
-- lua-cjson's own text of the same schemas: differs between processes (the check can fail)
local raw = {}
for i, s in ipairs(specs) do raw[i] = require("cjson").encode(s.parameters) end
io.write(text, "\n", prompt.tool_dialect(specs), "\n=RAW=\n", table.concat(raw), "\n")
]], H.ROOT .. "/tools"))
    local outs, raws = {}, {}
    for i = 1, 3 do
      local r = H.orket("lua print.lua", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      outs[i], raws[i] = r.stdout:match("^(.*)\n=RAW=\n(.*)$")
      assert.truthy(outs[i])
    end
    assert.equal(outs[1], outs[2])
    assert.equal(outs[1], outs[3])
    assert.truthy(outs[1]:find('"parameters":{', 1, true))
    -- the processes did differ in their hash order: what the sorted encoding guards against
    assert.is_true(raws[1] ~= raws[2] or raws[1] ~= raws[3], "three processes encoded alike with lua-cjson")
  end)

  it("send each seat the same system text and brief in every process", function()
    -- three processes run the same board; each call's system message and first user
    -- message (the card's brief and the role's text), as the journal recorded them, are
    -- compared byte for byte (a tool's later results hold times, which differ)
    local texts = {}
    for i = 1, 3 do
      local dir = H.example("notes")
      assert.equal(0, H.orket("run NOTES", { cwd = dir }).status)
      local doc = cjson.decode(H.orket("log 1 --json", { cwd = dir }).stdout)
      local calls, systems = {}, {}
      for _, ev in ipairs(doc.events) do
        if ev.turn and ev.turn.messages then
          local m = ev.turn.messages
          calls[#calls + 1] = table.concat({ ev.card, tostring(ev.actor), tostring(ev.turn.step), m[1].role,
            m[1].content, m[2].role, m[2].content }, "\0")
          systems[m[1].content] = true
        end
      end
      table.sort(calls)
      texts[i] = table.concat(calls, "\1")
      -- one system message for every seat: a model server's cache keeps it across seats
      local n = 0
      for _ in pairs(systems) do n = n + 1 end
      assert.equal(1, n)
    end
    assert.is_true(#texts[1] > 1000)
    assert.equal(texts[1], texts[2])
    assert.equal(texts[1], texts[3])
  end)

  it("orket log --cache shows each call's prefix shared with the call before on its card and seat", function()
    local dir = H.example("notes")
    assert.equal(0, H.orket("run NOTES", { cwd = dir }).status)
    local r = H.orket("log 1 --cache", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^run 1: each call's prompt against the call before on its card and seat\nCARD +SEAT +TURN +STEP +PROMPT +PREFIX +SHARE +NOTE\n", r.stdout)
    assert.matches("\ntotal: [%d%.]+%% of the prompt characters of %d+ calls after a card and seat's first repeated the call before\n$", r.stdout)
    local doc = cjson.decode(H.orket("log 1 --cache --json", { cwd = dir }).stdout)
    assert.equal("orket.log.cache/1", doc.format)
    local firsts, later = {}, 0
    for _, c in ipairs(doc.calls) do
      local key = c.card .. "/" .. c.seat
      if not firsts[key] then
        firsts[key] = true
        assert.equal(0, c.prefix)
      else
        later = later + 1
        assert.is_true(c.prefix <= c.chars)
      end
    end
    assert.equal(later, doc.total.calls)
    -- within a card and seat's turn a step only appends: most of each later prompt repeats
    assert.is_true(doc.total.prefix * 2 > doc.total.chars, cjson.encode(doc.total))
  end)

  describe("with a provider that needs cache marks", function()
    local fake
    setup(function() fake = require("tests.fake_server").start() end)
    teardown(function()
      fake.stop()
      H.kill_servers()
    end)
    before_each(function() fake.reset() end)

    local function sent(marks)
      local dir = fake.one_issue(string.format([[
models = { default = "fake:tool=write_file,then=update_issue_status,then_arg_status=code_review",
  providers = { fake = { kind = "openai", base_url = %q, cache_marks = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], fake.url .. "/v1", marks))
      H.orket("run M", { cwd = dir })
      local log = fake.log()
      assert.is_true(#log >= 2, cjson.encode(log))
      return log
    end

    it("marks the system message, the brief and the last message for cache_control", function()
      local log = sent("cache_control")
      local req = log[2].request -- the second step: a call and its result after the brief
      local msgs = req.messages
      local function marked(m)
        return type(m.content) == "table" and m.content[1].type == "text"
          and type(m.content[1].text) == "string" and m.content[1].cache_control.type == "ephemeral"
      end
      assert.equal("system", msgs[1].role)
      assert.is_true(marked(msgs[1]), cjson.encode(msgs[1]))
      assert.is_true(marked(msgs[2]), cjson.encode(msgs[2]))
      assert.matches("^Issue M%-1: Do it", msgs[2].content[1].text)
      assert.equal("tool", msgs[#msgs].role)
      assert.is_true(marked(msgs[#msgs]), cjson.encode(msgs[#msgs]))
      for i = 3, #msgs - 1 do assert.is_false(marked(msgs[i]), i) end
      assert.is_true(#req.tools > 0) -- the tools' text joined into the body stays valid JSON
      assert.is_nil(req.cache_prompt)
    end)

    it("asks llama.cpp's server to keep its cache with cache_prompt", function()
      local req = sent("cache_prompt")[1].request
      assert.is_true(req.cache_prompt)
      assert.equal("string", type(req.messages[1].content))
    end)
  end)
end)
