-- orket.terminal.help and .complete: the REPL's `help` read from the contract comments,
-- kept in step with docs/engine.md, and Tab completion of fields and methods.
local H = require "tests.helpers"
local help = require "orket.terminal.help"
local complete = require "orket.terminal.complete"
local console = require "orket.terminal.console"

local function notes_project() return H.example("notes") end

local function topic(name)
  for _, t in ipairs(help.TOPICS) do
    if t.name == name then return t end
  end
end

local function member_names(name)
  local out = {}
  for _, m in ipairs(help.members(topic(name))) do out[m.name] = m end
  return out
end

describe("REPL help", function()
  after_each(H.cleanup)

  it("reads contract blocks, one a field when lines open with the owner's name", function()
    local blocks = help.contracts(table.concat({
      "--- open(dir) -> x: the first",
      "--- p.a: field a",
      "--- p:b(x) -> y / p:c(z) -> w",
      "--- more about b and c, p.d in prose",
      "local x = 1",
      "--- lone(y)",
      "---- a rule, not a comment",
    }, "\n"), "p")
    assert.equal(4, #blocks)
    assert.equal("open", blocks[1].bare)
    assert.equal("p.a: field a", blocks[2].first)
    assert.same({ "p:b(x) -> y / p:c(z) -> w", "more about b and c, p.d in prose" }, blocks[3].lines)
    assert.equal("lone", blocks[4].bare)
  end)

  it("documents every method and field of project, and each helper docs/engine.md names", function()
    local names = member_names("project")
    local dir = notes_project()
    local p = assert(console.open(dir))
    -- every helper and field of the project object has its contract comment
    for _, k in ipairs { "messages", "turn", "replay", "approvals", "approve", "deny", "reload", "close" } do
      assert.is_function(p[k], k)
      assert.is_truthy(names[k], "no contract comment for project:" .. k)
    end
    for _, k in ipairs { "board", "db", "memory", "llm", "gate", "tools", "policies", "roles", "routing",
      "settings", "workspace", "engine", "events", "dir" } do
      assert.is_not_nil(p[k], k)
      assert.is_truthy(names[k], "no contract comment for project." .. k)
    end
    p:close()
    -- what the docs name, help names: the REPL section's `project:x(` and `project.x`
    local doc = H.read(H.ROOT .. "/docs/engine.md")
    local section = doc:match("\n## The REPL\n(.-)\n## ")
    assert.is_truthy(section)
    for name in section:gmatch("project[:.]([%a_][%w_]*)") do
      assert.is_truthy(names[name], "docs/engine.md names project." .. name .. ", help does not")
    end
  end)

  it("is what docs/engine.md's table of project's fields says (scripts/repl-doc.lua)", function()
    local function check(root)
      local p = io.popen(string.format("%s lua %s --check %s 2>&1", H.quote(H.BIN),
        H.quote(H.ROOT .. "/scripts/repl-doc.lua"), H.quote(root)))
      local out = p:read("a")
      return p:close(), out
    end
    local ok, out = check(H.ROOT)
    assert.is_true(ok, out)
    -- and the check fails on a table that differs
    local root = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(root .. "/docs"))
    local text = H.read(H.ROOT .. "/docs/engine.md")
    H.write(root .. "/docs/engine.md", (text:gsub("| `project.board` | [^\n]*", "| `project.board` | stale |", 1)))
    ok, out = check(root)
    assert.is_nil(ok)
    assert.matches("differs from the contract comments", out, 1, true)
  end)

  it("prints an overview of what is at hand, and the whole comment of one thing", function()
    local env = { orket = require "orket" }
    env.help = help.new(env)
    local overview = help.text_of(env.help)
    assert.matches("^At hand", overview)
    assert.matches("\n  project:messages%(card_id", overview)
    assert.matches("\n  project:replay%(run_id", overview)
    assert.matches("\n  orket.sleep%(ms%)", overview)
    assert.matches("\n  llm.chat{", overview)
    assert.matches("project: .-%(not opened here%)", overview)
    -- each line is one line of a comment, cut to 100 characters
    for line in overview:gmatch("[^\n]+") do assert.is_true(#line <= 130, line) end
    -- help(x): by value and by name
    assert.matches("^orket.now%(%) %-> ms", help.text_of(env.help(env.orket.now)))
    local turn = help.text_of(env.help("project:turn"))
    assert.matches("^project:turn%(card_id", turn)
    assert.matches("Must run\n?.-in a task", turn)
    assert.matches("^orket: ", help.text_of(env.help(env.orket)))
    assert.matches("^no help for \"nothing\"", help.text_of(env.help("nothing")))
    assert.matches("^no help for this number", help.text_of(env.help(3)))
    assert.is_nil(help.text_of({}))
  end)
end)

describe("REPL completion", function()
  after_each(H.cleanup)

  it("completes globals, fields and methods; after ':' only methods", function()
    local env = setmetatable({ orket = require "orket", thing = { alpha = 1, beta = function() end, _c = 2 },
      s = "text" }, { __index = _G })
    assert.same({ "print" }, complete.complete(env, "pri"))
    assert.same({ "orket.scriptenv", "orket.sleep", "orket.spawn", "orket.stats" }, complete.complete(env, "orket.s"))
    assert.same({ "thing._c", "thing.alpha", "thing.beta" }, complete.complete(env, "thing."))
    assert.same({ "thing:beta" }, complete.complete(env, "thing:"))
    assert.same({ "s:upper" }, complete.complete(env, "s:up")) -- a string's methods
    assert.same({ "string.format" }, complete.complete(env, "string.fo"))
    -- nothing to offer: unknown paths, non-tables, a call in the middle, odd text
    for _, w in ipairs { "nope.x", "thing.alpha.", "thing:beta.x", "1.", ".x", "a..b", "" } do
      local r = complete.complete(env, w)
      if w == "" then assert.is_true(#r > 10) else assert.same({}, r, w) end
    end
    -- an __index function that never returns is given up, not waited for: the prompt hung
    env.t = setmetatable({}, { __index = function() while true do end end })
    assert.same({}, complete.complete(env, "t.y."))
    assert.is_nil(debug.gethook()) -- and no hook is left behind
  end)

  it("offers project's fields, looked up by a function, from what help documents", function()
    local p = assert(console.open(notes_project()))
    local env = { project = p }
    assert.same({ "project.board" }, complete.complete(env, "project.bo"))
    assert.same({ "project:messages" }, complete.complete(env, "project:me"))
    local methods = complete.complete(env, "project:")
    assert.is_truthy(table.concat(methods, " "):find("project:replay project:turn", 1, true), table.concat(methods, " "))
    for _, m in ipairs(methods) do assert.is_function(p[m:match(":(.*)")], m) end
    -- a field of a field: the board's methods
    assert.same({ "project.board:get" }, complete.complete(env, "project.board:ge"))
    p:close()
  end)

  it("survives an __index that raises", function()
    local env = { bad = setmetatable({}, { __index = function() error("boom") end }) }
    assert.same({}, complete.complete(env, "bad.x."))
  end)
end)
