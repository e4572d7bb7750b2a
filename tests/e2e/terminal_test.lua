-- End-to-end: text from the model (its content, tool names and arguments, comments and
-- cards it files, a server's error body) full of escape and control sequences reaches no
-- terminal raw: not through the live view, orket log, card, board, runs or an error, and
-- --json keeps it exact. The notes example with a hostile scripted model.
local H = require "tests.helpers"
local cjson = require "cjson"

local PTY = H.BIN:gsub("orket$", "ptydrive")

-- One sample of each class a terminal acts on, or that hides or reorders text (as Lua
-- source for the script, and as the string it makes).
local EVIL_SRC = [["csi\27[2J\27[H osc\27]0;PWNED\7 st\27]52;c;ZXZpbA==\27\\ dcs\27P+q\27\\ ]]
  .. [[c1\194\155" .. "31m raw\155" .. "2J rlo\226\128\174gnp.exe lri\226\129\166x zw\226\128\139 ]]
  .. [[bs\8\8 cr\r del\127 bel\7 end"]]
local EVIL = load("return " .. EVIL_SRC)()
local LINE_SRC = [["card\27[31mred\226\128\174\n== FAKE"]]

-- NOTES-1's first step: every place model text goes; NOTES-2: a server error body. A call
-- whose arguments hold a byte that is not UTF-8 (EVIL's raw \155) is refused whole, so the
-- comment it writes and the card it files (NOTES-5) are given text that is hostile but UTF-8.
local HOSTILE_RULES = [[
local EVIL = ]] .. EVIL_SRC .. [[

local EVIL_LINE = ]] .. LINE_SRC .. [[

local EVIL_UTF8 = EVIL:gsub("raw\155", "raw")

local rules = {
  { role = "architect", card = "NOTES-1", turn = 1, match = "^Issue ", reply = { content = EVIL, tool_calls = {
    call("add_issue_comment", { body = EVIL_UTF8 }),
    call("create_issue", { summary = EVIL_LINE, description = EVIL_UTF8, seat = "senior_developer" }),
    call("evil\27]0;t\7tool", { x = EVIL }),
    call("write_file", { path = "schema.sql", content = EVIL }) } } },
  { card = "NOTES-2", reply = { error = { class = "bad_request", message = "HTTP 400: " .. EVIL } } },
]]

local function project()
  local dir = H.example("notes")
  local script = H.read(dir .. "/script.lua")
  local s, e = script:find("local rules = {\n", 1, true)
  H.write(dir .. "/script.lua", script:sub(1, s - 1) .. HOSTILE_RULES .. script:sub(e + 1))
  return dir
end

-- An independent check of the output: no C0 control but tab and newline (ESC, BEL, CR,
-- backspace), no DEL, no C1 control, no bidi control or zero-width space, valid UTF-8.
local function assert_inert(out, what)
  local function no(pat, class)
    local at = out:find(pat)
    assert.is_nil(at, string.format("%s: raw %s at byte %s: %q", what, class, tostring(at),
      at and out:sub(math.max(1, at - 20), at + 20) or ""))
  end
  no("[%z\1-\8\11-\31\127]", "C0 control or DEL")
  no("\194[\128-\159]", "C1 control")
  no("\226\128[\139\170-\174]", "bidi control or zero-width space")
  no("\226\129[\166-\169]", "bidi isolate")
  assert.is_not_nil(utf8.len(out), what .. ": not UTF-8")
end

describe("hostile model text on a terminal", function()
  after_each(H.cleanup)

  it("is inert in orket log, card, board, runs and errors; exact in --json", function()
    local dir = project()
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.equal(1, r.status, r.stderr) -- NOTES-2's model error blocks it: the run fails
    assert_inert(r.stdout, "run --json")
    assert.matches("\\u001b]0;PWNED", r.stdout, 1, true)
    for _, args in ipairs { "log 1", "log 1 --full", "card NOTES-1", "card NOTES-2", "card NOTES-5", "board",
      "runs", "board --json", "card NOTES-1 --json", "card NOTES-5 --json", "runs --json" } do
      local out = H.orket(args, { cwd = dir })
      assert.equal(0, out.status, args .. ": " .. out.stderr)
      assert_inert(out.stdout, args)
      assert_inert(out.stderr, args .. " (stderr)")
    end
    -- shown, not hidden: the escapes are there to read
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.matches("[assistant] csi\\x1b[2J\\x1b[H osc\\x1b]0;PWNED\\x07", log, 1, true)
    assert.matches("[call] evil\\x1b]0;t\\x07tool", log, 1, true)
    assert.matches("c1\\u{9b}31m raw\\x9b2J rlo\\u{202e}gnp.exe", log, 1, true)
    -- a card id or summary cannot start a line of its own (a fake header)
    assert.is_nil(log:find("\n== FAKE", 1, true))
    assert.is_nil(H.orket("board", { cwd = dir }).stdout:find("\n== FAKE", 1, true))
    -- --json keeps the text exact: the same string decodes back
    local card = cjson.decode(H.orket("card NOTES-1 --json", { cwd = dir }).stdout)
    local body = EVIL:gsub("raw\155", "raw") -- a call with a byte that is not UTF-8 is refused
    assert.equal(body, card.comments[1].body)
    -- an error that quotes a card id: inert on stderr
    local bad = H.orket("card " .. H.quote("X\27]0;PWNED\7"), { cwd = dir })
    assert.equal(1, bad.status)
    assert_inert(bad.stderr, "card error")
    assert.matches("PWNED", bad.stderr, 1, true)
  end)

  it("is inert in orket models when a server names its models with escapes", function()
    -- a server whose model list holds an escape sequence, in its own process
    local dir = H.tmpdir()
    H.write(dir .. "/server.lua", [=[
local uv = require "luv"
local s = uv.new_tcp()
assert(s:bind("127.0.0.1", 0))
s:listen(16, function()
  local c = uv.new_tcp()
  s:accept(c)
  local buf = ""
  c:read_start(function(_, data)
    if not data then c:close() return end
    buf = buf .. data
    if not buf:find("\r\n\r\n", 1, true) then return end
    local body = '{"object":"list","data":[{"id":"m\\u001b]0;PWNED\\u0007\\u202e","object":"model"}]}'
    c:write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body
      .. "\r\nConnection: close\r\n\r\n" .. body, function() c:close() end)
  end)
end)
io.write("listening ", s:getsockname().port, "\n")
io.stdout:flush()
uv.run()
]=])
    local p = io.popen(string.format("cd %s && exec %s lua server.lua >port 2>&1 & echo $!", H.quote(dir), H.quote(H.BIN)))
    local pid = tonumber(p:read("l"))
    p:close()
    local port
    for _ = 1, 500 do
      port = (H.read(dir .. "/port") or ""):match("listening (%d+)")
      if port then break end
      orket.sleep(10)
    end
    H.write(dir .. "/orket.lua", string.format([[models = { default = "evil:x",
      providers = { evil = { kind = "openai", base_url = "http://127.0.0.1:%s/v1" } } }]], tostring(port)))
    local r = H.orket("models", { cwd = dir })
    os.execute("kill " .. pid)
    assert.is_not_nil(port, "the server did not start")
    assert.equal(1, r.status, r.stdout .. r.stderr) -- x is not served there
    assert_inert(r.stdout, "models")
    assert.matches("1 model: m\\x1b]0;PWNED\\x07\\u{202e})", r.stdout, 1, true)
  end)

  it("is inert in the live view of orket run", function()
    local dir = project()
    H.write(dir .. "/steps", "expect run 1 NOTES failed\n")
    local p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s run NOTES <steps 2>&1",
      H.quote(dir), H.quote(PTY), H.quote(H.BIN)))
    local out = p:read("a")
    p:close()
    -- ptydrive says FAILED for any exit but 0; the summary was seen
    assert.matches("%[ptydrive: %a+, exit 1%]", out)
    assert.matches("run 1 NOTES failed in", out, 1, true)
    -- the view's own cursor moves are the only escapes: none of the model's
    for _, raw in ipairs { "\27]", "\27[2J", "\27[H", "\27P", "\7", "\8", "\127", "\194\155", "\155",
      "\226\128\174", "\226\129\166", "\226\128\139" } do
      assert.is_nil(out:find(raw, 1, true), string.format("raw %q in the live view", raw))
    end
    assert.matches("HTTP 400: csi\\x1b[2J", out, 1, true) -- the server's error body, shown inert
    assert.is_nil(out:gsub("\27%[%d*[AJKm]", ""):find("\27", 1, true), "an escape the view did not write")
  end)
end)
