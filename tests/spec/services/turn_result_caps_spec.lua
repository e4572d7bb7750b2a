-- orket.engine.turn: what tool results may hand the model (a call's, a step's, a turn's),
-- checked before a result is journaled; past a cap the call answers E2BIG with what to ask
-- for instead, and neither the store nor the next request holds what it left out. And
-- read_file answers a file that is not text with its size and first bytes, not its content.
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local turn = require "orket.engine.turn"
local W = require "orket.workspace"
local tools_mod = require "orket.tools"
local turns = require "orket.store.turns"

local MiB = 1024 * 1024
-- the caps (as documented in docs/tools.md; named here too, so that the test says what it
-- expects of an engine without them)
local RESULT_MAX = turn.RESULT_MAX or 2 * MiB
local STEP_RESULTS_MAX = turn.STEP_RESULTS_MAX or 8 * MiB
local TURN_RESULTS_MAX = turn.TURN_RESULTS_MAX or 16 * MiB

-- A registry of one tool, blob {size=}: a result of that many bytes (and the board's tools).
local function blob_tools()
  local reg = F.tools()
  local get, run = reg.get, reg.run
  function reg:get(name)
    if name == "blob" then
      return { name = "blob", effect = "read", parameters = { type = "object",
        properties = { limit = { type = "integer" }, offset = { type = "integer" } } } }
    end
    return get(self, name)
  end
  function reg:run(name, args, ctx)
    if name ~= "blob" then return run(self, name, args, ctx) end
    return { ok = true, result = { content = string.rep("a", args.size) } }
  end
  return reg
end

local function call(name, args, id) return { id = id, name = name, arguments = args, raw_arguments = "{}" } end

-- The coder's steps: step n makes the calls steps[n]; then it hands the card in.
local function client(steps)
  local c = { requests = {} }
  function c:chat(req)
    self.requests[#self.requests + 1] = req
    local m = req.meta
    local calls
    if m.role == "integrity_guard" then
      calls = { call("update_issue_status", { status = "done" }, "r1") }
    elseif steps[m.step] then
      calls = {}
      for i, size in ipairs(steps[m.step]) do calls[i] = call("blob", { size = size }, "b" .. m.step .. "-" .. i) end
    else
      calls = { call("update_issue_status", { status = "code_review" }, "cr") }
    end
    return { content = "", tool_calls = calls, finish_reason = "tool_calls",
      usage = { prompt_tokens = 10, completion_tokens = 1 }, model = "fake:model" }
  end
  return c
end

-- The results of blob the model was sent, by call id ("b<step>-<i>"), across its requests
local function tool_messages(c)
  local by_id = {}
  for _, r in ipairs(c.requests) do
    for _, m in ipairs(r.messages) do
      if m.name == "blob" and m.tool_call_id then by_id[m.tool_call_id] = m.content end
    end
  end
  return by_id
end

describe("tool results' caps", function()
  after_each(H.cleanup)

  it("refuse a call's result past a call's, a step's and a turn's cap, saying what to ask for, before the journal", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "read" } })
    local big = RESULT_MAX + 1 -- one byte over, before its encoding's quotes
    local part = math.floor(STEP_RESULTS_MAX / 4) - 100 -- four fit a step
    local c = client {
      { big, part, part, part, part, part }, -- the call's cap, then the step's at the 5th part
      { part, part, part, part }, -- up to the turn's: 8 parts fit
      { part }, -- past the turn's
    }
    local events = {}
    local e = F.engine(db, b, { llm = c, tools = blob_tools(), events = events,
      gate = function() return { verdict = "allow" } end })
    e:execute(assert(e:start("E")))
    local codes = {}
    for _, ev in ipairs(events) do
      if ev.type == "tool" and ev.tool == "blob" then codes[#codes + 1] = ev.code or "ok" end
    end
    assert.same({ "E2BIG", "ok", "ok", "ok", "ok", "E2BIG", "ok", "ok", "ok", "ok", "E2BIG" }, codes)
    local msgs = tool_messages(c)
    assert.matches('"code":"E2BIG"', msgs["b1-1"], 1, true)
    assert.matches(string.format("blob: its result of %d bytes is over the %d one call may return", big + 14,
      RESULT_MAX), msgs["b1-1"], 1, true)
    assert.matches("Ask for less: a smaller `limit`, then the rest with `offset`.", msgs["b1-1"], 1, true)
    assert.equal(part + 14, #msgs["b1-2"]) -- {"content":"..."}
    assert.matches("past the " .. STEP_RESULTS_MAX .. " bytes one step may return", msgs["b1-6"], 1, true)
    assert.matches("make fewer such calls in one response, or ask for less", msgs["b1-6"], 1, true)
    assert.matches("past the " .. TURN_RESULTS_MAX .. " bytes one turn may return", msgs["b3-1"], 1, true)
    -- the store holds the refusals, never the bytes they left out
    local stored = 0
    for id = 1, 40 do
      local text = turns.tool_call_result(db, id)
      if text then stored = stored + #text end
    end
    -- (the 8 results that fit, the board's calls and the three refusals)
    assert.is_true(stored < 8 * (part + 100) + 3000, "the store holds " .. stored .. " bytes of results")
    db:close()
  end)
end)

describe("read_file of a file that is not text", function()
  after_each(H.cleanup)

  local function read(root, args)
    local reg = assert(tools_mod.load_dirs { H.ROOT .. "/tools" })
    local ws = assert(W.open(root))
    local res = reg:run("read_file", args, { fs = ws })
    ws:close()
    return res
  end

  it("answers its size and first bytes in hex, not its content", function()
    local root = H.tmpdir()
    local bytes = {}
    for i = 0, 4095 do bytes[#bytes + 1] = string.char(i % 3 == 0 and 1 or 0x80 + i % 64) end
    H.write(root .. "/bin.dat", table.concat(bytes))
    local res = read(root, { path = "bin.dat", limit = 1048576 })
    assert.is_true(res.ok, res.error)
    local r = res.result
    assert.is_true(r.binary)
    assert.is_nil(r.content)
    assert.equal(4096, r.size)
    assert.equal("0181820184850187", r.head:sub(1, 16))
    assert.matches("not UTF-8 text (a byte that is not UTF-8 at byte 1)", r.note, 1, true)
    assert.is_true(#turn.encode_result(r) < 600)
    H.write(root .. "/nul.txt", "abc\0def")
    r = read(root, { path = "nul.txt" }).result
    assert.is_true(r.binary)
    assert.matches("a NUL byte at byte 3", r.note, 1, true)
  end)

  it("reads text cut inside a character at either end of its range as text", function()
    local root = H.tmpdir()
    H.write(root .. "/t.txt", "héllo wörld ✓ done")
    for _, range in ipairs { { offset = 2, limit = 4 }, { offset = 0, limit = 2 }, { offset = 13, limit = 2 } } do
      local r = read(root, { path = "t.txt", offset = range.offset, limit = range.limit }).result
      assert.is_nil(r.binary, range.offset .. "+" .. range.limit)
      assert.is_string(r.content)
    end
  end)
end)
