-- orket.llm.scripted: a rule's pattern meets agent-controlled text, so matching it runs
-- under a budget: a pathological pattern and text end the call with an error naming the
-- rule, quickly, and the host carries on.
local scripted = require "orket.llm.scripted"

local function ask(s, text)
  return scripted.chat(s, "s", "m", { messages = { { role = "user", content = text } }, meta = {} })
end

describe("scripted provider's rule patterns", function()
  it("match as Lua patterns", function()
    local s = assert(scripted.load { rules = {
      { match = "^review (%w+)$", reply = { content = "approved" } },
    }, default = { content = "default" } })
    assert.equal("approved", ask(s, "review ISSUE1").content)
    assert.equal("default", ask(s, "review two words").content)
  end)

  it("stop a pathological pattern on hostile text with an error naming the rule", function()
    local s = assert(scripted.load { rules = {
      { match = "x", reply = { content = "x" } },
      { match = ".-.-.-.-.-b", reply = { content = "never" } },
    }, default = { content = "default" } })
    local r, msg, class = ask(s, ("a"):rep(100000))
    assert.is_nil(r)
    assert.equal("bad_request", class)
    assert.matches("^scripted: rules%[2%]%.match: .*budget exceeded", msg)
    -- the host is healthy and ordinary text still gets its answer
    assert.equal("x", ask(s, "x marks").content)
    assert.equal("default", ask(s, "plain").content)
  end)

  it("refuse a malformed pattern when the rules load", function()
    local s, err = scripted.load { rules = { { match = "%f", reply = { content = "x" } } } }
    assert.is_nil(s)
    assert.matches("rules%[1%]%.match: missing '%[' after '%%f'", err)
  end)
end)
