-- orket.c.pg's connect to a URL naming several hosts (libpq's multi-host form, as store.url
-- names a primary and its standbys, docs/workers.md): each host gets its own deadline (the
-- URL's connect_timeout, else 5 s when another host follows) and the next one is tried, as
-- libpq's own blocking connect does. One deadline for the whole attempt kept libpq on a
-- host that never answered (a frozen standby named first), so no connection was ever made.
-- When every host fails, the message names each and why. PostgreSQL only (tests/pg.lua).
local H = require "tests.helpers"
local PG = require "tests.pg"

local available, why = PG.available()
if not available then
  describe("a connect to several hosts", function() pending("skipped: " .. why) end)
  return
end

local pg = require "orket.c.pg"
local uv = require "luv"

-- the directory of tests.pg's silent socket (a server that accepts and never answers)
local function silent()
  local url, close = PG.silent()
  return url:match("host=(.*)$"), close
end

local function timed(f)
  local t0 = uv.hrtime()
  local r = table.pack(f())
  return (uv.hrtime() - t0) / 1e6, table.unpack(r, 1, r.n)
end

describe("a connect to several hosts", function()
  local primary, standby

  setup(function()
    primary = PG.start()
    standby = PG.standby(primary)
  end)
  teardown(function()
    if standby then standby.stop() end
    if primary then primary.stop() end
    H.cleanup()
  end)

  it("goes on to the next host when the one named first never answers, after the URL's connect_timeout", function()
    local dir, close = silent()
    finally(close)
    local ms, c, err = timed(function()
      return pg.connect(PG.hosts(primary, dir, primary) .. "&connect_timeout=2", { connect_timeout_ms = 20000 })
    end)
    assert.is_userdata(c, err)
    assert.is_true(ms >= 1900 and ms < 4000, tostring(ms))
    assert.equal(primary.dir, c:query("SELECT current_setting('unix_socket_directories') AS d")[1].d)
    c:close()
  end)

  it("gives a host followed by another 5 s when the URL sets no connect_timeout", function()
    local dir, close = silent()
    finally(close)
    local ms, c, err = timed(function() return pg.connect(PG.hosts(primary, dir, primary), { connect_timeout_ms = 20000 }) end)
    assert.is_userdata(c, err)
    assert.is_true(ms >= 4900 and ms < 7500, tostring(ms))
    c:close()
  end)

  it("goes past a frozen standby named first to the primary", function()
    local thaw = PG.freeze(standby)
    finally(thaw)
    local url = PG.hosts(primary, standby, primary) .. "&connect_timeout=2"
    local ms, c, err = timed(function() return pg.connect(url) end)
    thaw()
    assert.is_userdata(c, err)
    assert.is_true(ms < 4000, tostring(ms))
    assert.is_false(c:query("SELECT pg_is_in_recovery() AS r")[1].r)
    c:close()
  end)

  it("keeps every other parameter of the URL for the host it reaches", function()
    local dir, close = silent()
    finally(close)
    local c, err = pg.connect(PG.hosts(primary, standby, dir, primary) .. "&connect_timeout=2&application_name=multi-7"
      .. "&options=-c%20work_mem%3D7MB")
    assert.is_userdata(c, err)
    local r = c:query("SELECT current_setting('application_name') AS a, current_setting('work_mem') AS w, "
      .. "pg_is_in_recovery() AS rec")[1]
    assert.same({ a = "multi-7", w = "7MB", rec = false }, r)
    c:close()
  end)

  it("names each host and why when none can be had", function()
    local dir, close = silent()
    finally(close)
    local gone = H.tmpdir() .. "/none"
    local url = PG.hosts(primary, dir, gone, standby) .. "&connect_timeout=2"
    local ms, c, err, code = timed(function() return pg.connect(url, { connect_timeout_ms = 20000 }) end)
    assert.is_nil(c)
    assert.is_true(ms < 5000, tostring(ms))
    assert.equal("ECONNECT", code, err)
    assert.matches("^pg: cannot connect to any of 3 hosts: ", err)
    assert.matches(dir .. ": timed out after 2000 ms; ", err, 1, true)
    assert.matches(gone .. ": connection to server on socket \"" .. gone .. "/.s.PGSQL.5432\" failed: No such file", err, 1,
      true)
    assert.matches(standby.dir .. ": connection to server on socket \"" .. standby.dir .. "/.s.PGSQL.5432\" failed: "
      .. "session is read-only", err, 1, true)
    assert.is_nil(err:find("\n", 1, true))
  end)

  it("times out as a whole when every host is silent, naming each", function()
    local a, close_a = silent()
    local b, close_b = silent()
    finally(function() close_a() close_b() end)
    local _, c, err, code = timed(function()
      return pg.connect(PG.hosts(primary, a, b) .. "&connect_timeout=2", { connect_timeout_ms = 20000 })
    end)
    assert.is_nil(c)
    assert.equal("ETIMEDOUT", code, err)
    assert.equal("pg: cannot connect to any of 2 hosts: " .. a .. ": timed out after 2000 ms; " .. b
      .. ": timed out after 2000 ms", err)
  end)

  it("bounds the whole connect by total_timeout_ms", function()
    local a, close_a = silent()
    finally(close_a)
    local ms, c, err, code = timed(function()
      return pg.connect(PG.hosts(primary, a, primary), { connect_timeout_ms = 20000, total_timeout_ms = 300 })
    end)
    assert.is_nil(c)
    assert.is_true(ms < 2000, tostring(ms))
    assert.equal("ETIMEDOUT", code, err)
    assert.equal("pg: connecting: timed out after 300 ms (" .. a .. ": no answer yet)", err)
  end)

  it("keeps one host's messages as they were", function()
    local a, close_a = silent()
    finally(close_a)
    local c, err, code = pg.connect(primary.url:gsub("host=[^&]*", "host=" .. a), { connect_timeout_ms = 200 })
    assert.is_nil(c)
    assert.same({ "ETIMEDOUT", "pg: connecting: timed out after 200 ms" }, { code, err })
  end)
end)
