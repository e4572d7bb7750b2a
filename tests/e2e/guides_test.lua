-- The guides in docs/guide/ run as written: every ```sh test block of a guide, in order, in
-- one shell in a fresh directory (HOME there too), with the built orket first on PATH and
-- the fake model server standing in for Ollama (127.0.0.1:11434) and for an OpenAI-compatible
-- server (127.0.0.1:8000). A ```sh test block must exit 0; a ```sh test-runs block runs
-- without its status judged (a real model would finish the cards), but never a usage error
-- (exit 2). Also: state-machine.md's diagrams list every transition of core/statemachine.c's
-- table, and troubleshooting.md names every code the CLI, the HTTP API and the gate emit.
local H = require "tests.helpers"
local fake_server = require "tests.fake_server"

local GUIDES = { "getting-started", "adopting", "writing-roles", "writing-tools", "policies", "state-machine",
  "troubleshooting", "deploying", "performance", "security", "debugging" }

local function guide(name) return assert(H.read(H.ROOT .. "/docs/guide/" .. name .. ".md"), name .. ".md is missing") end

-- blocks(text) -> array of {kind = "test" | "test-runs", line = N, body = text}
local function blocks(text)
  local list, cur, n = {}, nil, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        list[#list + 1] = cur
        cur = nil
      else
        cur.body = cur.body .. line .. "\n"
      end
    else
      local kind = line:match("^```sh (test%-runs)%s*$") or line:match("^```sh (test)%s*$")
      if kind then cur = { kind = kind, line = n, body = "" } end
    end
  end
  assert(cur == nil, "a ```sh block is not closed")
  return list
end

-- script(name, list, fake) -> the shell text running the guide's blocks
local function script(name, list, fake)
  local out = { "set -u" }
  local hostport = fake.url:gsub("^http://", "")
  for _, b in ipairs(list) do
    local body = b.body:gsub("127%.0%.0%.1:11434", hostport):gsub("127%.0%.0%.1:8000", hostport)
    out[#out + 1] = string.format("echo '== %s.md:%d (%s)' >&2", name, b.line, b.kind)
    if b.kind == "test" then
      -- each line of the block must succeed (set -e, then off again for test-runs blocks)
      out[#out + 1] = "set -e\n" .. body .. "set +e"
    else
      for line in body:gmatch("[^\n]+") do
        if line:match("^%s*#") or line:match("^%s*$") then
          out[#out + 1] = line
        else
          out[#out + 1] = line .. string.format(
            "\nrc=$?; if [ $rc -eq 2 ]; then echo '%s.md:%d: usage error' >&2; exit 97; fi", name, b.line)
        end
      end
    end
  end
  out[#out + 1] = "exit 0"
  return table.concat(out, "\n") .. "\n"
end

describe("docs/guide", function()
  local fake
  -- the model the Ollama guide pulls is listed, as Ollama lists it once pulled (orket run
  -- --model asks the server for it)
  setup(function() fake = fake_server.start { models = { "fake-model", "qwen2.5-coder:7b" } } end)
  teardown(function() fake.stop() end)
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  for _, name in ipairs(GUIDES) do
    it(name .. ".md runs as written", function()
      local list = blocks(guide(name))
      local dir = H.tmpdir()
      H.write(dir .. "/guide.sh", script(name, list, fake))
      local bindir = H.BIN:match("^(.*)/[^/]+$")
      local cmd = string.format("cd %s && HOME=%s PATH=%s:\"$PATH\" ORKET_HISTORY= NO_COLOR=1 ORKET_KEY= ORKET_KEY_FILE= "
        .. "ORKET_DATABASE_URL= ORKET_MODEL= OPENAI_API_KEY= OPENAI_BASE_URL= OLLAMA_HOST= sh guide.sh >out 2>err </dev/null; echo $?",
        H.quote(dir), H.quote(dir), H.quote(bindir))
      local p = io.popen(cmd)
      local rc = tonumber(p:read("a"))
      p:close()
      assert(rc == 0, name .. ".md: a block failed (exit " .. tostring(rc) .. "):\n"
        .. (H.read(dir .. "/err") or ""):sub(-3000) .. "\n--- stdout:\n" .. (H.read(dir .. "/out") or ""):sub(-2000))
    end)
  end

  it("state-machine.md draws every transition of core/statemachine.c's table", function()
    local c = assert(H.read(H.ROOT .. "/core/statemachine.c"))
    local tbl = assert(c:match("sm_table%b[]%b[] = (%b{})"), "sm_table not found")
    local text = guide("state-machine")
    local n = 0
    for ctype, rows in tbl:gmatch("%[SM_(%u+)%]%s*=%s*(%b{})") do
      local section = assert(text:match("```mermaid\n%%%% " .. ctype:lower() .. "\n(.-)```"),
        "no mermaid diagram for " .. ctype:lower())
      for from, targets in rows:gmatch("%[SM_([%u_]+)%]%s*=%s*([^,]-B%b()[^%[]*)") do
        for to in targets:gmatch("B%(SM_([%u_]+)%)") do
          n = n + 1
          local edge = from:lower() .. " --> " .. to:lower()
          assert.is_truthy(section:find(edge:gsub("%p", "%%%0") .. "%f[^%w_]"), ctype:lower() .. ": the diagram lacks " .. edge)
        end
      end
      -- archiving from every status but archived (added in sm_allowed, not in the table)
      assert.is_truthy(section:find("--> archived", 1, true), ctype:lower() .. ": no move to archived")
    end
    assert.is_true(n >= 30, "parsed only " .. n .. " transitions")
  end)

  it("troubleshooting.md names every code the CLI, the HTTP API, the gate and the state machine emit", function()
    local text = guide("troubleshooting")
    local codes = {}
    local function add(c, where) codes[c] = codes[c] or where end
    for _, f in ipairs { "core/statemachine.c" } do
      for c in H.read(H.ROOT .. "/" .. f):gmatch('sm_refuse%(v, "(E[%u_]+)"') do add(c, f) end
    end
    local gate = H.read(H.ROOT .. "/core/gate.c")
    for c in gate:gmatch('"([%u][%u_]+[%u])"') do
      if #c >= 6 and not c:match("^GATE") then add(c, "core/gate.c") end
    end
    for c in H.read(H.ROOT .. "/lua/orket/gate.lua"):gmatch('code = "([%u_]+)"') do add(c, "lua/orket/gate.lua") end
    local p = io.popen("ls " .. H.quote(H.ROOT .. "/lua/orket/serve") .. "/*.lua")
    for f in p:lines() do
      for c in H.read(f):gmatch('%d%d%d, "([a-z_]+)"') do add(c, f) end
    end
    p:close()
    for c in H.read(H.ROOT .. "/lua/orket/store/backup.lua"):gmatch('"(E[%u]+)"') do add(c, "lua/orket/store/backup.lua") end
    -- what a tool's result says when the workspace or the process runner refuses
    for _, f in ipairs { "core/workspace.c", "core/proc.c", "lua/orket/engine/proctool.lua" } do
      for c in (H.read(H.ROOT .. "/" .. f) or ""):gmatch('"(E[%u%d_]+)"') do add(c, f) end
    end
    local t = io.popen("ls " .. H.quote(H.ROOT .. "/tools") .. "/*.lua")
    for f in t:lines() do
      for c in H.read(f):gmatch('"(E[%u%d_]+)"') do add(c, f) end
    end
    t:close()
    for c in H.read(H.ROOT .. "/core/store.c"):gmatch('return "(E[%u]+)"') do add(c, "core/store.c") end
    local n = 0
    for c, where in pairs(codes) do
      n = n + 1
      assert.is_truthy(text:find("`" .. c .. "`", 1, true), "troubleshooting.md lacks `" .. c .. "` (from " .. where .. ")")
    end
    assert.is_true(n >= 40, "found only " .. n .. " codes")
  end)

  it("troubleshooting.md quotes, in its common situations, messages the code prints", function()
    local section = guide("troubleshooting"):match("\n## Common situations\n(.-)\n## ") or
      guide("troubleshooting"):match("\n## Common situations\n(.*)$")
    local sources = {}
    local p = io.popen("cd " .. H.quote(H.ROOT) .. " && find lua core -name '*.lua' -o -name '*.c'")
    for f in p:lines() do sources[#sources + 1] = H.read(H.ROOT .. "/" .. f) end
    p:close()
    local n = 0
    for lead in section:gmatch("\n%*%*(.-)%*%*") do
      for quote in lead:gmatch('"([^"]+)"') do
        quote = quote:gsub("%s+", " ") -- as the paragraph wraps it
        n = n + 1
        -- a value the message holds (CARD, 0.0.0.0) is filled in: each piece around it is
        -- in one source
        local pieces = {}
        for piece in (quote:gsub("%f[%w]%u%u+%f[%W]", "\0"):gsub("%d[%d.]*", "\0") .. "\0"):gmatch("([^\0]*)\0") do
          piece = piece:match("^%s*(.-)%s*$")
          if #piece >= 3 then pieces[#pieces + 1] = piece end
        end
        local found = false
        for _, text in ipairs(sources) do
          local all = true
          for _, piece in ipairs(pieces) do all = all and text:find(piece, 1, true) ~= nil end
          if all then found = true break end
        end
        assert.is_true(#pieces > 0 and found, "troubleshooting.md quotes \"" .. quote .. "\", which no source prints")
      end
    end
    assert.is_true(n >= 5, "found only " .. n .. " quoted messages")
  end)
end)
