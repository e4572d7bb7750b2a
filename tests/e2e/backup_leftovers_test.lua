-- An encrypted backup or restore works on an unencrypted copy of the store in
-- .orket/sealed-*/: a SIGINT or SIGTERM removes it before the process ends, and copies left
-- by processes stopped harder are removed by the next backup or restore, never a live one's.
local H = require "tests.helpers"
local backends = require "tests.backends"

local PASS = { BACKUP_PASS = "correct horse battery staple" }

local function sealed_dirs(dir)
  local p = io.popen("ls -A " .. H.quote(dir .. "/.orket") .. " | grep '^sealed-' | sort")
  local out = p:read("a")
  p:close()
  return out
end

-- (a PostgreSQL store's copy is an export, whose stop backup_test tests)
local SQLITE_ONLY = "a SQLite store grown in place, whose copy takes a while"

-- grows dir's SQLite store in place (60 MB of events), so that copying it takes a while
local function fill(dir, tmp)
  H.write(tmp .. "/fill.lua", [[
local db = assert(require("orket.store").open(".orket/orket.db"))
assert(db:tx(function()
  for i = 1, 60000 do db:event { kind = "note", actor = "test", data = { i = i, pad = string.rep("x", 1000) } } end
  return true
end))
db:close()
]])
  H.ok(H.orket("lua " .. H.quote(tmp .. "/fill.lua"), { cwd = dir }), "fill")
end

describe("the unencrypted copies of encrypted backups and restores", function()
  after_each(function() H.cleanup() end)

  it("of processes that are gone are removed by the next backup and restore", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local home = dir .. "/.orket"
    -- a killed backup's (its lock file nobody holds), and one a live process holds
    os.execute(string.format("mkdir -p %s/sealed-dead1 %s/sealed-live1 && : >%s/sealed-dead1/owner.lock "
      .. "&& echo secret >%s/sealed-dead1/plain", H.quote(home), H.quote(home), H.quote(home), H.quote(home)))
    H.write(tmp .. "/hold.lua", string.format([[
local lock = assert(require("orket.c.lockfile").acquire(%q))
io.open(%q, "w"):close()
orket.sleep(20000)
lock:release()
]], home .. "/sealed-live1/owner.lock", tmp .. "/held"))
    os.execute(string.format("%s lua %s >/dev/null 2>&1 & echo $! >%s/hold.pid", H.quote(H.BIN),
      H.quote(tmp .. "/hold.lua"), H.quote(tmp)))
    finally(function() os.execute("kill " .. H.read(tmp .. "/hold.pid"):match("%d+") .. " 2>/dev/null") end)
    H.wait_for(function() return io.open(tmp .. "/held") end, "the holder")
    local file = tmp .. "/b.enc"
    H.ok(H.orket("backup " .. H.quote(file) .. " --encrypt --passphrase-env BACKUP_PASS", { cwd = dir, env = PASS }), "backup")
    assert.equal("sealed-live1\n", sealed_dirs(dir))
    os.execute(string.format("mkdir -p %s/sealed-dead2 && : >%s/sealed-dead2/owner.lock", H.quote(home), H.quote(home)))
    H.ok(H.orket("restore " .. H.quote(file) .. " --passphrase-env BACKUP_PASS", { cwd = dir, env = PASS }), "restore")
    assert.equal("sealed-live1\n", sealed_dirs(dir))
  end)

  -- A backup killed (kill -9) left FILE.part-PID and its -journal beside FILE for good, a whole
  -- copy of the store each, and later backups to FILE never removed them
  it("beside FILE, of backups that are gone, are removed by the next backup to FILE, never a live one's", function()
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    local file = tmp .. "/b.bak"
    -- a pid no process can have (past the kernel's limit), and a live one's (pid 1, always there)
    for _, name in ipairs { "b.bak.part-4194305", "b.bak.part-4194305-journal", "b.bak.part-1", "other.part-4194305" } do
      H.write(tmp .. "/" .. name, "copy")
    end
    H.ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local p = io.popen("ls -A " .. H.quote(tmp) .. " | sort")
    local left = p:read("a")
    p:close()
    assert.equal("b.bak\nb.bak.part-1\nother.part-4194305\n", left)
    H.ok(H.orket("backup " .. H.quote(tmp .. "/b.enc") .. " --encrypt --passphrase-env BACKUP_PASS", { cwd = dir, env = PASS }),
      "an encrypted backup")
  end)

  for _, sig in ipairs { { "INT", 130 }, { "TERM", 143 }, { "HUP", 129 } } do
    it("are removed when SIG" .. sig[1] .. " stops a backup or a restore while it makes one", function()
      -- a store big enough that the copy takes a while (a SQLite file grown in place)
      if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
      local dir = H.example("webapp")
      local tmp = H.tmpdir()
      fill(dir, tmp)
      local good = tmp .. "/good.enc"
      H.ok(H.orket("backup " .. H.quote(good) .. " --encrypt --passphrase-env BACKUP_PASS", { cwd = dir, env = PASS }), "backup")
      -- stopped as soon as its copy appears
      local function stopped(args)
        -- (env --default-signal=HUP: SIGHUP as a terminal's command has it, not ignored as
        -- under nohup, which it then stays)
        local rc, out = H.sh(string.format("cd %s || exit 1; BACKUP_PASS=%s env --default-signal=HUP %s %s 2>%s/err & P=$!; "
          .. "i=0; while ! ls .orket/sealed-*/plain* >/dev/null 2>&1 && [ $i -lt 3000 ]; do i=$((i+1)); done; "
          .. "kill -%s $P; wait $P",
          H.quote(dir), H.quote(PASS.BACKUP_PASS), H.quote(H.BIN), args, H.quote(tmp), sig[1]))
        return rc, out .. (H.read(tmp .. "/err") or "")
      end
      local rc, out = stopped("backup " .. H.quote(tmp .. "/b.enc") .. " --encrypt --passphrase-env BACKUP_PASS")
      assert.equal(sig[2], rc, out)
      assert.matches("stopped by SIG" .. sig[1] .. "; nothing was written", out, 1, true)
      assert.equal("", sealed_dirs(dir))
      assert.is_nil(io.open(tmp .. "/b.enc"))
      rc, out = stopped("restore " .. H.quote(good) .. " --passphrase-env BACKUP_PASS")
      assert.equal(sig[2], rc, out)
      assert.matches("stopped by SIG" .. sig[1] .. " (the store was not changed)", out, 1, true)
      assert.equal("", sealed_dirs(dir))
    end)

    -- a plain backup's copy, FILE.part-PID and its journal beside FILE, was left there by a
    -- Ctrl-C (tens of megabytes no one removed); a signal then neither replaces FILE (as an
    -- encrypted backup does not write it) nor is silent until the copy ends
    it("leaves FILE as it was and no copy beside it when SIG" .. sig[1] .. " stops a plain backup", function()
      if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
      local dir = H.example("webapp")
      local tmp = H.tmpdir()
      local file = tmp .. "/out/b.db"
      os.execute("mkdir " .. H.quote(tmp .. "/out"))
      H.ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "the backup there before")
      local before = H.read(file)
      fill(dir, tmp)
      -- (env --default-signal: SIGINT and SIGHUP as a command in a terminal has them, not
      -- ignored as a script's job in the background or under nohup would have them)
      local rc, out = H.sh(string.format("cd %s || exit 1; env --default-signal=INT,HUP %s backup %s 2>%s/err & P=$!; "
        .. "i=0; while ! ls %s/b.db.part-* >/dev/null 2>&1 && [ $i -lt 3000 ]; do i=$((i+1)); done; "
        .. "kill -%s $P; wait $P", H.quote(dir), H.quote(H.BIN), H.quote(file), H.quote(tmp), H.quote(tmp .. "/out"),
        sig[1]))
      out = out .. (H.read(tmp .. "/err") or "")
      assert.equal(sig[2], rc, out)
      assert.matches("backup: SIG" .. sig[1] .. ": stopping; " .. file .. " will not be changed", out, 1, true)
      assert.matches("stopped by SIG" .. sig[1] .. "; " .. file .. " was not changed", out, 1, true)
      local p = io.popen("ls -A " .. H.quote(tmp .. "/out"))
      assert.equal("b.db\n", p:read("a"))
      p:close()
      assert.equal(before, H.read(file))
    end)
  end

  -- a second signal does not wait for the backup to finish removing its copy and saying so
  -- (sent a moment after the first: two sent at once may reach the process as one)
  it("ends at once at a second SIGINT, its copy removed", function()
    if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
    local dir = H.example("webapp")
    local tmp = H.tmpdir()
    fill(dir, tmp)
    for _, how in ipairs { "", " --encrypt --passphrase-env BACKUP_PASS" } do
      local file = tmp .. "/out/b" .. #how
      os.execute("mkdir -p " .. H.quote(tmp .. "/out"))
      local rc, out = H.sh(string.format("cd %s || exit 1; BACKUP_PASS=%s env --default-signal=INT %s backup %s%s 2>%s/err & "
        .. "P=$!; i=0; while ! { ls %s/b*.part-* || ls .orket/sealed-*/plain*; } >/dev/null 2>&1 && [ $i -lt 3000 ]; do i=$((i+1)); "
        .. "done; kill -INT $P; sleep 0.05; kill -INT $P; wait $P", H.quote(dir), H.quote(PASS.BACKUP_PASS), H.quote(H.BIN),
        H.quote(file), how, H.quote(tmp), H.quote(tmp .. "/out")))
      out = out .. (H.read(tmp .. "/err") or "")
      assert.equal(130, rc, out)
      assert.matches("backup: SIGINT: stopping; " .. file .. " will not be changed", out, 1, true)
      assert.not_matches("stopped by", out, 1, true) -- ended before saying it at the end
      local p = io.popen("ls -A " .. H.quote(tmp .. "/out"))
      assert.equal("", p:read("a"))
      p:close()
      assert.equal("", sealed_dirs(dir))
    end
  end)
end)
