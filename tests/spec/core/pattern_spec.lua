-- orket.c.pattern: Lua 5.4's find/match/gmatch/gsub with a step budget. A differential test
-- against the stock string functions over random and edge-case patterns and subjects, the
-- replacement forms of gsub, argument errors, and the budget inside sandboxed scripts: the
-- pathological patterns end quickly with a budget error and the host stays healthy.
local P = require "orket.c.pattern"
local scriptenv = require "orket.scriptenv"

-- Results of a protected call as one comparable value.
local function outcome(f, ...)
  local r = table.pack(pcall(f, ...))
  return r
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function describe_args(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    parts[#parts + 1] = type(v) == "function" and "<fn>" or type(v) == "table" and "<table>" or show(v)
  end
  return table.concat(parts, ", ")
end

local function same(stock, ours, ...)
  local a, b = outcome(stock, ...), outcome(ours, ...)
  assert.same(a, b, "differs for (" .. describe_args(...) .. ")")
end

local function gmatch_all(gmatch)
  return function(s, p, init)
    local out = {}
    for a, b, c in gmatch(s, p, init) do
      out[#out + 1] = { a, b, c }
      if #out > 200 then break end
    end
    return out
  end
end

-- Pattern pieces: every item class, sets, anchors, captures, %b, %f, back-references and
-- the suffixes, plus fragments that make malformed patterns.
local ITEMS = {
  "a", "b", "x", ".", "%a", "%A", "%c", "%d", "%D", "%g", "%l", "%L", "%p", "%s", "%S", "%u",
  "%w", "%W", "%x", "%z", "%.", "%%", "%(", "%]", "[ab]", "[^ab]", "[a-c]", "[%d_]", "[%]x]",
  "[^%s]", "[]]", "[a-]", "%b()", "%bab", "%f[%w]", "%f[^%w]", "%f[%z]", "%1", "%2", "()",
}
local SUFFIX = { "", "", "", "*", "+", "-", "?" }
local BROKEN = { "%", "[a", "(", ")", "%b", "%f", "%fa", "[", "%0", "[^" }

local function random_pattern(rng)
  local parts = {}
  if rng(4) == 1 then parts[#parts + 1] = "^" end
  local repeats = 0
  local open = 0
  for _ = 1, rng(6) do
    local r = rng(10)
    if r == 1 and open < 3 then
      parts[#parts + 1] = "("
      open = open + 1
    elseif r == 2 and open > 0 then
      parts[#parts + 1] = ")"
      open = open - 1
    else
      local item = ITEMS[rng(#ITEMS)]
      local suffix = ""
      -- cap the repeated items so the stock matcher stays fast on these subjects
      if repeats < 3 and not item:find("^%%[bf1-9]") and item ~= "()" then
        suffix = SUFFIX[rng(#SUFFIX)]
        if suffix ~= "" then repeats = repeats + 1 end
      end
      parts[#parts + 1] = item .. suffix
    end
  end
  for _ = 1, open do if rng(3) > 1 then parts[#parts + 1] = ")" end end
  if rng(6) == 1 then parts[#parts + 1] = "$" end
  if rng(12) == 1 then table.insert(parts, rng(#parts + 1), BROKEN[rng(#BROKEN)]) end
  return table.concat(parts)
end

local ALPHABET = { "a", "b", "x", "(", ")", " ", "1", "_", "]", "%", "\0", "\n", "A", "Z", "-", "." }

local function random_subject(rng)
  local t = {}
  for i = 1, rng(0, 24) do t[i] = ALPHABET[rng(#ALPHABET)] end
  return table.concat(t)
end

describe("orket.c.pattern", function()
  local saved
  before_each(function() saved = P.step_limit() end)
  after_each(function() P.step_limit(saved) end)

  it("matches the stock functions on random patterns and subjects", function()
    local seed = 20240611
    local rng_state = math.random -- the generator below is seeded and self-contained
    local x = seed
    local function rng(a, b)
      x = (x * 1103515245 + 12345) % 2147483648
      if b == nil then a, b = 1, a end
      return a + (x >> 8) % (b - a + 1)
    end
    assert(rng_state)
    local inits = { nil, 1, 2, -1, -3, 0, 5, 30, -30 }
    local reps = { "x", "%0", "%1", "[%1|%2]", "%%", "%", "%x", "", 7 }
    local tbl = { a = "A", b = false, ["1"] = 1, x = {} }
    local fns = {
      function(...) return select("#", ...) > 1 and (...) .. "!" or nil end,
      function() return false end,
      function(c) return c end,
      function() return {} end,
    }
    local maxes = { nil, 0, 1, 2, -1 }
    local n = 0
    for _ = 1, 3000 do
      local p, s = random_pattern(rng), random_subject(rng)
      local init = inits[rng(#inits)]
      same(string.find, P.find, s, p, init)
      same(string.find, P.find, s, p, init, true)
      same(string.match, P.match, s, p, init)
      same(gmatch_all(string.gmatch), gmatch_all(P.gmatch), s, p, init)
      local rep = reps[rng(#reps)]
      local max = maxes[rng(#maxes)]
      same(string.gsub, P.gsub, s, p, rep, max)
      same(string.gsub, P.gsub, s, p, tbl, max)
      same(string.gsub, P.gsub, s, p, fns[rng(#fns)], max)
      n = n + 1
    end
    assert.equal(3000, n)
  end)

  it("agrees on edge cases of each function", function()
    local cases = {
      { "", "" }, { "", "^" }, { "", "$" }, { "abc", "" }, { "abc", "^$" }, { "abc", "()" },
      { "hello world", "o w" }, { "hello", "l+" }, { "a.b", "." }, { "a.b", "%." },
      { "THE (quick) fox", "%f[%a]%a+" }, { "THE (quick) fox", "%b()" }, { "f(a(b)c)", "%b()" },
      { "abcabc", "(abc)%1" }, { "aaa", "()a()" }, { "x = 1, y = 2", "(%w+)%s*=%s*(%w+)" },
      { "\0a\0", "%z" }, { "\0a\0", "[%z]" }, { "a\0b", "a\0b" }, { "abc", "[^%a]" },
      { ("a"):rep(300), "a?" }, { "ab", "(a)(b)(c?)" }, { "a+b", "a+b" }, { "a+b", "a%+b" },
      { "aaa", "a-$" }, { "aaa", "^a-" }, { "[x]", "[[]" }, { "x^", "x^" }, { "$", "$" },
    }
    for _, c in ipairs(cases) do
      local s, p = c[1], c[2]
      for _, init in ipairs { 1, 0, -1, 2, #s, #s + 1, #s + 2, -(#s + 5) } do
        same(string.find, P.find, s, p, init)
        same(string.match, P.match, s, p, init)
        same(gmatch_all(string.gmatch), gmatch_all(P.gmatch), s, p, init)
      end
      same(string.gsub, P.gsub, s, p, "<%0>")
      same(string.gsub, P.gsub, s, p, "<%0>", 1)
      same(string.gsub, P.gsub, s, p, function() end)
    end
  end)

  it("agrees with the stock functions where nesting runs out", function()
    -- stock Lua refuses a pattern that nests too deeply; the bound counts open
    -- alternatives and captures, and ours must refuse exactly the same patterns
    local s = ("a"):rep(300)
    for _, n in ipairs { 197, 198, 199, 200, 201 } do
      same(string.find, P.find, s, ("a?"):rep(n))
      same(string.find, P.find, s, ("a-"):rep(n) .. "$")
      same(string.match, P.match, s, ("(a*)"):rep(4) .. ("a*"):rep(n - 8))
      same(string.gsub, P.gsub, s, ("a?"):rep(n), "x")
    end
    for n = 132, 138 do
      same(string.find, P.find, s, ("(a)"):rep(32) .. ("a?"):rep(n))
      same(string.find, P.find, s, ("()a"):rep(32) .. ("a-"):rep(n) .. "$")
    end
  end)

  it("agrees on longer random patterns with nested captures", function()
    local x = 7
    local function rng(a, b)
      x = (x * 1103515245 + 12345) % 2147483648
      if b == nil then a, b = 1, a end
      return a + (x >> 8) % (b - a + 1)
    end
    local CH = { "a", "b", "(", ")", "%", "[", "]", "^", "$", "*", "+", "-", "?", ".", "1", "2",
      "0", "f", "b", "z", "s", "d", "\0", "x", " " }
    local SUB = { "a", "b", "x", "(", ")", "[", "]", " ", "1", "\0", "%", "-", "^", "$" }
    for _ = 1, 20000 do
      local t, u = {}, {}
      for j = 1, rng(0, 12) do t[j] = CH[rng(#CH)] end
      for j = 1, rng(0, 14) do u[j] = SUB[rng(#SUB)] end
      local p, s, init = table.concat(t), table.concat(u), rng(-3, 5)
      same(string.find, P.find, s, p, init)
      same(string.match, P.match, s, p, init)
      same(string.gsub, P.gsub, s, p, "<%0>")
      same(gmatch_all(string.gmatch), gmatch_all(P.gmatch), s, p, init)
    end
  end)

  it("raises Lua's own errors", function()
    local errs = {
      { "a", "%", "malformed pattern (ends with '%')" },
      { "a", "[a", "malformed pattern (missing ']')" },
      { "a", "%ba", "malformed pattern (missing arguments to '%b')" },
      { "a", "%fa", "missing '[' after '%f' in pattern" },
      { "aa", "(a)%2", "invalid capture index %2" },
      { "a)", "%a)", "invalid pattern capture" },
      { "a", "(a", "unfinished capture" },
      { "a", ("()"):rep(33), "too many captures" },
      { ("a"):rep(300), ("a?"):rep(300), "pattern too complex" },
    }
    for _, e in ipairs(errs) do
      local ok, msg = pcall(P.find, e[1], e[2])
      assert.is_false(ok)
      assert.equal(e[3], msg)
      same(string.find, P.find, e[1], e[2])
      same(string.gsub, P.gsub, e[1], e[2], "x")
    end
    same(string.gsub, P.gsub, "abc", "(b)", "%2")
    same(string.gsub, P.gsub, "abc", "b", "%9")
    same(string.gsub, P.gsub, "abc", "b", "%y")
    same(string.gsub, P.gsub, "abc", "b", "%")
    same(string.gsub, P.gsub, "abc", "b", function() return {} end)
    same(string.gsub, P.gsub, "abc", "b", { b = true })
    assert.has_error(function() P.gsub("abc", "b", "%y") end, "invalid use of '%' in replacement string")
    assert.has_error(function() P.gsub("abc", "b", { b = true }) end, "invalid replacement value (a boolean)")
  end)

  it("checks its arguments like the stock functions", function()
    -- called the same way from Lua code, the messages are the same
    local function msg(f) local _, m = pcall(f); return m end
    assert.equal(msg(function() return string.find(nil, "x") end), msg(function() return P.find(nil, "x") end))
    assert.equal(msg(function() return string.find("x", {}) end), msg(function() return P.find("x", {}) end))
    assert.equal(msg(function() return string.find("x", "x", "q") end), msg(function() return P.find("x", "x", "q") end))
    assert.equal(msg(function() return string.gsub("x", "x") end), msg(function() return P.gsub("x", "x") end))
    assert.equal(msg(function() return string.gsub("x", "x", true) end), msg(function() return P.gsub("x", "x", true) end))
    assert.equal(msg(function() return string.gsub("x", "x", "", 1.5) end), msg(function() return P.gsub("x", "x", "", 1.5) end))
    assert.equal(msg(function() return string.gmatch(nil) end), msg(function() return P.gmatch(nil) end))
    assert.matches("bad argument #3 to 'gsub' %(string/function/table expected, got boolean%)",
      msg(function() return P.gsub("x", "x", true) end))
    -- numbers are strings here too
    same(string.find, P.find, 12345, 3)
    same(string.gsub, P.gsub, 12345, "%d", 9)
    assert.has_error(function() P.step_limit(0) end, "bad argument #1 to 'step_limit' (must be >= 1)")
  end)

  it("caps the steps of one call with a distinct error", function()
    P.step_limit(100000)
    local s = ("a"):rep(2000)
    local t0 = orket.now()
    local ok, msg = pcall(P.find, s, ".-.-.-b")
    assert.is_false(ok)
    assert.equal("pattern too complex: step budget exhausted (100000 steps)", msg)
    assert.is_true(orket.now() - t0 < 1000)
    for _, f in ipairs {
      function() return P.match(s, ".-.-.-b") end,
      function() return P.gsub(s, ".-.-.-b", "") end,
      function() for _ in P.gmatch(s, ".-.-.-b") do end end,
    } do
      assert.has_error(f, "pattern too complex: step budget exhausted (100000 steps)")
    end
    -- each gmatch step gets its own allowance: a long but linear iteration is fine
    local count = 0
    for _ in P.gmatch(("ab "):rep(50000), "%a+") do count = count + 1 end
    assert.equal(50000, count)
  end)

  it("leaves the host's string functions stock", function()
    P.step_limit(1000)
    local s = ("a"):rep(60)
    assert.has_error(function() P.find(s, ".-.-b") end)
    -- outside a sandbox call, methods on strings are Lua's own (not capped)
    assert.is_nil(s:find(".-.-b"))
    assert.is_nil(string.find(s, ".-.-b"))
    assert.equal(string.find, rawget(string, "find"))
  end)
end)

describe("patterns in scripts", function()
  local function run(src, opts)
    local box = scriptenv.new(opts or { name = "attempt.lua" })
    local fn = assert(box:load(src, "attempt.lua"))
    local t0 = orket.now()
    local r = table.pack(box:pcall(fn))
    return r, orket.now() - t0
  end

  local function healthy()
    assert.equal(4, select(2, string.find("hello", "l+")))
    assert.equal("h-e-l-l-o", ("hello"):gsub("(.)", "%1-"):sub(1, 9))
    orket.sleep(1)
  end

  it("gives scripts the budgeted functions", function()
    local box = scriptenv.new {}
    for _, k in ipairs { "find", "match", "gmatch", "gsub" } do
      assert.equal(P[k], box.env.string[k])
    end
    local r = run [[
      local a, b = ("key = val"):match("(%w+)%s*=%s*(%w+)")
      local out = {}
      for w in ("x y z"):gmatch("%a") do out[#out + 1] = w end
      return a, b, table.concat(out), ("abc"):gsub("b", "B"), string.find("abc", "c")
    ]]
    assert.same({ true, "key", "val", "xyz", "aBc", 3, 3, n = 7 }, r)
  end)

  local PATHOLOGICAL = {
    [[return string.find(("a"):rep(200000), ".-.-.-.-b")]],
    [[return (("a"):rep(200000)):find(".-.-.-.-b")]],
    [[return (("a"):rep(200000)):match("(.-)(.-)(.-)b")]],
    [[for _ in (("a"):rep(200000)):gmatch(".-.-.-b") do end]],
    [[return (("a"):rep(200000)):gsub(".-.-.-b", "")]],
    [[return string.find(("("):rep(100000), "%b()")]],
    [[return string.find(("a"):rep(200000), ("a-"):rep(150) .. "b")]],
    [[return string.find(("ab"):rep(100000), "(.-)%1%1b$")]],
    [[return string.match(("x"):rep(200000), "^(x*)(x*)(x*)(x*)y")]],
    [[return string.find(("a"):rep(200000), "[%w_]-[%w_]-[%w_]-%f[%z]$z")]],
    [[return ("x"):rep(100):gsub("x", function() return (("a"):rep(200000)):find(".-.-.-b") end)]],
    [[return coroutine.wrap(function() return (("a"):rep(200000)):find(".-.-b") end)()]],
    -- the script's own pcall sees the error, but cannot carry on
    [[local ok, e = pcall(string.find, ("a"):rep(200000), ".-.-.-.-b") return "survived", ok, e]],
    [[local s = ("a"):rep(200000)
      for _ = 1, 1e9 do pcall(s.match, s, ".-.-.-.-b") end
      return "survived"]],
  }

  it("stops pathological patterns at the instruction budget", function()
    for _, src in ipairs(PATHOLOGICAL) do
      local r, ms = run(src)
      assert.is_false(r[1], src)
      assert.equal("EBUDGET", r[3], src)
      assert.matches("instruction budget exceeded", r[2])
      assert.is_true(ms < 2000, src .. " took " .. ms .. " ms")
      healthy()
    end
  end)

  it("stops them at the deadline when instructions are unlimited", function()
    local r, ms = run(PATHOLOGICAL[2], { name = "t.lua", instructions = 0, timeout_ms = 100 })
    assert.is_false(r[1])
    assert.equal("ETIMEOUT", r[3])
    assert.matches("pattern too complex: time budget exceeded %(100 ms%)", r[2])
    assert.is_true(ms < 1000, "took " .. ms .. " ms")
    healthy()
  end)

  it("stops them at the step cap when the script has no budget, as a catchable error", function()
    P.step_limit(200000)
    local r = run([[
      local ok, e = pcall(string.find, ("a"):rep(200000), ".-.-.-.-b")
      return "caught", ok, e
    ]], { name = "t.lua", instructions = 0, timeout_ms = 0 })
    P.step_limit(100000000)
    assert.same({ true, "caught", false, "pattern too complex: step budget exhausted (200000 steps)", n = 4 }, r)
    healthy()
  end)

  it("charges ordinary matching to the budget", function()
    -- 2000 linear scans of 10 KB: about 20M steps, past a 5M-instruction budget
    local r = run([[
      local s = ("ab"):rep(5000)
      for _ = 1, 2000 do s:find("c") s:find("%a*c") end
      return "done"
    ]], { name = "t.lua", instructions = 5000000, timeout_ms = 5000 })
    assert.is_false(r[1])
    assert.equal("EBUDGET", r[3])
  end)
end)
