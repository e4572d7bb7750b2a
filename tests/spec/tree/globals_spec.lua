-- Every module under lua/ reads and writes only Lua's own globals: a name that is not a
-- local is a mistake (a variable renamed in part, a missing `local`), found here from the
-- bytecode that luac5.4 lists rather than when the line first runs.
local H = require "tests.helpers"

local LUA = {}
for name in ([[_G _VERSION assert collectgarbage coroutine debug error getmetatable io ipairs load
  math next os package pairs pcall print rawequal rawget rawlen rawset require select
  setmetatable string table tonumber tostring type utf8 xpcall]]):gmatch("%S+") do LUA[name] = true end

describe("lua/'s modules", function()
  it("use no global but Lua's own", function()
    if not os.execute("command -v luac5.4 >/dev/null 2>&1") then
      return pending("luac5.4 is not installed (Debian's lua5.4; scripts/deps.sh --test installs it)")
    end
    local _, files = H.sh("cd " .. H.quote(H.ROOT) .. " && git ls-files 'lua/*.lua'")
    local found, n = {}, 0
    for f in files:gmatch("[^\n]+") do
      n = n + 1
      local p = io.popen("luac5.4 -p -l " .. H.quote(H.ROOT .. "/" .. f) .. " 2>&1")
      for line in p:lines() do
        local at, name = line:match("%[(%d+)%]%s+[GS]ETTABUP.-_ENV \"([%w_]+)\"")
        if name and not LUA[name] then found[#found + 1] = f .. ":" .. at .. ": " .. name end
      end
      p:close()
    end
    assert.is_true(n > 100)
    assert.same({}, found)
  end)
end)
