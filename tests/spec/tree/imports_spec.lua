-- The Lua library's imports, read from the sources (scripts/imports.lua): no cycle among
-- orket's modules nor among its folders, no edge a layer rule forbids beyond the named debts, requires at the top
-- unless a comment says why one is lazy, and the README's map as scripts/tree-map.lua
-- writes it. The checks are also fed made-up graphs, so they are seen to fail.
local H = require "tests.helpers"
local home = package.orket_home
local I = dofile(home .. "/scripts/imports.lua")

local function edge(from, to) return { from = from, to = to, line = 1 } end

local function lines_of(list, f)
  local out = {}
  for _, v in ipairs(list) do out[#out + 1] = f(v) end
  return table.concat(out, "\n")
end

describe("the Lua library's imports", function()
  after_each(H.cleanup)

  local mods, edges
  setup(function()
    mods = I.modules(home)
    edges = I.edges(mods)
  end)

  it("are read from every module, top level or inside a function", function()
    assert.is_truthy(mods["orket.board"] and mods["orket.engine"] and mods["orket.cmd.run"])
    assert.is_truthy(#edges > 300)
    -- a library's own require of a binding is an edge too
    local found = false
    for _, e in ipairs(edges) do
      if e.from == "orket.board" and e.to == "orket.c.statemachine" then found = true end
    end
    assert.is_true(found)
  end)

  it("form no cycle", function()
    local cycles = I.cycles(edges)
    assert(#cycles == 0, "import cycles:\n" .. lines_of(cycles, function(c) return table.concat(c, " -> ") end))
  end)

  it("form no loop of folders, but for the named debts, and keep no paid one", function()
    local cycles, stale = I.folder_cycles(edges)
    local via = {}
    for _, fe in ipairs(I.folder_edges(edges)) do via[fe.from .. " -> " .. fe.to] = fe.via end
    assert(#cycles == 0, "folder loops:\n" .. lines_of(cycles, function(c)
      local steps = {}
      for i = 1, #c - 1 do steps[#steps + 1] = via[c[i] .. " -> " .. c[i + 1]] end
      return table.concat(c, " -> ") .. " (" .. table.concat(steps, ", ") .. ")"
    end))
    assert(#stale == 0, "folder allow-list entries closing no loop (remove them):\n" .. table.concat(stale, "\n"))
    for key, why in pairs(I.FOLDER_ALLOWED) do assert(type(why) == "string" and #why > 20, key .. " needs its reason") end
  end)

  it("follow the layers, but for the named debts", function()
    local bad = I.violations(edges)
    assert(#bad == 0, "forbidden imports:\n" .. lines_of(bad, function(v)
      return v.why .. (v.line and (" (" .. mods[v.from].file .. ":" .. v.line .. ")") or "")
    end))
  end)

  it("keep no debt that was paid", function()
    local stale = I.stale(edges)
    assert(#stale == 0, "allow-list entries naming no forbidden import (remove them):\n" .. table.concat(stale, "\n"))
    for key, why in pairs(I.ALLOWED) do assert(type(why) == "string" and #why > 20, key .. " needs its reason") end
  end)

  it("sit at the top of each module unless a comment says why one is lazy", function()
    local bad = I.unexplained(home, mods)
    assert(#bad == 0, "requires inside functions with no 'lazy' comment saying why:\n" .. lines_of(bad, function(u)
      return string.format("%s:%d %s", u.file, u.line, u.name)
    end))
  end)

  it("have their layers drawn in docs/architecture.md, in the same order", function()
    local doc = assert(io.open(home .. "/docs/architecture.md")):read("a")
    for i, l in ipairs(I.LAYERS) do
      assert(doc:find("\n| " .. i .. " | " .. l.name .. " |", 1, true), "docs/architecture.md: no row " .. i .. " " .. l.name)
    end
    assert.is_nil(doc:find("\n| " .. (#I.LAYERS + 1) .. " | ", 1, true))
  end)

  it("give every module a layer", function()
    for name in pairs(mods) do assert(I.layer_of(name), name .. " has no layer in scripts/imports.lua") end
  end)
end)

describe("the import checks on made-up graphs", function()
  it("find each way a require is written, and where it sits", function()
    local src = table.concat({
      'local a = require "orket.a"',
      "local b = require('orket.b')",
      'local c = require("orket.c.x")',
      "-- require \"orket.commented\"",
      "--[[ require 'orket.long_comment' ]]",
      'local s = "require \\"orket.in_a_string\\""',
      "local function f(...)",
      "  if x then return ... end -- `...` before `end` is no field",
      '  return require "orket.inner"',
      "end",
      'local d = require("orket.dyn" .. name)',
      "local t = {}",
      "function t.f() local e = require 'orket.inner2' end",
      "local g = require [[orket.long]]",
    }, "\n")
    local got = {}
    for _, r in ipairs(I.requires(src)) do got[#got + 1] = r.name .. "@" .. r.line .. (r.inner and "+inner" or "") end
    assert.same({ "orket.a@1", "orket.b@2", "orket.c.x@3", "orket.inner@9+inner", "orket.inner2@13+inner",
      "orket.long@14" }, got)
  end)

  it("report a cycle with its path", function()
    local cycles = I.cycles {
      edge("orket.a", "orket.b"), edge("orket.b", "orket.c"), edge("orket.c", "orket.a"), edge("orket.c", "orket.d"),
    }
    assert.same({ { "orket.a", "orket.b", "orket.c", "orket.a" } }, cycles)
    assert.same({}, I.cycles { edge("orket.a", "orket.b"), edge("orket.b", "orket.c"), edge("orket.a", "orket.c") })
  end)

  it("find a loop of folders, with the module edges that make it, unless it is a named debt", function()
    local g = { edge("orket.engine.run", "orket.mcp.manager"), edge("orket.mcp.server", "orket.serve.runs"),
      edge("orket.serve.runs", "orket.engine.setup"), edge("orket.serve.runs", "orket.board"),
      edge("orket.engine", "orket.engine.run") }
    assert.equal("engine", I.folder_of("orket.engine"))
    assert.equal("board", I.folder_of("orket.board"))
    local cycles, stale = I.folder_cycles(g, {})
    assert.same({ { "engine", "mcp", "serve", "engine" } }, cycles)
    assert.same({}, stale)
    -- a named debt lets the loop be; once the loop is broken elsewhere the debt is stale
    cycles, stale = I.folder_cycles(g, { ["mcp -> serve"] = "the board's MCP server borrows the API's routes" })
    assert.same({}, cycles)
    assert.same({}, stale)
    g[2] = edge("orket.serve.mcp_server", "orket.serve.runs")
    cycles, stale = I.folder_cycles(g, { ["mcp -> serve"] = "the board's MCP server borrows the API's routes" })
    assert.same({}, cycles)
    assert.same({ "mcp -> serve" }, stale)
  end)

  it("refuse an edge up the layers, and a module with no layer", function()
    local layers = {
      { name = "top", match = { "^orket%.cmd%." } },
      { name = "mid", match = { "^orket%.engine%." } },
      { name = "low", match = { "^orket%.store$" } },
    }
    local down = { edge("orket.cmd.run", "orket.engine.x"), edge("orket.engine.x", "orket.store"),
      edge("orket.cmd.run", "orket.store"), edge("orket.engine.x", "orket.engine.y") }
    assert.same({}, I.violations(down, layers, {}))
    local up = I.violations({ edge("orket.store", "orket.engine.x") }, layers, {})
    assert.equal(1, #up)
    assert.matches("orket.store %(low%) requires orket.engine.x %(mid%), a higher layer", up[1].why)
    -- allowed by name, and then that name is live; once the edge is gone it is stale
    local allowed = { ["orket.store -> orket.engine.x"] = "a debt" }
    assert.same({}, I.violations({ edge("orket.store", "orket.engine.x") }, layers, allowed))
    assert.same({}, I.stale({ edge("orket.store", "orket.engine.x") }, layers, allowed))
    assert.same({ "orket.store -> orket.engine.x" }, I.stale(down, layers, allowed))
    local lost = I.violations({ edge("orket.cmd.run", "orket.elsewhere") }, layers, {})
    assert.equal(1, #lost)
    assert.matches("orket.elsewhere has no layer", lost[1].why)
  end)

  it("tell a lazy require said so from one that is not", function()
    local root = H.tmpdir()
    assert(os.execute("mkdir -p '" .. root .. "/lua/orket'"))
    local f = assert(io.open(root .. "/lua/orket/m.lua", "w"))
    f:write(table.concat({
      "-- orket.m: a made-up module",
      "local function a() return require 'orket.x' end",
      "local function b()",
      "  -- lazy: the PostgreSQL backend loads only when used",
      "  return require 'orket.y'",
      "end",
      "local function c() return require 'orket.z' end -- lazy: loaded on first use",
    }, "\n"))
    f:close()
    local bad = I.unexplained(root, I.modules(root))
    assert.equal(1, #bad)
    assert.same({ file = "lua/orket/m.lua", line = 2, name = "orket.x" }, bad[1])
  end)
end)

describe("the README's map of lua/orket/", function()
  after_each(H.cleanup)

  -- scripts/tree-map.lua --check on root -> its output, its exit code
  local function check(root)
    local p = io.popen(string.format("'%s' lua '%s/scripts/tree-map.lua' --check '%s' 2>&1", H.BIN, root, root))
    local out = p:read("a")
    local _, _, code = p:close()
    return out, code
  end

  it("is what scripts/tree-map.lua makes of the tree", function()
    local out, code = check(home)
    assert(code == 0, out)
  end)

  it("is found stale when a module comes or its first line changes", function()
    local root = H.tmpdir()
    assert(os.execute(string.format("cp -r '%s/lua' '%s/scripts' '%s/README.md' '%s/'", home, home, home, root)))
    assert.equal(0, select(2, check(root)))
    local f = assert(io.open(root .. "/lua/orket/brand_new.lua", "w"))
    f:write("-- orket.brand_new: a module the map does not list yet.\nreturn {}\n")
    f:close()
    local out, code = check(root)
    assert.equal(1, code)
    assert.matches("stale", out)
    -- --write brings it back in line, naming the module with its first sentence
    assert(os.execute(string.format("'%s' lua '%s/scripts/tree-map.lua' --write '%s'", H.BIN, root, root)))
    assert.equal(0, select(2, check(root)))
    local readme = assert(io.open(root .. "/README.md")):read("a")
    assert.truthy(readme:find("- `brand_new.lua`: a module the map does not list yet.", 1, true))
  end)
end)
