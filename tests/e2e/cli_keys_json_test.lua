-- `orket keys create/revoke --json` printed plain text (the secret, "revoked key ...") with
-- exit 0: a parser got no JSON. --json goes with keys list only, and is refused elsewhere
-- with exit 2, as users, secrets, projects, runs and sandbox refuse theirs. A word too many
-- is named in the refusal.
local H = require "tests.helpers"
local cjson = require "cjson"

describe("orket keys --json", function()
  after_each(H.cleanup)

  it("is refused with create and revoke, and nothing is made or revoked", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    for _, words in ipairs { "keys create kj --role viewer --json", "keys revoke kj --json" } do
      local r = H.orket(words, { cwd = dir })
      -- (the message names no stdout: before the fix it held the new key's secret)
      assert.equal(2, r.status, r.stderr)
      assert.equal(0, #r.stdout, "stdout not empty")
      assert.matches("^orket: %-%-json goes with keys list\nusage: orket keys ", r.stderr)
    end
    assert.equal(0, #cjson.decode(H.orket("keys list --json", { cwd = dir }).stdout).keys)
    -- the key made without it is revoked without it, --json list still JSON
    assert.matches("^ork_", H.ok(H.orket("keys create kj --role viewer", { cwd = dir }), "create").stdout)
    assert.equal(2, H.orket("keys revoke kj --json", { cwd = dir }).status)
    local keys = cjson.decode(H.orket("keys list --json", { cwd = dir }).stdout).keys
    assert.equal(1, #keys)
    assert.equal("kj", keys[1].name)
    H.ok(H.orket("keys revoke kj", { cwd = dir }), "revoke")
  end)

  it("names the word too many", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    for words, said in pairs {
      ["keys create a b --role viewer"] = "keys create takes one NAME, not 'b' as well",
      ["keys revoke a b"] = "keys revoke takes one key id or name, not 'b' as well",
      ["keys list extra"] = "keys list takes no other word ('extra')",
      ["keys list " .. ("x"):rep(5000)] = "keys list takes no other word ('" .. ("x"):rep(60) .. "...')",
      ["keys create"] = "keys create needs one NAME",
    } do
      local r = H.orket(words, { cwd = dir })
      assert.equal(2, r.status, words)
      assert.equal("orket: " .. said .. "\n", r.stderr:match("^[^\n]*\n"), words)
    end
  end)
end)
