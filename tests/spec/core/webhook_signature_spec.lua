-- orket.c.crypto's webhook signature check: GitHub's sha256=<hex> and Gitea/Forgejo's bare
-- hex over the raw body, refusals with their codes, argument errors. The expected MAC is
-- GitHub's documented example, checked with openssl when this was written.
local crypto = require "orket.c.crypto"

local SECRET, BODY = "It's a Secret to Everybody", "Hello, World!"
local MAC = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

describe("webhook signatures", function()
  it("computes HMAC-SHA256 for keys of any length", function()
    assert.equal(MAC, crypto.hmac_sha256(SECRET, BODY))
    -- RFC 4231 test case 6: a 131-byte key
    assert.equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      crypto.hmac_sha256(string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First"))
  end)

  it("accepts the GitHub and the Gitea/Forgejo forms", function()
    assert.is_true(crypto.verify_webhook(SECRET, BODY, "sha256=" .. MAC))
    assert.is_true(crypto.verify_webhook(SECRET, BODY, MAC))
  end)

  it("refuses every delivery when no secret is set", function()
    for _, secret in ipairs { "", false } do
      local ok, msg, code = crypto.verify_webhook(secret or nil, BODY, crypto.hmac_sha256("", BODY))
      assert.is_nil(ok)
      assert.equal("NO_SECRET", code)
      assert.matches("no secret", msg)
    end
  end)

  it("refuses malformed and wrong signatures", function()
    local function code_of(sig, body)
      local ok, msg, code = crypto.verify_webhook(SECRET, body or BODY, sig)
      assert.is_nil(ok)
      assert.matches("^webhook: ", msg)
      return code
    end
    for _, sig in ipairs { "", "sha256=", "sha256=" .. MAC:upper(), "sha256=" .. MAC:sub(1, 62), MAC .. "0",
      "sha1=" .. MAC:sub(1, 40), " " .. MAC, "sha512=" .. MAC } do
      assert.equal("BAD_SIGNATURE_FORMAT", code_of(sig), sig)
    end
    assert.equal("BAD_SIGNATURE_FORMAT", code_of(nil))
    local wrong = MAC:sub(1, 63) .. (MAC:sub(64) == "7" and "8" or "7")
    assert.equal("BAD_SIGNATURE", code_of(wrong))
    assert.equal("BAD_SIGNATURE", code_of(MAC, BODY .. "\n"))
    assert.equal("BAD_SIGNATURE", code_of(crypto.hmac_sha256("other", BODY)))
  end)

  it("checks its arguments", function()
    assert.has_error(function() crypto.verify_webhook(SECRET) end,
      "bad argument #2 to 'verify_webhook' (string expected, got no value)")
    assert.has_error(function() crypto.hmac_sha256(nil, "x") end,
      "bad argument #1 to 'hmac_sha256' (string expected, got nil)")
  end)
end)
