-- orket.c.crypto: libsodium's hash, random and constant-time compare.
local crypto = require "orket.c.crypto"

describe("orket.c.crypto", function()
  it("hashes with BLAKE2b (known answer)", function()
    -- BLAKE2b-256 of "abc" (RFC 7693 vectors are for 512; this is libsodium's 32-byte output)
    assert.equal("bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319", crypto.hash("abc"))
    assert.equal(128, #crypto.hash("abc", 64))
    assert.are_not.equal(crypto.hash("abc"), crypto.hash("abc", 32, string.rep("k", 32)))
  end)

  it("makes random ids and bytes", function()
    local a, b = crypto.random_id(), crypto.random_id()
    assert.matches("^%x+$", a)
    assert.equal(32, #a)
    assert.are_not.equal(a, b)
    assert.equal(100, #crypto.random_bytes(100))
    for _ = 1, 100 do
      local v = crypto.random_uniform(3)
      assert.is_true(v >= 0 and v < 3)
    end
  end)

  it("compares in constant time", function()
    assert.is_true(crypto.equal("secret", "secret"))
    assert.is_false(crypto.equal("secret", "secreT"))
    assert.is_false(crypto.equal("secret", "secret!"))
  end)

  it("decodes base64 (what a WebDriver screenshot is), refusing what is not", function()
    assert.equal("orket\0\255", crypto.base64_decode("b3JrZXQA/w=="))
    assert.equal("hello", crypto.base64_decode("aGVs\nbG8="))
    assert.equal("", crypto.base64_decode(""))
    local v, err, code = crypto.base64_decode("not base64!")
    assert.is_nil(v)
    assert.equal("EINVAL", code)
    assert.matches("not valid base64", err)
    assert.has_error(function() crypto.base64_decode(nil) end)
  end)

  it("checks its arguments", function()
    assert.has_error(function() crypto.hash("x", 8) end, "bad argument #2 to 'hash' (must be between 16 and 64)")
    assert.has_error(function() crypto.hash("x", 32, "short") end, "bad argument #3 to 'hash' (key must be 16 to 64 bytes)")
    assert.has_error(function() crypto.random_bytes(-1) end, "bad argument #1 to 'random_bytes' (must be between 0 and 4096)")
    assert.has_error(function() crypto.random_uniform(0) end)
  end)

  it("hashes passwords with Argon2id and verifies only the same password", function()
    local h = crypto.password_hash("correct horse")
    assert.matches("^%$argon2id%$", h)
    assert.are_not.equal(h, crypto.password_hash("correct horse")) -- a salt of its own
    assert.is_true(crypto.password_verify(h, "correct horse"))
    assert.is_false(crypto.password_verify(h, "correct horsE"))
    assert.is_false(crypto.password_verify("not a hash", "x")) -- a changed row is data
    assert.has_error(function() crypto.password_hash("") end,
      "bad argument #1 to 'password_hash' (a password must be 1 to 4096 bytes)")
    assert.has_error(function() crypto.password_hash(string.rep("x", 4097)) end)
  end)
end)
