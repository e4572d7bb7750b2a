-- The live view counts the tokens of a charged model_failure (a stream cut after it began,
-- a refused usage, a call the run's stop aborted after it was sent), as run_end and
-- `orket log`'s usage do. Before, only `model` events were counted: a resumed run whose
-- session was charged only for such a call said "0 tokens ... in this session".
local liveview = require "orket.terminal.liveview"

local function view()
  local t = { out = {}, ms = 0 }
  t.view = liveview.new {
    write = function(s) t.out[#t.out + 1] = s end,
    now = function() return t.ms end,
    width = 100,
    scope = function() return { { id = "N-1", status = "ready" } } end,
  }
  return t
end

local function last(t)
  return (t.out[#t.out]:gsub("\27%[%d*A", ""):gsub("\27%[[%d;]*[mJK]", ""):gsub("\r", ""))
end

describe("live view tokens of charged model failures", function()
  it("counts them in the header and in a resumed run's session summary", function()
    local t = view()
    local v = t.view
    v:event { type = "run_start", run_id = 1, target = "N", concurrency = 1, resumed = true }
    v:event { type = "turn_start", card = "N-1", seat = "s", role = "r", phase = "work", turn = 1 }
    -- an uncharged failure (a refused connection) counts nothing
    v:event { type = "model_failure", card = "N-1", seat = "s", turn = 1, step = 1, class = "transient" }
    v:event { type = "model_failure", card = "N-1", seat = "s", turn = 1, step = 1, class = "transient",
      prompt_tokens = 100, completion_tokens = 20 }
    t.ms = 1500
    v:tick()
    assert.matches("^orket run 1 N  00:01  120 tokens", last(t))
    v:event { type = "model_failure", card = "N-1", seat = "s", turn = 1, step = 2, class = "canceled",
      prompt_tokens = 1921, completion_tokens = 4096 }
    v:event { type = "run_end", run_id = 1, status = "interrupted", tokens = 12154 }
    assert.matches("^run 1 N interrupted in 00:01, 6,137 tokens, 0 turns in this session; 12,154 tokens in the whole run\n",
      last(t))
  end)
end)
