-- The journal's notifications on PostgreSQL (docs/store.md, "Who may connect"): a role
-- that can connect to Orket's database can LISTEN to orket_journal (every event's rows) and
-- NOTIFY it. Opening the store takes CONNECT from PUBLIC when Orket's role is the
-- database's owner, and says what to run, changing nothing, when it is not (a superuser
-- too). On SQLite there is nothing to test.
local H = require "tests.helpers"
local B = require "tests.backends"
local events = require "orket.serve.events"

local pg_only = B.name() == "pg" and describe or pending

pg_only("the journal's notifications on PostgreSQL", function()
  local pg = require "orket.c.pg"
  local store = require "orket.store"
  local admin, roles, dbs = nil, {}, {}
  local n = 0

  local function sql(c, q, ...) return assert(c:query(q, ...)) end
  local function conn() admin = admin or assert(pg.connect(os.getenv(B.ENV))) return admin end
  -- a login role of this test's own (roles are the whole server's: named apart per process)
  local function role()
    n = n + 1
    local name = string.format("orket_r_%d_%d_%d", require("luv").os_getpid(), require("luv").hrtime() % 1000000, n)
    sql(conn(), "CREATE ROLE " .. name .. " LOGIN PASSWORD 'pw-" .. name .. "'")
    roles[#roles + 1] = name
    return name
  end
  local function as(url, name)
    return (url:gsub("^(postgres[ql]*://)[^@/]*@", "%1" .. name .. ":pw-" .. name .. "@"):gsub("&passfile=[^&]*", ""))
  end
  local function dbname(url) return url:match("^postgres[ql]*://[^/]*/([^?]*)") end

  after_each(function()
    H.cleanup()
    for _, d in ipairs(dbs) do conn():query("DROP DATABASE IF EXISTS " .. d .. " WITH (FORCE)") end
    for _, r in ipairs(roles) do conn():query("DROP ROLE IF EXISTS " .. r) end
    dbs, roles = {}, {}
  end)
  teardown(function() if admin then admin:close() end end)

  it("takes CONNECT from PUBLIC when it owns the database: a role with no grant cannot connect", function()
    local url = B.fresh_url() -- a new database: PUBLIC may connect to it
    local intruder = role()
    local c0 = assert(pg.connect(as(url, intruder)))
    c0:close()
    local db = assert(store.open_url(url))
    assert.is_nil(db.public_warning)
    local c, err = pg.connect(as(url, intruder))
    assert.is_nil(c)
    assert.matches("permission denied for database", err)
    local r = assert(db:row("SELECT has_database_privilege('public', current_database(), 'CONNECT') AS c, "
      .. "has_database_privilege('public', current_database(), 'TEMP') AS t, "
      .. "has_database_privilege(current_user, current_database(), 'CONNECT') AS mine"))
    assert.same({ false, false, true }, { r.c, r.t, r.mine })
    -- a role the operator grants CONNECT by name may connect
    sql(conn(), "GRANT CONNECT ON DATABASE " .. dbname(url) .. " TO " .. intruder)
    local c2 = assert(pg.connect(as(url, intruder)))
    c2:close()
    db:close()
    -- opened again: nothing to do, nothing said
    db = assert(store.open_url(url))
    assert.is_nil(db.public_warning)
    db:close()
  end)

  -- a database another role owns, with its public schema open to user for the migrations
  local function foreign_db(user)
    local name = string.format("orket_pubdb_%d_%d", require("luv").os_getpid(), require("luv").hrtime() % 1000000)
    sql(conn(), "CREATE DATABASE " .. name)
    dbs[#dbs + 1] = name
    local url = (os.getenv(B.ENV):gsub("^(postgres[ql]*://[^/]*/)[^?]*", "%1" .. name))
    local c = assert(pg.connect(url))
    sql(c, "GRANT CREATE ON SCHEMA public TO " .. user)
    c:close()
    return name, url
  end

  it("says what to run when its role does not own the database, and changes nothing", function()
    local user = role()
    local name, url = foreign_db(user)
    local db = assert(store.open_url(as(url, user)))
    assert.matches("REVOKE CONNECT, TEMPORARY ON DATABASE " .. name .. " FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE "
      .. name .. " TO " .. user, db.public_warning, 1, true)
    assert.is_true(db:row("SELECT has_database_privilege('public', current_database(), 'CONNECT') AS c").c)
    -- `orket serve` says it at start, through its log
    local said = {}
    local hub = events.new(db, { heartbeat_ms = 600000, listen_poll_ms = 600000,
      on_error = function(m) said[#said + 1] = m end })
    assert.matches("PUBLIC has CONNECT", said[1], 1, true)
    hub:close()
    db:close()
  end)

  it("a superuser that does not own the database changes nothing either: it is warned", function()
    local user = role()
    sql(conn(), "ALTER ROLE " .. user .. " SUPERUSER")
    local name, url = foreign_db(user)
    local before = conn():query("SELECT datacl::text AS acl FROM pg_database WHERE datname = $1", name)[1].acl
    local db = assert(store.open_url(as(url, user)))
    assert.matches("REVOKE CONNECT, TEMPORARY ON DATABASE " .. name .. " FROM PUBLIC", db.public_warning, 1, true)
    assert.is_true(db:row("SELECT has_database_privilege('public', current_database(), 'CONNECT') AS c").c)
    db:close()
    assert.equal(before, conn():query("SELECT datacl::text AS acl FROM pg_database WHERE datname = $1", name)[1].acl)
    -- opened again (the version's read alone): still warned, still nothing changed
    db = assert(store.open_url(as(url, user)))
    assert.is_string(db.public_warning)
    db:close()
    assert.equal(before, conn():query("SELECT datacl::text AS acl FROM pg_database WHERE datname = $1", name)[1].acl)
  end)
end)
