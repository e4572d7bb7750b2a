-- orket init's questions on a terminal (tests/tools/ptydrive, a pseudo-terminal typed at):
-- what was answered is what it writes; Enter throughout writes what init writes without a
-- terminal; Ctrl-D changes nothing; with options or without a terminal it asks nothing.
local H = require "tests.helpers"

local PTY = H.BIN:gsub("orket$", "ptydrive")

-- orket init ARGS in a fresh directory holding an empty p/, on a terminal, typed at as the
-- steps say -> the transcript, the directory
local function on_tty(args, steps, prep)
  local dir = H.tmpdir()
  assert(os.execute("mkdir " .. H.quote(dir .. "/p")))
  if prep then prep(dir .. "/p") end
  H.write(dir .. "/steps", table.concat(steps, "\n") .. "\n")
  local p = io.popen(string.format("cd %s && env TERM=dumb %s -t 30 -- %s init %s <%s 2>&1",
    H.quote(dir), H.quote(PTY), H.quote(H.BIN), args, H.quote(dir .. "/steps")))
  local out = p:read("a")
  p:close()
  return out, dir
end

-- the files init writes, as text (nil: not written)
local function written(p)
  local t = {}
  for _, f in ipairs { "orket.lua", "epics/start.json", "script.lua", "workspace/README.md",
    "workspace/checks.sh", "workspace/.github/workflows/orket.yml", "workspace/.gitea/workflows/orket.yml" } do
    t[f] = H.read(p .. "/" .. f)
  end
  return t
end

local function plain_init(args)
  local dir = H.tmpdir()
  local r = H.orket("init p " .. (args or ""), { cwd = dir, stdin = "Acme\nopenai\n\n\n\n" })
  assert.equal(0, r.status, r.stderr)
  return r, dir .. "/p"
end

describe("orket init on a terminal", function()
  after_each(H.cleanup)

  it("asks, says a wrong answer, and writes what was answered", function()
    local out, dir = on_tty("p", {
      "expect Project name [p]: ", "send Acme Notes",
      "expect Model provider (scripted/ollama/openai) [scripted]: ", "send foo",
      "expect answer one of: scripted, ollama, openai", "expect Model provider", "send oll",
      "expect Model [qwen2.5-coder:7b]: ", "send llama3.1:8b",
      "expect Forge (none/gitea/github) [none]: ", "send github",
      "expect OWNER/NAME", "send acme/notes",
      "expect Start from (example/empty) [example]: ", "send empty",
      "expect next: write an epic into p/epics/",
    })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    local p = dir .. "/p"
    local f = written(p)
    assert.matches('name = "Acme Notes"', f["orket.lua"], 1, true)
    assert.matches('models = { default = "ollama:llama3.1:8b" }', f["orket.lua"], 1, true)
    assert.is_nil(f["orket.lua"]:find("scripted", 1, true))
    assert.matches('verify = { command = { "sh", "checks.sh" } }', f["orket.lua"], 1, true)
    assert.matches('repo = "acme/notes"', f["orket.lua"], 1, true)
    assert.matches("https://github.com/acme/notes/actions/workflows/orket.yml/badge.svg", f["workspace/README.md"], 1, true)
    assert.matches("^# Acme Notes\n", f["workspace/README.md"])
    assert.truthy(f["workspace/.github/workflows/orket.yml"])
    -- empty: no epic, and no offline model for a project on a real one
    assert.is_nil(f["epics/start.json"])
    assert.is_nil(f["script.lua"])
    local v = H.orket("validate", { cwd = p })
    assert.equal(0, v.status, v.stdout .. v.stderr)
    assert.matches("^ok: orket.lua, 0 epics", v.stdout)
    assert.matches("the board is empty", H.orket("board", { cwd = p }).stdout)
  end)

  -- a person's own script.lua or epics/start.json was refused as "init writes a file of that
  -- name" before the questions, also when the answers (a real model, an empty board) make
  -- init write no such file
  it("takes a folder holding a file of a name init writes only when the answers write it", function()
    local MINE = '{ "id": "MINE", "name": "Mine", "issues": [ { "id": "MINE-1", "summary": "s", "seat": "senior_developer" } ] }\n'
    local function prep(p)
      assert(os.execute("mkdir " .. H.quote(p .. "/epics")))
      H.write(p .. "/script.lua", "mine\n")
      H.write(p .. "/epics/start.json", MINE)
    end
    local out, dir = on_tty("p", {
      "expect Project name [p]: ", "keys \\n",
      "expect Model provider", "send ollama",
      "expect Model [", "keys \\n",
      "expect Forge", "keys \\n",
      "expect Start from (example/empty) [example]: ", "send empty",
      "expect next:",
    }, prep)
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.equal("mine\n", H.read(dir .. "/p/script.lua"))
    assert.equal(MINE, H.read(dir .. "/p/epics/start.json"))
    assert.truthy(H.read(dir .. "/p/orket.lua"))
    -- the scripted model's example writes both: refused, nothing changed
    out, dir = on_tty("p", {
      "expect Project name [p]: ", "keys \\n", "expect Model provider", "keys \\n",
      "expect Forge", "keys \\n", "expect Start from", "keys \\n",
      "expect start.json already exists, and init writes a file of that name",
    }, prep)
    assert.matches("%[ptydrive: FAILED, exit 1%]", out)
    assert.is_nil(out:find("expected", 1, true), out) -- every step was seen
    assert.is_nil(H.read(dir .. "/p/orket.lua"))
  end)

  it("offers gitea's URL and openai's model, and starts from the example", function()
    local out, dir = on_tty("p", {
      "expect Project name [p]: ", "keys \\n",
      "expect Model provider", "send openai",
      "expect Model [gpt-4o-mini]: ", "keys \\n",
      "expect Forge", "send gitea",
      "expect OWNER/NAME", "send not a repo",
      "expect 'not a repo' is not OWNER/NAME", "expect OWNER/NAME", "send acme/notes",
      "expect Gitea's URL", "send https://git.example.org/",
      "expect Start from", "keys \\n",
      "expect next: cd p && ",
    })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.matches("model: openai:gpt%-4o%-mini", out)
    local f = written(dir .. "/p")
    assert.matches('name = "p"', f["orket.lua"], 1, true)
    assert.matches('models = { default = "openai:gpt-4o-mini" }', f["orket.lua"], 1, true)
    assert.matches("OPENAI_API_KEY", f["orket.lua"], 1, true)
    assert.truthy(f["epics/start.json"])
    assert.is_nil(f["script.lua"])
    assert.matches("https://git.example.org/acme/notes/actions/workflows/orket.yml/badge.svg", f["workspace/README.md"], 1, true)
    assert.truthy(f["workspace/.gitea/workflows/orket.yml"])
    local v = H.orket("validate", { cwd = dir .. "/p" })
    assert.equal(0, v.status, v.stdout .. v.stderr)
    assert.matches("^ok: orket.lua, 1 epic %(2 issues%)", v.stdout)
  end)

  it("writes what init writes without a terminal when each answer is Enter", function()
    local out, dir = on_tty("p", {
      "expect Project name [p]: ", "keys \\n", "expect Model provider", "keys \\n",
      "expect Forge", "keys \\n", "expect Start from", "keys \\n", "expect next: cd p && ",
    })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.is_nil(out:find("Model [", 1, true)) -- the scripted model has no name to ask
    local plain, pdir = plain_init()
    assert.same(written(pdir), written(dir .. "/p"))
    assert.matches(plain.stdout:match("^[^\n]*"), out, 1, true)
  end)

  it("changes nothing when Ctrl-D cancels", function()
    local out, dir = on_tty("p", { "expect Project name [p]: ", "send Acme", "expect Model provider", "eof",
      "expect init cancelled; nothing was changed" })
    assert.matches("%[ptydrive: FAILED, exit 1%]", out)
    assert.is_nil(out:find("expected", 1, true), out) -- every step was seen
    local p = io.popen("ls -A " .. H.quote(dir .. "/p"))
    assert.equal("", p:read("a"))
    p:close()
  end)

  it("asks nothing with --yes or --forge, and writes what it writes without a terminal", function()
    local out, dir = on_tty("p --yes", { "expect next: cd p && " })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.is_nil(out:find("Project name", 1, true))
    local _, pdir = plain_init()
    assert.same(written(pdir), written(dir .. "/p"))
    out, dir = on_tty("p --forge github --repo acme/notes", { "expect next: cd p && " })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.is_nil(out:find("Project name", 1, true))
    _, pdir = plain_init("--forge github --repo acme/notes")
    assert.same(written(pdir), written(dir .. "/p"))
  end)
end)

describe("orket init without a terminal", function()
  after_each(H.cleanup)

  it("asks nothing and reads no answers from stdin", function()
    local r, p = plain_init()
    assert.is_nil(r.stdout:find("Project name", 1, true))
    assert.equal("", r.stderr)
    assert.matches("^created a project in p: orket.lua, epics/start.json %(epic START, 2 issues%), "
      .. "script.lua %(offline model%), workspace/ %(git%)\nnext: cd p && ", r.stdout)
    local f = written(p)
    assert.matches('name = "p"', f["orket.lua"], 1, true)
    assert.matches('default = "scripted:starter"', f["orket.lua"], 1, true)
    assert.truthy(f["script.lua"] and f["epics/start.json"])
  end)
end)
