-- End-to-end: `orket repl` driven through a pipe and on a pseudo-terminal.
local H = require "tests.helpers"

local PTY = H.BIN:gsub("orket$", "ptydrive")

-- libedit switches the terminal to raw mode after it prints the prompt, discarding what
-- was typed before; so every keystroke step waits a little after the prompt showed.
local function pty(steps, env)
  local dir = H.tmpdir()
  local paced = {}
  for _, s in ipairs(steps) do
    if s:match("^send ") or s:match("^keys ") or s == "eof" then paced[#paced + 1] = "sleep 150" end
    paced[#paced + 1] = s
  end
  H.write(dir .. "/steps", table.concat(paced, "\n") .. "\n")
  local envs = ""
  for k, v in pairs(env or {}) do envs = envs .. k .. "=" .. H.quote(v) .. " " end
  local p = io.popen(string.format("cd %s && env %s TERM=dumb %s -t 20 -- %s repl <%s 2>&1",
    H.quote(dir), envs, H.quote(PTY), H.quote(H.BIN), H.quote(dir .. "/steps")))
  local out = p:read("a")
  p:close()
  return out, dir
end

describe("orket repl through a pipe", function()
  after_each(H.cleanup)

  it("prints expressions with the pretty-printer and runs statements", function()
    local r = H.orket("repl", { stdin = "1 + 1\nx = {b = 2, a = {1, 2}}\nx\n'hi'\nnil\n" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("> 2\n", r.stdout)
    assert.matches('> { a = { 1, 2 }, b = 2 }\n', r.stdout, 1, true)
    assert.matches('> "hi"\n', r.stdout, 1, true)
    assert.matches("> nil\n", r.stdout)
  end)

  it("continues incomplete input on the next line", function()
    local r = H.orket("repl", { stdin = "function f(a)\n  return a * 2\nend\nf(21)\n" })
    assert.equal(0, r.status)
    assert.matches(">> >> > 42\n", r.stdout, 1, true)
  end)

  it("shows errors with a traceback and keeps going", function()
    local r = H.orket("repl", { stdin = "error('boom')\n1 +\n\n= 3\nprint('alive')\n" })
    assert.equal(0, r.status)
    assert.matches("stdin:1: boom", r.stdout)
    assert.matches("stack traceback:", r.stdout)
    assert.matches("alive", r.stdout)
  end)

  it("blames the line typed for an error a called function raises at its caller", function()
    local r = H.orket("repl", { stdin = "function f() error('bad argument to f', 2) end\nf()\n1, 2 -- two\n" })
    assert.equal(0, r.status)
    assert.matches("stdin:1: bad argument to f", r.stdout, 1, true)
    assert.not_matches("repl.lua", r.stdout, 1, true)
    assert.matches("> 1\t2\n", r.stdout, 1, true)
  end)

  it("runs chunks as tasks, so they can wait", function()
    local r = H.orket("repl", { stdin = "orket.sleep(10) return 'slept'\n" })
    assert.matches('"slept"', r.stdout)
  end)

  it("answers help with what is at hand, and help(x) with x's contract", function()
    local r = H.orket("repl", { stdin = "help\nhelp(orket.sleep)\nhelp(nothing)\nhelp()\n" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("> At hand %(help%(x%)", r.stdout)
    assert.matches("\n  orket.now%(%) %-> ms: a monotonic clock in milliseconds\n", r.stdout)
    assert.matches("\n  project:turn%(card_id", r.stdout)
    assert.matches("\n> orket.sleep%(ms%): suspends the calling task", r.stdout)
    assert.matches("\n> no help for this nil; help%(%) lists what is at hand\n", r.stdout)
    assert.not_matches("> nil\n", r.stdout)
  end)

  it("has the runtime at hand", function()
    local r = H.orket("repl", { stdin = "orket.version\n" })
    assert.matches('"%d+%.%d+%.%d+"', r.stdout)
  end)
end)

describe("orket repl on a terminal", function()
  after_each(H.cleanup)

  it("edits lines, keeps history across sessions and exits on Ctrl-D", function()
    local hist = H.tmpdir() .. "/history"
    local out = pty({
      "expect > ",
      "send 6 * 7",
      "expect 42",
      "keys x = 1\\x01-- \\n", -- Ctrl-A moves to the start: the line becomes a comment
      "expect > ",
      "send x",
      "expect nil",
      "expect > ",
      "eof",
    }, { ORKET_HISTORY = hist })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    local saved = H.read(hist)
    saved = saved and saved:gsub("\\040", " ") -- libedit's file format escapes spaces
    assert.is_truthy(saved and saved:find("6 * 7", 1, true), "history file: " .. tostring(saved))
    -- a new session sees the old history: Up recalls the last line
    out = pty({ "expect > ", "keys \\x1b[A\\n", "expect nil", "expect > ", "eof" }, { ORKET_HISTORY = hist })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
  end)

  it("interrupts a running loop with Ctrl-C and stays usable", function()
    local out = pty({
      "expect > ",
      "send while true do end",
      "sleep 300",
      "keys \\x03",
      "expect interrupted",
      "expect stdin:1:",  -- the traceback says where the loop was
      "send 'still here'",
      "expect still here",
      "expect > ",
      "eof",
    })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.matches("\n%^C\r?\ninterrupted\r?\nstack traceback:", out)
  end)

  it("interrupts a chunk that waits on the loop", function()
    local out = pty({
      "expect > ",
      "send orket.sleep(60000)",
      "sleep 300",
      "keys \\x03",
      "expect interrupted",
      "send 1 + 2",
      "expect 3",
      "expect > ",
      "eof",
    })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    -- the terminal echoed ^C where the cursor was: the message starts a line of its own
    assert.matches("\n%^C\r?\ninterrupted\r?\n> ", out)
  end)

  it("closes what an interrupted waiting chunk holds (a request, a slot) at once", function()
    local out = pty({
      "expect > ",
      "send do local held <close> = setmetatable({}, {__close = function() released = true end}); orket.sleep(60000) end",
      "sleep 300",
      "keys \\x03",
      "expect interrupted",
      "send print('released', released)",
      "expect released\ttrue",
      "expect > ",
      "eof",
    })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
  end)

  it("drops the line being typed on Ctrl-C at the prompt, and a chunk in progress", function()
    local out = pty({
      "expect > ", "keys abc", "sleep 100", "keys \\x03", "sleep 100", "send 1 + 1", "expect 2",
      "expect > ", "send for i = 1, 2 do", "expect >> ", "keys \\x03", "sleep 100", "send 3 + 3",
      "expect 6", "expect > ", "eof",
    })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.is_nil(out:find("undefined", 1, true))
  end)

  it("completes names, fields and methods with Tab", function()
    local out = pty({
      "expect > ",
      "keys orket.ver\\t", "sleep 300", "keys \\n", -- one match: completed in place
      "expect \"",
      "expect > ",
      "keys x = {alpha = 1, beta = function() end}\\n",
      "expect > ",
      "keys x:\\t", "sleep 300", "keys ()\\n", -- after ':' only the method: x:beta()
      "expect > ",
      "keys print(#x.al\\t", "sleep 300", "keys ) -- \\n",
      "expect 1",
      "expect > ",
      "keys orket.s\\t\\t", "sleep 300", -- several: the second Tab lists them
      "expect orket.spawn",
      "keys \\x15\\n",
      "expect > ",
      "eof",
    }, { ORKET_HISTORY = "" })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.matches("orket.version\r?\n\"%d+%.%d+%.%d+\"", out)
    assert.matches("x:beta%(%)\r?\n", out)
    assert.matches("orket.sleep +orket.spawn", out)
  end)

  it("continues multi-line input on a terminal", function()
    local out = pty({ "expect > ", "send for i = 1, 3 do", "expect >> ", "send   io.write(i)", "send end",
      "expect 123", "expect > ", "eof" })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
  end)
end)
