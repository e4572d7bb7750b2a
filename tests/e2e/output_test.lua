-- End-to-end: how orket log, runs and card read: the provider of each model step,
-- continuation lines indented under their item, a header over the runs, violations
-- without JSON's "\/" escapes. The notes example with its scripted model.
local H = require "tests.helpers"
local cjson = require "cjson"

describe("orket log, runs and card read well", function()
  after_each(H.cleanup)

  it("orket log names each step's provider and indents continuation lines", function()
    local dir = H.example("notes")
    assert.equal(0, H.orket("run NOTES --json", { cwd = dir }).status)
    local log = H.orket("log 1", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    -- the scripted provider ("scripted:team" in orket.lua) answered as model "team", its
    -- counts estimated from the request (it sends none)
    assert.matches("\n%-%- step 1, model team, provider scripted, %d+%+%d+ tokens %(estimated%)\n", log.stdout)
    -- the brief is several lines: the lines after the first stay under its [user] item
    assert.matches("\n   %[user%] Issue NOTES%-1: Design the notes schema\n\n      Acceptance criteria:\n"
      .. "      schema.sql creates the notes table\n", log.stdout)
    -- a written file's content, as the call's argument, stays JSON on one line
    assert.matches('\n   %[call%] write_file {[^\n]*"CREATE TABLE notes', log.stdout)
    -- the sums say so too: the run's usage line, the card's model line, their JSON
    assert.matches("\nusage: %d+ calls?, %d+ prompt tokens, %d+ output tokens %(estimated%)", log.stdout)
    local card = H.orket("card NOTES-1", { cwd = dir })
    assert.matches("\nmodel: +%d+ calls?, %d+ prompt tokens, %d+ output tokens %(estimated%)", card.stdout)
    local doc = cjson.decode(H.orket("card NOTES-1 --json", { cwd = dir }).stdout)
    assert.is_true(doc.usage.calls > 0)
    assert.equal(doc.usage.calls, doc.usage.estimated)
  end)

  it("orket runs has a header naming its columns", function()
    local dir = H.example("notes")
    assert.equal(0, H.orket("run NOTES --json", { cwd = dir }).status)
    local runs = H.orket("runs", { cwd = dir })
    assert.equal(0, runs.status, runs.stderr)
    local head, row = runs.stdout:match("^([^\n]*)\n([^\n]*)\n$")
    assert.matches("^%s*RUN%s+STATE%s+TARGET%s+KIND%s+STEPS%s+TOKENS%s+STARTED%s+COST$", head)
    assert.matches("^%s+1%s+done%s+NOTES%s+epic%s+%d+%s+%d+%s+%d%d%d%d%-", row)
    -- the columns line up: each heading ends where its numbers end
    assert.equal(head:find("STEPS") + 4, select(2, row:find("^%s+1%s+done%s+NOTES%s+epic%s+%d+")))
  end)

  it("orket card shows a violation's arguments without JSON's \\/ escapes", function()
    local dir = H.example("notes")
    local r = H.orket([[lua -e "local db = assert(require('orket.store').open('.orket/orket.db'))
      assert(db:record_violation{card='NOTES-1', seat='lead_architect', rule='PATH_ESCAPE',
        attempt=require('cjson').encode({path='src/../../x'}), detail='path escapes root',
        remedy='Name files relative to the workspace root.'}) db:close()"]], { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local text = H.orket("card NOTES-1", { cwd = dir })
    assert.equal(0, text.status, text.stderr)
    assert.matches('lead_architect PATH_ESCAPE: {"path":"src/../../x"}\n', text.stdout, 1, true)
    local doc = H.orket("card NOTES-1 --json", { cwd = dir }).stdout
    assert.is_nil(doc:find("\\/", 1, true))
    assert.equal('{"path":"src/../../x"}', cjson.decode(doc).violations[1].attempt)
  end)

  it("make run's script shows the run and ends with a transcript command that works", function()
    local tmp = H.tmpdir()
    -- orket is not on PATH: the command printed must not need it
    local p = io.popen(string.format("cd %s && env PATH=/usr/bin:/bin TMPDIR=%s sh examples/notes/run.sh %s </dev/null 2>&1; echo \"exit $?\"",
      H.quote(H.ROOT), H.quote(tmp), H.quote(H.BIN)))
    local out = p:read("a")
    p:close()
    assert.matches("\nexit 0\n$", out)
    -- the run is shown (off a terminal, as its events), not sent to /dev/null
    assert.matches('{"run_id":1,"status":"done","tokens":%d+,"type":"run_end"}', out)
    assert.matches("\n  NOTES%-4 %s+done", out)
    local cmd = out:match("\ntranscript:\n  ([^\n]+)\nexit 0\n$")
    assert.is_not_nil(cmd, out)
    local q = io.popen("cd / && env PATH=/usr/bin:/bin " .. cmd .. " 2>&1; echo \"exit $?\"")
    local log = q:read("a")
    q:close()
    assert.matches("^run 1: epic NOTES, done, started ", log)
    assert.matches("\nexit 0\n$", log)
  end)
end)
