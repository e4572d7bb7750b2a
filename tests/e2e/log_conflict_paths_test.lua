-- orket log's conflict lines name each path as a shell word: joined bare with ", ", one file
-- named `lit\nname, x.txt` (a backslash, an n, a comma) read as two files, and a name with a
-- newline (escaped \n by the line's rules) read as that same one.
local H = require "tests.helpers"
local project_mod = require "orket.project"

describe("orket log's conflict lines", function()
  after_each(H.cleanup)

  it("quote each path, so that one name never reads as two", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", 'name = "odd"\n')
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    H.write(dir .. "/epics/e.json", '{"id":"E","issues":[{"id":"E-1","summary":"a"}]}')
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local db = assert(project_mod.open_store(dir, false))
    local run = assert(db:record_run { target = "E", kind = "epic" })
    local paths = { "lit\\nname, x.txt", "new\nline.txt", "plain.txt" }
    assert(db:event { kind = "merge_conflict", card = "E-1", run = run, actor = "engine", data = { paths = paths } })
    assert(db:event { kind = "push_failed", run = run, actor = "engine", data = { paths = paths, error = "conflict" } })
    db:close()
    local r = H.orket("log " .. run, { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local want = [['lit\nname, x.txt', $'new\x0aline.txt', plain.txt]]
    assert.matches("** E-1 conflicts with main in: " .. want .. "; sent back to in_progress", r.stdout, 1, true)
    assert.matches("** main NOT pushed: the remote's main conflicts with it in: " .. want .. "; ", r.stdout, 1, true)
    -- the JSON keeps the names as they are
    assert.matches('"lit\\\\nname, x.txt"', H.orket("log " .. run .. " --json", { cwd = dir }).stdout, 1, true)
  end)
end)
