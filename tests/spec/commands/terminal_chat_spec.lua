-- orket.terminal.chat: the REPL's llm.chat keeps its client and folder in its session, so
-- two sessions do not share them, and orket.llm keeps no state and writes nothing itself.
local H = require "tests.helpers"
local chat = require "orket.terminal.chat"
local llm = require "orket.llm"

local USER = { { role = "user", content = "hi" } }

-- A folder whose orket.lua has one scripted model replying `text`.
local function project(text)
  local dir = H.tmpdir()
  H.write(dir .. "/orket.lua", string.format('models = { default = "offline:x", providers = { offline = { '
    .. 'kind = "scripted", rules = { { reply = { content = %q } } } } } }\n', text))
  return dir
end

local function quiet(req)
  local r = {}
  for k, v in pairs(req) do r[k] = v end
  r.on_delta = function() end
  return r
end

describe("orket.terminal.chat", function()
  after_each(H.cleanup)

  it("keeps each session's folder and client to itself", function()
    local a, b = chat.new(project("from A")), chat.new(project("from B"))
    assert.equal("from A", assert(a.chat(quiet { messages = USER })).content)
    assert.equal("from B", assert(b.chat(quiet { messages = USER })).content)
    -- a new folder for one session leaves the other's client alone
    local c = project("from C")
    a.use_dir(c)
    assert.equal("from C", assert(a.chat(quiet { messages = USER })).content)
    assert.equal("from B", assert(b.chat(quiet { messages = USER })).content)
  end)

  it("rebuilds its client after reset, reading orket.lua again", function()
    local dir = project("first")
    local s = chat.new(dir)
    assert.equal("first", assert(s.chat(quiet { messages = USER })).content)
    H.write(dir .. "/orket.lua", "models = 1\n")
    assert.equal("first", assert(s.chat(quiet { messages = USER })).content) -- the client it built
    s.reset()
    local r, err, class = s.chat(quiet { messages = USER })
    assert.is_nil(r)
    assert.equal("bad_request", class)
    assert.matches("llm.chat: in .-: orket.lua:1: models must be a table", err)
  end)

  it("blames a malformed request on its caller", function()
    local s = chat.new(project("x"))
    local ok, err = pcall(function() local r = s.chat({}) return r end)
    assert.is_false(ok)
    assert.matches("^.-terminal_chat_spec.lua:%d+: bad argument #1 to 'chat' %(messages must be a non%-empty list%)", err)
  end)

  it("gives the REPL an llm with orket.llm's functions beside the session's", function()
    local g = chat.global(project("g"))
    assert.equal(llm.open, g.open)
    assert.equal(llm.printer, g.printer)
    assert.equal("g", assert(g.chat(quiet { messages = USER })).content)
  end)
end)

describe("orket.llm", function()
  it("has no chat of its own, nor state for one", function()
    assert.is_nil(rawget(llm, "chat"))
    assert.is_nil(rawget(llm, "reset"))
    assert.is_nil(rawget(llm, "use_dir"))
  end)

  it("writes to no stream of its own: its printer writes where it is told", function()
    for f in io.popen("ls " .. H.ROOT .. "/lua/orket/llm/*.lua"):lines() do
      local src = assert(io.open(f)):read("a"):gsub("%-%-[^\n]*", "")
      assert.is_nil(src:find("io%.stdout"), f)
      assert.is_nil(src:find("io%.stderr"), f)
      assert.is_nil(src:find("io%.write"), f)
      assert.is_nil(src:find("%f[%w_]print%s*%("), f)
    end
  end)
end)
