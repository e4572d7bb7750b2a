-- A project's first audit checkpoint writes its signing key (.orket/audit.key, audit.pub)
-- inside the checkpoint's transaction and its head (.orket/audit.head) after the commit. A
-- transaction that failed left a public key and no head, and every later checkpoint was
-- refused as a cut chain (ETAMPERED) until an operator ran --reset-head. The key a failed
-- checkpoint made is taken back: the next checkpoint makes one and signs.
local H = require "tests.helpers"
local B = require "tests.backends"
local chain = require "orket.audit.chain"
local ops = require "orket.store.audit"
local keyfile = require "orket.audit.key"

describe("the first audit checkpoint on " .. B.name(), function()
  local db, dir, real_insert
  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket") .. " && chmod 700 " .. H.quote(dir .. "/.orket"))
    db = B.open_store()
    real_insert = ops.insert
  end)
  after_each(function()
    ops.insert = real_insert
    db:close()
    H.cleanup()
  end)

  it("whose transaction failed leaves nothing the next one refuses", function()
    assert(db:tx(function()
      chain.record(db, { actor = "user:ann", action = "comment", route = "/v1/cards/{id}/comments" })
      return true
    end))
    ops.insert = function(d, row)
      if row.kind == "checkpoint" then error("store: the disk is full", 0) end
      return real_insert(d, row)
    end
    assert.is_nil((chain.checkpoint(db, dir, { force = true })))
    ops.insert = real_insert
    assert.is_nil(keyfile.public_key(dir)) -- the key it made is taken back
    local res, err, code = chain.checkpoint(db, dir, { force = true })
    assert.is_table(res, tostring(err) .. " " .. tostring(code))
    assert.truthy(res.checkpoint)
    assert.truthy(keyfile.read_head(dir))
  end)
end)
