-- A move's roles are a list in every view of the journal. Empty (orket's own moves, an epic
-- rolling up; a person's), they came out as {} in `orket log --json`, the transcript of GET
-- /v1/runs/N/transcript and the /v1/events stream, and as [] in `orket card --json`: a jq
-- script reading `.roles[0]` from the card broke on the log. The journal keeps {} (the
-- store's JSON has no mark for an empty list); every view gives [] (orket.views.log's
-- event_data).
local H = require "tests.helpers"
local cjson = require "cjson"

-- every transition's roles in doc's events (key: where they are) -> how many, how many empty;
-- raises when one is not written as an array
local function roles_of(text, events, what)
  assert.is_nil(text:find('"roles"%s*:%s*{'), what .. ": roles written as an object")
  local n, empty = 0, 0
  for _, ev in ipairs(events) do
    if ev.kind == "transition" then
      local roles = ev.data.roles
      assert.equal("table", type(roles), what)
      n = n + 1
      if #roles == 0 then empty = empty + 1 end
    end
  end
  return n, empty
end

describe("a move's roles", function()
  after_each(H.cleanup)

  it("are an array in orket log --json, orket card --json, the transcript and the event stream", function()
    local dir = H.example("notes")
    local r = H.orket("run NOTES --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("log 1 --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local n, empty = roles_of(r.stdout, cjson.decode(r.stdout).events, "orket log --json")
    assert.is_true(n > empty and empty >= 1, n .. " moves, " .. empty .. " empty")

    r = H.orket("card NOTES --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    n, empty = roles_of(r.stdout, cjson.decode(r.stdout).history, "orket card --json")
    assert.is_true(empty >= 1, n .. " moves, " .. empty .. " empty")

    local viewer = H.api_key(dir, "admin", "admin") -- (a key's own row is an admin's to read)
    local s = H.serve(dir)
    local st, doc, text = H.api(s, "GET", "/v1/runs/1/transcript", viewer)
    assert.equal(200, st, text)
    n, empty = roles_of(text, doc.events, "the transcript")
    assert.is_true(n > empty and empty >= 1, n .. " moves, " .. empty .. " empty")

    local ev = H.stream { url = s.url .. "/v1/events?after=0", headers = { "Authorization: Bearer " .. viewer } }
    assert.equal(200, ev.status)
    -- (the key's own row comes after every move)
    H.wait_for(function() return ev.text():find("\nevent: key_create\n", 1, true) end, "the journal's end", 5000)
    local moves = {}
    for data in ev.text():gmatch("\nevent: transition\ndata: ([^\n]*)\n") do moves[#moves + 1] = cjson.decode(data) end
    ev.close()
    n, empty = roles_of(ev.text(), moves, "the event stream")
    assert.is_true(n > empty and empty >= 1, n .. " moves, " .. empty .. " empty")
    assert.equal(0, s.stop())
  end)
end)
