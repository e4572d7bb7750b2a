-- The journal's event kinds, kept in step: every kind the Lua library writes with
-- db:event{kind = "..."} is in docs/store.md's table of kinds, and the web board listens for
-- every kind of that table (web/app.js's KINDS: an EventSource hears a named event only
-- with a listener for its name, so a kind missing there never reaches the page).
local H = require "tests.helpers"

local function documented()
  local text = assert(H.read(H.ROOT .. "/docs/store.md"))
  local at = assert(text:find("| kind | written by | data |", 1, true), "docs/store.md: the table of kinds")
  local kinds, n = {}, 0
  for line in text:sub(at):gmatch("[^\n]*") do
    if line == "" then break end
    local first = line:match("^|([^|]*)|")
    for k in (first or ""):gmatch("`([%w_]+)`") do
      if k ~= "kind" then
        kinds[k] = true
        n = n + 1
      end
    end
  end
  assert(n > 40, "docs/store.md's table of kinds read")
  return kinds
end

-- kind -> the file that writes it, from each db:event{...} constructor of lua/orket; a kind
-- made at run time ("secret_" .. action) is its prefix, ending in "_"
local function written()
  local out = {}
  local p = io.popen("find " .. H.quote(H.ROOT .. "/lua/orket") .. " -name '*.lua'")
  for f in p:lines() do
    local src = assert(H.read(f))
    for body in src:gmatch("[:%.]event%s*(%b{})") do
      local k = body:match('^{%s*kind%s*=%s*"([%w_]+)"') or body:match('[{,]%s*kind%s*=%s*"([%w_]+)"')
      if k then out[k] = f:sub(#H.ROOT + 2) end
    end
  end
  p:close()
  return out
end

describe("the journal's event kinds", function()
  it("are each in docs/store.md's table", function()
    local docs, missing, n = documented(), {}, 0
    for k, f in pairs(written()) do
      n = n + 1
      local ok = docs[k]
      if k:sub(-1) == "_" then -- a prefix: some documented kind starts with it
        for d in pairs(docs) do ok = ok or d:sub(1, #k) == k end
      end
      if not ok then missing[#missing + 1] = k .. " (" .. f .. ")" end
    end
    table.sort(missing)
    assert.is_true(n > 40, "the kinds written were read")
    assert.same({}, missing)
  end)

  it("are each listened for by the web board", function()
    local js = assert(H.read(H.ROOT .. "/web/app.js"))
    local list = assert(js:match("const KINDS = (%b[])"), "web/app.js: const KINDS = [...]")
    local heard = {}
    for k in list:gmatch('"([%w_]+)"') do heard[k] = true end
    local missing = {}
    for k in pairs(documented()) do
      if not heard[k] then missing[#missing + 1] = k end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)
end)
