-- `orket resume --json` that does not start says why on stdout too, as `orket run --json`
-- does ({"type":"error","code","message","next","exit"}): before, a project that did not load
-- (or no board, or a store it may not write) was said on stderr only, and a CI step that
-- reads stdout got nothing. And after a restore of an older backup, whose only run is the
-- row that keeps a dropped run's id, the refusal names that row and `orket run TARGET`
-- (which works the cards again), where it said "every run is done".
local H = require "tests.helpers"
local cjson = require "cjson"

-- r refused with exit status and code: one JSON line on stdout, the message on stderr too
local function refused(r, status, code)
  assert.equal(status, r.status, r.stderr)
  local line = r.stdout:match("^([^\n]+)\n$")
  assert.truthy(line, "one line on stdout: " .. r.stdout)
  local ev = cjson.decode(line)
  assert.equal("error", ev.type)
  assert.equal(code, ev.code)
  assert.equal(status, ev.exit)
  assert.equal("orket: " .. ev.message .. "\n", r.stderr)
  return ev
end

describe("orket resume --json that does not start", function()
  after_each(H.cleanup)

  it("prints the error line when the project does not load or has no board", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "return {\n")
    for _, words in ipairs { "resume --json", "resume 1 --json" } do
      local ev = refused(H.orket(words .. " -C " .. H.quote(dir)), 1, "ESYNTAX")
      assert.matches("orket.lua:%d+: ", ev.message)
      assert.equal("string", type(ev.next))
    end
    -- the same line as run's, code and next included
    local run = refused(H.orket("run START --json -C " .. H.quote(dir)), 1, "ESYNTAX")
    assert.equal(run.next, refused(H.orket("resume --json -C " .. H.quote(dir)), 1, "ESYNTAX").next)
    local empty = H.tmpdir()
    local ev = refused(H.orket("resume --json -C " .. H.quote(empty)), 1, "ENOENT")
    assert.matches("no board in ", ev.message, 1, true)
  end)

  it("names the restore's row and orket run after a restore of an older backup", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    local file = H.tmpdir() .. "/before-run.backup"
    H.ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    H.ok(H.orket("run START --json", { cwd = dir }), "run")
    H.ok(H.orket("restore " .. H.quote(file), { cwd = dir }), "restore")
    local ev = refused(H.orket("resume --json", { cwd = dir }), 1, "EALREADY")
    assert.matches("no run to resume: run 1 never ran in this store (its row keeps an id the store replaced by the "
      .. "restore of " .. file .. " gave out), and no other run is unfinished; 'orket run START' works its cards again",
      ev.message, 1, true)
    assert.not_matches("every run is done", ev.message, 1, true)
    assert.equal("orket run START", ev.next)
    -- from another folder, the command names the project
    ev = refused(H.orket("resume --json -C " .. H.quote(dir)), 1, "EALREADY")
    assert.equal("orket run START -C " .. dir, ev.next)
    -- which it does; once a run came after the restore, the run meant is that one
    H.ok(H.orket("run START --json", { cwd = dir }), "run after the restore")
    ev = refused(H.orket("resume --json", { cwd = dir }), 1, "EALREADY")
    assert.matches("^no run to resume %(every run is done%)", ev.message)
  end)
end)
