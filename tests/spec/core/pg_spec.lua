-- orket.c.pg, orket.store.pgpool and orket.store.pg_schema against a PostgreSQL 15 server
-- the spec starts itself (tests/pg.lua): typed parameters and results, errors with their
-- SQLSTATE, a loop that keeps running while a query waits, LISTEN/NOTIFY, timeouts and
-- cancelled tasks, lost connections, transactions that pin one connection, and a schema
-- that matches SQLite's table by table and column by column.
local H = require "tests.helpers"
local PG = require "tests.pg"

local available, why = PG.available()
if not available then
  io.write("\ntests/spec/core/pg_spec.lua skipped: ", why, "\n")
  describe("PostgreSQL", function()
    pending("skipped: " .. why)
  end)
  return
end

local pg = require "orket.c.pg"
local pgpool = require "orket.store.pgpool"
local pg_schema = require "orket.store.pg_schema"
local pgevents = require "orket.store.pgevents"
local pglisten = require "orket.store.pglisten"
local store = require "orket.store"
local uv = require "luv"

describe("PostgreSQL", function()
  local server

  setup(function() server = PG.start() end)
  teardown(function()
    if server then server.stop() end
    H.cleanup()
  end)

  local function connect(opts)
    return assert(pg.connect(server.url, opts))
  end

  -- A URL with this password in it, the rest as the server's.
  local function url_with_password(pw)
    return (server.url:gsub("^postgresql://orket@", "postgresql://orket:" .. pw .. "@"):gsub("&passfile=[^&]*", ""))
  end

  describe("the tests' own server", function()
    it("stops a dead run's server, and never one whose owner lives in another PID namespace", function()
      -- 999999999 is above any pid_max: no process has it
      local ours = uv.fs_readlink("/proc/self/ns/pid")
      local made = {}
      for _, owner in ipairs { "999999999 " .. ours, "999999999 pid:[1]", tostring(uv.os_getpid()) .. " " .. ours } do
        local dir = assert(uv.fs_mkdtemp(H.scratch() .. "/orket-pg.XXXXXX"))
        H.write(dir .. "/owner", owner .. "\n")
        made[#made + 1] = dir
      end
      finally(function() for _, d in ipairs(made) do os.execute("rm -rf " .. H.quote(d)) end end)
      PG.reap_stale()
      assert.is_nil(uv.fs_stat(made[1]), "a dead owner's server stays")
      assert.is_table(uv.fs_stat(made[2]), "another namespace's server was stopped")
      assert.is_table(uv.fs_stat(made[3]), "a live owner's server was stopped")
      assert.is_table(uv.fs_stat(server.dir), "this spec's own server was stopped")
    end)
  end)

  describe("orket.c.pg", function()
    it("counts a timeout from the call, not from the loop's last turn", function()
      -- the process blocked for 1.5 s without turning the loop (as a test waiting on a child
      -- does): the loop's cached time is 1.5 s old, and a 1 s timeout must still not fire
      local block = function() os.execute("sleep 1.5") end
      block()
      local c = connect({ connect_timeout_ms = 1000 })
      block()
      assert.same({ { x = 1 } }, (assert(c:query("SELECT 1 AS x"))))
      c:close()
      local q = connect({ query_timeout_ms = 1000 })
      block()
      assert.same({ { x = 2 } }, (assert(q:query("SELECT 2 AS x"))))
      block()
      assert.same({}, (assert(q:notifications(1000))))
      q:close()
    end)

    it("connects, reports its state and server process, and closes idempotently", function()
      local c = connect()
      assert.equal("idle", c:state())
      assert.equal("idle", c:check())
      assert.is_true(math.type(c:pid()) == "integer" and c:pid() > 0)
      assert.matches("pg connection %(idle%)", tostring(c))
      c:close()
      c:close()
      assert.equal("closed", c:state())
      local ok, err = pcall(c.query, c, "SELECT 1")
      assert.is_false(ok)
      assert.matches("connection is closed", err)
    end)

    it("refuses bad arguments by name", function()
      assert.has_error(function() pg.connect({}) end, "bad argument #1 to 'connect' (string expected, got table)")
      assert.has_error(function() pg.connect(server.url, { connect_timeout_ms = -1 }) end,
        "bad argument #2 to 'connect' (connect_timeout_ms must be between 0 and 86400000)")
      local c = connect()
      assert.has_error(function() c:query("SELECT $1", {}) end,
        "bad argument #2 to 'query' (cannot bind a table (nil, boolean, number or string))")
      assert.has_error(function() c:query("SELECT $1", "a\0b") end,
        "bad argument #2 to 'query' (string holds a NUL byte, which PostgreSQL text cannot)")
      c:close()
    end)

    it("binds parameters of every type and gives them back typed", function()
      local c = connect()
      local rows, n, tag = assert(c:query("SELECT $1 AS i, $2 AS big, $3 AS small, $4 AS f, $5 AS b, $6 AS nb, "
        .. "$7 AS s, $8::text AS null_text, $9 AS u, $10 AS inf, $11 AS ninf, $12 AS nan",
        42, math.maxinteger, math.mininteger, 2.5, true, false, "it's \"quoted\"; DROP TABLE x", nil,
        "héllo ✓", 1 / 0, -1 / 0, 0 / 0))
      assert.equal(1, n)
      assert.equal("SELECT 1", tag)
      local r = rows[1]
      assert.equal("integer", math.type(r.i)); assert.equal(42, r.i)
      assert.equal(math.maxinteger, r.big)
      assert.equal(math.mininteger, r.small)
      assert.equal("float", math.type(r.f)); assert.equal(2.5, r.f)
      assert.equal(true, r.b); assert.equal(false, r.nb)
      assert.equal("it's \"quoted\"; DROP TABLE x", r.s)
      assert.is_nil(r.null_text)
      assert.equal("héllo ✓", r.u)
      assert.equal(1 / 0, r.inf); assert.equal(-1 / 0, r.ninf)
      assert.is_true(r.nan ~= r.nan)
      c:close()
    end)

    it("types the server's columns: integers, floats, booleans, text, json as text, bytea, NULL", function()
      local c = connect()
      local r = assert(c:query([[SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 1.25::float4 AS d,
        12345678901234567890.5::numeric AS e, 'x'::varchar AS f, '{"k": [1, 2]}'::jsonb AS g, '\x00ff41'::bytea AS h,
        NULL::int AS i, '2024-05-01T12:00:00.123Z'::timestamptz AS j]]))[1]
      assert.same({ 1, 2, 3 }, { r.a, r.b, r.c })
      assert.equal("integer", math.type(r.c))
      assert.equal(1.25, r.d)
      assert.equal("12345678901234567890.5", r.e) -- exact, as text
      assert.equal("x", r.f)
      assert.same({ k = { 1, 2 } }, require("cjson").decode(r.g))
      assert.equal("\0\255A", r.h)
      assert.is_nil(r.i)
      assert.matches("^2024%-05%-01 12:00:00%.123", r.j)
      local rows, n = assert(c:query("SELECT g FROM generate_series(1, 3) g WHERE g > $1", 1))
      assert.same({ { g = 2 }, { g = 3 } }, rows)
      assert.equal(2, n)
      c:close()
    end)

    it("reports errors with their SQLSTATE and code, and the connection goes on", function()
      local c = connect()
      local ok, msg, code, state = c:query("SELEC 1")
      assert.is_nil(ok)
      assert.equal("ESQL", code); assert.equal("42601", state)
      assert.matches("^pg: syntax error at or near \"SELEC\" %(SQLSTATE 42601%)", msg)
      assert(c:exec("CREATE TEMP TABLE t (id int PRIMARY KEY)"))
      assert(c:query("INSERT INTO t VALUES ($1)", 1))
      ok, msg, code, state = c:query("INSERT INTO t VALUES ($1)", 1)
      assert.is_nil(ok)
      assert.equal("ECONSTRAINT", code); assert.equal("23505", state)
      assert.matches("Key %(id%)=%(1%) already exists", msg)
      ok, msg, code = c:exec("SELECT 1; SELECT 1/0; SELECT 2")
      assert.is_nil(ok); assert.equal("ESQL", code); assert.matches("division by zero", msg)
      assert.equal(1, c:query("SELECT count(*)::int AS n FROM t")[1].n)
      c:close()
    end)

    it("lets the loop run while a query waits", function()
      local c = connect()
      local ticks = 0
      local timer = uv.new_timer()
      timer:start(5, 5, function() ticks = ticks + 1 end)
      local other = orket.spawn(function()
        local n = 0
        for _ = 1, 3 do
          orket.sleep(1)
          n = n + 1
        end
        return n
      end)
      assert(c:query("SELECT pg_sleep(0.3)"))
      local during = ticks
      timer:close()
      -- a blocking PQexec would have held the loop: no tick, no other task
      assert.is_true(during >= 2, "timer ticks while the query ran: " .. during)
      assert.same({ true, 3 }, { other:join() })
      c:close()
    end)

    it("delivers LISTEN/NOTIFY between two connections, at commit", function()
      local a, b = connect(), connect()
      assert(a:exec("LISTEN orket_test"))
      local empty = assert(a:notifications(20))
      assert.same({}, empty) -- timed out: nothing yet
      local waiter = orket.spawn(function() return a:notifications(10000) end)
      assert(b:exec("BEGIN"))
      assert(b:query("SELECT pg_notify('orket_test', $1)", "payload 1"))
      orket.sleep(50)
      assert.equal("running", waiter.state) -- not before the commit
      assert(b:exec("COMMIT"))
      local ok, notes, dropped = waiter:join()
      assert.is_true(ok)
      assert.same({ { channel = "orket_test", payload = "payload 1", pid = b:pid() } }, notes)
      assert.equal(0, dropped)
      -- queued while nobody waited: returned at once
      assert(b:query("SELECT pg_notify('orket_test', 'x'), pg_notify('orket_test', 'y')"))
      local got = {}
      H.wait_for(function()
        for _, n in ipairs(assert(a:notifications(20))) do got[#got + 1] = n.payload end
        return #got == 2
      end, "two notifications")
      assert.same({ "x", "y" }, got)
      a:close(); b:close()
    end)

    it("prepares a statement the first time it is sent, per text and parameter types, and runs it by name after", function()
      local c = connect()
      local function prepared()
        return c:query("SELECT count(*)::int AS n FROM pg_prepared_statements")[1].n
      end
      local base = prepared() -- the count statement itself
      assert.equal(1, base)
      for i = 1, 10 do assert.same({ { v = i } }, (assert(c:query("SELECT $1 AS v", i)))) end
      assert.equal(2, prepared())
      -- the same text with other types is another statement; NULL and text are the server's to type
      assert.same({ { v = "x" } }, (assert(c:query("SELECT $1 AS v", "x"))))
      assert.same({ {} }, (assert(c:query("SELECT $1 AS v", nil))))
      assert.same({ { v = 2.5 } }, (assert(c:query("SELECT $1 AS v", 2.5))))
      assert.equal(4, prepared())
      -- a text that does not parse is not kept, fails the same way each time, and the
      -- connection goes on
      for _ = 1, 2 do
        local ok, msg, code, state = c:query("SELEC $1", 1)
        assert.is_nil(ok); assert.equal("ESQL", code); assert.equal("42601", state)
        assert.matches("syntax error", msg)
      end
      assert.equal(4, prepared())
      -- in a failed transaction the PREPARE fails as the statement would; after the rollback
      -- the same text prepares and runs
      assert(c:query("BEGIN"))
      assert.is_nil(c:query("SELECT 1/0"))
      local ok, _, _, state = c:query("SELECT $1 + 1 AS w", 1)
      assert.is_nil(ok); assert.equal("25P02", state)
      assert(c:query("ROLLBACK"))
      assert.equal(2, c:query("SELECT $1 + 1 AS w", 1)[1].w)
      -- prepared statements outlive a rolled-back transaction
      assert(c:query("BEGIN"))
      assert.equal(4, c:query("SELECT $1 + 3 AS w", 1)[1].w)
      assert(c:query("ROLLBACK"))
      assert.equal(5, c:query("SELECT $1 + 3 AS w", 2)[1].w)
      -- past the cap, texts are still answered, sent unnamed
      for i = 1, 300 do assert.equal(i, c:query("SELECT $1::int8 AS v -- " .. i, i)[1].v) end
      assert.equal(256, prepared())
      assert.equal(3, c:query("SELECT $1 AS v -- 300", 3)[1].v)
      c:close()
    end)

    it("times out and cancels a statement being prepared or run, and runs it by name after", function()
      local c = connect { query_timeout_ms = 100 }
      for _ = 1, 2 do
        local ok, _, code = c:query("SELECT pg_sleep($1)", 30)
        assert.is_nil(ok)
        assert.equal("ETIMEDOUT", code)
        H.wait_for(function() return c:state() == "idle" end, "the cancelled query to end")
      end
      assert.same({ { v = "" } }, (assert(c:query("SELECT pg_sleep($1)::text AS v", 0))))
      c:close()
    end)

    it("times a query out, cancels it on the server and is usable again", function()
      local c = connect { query_timeout_ms = 100 }
      local ok, msg, code = c:query("SELECT pg_sleep(30)")
      assert.is_nil(ok)
      assert.equal("ETIMEDOUT", code)
      assert.equal("pg: query timed out after 100 ms (cancelled)", msg)
      H.wait_for(function() return c:state() == "idle" end, "the cancelled query to end")
      assert.equal(7, c:query("SELECT 7 AS v")[1].v)
      c:close()
    end)

    it("cancels the query of a cancelled task on the server", function()
      local c, watch = connect(), connect()
      local t = orket.spawn(function() return c:query("SELECT pg_sleep(30)") end)
      H.wait_for(function()
        return watch:query("SELECT 1 FROM pg_stat_activity WHERE pid = $1::int AND query LIKE 'SELECT pg_sleep%' AND state = 'active'",
          c:pid())[1]
      end, "the query to run")
      assert.is_true(t:cancel())
      assert.equal("busy", c:state())
      H.wait_for(function() return c:state() == "idle" end, "the cancelled query to end")
      assert.equal(1, c:query("SELECT 1 AS v")[1].v)
      c:close(); watch:close()
    end)

    it("refuses a second task on a busy connection", function()
      local c = connect()
      local t = orket.spawn(function() return c:query("SELECT pg_sleep(0.2)") end)
      assert.has_error(function() c:query("SELECT 1") end, "pg: another task already waits on this connection")
      assert.is_true((t:join()))
      c:close()
    end)

    it("answers a task waiting on a connection closed under it", function()
      local c = connect()
      local t = orket.spawn(function() return c:query("SELECT pg_sleep(30)") end)
      orket.sleep(20)
      c:close()
      assert.same({ true, nil, "pg: connection closed while waiting", "ENOTCONN" }, { t:join() })
    end)

    it("reports a lost connection clearly, in flight and afterwards", function()
      local c, killer = connect(), connect()
      local t = orket.spawn(function() return c:query("SELECT pg_sleep(30)") end)
      -- ended in flight: once the server runs the query (50 ms was a guess; a connection
      -- ended before its query was sent answers ENOTCONN, another case)
      H.wait_for(function()
        local r = killer:query("SELECT state FROM pg_stat_activity WHERE pid = $1::int", c:pid())
        return r and r[1] and r[1].state == "active"
      end, "the query to run")
      assert.is_true(killer:query("SELECT pg_terminate_backend($1::int) AS ok", c:pid())[1].ok)
      local ok, _, msg, code, state = t:join()
      assert.is_true(ok)
      assert.equal("ECONNRESET", code)
      assert.equal("57P01", state)
      assert.matches("terminating connection due to administrator command", msg)
      H.wait_for(function() return c:check() == "broken" end, "the connection to be seen as lost")
      local r, msg2, code2 = c:query("SELECT 1")
      assert.is_nil(r)
      assert.equal("ENOTCONN", code2) -- nothing was sent
      assert.matches("^pg: connection lost", msg2)
      c:close(); killer:close()
    end)

    -- A server process that dies (the primary stopped at once, a crash) leaves libpq an
    -- error of its own, without a SQLSTATE: still a lost connection, which the store notes
    -- so that a worker waits for the store rather than exiting.
    it("reports a server process that dies mid-query, with no SQLSTATE, as a lost connection", function()
      -- the server says it is ready once at its start and again after each reset
      local function readies()
        return select(2, (H.read(server.dir .. "/server.log") or ""):gsub("ready to accept connections", ""))
      end
      local before = readies()
      local c = connect()
      local t = orket.spawn(function() return c:query("SELECT pg_sleep(30)") end)
      orket.sleep(50)
      os.execute("kill -KILL " .. math.tointeger(c:pid()))
      local ok, _, msg, code, state = t:join()
      assert.is_true(ok)
      assert.equal("", state or "")
      assert.matches("server closed the connection unexpectedly", msg)
      assert.equal("ECONNRESET", code)
      c:close()
      -- (the server resets its other processes after one was killed: the next test waits
      -- until its log says it is ready again, whether or not a connection met the reset)
      H.wait_for(function() return readies() > before end, "the server to recover from the kill", 3000)
    end)

    it("answers a task waiting for notifications when the connection is lost", function()
      local c, killer = connect(), connect()
      assert(c:exec("LISTEN gone"))
      local t = orket.spawn(function() return c:notifications(30000) end)
      orket.sleep(20)
      assert(killer:query("SELECT pg_terminate_backend($1::int)", c:pid()))
      local ok, notes, msg, code = t:join()
      assert.is_true(ok)
      assert.is_nil(notes)
      assert.equal("ECONNRESET", code)
      assert.matches("^pg: connection lost", msg)
      c:close(); killer:close()
    end)

    it("never shows the password in an error", function()
      local ok, msg, code = pg.connect(url_with_password("hunter2-secret"))
      assert.is_nil(ok)
      assert.equal("ECONNECT", code)
      assert.matches("password authentication failed", msg)
      assert.is_nil(msg:find("hunter2", 1, true))
      ok, msg, code = pg.connect("postgresql://orket:hun%zzter2@/postgres?host=" .. server.dir)
      assert.is_nil(ok); assert.equal("EINVAL", code)
      assert.matches("^pg: bad connection string", msg)
      assert.is_nil(msg:find("hun", 1, true))
      ok, msg, code = pg.connect("host=" .. server.dir .. " password='hunter2-secret' bogus=1")
      assert.is_nil(ok); assert.equal("EINVAL", code)
      assert.is_nil(msg:find("hunter2", 1, true))
      assert.equal("postgresql://orket:***@h/db?password=***&x=1", pg.scrub("postgresql://orket:pw@h/db?password=pw2&x=1"))
      assert.equal("host=h password=*** user=u", pg.scrub("host=h password=hunter2 user=u"))
    end)

    it("does not keep the loop alive while idle: a program that ends with it open ends", function()
      local dir = H.tmpdir()
      H.write(dir .. "/open.lua", string.format([[
local c = assert(require("orket.c.pg").connect(%q))
assert(c:query("SELECT 1"))
print("left open")
]], server.url))
      local r = H.orket("lua " .. H.quote(dir .. "/open.lua"), { wrap = "timeout 60" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("left open\n", r.stdout)
    end)

    it("loads libpq with the first connection, not when orket starts", function()
      -- a process of its own: this one has connected already. libpq stays out of it through
      -- start-up, the binding's loading, scrubbing a URL and a SQLite store; a connection
      -- (even one with a bad string) brings it in.
      local dir = H.tmpdir()
      H.write(dir .. "/maps.lua", string.format([[
local function mapped()
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find("/libpq%%.so") ~= nil
end
local seen = { tostring(mapped()) }
local pg = require "orket.c.pg"
assert(pg.scrub("postgresql://u:pw@h/db") == "postgresql://u:***@h/db")
local st = assert(require("orket.store").open(%q))
st:close()
seen[#seen + 1] = tostring(mapped())
local ok, _, code = pg.connect("bogus=1")
assert(ok == nil and code == "EINVAL", code)
seen[#seen + 1] = tostring(mapped())
local c = assert(pg.connect(%q))
assert(c:query("SELECT 1"))
c:close()
seen[#seen + 1] = tostring(mapped())
print(table.concat(seen, " "))
]], dir .. "/orket.db", server.url))
      local r = H.orket("lua " .. H.quote(dir .. "/maps.lua"), { wrap = "timeout 60" })
      assert.equal(0, r.status, r.stderr)
      -- stays mapped after the last close: loaded once per process (core/pgapi.c)
      assert.equal("false false true true\n", r.stdout)
    end)

    it("fails to connect within its timeout", function()
      -- a socket that accepts and never answers: connect waits, then times out
      local url, close = PG.silent()
      local ok, msg, code = pg.connect(url, { connect_timeout_ms = 100 })
      assert.is_nil(ok)
      assert.equal("ETIMEDOUT", code)
      assert.equal("pg: connecting: timed out after 100 ms", msg)
      close()
    end)
  end)

  describe("orket.store.pgpool", function()
    local pool
    before_each(function()
      pool = pgpool.new { url = server.url, size = 2 }
      assert(pool:run("CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, note text)"))
      assert(pool:run("TRUNCATE items"))
    end)
    after_each(function() pool:close() end)

    it("refuses bad options by name", function()
      assert.has_error(function() pgpool.new {} end, "bad argument #1 to 'new' (a table with url = \"postgresql://...\" expected)")
      assert.has_error(function() pgpool.new { url = "x", size = 0 } end, "bad argument #1 to 'new' (size must be at least 1)")
      assert.has_error(function() pgpool.new { url = "x", size = 1.5 } end, "bad argument #1 to 'new' (size must be an integer >= 0)")
    end)

    it("commits a transaction and returns its function's results", function()
      local a, b = pool:tx(function(tx, note)
        assert(tx:run("INSERT INTO items VALUES ($1, $2)", 1, note))
        return "done", tx:row("SELECT note FROM items WHERE id = $1", 1).note
      end, "first")
      assert.same({ "done", "first" }, { a, b })
      assert.equal("first", pool:row("SELECT note FROM items WHERE id = 1").note)
    end)

    it("rolls back when the function raises, returns nil, message, or ignores a failed statement", function()
      local ok, msg, code = pool:tx(function(tx)
        assert(tx:run("INSERT INTO items VALUES (1, 'x')"))
        error("boom", 0)
      end)
      assert.same({ nil, "boom", "ETX" }, { ok, msg, code })
      ok, msg, code = pool:tx(function(tx)
        assert(tx:run("INSERT INTO items VALUES (2, 'y')"))
        return nil, "changed my mind", "EMIND"
      end)
      assert.same({ nil, "changed my mind", "EMIND" }, { ok, msg, code })
      ok, msg, code = pool:tx(function(tx)
        assert(tx:run("INSERT INTO items VALUES (3, 'z')"))
        tx:run("INSERT INTO items VALUES (3, 'dup')") -- fails; the function goes on regardless
        return true
      end)
      assert.is_nil(ok); assert.equal("ETX", code)
      assert.matches("rolled back", msg)
      assert.same({}, pool:rows("SELECT * FROM items"))
      -- a transaction inside a transaction of the same task is refused (and rolls back)
      ok, msg, code = pool:tx(function() return pool:tx(function() end) end)
      assert.is_nil(ok); assert.equal("ETX", code)
      assert.matches("this task already has a transaction open", msg)
      local stale
      pool:tx(function(tx) stale = tx end)
      assert.has_error(function() stale:run("SELECT 1") end, "pg pool: the transaction is over (use tx only inside its function)")
    end)

    it("pins one connection for a transaction while other statements use another", function()
      local pins, outside = {}, {}
      assert(pool:tx(function(tx)
        for i = 1, 3 do
          pins[#pins + 1] = tx:pid()
          assert(tx:run("INSERT INTO items VALUES ($1, 'in tx')", i))
        end
        -- not yet visible outside the transaction, which runs on the pool's other connection
        outside = pool:rows("SELECT pg_backend_pid() AS pid, (SELECT count(*) FROM items)::int AS n")
        return true
      end))
      assert.equal(pins[1], pins[2]); assert.equal(pins[1], pins[3])
      assert.is_true(outside[1].pid ~= pins[1])
      assert.equal(0, outside[1].n)
      assert.equal(3, pool:row("SELECT count(*)::int AS n FROM items").n)
    end)

    it("makes a task wait for a free connection", function()
      local small = pgpool.new { url = server.url, size = 1 }
      local order = {}
      local holder = orket.spawn(function()
        return small:tx(function(tx)
          order[#order + 1] = "tx begins"
          assert(tx:run("SELECT pg_sleep(0.1)"))
          assert(tx:run("INSERT INTO items VALUES (10, 'held')"))
          order[#order + 1] = "tx commits"
          return true
        end)
      end)
      local reader = orket.spawn(function()
        local row = small:row("SELECT note FROM items WHERE id = 10")
        order[#order + 1] = "read"
        return row and row.note
      end)
      assert.same({ true, true }, { holder:join() })
      assert.same({ true, "held" }, { reader:join() })
      assert.same({ "tx begins", "tx commits", "read" }, order)
      assert.same({ size = 1, idle = 1, busy = 0 }, small:stats())
      small:close()
    end)

    it("closes a connection whose task died inside a transaction, rolling it back", function()
      local inside = false
      local t = orket.spawn(function()
        return pool:tx(function(tx)
          assert(tx:run("INSERT INTO items VALUES (20, 'never')"))
          inside = true
          orket.sleep(10000)
        end)
      end)
      -- cancelled inside its transaction (50 ms was a guess at how soon it gets there)
      H.wait_for(function() return inside end, "the transaction's insert")
      t:cancel()
      assert.same({ size = 2, idle = 0, busy = 0 }, pool:stats())
      assert.is_nil(pool:row("SELECT * FROM items WHERE id = 20"))
    end)

    it("recovers when its connections are lost", function()
      -- warm both connections, then end their server processes
      local t1 = orket.spawn(function() return pool:tx(function(tx) orket.sleep(30) return tx:pid() end) end)
      local t2 = orket.spawn(function() return pool:tx(function(tx) orket.sleep(30) return tx:pid() end) end)
      local _, p1 = t1:join()
      local _, p2 = t2:join()
      assert.equal(2, pool:stats().idle)
      local killer = connect()
      for _, pid in ipairs { p1, p2 } do
        assert.is_true(killer:query("SELECT pg_terminate_backend($1::int) AS ok", pid)[1].ok)
      end
      H.wait_for(function()
        for _, c in ipairs(pool.idle) do if c:state() ~= "broken" then return false end end
        return true
      end, "the pool's connections to be seen as lost")
      assert.equal(5, pool:row("SELECT 5 AS v").v)
      assert.same({}, pool:rows("SELECT * FROM items"))
      killer:close()
    end)
  end)

  describe("orket.store.pglisten", function()
    it("refuses channel names that are not identifiers", function()
      assert.has_error(function() pglisten.new { url = server.url, channels = { "a; DROP TABLE x" } } end,
        "bad argument #1 to 'new' (channels[1] must be an identifier of at most 63 characters)")
      assert.has_error(function() pglisten.new { url = server.url, channels = {} } end,
        "bad argument #1 to 'new' (channels must list at least one channel)")
    end)

    it("wakes on a notification, survives a lost connection and says it reconnected", function()
      local l = pglisten.new { url = server.url, channels = { "orket_wake", "other" }, retry_ms = 20 }
      local notes, info = l:wait(20)
      assert.same({}, notes)
      assert.is_true(info.reconnected) -- the first connection: read from the cursor
      local sender = connect()
      local waiter = orket.spawn(function() return l:wait(10000) end)
      assert(sender:query("SELECT pg_notify('orket_wake', '42')"))
      local ok, got, info2 = waiter:join()
      assert.is_true(ok)
      assert.same({ { channel = "orket_wake", payload = "42", pid = sender:pid() } }, got)
      assert.is_nil(info2.reconnected)
      -- end the listener's server process while it waits; it comes back on its own
      waiter = orket.spawn(function() return l:wait(10000) end)
      orket.sleep(20)
      assert(sender:query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
        .. "AND query LIKE 'LISTEN%'"))
      -- sent until one arrives: those sent before the listener is back are lost, as documented
      H.wait_for(function()
        assert(sender:query("SELECT pg_notify('other', 'after')"))
        return waiter.state ~= "running"
      end, "the notification after the reconnect")
      local ok3, got3, info3 = waiter:join()
      assert.is_true(ok3)
      assert.equal("after", got3[1].payload)
      assert.is_true(info3.reconnected)
      l:close()
      assert.same({ nil, "pg listener: closed", "ENOTCONN" }, { l:wait(10) })
      sender:close()
    end)

    it("with wake_on_connect, returns as soon as it has (re)connected, before any notification", function()
      local l = pglisten.new { url = server.url, channels = { "orket_wake" }, retry_ms = 20, wake_on_connect = true }
      -- a wait that only a (re)connect can end within the test
      local function woken()
        local waiter = orket.spawn(function() return l:wait(600000) end)
        local ok = pcall(H.wait_for, function() return waiter.state ~= "running" end, "the wake-up")
        if not ok then l:close() end
        return waiter:join()
      end
      local ok, notes, info = woken()
      assert.is_true(ok)
      assert.same({ {}, true }, { notes, info.reconnected })
      local sender = connect()
      assert(sender:query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
        .. "AND query LIKE 'LISTEN%'"))
      ok, notes, info = woken()
      assert.is_true(ok)
      assert.same({ {}, true }, { notes, info.reconnected })
      -- connected: a notification ends the next wait, not reconnected
      local waiter = orket.spawn(function() return l:wait(600000) end)
      assert(sender:query("SELECT pg_notify('orket_wake', 'x')"))
      local ok3, got, info3 = waiter:join()
      assert.is_true(ok3)
      assert.equal("x", got[1].payload)
      assert.is_nil(info3.reconnected)
      l:close()
      sender:close()
    end)
  end)

  describe("orket.store.pg_schema", function()
    local function sqlite_schema()
      local dir = H.tmpdir()
      local db = assert(store.open(dir .. "/orket.db"))
      local out = { tables = {}, indexes = {} }
      for _, t in ipairs(assert(db:rows("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
        .. "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'memory_fts_%'"))) do
        local cols = {}
        if not t.sql:find("VIRTUAL TABLE", 1, true) then
          for _, c in ipairs(assert(db:rows("SELECT name, type, \"notnull\" AS nn, pk FROM pragma_table_info(?)", t.name))) do
            -- a primary key is never NULL, whether or not SQLite's table says NOT NULL
            cols[c.name] = { type = c.type, notnull = c.nn == 1 or c.pk > 0 }
          end
        end
        out.tables[t.name] = cols
      end
      for _, i in ipairs(assert(db:rows("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))) do
        out.indexes[i.name] = i.tbl_name
      end
      db:close()
      return out
    end

    local function pg_schema_of(pool)
      local out = { tables = {}, indexes = {} }
      for _, c in ipairs(assert(pool:rows([[SELECT table_name AS t, column_name AS c, data_type AS ty,
          is_nullable = 'NO' AS nn FROM information_schema.columns WHERE table_schema = 'public']]))) do
        out.tables[c.t] = out.tables[c.t] or {}
        out.tables[c.t][c.c] = { type = c.ty, notnull = c.nn }
      end
      for _, i in ipairs(assert(pool:rows("SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'public'"))) do
        out.indexes[i.indexname] = i.tablename
      end
      return out
    end

    -- SQLite's declared type -> the PostgreSQL types that may stand for it
    local FITS = {
      TEXT = { text = true, jsonb = true, json = true, ["timestamp with time zone"] = true },
      INTEGER = { bigint = true, integer = true, boolean = true },
      REAL = { ["double precision"] = true },
    }

    local pool
    before_each(function()
      pool = pgpool.new { url = server.url, size = 2 }
      assert(pool:run("DROP SCHEMA public CASCADE"))
      assert(pool:run("CREATE SCHEMA public"))
    end)
    after_each(function() pool:close() end)

    it("reaches SQLite's latest schema version", function()
      assert.equal(#store.migrations, pg_schema.migrations[#pg_schema.migrations].sqlite)

    end)

    it("migrates an empty database once, also when two tasks start at once", function()
      assert.equal(0, pg_schema.version(pool))
      local a = orket.spawn(pg_schema.migrate, pool)
      local b = orket.spawn(pg_schema.migrate, pool)
      assert.same({ true, #pg_schema.migrations }, { a:join() })
      assert.same({ true, #pg_schema.migrations }, { b:join() })
      assert.equal(#pg_schema.migrations, pg_schema.version(pool))
      assert.equal(#pg_schema.migrations, assert(pg_schema.migrate(pool)))
      assert(pool:run("UPDATE orket_schema SET version = 99"))
      local ok, msg, code = pg_schema.migrate(pool)
      assert.is_nil(ok); assert.equal("EVERSION", code)
      assert.matches("schema version 99, newer than this orket knows", msg)
    end)

    -- all or nothing: a later step that fails keeps none of the upgrade's steps
    it("keeps none of an upgrade's steps when a later one fails", function()
      local old = { pg_schema.migrations[1] }
      assert.equal(1, assert(pg_schema.migrate(pool, old)))
      local list = { pg_schema.migrations[1], pg_schema.migrations[2],
        { version = 3, name = "broken", sql = "CREATE TABLE broken (x no_such_type)" } }
      local ok, msg = pg_schema.migrate(pool, list)
      assert.is_nil(ok)
      assert.matches("pg migration 3 %(broken%) failed: .*nothing of the upgrade was kept %(the database is at schema "
        .. "version 1, as before%)", msg)
      assert.equal(1, pg_schema.version(pool))
      assert.equal(#pg_schema.migrations, assert(pg_schema.migrate(pool)))
    end)

    it("upgrades a database made by an older schema, keeping its rows", function()
      local old = { pg_schema.migrations[1] }
      assert.equal(1, assert(pg_schema.migrate(pool, old)))
      assert(pool:run("INSERT INTO cards (id, type, summary, created_at, updated_at) VALUES ('OLD-1', 'epic', 'made long ago', now(), now())"))
      assert.is_nil(pool:row("SELECT 1 AS x FROM pg_tables WHERE tablename = 'leases'"))
      assert.equal(#pg_schema.migrations, assert(pg_schema.migrate(pool)))
      assert.equal(#pg_schema.migrations, pg_schema.version(pool))
      assert.equal("made long ago", pool:row("SELECT summary FROM cards WHERE id = 'OLD-1'").summary)
      assert.is_not_nil(pool:row("SELECT 1 AS x FROM pg_tables WHERE tablename = 'leases'"))
    end)

    it("has every SQLite table, column and index, with types that fit", function()
      assert(pg_schema.migrate(pool))
      local lite, post = sqlite_schema(), pg_schema_of(pool)
      local missing = {}
      for t, cols in pairs(lite.tables) do
        local cp = pg_schema.counterparts[t]
        if cp then
          if not (post.tables[cp.table] and post.tables[cp.table][cp.column]) then
            missing[#missing + 1] = t .. " (as " .. cp.table .. "." .. cp.column .. ")"
          end
        elseif not post.tables[t] then
          missing[#missing + 1] = "table " .. t
        else
          for c, info in pairs(cols) do
            local pc = post.tables[t][c]
            if not pc then
              missing[#missing + 1] = t .. "." .. c
            elseif not (FITS[info.type] or {})[pc.type] then
              missing[#missing + 1] = t .. "." .. c .. " is " .. pc.type .. " for SQLite's " .. info.type
            elseif info.notnull ~= pc.notnull then
              missing[#missing + 1] = t .. "." .. c .. " differs in NOT NULL"
            end
          end
        end
      end
      for name, t in pairs(lite.indexes) do
        if post.indexes[name] ~= t then missing[#missing + 1] = "index " .. name .. " on " .. t end
      end
      table.sort(missing)
      assert.same({}, missing)
      -- and nothing PostgreSQL has that SQLite lacks, but the schema's own bookkeeping
      local stands_for = {}
      for _, cp in pairs(pg_schema.counterparts) do stands_for[cp.table .. "." .. cp.column] = true end
      local extra = {}
      for t, cols in pairs(post.tables) do
        if not lite.tables[t] and t ~= "orket_schema" then
          extra[#extra + 1] = "table " .. t
        elseif lite.tables[t] then
          for c in pairs(cols) do
            if not lite.tables[t][c] and not stands_for[t .. "." .. c] then extra[#extra + 1] = t .. "." .. c end
          end
        end
      end
      table.sort(extra)
      assert.same({}, extra)
    end)

    it("keeps event ids a safe cursor: no id becomes visible before a smaller one", function()
      assert(pg_schema.migrate(pool))
      local a, b = connect(), connect()
      local function ids(cursor)
        local out = {}
        for _, e in ipairs(assert(pgevents.after(pool, cursor))) do out[#out + 1] = e.id end
        return out
      end
      -- a plain INSERT shows the hazard: the later id commits first, and a reader whose
      -- cursor moved past it would never see the earlier one
      assert(a:exec("BEGIN"))
      local early = assert(a:query("INSERT INTO events (at, kind) VALUES (now(), 'plain') RETURNING id"))[1].id
      assert(b:exec("BEGIN"))
      local late = assert(b:query("INSERT INTO events (at, kind) VALUES (now(), 'plain') RETURNING id"))[1].id
      assert(b:exec("COMMIT"))
      assert.is_true(late > early)
      assert.same({ late }, ids(0))
      assert(a:exec("COMMIT"))
      local cursor = late
      -- append() serializes: the second writer waits until the first commits
      assert(a:exec("BEGIN"))
      local first = assert(pgevents.append(a, { kind = "first", card = "C-1", data = { n = 1 } }))
      local second_writer = orket.spawn(function()
        assert(b:exec("BEGIN"))
        local id = assert(pgevents.append(b, { kind = "second" }))
        assert(b:exec("COMMIT"))
        return id
      end)
      orket.sleep(100)
      assert.equal("running", second_writer.state) -- waiting for the journal's lock
      assert.same({}, ids(cursor))
      assert(a:exec("COMMIT"))
      local ok, second = second_writer:join()
      assert.is_true(ok)
      assert.is_true(second > first)
      assert.same({ first, second }, ids(cursor))
      local ev = assert(pgevents.after(pool, cursor, 1))[1]
      assert.same({ id = first, kind = "first", card = "C-1", data = { n = 1 } },
        { id = ev.id, kind = ev.kind, card = ev.card, data = ev.data })
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", ev.at)
      a:close(); b:close()
    end)

    it("keeps the journal append-only", function()
      assert(pg_schema.migrate(pool))
      assert(pool:run("INSERT INTO events (at, kind, data) VALUES (now(), 'test', $1::jsonb)", '{"a": 1}'))
      local ok, msg = pool:run("UPDATE events SET kind = 'x'")
      assert.is_nil(ok); assert.matches("events are append%-only", msg)
      ok, msg = pool:run("DELETE FROM events")
      assert.is_nil(ok); assert.matches("events are append%-only", msg)
      ok, msg = pool:run("TRUNCATE events")
      assert.is_nil(ok); assert.matches("events are append%-only", msg)
      assert.equal(1, pool:row("SELECT (data->>'a')::int AS a FROM events").a)
    end)
  end)
end)
