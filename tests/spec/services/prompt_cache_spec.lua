-- Prompts built for a prompt cache (docs/cost.md): the history's summary moves only at
-- chosen points, so between them a turn's prompt only grows at its end; every seat's tools
-- in one order, the shared ones first.
local context = require "orket.engine.context"
local roles = require "orket.engine.roles"

-- A turn's history of n steps: an assistant call and its result, each about `size` chars.
local function history(n, size)
  local h = {}
  for i = 1, n do
    h[#h + 1] = { role = "assistant", content = "", tool_calls = { { name = "write_file", raw_arguments = string.rep("a", size // 2) } } }
    h[#h + 1] = { role = "tool", content = "step " .. i .. " " .. string.rep("r", size // 2) }
  end
  return h
end

local function starts_with(long, short)
  if #short > #long then return false end
  for i, m in ipairs(short) do
    if long[i].content ~= m.content or long[i].role ~= m.role then return false end
  end
  return true
end

describe("the history window", function()
  local opts = { max_chars = 8000, recent_steps = 3 }

  it("keeps a history that fits as it is", function()
    local h = history(5, 1000)
    local w, n = context.window(h, opts)
    assert.equal(h, w)
    assert.equal(0, n)
  end)

  it("folds old steps into a summary that changes only at a few chosen points", function()
    local moves, prev, prev_n = 0, nil, 0
    for steps = 1, 60 do
      local w, n = context.window(history(steps, 1000), opts)
      local size = 0
      for _, m in ipairs(w) do size = size + #(m.content or "") + #((m.tool_calls or {})[1] and m.tool_calls[1].raw_arguments or "") end
      assert.is_true(size <= opts.max_chars + 2000 + #w[1].content, "the window stays near max_chars")
      if prev then
        if n == prev_n then
          -- the same cut: the prompt only grew at its end (what a prompt cache reuses)
          assert.is_true(starts_with(w, prev), "step " .. steps .. " rewrote the start of the prompt")
        else
          moves = moves + 1
        end
      end
      prev, prev_n = w, n
    end
    -- 60 steps of 1000 chars, a window of 8000 halved at each cut: one cut every ~4 steps
    -- at most, where folding the oldest step each time would move it at almost every step
    assert.is_true(moves >= 1 and moves <= 60 // 4, "moves: " .. moves)
  end)

  it("moves its cut up to the last recent_steps, the fewest steps a move re-sends", function()
    -- steps of about 1,017 characters: the 8th passes 8000; all but the last 2 are folded,
    -- and the 9th only appends (keeping half the window re-sent 3 more steps at each move)
    local o = { max_chars = 8000, recent_steps = 2 }
    local w8, n8 = context.window(history(8, 1000), o)
    assert.equal(6, n8)
    assert.equal(1 + 2 * 2, #w8)
    local w9, n9 = context.window(history(9, 1000), o)
    assert.equal(6, n9)
    assert.is_true(starts_with(w9, w8))
  end)

  it("never folds the last recent_steps", function()
    local w, n = context.window(history(4, 5000), opts)
    assert.equal(1, n)
    assert.equal(1 + 3 * 2, #w)
  end)
end)

describe("the tools' order", function()
  it("puts the tools more roles have first, then by name, the same for every seat", function()
    local rs = { names = { "coder", "reviewer" }, by_name = {
      coder = { tools = { "write_file", "read_file", "list_files", "update_issue_status" } },
      reviewer = { tools = { "read_file", "add_issue_comment", "list_files", "update_issue_status" } } } }
    assert.same({ "list_files", "read_file", "update_issue_status", "write_file" },
      roles.tool_order(rs, rs.by_name.coder.tools))
    assert.same({ "list_files", "read_file", "update_issue_status", "add_issue_comment" },
      roles.tool_order(rs, rs.by_name.reviewer.tools))
    assert.is_nil(roles.tool_order(rs, nil))
  end)
end)

describe("the messages' layout", function()
  local prompt = require "orket.engine.prompt"
  local function ctx(seat)
    return { seat = seat, project = { name = "notes", vision = "A tiny notes service." },
      card = { id = "N-1", summary = "Store notes" }, history = { { role = "assistant", content = "ok" } } }
  end

  it("gives every seat the same system message, and the role's text after the card's brief", function()
    local coder = prompt.messages(ctx("dev"), "You are dev, a developer.")
    local reviewer = prompt.messages(ctx("rev"), "You are rev, the reviewer.")
    -- a chat template renders the tools after the system message: seats that share their
    -- first tools then share everything up to them in a one-slot cache
    assert.equal("system", coder[1].role)
    assert.equal(coder[1].content, reviewer[1].content)
    assert.matches("Project: notes %- A tiny notes service%.$", coder[1].content)
    assert.equal("Issue N-1: Store notes\n\nYou are dev, a developer.", coder[2].content)
    assert.equal("Issue N-1: Store notes\n\nYou are rev, the reviewer.", reviewer[2].content)
    assert.same({ role = "assistant", content = "ok" }, coder[3])
  end)
end)
