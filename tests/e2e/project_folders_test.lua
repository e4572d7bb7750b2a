-- A project's script folder that is a file: validate named it a problem while run used the
-- built-in scripts without a word; now both refuse it with one message. And a project
-- folder's own name in the command line's messages: a newline in it split a message into
-- lines; it is shown as \n, on the message's line.
local H = require "tests.helpers"
local cjson = require "cjson"

local function runs(dir)
  local r = H.orket("runs --json", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return #cjson.decode(r.stdout).runs
end

-- the lines of s
local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("a script folder that is a file", function()
  after_each(H.cleanup)

  it("is refused by run, resume and gate check with validate's message", function()
    local dir = H.example("notes")
    local parent, name = dir:match("^(.*)/([^/]+)$")
    for _, folder in ipairs { "roles", "tools", "policies" } do
      H.write(dir .. "/" .. folder, "x\n")
      local v = H.orket("validate", { cwd = dir })
      assert.equal(1, v.status, folder)
      local said = assert(v.stdout:match("^(" .. folder .. ": [^\n]+)\n"), v.stdout)
      assert.matches(folder .. ": a file, not a folder: a project's " .. folder .. " are .lua files in a folder "
        .. folder .. "/", said, 1, true)
      local r = H.orket("run NOTES", { cwd = dir })
      assert.equal(1, r.status, folder)
      assert.equal("orket: " .. said .. "\n", r.stderr)
      -- (JSON Lines off a terminal: the refusal's one line, nothing started)
      assert.matches('^{"code":"ENOTDIR",[^\n]*"type":"error"}\n$', r.stdout)
      -- from elsewhere, the path names the folder from there
      r = H.orket("run NOTES -C " .. H.quote(name), { cwd = parent })
      assert.equal(1, r.status, folder)
      assert.equal("orket: " .. name .. "/" .. said .. "\n", r.stderr)
      -- orket gate check too: the built-in scripts alone would decide otherwise
      r = H.orket("gate check --role coder --tool read_file", { cwd = dir })
      assert.equal(1, r.status, folder .. ": " .. r.stdout)
      assert.equal("orket: " .. said .. "\n", r.stderr)
      assert.equal("", r.stdout)
      r = H.orket("-C " .. H.quote(name) .. " gate check --role coder --tool read_file", { cwd = parent })
      assert.equal("orket: " .. name .. "/" .. said .. "\n", r.stderr)
      os.remove(dir .. "/" .. folder)
    end
    assert.equal(0, runs(dir))
    -- a run stopped before its end is not resumed over a roles file either
    assert.equal(137, H.orket("run NOTES", { cwd = dir, env = { ORKET_FAULT = "turn_end:1" } }).status)
    H.write(dir .. "/roles", "x\n")
    local r = H.orket("resume", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("^orket: roles: a file, not a folder", r.stderr)
    os.remove(dir .. "/roles")
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
  end)
end)

describe("a project folder's name in a message", function()
  after_each(H.cleanup)

  it("is shown on the message's line, a newline in it written \\n", function()
    local base = H.tmpdir()
    local odd = base .. "/two\nlines"
    local shown = base .. "/two\\nlines"
    local r = H.orket("init " .. H.quote(odd) .. " --yes")
    assert.equal(0, r.status, r.stderr)
    assert.equal("created a project in " .. shown .. ":", r.stdout:match("^(created a project in [^:]*:)"))
    r = H.orket("init " .. H.quote(odd) .. " --yes")
    assert.equal(1, r.status)
    assert.equal(1, #lines(r.stderr), r.stderr)
    assert.matches(shown .. "/orket.lua already exists: " .. shown .. " already holds a project", r.stderr, 1, true)
    -- a broken orket.lua named from where the command ran
    H.write(odd .. "/orket.lua", H.read(odd .. "/orket.lua") .. "\noops(\n")
    r = H.orket("run START -C " .. H.quote(odd))
    assert.equal(1, r.status)
    assert.equal(1, #lines(r.stderr), r.stderr)
    assert.matches("^orket: " .. shown:gsub("%p", "%%%0") .. "/orket%.lua:%d+: ", r.stderr)
    -- no project there
    local none = base .. "/no\nproject"
    for _, cmd in ipairs { "status", "validate", "run X" } do
      r = H.orket(cmd .. " -C " .. H.quote(none))
      assert.equal(1, r.status, cmd)
      assert.equal(1, #lines(r.stderr), cmd .. ": " .. r.stderr)
      assert.matches("no project in " .. base .. "/no\\nproject (", r.stderr, 1, true)
    end
    r = H.orket("-C " .. H.quote(none))
    assert.equal(2, r.status)
    assert.equal("orket: -C " .. base .. "/no\\nproject needs a command after it: orket -C DIR COMMAND ...\n", r.stderr)
  end)

  it("is shown on its line by import, backup, restore and models too", function()
    local base = H.tmpdir()
    local odd = base .. "/two\nlines"
    local shown = base .. "/two\\nlines"
    assert.equal(0, H.orket("init " .. H.quote(odd) .. " --yes").status)
    -- backup to a file in it, and restore's check of that file
    local file = odd .. "/back\nup.db"
    local r = H.orket("backup " .. H.quote(file) .. " -C " .. H.quote(odd))
    assert.equal(0, r.status, r.stderr)
    assert.equal(1, #lines(r.stdout), r.stdout)
    assert.matches(" to " .. shown .. "/back\\nup.db\n", r.stdout, 1, true)
    r = H.orket("restore " .. H.quote(file) .. " --check -C " .. H.quote(odd))
    assert.equal(0, r.status, r.stderr)
    assert.equal(1, #lines(r.stdout), r.stdout)
    assert.matches("^" .. (shown .. "/back\\nup.db: a good backup"):gsub("%p", "%%%0"), r.stdout)
    -- no epics/ folder to import
    os.execute("rm -rf " .. H.quote(odd .. "/epics"))
    r = H.orket("import -C " .. H.quote(odd))
    assert.equal(1, r.status)
    assert.equal(1, #lines(r.stderr), r.stderr)
    assert.matches("import: " .. shown .. "/epics: no such folder", r.stderr, 1, true)
    -- models -C a folder that is not there
    r = H.orket("models -C " .. H.quote(base .. "/no\nproject"))
    assert.equal(2, r.status, r.stderr)
    assert.matches("-C " .. base .. "/no\\nproject: no such directory", lines(r.stderr)[1], 1, true)
  end)
end)
