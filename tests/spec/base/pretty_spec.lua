-- The REPL's pretty-printer and chunk compiler.
local pretty = require "orket.pretty"
local repl = require "orket.terminal.repl"

describe("orket.pretty", function()
  it("renders scalars readably", function()
    assert.equal('"a\\nb"', pretty.render("a\nb"))
    assert.equal("1", pretty.render(1))
    assert.equal("1.0", pretty.render(1.0))
    assert.equal("0.5", pretty.render(0.5))
    assert.equal("nil", pretty.render(nil))
    assert.equal("true", pretty.render(true))
  end)

  it("sorts keys, lists array parts first and quotes only what needs it", function()
    assert.equal('{ 1, 2, b = 1, c = 2, ["end"] = 4, ["not ident"] = 3 }',
      pretty.render({ 1, 2, c = 2, b = 1, ["not ident"] = 3, ["end"] = 4 }))
  end)

  it("marks cycles and depth", function()
    local t = { name = "x" }
    t.self = t
    assert.equal('{ name = "x", self = <cycle> }', pretty.render(t))
    assert.equal("{ { {...} } }", pretty.render({ { { { 1 } } } }, { depth = 2 }))
  end)

  it("breaks long tables over lines", function()
    local t = {}
    for i = 1, 30 do t[i] = "item" .. i end
    local s = pretty.render(t)
    assert.matches("^{\n  \"item1\",\n", s)
    assert.matches("\n}$", s)
  end)

  it("cuts very long tables short", function()
    local t = {}
    for i = 1, 500 do t[i] = i end
    assert.matches("%.%.%. %(300 more%)", pretty.render(t))
  end)

  it("escapes a metatable's __name, and a value's text, as a string value is", function()
    assert.equal('<\\27[31mred\\n> {}', pretty.render(setmetatable({}, { __name = "\27[31mred\n" })))
    assert.equal('{ <\\27]0;x\\7> { a = 1 } }', pretty.render({ setmetatable({ a = 1 }, { __name = "\27]0;x\7" }) }))
    assert.equal("<orket.secret> {}", pretty.render(setmetatable({}, { __name = "orket.secret" })))
    -- a function's text is its metatable's too (every function's: set back at once)
    local f = function() end
    debug.setmetatable(f, { __tostring = function() return "\27[2Jf" end })
    local ok, s = pcall(pretty.render, f)
    debug.setmetatable(f, nil)
    assert(ok, s)
    assert.equal("\\27[2Jf", s)
  end)

  it("never runs __index or __pairs of what it prints", function()
    local t = setmetatable({ a = 1 }, { __index = function() error("ran") end, __pairs = function() error("ran") end })
    assert.equal("{ a = 1 }", pretty.render(t))
  end)
end)

describe("orket.terminal.repl.compile", function()
  it("prefers an expression", function()
    local fn = assert(repl.compile("1 + 2"))
    assert.equal(3, fn())
  end)

  it("accepts statements", function()
    local env = {}
    local fn = assert(repl.compile("y = 5", env))
    fn()
    assert.equal(5, env.y)
  end)

  it("flags incomplete input", function()
    local fn, err, incomplete = repl.compile("function f()")
    assert.is_nil(fn)
    assert.is_true(incomplete)
    fn, err, incomplete = repl.compile("1 +* 2")
    assert.is_nil(fn)
    assert.is_false(incomplete)
    assert.matches("stdin:1:", err)
  end)

  -- a one-line chunk's error names line 1: the wrapper's ")" is on the line only when no
  -- comment may need a newline before it
  it("names line 1 for an error in a one-line expression, and keeps a trailing comment out", function()
    local fn = assert(repl.compile("nothing_here.x", {}))
    assert.matches("^stdin:1: attempt to index a nil value %(global 'nothing_here'%)", select(2, pcall(fn)))
    fn = assert(repl.compile("1, 2 -- both", {}))
    assert.same({ 1, 2 }, { fn() })
  end)

  it("hints what a nil global was likely meant to be: a field of the project, a name near it", function()
    local env = { project = { board = {}, db = {} }, print = print }
    local function err(text)
      local ok, e = pcall(assert(repl.compile(text, env)))
      assert.is_false(ok)
      return e
    end
    assert.equal("(board is project.board here)", repl.hint(err("board:list()"), env))
    assert.equal("(did you mean project?)", repl.hint(err("projet.board"), env))
    assert.equal("(did you mean print?)", repl.hint(err("prnt(1)"), env))
    assert.is_nil(repl.hint(err("zzzzzzzz.x"), env))
    assert.is_nil(repl.hint(err("project.nope.x"), env)) -- a field, not a global
    -- a project whose fields raise when unknown gives no hint from them
    env.project = setmetatable({}, { __index = function() error("no such field") end })
    assert.is_nil(repl.hint(err("board:list()"), env))
  end)

  it("formats several results tab-separated, nothing for none", function()
    assert.equal('1\t"a"', repl.format_results(2, 1, "a"))
    assert.is_nil(repl.format_results(0))
  end)
end)
