-- A file-size limit (ulimit -f, systemd LimitFSIZE=) reached by orket itself: a write past
-- it raised SIGXFSZ, whose default action killed orket run and orket backup with 153 and no
-- word. orket catches it (core/main.c): the write fails with EFBIG, said with the limit
-- named, as a full disk is (the run stops, resumable). What orket starts still gets the
-- signal's default action.
local H = require "tests.helpers"
local backends = require "tests.backends"

-- cmd run by a shell in dir with the limit set (in the shell's blocks: dash's are 512 bytes,
-- bash's 1024) -> status, output
local function limited(dir, kib, cmd)
  return H.sh(string.format("cd %s && ulimit -f %d && %s %s", H.quote(dir), kib, H.quote(H.BIN), cmd))
end

describe("a file-size limit", function()
  after_each(function() H.cleanup() end)

  it("fails orket backup and orket run with the limit named, never kills them", function()
    if backends.name() ~= "sqlite" then return pending("the store's own file: PostgreSQL keeps none in the project") end
    local tmp = H.tmpdir()
    assert.equal(0, H.orket("init proj --yes", { cwd = tmp }).status)
    local dir = tmp .. "/proj"
    local st, out = limited(dir, 200, "backup " .. H.quote(tmp .. "/b.db"))
    assert.equal(1, st, out)
    assert.matches("backup: the copy for " .. tmp .. "/b.db: ", out, 1, true)
    assert.matches("the process's file%-size limit of %d+ bytes, ulimit %-f or systemd LimitFSIZE=", out)
    st, out = limited(dir, 80, "run START")
    assert.equal(1, st, out)
    assert.matches('"type":"run_end"', out, 1, true)
    assert.matches("file%-size limit of %d+ bytes", out)
    assert.matches("'orket resume 1' carries on", out, 1, true)
    -- the limit raised, the run carries on
    local r = H.orket("resume 1", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("done", H.orket("runs", { cwd = dir }).stdout)
  end)

  it("leaves the default action to the processes orket starts", function()
    local tmp = H.tmpdir()
    H.write(tmp .. "/sig.lua", [[
local function bit25(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return (tonumber(s:match(field .. ":%s*(%x+)"), 16) >> 24) & 1
end
local p = io.popen("grep -E '^Sig(Ign|Cgt):' /proc/self/status")
local child = p:read("a")
p:close()
local ign = tonumber(child:match("SigIgn:%s*(%x+)"), 16)
io.stdout:write(string.format("caught=%d ignored=%d child_ignored=%d\n", bit25("SigCgt"), bit25("SigIgn"),
  (ign >> 24) & 1))
]])
    local r = H.orket("lua " .. H.quote(tmp .. "/sig.lua"))
    assert.equal(0, r.status, r.stderr)
    assert.equal("caught=1 ignored=0 child_ignored=0\n", r.stdout)
    -- started with it ignored, orket leaves it so, and its children get it ignored as given
    local st, out = H.sh(string.format("trap '' XFSZ; %s lua %s", H.quote(H.BIN), H.quote(tmp .. "/sig.lua")))
    assert.equal(0, st, out)
    assert.equal("caught=0 ignored=1 child_ignored=1\n", out)
  end)
end)
