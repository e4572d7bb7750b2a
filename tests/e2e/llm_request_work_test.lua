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
