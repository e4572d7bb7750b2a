-- The model client's work per request that need not be done again: the answer walked for a
-- key only when the provider has one, fixed tool entries checked once. Against the fake
-- model server (a separate process on loopback).
local llm = require "orket.llm"
local common = require "orket.llm.common"
local calls = require "tests.calls"

local fake = require("tests.fake_server").start()
local USER = { { role = "user", content = "hello" } }

teardown(function() fake.stop() end)

local function client(key)
  return llm.new({ default = "oa:ok", providers = {
    oa = { kind = "openai", base_url = fake.url .. "/v1", api_key_env = "FAKE_LLM_KEY", retry = { max_attempts = 1 } },
    ol = { kind = "ollama", base_url = fake.url, api_key_env = "FAKE_LLM_KEY", retry = { max_attempts = 1 } } } },
    { getenv = function(k) if k == "FAKE_LLM_KEY" then return key end end })
end

-- common.mask's calls while f runs
local function masks(f) return calls(common, "mask", f) end

describe("an answer", function()
  before_each(function() fake.reset() end)

  it("is not walked for a key when the provider has none", function()
    for _, wire in ipairs { "oa", "ol" } do
      local c = client(nil)
      local r
      assert.equal(0, masks(function()
        r = assert(c:chat { model = wire .. ":tool=add_issue_comment,arg_note=hi", messages = USER })
      end))
      assert.equal("hi", r.tool_calls[1].arguments.note)
    end
  end)

  it("is walked for a key when the provider has one, and the key it echoes is masked", function()
    for _, wire in ipairs { "oa", "ol" } do
      local c = client("sk-test-SECRET-0123456789")
      local r
      assert.is_true(masks(function()
        r = assert(c:chat { model = wire .. ":echo_key,chunks=2", messages = USER })
      end) > 0)
      assert.is_nil(r.content:find("SECRET", 1, true), r.content)
    end
  end)
end)

describe("fixed tool entries", function()
  before_each(function() fake.reset() end)

  local function entry(name)
    return { name = name, description = name, parameters = { type = "object", properties = {} } }
  end

  it("are checked at their first request, and a new entry in a known list is checked", function()
    local c = client(nil)
    local a, b = entry("a"), entry("b")
    assert(c:chat { messages = USER, tools = { a, b }, fixed_tools = true })
    local bad = { name = 5 }
    assert.has_error(function() c:chat { messages = USER, tools = { a, b, bad }, fixed_tools = true } end,
      "bad argument #1 to 'chat' (tools[3].name must be a string)")
    local odd = entry("odd")
    odd.parameters = "none"
    assert.has_error(function() c:chat { messages = USER, tools = { odd }, fixed_tools = true } end,
      "bad argument #1 to 'chat' (tools[1].parameters must be a table (a JSON schema))")
  end)

  it("are not checked again: the caller said they do not change; tools that are not fixed are", function()
    local c = client(nil)
    local a = entry("a")
    assert(c:chat { messages = USER, tools = { a }, fixed_tools = true })
    -- a caller that breaks its word: what was checked is not looked at again
    a.description = 7
    assert(c:chat { messages = USER, tools = { a }, fixed_tools = true })
    assert.has_error(function() c:chat { messages = USER, tools = { a } } end,
      "bad argument #1 to 'chat' (tools[1].description must be a string)")
  end)
end)

describe("a request body's members other than its messages", function()
  before_each(function() fake.reset() end)

  local tools = { { name = "a", description = "a", parameters = { type = "object", properties = {} } } }

  -- the requests the server saw since the last reset, decoded
  local function seen()
    local out = {}
    for _, e in ipairs(fake.log()) do
      if e.request then out[#out + 1] = e.request end
    end
    return out
  end

  it("are sent as the request asks, whatever was sent before", function()
    local c = client(nil)
    local cases = {
      { model = "oa:ok", max_tokens = 10 },
      { model = "oa:ok", max_tokens = 20 },
      { model = "oa:ok", max_tokens = 20, tool_choice = "required" },
      { model = "oa:ok", max_tokens = 20, tool_choice = "none", stream = false },
      { model = "oa:other", max_tokens = 20, tool_choice = "none" },
      { model = "oa:other", tools_off = true },
      { model = "oa:other", options = { temperature = 0.5 } },
      { model = "oa:other", tool_choice = { name = "a" } },
      { model = "ol:ok", max_tokens = 10 },
      { model = "ol:ok", max_tokens = 30 },
      { model = "ol:ok", options = { num_ctx = 99 } },
    }
    for round = 1, 2 do -- the second time, from what was kept
      fake.reset()
      for _, k in ipairs(cases) do
        assert(c:chat { model = k.model, messages = USER, tools = not k.tools_off and tools or nil, fixed_tools = true,
          max_tokens = k.max_tokens, tool_choice = k.tool_choice, stream = k.stream, options = k.options })
      end
      local got = seen()
      assert.equal(#cases, #got)
      for i, k in ipairs(cases) do
        local r, what = got[i], k.model .. " case " .. i .. " round " .. round
        assert.equal(k.model:match(":(.*)"), r.model, what)
        assert.same(USER[1].content, r.messages[1].content, what)
        assert.equal(not k.tools_off and "a" or nil, r.tools and r.tools[1]["function"].name, what)
        if k.model:match("^oa") then
          assert.equal(k.max_tokens, r.max_tokens, what)
          assert.same(type(k.tool_choice) == "table" and { type = "function", ["function"] = { name = "a" } }
            or k.tool_choice, r.tool_choice, what)
          assert.equal(k.stream ~= false, r.stream, what)
          assert.equal(k.options and 0.5 or nil, r.temperature, what)
        else
          assert.equal(k.max_tokens, r.options and r.options.num_predict, what)
          assert.equal(k.options and 99 or nil, r.options and r.options.num_ctx, what)
        end
      end
    end
  end)

  it("are encoded once for requests that differ only in their messages", function()
    local c = client(nil)
    local json = require "cjson.safe"
    local encode, whole = json.encode, 0
    json.encode = function(v, ...)
      if type(v) == "table" and v.model ~= nil then whole = whole + 1 end
      return encode(v, ...)
    end
    local ok, err = pcall(function()
      for i = 1, 3 do
        assert(c:chat { messages = { { role = "user", content = "turn " .. i } }, tools = tools, fixed_tools = true,
          max_tokens = 10 })
      end
    end)
    json.encode = encode
    assert(ok, err)
    assert.equal(1, whole)
    local got = seen()
    assert.equal("turn 3", got[3].messages[1].content)
    assert.equal(10, got[3].max_tokens)
  end)
end)
