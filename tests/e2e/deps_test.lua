-- End-to-end: scripts/deps.sh and the make targets that call it. What running needs and
-- what testing adds are separate lists; as root the script installs what is missing, as
-- anyone else it prints the one line for root to run. dpkg-query, id and apt-get are fakes
-- on PATH, so nothing is installed and the machine's own packages do not matter.
local H = require "tests.helpers"

-- A directory of fakes: dpkg-query (-W -f FORMAT PACKAGE...) prints "NAME install ok
-- installed" for each package asked that is in FAKE_INSTALLED, as the real one does for an
-- installed package, and exits 1 when one is not (the real one says so on stderr); id -u
-- prints FAKE_UID, apt-get appends its arguments to FAKE_LOG and says what it does as the
-- real one does (on stdout).
local function fakes()
  local bin = H.tmpdir()
  H.write(bin .. "/dpkg-query", [[#!/bin/sh
shift 2
rc=0
for q in "$@"; do
  found=""
  for p in $FAKE_INSTALLED; do [ "$p" = "$q" ] && found=1; done
  if [ -n "$found" ]; then echo "$q install ok installed"; else echo "dpkg-query: no packages found matching $q" >&2; rc=1; fi
done
exit $rc
]])
  H.write(bin .. "/id", "#!/bin/sh\necho \"$FAKE_UID\"\n")
  H.write(bin .. "/apt-get", "#!/bin/sh\necho \"$*\" >>\"$FAKE_LOG\"\necho \"apt-get $1: working\"\n")
  os.execute("chmod 755 " .. H.quote(bin) .. "/*")
  return bin
end

-- deps(bin, flag, uid, installed) -> {status, stderr, apt}: scripts/deps.sh run with the fakes
local function deps(bin, flag, uid, installed)
  local log = bin .. "/apt.log"
  os.remove(log)
  local p = io.popen(string.format("cd %s && PATH=%s:$PATH FAKE_UID=%s FAKE_INSTALLED=%s FAKE_LOG=%s sh scripts/deps.sh %s 2>&1; echo \"rc=$?\"",
    H.quote(H.ROOT), H.quote(bin), uid, H.quote(installed or ""), H.quote(log), flag))
  local out = p:read("a")
  p:close()
  return { status = tonumber(out:match("rc=(%d+)%s*$")), stderr = out:gsub("rc=%d+%s*$", ""), apt = H.read(log) }
end

-- The packages of the printed line: "  apt-get update && apt-get install -y --no-install-recommends A B"
local function line_packages(stderr)
  local l = stderr:match("\n  apt%-get update && apt%-get install %-y %-%-no%-install%-recommends ([^\n]+)\n$")
  assert(l, "no apt-get line in: " .. stderr)
  local set = {}
  for p in l:gmatch("%S+") do set[#set + 1] = p end
  return set, l
end

describe("scripts/deps.sh", function()
  after_each(H.cleanup)

  it("prints, not as root, the apt-get line for building and running alone", function()
    local bin = fakes()
    local r = deps(bin, "", 1000)
    assert.equal(1, r.status)
    assert.matches("^deps: missing Debian packages; as root, run:\n", r.stderr)
    assert.is_nil(r.stderr:find("sudo", 1, true))
    assert.is_nil(r.apt)
    local pkgs, line = line_packages(r.stderr)
    for _, want in ipairs { "build-essential", "pkg-config", "liblua5.4-dev", "libgit2-dev", "libpq-dev" } do
      assert.matches(" " .. want:gsub("%p", "%%%0") .. " ", " " .. line .. " ")
    end
    for _, test_only in ipairs { "lua-busted", "chromium", "chromium-headless-shell", "chromium-driver", "postgresql", "prometheus", "wrk", "clang" } do
      assert.not_matches(" " .. test_only:gsub("%p", "%%%0") .. " ", " " .. line .. " ")
    end
    -- with those present, nothing is missing
    r = deps(bin, "", 1000, table.concat(pkgs, " "))
    assert.equal(0, r.status)
    assert.equal("", r.stderr)
  end)

  it("adds the tests' packages for --test, and only those when the build's are there", function()
    local bin = fakes()
    local build = line_packages(deps(bin, "", 1000).stderr)
    local all = line_packages(deps(bin, "--test", 1000).stderr)
    assert.is_true(#all > #build)
    local r = deps(bin, "--test", 1000, table.concat(build, " "))
    assert.equal(1, r.status)
    local test = line_packages(r.stderr)
    -- npm is left out where a nodejs from elsewhere carries its own (on PATH here or not)
    local listed = {}
    for _, p in ipairs(test) do if p ~= "npm" then listed[#listed + 1] = p end end
    -- exactly the script's own TEST_PKGS, in its order
    local want = {}
    for p in H.read(H.ROOT .. "/scripts/deps.sh"):match('\nTEST_PKGS="([^"]*)"'):gmatch("%S+") do
      if p ~= "npm" then want[#want + 1] = p end
    end
    assert.is_true(#want > 10)
    assert.same(want, listed)
    assert.equal(#all, #build + #test)
    r = deps(bin, "--test", 1000, table.concat(all, " "))
    assert.equal(0, r.status)
    assert.equal("", r.stderr)
    -- --asan runs the tests: the same list
    assert.equal(deps(bin, "--test", 1000).stderr, deps(bin, "--asan", 1000).stderr)
  end)

  it("installs what is missing as root, and only that", function()
    local bin = fakes()
    local build = line_packages(deps(bin, "", 1000).stderr)
    local r = deps(bin, "--bench", 0, table.concat(build, " "))
    assert.equal(0, r.status)
    -- apt's progress is shown (on stderr), not silenced
    assert.equal("deps: installing wrk valgrind strace\napt-get update: working\napt-get install: working\n", r.stderr)
    assert.equal("update\ninstall -y --no-install-recommends wrk valgrind strace\n", r.apt)
    r = deps(bin, "--fuzz", 0, table.concat(build, " ") .. " clang")
    assert.equal("install -y --no-install-recommends libclang-rt-14-dev\n", r.apt:match("\n(.*)$"))
  end)

  it("refuses an unknown target", function()
    local r = deps(fakes(), "--everything", 1000)
    assert.equal(2, r.status)
    assert.matches("usage: scripts/deps.sh", r.stderr)
  end)

  it("is asked for the build's packages by make run, the tests' by make test, check and soak", function()
    local function recipe(target)
      local p = io.popen("make -n -C " .. H.quote(H.ROOT) .. " " .. target .. " 2>&1")
      local out = p:read("a")
      p:close()
      return out
    end
    local run = recipe("run")
    assert.matches("sh scripts/deps.sh\n", run, 1, true)
    assert.is_nil(run:find("deps.sh --test", 1, true))
    for _, t in ipairs { "test", "check", "soak" } do
      assert.matches("sh scripts/deps.sh --test\n", recipe(t), 1, true)
    end
  end)
end)
