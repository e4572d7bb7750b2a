-- The C core's dependencies point one way: read from the sources' #include lines, no two
-- core files need each other (directly or around a loop), and the pure capabilities that
-- the budgets and the matcher rest on include no Lua header.
local home = package.orket_home

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- name -> {names it includes}, for core/<name>.c and its header.
local function graph()
  local g = {}
  local p = io.popen("ls " .. home .. "/core")
  for file in p:lines() do
    local name = file:match("^(.+)%.[ch]$")
    if name and name ~= "main" then
      g[name] = g[name] or {}
      for inc in read(home .. "/core/" .. file):gmatch('#include "([%w_]+)%.h"') do
        if inc ~= name then g[name][inc] = true end
      end
    end
  end
  p:close()
  return g
end

describe("the core's layering", function()
  it("has no loop among its files", function()
    local g = graph()
    local state = {}
    local function visit(n, path)
      if state[n] == "done" then return end
      assert(state[n] ~= "open", "dependency loop: " .. table.concat(path, " -> ") .. " -> " .. n)
      state[n] = "open"
      path[#path + 1] = n
      for m in pairs(g[n] or {}) do visit(m, path) end
      path[#path] = nil
      state[n] = "done"
    end
    local names = {}
    for n in pairs(g) do names[#names + 1] = n end
    table.sort(names)
    for _, n in ipairs(names) do visit(n, {}) end
    assert.is_nil(g.runtime.await, "runtime needs await")
    assert.is_true(g.await.runtime and g.await.scriptenv)
  end)

  it("keeps the accounting and the matcher free of Lua", function()
    for _, f in ipairs { "budget.c", "budget.h", "pattern.c", "pattern.h", "memcap.c", "memcap.h" } do
      assert.is_nil(read(home .. "/core/" .. f):find("#include <l[ua]", 1, false), f)
    end
  end)
end)
