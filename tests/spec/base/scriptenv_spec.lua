-- Restricted environments: the exact key set, and named escape attempts, each of which
-- must fail its own call and leave the process healthy.
local scriptenv = require "orket.scriptenv"

local function run(src, opts)
  local box = scriptenv.new(opts or { name = "attempt.lua", instructions = 200000, timeout_ms = 1000, memory = 8 << 20 })
  local fn, err, code = box:load(src, "attempt.lua")
  if not fn then return false, err, code end
  return box:pcall(fn)
end

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function healthy()
  -- the host still runs code, allocates and waits normally
  assert.equal(3, #string.rep("abc", 1))
  assert.is_true(#string.rep("x", 4 << 20) == 4 << 20)
  orket.sleep(1)
end

describe("script environment", function()
  -- a policy's hours judged alike in every zone: os.date is UTC whatever TZ the process
  -- has (a rule allowed a write under UTC and denied it under India's time, at one moment)
  it("gives os.date in UTC whatever the process's TZ", function()
    local H = require "tests.helpers"
    if not io.open("/usr/share/zoneinfo/Asia/Kolkata") then return pending("no tzdata here (Asia/Kolkata)") end
    local code = [[local box = require("orket.scriptenv").new { name = "p.lua" }
local fn = assert(box:load('return os.date("%H:%M", 0), os.date("!%H:%M", 0), os.date("*t", 0).hour, os.date(nil, 0)'))
local a, b, c, d = select(2, box:pcall(fn))
print(a, b, c, d, os.date("%H:%M", 0))]]
    local r = H.orket("lua -e " .. H.quote(code), { env = { TZ = "Asia/Kolkata" } })
    assert.equal(0, r.status, r.stderr)
    -- the host's own os.date (orket lua's, trusted) keeps the zone
    assert.equal("00:00\t00:00\t0\tThu Jan  1 00:00:00 1970\t05:30\n", r.stdout)
  end)

  -- and os.time of a table reads it as UTC: "09:00 today" is one moment in every zone, and
  -- os.time(os.date("*t")) is os.time()
  it("reads os.time's table as UTC whatever the process's TZ, normalizing its fields", function()
    local H = require "tests.helpers"
    if not io.open("/usr/share/zoneinfo/Asia/Kolkata") then return pending("no tzdata here (Asia/Kolkata)") end
    local code = [[local box = require("orket.scriptenv").new { name = "p.lua" }
local fn = assert(box:load('local t = { year = 2026, month = 13, day = 0, hour = 9 } local e = os.time(t) '
  .. 'return os.time(os.date("*t", 1700000000)), os.time{ year = 2026, month = 12, day = 2, hour = 9 }, e, t.month, t.day'))
print(select(2, box:pcall(fn)))]]
    local r = H.orket("lua -e " .. H.quote(code), { env = { TZ = "Asia/Kolkata" } })
    assert.equal(0, r.status, r.stderr)
    assert.equal("1700000000\t1796202000\t1798707600\t12\t31\n", r.stdout)
  end)

  it("is the host API's orket.scriptenv, and its field sandbox, the name before, for scripts written then", function()
    local api = require "orket"
    assert.equal(scriptenv, api.scriptenv)
    assert.equal(scriptenv, api.sandbox)
  end)

  it("has exactly the allow-listed globals", function()
    local box = scriptenv.new {}
    assert.same({
      "_G", "_VERSION", "assert", "collectgarbage", "coroutine", "error", "getmetatable",
      "ipairs", "load", "math", "next", "os", "pairs", "pcall", "rawequal", "rawget", "rawlen",
      "rawset", "select", "setmetatable", "string", "table", "tonumber", "tostring", "type",
      "utf8", "xpcall",
    }, keys(box.env))
  end)

  it("adds print only when the host gives it a sink, and host globals frozen", function()
    local lines = {}
    local box = scriptenv.new { print = function(s) lines[#lines + 1] = s end, globals = { tools = { a = 1 } } }
    local fn = assert(box:load("print('hi', 1, nil) tools.b = 2"))
    local ok, err = box:pcall(fn)
    assert.same({ "hi\t1\tnil" }, lines)
    assert.is_false(ok)
    assert.matches("read%-only table %(field 'b'%)", err)
  end)

  it("exposes exactly the allow-listed library functions", function()
    local box = scriptenv.new {}
    for lib, names in pairs(scriptenv.ALLOW) do
      if lib ~= "globals" then
        local got = keys(box.env[lib])
        local want = { table.unpack(names) }
        if lib == "coroutine" then want[#want + 1] = "create"; want[#want + 1] = "wrap" end
        table.sort(want)
        assert.same(want, got, lib)
      end
    end
  end)

  for _, name in ipairs { "io", "os.execute", "os.exit", "os.getenv", "os.remove", "package",
    "require", "debug", "string.dump", "dofile", "loadfile", "os.setlocale", "math.randomseed" } do
    it("has no " .. name, function()
      local ok, err = run("return " .. name)
      if ok then
        assert.is_nil(err, name .. " is reachable") -- field lookups yield nil
      else
        assert.matches("undefined global", err)
      end
    end)
  end

  it("has no string.dump through string methods either", function()
    local ok, err = run("return (''):dump(function() end)")
    assert.is_false(ok)
    assert.matches("string.dump is not available", err)
    assert.equal("A", ("a"):upper()) -- methods still work everywhere
  end)

  it("raises on reads of undefined globals, naming the script", function()
    local ok, err, code = run("return no_such_thing")
    assert.is_false(ok)
    assert.equal("ERUNTIME", code)
    assert.matches("undefined global 'no_such_thing' in attempt.lua", err)
  end)

  it("refuses collectgarbage beyond count", function()
    assert.is_true((run("return collectgarbage('count') > 0")))
    local ok, err = run("collectgarbage()")
    assert.is_false(ok)
    assert.matches('only "count"', err)
    ok, err = run("collectgarbage('stop')")
    assert.is_false(ok)
  end)

  it("refuses binary chunks: load with mode 'b'", function()
    local ok, fn, err = run("return load('return 1', 'x', 'b')")
    assert.is_true(ok)
    assert.is_nil(fn)
    assert.matches("only text chunks", err)
  end)

  it("refuses binary chunks: a string.dump-like header", function()
    local ok, fn, err = run("return load('\\27LuaT\\0\\25\\147\\r\\n\\26\\n')")
    assert.is_true(ok)
    assert.is_nil(fn)
    assert.matches("binary chunks are not allowed", err)
    -- the same through box:load
    local box = scriptenv.new {}
    local f2, e2, c2 = box:load("\27Lua")
    assert.is_nil(f2)
    assert.equal("ESYNTAX", c2)
    assert.matches("binary", e2)
  end)

  it("compiles a text nested too deeply into a message naming the file, under any handler", function()
    local deep = "return " .. ("{"):rep(250) .. ("}"):rep(250)
    -- orket.cli's handler answers a table: Lua's parser raises its C stack overflow
    -- through the innermost handler, and load handed that table back as its message
    local ok, fn, err, code = xpcall(function()
      return scriptenv.new {}:load(deep, "epics/deep.lua")
    end, function(e) return { internal = e } end)
    assert.is_true(ok)
    assert.is_nil(fn)
    assert.equal("epics/deep.lua: nested too deeply to compile (C stack overflow)", err)
    assert.equal("ESYNTAX", code)
    ok, fn, err = xpcall(scriptenv.compile, debug.traceback, deep, "=stdin")
    assert.is_true(ok)
    assert.is_nil(fn)
    assert.equal("stdin: nested too deeply to compile (C stack overflow)", err)
    -- Lua's own messages as they are, and the host's environment when none is given
    assert.same({ nil, "x.lua:2: unexpected symbol near <eof>" }, { scriptenv.compile("x =\n", "@x.lua") })
    -- a long name, which Lua shortens in its message to "...tail", is not put before it again
    local long = "/tmp/" .. string.rep("a", 70) .. "/bad.lua"
    local _, lerr = scriptenv.compile("local x = = 1", "@" .. long)
    assert.matches("^%.%.%.a+/bad%.lua:1: unexpected symbol near '='$", lerr)
    assert.equal(_G, scriptenv.compile("return _ENV", "=x")())
    assert.same({ a = 1 }, scriptenv.compile("return _ENV", "=x", { a = 1 })())
  end)

  it("load inside a script defaults to the script's environment, not the host's", function()
    local ok, v = run("secret = 41 return load('return secret + 1')()")
    assert.is_true(ok)
    assert.equal(42, v)
    local ok2, err = run("return load('return io')()")
    assert.is_false(ok2)
    assert.matches("undefined global 'io'", err)
  end)

  it("keeps the string metatable out of reach: getmetatable('').__index tampering", function()
    local ok, err = run("getmetatable('').__index.upper = function() return 'pwned' end")
    assert.is_false(ok)
    assert.matches("attempt to index a nil value", err)
    assert.equal("ABC", ("abc"):upper())
  end)

  it("freezes shared library tables: one script cannot change what another sees", function()
    local ok, err = run("string.upper = function() return 'pwned' end")
    assert.is_false(ok)
    assert.matches("read%-only", err)
    ok, err = run("rawset(string, 'upper', tostring)")
    assert.is_false(ok)
    assert.matches("read%-only", err)
    ok, err = run("setmetatable(table, {})")
    assert.is_false(ok)
    ok, err = run("getmetatable(math).__index.pi = 3")
    assert.is_false(ok)
    local ok2, v = run("return string.upper('x'), #table, next(os) ~= nil")
    assert.is_true(ok2)
    assert.equal("X", v)
  end)

  it("never hands out the table behind a read-only view, not even through pairs", function()
    local ok, err = run("local _, raw = pairs(string) raw.format = nil")
    assert.is_false(ok)
    assert.matches("read%-only", err)
    local ok2, n = run("local n = 0 for k, v in pairs(string) do n = n + 1 end return n")
    assert.is_true(ok2)
    assert.equal(#scriptenv.ALLOW.string, n)
    assert.equal("5", string.format("%d", 5))
  end)

  it("freezes host tables handed in, all the way down", function()
    local host = { secret = "s", nested = { deep = { x = 1 } } }
    local box = scriptenv.new { globals = { cfg = host } }
    for _, src in ipairs {
      "local _, raw = pairs(cfg) raw.secret = 'changed'",
      "cfg.nested.deep.x = 2",
      "for k, v in pairs(cfg) do if type(v) == 'table' then v.injected = true end end",
      "rawset(cfg.nested, 'y', 1)",
    } do
      local ok, err = box:pcall(assert(box:load(src)))
      assert.is_false(ok, src)
      assert.matches("read%-only", err)
    end
    assert.same({ secret = "s", nested = { deep = { x = 1 } } }, host)
    local ok, v = box:pcall(assert(box:load("return cfg.nested.deep.x + #cfg.secret")))
    assert.is_true(ok)
    assert.equal(2, v)
  end)

  it("cannot resume, close or yield the host's coroutines", function()
    local box = scriptenv.new { instructions = 100000 }
    -- a task of the host waiting on the loop, and a script that grabs what it can
    local ok, co = box:pcall(assert(box:load("return coroutine.running()")))
    assert.is_true(ok)
    assert.is_nil(co)
    local waiting = orket.spawn(function() orket.sleep(30) return "woke on time" end)
    local poke = assert(box:load("local co = ... return coroutine.resume(co, 'FAKE')"))
    local ok2, err = box:pcall(poke, waiting.co)
    assert.is_false(ok2)
    assert.matches("not a coroutine this script made", err)
    for _, f in ipairs { "close", "status" } do
      local ok3, err3 = box:pcall(assert(box:load("local co = ... return coroutine." .. f .. "(co)")), waiting.co)
      assert.is_false(ok3)
      assert.matches("not a coroutine this script made", err3)
    end
    assert.same({ true, "woke on time" }, { waiting:join() })
  end)

  -- the ceiling stood on what was in use, garbage of earlier calls included, which the call's
  -- own emergency collection freed: each memory bomb stopped at its cap left its budget's
  -- worth behind, and the heap grew by a budget a call without end
  -- a hook's error named the caller's place (often a C function: no line), not the script's
  it("names the line a spent budget stopped the script at, in a function it returned too", function()
    local box = scriptenv.new { name = "roles/coder.lua", instructions = 100000 }
    local _, sys = box:pcall(assert(box:load("local function sys()\n  local x = 0\n  while true do x = x + 1 end\nend\nreturn sys")))
    local ok, err = box:pcall(sys)
    assert.is_false(ok)
    assert.matches("^roles/coder%.lua:3: script: instruction budget exceeded", err)
  end)

  it("keeps the heap near its live size across calls stopped at their memory cap", function()
    local rt = require "orket.c.runtime"
    local box = scriptenv.new { name = "hog.lua", instructions = 0, timeout_ms = 20000, memory = 64 << 20 }
    local hog = assert(box:load("local t = {} local i = 0 while true do i = i + 1 t[i] = ('x'):rep(100000) .. i end"))
    local start, most = rt.stats().memory, 0
    for _ = 1, 6 do
      local ok, err = box:pcall(hog)
      assert.is_false(ok)
      assert.matches("memory limit exceeded", err)
      most = math.max(most, rt.stats().memory - start)
    end
    -- at most the budget and the slack of garbage a call may start with (32 MiB here)
    assert.is_true(most < (64 + 32 + 8) << 20, tostring(most >> 20) .. " MiB")
    assert.is_nil(rt.stats().memory_limit)
  end)

  it("cannot yield the host's task from a script", function()
    local rt = require "orket.c.runtime"
    local box = scriptenv.new { memory = 8 << 20 }
    local ok, err = box:pcall(assert(box:load("coroutine.yield('not a wait') return 'never'")))
    assert.is_false(ok)
    assert.matches("only inside a coroutine this script made", err)
    assert.is_nil(rt.stats().memory_limit) -- no ceiling left behind
    assert.is_false((box:pcall(assert(box:load("return coroutine.isyieldable()")))) == false)
    -- its own coroutines still yield and resume normally
    local ok2, a, b = box:pcall(assert(box:load([[
      local co = coroutine.create(function(x) local y = coroutine.yield(x + 1) return y * 2 end)
      local _, first = coroutine.resume(co, 1)
      local _, second = coroutine.resume(co, 10)
      return first, second]])))
    assert.is_true(ok2)
    assert.same({ 2, 20 }, { a, b })
  end)

  it("refuses to wait on the loop inside a coroutine a script made", function()
    local box = scriptenv.new { globals = { sleep = orket.sleep } }
    local ok, r1, r2 = box:pcall(assert(box:load(
      "return coroutine.resume(coroutine.create(function() sleep(5) end))")))
    assert.is_true(ok)
    assert.is_false(r1)
    assert.matches("cannot run inside a coroutine a script made", r2)
    assert.equal(0, require("orket.c.runtime").stats().waits)
  end)

  it("refuses __gc metamethods", function()
    local ok, err = run("setmetatable({}, {__gc = function() while true do end end})")
    assert.is_false(ok)
    assert.matches("__gc metamethods are not allowed", err)
  end)

  it("refuses to change a protected metatable, naming the script's line, not the host's", function()
    local ok, err = run("setmetatable(_ENV, {})")
    assert.is_false(ok)
    -- the message's first line (a traceback follows it)
    assert.equal("attempt.lua:1: setmetatable: cannot change a protected metatable", err:match("^[^\n]*"))
    ok, err = run("local t = setmetatable(setmetatable({}, {__metatable = 'no'}), {}) return t")
    assert.is_false(ok)
    assert.equal("attempt.lua:1: setmetatable: cannot change a protected metatable", err:match("^[^\n]*"))
  end)

  it("gives each box its own globals", function()
    local a, b = scriptenv.new {}, scriptenv.new {}
    assert.is_true((a:pcall(assert(a:load("x = 1")))))
    local ok, err = b:pcall(assert(b:load("return x")))
    assert.is_false(ok)
    assert.matches("undefined global 'x'", err)
  end)
end)

describe("script budgets", function()
  after_each(healthy)

  it("stop an infinite loop", function()
    local ok, err, code = run("while true do end")
    assert.is_false(ok)
    assert.equal("EBUDGET", code)
    assert.matches("instruction budget exceeded", err)
  end)

  it("stop an infinite loop inside pcall", function()
    local ok, _, code = run("local n = 0 while true do pcall(function() while true do n = n + 1 end end) end")
    assert.is_false(ok)
    assert.equal("EBUDGET", code)
  end)

  it("stop a loop inside an xpcall handler", function()
    local ok, _, code = run([[
      for i = 1, 100 do
        xpcall(function() error("x") end, function() while true do end end)
      end
      while true do end]])
    assert.is_false(ok)
    assert.equal("EBUDGET", code)
  end)

  it("cannot be reset by catching the error and retrying", function()
    local ok, _, code = run([[
      while true do
        local ok = pcall(function() while true do end end)
        for i = 1, 10 do pcall(error, "again") end
      end]])
    assert.is_false(ok)
    assert.equal("EBUDGET", code)
  end)

  it("enforce the wall-clock deadline", function()
    local box = scriptenv.new { instructions = 0, timeout_ms = 50 }
    local t0 = orket.now()
    local ok, err, code = box:pcall(assert(box:load("while true do end")))
    assert.is_false(ok)
    assert.equal("ETIMEOUT", code)
    assert.matches("time budget exceeded %(50 ms%)", err)
    assert.is_true(orket.now() - t0 < 5000)
  end)

  it("turn a string.rep memory bomb into an ordinary error", function()
    local ok, err, code = run("return string.rep('x', 1 << 30)")
    assert.is_false(ok)
    assert.equal("ENOMEM", code)
    assert.matches("memory limit exceeded", err)
  end)

  it("stop unbounded table growth", function()
    local ok, _, code = run("local t = {} local i = 0 while true do i = i + 1 t[i] = {i} end",
      { instructions = 0, timeout_ms = 5000, memory = 4 << 20 })
    assert.is_false(ok)
    assert.equal("ENOMEM", code)
  end)

  it("catch a memory bomb even when the script catches the first failure", function()
    local ok, _, code = run([[
      local keep = {}
      while true do pcall(function() keep[#keep + 1] = string.rep("y", 1 << 20) end) end]],
      { instructions = 1000000, timeout_ms = 1000, memory = 4 << 20 })
    assert.is_false(ok)
    assert.is_truthy(code == "EBUDGET" or code == "ENOMEM" or code == "ETIMEOUT", code)
  end)

  it("stop deep recursion", function()
    local ok, err = run("local function f(n) return 1 + f(n + 1) end return f(1)")
    assert.is_false(ok)
    assert.is_truthy(err:match("stack overflow") or err:match("memory") or err:match("budget"))
  end)

  it("stop deep pcall recursion (C stack)", function()
    local ok = run("local function f() pcall(f) end f() while true do end")
    assert.is_false(ok)
  end)

  it("follow coroutines spawned to dodge the budget", function()
    local ok, _, code = run([[
      local cos = {}
      for i = 1, 10 do
        cos[i] = coroutine.create(function() while true do end end)
      end
      for i = 1, 10 do coroutine.resume(cos[i]) end
      while true do end]])
    assert.is_false(ok)
    assert.equal("EBUDGET", code)
  end)

  it("do not let a budget spent in a coroutine be caught by its creator", function()
    -- resume and close answer false, message in the creator, which then carried on (no
    -- call, but writes to what it was given) and returned normally
    for _, src in ipairs {
      [[local out = ...
        local ok, err = coroutine.resume(coroutine.create(function() while true do end end))
        out.after = err
        local n = 0 for i = 1, 150 do n = n + i end return "survived: " .. tostring(err), n]],
      [[local co = coroutine.create(function()
          local t <close> = setmetatable({}, { __close = function() while true do end end })
          coroutine.yield()
        end)
        local out = ...
        coroutine.resume(co)
        local ok, err = coroutine.close(co)
        out.after = err
        local n = 0 for i = 1, 150 do n = n + i end return "survived: " .. tostring(err), n]],
    } do
      local box = scriptenv.new { name = "attempt.lua", instructions = 200000, timeout_ms = 1000, memory = 8 << 20 }
      local out = {}
      local ok, err, code = box:pcall(assert(box:load(src, "attempt.lua")), out)
      assert.is_nil(out.after)
      assert.is_false(ok, tostring(err))
      assert.equal("EBUDGET", code)
      assert.matches("instruction budget exceeded", err)
    end
  end)

  it("fail a call whose budget was spent, even when the function returned", function()
    -- a host function that catches the budget error itself (no script can, past pass)
    local box = scriptenv.new { instructions = 100000 }
    local ok, err, code = box:pcall(function()
      local co = require("orket.c.scriptenv").cocreate(function() while true do end end)
      local rok = coroutine.resume(co)
      return "returned", rok
    end)
    assert.is_false(ok)
    assert.equal("EBUDGET", code)
    assert.matches("^script: instruction budget exceeded", err)
  end)

  it("follow coroutine.wrap too", function()
    local ok, _, code = run([[
      local f = coroutine.wrap(function() while true do coroutine.yield() end end)
      while true do pcall(f) end]])
    assert.is_false(ok)
    assert.equal("EBUDGET", code)
  end)

  it("keep a coroutine that outlives its call bound to a spent budget", function()
    local box = scriptenv.new { instructions = 100000 }
    local ok, co = box:pcall(assert(box:load(
      "local co = coroutine.create(function() while true do coroutine.yield() end end) return co")))
    assert.is_true(ok)
    collectgarbage()
    collectgarbage()
    -- resuming it later from trusted code still runs under (and is stopped by) its budget
    local n = 0
    while coroutine.resume(co) do
      n = n + 1
      if n > 1e6 then break end
    end
    assert.is_true(n < 1e6)
  end)

  it("return plain-data copies that run no script metamethods", function()
    local box = scriptenv.new {}
    local ok, v = box:pcall(assert(box:load(
      "return setmetatable({a = {1, 2}}, {__index = function() while true do end end})")))
    assert.is_true(ok)
    local copy = assert(scriptenv.copy(v))
    assert.same({ a = { 1, 2 } }, copy)
    assert.is_nil(getmetatable(copy))
    local _, err = scriptenv.copy({ f = print })
    assert.matches("value.f: function is not plain data", err)
  end)

  it("copy only plain data and name where it is not", function()
    local shared = { 1 }
    local c = assert(scriptenv.copy { a = { 1, 2, { b = true } }, [1.5] = "x", [true] = 3, s = shared, t = shared })
    assert.same({ a = { 1, 2, { b = true } }, [1.5] = "x", [true] = 3, s = { 1 }, t = { 1 } }, c)
    assert.is_true(c.s ~= c.t and c.s ~= shared)
    local cyc = {}
    cyc.x = { y = cyc }
    assert.same({ nil, "value.x.y: cycle" }, { scriptenv.copy(cyc) })
    assert.same({ nil, "value.a.2.f: function is not plain data" }, { scriptenv.copy { a = { 1, { f = print } } } })
    assert.same({ nil, "value: key of type table" }, { scriptenv.copy { [{}] = 1 } })
    assert.same({ nil, "value: userdata is not plain data" }, { scriptenv.copy(io.stdout) })
    assert.same({ nil, "value.1.1: nested deeper than 2" }, { scriptenv.copy({ { {} } }, 2) })
    assert.same({ { {} } }, { scriptenv.copy({ {} }, 2) })
    assert.same({ "s" }, { scriptenv.copy("s") })
    assert.is_nil(scriptenv.copy(nil))
    local deep = {}
    for _ = 1, 40 do deep = { deep } end
    assert.matches("nested deeper than 32$", select(2, scriptenv.copy(deep)))
    assert.has_error(function() scriptenv.copy({}, 500) end)
  end)

  it("copy at most 64 MiB of strings, each counted at every reference", function()
    -- one 1 MiB string referenced 100,000 times: 1 MiB in the script, 100 GB once encoded
    local s = ("x"):rep(1024 * 1024)
    local many = {}
    for i = 1, 100000 do many[i] = s end
    local over = "more than 64 MiB of strings (each counted at every reference)"
    -- (compared by their messages: a failing assert would print the whole copy)
    assert.equal("value: " .. over, select(2, scriptenv.copy(many)))
    -- keys count as well, and so does a table reached twice
    local keyed = { [s] = true }
    local twice = {}
    for i = 1, 65 do twice[i] = keyed end
    assert.equal("value.65: " .. over, select(2, scriptenv.copy(twice)))
    assert.equal("value: " .. over, select(2, scriptenv.copy(s:rep(65))))
    -- 63 references are within the cap
    assert.equal(63, #assert(scriptenv.copy(table.move(many, 1, 63, 1, {}))))
  end)

  it("allow waiting operations inside a budgeted call", function()
    local box = scriptenv.new { globals = { sleep = orket.sleep } }
    local ok, v = box:pcall(assert(box:load("sleep(5) return 'woke'")))
    assert.is_true(ok)
    assert.equal("woke", v)
  end)

  it("nest: an inner call cannot raise the outer memory ceiling", function()
    local outer = scriptenv.new { memory = 2 << 20, globals = {} }
    local inner = scriptenv.new { memory = 64 << 20 }
    local innerfn = assert(inner:load("return #string.rep('z', 16 << 20)"))
    local ok, r1, r2, r3 = outer:pcall(function() return inner:pcall(innerfn) end)
    assert.is_true(ok)
    assert.is_false(r1)
    assert.equal("ENOMEM", r3)
  end)

  it("check their arguments", function()
    assert.has_error(function() scriptenv.new { instructions = -1 } end,
      "scriptenv.new: instructions must be a non-negative integer")
    local box = scriptenv.new {}
    assert.has_error(function() box:pcall(42) end, "bad argument #1 to 'pcall' (function expected, got number)")
    assert.has_error(function() require("orket.c.scriptenv").pcall(-1, 0, 0, print) end)
  end)
end)

-- A count hook cannot fire inside a C function, so a library function whose work grows
-- with an integer argument or a __len result (not with its input) must charge that work
-- before it starts, and be refused over a cap. Each attack below ran for hours before.
describe("script calls whose work grows with an argument", function()
  local H = require "tests.helpers"
  after_each(function() H.cleanup() healthy() end)

  local ATTACKS = {
    -- empty pieces answer at once, so only the loop around them spends the budget
    rep_empty = [[while true do string.rep("", math.maxinteger) end]],
    rep_method = [[while true do (""):rep(math.maxinteger, "") end]],
    concat_range = [[return table.concat(setmetatable({}, {__index = table.concat}), "", 1, math.maxinteger)]],
    concat_len = [[return table.concat(setmetatable({}, {__index = table.concat, __len = function() return math.maxinteger end}))]],
    unpack = [[return table.unpack(setmetatable({}, {__index = type}), 1, 1 << 40)]],
    move = [[return table.move({}, 1, math.maxinteger, 1)]],
    move_negative = [[return table.move({}, -2, math.maxinteger - 3, 1, {})]],
    insert = [[table.insert(setmetatable({}, {__len = function() return math.maxinteger - 1 end}), 1, 0)]],
    remove = [[table.remove(setmetatable({}, {__len = function() return math.maxinteger end}), 1)]],
    sort_large = [[local t = {} for i = 1, 600000 do t[i] = 0 end table.sort(t, rawequal)]],
  }

  -- Each kind of operator script, loaded the way the project loads it.
  local KINDS = {
    role = function(dir, src)
      H.write(dir .. "/r.lua", src)
      local _, msg, code = require("orket.engine.roles").load_file(dir .. "/r.lua")
      return msg, code
    end,
    tool = function(dir, src)
      H.write(dir .. "/t.lua", src)
      local _, msg, code = require("orket.tools").load { dir .. "/t.lua" }
      return msg, code
    end,
    policy = function(dir, src)
      H.write(dir .. "/p.lua", src)
      local _, msg, code = require("orket.policy").load { dir .. "/p.lua" }
      return msg, code
    end,
    config = function(dir, src)
      H.write(dir .. "/orket.lua", src)
      local _, msg, code = require("orket.config").read(dir)
      return msg, code
    end,
  }

  for kind, load in pairs(KINDS) do
    it("end with the budget error in a " .. kind .. " script", function()
      for name, src in pairs(ATTACKS) do
        local msg, code = load(H.tmpdir(), src)
        -- the instruction count or, on a slow build (sanitizers), the deadline stops a loop
        -- of cheap calls first: either is the budget, which pcall cannot swallow
        assert.is_true(code == "EBUDGET" or code == "ETIMEOUT", kind .. " " .. name .. ": " .. tostring(code) .. " " .. tostring(msg))
        assert.matches("budget exceeded", msg, 1, true)
      end
    end)
  end

  it("refuse to sort a table whose length a __len metamethod decides", function()
    local ok, err = run([[table.sort(setmetatable({}, {__len = function() return 1 << 31 end}))]])
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'sort' %(a table with a __len metamethod", err)
  end)

  it("keep the stock results and messages for ordinary use", function()
    local ok, a, b, c, d, e, f, g = run([[
      local t = {1, 2, 3}
      table.insert(t, 4) table.insert(t, 1, 0) local r = table.remove(t, 2) table.remove(t)
      local m = table.move({1, 2, 3}, 1, 3, 2)
      local s = {3, 1, 2} table.sort(s)
      return table.concat(t, ","), r, table.concat(m, ","), table.concat(s), select("#", table.unpack({1, 2, 3})),
        ("ab"):rep(3, "-"), string.rep("", 5)]])
    assert.is_true(ok)
    assert.same({ "0,2,3", 1, "1,1,2,3", "123", 3, "ab-ab-ab", "" }, { a, b, c, d, e, f, g })
    for _, case in ipairs {
      { "table.insert({}, 1, 2, 3)", "wrong number of arguments to 'insert'" },
      { "table.insert({}, 5, 1)", "bad argument #2 to 'insert' (position out of bounds)" },
      { "table.insert({}, 1.5, 1)", "bad argument #2 to 'insert' (number has no integer representation)" },
      { "table.remove({}, 5)", "bad argument #2 to 'remove' (position out of bounds)" },
      { "table.insert(nil, 1)", "bad argument #1 to 'insert' (table expected, got nil)" },
      { "table.concat({}, '', 'x')", "bad argument #3 to 'concat' (number expected, got string)" },
      { "table.move({}, 1)", "bad argument #3 to 'move' (number expected, got no value)" },
      { "string.rep('x')", "bad argument #2 to 'rep' (number expected, got no value)" },
    } do
      local ok2, err = run(case[1])
      assert.is_false(ok2)
      assert.matches(case[2], err, 1, true)
    end
    -- outside a script call the string methods stay stock
    assert.equal("xx", ("x"):rep(2))
  end)

  it("meet the deadline when every instruction is a long C call", function()
    -- a blocking C call of 5 ms per iteration: the deadline is checked before each call,
    -- not only every thousand instructions (which let this run for 125 iterations)
    local calls = 0
    local box = scriptenv.new { instructions = 0, timeout_ms = 20,
      globals = { block = require("luv").sleep, note = function() calls = calls + 1 end } }
    local ok, err, code = box:pcall(assert(box:load("while true do block(5) note() end")))
    assert.is_false(ok)
    assert.equal("ETIMEOUT", code)
    assert.matches("time budget exceeded", err)
    assert.is_true(calls < 20, calls .. " long calls ran past a 20 ms deadline")
  end)
end)
