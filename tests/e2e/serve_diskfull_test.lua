-- orket serve on a disk that fills up (docs/serve.md): a run the full disk stopped is not
-- "running" and its resume here is not refused by the server's own run lease (it was, as
-- "another folder's run", until the lease lapsed 15 s later); /ready is 503 naming the
-- disk and its free space (its probe needs no page, and said ready while every write
-- failed); a write the full disk refused is 507 ENOSPC, not 409 Conflict; the first run of
-- a server whose .orket/runs/ the full disk keeps from being made is refused ENOSPC naming
-- it, not "cannot open lock file ...: No such file or directory". Needs a small tmpfs of its
-- own (root, or a user namespace that allows a mount): without one the test is skipped,
-- saying why.
local H = require "tests.helpers"
local cjson = require "cjson"

local wait_for = H.wait_for
local call = H.api

-- The scripted team: A-1's coder answers after delay ms (the disk fills meanwhile), writes
-- A-1.txt and hands in; the reviewer approves.
local function script(delay)
  return [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "A-1", match = "^Issue ", reply = { delay_ms = ]] .. delay .. [[,
    tool_calls = { call("write_file", { path = "A-1.txt", content = "A-1\n" }) } } },
  { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]
end

-- disk(o) -> root of a tmpfs of its own (o.size, o.inodes), unmounted at the test's end | nil, why
local function disk(o)
  local root = H.tmpdir() .. "/disk"
  assert(os.execute("mkdir -p " .. H.quote(root)))
  local st, out = H.sh(string.format("mount -t tmpfs -o size=%s%s orket-full %s", o.size,
    o.inodes and (",nr_inodes=" .. o.inodes) or "", H.quote(root)))
  if st ~= 0 then return nil, "no tmpfs could be mounted here (" .. out:gsub("%s+$", "") .. ")" end
  finally(function()
    H.kill_servers()
    H.sh("umount -l " .. H.quote(root))
  end)
  return root
end

-- A project on root: epic A with issue A-1, imported, and an operator's key
local function project(root, delay)
  local dir = root .. "/p"
  for _, d in ipairs { "epics", "workspace", "policies" } do assert(os.execute("mkdir -p " .. H.quote(dir .. "/" .. d))) end
  H.write(dir .. "/orket.lua", [[
name = "full"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
  H.write(dir .. "/script.lua", script(delay))
  H.write(dir .. "/epics/a.json", [[
{ "id": "A", "name": "Epic A", "issues": [ { "id": "A-1", "summary": "Write A-1.txt", "seat": "senior_developer" } ] }
]])
  H.ok(H.orket("import", { cwd = dir }), "import")
  return dir, H.api_key(dir, "ops", "operator")
end

-- every block of root taken (and, with inodes, every inode: no file or folder made)
local function fill(root, inodes)
  H.sh("dd if=/dev/zero of=" .. H.quote(root .. "/fill") .. " bs=4k 2>/dev/null")
  for i = 1, inodes and 100000 or 0 do
    local f = io.open(root .. "/fill" .. i, "w")
    if not f then break end
    f:close()
  end
end

local function free(root) H.sh("rm -f " .. H.quote(root) .. "/fill*") end

describe("orket serve on a full disk", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("says a run the full disk stopped is not going, resumes it at once when space is freed, and is not ready meanwhile", function()
    if require("tests.backends").name() ~= "sqlite" then return pending("a SQLite store's disk: PostgreSQL keeps none here") end
    local root, why = disk { size = "32m" }
    if not root then return pending(why) end
    local dir, op = project(root, 1500)
    local s = H.serve(dir)
    assert.equal(200, (call(s, "GET", "/ready")))
    local st, doc = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(201, st, cjson.encode(doc))
    local id = math.tointeger(doc.run.id)
    -- the disk fills while the coder's model thinks: the run's next write fails, and it stops
    fill(root)
    wait_for(function() return s.log():find("run " .. id .. " stopped: the store failed", 1, true) end,
      "the run to stop on the full disk", 3000)
    -- not ready, saying why: the store's disk and its free space
    local rst, ready = call(s, "GET", "/ready")
    assert.equal(503, rst)
    assert.matches("the disk that holds the store %(%.orket/orket%.db%) has %d+ KiB free, less than the 8 MiB its "
      .. "writes need", table.concat(ready.problems, "\n"))
    -- a write the full disk refuses: 507, its body as it was (ENOSPC, free space)
    local cst, cdoc = call(s, "POST", "/v1/cards/A-1/comments", op, { body = "on a full disk" })
    assert.equal(507, cst, cjson.encode(cdoc))
    assert.equal("ENOSPC", cdoc.error.code)
    assert.matches("free space", cdoc.error.remedy, 1, true)
    -- the stopped run is not going: no server executes it (its row could not be written)
    local gst, run = call(s, "GET", "/v1/runs/" .. id, op)
    assert.equal(200, gst)
    assert.is_false(run.run.live)
    assert.are_not.equal("running", run.run.state)
    -- its resume on the full disk fails for the disk, never for this server's own lease
    local fst, fdoc = call(s, "POST", "/v1/runs/" .. id .. "/resume", op)
    assert.equal(507, fst, cjson.encode(fdoc))
    assert.equal("ENOSPC", fdoc.error.code)
    assert.is_nil(fdoc.error.message:find("another folder", 1, true), fdoc.error.message)
    assert.is_nil(fdoc.error.message:find("run lease", 1, true), fdoc.error.message)
    -- space freed: resumed at once, and worked to done
    free(root)
    st, doc = call(s, "POST", "/v1/runs/" .. id .. "/resume", op)
    assert.equal(202, st, cjson.encode(doc))
    wait_for(function()
      local _, r = call(s, "GET", "/v1/runs/" .. id, op)
      return r.run.state == "done"
    end, "the resumed run to end done", 3000)
    assert.equal(200, (call(s, "GET", "/ready")))
    assert.equal(0, s.stop())
  end)

  it("refuses a first run whose .orket/runs the full disk cannot make with ENOSPC naming it", function()
    if require("tests.backends").name() ~= "sqlite" then return pending("a SQLite store's disk: PostgreSQL keeps none here") end
    local root, why = disk { size = "32m", inodes = 4096 }
    if not root then return pending(why) end
    -- a fresh `orket init` project (its workspace a repository already), never run
    H.ok(H.orket("init p --yes", { cwd = root }), "init")
    local dir = root .. "/p"
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    -- (the claim section's lock file is there, as on a disk full of blocks whose folder still
    -- had room for its name: the runs' folder is the first thing the full disk refuses)
    local f = assert(io.open(dir .. "/.orket/claim.lock", "w"))
    f:close()
    assert.is_nil(io.open(dir .. "/.orket/runs"))
    fill(root, true)
    local st, doc = call(s, "POST", "/v1/runs", op, { target = "START" })
    assert.equal(507, st, cjson.encode(doc))
    assert.equal("ENOSPC", doc.error.code)
    assert.matches("cannot make .orket/runs, the folder of the runs' locks: no space left on device; free space",
      doc.error.message, 1, true)
    free(root)
    st, doc = call(s, "POST", "/v1/runs", op, { target = "START" })
    assert.equal(201, st, cjson.encode(doc))
    assert.equal(0, s.stop())
  end)
end)
