-- `orket sandbox up --card CARD` by hand where no sandbox could be made (nothing to run in
-- main's tree, no sandbox section): an operator's error, said with exit 1, and nothing
-- written to the board. Before, the card was "sent back": a follow-up epic and a ready
-- issue "Sandbox checks fail for START-2" appeared, with "sandbox nil" in its history,
-- which the next run spent model turns on. A --card that names no card is said before the
-- start, not after the start's own error.
local H = require "tests.helpers"
local cjson = require "cjson"

-- every card's id and status, a line each, as `orket board --json` gives them
local function board(dir)
  local doc = cjson.decode(H.orket("board --json", { cwd = dir }).stdout)
  local out = {}
  for _, c in ipairs(doc.cards) do out[#out + 1] = c.id .. " " .. c.status end
  return table.concat(out, "\n")
end

describe("orket sandbox up --card with nothing to run", function()
  after_each(H.cleanup)

  it("says why, exits 1 and leaves the board as it was", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    H.ok(H.orket("run START --json", { cwd = dir }), "run")
    local before = board(dir)
    local comments = { #H.card_json(dir, "START-2").comments, #H.card_json(dir, "START").comments }
    for _, card in ipairs { "START-2", "START" } do
      local r = H.orket("sandbox up --card " .. card, { cwd = dir })
      assert.equal(1, r.status, r.stderr)
      -- (the kernel's refusal of a network namespace is said first where it comes first)
      assert.matches("^orket: sandbox: ", r.stderr)
      assert.equal("", r.stdout)
    end
    assert.equal(before, board(dir))
    assert.not_matches("followups", before)
    assert.same(comments, { #H.card_json(dir, "START-2").comments, #H.card_json(dir, "START").comments })
  end)

  it("refuses a --card that names no card before it starts anything", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    for _, detach in ipairs { "", " --detach" } do
      local r = H.orket("sandbox up --card NOPE" .. detach, { cwd = dir })
      assert.equal(1, r.status, r.stderr)
      assert.matches("^orket: %-%-card NOPE: no such card %(see '[^']*orket board'%)\n$", r.stderr)
    end
    assert.same({}, H.sandboxes(dir, true))
  end)
end)
