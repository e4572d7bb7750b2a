-- An epic file whose path has a space (and other scripts' letters): orket validate and orket
-- import name it once, with the line of the field at fault, as they do a plain name.
local H = require "tests.helpers"

describe("an epic file whose path has a space", function()
  after_each(function() H.cleanup() end)

  it("is named once, with its line, by validate and by import", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init --yes .", { cwd = dir }).status)
    os.execute("mkdir -p " .. H.quote(dir .. "/epics/開発 チーム"))
    H.write(dir .. "/epics/開発 チーム/バック エンド.json",
      '{ "id": "DEV", "name": "d",\n  "issues": [ { "id": "DEV-1", "summary": "s",\n    "seat": "nosuch" } ] }\n')
    local seat = 'epics/開発 チーム/バック エンド.json:3: issues[0].seat: no seat "nosuch" in orket.lua\'s team'
    local v = H.orket("validate", { cwd = dir })
    assert.equal(1, v.status, v.stderr)
    assert.matches("\n" .. seat, "\n" .. v.stdout, 1, true)
    local i = H.orket("import", { cwd = dir })
    assert.equal(0, i.status, i.stderr)
    assert.matches("orket: warning: " .. seat, i.stderr, 1, true)

    os.execute("rm -r " .. H.quote(dir .. "/epics/開発 チーム"))
    H.write(dir .. "/epics/b c.json", '{ "id": "E2", "name": "d",\n "issues": [ { "id": "E2-1", "summary": "s",\n'
      .. ' "seet": "x" } ] }\n')
    local field = "epics/b c.json:3: issues[0].seet: unknown field"
    v = H.orket("validate", { cwd = dir })
    assert.equal(1, v.status, v.stderr)
    assert.matches("\n" .. field, "\n" .. v.stdout, 1, true)
    assert.not_matches("b c.json: epics/", v.stdout, 1, true)
    i = H.orket("import", { cwd = dir })
    assert.equal(1, i.status, i.stderr)
    assert.matches("orket: " .. field, i.stderr, 1, true)
  end)
end)
