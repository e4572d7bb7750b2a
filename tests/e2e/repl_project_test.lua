-- orket repl inside a project, driven through a pipe (`project` and its helpers), and orket
-- run picking up a role edited on disk while it runs (a real fs event).
local H = require "tests.helpers"

describe("orket repl in a project", function()
  after_each(H.cleanup)

  it("has the project at hand: messages, one turn, replay, reload", function()
    local dir = H.example("notes")
    local r = H.orket("repl", { cwd = dir, stdin = table.concat({
      'm, info = project:messages("NOTES-1")',
      'print("MSG", #m, info.seat, info.role, info.phase, m[2].content:match("^[^\\n]*"))',
      'r = project:turn("NOTES-1")',
      'print("TURN", r.run, r.outcome, r.status)',
      'x = project:replay(1)',
      'print("REPLAY", x.status, x.calls, x.recorded, #x.missing)',
      'print("RELOAD", project:reload())',
      'print("BOARD", project.board:get("NOTES-1").status, #project.tools.names > 0, type(project.gate))',
      '',
    }, "\n") })
    assert.equal(0, r.status, r.stderr)
    assert.matches("MSG\t2\tlead_architect\tarchitect\twork\tIssue NOTES%-1: Design the notes schema\n", r.stdout)
    assert.matches("TURN\t1\thanded_in\tcode_review\n", r.stdout)
    -- The recording holds the work turn only; the replay's review turn has no answer.
    assert.matches("REPLAY\tfailed\t3\t2\t1\n", r.stdout)
    assert.matches("RELOAD\ttrue\n", r.stdout)
    assert.matches("BOARD\tcode_review\ttrue\tfunction\n", r.stdout)
    local runs = H.orket("runs", { cwd = dir })
    assert.matches("1  stopped", runs.stdout)
  end)

  it("lists the project's helpers under help, from their contract comments", function()
    local dir = H.example("notes")
    local r = H.orket("repl", { cwd = dir, stdin = "help\nhelp(project.replay)\nhelp(project.board)\n" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("\nproject: the project of this folder[^\n]*scripts\n", r.stdout) -- opened: no "(not opened here)"
    for _, m in ipairs { "messages", "turn", "replay", "approvals", "reload" } do
      assert.matches("\n  project:" .. m .. "%(", r.stdout)
    end
    assert.matches("\n> project:replay%(run_id.-\nprovider from the recorded run", r.stdout)
    assert.matches("\n> project.board: the board", r.stdout)
  end)

  it("works outside a project, and says why a project could not be opened", function()
    local r = H.orket("repl", { cwd = H.tmpdir(), stdin = "print(project)\n" })
    assert.equal(0, r.status)
    assert.matches("\nnil\n", "\n" .. r.stdout:gsub("^[^\n]*\n> ", ""))
    local dir = H.example("notes", { import = false })
    r = H.orket("repl", { cwd = dir, stdin = "print(project)\n" })
    assert.equal(0, r.status)
    assert.matches("orket: project not opened %(the prompt works without it%): .*orket import", r.stderr)
    assert.equal(2, H.orket("repl extra", { cwd = dir }).status)
    assert.equal(1, H.orket("repl -C " .. H.quote(H.tmpdir()), {}).status)
  end)
end)

describe("orket run with hot reload", function()
  after_each(H.cleanup)

  it("picks up a role edited during the run from the next turn on", function()
    local dir = H.example("notes", { import = false })
    os.execute("mkdir " .. H.quote(dir .. "/roles"))
    -- The architect's answer takes 1.5 s, so the edit lands while NOTES-1 is in flight.
    local script = H.read(dir .. "/script.lua")
    script = script:gsub('(card = "NOTES%-1", match = "%^Issue ", reply = {)', "%1 delay_ms = 1500,", 1)
    H.write(dir .. "/script.lua", script)
    H.write(dir .. "/coder.new", [[return {
  intent = "Implement the issue (edited during the run).",
  tools = { "write_file", "add_issue_comment", "update_issue_status" },
  system = "EDITED-CODER: implement the issue, then hand it in.",
}
]])
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    -- The edit waits for the run's first turn (not a fixed delay, which a loaded machine
    -- can outlast before the run watches its files); bounded at 20 s.
    local p = io.popen(string.format("cd %s || exit 1; (i=0; while [ $i -lt 400 ] && ! grep -q '\"turn_start\"' run.jsonl 2>/dev/null; do sleep 0.05; i=$((i+1)); done; "
      .. "cp coder.new roles/coder.lua.tmp && mv roles/coder.lua.tmp roles/coder.lua) & %s run NOTES --json >run.jsonl 2>&1; echo \"exit $?\"; wait",
      H.quote(dir), H.quote(H.BIN)))
    local status = p:read("a")
    p:close()
    local out = H.read(dir .. "/run.jsonl") .. status
    assert.matches("exit 0\n$", out)
    local reloads = {}
    for line in out:gmatch("[^\n]+") do
      local ev = require("cjson").decode(line:match("^{.*}$") or "null")
      if type(ev) == "table" and ev.type == "reload" then reloads[#reloads + 1] = ev end
    end
    assert.equal(1, #reloads)
    assert.same({ "roles/coder.lua" }, reloads[1].files)
    local log = H.orket("log 1 --full", { cwd = dir })
    assert.matches("%*%* scripts reloaded: roles/coder.lua", log.stdout)
    -- Every coder turn came after the edit (NOTES-2.. wait for NOTES-1): all use the new role.
    assert.matches("EDITED%-CODER", log.stdout)
    assert.is_nil(log.stdout:find("careful software developer", 1, true))
  end)
end)
