-- An encrypted backup under a memory limit (ulimit -v, a container's) said "Argon2id could
-- not get the memory it needs", without how much nor which limit. Limits tried from high to
-- low: the first one where the key's derivation fails must say the amount and the limit.
local H = require "tests.helpers"

local function sanitized()
  local p = io.popen("grep -c __asan_init " .. H.quote(H.BIN) .. " 2>/dev/null")
  local n = tonumber(p:read("l") or "0") or 0
  p:close()
  return n > 0
end

describe("an encrypted backup under a memory limit", function()
  after_each(H.cleanup)

  it("says how much memory Argon2id needs and which limit to raise", function()
    if sanitized() then return pending("skipped: a sanitizer build cannot run under ulimit -v (its shadow memory)") end
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir)).status)
    local said
    for kib = 240000, 60000, -20000 do
      local r = H.orket("backup " .. H.quote(H.tmpdir() .. "/b.orket") .. " --encrypt --passphrase-env PP",
        { cwd = dir, env = { PP = "correct-horse-battery-staple" }, wrap = "sh -c 'ulimit -v " .. kib .. ' && exec "$0" "$@"' .. "'" })
      if r.stderr:find("Argon2id", 1, true) then
        said = r.stderr
        break
      end
    end
    if not said then return pending("skipped: no address-space limit here made the key's derivation fail alone") end
    assert.matches("Argon2id could not get the %d+ MiB of memory it needs %(raise the process's address space, ulimit %-v, "
      .. "or the container's memory limit%)", said)
  end)
end)
