-- orket run end to end on the notes example with the scripted model: the epic to done, the
-- transcript, exit codes, and kill -9 at every named fault point followed by 'orket resume'
-- ending with exactly the board of an uninterrupted run.
local H = require "tests.helpers"
local cjson = require "cjson"

local function project()
  local dir = H.tmpdir()
  os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- Statuses, retries and comment bodies of every card: what "the same board" means.
local function state(dir)
  local doc = cjson.decode(H.orket("board --json", { cwd = dir }).stdout)
  local out = {}
  for _, c in ipairs(doc.cards) do
    local card = cjson.decode(H.orket("card " .. c.id .. " --json", { cwd = dir }).stdout)
    local bodies = {}
    for _, k in ipairs(card.comments) do bodies[#bodies + 1] = k.author .. ": " .. k.body end
    out[#out + 1] = string.format("%s %s r%d {%s}", c.id, c.status, c.retries, table.concat(bodies, " | "))
  end
  return table.concat(out, "\n")
end

describe("orket run", function()
  after_each(H.cleanup)

  it("finishes the example epic, and orket log and orket runs tell the story", function()
    local dir = project()
    local r = H.orket("run NOTES", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local last = cjson.decode(r.stdout:match("([^\n]+)\n$"))
    assert.equal("run_end", last.type)
    assert.equal("done", last.status)
    assert.matches("NOTES%-2 done r1 {senior_developer: Wrote store.lua. | integrity_guard: store.lua does not reject", state(dir))
    local log = H.orket("log 1", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    assert.matches("== NOTES%-2 turn 2: integrity_guard as integrity_guard %(review%)", log.stdout)
    assert.matches("%[call%] update_issue_status", log.stdout)
    assert.matches("NOTES%-2%s+code_review %-> in_progress by integrity_guard", log.stdout)
    local runs = H.orket("runs", { cwd = dir })
    assert.matches("^%s+1  done", runs.stdout)
    assert.equal(2, H.orket("run", { cwd = dir }).status)
    local bad = H.orket("run NOPE", { cwd = dir })
    assert.equal(1, bad.status)
    assert.matches("NOPE", bad.stderr)
  end)

  it("resumes after kill -9 at every fault point with the uninterrupted run's board", function()
    local ref = project()
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    local want = state(ref)
    for _, point in ipairs { "before_model", "after_model", "before_tool", "after_tool", "turn_end" } do
      for _, n in ipairs { 1, 4, 9 } do
        local dir = project()
        local r = H.orket("run NOTES", { cwd = dir, env = { ORKET_FAULT = point .. ":" .. n } })
        assert.equal(137, r.status, point .. ":" .. n .. " was not killed: " .. r.stderr)
        local tries = 0
        repeat
          r = H.orket("resume", { cwd = dir })
          tries = tries + 1
        until r.status ~= 130 or tries > 3
        assert.equal(0, r.status, point .. ":" .. n .. ": " .. r.stderr)
        assert.equal(want, state(dir), point .. ":" .. n)
      end
    end
  end)

  it("resumes after kill -9 at random moments with the uninterrupted run's board", function()
    local uv = require "luv"
    local ref = project()
    local t0 = uv.hrtime()
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    local span_ms = math.max(20, (uv.hrtime() - t0) // 1000000)
    local want = state(ref)
    local killed, resumed = 0, 0
    for seed = 1, 12 do
      math.randomseed(seed)
      local delay_ms = math.random(span_ms // 4, span_ms)
      local dir = project()
      local sh = string.format("cd %s && { %s run NOTES --json >out.jsonl 2>err.txt & pid=$!; sleep %.3f; "
        .. "kill -9 $pid 2>/dev/null; wait $pid; echo $?; }", H.quote(dir), H.quote(H.BIN), delay_ms / 1000)
      local p = io.popen(sh)
      local status = tonumber(p:read("a"):match("(%d+)%s*$"))
      p:close()
      if status == 137 then killed = killed + 1 end
      local tries, r = 0, nil
      repeat
        r = H.orket("resume", { cwd = dir })
        tries = tries + 1
      until r.status ~= 130 or tries > 3
      local why = string.format("seed %d, killed after %d ms (exit %s)", seed, delay_ms, tostring(status))
      if status ~= 0 and r.stderr:find("no run to resume", 1, true) then
        -- killed while starting, before the run was recorded: nothing happened yet
        r = H.orket("run NOTES", { cwd = dir })
      elseif status ~= 0 then
        resumed = resumed + 1
      end
      if status == 0 then
        assert.equal(1, r.status, why) -- the run had finished: nothing to resume
      else
        assert.equal(0, r.status, why .. ": " .. r.stderr)
      end
      assert.equal(want, state(dir), why)
    end
    assert.is_true(killed >= 4, "only " .. killed .. " of 12 runs were killed before they finished")
    assert.is_true(resumed >= 2, "only " .. resumed .. " of 12 kills happened during a recorded run")
  end)
end)
