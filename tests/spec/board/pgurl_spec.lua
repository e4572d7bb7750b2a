-- orket.store.pgurl: the PostgreSQL URL from orket.lua's store section or
-- ORKET_DATABASE_URL, never with a password in it.
local pgurl = require "orket.store.pgurl"
local settings = require "orket.settings"

local function env(t) return function(k) return t[k] end end

describe("orket.store.pgurl", function()
  it("takes a postgresql:// URL from orket.lua, and the environment's over it", function()
    assert.is_false(pgurl.resolve(nil, env {}))
    assert.equal("postgresql://orket@db/orket", pgurl.resolve({ url = "postgresql://orket@db/orket" }, env {}))
    assert.equal("postgres://u@/x?host=/run/pg", pgurl.resolve({ url = "postgresql://orket@db/orket" },
      env { ORKET_DATABASE_URL = "postgres://u@/x?host=/run/pg" }))
    assert.equal("postgresql://orket@db/orket", pgurl.resolve({ url = "postgresql://orket@db/orket" },
      env { ORKET_DATABASE_URL = "" }))
  end)

  it("refuses a password in the URL, and says where it goes instead", function()
    local ok, msg, code = pgurl.resolve({ url = "postgresql://orket:s3cret@db/orket" }, env {})
    assert.is_nil(ok); assert.equal("EINVAL", code)
    assert.equal("orket.lua: store.url: must not contain the password: put it in PGPASSWORD or ~/.pgpass", msg)
    ok, msg = pgurl.resolve(nil, env { ORKET_DATABASE_URL = "postgresql://db/orket?sslmode=require&password=s3cret" })
    assert.is_nil(ok)
    assert.equal("ORKET_DATABASE_URL must not contain the password: put it in PGPASSWORD or ~/.pgpass", msg)
    assert.is_nil(msg:find("s3cret", 1, true))
    -- libpq decodes a parameter's name, so a percent-encoded one is the password too
    for _, u in ipairs { "postgresql://o@/d?%70assword=s3cret", "postgresql://o@/d?host=/x&pass%77ord=s3cret" } do
      ok, msg = pgurl.resolve(nil, env { ORKET_DATABASE_URL = u })
      assert.equal("ORKET_DATABASE_URL must not contain the password: put it in PGPASSWORD or ~/.pgpass", msg, u)
    end
    ok, msg = pgurl.resolve(nil, env { ORKET_DATABASE_URL = "postgresql://o@/d?sslkey=k&sslpassword=s3cret" })
    assert.matches("^ORKET_DATABASE_URL must not contain sslpassword, a secret", msg)
    -- a URL of another scheme is echoed without its password
    ok, msg = pgurl.resolve({ url = "mysql://orket:s3cret@db/orket" }, env {})
    assert.matches("(got mysql://orket:***@db/orket)", msg, 1, true)
    -- secrets of one letter, each said as three: the text after them is not cut short
    assert.equal("postgresql://u:***@h/d?password=***&x=1",
      require("orket.c.pg").scrub("postgresql://u:p@h/d?password=q&x=1"))
  end)

  it("takes several hosts only with target_session_attrs=read-write (or primary)", function()
    local multi = "postgresql://orket@db1:5432,db2:5433/orket?target_session_attrs=read-write"
    assert.equal(multi, pgurl.resolve({ url = multi }, env {}))
    assert.is_true(pgurl.check("postgresql://orket@/orket?host=/a,/b&target_session_attrs=primary", "x"))
    assert.is_true(pgurl.check("postgresql://orket@db/orket?target_session_attrs=any", "x")) -- one host: any
    local ok, msg = pgurl.resolve({ url = "postgresql://orket@db1,db2/orket" }, env {})
    assert.is_nil(ok)
    assert.equal("orket.lua: store.url: names several hosts, so it must say target_session_attrs=read-write (or primary), "
      .. "or a standby may be taken for the primary (got none)", msg)
    ok, msg = pgurl.check("postgresql://orket@/orket?host=/a,/b&target_session_attrs=any", "ORKET_DATABASE_URL")
    assert.is_nil(ok)
    assert.matches("^ORKET_DATABASE_URL names several hosts.*%(got target_session_attrs=any%)$", msg)
  end)

  it("names the field of a bad store section", function()
    assert.same({ nil, "orket.lua: store: must be a table such as {url = \"postgresql://...\"}" }, { pgurl.section("x") })
    assert.same({ nil, "orket.lua: store.host: unknown setting (known: url)" }, { pgurl.section { host = "db" } })
    local _, msg = pgurl.section { url = "mysql://db/x" }
    assert.equal("orket.lua: store.url: must be a postgresql:// URL, e.g. postgresql://orket@db.example/orket (got mysql://db/x)", msg)
    _, msg = pgurl.section { url = 5 }
    assert.equal("orket.lua: store.url: must be a string (got number)", msg)
  end)

  it("is resolved with the rest of the configuration, the environment's first", function()
    local config = require "orket.config"
    assert.is_false(assert(config.finish({}, "/p", env {})).database_url)
    assert.equal("postgresql://a@db/x", assert(config.finish({ store = { url = "postgresql://a@db/x" } }, "/p", env {})).database_url)
    assert.equal("postgresql://b@db/y", assert(config.finish({ store = { url = "postgresql://a@db/x" } }, "/p",
      env { ORKET_DATABASE_URL = "postgresql://b@db/y" })).database_url)
    assert.same({ nil, "ORKET_DATABASE_URL must be a postgresql:// URL, e.g. postgresql://orket@db.example/orket (got file:x)", "EINVAL" },
      { config.finish({}, "/p", env { ORKET_DATABASE_URL = "file:x" }) })
  end)

  it("is a setting orket.lua may have, checked with the others", function()
    assert.same({}, settings.check { store = { url = "postgresql://orket@db/orket" } })
    assert.same({ "orket.lua: store.url: must not contain the password: put it in PGPASSWORD or ~/.pgpass" },
      settings.check { store = { url = "postgresql://orket:pw@db/orket" } })
    local s = assert(settings.resolve { store = { url = "postgresql://orket@db/orket" } })
    assert.same({ url = "postgresql://orket@db/orket" }, s.store)
    assert.is_nil(assert(settings.resolve {}).store)
  end)
end)
