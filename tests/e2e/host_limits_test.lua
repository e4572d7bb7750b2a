-- A locked-down host's limits met by orket itself, each said with its cause and what to do:
-- - libuv's thread pool that cannot be made (a low ulimit -v or -u): libuv aborted, every
--   command ended with 134 and no word (core/runtime.c makes the same threads first);
-- - a low ulimit -n met as a run settles its repository: a raw traceback, a run left killed
--   with no step, and a warning that every epic file was "(removed)" (its folder could not
--   be listed; lua/orket/engine/run.lua, lua/orket/import.lua);
-- - a project whose path is too long for SQLite: its bare "unable to open database file"
--   (core/store.c).
local H = require "tests.helpers"
local backends = require "tests.backends"
local cjson = require "cjson"

local function is_root() return io.popen("id -u"):read("l") == "0" end

-- `orket version` under the shell's limits (ulimit words) and env -> status, output
local function version(limits, env)
  return H.sh(string.format("%s && env %s %s version", limits, env or "", H.quote(H.BIN)))
end

describe("a host's limits", function()
  after_each(function() H.cleanup() end)

  it("says which limit keeps the thread pool from starting, never aborting", function()
    if H.sanitized() then return pending("a sanitizer's shadow memory fits no ulimit -v") end
    -- libuv 1.44 sizes a pool thread's stack by ulimit -s, later ones at 8 MiB: 8 MiB either way
    local function under(kib, env) return version("ulimit -s 8192 && ulimit -v " .. kib, env) end
    -- the smallest address space (KiB, to 1 MiB) a pool of one thread starts in, found by halving
    local lo, hi = 1024, 4 * 1024 * 1024
    assert.equal(0, (under(hi, "UV_THREADPOOL_SIZE=1")))
    while hi - lo > 1024 do
      local mid = (lo + hi) // 2
      if under(mid, "UV_THREADPOOL_SIZE=1") == 0 then hi = mid else lo = mid end
    end
    -- libuv's four threads need three stacks more than that: with one MiB more, they do not fit
    local st, out = under(hi + 1024)
    assert.equal(1, st, out)
    assert.matches("^orket: cannot start libuv's thread pool %(4 threads of 8192 KiB of stack%): Cannot allocate "
      .. "memory; the address space is limited to " .. (hi + 1024) .. " KiB %(ulimit %-v, systemd LimitAS=%): raise "
      .. "it, .*or set UV_THREADPOOL_SIZE=1 for a pool of one thread\n$", out)
    -- as the message says, a pool of one thread starts there
    assert.equal(0, (under(hi + 1024, "UV_THREADPOOL_SIZE=1")))
    -- a pool larger than the address space, whatever the machine
    st, out = under(2 * 1024 * 1024, "UV_THREADPOOL_SIZE=1024")
    assert.equal(1, st, out)
    assert.matches("^orket: cannot start libuv's thread pool %(1024 threads of 8192 KiB of stack%): Cannot allocate "
      .. "memory; the address space is limited to 2097152 KiB", out)
  end)

  it("says the user's process limit when it keeps the pool's threads from being made", function()
    if not is_root() then return pending("runs the command as another uid (nobody), which needs root") end
    if not os.execute("command -v prlimit >/dev/null && command -v setpriv >/dev/null") then
      return pending("needs prlimit and setpriv (util-linux)")
    end
    if not os.execute("setpriv --reuid=65534 --regid=65534 --clear-groups test -x " .. H.quote(H.BIN) .. " -a -r "
        .. H.quote(H.ROOT .. "/lua/orket/init.lua")) then
      return pending("nobody may not reach the build")
    end
    -- root is not held to RLIMIT_NPROC: nobody is, and has few tasks of its own; 64 threads pass 32
    local st, out = version(string.format("cd %s && ulimit -s 8192", H.quote(H.tmpdir())), string.format(
      "ORKET_HOME=%s UV_THREADPOOL_SIZE=64 prlimit --nproc=32 setpriv --reuid=65534 --regid=65534 --clear-groups",
      H.quote(H.ROOT)))
    assert.equal(1, st, out)
    assert.equal("orket: cannot start libuv's thread pool: a thread of it could not be made (Resource temporarily "
      .. "unavailable: too many tasks, or, under a strict overcommit, no memory for its stack); the user may have at most 32 processes and threads (ulimit -u, systemd LimitNPROC=), or its "
      .. "control group or the system no more (systemd TasksMax=, pids.max, kernel.threads-max): raise it, or set "
      .. "UV_THREADPOOL_SIZE=1 for a pool of one thread\n", out)
  end)

  it("stops a run at a low ulimit -n with EMFILE and the limit named, resumable, never a traceback", function()
    if backends.name() ~= "sqlite" then return pending("the descriptors a SQLite store takes") end
    local dir = H.example("notes")
    local unready = 0
    -- from too few descriptors to load libgit2 to enough for the run: every step in between
    for n = 12, 26 do
      local st, out = H.sh(string.format("cd %s && ulimit -n %d && %s run NOTES --json", H.quote(dir), n,
        H.quote(H.BIN)))
      assert.is_nil(out:find("traceback", 1, true), n .. ": " .. out)
      assert.is_nil(out:find("(removed)", 1, true), n .. ": " .. out)
      assert.is_true(st == 0 or st == 1, n .. ": " .. out)
      -- (below 16 refused before anything opens: tests/e2e/limits_emfile_test.lua)
      if st == 1 and n < 16 then assert.matches("and orket needs at least 16: raise its limit", out, 1, true) end
      if st == 1 and n >= 16 then assert.matches("Too many open files", out, 1, true) end
      for line in out:gmatch("[^\n]+") do
        local ev = line:sub(1, 1) == "{" and cjson.decode(line)
        if ev and ev.type == "run_end" and ev.reason and ev.reason:find("could not be made ready", 1, true) then
          unready = unready + 1
          assert.equal("failed", ev.status)
          assert.matches("^the repository could not be made ready for the run %(git: .*Too many open files; this process "
            .. "may open no more files: raise its limit, ulimit %-n or systemd LimitNOFILE=%); once that is fixed, "
            .. "'orket resume " .. math.tointeger(ev.run_id) .. "' carries on$", ev.reason)
        end
      end
    end
    assert.is_true(unready > 0, "no run met the limit as it settled its repository")
    -- none was left killed, and the work is done once the limit is raised
    local runs = H.orket("runs", { cwd = dir }).stdout
    assert.is_nil(runs:find("killed", 1, true), runs)
    local r = H.orket("run NOTES", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("NOTES%-4%s+done", H.orket("board", { cwd = dir }).stdout)
  end)

  it("names SQLite's limit on a store's path, and what to do, for a project too deep", function()
    if backends.name() ~= "sqlite" then return pending("a SQLite store's path") end
    local base = H.tmpdir()
    -- a project whose .orket/orket.db is n bytes long, its folders resolved
    local function project_of(n)
      local real = require("luv").fs_realpath(base)
      local dir = real
      -- folders of at most 200 bytes (a name's limit is 255), the last one filling up to n
      while n - #dir - #"/.orket/orket.db" - 1 > 200 do dir = dir .. "/" .. string.rep("d", 199) end
      dir = dir .. "/" .. string.rep("p", n - #dir - #"/.orket/orket.db" - 1)
      assert(os.execute("mkdir -p " .. H.quote(dir) .. " && cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " "
        .. H.quote(dir)))
      return dir
    end
    local fits = project_of(504)
    local r = H.orket("import .", { cwd = fits })
    assert.equal(0, r.status, r.stderr)
    local deep = project_of(505)
    for _, args in ipairs { { "import .", deep }, { "import " .. H.quote(deep), base } } do
      r = H.orket(args[1], { cwd = args[2] })
      assert.equal(1, r.status, r.stderr)
      assert.matches("orket: store: cannot open .*%.orket/orket%.db: its full path is 505 bytes, and SQLite opens a "
        .. "database whose path is at most 504 %(512 with the 8 of its \"%-journal\" ending%); move the project to a "
        .. "shorter path\n$", r.stderr)
    end
  end)
end)
