-- The store's file removed under a running server (a cleanup script's rm, a mistaken mv): it
-- went on writing into the file it had open, unlinked, /ready said ready and every write was
-- answered 200, all of it gone at its end, and its log said nothing. It stops, saying why.
local H = require "tests.helpers"

describe("orket serve whose store file is removed under it", function()
  after_each(function() H.kill_servers() H.cleanup() end)

  for _, how in ipairs { "removed", "replaced by another file" } do
    it("stops, exit 1, its log naming the file as " .. how, function()
      local dir = H.example("notes")
      local s = H.serve(dir)
      local db = dir .. "/.orket/orket.db"
      if how == "removed" then
        os.execute("rm -f " .. H.quote(db) .. "*")
      else
        os.execute("cp " .. H.quote(db) .. " " .. H.quote(db .. ".copy") .. " && mv " .. H.quote(db .. ".copy") .. " "
          .. H.quote(db))
      end
      local rc = H.wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end,
        "the server's end", 10000)
      assert.equal("1", rc)
      local log = s.log()
      assert.matches('"event":"error"', log, 1, true)
      assert.matches("the store's file .orket/orket.db was " .. how .. " under the server: what it writes now would be "
        .. "lost with the file it has open; stopping", log, 1, true)
      assert.matches('{"event":"stopping","signal":null,', log, 1, true)
      assert.matches('"event":"stopped"', log, 1, true)
    end)
  end
end)
