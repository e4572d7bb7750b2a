-- tests.helpers: the parts the suite's other files lean on for their own correctness.
-- Uses sh to make the processes it looks at.
local H = require "tests.helpers"

describe("tests.helpers", function()
  it("alive: a running process is, an ended one is not, and neither is one nobody reaps", function()
    -- the child ends after 0.2 s; its parent becomes sleep, which never waits: a zombie
    local p = io.popen("sh -c 'sleep 0.2 & echo $! $$; exec sleep 30'")
    local child, parent = p:read("l"):match("^(%d+) (%d+)$")
    child, parent = tonumber(child), tonumber(parent)
    assert.is_true(H.alive(parent))
    H.wait_for(function() return not H.alive(child) end, "the child to end", 300) -- 3 s, the sleep is 30
    -- what kill -0 alone would have waited on forever
    assert.is_true(os.execute("kill -0 " .. child .. " 2>/dev/null"))
    os.execute("kill " .. parent)
    p:close()
    assert.is_false(H.alive(parent))
  end)
end)
