-- orket.errors, the one vocabulary of failures: it holds every code the sources return, the
-- HTTP API answers each of its codes with the status the vocabulary gives it, every surface
-- adds the code's remedy, and the troubleshooting guide's tables are the vocabulary's.
local errors = require "orket.errors"
local routes = require "orket.serve.routes"
local H = require "tests.helpers"
teardown(function() H.cleanup() end)

-- every file under dir whose name ends in one of exts
local function files(dir, exts)
  local out = {}
  local p = io.popen("find " .. H.quote(dir) .. " -type f")
  for f in p:lines() do
    for _, ext in ipairs(exts) do
      if f:sub(-#ext) == ext then out[#out + 1] = f end
    end
  end
  p:close()
  return out
end

describe("the error vocabulary", function()
  it("names in its remedies only commands that exist, with their subcommand", function()
    local cli = require "orket.cli"
    local seen = 0
    for code, e in pairs(errors.CODES) do
      for words in tostring(e.remedy or ""):gmatch("`orket ([^`]*)`") do
        local name, rest = words:match("^(%S+)%s*(.*)$")
        if name and name ~= "..." then
          seen = seen + 1
          local cmd = cli.load_command(name)
          assert(cmd, code .. ": no command " .. name)
          local first = cmd.args and cmd.args[1]
          if first and first[1]:find("|", 1, true) and not first.optional and first[1]:sub(1, 1) ~= "-" then
            local sub = rest:match("^(%S+)")
            local ok = false
            for alt in first[1]:gmatch("[^|]+") do ok = ok or alt == sub end
            assert(ok, code .. ": `orket " .. words .. "` lacks one of " .. first[1])
          end
        end
      end
    end
    assert.is_true(seen > 20, "remedies naming a command: " .. seen)
  end)

  it("has every code in one group at most once, with what it means; HTTP codes with a status", function()
    local listed = {}
    for _, g in ipairs(errors.GROUPS) do
      for _, code in ipairs(g.codes) do
        assert.is_nil(listed[code .. "@" .. g.name], code .. " twice in " .. g.name)
        listed[code .. "@" .. g.name] = true
        listed[code] = true
        local e = errors.get(code)
        assert.is_table(e, code)
        assert.is_string(e.means, code)
        assert.is_true(#e.means > 0, code)
        assert.is_string(e.remedy, code)
        if g.name == "http" then assert.is_true(math.type(e.status) == "integer" and e.status >= 400, code) end
        if g.name == "gate" then assert.is_truthy(({ allow = 1, deny = 1, ask = 1 })[e.verdict], code) end
      end
    end
    for code in pairs(errors.CODES) do assert.is_true(listed[code] or false, code .. " is in no group") end
  end)

  it("names every E-code the Lua library, the tools and the C core return", function()
    local missing = {}
    local sources = files(H.ROOT .. "/lua/orket", { ".lua" })
    for _, f in ipairs(files(H.ROOT .. "/tools", { ".lua" })) do sources[#sources + 1] = f end
    for _, f in ipairs(files(H.ROOT .. "/core", { ".c" })) do sources[#sources + 1] = f end
    local n = 0
    for _, f in ipairs(sources) do
      for code in H.read(f):gmatch('"(E[%u%d][%u%d_]+)"') do
        n = n + 1
        -- "EMCP_" is a prefix a module builds codes from, ENV_VAR a placeholder in a message
        if not errors.get(code) and not code:match("_$") and code ~= "ENV_VAR" then missing[#missing + 1] = code .. " (" .. f .. ")" end
      end
    end
    assert.is_true(n > 100, "read only " .. n .. " codes")
    assert.same({}, missing)
  end)

  it("gives each HTTP answer the status its code has", function()
    local n = 0
    for _, f in ipairs(files(H.ROOT .. "/lua/orket/serve", { ".lua" })) do
      for status, code in H.read(f):gmatch('err%((%d%d%d), "([%a_]+)"') do
        n = n + 1
        local e = errors.get(code)
        assert.is_table(e, code .. " in " .. f)
        assert.equal(e.status, tonumber(status), code .. " in " .. f)
      end
    end
    assert.is_true(n > 50, "read only " .. n .. " answers")
  end)

  it("adds a code's remedy to an HTTP answer, and none when there is nothing to do", function()
    local status, doc = routes.err(409, "project_error", "orket.lua: line 3: boom")
    assert.equal(409, status)
    assert.equal("orket validate", (doc.error.remedy:gsub("`", "")))
    local _, plain = routes.err(404, "not_found", "no card X")
    assert.same({ error = { code = "not_found", message = "no card X" } }, plain)
    local _, own = routes.err(409, "conflict", "m", "do this")
    assert.equal("do this", own.error.remedy)
    -- the board's refusals keep the state machine's remedy
    assert.equal(require("orket.c.statemachine").remedy("ETRANSITION"), errors.remedy("ETRANSITION"))
    assert.equal(409, errors.status("ETRANSITION"))
    assert.equal(400, errors.status("ESTATUS"))
    assert.equal(404, errors.status("ENOENT"))
    assert.equal(500, errors.status("not a code"))
  end)

  -- a write that waited past PostgreSQL's lock timeout was told "another process holds a
  -- long transaction or is changing the secrets": the secrets are another lock's
  it("gives the store's lock a remedy of its own, and the secret store's lock its own", function()
    local store_msg = "pg: canceling statement due to lock timeout (SQLSTATE 55P03): another connection held the "
      .. "store's lock past the lock timeout (30 s); a long transaction, or a stopped process holding one "
      .. "(pg_stat_activity names it); retry once it ends"
    local _, doc = routes.err(409, "EBUSY", store_msg)
    assert.is_nil(doc.error.remedy:find("secret", 1, true), doc.error.remedy)
    assert.matches("retry", doc.error.remedy, 1, true)
    assert.is_nil(errors.remedy("EBUSY"):find("secret", 1, true))
    local secrets = errors.remedy("EBUSY", "/p/.orket/secrets.lock stayed locked by another process")
    assert.equal("another process is changing the secrets; retry", secrets)
  end)

  it("is what the troubleshooting guide's tables say", function()
    local p = io.popen(string.format("'%s' lua '%s/scripts/errors-doc.lua' --check '%s' 2>&1", H.BIN, H.ROOT, H.ROOT))
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    -- and the check fails on a guide that differs
    local root = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(root .. "/docs/guide"))
    local text = H.read(H.ROOT .. "/docs/guide/troubleshooting.md")
    H.write(root .. "/docs/guide/troubleshooting.md", (text:gsub("| `ECYCLE` | [^\n]*", "| `ECYCLE` | stale |", 1)))
    local q = io.popen(string.format("'%s' lua '%s/scripts/errors-doc.lua' --check '%s' 2>&1", H.BIN, H.ROOT, root))
    local qout = q:read("a")
    assert.is_nil(q:close())
    assert.matches("differ from orket.errors", qout, 1, true)
  end)
end)
