-- tests.npm: real peers from npm for the tests (the official MCP SDK, the reference servers,
-- the GitHub Actions workflow validator), installed once into a cache (ORKET_TEST_NPM_CACHE, else $XDG_CACHE_HOME/orket-tests/npm,
-- else build/test-npm) with `npm install --prefix`. When npm or its registry cannot be
-- reached, ensure says why and the tests that need it are skipped with that reason printed.
local H = require "tests.helpers"

local M = {}

-- The packages, pinned to a major version: what the tests were written against.
M.PACKAGES = { "@modelcontextprotocol/sdk@^1.25", "@modelcontextprotocol/server-everything@2026",
  "@action-validator/cli@^0.6",
  -- the OTLP protobuf definitions; 0.57 is the last line whose engines a Debian 12 node takes
  "@opentelemetry/otlp-transformer@~0.57.2" }

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

--- node(script, args, {cwd=, env=}) -> {status=, stdout=, stderr=}: runs a test script
--- (tests/mcp/NAME; a NAME with a directory, such as otel/otlp_check.js, is under tests/) with the cache's node_modules on NODE_PATH-like resolution (the script
--- is copied next to them, as ES modules resolve from their own directory)
function M.node(name, args, o)
  o = o or {}
  local dir = assert(M.ensure())
  local src = H.ROOT .. "/tests/" .. (name:find("/", 1, true) and name or ("mcp/" .. name))
  name = name:match("[^/]+$")
  local dst = dir .. "/" .. name
  H.write(dst, assert(H.read(src)))
  local tmp = H.tmpdir()
  local env = ""
  for k, v in pairs(o.env or {}) do env = env .. k .. "=" .. H.quote(v) .. " " end
  local quoted = {}
  for i, a in ipairs(args or {}) do quoted[i] = H.quote(a) end
  local cmd = string.format("cd %s && %s timeout %d node %s %s >%s/out 2>%s/err; echo $?", H.quote(o.cwd or dir), env,
    o.timeout or 120, H.quote(dst), table.concat(quoted, " "), tmp, tmp)
  local p = io.popen(cmd)
  local status = tonumber(p:read("a"))
  p:close()
  return { status = status, stdout = H.read(tmp .. "/out") or "", stderr = H.read(tmp .. "/err") or "" }
end

return M
