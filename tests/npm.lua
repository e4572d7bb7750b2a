-- tests.npm: real peers from npm for the tests (the official MCP SDK, the reference servers,
-- the GitHub Actions workflow validator, the MCP conformance suite, an OpenAPI 3.1
-- validator, the Kubernetes API's schema with a YAML reader), installed once into a cache
-- (ORKET_TEST_NPM_CACHE, else $XDG_CACHE_HOME/orket-tests/npm, else build/test-npm) with
-- `npm install --prefix`. When npm or its registry cannot be reached, ensure says why and
-- the tests that need it are skipped (pending) with that reason.
-- A peer that needs a newer Node than the system's gets npm's (node_at_least).
local H = require "tests.helpers"

local M = {}

-- The packages, pinned to a major version: what the tests were written against (the
-- conformance suite to 0.1.13, the last that runs on Node 20: later ones need fs.globSync).
M.PACKAGES = { "@modelcontextprotocol/sdk@^1.25", "@modelcontextprotocol/server-everything@2026",
  "@action-validator/cli@^0.6", "@modelcontextprotocol/conformance@0.1.13", "@seriousme/openapi-schema-validator@^2",
  "kubernetes-models@^5", "yaml@^2",
  -- the OTLP protobuf definitions; 0.57 is the last line whose engines a Debian 12 node takes
  "@opentelemetry/otlp-transformer@~0.57.2",
  -- a certified OpenID provider for the sign-in tests (8.x: ESM, runs on Node 18 and 20)
  "oidc-provider@~8.8" }

local function cache_dir()
  local d = os.getenv("ORKET_TEST_NPM_CACHE")
  if d and d ~= "" then return d end
  local x = os.getenv("XDG_CACHE_HOME")
  if x and x ~= "" then return x .. "/orket-tests/npm" end
  return H.ROOT .. "/build/test-npm"
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc == 0, out:gsub("rc=%d+%s*$", "")
end

local result -- once per process: {dir} or {reason}

-- Whether the registry answers: one `npm ping` with a short timeout for the whole test run,
-- its answer kept in ORKET_TEST_RUN_DIR (tests/run.sh's temp dir) under a lock, so the files
-- that start together wait for one short probe instead of each waiting out npm's install
-- timeout (minutes where the registry is unreachable); a file run alone probes once.
-- -> true | nil, why not
local function registry_reachable()
  local run = os.getenv("ORKET_TEST_RUN_DIR")
  local file = H.quote((run and run ~= "" and run or H.tmpdir()) .. "/npm-registry")
  local probe = ("[ -s F ] || { out=$(timeout 20 npm ping --fetch-timeout=5000 --fetch-retries=0 2>&1) && echo ok >F "
    .. "|| { printf '%s\\n' \"$out\" | grep -E 'PING|error code|reason:' | head -n 3; echo no answer; } >F; }; cat F"):gsub("F", file)
  local _, out = sh("flock " .. file .. ".lock sh -c " .. H.quote(probe))
  if out == "ok\n" then return true end
  out = out:gsub("npm %a+ ", ""):gsub("%s+$", ""):gsub("\n", "; "):gsub("; no answer$", "")
  return nil, "the npm registry cannot be reached (npm ping: " .. out .. ")"
end

--- ensure() -> prefix dir (its node_modules holds the packages) | nil, why not
function M.ensure()
  if result then return result.dir, result.reason end
  local dir = cache_dir()
  local stamp = dir .. "/.orket-stamp"
  local want = table.concat(M.PACKAGES, " ")
  if H.read(stamp) == want then
    result = { dir = dir }
    return dir
  end
  if not sh("command -v node && command -v npm") then
    result = { reason = "node and npm are not installed (Debian: apt-get install nodejs npm)" }
    return nil, result.reason
  end
  local up, unreachable = registry_reachable()
  if not up then
    result = { reason = unreachable }
    return nil, result.reason
  end
  os.execute("mkdir -p " .. H.quote(dir))
  local args = {}
  for i, p in ipairs(M.PACKAGES) do args[i] = H.quote(p) end
  -- test files run in parallel: one process installs while the others wait on the lock,
  -- then find the stamp (an install running beside another would remove its files). A
  -- failure is remembered for 10 minutes: where the registry cannot be reached, npm takes
  -- its whole timeout, which every later file of the same suite would wait for again.
  local failed = dir .. "/.orket-failed"
  local ok, out = sh(string.format("flock %s sh -c %s", H.quote(dir .. ".lock"), H.quote(string.format(
    "[ \"$(cat %s 2>/dev/null)\" = %s ] || { "
      .. "if [ -n \"$(find %s -mmin -10 2>/dev/null)\" ]; then echo 'it failed less than 10 minutes ago'; exit 1; fi; "
      .. "timeout 600 npm install --prefix %s --no-audit --no-fund --loglevel=error %s "
      .. "&& printf %%s %s > %s && rm -f %s || { touch %s; exit 1; }; }",
    H.quote(stamp), H.quote(want), H.quote(failed), H.quote(dir), table.concat(args, " "), H.quote(want),
    H.quote(stamp), H.quote(failed), H.quote(failed)))))
  if not ok or H.read(stamp) ~= want then
    result = { reason = "npm install failed (is the registry reachable?): " .. out:sub(-400) }
    return nil, result.reason
  end
  result = { dir = dir }
  return dir
end

--- bin(name) -> the path of an installed package's program (node_modules/.bin/NAME) | nil, why not
function M.bin(name)
  local dir, why = M.ensure()
  if not dir then return nil, why end
  return dir .. "/node_modules/.bin/" .. name
end

-- Node from npm, for a peer that needs a newer one than the system's (Debian 12 has 18):
-- the registry's node-linux-ARCH package holds the official build; its own prefix beside
-- the cache's, installed on first need.
M.NODE_PACKAGE = "22"
local ARCH = { x86_64 = "x64", aarch64 = "arm64" }

local function version_of(program)
  local _, out = sh(H.quote(program) .. " --version")
  local a, b = out:match("^v(%d+)%.(%d+)")
  return a and { tonumber(a), tonumber(b) } or nil, out:gsub("%s+$", "")
end

--- node_at_least(major, minor) -> a node program at least that version (the system's, else
--- npm's node-linux-ARCH@NODE_PACKAGE, installed once) | nil, why not
function M.node_at_least(major, minor)
  local v = version_of("node")
  if v and (v[1] > major or (v[1] == major and v[2] >= minor)) then return "node" end
  local dir, why = M.ensure() -- the registry is known to answer before a large download
  if not dir then return nil, why end
  local _, machine = sh("uname -m")
  local arch = ARCH[machine:gsub("%s+$", "")]
  if not arch then return nil, "no Node build on npm for this machine (" .. machine:gsub("%s+$", "") .. ")" end
  local prefix = dir .. "/node-" .. M.NODE_PACKAGE
  local program = prefix .. "/node_modules/.bin/node"
  local ok, out = sh(string.format("flock %s sh -c %s", H.quote(prefix .. ".lock"), H.quote(string.format(
    "[ -x %s ] || timeout 600 npm install --prefix %s --no-audit --no-fund --loglevel=error %s",
    H.quote(program), H.quote(prefix), H.quote("node-linux-" .. arch .. "@^" .. M.NODE_PACKAGE)))))
  local got = ok and version_of(program)
  if not got or got[1] < major or (got[1] == major and got[2] < minor) then
    return nil, "Node " .. major .. "." .. minor .. " or later is needed, the system's is "
      .. (v and table.concat(v, ".") or "missing") .. ", and npm's "
      .. (got and "is " .. table.concat(got, ".") or "could not be installed: " .. out:sub(-300))
  end
  return program
end

--- node(script, args, {cwd=, env=, node=, from=}) -> {status=, stdout=, stderr=}: runs a test
--- script (tests/mcp/NAME; a NAME with a directory, such as otel/otlp_check.js, under tests/;
--- or FROM/NAME under the repository) with the cache's node_modules
--- on NODE_PATH-like resolution (the script is copied next to them, as ES modules resolve
--- from their own directory); node: the program (node_at_least's), else the system's node
function M.node(name, args, o)
  o = o or {}
  local dir = assert(M.ensure())
  local src = H.ROOT .. "/" .. (o.from or (name:find("/", 1, true) and "tests" or "tests/mcp")) .. "/" .. name
  name = name:match("[^/]+$")
  local dst = dir .. "/" .. name
  -- (the cache is shared with the files running beside this one: a rewrite in place could
  -- be read half written by another's node)
  H.replace(dst, assert(H.read(src)))
  local tmp = H.tmpdir()
  local env = ""
  for k, v in pairs(o.env or {}) do env = env .. k .. "=" .. H.quote(v) .. " " end
  local quoted = {}
  for i, a in ipairs(args or {}) do quoted[i] = H.quote(a) end
  local cmd = string.format("cd %s && %s timeout %d %s %s %s >%s/out 2>%s/err; echo $?", H.quote(o.cwd or dir), env,
    o.timeout or 120, H.quote(o.node or "node"), H.quote(dst), table.concat(quoted, " "), tmp, tmp)
  local p = io.popen(cmd)
  local status = tonumber(p:read("a"))
  p:close()
  return { status = status, stdout = H.read(tmp .. "/out") or "", stderr = H.read(tmp .. "/err") or "" }
end

return M
