-- End to end: names a Windows or macOS clone cannot check out (docs/workspace.md, *Other
-- refusals*). The scripted coder writes, moves and makes folders with each kind of name: a
-- Windows device name, a trailing dot or space, a character Windows refuses, a control
-- character, a case twin and an NFC/NFD twin. Each tool call is refused (EINVAL, naming the
-- rule), the card ends done and main holds only the names every clone can have. With
-- workspace = { portable_names = false } in orket.lua, the same calls are accepted and main
-- holds every name.
local H = require "tests.helpers"

local NFC, NFD = "caf\195\169.txt", "cafe\204\129.txt"

-- each refused call: the tool, its arguments, the path main would hold, what the refusal says
local REFUSED = {
  { "write_file", { path = "CON", content = "c\n" }, "CON", "Windows reads it as a device" },
  { "write_file", { path = "docs/aux.txt", content = "a\n" }, "docs/aux.txt", "Windows reads it as a device" },
  { "write_file", { path = "com1.log", content = "n\n" }, "com1.log", "Windows reads it as a device" },
  { "write_file", { path = "trail.", content = "d\n" }, "trail.", "ends in a dot or a space" },
  { "write_file", { path = "space ", content = "s\n" }, "space ", "ends in a dot or a space" },
  { "write_file", { path = "a:b.txt", content = "c\n" }, "a:b.txt", "which Windows does not allow in a name" },
  { "write_file", { path = "cr\r.txt", content = "c\n" }, "cr\r.txt", "control character" },
  { "write_file", { path = "readme.md", content = "lower\n" }, "readme.md", "only in letter case" },
  { "write_file", { path = "src/main.lua", content = "return 2\n" }, "src/main.lua", "only in letter case" },
  { "create_directory", { path = "SRC" }, nil, "only in letter case" },
  { "write_file", { path = NFD, content = "nfd\n" }, NFD, "composed (NFC or NFD)" },
  { "move_file", { from = "keep.txt", to = "lpt1.txt" }, "lpt1.txt", "Windows reads it as a device" },
}

local function lua_args(t)
  local out = {}
  for k, v in pairs(t) do out[#out + 1] = string.format("%s = %q", k, v) end
  return "{ " .. table.concat(out, ", ") .. " }"
end

local function project(settings)
  local dir = H.tmpdir()
  H.write(dir .. "/orket.lua", [[
name = "portable"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
]] .. (settings or ""))
  local calls = {
    'call("write_file", { path = "README.md", content = "upper\\n" })',
    'call("write_file", { path = "src/Main.lua", content = "return 1\\n" })',
    string.format('call("write_file", { path = %q, content = "nfc\\n" })', NFC),
    'call("write_file", { path = "keep.txt", content = "k\\n" })',
  }
  for _, r in ipairs(REFUSED) do calls[#calls + 1] = string.format("call(%q, %s)", r[1], lua_args(r[2])) end
  -- last, so that the turn's last message is a write's result ("bytes"), which hands in
  calls[#calls + 1] = 'call("write_file", { path = "last.txt", content = "l\\n" })'
  H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { default = { content = "Nothing more to do." }, rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = { ]] .. table.concat(calls, ",\n    ") .. [[ } } },
  { role = "coder", match = '"bytes"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
} }
]])
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/epics/p.json", '{ "id": "P", "issues": [ { "id": "P-1", "summary": "odd names", "seat": "dev" } ] }\n')
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- main's paths, as git names them with -z (no quoting)
local function main_paths(dir)
  local p = io.popen("git -C " .. H.quote(dir .. "/workspace") .. " ls-tree -r -z --name-only main")
  local out = p:read("a")
  p:close()
  local set = {}
  for path in out:gmatch("([^%z]+)") do set[path] = true end
  return set
end

local function run(dir)
  local r = H.orket("run P", { cwd = dir })
  assert.equal(0, r.status, r.stdout .. r.stderr)
  assert.equal("done", H.card_json(dir, "P-1").card.status)
  local log = H.orket("log 1 --full", { cwd = dir })
  assert.equal(0, log.status, log.stderr)
  return log.stdout, main_paths(dir)
end

describe("names a Windows or macOS clone cannot check out", function()
  after_each(H.cleanup)

  it("are refused in each tool call, naming the rule, and never reach main", function()
    local log, main = run(project())
    for _, path in ipairs { "README.md", "src/Main.lua", NFC, "keep.txt", "last.txt" } do
      assert.is_true(main[path], path)
    end
    for _, r in ipairs(REFUSED) do
      if r[3] then assert.is_nil(main[r[3]], r[3]) end
      assert.matches(r[4], log, 1, true)
    end
    assert.is_nil(main["SRC"])
    assert.matches("the name 'cr\\\\x0d.txt' in cr\\\\x0d.txt cannot be checked out on Windows", log, 1, true)
    assert.matches("'readme.md' differs from 'README.md', already in the top folder, only in letter case", log, 1, true)
    assert.matches("'cafe\\\\xcc\\\\x81.txt' differs from 'caf\\\\xc3\\\\xa9.txt'", log, 1, true)
    assert.matches("workspace = { portable_names = false }", log, 1, true)
    local _, n = log:gsub('"code":"EINVAL"', "")
    assert.is_true(n >= #REFUSED, "EINVAL results: " .. n)
  end)

  it("are accepted with workspace = { portable_names = false }, and main holds them all", function()
    local log, main = run(project("workspace = { portable_names = false }\n"))
    assert.is_nil(log:find("cannot be checked out on Windows", 1, true))
    assert.is_nil(log:find("differs from", 1, true))
    for _, r in ipairs(REFUSED) do
      if r[3] then assert.is_true(main[r[3]], r[3]) end
    end
    assert.is_true(main["README.md"] and main["readme.md"] and main["src/Main.lua"] and main["src/main.lua"])
    assert.is_true(main[NFC] and main[NFD])
    assert.is_nil(main["keep.txt"]) -- moved to lpt1.txt
  end)
end)
