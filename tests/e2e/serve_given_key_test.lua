-- orket serve with a key given from outside (ORKET_KEY or ORKET_KEY_FILE, a container's
-- secret): it may listen on every interface, the key is stored once and works as a Bearer
-- key, and a malformed, revoked or clashing key, or one whose secret is one digit repeated,
-- stops it before it listens.
local H = require "tests.helpers"

local KEY = "ork_0123456789abcdef_" .. string.rep("5a", 32)

-- start(dir, env) -> server: orket serve on 0.0.0.0 with an ephemeral port
local function start(dir, env)
  os.remove(dir .. "/serve.out") -- a previous server's line is not this one's
  return H.serve(dir, { env = env, listen = "0.0.0.0:0" })
end

describe("orket serve with a given key", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses every interface without a key", function()
    local dir = H.example("webapp")
    local r = H.orket("serve --listen 0.0.0.0:0", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("refusing to listen on 0.0.0.0 without an API key", r.stderr, 1, true)
  end)

  it("serves every interface with ORKET_KEY, which then opens /v1/board and nothing else does", function()
    local dir = H.example("webapp")
    local s = start(dir, { ORKET_KEY = KEY })
    assert.equal(200, (H.api(s, "GET", "/health")))
    assert.equal(401, (H.api(s, "GET", "/v1/board")))
    local st, board = H.api(s, "GET", "/v1/board", KEY)
    assert.equal(200, st)
    assert.is_table(board)
    assert.equal(401, (H.api(s, "GET", "/v1/board", KEY:sub(1, -2) .. "b")))
    assert.matches("stored the given key 0123456789abcdef as 'given' (operator)", s.log(), 1, true)
    assert.equal(0, s.stop())
    -- the key is stored once: a second start adopts nothing new, and the CLI lists it
    s = start(dir, { ORKET_KEY = KEY })
    assert.equal(200, (H.api(s, "GET", "/v1/board", KEY)))
    assert.is_nil(s.log():find("stored the given key", 1, true))
    assert.equal(0, s.stop())
    local list = H.orket("keys list", { cwd = dir })
    local n = 0
    for _ in list.stdout:gmatch("0123456789abcdef") do n = n + 1 end
    assert.equal(1, n)
    -- never in the store's text or the logs
    assert.is_nil(s.log():find(KEY:sub(22), 1, true))
  end)

  it("reads the key from ORKET_KEY_FILE, trimmed, ahead of ORKET_KEY", function()
    local dir = H.example("webapp")
    H.write(dir .. "/secret", KEY .. "\n")
    local s = start(dir, { ORKET_KEY_FILE = dir .. "/secret", ORKET_KEY = "ork_bad" })
    assert.equal(200, (H.api(s, "GET", "/v1/board", KEY)))
    assert.equal(0, s.stop())
  end)

  it("takes ORKET_KEY with white space around it, as a Secret made from a file gives it, and not inside", function()
    local dir = H.example("webapp")
    -- a CRLF line end (a file written on Windows, then $(cat) or --from-file), a space
    local s = start(dir, { ORKET_KEY = " " .. KEY .. "\r\n" })
    assert.equal(200, (H.api(s, "GET", "/v1/board", KEY)))
    assert.equal(0, s.stop())
    s = start(dir, { ORKET_KEY = KEY .. "\n" }) -- the same key, adopted once
    assert.equal(200, (H.api(s, "GET", "/v1/board", KEY)))
    assert.equal(0, s.stop())
    local r = H.orket("serve --listen 0.0.0.0:0", { cwd = dir, env = { ORKET_KEY = KEY:sub(1, 30) .. " " .. KEY:sub(31) } })
    assert.equal(1, r.status)
    assert.matches("ORKET_KEY: a key is ork_<16 hex digits>_<64 hex digits>", r.stderr, 1, true)
  end)

  it("refuses a key whose secret is one digit repeated, naming the variable", function()
    local dir = H.example("webapp")
    for _, d in ipairs { "0", "7", "f" } do
      -- the timeout: a key taken would make a server that listens instead of failing
      local r = H.orket("serve --listen 0.0.0.0:0", { cwd = dir, wrap = "timeout 10",
        env = { ORKET_KEY = KEY:sub(1, 21) .. d:rep(64) } })
      assert.equal(1, r.status)
      assert.matches("ORKET_KEY: the key's secret is one digit repeated; make its 64 hex digits from a secure random",
        r.stderr, 1, true)
    end
    assert.matches("^no keys", H.orket("keys list", { cwd = dir }).stdout) -- nothing stored
  end)

  it("refuses a malformed key, a missing file, a revoked key and another secret under a stored id", function()
    local dir = H.example("webapp")
    local r = H.orket("serve --listen 0.0.0.0:0", { cwd = dir, env = { ORKET_KEY = "ork_short" } })
    assert.equal(1, r.status)
    assert.matches("ORKET_KEY: a key is ork_<16 hex digits>_<64 hex digits>", r.stderr, 1, true)
    r = H.orket("serve --listen 0.0.0.0:0", { cwd = dir, env = { ORKET_KEY_FILE = dir .. "/none" } })
    assert.equal(1, r.status)
    assert.matches("ORKET_KEY_FILE: " .. dir .. "/none", r.stderr, 1, true)
    -- a Secret mounted as a volume is a folder: said so, not taken for a malformed key
    r = H.orket("serve --listen 0.0.0.0:0", { cwd = dir, env = { ORKET_KEY_FILE = dir .. "/epics" } })
    assert.equal(1, r.status)
    assert.matches("ORKET_KEY_FILE: " .. dir .. "/epics is a folder, not a key file", r.stderr, 1, true)
    local s = start(dir, { ORKET_KEY = KEY })
    assert.equal(0, s.stop())
    local other = KEY:sub(1, 21) .. string.rep("6b", 32)
    r = H.orket("serve --listen 0.0.0.0:0", { cwd = dir, env = { ORKET_KEY = other } })
    assert.equal(1, r.status)
    assert.matches("is stored with another secret", r.stderr, 1, true)
    assert.equal(0, H.orket("keys revoke given", { cwd = dir }).status)
    r = H.orket("serve --listen 0.0.0.0:0", { cwd = dir, env = { ORKET_KEY = KEY } })
    assert.equal(1, r.status)
    assert.matches("was revoked", r.stderr, 1, true)
  end)
end)
