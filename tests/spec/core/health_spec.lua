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

describe("orket.c.health.line", function()
  local jsonout = require "orket.jsonout"
  local cjson = require "cjson"
  local SHAPE = jsonout.shape { "method", "route", "status", "us", "key", "addr", "auth", "note", "project", "t", "via" }
  -- a request's log line is made in C (every route's, /health's too): its bytes must be
  -- those jsonout.encode gives the same fields
  it("writes the bytes jsonout.encode writes for the same fields", function()
    local values = { "GET", "/v1/sandboxes/{id}/app/{path}", "", "a\"b\\c\n\0\127é\255", "https://x/y", 0, -1, 7, 200,
      123456789012345, 99999999999999, -99999999999999, 1e14, 2 ^ 53, 0.5, -0.0, 1e-7, 3.14159265358979, true, false,
      cjson.null }
    local function one(f)
      local want = jsonout.encode(setmetatable({ addr = f[1], auth = f[2], key = f[3], method = f[4], note = f[5],
        project = f[6], route = f[7], status = f[8], t = f[9], us = f[10], via = f[11] }, SHAPE))
      assert.equal(want, ch.line(f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11]))
    end
    for i, v in ipairs(values) do
      for field = 1, 11 do
        local f = { "127.0.0.1", nil, cjson.null, "GET", nil, "alpha", "/x", 200, "2026-01-01T00:00:00Z", 12, "10.0.0.1" }
        f[field] = v
        one(f)
        f[field] = values[#values - i + 1]
        f[(field % 11) + 1] = nil
        one(f)
      end
    end
    one({})
    assert.equal('{"addr":"unix","key":null,"method":"GET","route":"/health","status":200,"t":"T","us":3}',
      ch.line("unix", nil, cjson.null, "GET", nil, nil, "/health", 200, "T", 3))
    assert.equal('{"addr":"::1","key":"k1","method":"GET","project":"alpha","route":"/v1/projects/{p}/board",'
      .. '"status":200,"t":"T","us":3}', ch.line("::1", nil, "k1", "GET", nil, "alpha", "/v1/projects/{p}/board", 200,
      "T", 3))
  end)

  it("refuses what a log line cannot hold", function()
    assert.has_error(function() ch.line({}) end)
    assert.has_error(function() ch.line(nil, print) end)
    assert.has_error(function() ch.line(nil, nil, nil, nil, nil, nil, nil, 0 / 0) end)
    assert.has_error(function() ch.line(nil, nil, nil, nil, nil, nil, nil, math.huge) end)
  end)
end)
