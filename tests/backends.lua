-- tests.backends: the store backend a spec or end-to-end test runs on, and a fresh database
-- for each test. Without ORKET_TEST_DATABASE_URL the tests run on SQLite, as always; with
-- it (tests/with_pg.lua sets it to a server it starts) the files that use this module run
-- on PostgreSQL instead, each test on a database of its own, created from a migrated
-- template (CREATE DATABASE ... TEMPLATE copies files: milliseconds, not a migration).
local H = require "tests.helpers"

local M = {}

M.ENV = "ORKET_TEST_DATABASE_URL"

--- name() -> "pg" when ORKET_TEST_DATABASE_URL is set, else "sqlite"
function M.name()
  local url = os.getenv(M.ENV)
  return (url and url ~= "") and "pg" or "sqlite"
end

local function with_db(url, db)
  -- the URL names a database in its path: postgresql://user@/DB?host=...
  local out, n = url:gsub("^(postgres[ql]*://[^/]*/)[^?]*", "%1" .. db)
  assert(n == 1, "tests.backends: cannot name a database in " .. url)
  return out
end

local made = {}     -- databases this process created, dropped by cleanup()
local template      -- the migrated template, made once per process
local counter = 0

-- One connection to the server's own database for the whole process: every connection
-- costs a SCRAM exchange (tens of milliseconds), and each test makes and drops databases.
local admin_conn
local function admin()
  if not (admin_conn and admin_conn:state() == "idle") then
    if admin_conn then admin_conn:close() end
    admin_conn = assert(require("orket.c.pg").connect(os.getenv(M.ENV)))
  end
  return admin_conn
end

--- fresh_url() -> the URL of a new, migrated, empty database on the test server
function M.fresh_url()
  local base = os.getenv(M.ENV)
  local pid = string.format("%d", require("luv").os_getpid())
  local c = admin()
  if not template then
    local name = "orket_tpl_" .. pid
    assert(c:query("DROP DATABASE IF EXISTS " .. name))
    assert(c:query("CREATE DATABASE " .. name))
    local db = assert(require("orket.store").open_url(with_db(base, name)))
    db:close()
    template = name
  end
  -- busted loads this module afresh for each spec file of a process: the clock keeps the
  -- names of one file's databases apart from another's
  counter = counter + 1
  local name = string.format("orket_t_%s_%d_%d", pid, require("luv").hrtime() % 1000000000, counter)
  -- FILE_COPY: a small template copied as files is faster than through the WAL (the
  -- default), and the test server does not sync its files
  assert(c:query("CREATE DATABASE " .. name .. " TEMPLATE " .. template .. " STRATEGY FILE_COPY"))
  made[#made + 1] = name
  return with_db(base, name)
end

--- open_store() -> a fresh store of the backend under test (SQLite: a new file)
function M.open_store()
  if M.name() == "pg" then return assert(require("orket.store").open_url(M.fresh_url())) end
  return assert(require("orket.store").open(H.tmpdir() .. "/orket.db"))
end

--- env([t]) -> t (or a new table) with ORKET_DATABASE_URL set to a fresh database on
--- PostgreSQL, for H.orket's env: every command of an end-to-end test then uses it
function M.env(t)
  t = t or {}
  if M.name() == "pg" then t.ORKET_DATABASE_URL = M.fresh_url() end
  return t
end

--- project(dir) -> dir: on PostgreSQL, the project in DIR (its orket.lua written) names a
--- fresh database of its own, so every command run in it uses that; on SQLite, unchanged
function M.project(dir)
  if M.name() == "pg" then
    local path = dir .. "/orket.lua"
    local f = assert(io.open(path, "a"))
    f:write(string.format("\nstore = { url = %q }\n", M.fresh_url()))
    f:close()
  end
  return dir
end

--- starter() -> dir: `orket init`'s starter project (its scripted model, offline) in a
--- fresh temp dir, on the backend under test: on PostgreSQL it names a fresh database of
--- the test server (M.project) and its board is imported there
function M.starter()
  local dir = H.tmpdir() .. "/p"
  assert(H.orket("init " .. H.quote(dir) .. " --yes").status == 0, "orket init failed")
  if M.name() == "pg" then
    M.project(dir)
    assert(H.orket("import", { cwd = dir }).status == 0, "orket import failed")
  end
  return dir
end

--- cleanup(): drops the databases the tests of this process made so far (H.cleanup calls
--- it after each test); the template stays for the next test
function M.cleanup()
  if M.name() ~= "pg" or #made == 0 then return end
  local c = admin()
  for i = #made, 1, -1 do c:query("DROP DATABASE IF EXISTS " .. made[i] .. " WITH (FORCE)") end
  made = {}
end

return M
