-- End to end: a run's end packs workspace/.git once its loose objects pass git's gc.auto
-- estimate (objects/17 times 256 over 6,700), as git's own gc --auto would (libgit2 never
-- does): a {type="git", action="pack"} event says so, the loose objects are gone into a pack,
-- git fsck finds nothing wrong and the next run works on. Below the threshold nothing is
-- packed (no cost at a small project's run end).
local H = require "tests.helpers"
local cjson = require "cjson"

-- A project with epics A and B of one issue each, whose coder writes a file and hands in.
local function project()
  local dir = H.tmpdir()
  H.write(dir .. "/orket.lua", [[
name = "t"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
verify = { commands = { "sh" } }
]])
  H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "f/work.txt", content = "work\n" }),
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "done" } }
]])
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/workspace"))
  H.write(dir .. "/epics/a.json", [[{ "id": "A", "issues": [ { "id": "A-1", "summary": "a", "seat": "dev" } ] }]])
  H.write(dir .. "/epics/b.json", [[{ "id": "B", "issues": [ { "id": "B-1", "summary": "b", "seat": "dev" } ] }]])
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function run(dir, target)
  local r = H.orket("run " .. target .. " --json", { cwd = dir })
  assert.equal(0, r.status, r.stdout .. r.stderr)
  local packs, ended = {}, nil
  for line in r.stdout:gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and type(ev) == "table" then
      if ev.type == "git" and ev.action == "pack" then packs[#packs + 1] = ev end
      if ev.type == "run_end" then ended = ev.status end
    end
  end
  assert.equal("done", ended, r.stdout)
  return packs
end

-- git count-objects -v as a table
local function count(ws)
  local rc, out = H.sh("git -C " .. H.quote(ws) .. " count-objects -v")
  assert.equal(0, rc, out)
  local t = {}
  for k, v in out:gmatch("([%w-]+): (%d+)") do t[k] = tonumber(v) end
  return t
end

-- n loose objects added to ws's repository (unreachable blobs, as a card's turn leaves before
-- its commit): written as one pack by fast-import elsewhere, then exploded loose here
local function loose_blobs(ws, n)
  local tmp = H.tmpdir()
  local parts = {}
  for i = 1, n do
    local data = "blob " .. i .. "\n"
    parts[#parts + 1] = "blob\ndata " .. #data .. "\n" .. data .. "\n"
  end
  H.write(tmp .. "/stream", table.concat(parts))
  -- (a redirect is not globbed by sh: cat names the pack)
  local rc, out = H.sh("cd " .. H.quote(tmp) .. " && git init -q -b main x && git -C x fast-import --quiet < stream && "
    .. "cat x/.git/objects/pack/pack-*.pack | git -C " .. H.quote(ws) .. " unpack-objects -q")
  assert.equal(0, rc, out)
end

describe("packing workspace/.git at a run's end", function()
  after_each(H.cleanup)

  it("packs past git's gc.auto estimate and not below it", function()
    local dir = project()
    local ws = dir .. "/workspace"
    -- a small project: its run's end leaves the few loose objects alone
    assert.same({}, run(dir, "A"))
    local before = count(ws)
    assert.is_true(before.count > 0 and before.packs == 0)

    -- 10,000 objects put 37 in objects/17: an estimate of 9,472, past 6,700
    loose_blobs(ws, 10000)
    local grown = count(ws)
    assert.is_true(grown.count >= 10000)
    local packs = run(dir, "B")
    assert.equal(1, #packs, cjson.encode(packs))
    local p = packs[1]
    assert.equal("packed", p.outcome, cjson.encode(p))
    assert.is_true(p.removed >= 10000 and p.removed == p.loose and p.unread == 0, cjson.encode(p))
    local after = count(ws)
    assert.is_true(after.count < 100, cjson.encode(after)) -- only what the run's end wrote after the pack
    assert.equal(1, after.packs)
    assert.is_true(after["in-pack"] >= 10000)
    local rc, out = H.sh("git -C " .. H.quote(ws) .. " fsck --full --no-dangling")
    assert.equal(0, rc, out)
    -- main's files are there, and work goes on over the packed objects
    assert.equal("work\n", H.read(ws .. "/f/work.txt"))
    local st = H.orket("status", { cwd = dir })
    assert.equal(0, st.status, st.stdout .. st.stderr)
    local card = H.orket("card A-1", { cwd = dir })
    assert.equal(0, card.status, card.stderr)
  end)
end)
