-- orket.inert: hostile text made safe for a terminal, and the JSON and REPL renderings
-- that must keep such text exact yet inert.
local inert = require "orket.inert"
local jsonout = require "orket.jsonout"
local pretty = require "orket.pretty"
local cjson = require "cjson"

-- What a terminal acts on, or what hides or reorders text: one sample of each class.
local HOSTILE = {
  csi = "\27[2J\27[H",
  osc_bel = "\27]0;PWNED\7",
  osc_st = "\27]52;c;ZXZpbA==\27\\",
  dcs = "\27P+q544e\27\\",
  c1_utf8 = "\194\155" .. "31m",
  c1_byte = "\155" .. "2J",
  rlo = "\226\128\174" .. "gnp.exe",
  isolate = "\226\129\166" .. "iso\226\129\169",
  zero_width = "a\226\128\139b\239\187\191",
  backspace_cr = "ok\8\8\8bad\r",
  del_nul = "x\127\0y",
  tag = "\243\160\128\129",
}

-- An independent check (not inert's own): no C0 control but tab and newline, no DEL, no
-- C1 control, no bidi control or zero-width character, valid UTF-8.
local function terminal_safe(s)
  if s:find("[%z\1-\8\11-\31\127]") then return false, "C0/DEL" end
  if s:find("\194[\128-\159]") then return false, "C1" end
  if s:find("\226\128[\139\142\143\168-\174]") or s:find("\226\129[\160-\169]") then return false, "format" end
  if s:find("\239\187\191") or s:find("\243\160") then return false, "BOM/tag" end
  if not utf8.len(s) then return false, "not UTF-8" end
  return true
end

describe("orket.inert", function()
  it("leaves plain text, newlines, tabs and ordinary Unicode as they are", function()
    local s = "a plain line\n\tindented: é, 中文, emoji \240\159\145\141\226\128\141\240\159\145\169"
    assert.equal(s, inert.text(s))
    assert.equal("a\\nb\\tc", inert.line("a\nb\tc"))
    assert.equal("1", inert.text(1))
  end)

  it("makes every class of hostile text inert, and shows what was there", function()
    for name, s in pairs(HOSTILE) do
      local t, l = inert.text(s), inert.line(s)
      assert.is_true(terminal_safe(t), name)
      assert.is_true(terminal_safe(l), name)
      assert.is_nil(l:find("\n"), name)
    end
    assert.equal("\\x1b[2J\\x1b[H", inert.text(HOSTILE.csi))
    assert.equal("\\x1b]0;PWNED\\x07", inert.text(HOSTILE.osc_bel))
    assert.equal("\\u{9b}31m", inert.text(HOSTILE.c1_utf8))
    assert.equal("\\x9b2J", inert.text(HOSTILE.c1_byte))
    assert.equal("\\u{202e}gnp.exe", inert.text(HOSTILE.rlo))
    assert.equal("ok\\x08\\x08\\x08bad\\r", inert.text(HOSTILE.backspace_cr))
    assert.equal("a\nb", inert.text("a\r\nb")) -- a CRLF is a line end, not a hostile CR
  end)

  it("rejects overlong forms, surrogates and truncated sequences as bytes", function()
    assert.equal("\\xc0\\xaf", inert.text("\192\175"))       -- overlong "/"
    assert.equal("\\xed\\xa0\\x80", inert.text("\237\160\128")) -- a surrogate
    assert.equal("x\\xe2\\x80", inert.text("x\226\128"))       -- cut short
    assert.equal("\\xf4\\x90\\x80\\x80", inert.text("\244\144\128\128")) -- above U+10FFFF
  end)

  it("indents the continuation lines of a value", function()
    assert.equal("one\n  two\n  \\x1b[31m", inert.indented("one\ntwo\n\27[31m", "  "))
  end)

  it("copies a whole event with every string inert", function()
    local ev = { type = "tool", tool = "x\27[2J", ok = false, list = { "\27]0;t\7" }, n = 3 }
    local c = inert.copy(ev)
    assert.equal("x\\x1b[2J", c.tool)
    assert.equal("\\x1b]0;t\\x07", c.list[1])
    assert.equal(3, c.n)
    assert.equal("x\27[2J", ev.tool) -- the original is untouched
  end)
end)

describe("jsonout and pretty keep hostile text exact but inert", function()
  it("writes C1 and invisible characters as \\u escapes that decode to the same string", function()
    for name, s in pairs(HOSTILE) do
      if name ~= "c1_byte" then
        local out = jsonout.encode { v = s }
        assert.is_true(terminal_safe(out), name)
        assert.equal(s, cjson.decode(out).v, name)
      end
    end
  end)

  it("writes bytes that are not UTF-8 as the replacement character", function()
    local out = jsonout.encode { v = HOSTILE.c1_byte }
    assert.equal('{"v":"\\ufffd2J"}', out)
  end)

  it("renders strings in the REPL as Lua that reads back the same", function()
    for name, s in pairs(HOSTILE) do
      local r = pretty.render(s)
      assert.is_true(terminal_safe(r), name)
      assert.equal(s, load("return " .. r)(), name)
    end
  end)

  it("decodes strictly (orket.c.inert, shared with the JSON encoder) and refuses bad arguments", function()
    local cinert = require "orket.c.inert"
    assert.same({ 2, 0x85 }, { inert.decode("\194\133", 1) })
    assert.same({ 4, 0xe0001 }, { inert.decode("x\243\160\128\129", 2) })
    for _, s in ipairs { "a", "\192\128", "\224\159\191", "\237\160\128", "\244\144\128\128", "\226\128", "\255" } do
      assert.is_nil(inert.decode(s, 1))
    end
    assert.is_true(inert.invisible(0x202e))
    assert.is_false(inert.invisible(0x200c))
    assert.is_false(cinert.invisible(-1))
    assert.has_error(function() cinert.decode("ab", 3) end, "bad argument #2 to 'decode' (out of range)")
    assert.has_error(function() cinert.decode({}, 1) end)
    assert.has_error(function() cinert.invisible("x") end)
  end)
  it("chars() counts as the schema checker's maxLength does, bytes that are not UTF-8 included", function()
    local cschema = require "orket.c.schema"
    local pieces = { "a", "é", "日", "\u{1F510}", "\255", "\128", "\194", "\237\160\128", "\0" }
    math.randomseed(7)
    for _ = 1, 300 do
      local t = {}
      for i = 1, math.random(0, 12) do t[i] = pieces[math.random(#pieces)] end
      local s = table.concat(t)
      local n = inert.chars(s)
      assert.is_true(cschema.validate({ type = "string", maxLength = n, minLength = n }, s), s)
      if n > 0 then assert.is_nil((cschema.validate({ type = "string", maxLength = n - 1 }, s))) end
    end
    assert.equal(3, inert.chars("日本語"))
    assert.equal(3, inert.chars("a\255\254"))
    assert.equal(2, inert.chars(string.rep("\128", 5)))
    assert.equal(201, inert.chars(string.rep("日", 200) .. "\255"))
  end)

  it("bytes() escapes only what is not UTF-8, and says where it began", function()
    assert.same({ "plain é \u{202e}" }, { inert.bytes("plain é \u{202e}") })
    assert.same({ "caf\\xff \\xc3( \\xed\\xa0\\x80 é", 4 }, { inert.bytes("caf\255 \195( \237\160\128 é") })
    local out = inert.bytes(string.rep("\255", 3))
    assert.equal("\\xff\\xff\\xff", out)
    assert.is_truthy(utf8.len(out))
  end)

  it("an LLM result's non-UTF-8 text is escaped and its call refused (orket.llm.common.utf8_result)", function()
    local common = require "orket.llm.common"
    local r = common.utf8_result { content = "ok\255", tool_calls = {
      common.tool_call("c1", "write_file", '{"path":"a","content":"\255"}'),
      common.tool_call("c2", "read_file", '{"path":"b"}') } }
    assert.equal("ok\\xff", r.content)
    assert.same({ "content (byte 3)", "tool_calls[1].arguments (byte 24)" }, r.escaped)
    assert.same({}, r.tool_calls[1].arguments)
    assert.equal('{"path":"a","content":"\\xff"}', r.tool_calls[1].raw_arguments)
    assert.matches("^arguments are not valid UTF%-8 %(byte 24 ", r.tool_calls[1].arguments_error)
    assert.same({ path = "b" }, r.tool_calls[2].arguments)
    assert.is_nil(r.tool_calls[2].arguments_error)
    assert.is_nil(common.utf8_result({ content = "fine", tool_calls = {} }).escaped)
  end)
end)
