-- orket.c.seal (encrypted backup files) and orket.c.auditchain (the audit's hash chain and
-- checkpoint signatures): their argument errors, their nil, msg, CODE failures, and the
-- chain's encoding (the same value as the C unit test's, computed apart with Python's
-- hashlib.blake2b).
local seal = require "orket.c.seal"
local ach = require "orket.c.auditchain"
local H = require "tests.helpers"

describe("orket.c.seal", function()
  after_each(H.cleanup)

  it("seals and opens under a key or a passphrase, and tells a sealed file", function()
    local dir = H.tmpdir()
    H.write(dir .. "/plain", string.rep("board ", 30000))
    local key = string.rep("k", 32)
    assert.is_true(seal.seal(dir .. "/plain", dir .. "/k.enc", key))
    assert.is_true(seal.seal(dir .. "/plain", dir .. "/p.enc", nil, "pass"))
    assert.equal("key", seal.kind(dir .. "/k.enc"))
    assert.equal("passphrase", seal.kind(dir .. "/p.enc"))
    assert.is_false(seal.kind(dir .. "/plain"))
    assert.is_true(seal.open(dir .. "/k.enc", dir .. "/out", key))
    assert.equal(H.read(dir .. "/plain"), H.read(dir .. "/out"))
    assert.is_true(seal.open(dir .. "/p.enc", dir .. "/out2", nil, "pass"))
    assert.equal(H.read(dir .. "/plain"), H.read(dir .. "/out2"))
    -- each failure: nil, a sentence, a code
    local ok, msg, code = seal.open(dir .. "/p.enc", dir .. "/out3", nil, "wrong")
    assert.same({ nil, "EKEY" }, { ok, code })
    assert.matches("wrong key or passphrase", msg, 1, true)
    ok, msg, code = seal.open(dir .. "/p.enc", dir .. "/out3", key)
    assert.same({ nil, "EKEY" }, { ok, code })
    assert.matches("with a passphrase, not a key file", msg, 1, true)
    ok, msg, code = seal.open(dir .. "/plain", dir .. "/out3", key)
    assert.same({ nil, "ENOTSEALED" }, { ok, code })
    ok, msg, code = seal.open(dir .. "/none", dir .. "/out3", key)
    assert.same({ nil, "EIO" }, { ok, code })
    assert.matches("cannot open", msg, 1, true)
  end)

  it("says why a seal could not be written (a full disk), naming both files", function()
    local dir = H.tmpdir()
    H.write(dir .. "/plain", string.rep("board ", 30000))
    -- a file size limit fails the writes past 50 KiB as a full disk does (EFBIG, not ENOSPC)
    local code = string.format("local ok, msg, code = require('orket.c.seal').seal(%q, %q, %q) print(ok, code, msg)",
      dir .. "/plain", dir .. "/out.enc", string.rep("k", 32))
    local _, out = H.sh("ulimit -f 100; trap '' XFSZ; " .. H.quote(H.BIN) .. " lua -e " .. H.quote(code))
    assert.matches("nil\tEIO\tcannot seal " .. dir .. "/plain into " .. dir .. "/out.enc: read or write failed: File too large",
      out, 1, true)
  end)

  it("writes a new file only: never through a link nor over an existing file", function()
    local dir = H.tmpdir()
    H.write(dir .. "/plain", "board")
    H.write(dir .. "/victim", "keep")
    assert.is_true(os.execute("ln -s victim " .. H.quote(dir .. "/link")))
    local key = string.rep("k", 32)
    for _, out in ipairs { dir .. "/link", dir .. "/victim" } do
      local ok, msg, code = seal.seal(dir .. "/plain", out, key)
      assert.same({ nil, "EIO" }, { ok, code })
      assert.matches("cannot create " .. out .. ": File exists", msg, 1, true)
    end
    assert.is_true(seal.seal(dir .. "/plain", dir .. "/k.enc", key))
    for _, out in ipairs { dir .. "/link", dir .. "/victim" } do
      assert.is_nil((seal.open(dir .. "/k.enc", out, key)))
    end
    assert.equal("keep", H.read(dir .. "/victim"))
  end)

  it("removes a file it made when a seal or an open fails, and leaves one it could not make", function()
    local uv = require "luv"
    local dir = H.tmpdir()
    H.write(dir .. "/plain", string.rep("board ", 30000))
    local key = string.rep("k", 32)
    assert.is_true(seal.seal(dir .. "/plain", dir .. "/k.enc", key))
    -- a wrong key, a cut file (its first chunks opened and written): no part of it is left
    local ok, _, code = seal.open(dir .. "/k.enc", dir .. "/out", string.rep("w", 32))
    assert.same({ nil, "EKEY" }, { ok, code })
    local text = H.read(dir .. "/k.enc")
    H.write(dir .. "/cut.enc", text:sub(1, #text - 100))
    ok, _, code = seal.open(dir .. "/cut.enc", dir .. "/out2", key)
    assert.same({ nil, "ETRUNCATED" }, { ok, code })
    -- a seal that fails to write (a file size limit, as a full disk)
    local lua = string.format("print(require('orket.c.seal').seal(%q, %q, %q))", dir .. "/plain", dir .. "/out3",
      key)
    local _, out = H.sh("ulimit -f 100; trap '' XFSZ; " .. H.quote(H.BIN) .. " lua -e " .. H.quote(lua))
    assert.matches("File too large", out, 1, true)
    for _, f in ipairs { "out", "out2", "out3" } do assert.is_nil(uv.fs_lstat(dir .. "/" .. f), f) end
    -- opened onto a file that exists: refused, and that file, not the opening's, kept
    H.write(dir .. "/victim", "keep")
    ok, _, code = require("orket.store.sealed").open_file(dir .. "/k.enc", { key = key }, dir .. "/victim")
    assert.same({ nil, "EIO" }, { ok, code })
    assert.equal("keep", H.read(dir .. "/victim"))
  end)

  it("raises on misuse, naming the argument", function()
    assert.error_matches(function() seal.seal("a", "b", "short") end, "the key must be 32 bytes")
    assert.error_matches(function() seal.seal("a", "b", string.rep("k", 32), "p") end, "not both")
    assert.error_matches(function() seal.seal("a", "b") end, "give a key or a passphrase")
    assert.error_matches(function() seal.seal("a", "b", nil, "") end, "the passphrase is empty")
    assert.error_matches(function() seal.open(nil, "b") end, "bad argument #1")
  end)
end)

describe("orket.c.auditchain", function()
  after_each(H.cleanup)

  local ZERO = string.rep("0", 64)

  it("hashes the canonical encoding (known answer) and tells absent from empty", function()
    assert.equal("47c63ad9bf86b45764c8261621160925081bebca7b7d9070969ae59929411259", ach.hash(ZERO, { "1", nil, "" }, 3))
    assert.are_not.equal(ach.hash(ZERO, { "1", "", "" }, 3), ach.hash(ZERO, { "1", nil, "" }, 3))
    assert.are_not.equal(ach.hash(ZERO, { "ab", "c" }, 2), ach.hash(ZERO, { "a", "bc" }, 2))
  end)

  it("signs a hash and verifies only that hash under that key", function()
    local seed = ach.new_seed()
    assert.equal(32, #seed)
    local pk = ach.public_key(seed)
    local h = ach.hash(ZERO, { "x" }, 1)
    local sig = ach.sign(seed, h)
    assert.is_true(ach.verify(pk, h, sig))
    assert.is_false(ach.verify(pk, ach.hash(ZERO, { "y" }, 1), sig))
    assert.is_false(ach.verify(ach.public_key(ach.new_seed()), h, sig))
    assert.is_false(ach.verify(pk, h, "not hex")) -- a changed row is data, not an error
  end)

  it("raises on misuse, naming the argument", function()
    assert.error_matches(function() ach.hash("00", {}, 0) end, "the previous hash must be 64 hex digits")
    assert.error_matches(function() ach.hash(ZERO, { 1 }, 1) end, "field 1 is a number")
    assert.error_matches(function() ach.hash(ZERO, {}, 33) end, "between 0 and 32")
    assert.error_matches(function() ach.sign("short", ZERO) end, "the seed must be 32 bytes")
    assert.error_matches(function() ach.verify("zz", ZERO, "") end, "the public key must be 64 hex digits")
  end)
end)
