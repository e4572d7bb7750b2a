-- orket.c.health and orket.c.ratelimit's bindings: what a caller can do to them (a
-- limiter closed while lent, options with metamethods, numbers out of range) stays safe.
local crl = require "orket.c.ratelimit"
local ch = require "orket.c.health"

local function opts(lim, extra)
  local o = { headers = { "Content-Type: text/plain" }, body = "ok\n", buckets = { 1 }, by_addr = lim, log = function() end }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("orket.c.health", function()
  it("keeps its limiter open: close() refuses while the health borrows it", function()
    local lim = crl.new(1, 10)
    local h = ch.new(opts(lim))
    local ok, err = pcall(lim.close, lim)
    assert.is_false(ok)
    assert.matches("the limiter is lent", err)
    assert.is_true((lim:take("a", 0))) -- still open
    h:close()
    lim:close()
    assert.equal("ratelimit (closed)", tostring(lim))
  end)

  it("reads its options raw: a list's __len and a table's __index are not believed", function()
    local lim = crl.new(1, 10)
    local cors = setmetatable({ "https://a.example", "https://b.example" }, { __len = function() return 1 << 61 end })
    local h = ch.new(opts(lim, { cors = cors })) -- the two origins, not 2^61 of them
    h:close()
    local lying = setmetatable(opts(lim, { body = false }), { __index = function(_, k)
      if k == "body" then return "made on each read\n" end
    end })
    lying.body = nil
    local ok, err = pcall(ch.new, lying)
    assert.is_false(ok)
    assert.matches("body: a string expected", err)
    lim:close()
  end)

  it("refuses more allowed origins than it keeps answers for", function()
    local lim = crl.new(1, 10)
    local many = {}
    for i = 1, 4097 do many[i] = "https://o" .. i .. ".example" end
    local ok, err = pcall(ch.new, opts(lim, { cors = many }))
    assert.is_false(ok)
    assert.matches("cors: at most 4096", err)
    lim:close()
  end)

  it("keeps its counts readable once closed", function()
    local lim = crl.new(1, 10)
    local h = ch.new(opts(lim))
    h:close()
    assert.equal(0, (h:stats()))
    lim:close()
  end)
end)

describe("orket.c.ratelimit", function()
  it("refuses a rate or a burst that is not finite, saying so", function()
    assert.has_error(function() crl.new(math.huge, 1) end, "bad argument #1 to 'new' (a finite rate > 0 expected)")
    assert.has_error(function() crl.new(1, math.huge) end, "bad argument #2 to 'new' (a finite burst >= 1 expected)")
    assert.has_error(function() crl.new(0 / 0, 1) end, "bad argument #1 to 'new' (a finite rate > 0 expected)")
  end)
end)
