-- orket.otel's chat spans against the GenAI conventions (docs/observability.md), from the
-- events the engine emits as it emits them; and the calls' cost among the client metrics.
local otel = require "orket.otel"
local cjson = require "cjson"

before_each(function() otel.reset() end)

-- A tracer whose flush keeps the spans it queued, decoded, instead of sending them.
local function tracer()
  local cfg = otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end)
  local tr = otel.new(cfg, "proj")
  local spans = {}
  tr.flush = function(self)
    self:seal()
    for _, b in ipairs(self.queue) do
      for _, sp in ipairs(cjson.decode(b.body:text()).resourceSpans[1].scopeSpans[1].spans) do spans[#spans + 1] = sp end
    end
    self.queue, self.queued = {}, 0
  end
  return tr, spans
end

local function attrs(sp)
  local v = {}
  for _, a in ipairs(sp.attributes) do v[a.key] = a.value.stringValue or a.value.intValue end
  return v
end

describe("a chat span's gen_ai.response.model", function()
  it("is the model the answer named, and absent on a failed call, whose event names the one asked", function()
    local tr, spans = tracer()
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, latency_ms = 3, prompt_tokens = 10,
      completion_tokens = 2, response_model = "m1-2024-08-06" }
    -- as orket.engine.turn emits a charged failure (a stream cut): response_model is the
    -- "provider:model" the call asked for
    tr:event { type = "model_failure", run_id = 7, card = "M-1", turn = 1, step = 2, class = "transient",
      latency_ms = 4, prompt_tokens = 50, completion_tokens = 4096, cost = 900, currency = "USD",
      response_model = "fake:m1" }
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "model_error" }
    tr:event { type = "run_end", run_id = 7, status = "done" }
    tr:flush()
    local chats = {}
    for _, sp in ipairs(spans) do
      if sp.name == "chat m1" then chats[#chats + 1] = attrs(sp) end
    end
    assert.equal(2, #chats)
    table.sort(chats, function(a, b) return a["orket.step"] < b["orket.step"] end)
    assert.same({ "m1", "m1-2024-08-06" }, { chats[1]["gen_ai.request.model"], chats[1]["gen_ai.response.model"] })
    assert.same({ "m1", "transient", "900" }, { chats[2]["gen_ai.request.model"], chats[2]["error.type"],
      chats[2]["orket.cost.micros"] })
    assert.is_nil(chats[2]["gen_ai.response.model"])
  end)
end)

describe("the client metrics", function()
  -- the cost metric's data points as "model currency value", sorted
  local function costs(tr)
    local out = {}
    for _, m in ipairs(cjson.decode((assert(tr:metrics()))).resourceMetrics[1].scopeMetrics[1].metrics) do
      if m.name == "orket.client.cost" then
        assert.same({ "{micro-unit}", 2, true }, { m.unit, m.sum.aggregationTemporality, m.sum.isMonotonic })
        for _, dp in ipairs(m.sum.dataPoints) do
          local a = {}
          for _, kv in ipairs(dp.attributes) do a[kv.key] = kv.value.stringValue end
          assert.same({ "chat", "fake" }, { a["gen_ai.operation.name"], a["gen_ai.provider.name"] })
          out[#out + 1] = string.format("%s %s %s", a["gen_ai.request.model"], a["orket.cost.currency"], dp.asInt)
        end
      end
    end
    table.sort(out)
    return out
  end

  it("count what the calls cost, by model and currency, charged failures included, unpriced calls not", function()
    local tr = tracer()
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, latency_ms = 3, prompt_tokens = 4000,
      cached_tokens = 3000, completion_tokens = 5, cost = 6300, currency = "USD" }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 2, latency_ms = 3, prompt_tokens = 10,
      completion_tokens = 2, cost = 51, currency = "USD" }
    -- a stream cut after it began: charged its estimate
    tr:event { type = "model_failure", run_id = 7, card = "M-1", turn = 1, step = 3, class = "transient",
      latency_ms = 4, prompt_tokens = 50, completion_tokens = 4096, cost = 45715, currency = "USD" }
    -- a refused connection: not charged
    tr:event { type = "model_failure", run_id = 7, card = "M-1", turn = 1, step = 4, class = "transient", latency_ms = 1 }
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "model_error" }
    tr:event { type = "turn_start", run_id = 7, card = "M-2", turn = 1, role = "coder", model = "fake:m2" }
    tr:event { type = "model", run_id = 7, card = "M-2", turn = 1, step = 1, latency_ms = 3, prompt_tokens = 10,
      completion_tokens = 2, cost = 12000000, currency = "JPY" }
    tr:event { type = "turn_end", run_id = 7, card = "M-2", turn = 1, outcome = "handed_in" }
    -- a model without a price: its calls have no cost, and no data point of their own
    tr:event { type = "turn_start", run_id = 7, card = "M-3", turn = 1, role = "coder", model = "fake:free" }
    tr:event { type = "model", run_id = 7, card = "M-3", turn = 1, step = 1, latency_ms = 3, prompt_tokens = 10,
      completion_tokens = 2 }
    tr:event { type = "turn_end", run_id = 7, card = "M-3", turn = 1, outcome = "handed_in" }
    assert.same({ "m1 USD 52066", "m2 JPY 12000000" }, costs(tr))
  end)

  it("are sent with only the histograms when no call has a price", function()
    local tr = tracer()
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:free" }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, latency_ms = 3, prompt_tokens = 10,
      completion_tokens = 2 }
    local names = {}
    for _, m in ipairs(cjson.decode((assert(tr:metrics()))).resourceMetrics[1].scopeMetrics[1].metrics) do
      names[#names + 1] = m.name
    end
    table.sort(names)
    assert.same({ "gen_ai.client.operation.duration", "gen_ai.client.token.usage" }, names)
  end)
end)
