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

-- The prompt as one text (what a prefix cache compares), and how much of it is new
-- against the text before: what a provider's cache for this card and seat prefills again.
local function text_of(w)
  local parts = {}
  for _, m in ipairs(w) do
    parts[#parts + 1] = m.role .. "|" .. (m.content or "") .. ((m.tool_calls or {})[1] and m.tool_calls[1].raw_arguments or "")
  end
  return table.concat(parts, "\0")
end

local function uncached(prev, text)
  local k = 0
  while k < #text and k < #prev and text:byte(k + 1) == prev:byte(k + 1) do k = k + 1 end
  return #text - k
end

describe("the history window", function()
  local opts = { max_chars = 8000, keep_percent = 15, recent_steps = 3 }

  -- The summary cut each message at a byte count, through a character of two bytes or
  -- more: half a character is invalid UTF-8 in the request, which a provider may refuse.
  it("cuts the summary's lines on a character's start, marking what was cut", function()
    local h = {}
    for i = 1, 12 do
      h[#h + 1] = { role = "assistant", content = "x" .. string.rep("\u{e9}", 400),
        tool_calls = { { name = "write_file", raw_arguments = "{" .. string.rep("\u{20ac}", 400) } } }
      h[#h + 1] = { role = "tool", content = "step " .. i .. " " .. string.rep("\u{1f600}", 300) }
    end
    local w, n = context.window(h, opts)
    assert.is_true(n > 0)
    local summary = w[1].content
    assert.truthy(utf8.len(summary), "the summary is valid UTF-8")
    assert.matches("you said: x" .. string.rep("\u{e9}", 79) .. "... (801 bytes)", summary, 1, true)
    assert.matches("you called write_file {" .. string.rep("\u{20ac}", 39) .. "... (1201 bytes)", summary, 1, true)
  end)

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
    -- steps of about 1,017 characters: the 8th passes 8000; all but the last 2 are folded
    -- (they are under the low-water mark, 30% of 8000), and the 9th only appends (keeping
    -- half the window re-sent 3 more steps at each move)
    local o = { max_chars = 8000, keep_percent = 30, recent_steps = 2 }
    local w8, n8 = context.window(history(8, 1000), o)
    assert.equal(6, n8)
    assert.equal(1 + 2 * 2, #w8)
    local w9, n9 = context.window(history(9, 1000), o)
    assert.equal(6, n9)
    assert.is_true(starts_with(w9, w8))
  end)

  it("folds down to the low-water mark, keep_percent of max_chars, fewer steps than recent_steps", function()
    -- the 8th step passes 8000: 15% of it is 1,200 characters, one step of about 1,017
    local w8, n8 = context.window(history(8, 1000), { max_chars = 8000, keep_percent = 15, recent_steps = 6 })
    assert.equal(7, n8)
    assert.equal(1 + 2, #w8)
    assert.equal("step 8 " .. string.rep("r", 500), w8[3].content)
  end)

  it("never folds the last step, even one past the low-water mark", function()
    local w, n = context.window(history(4, 5000), opts)
    assert.equal(3, n)
    assert.equal(1 + 2, #w)
    assert.equal("step 4 " .. string.rep("r", 2500), w[3].content)
  end)

  it("re-sends little of a long turn: each move keeps only the low-water mark", function()
    -- 100 steps of about 1,000 characters, a window of 8,000: what a prefix cache prefills
    -- again over the turn, against what is new in each call (its step). Folding down to the
    -- last recent_steps (3,000 characters here) re-sent 1.71 times the new characters.
    local prev, sent, new = "", 0, 0
    for n = 1, 100 do
      local text = text_of((context.window(history(n, 1000), opts)))
      sent = sent + uncached(prev, text)
      new = new + 1000 + #("step " .. n .. " ")
      prev = text
    end
    assert.is_true(sent / new < 1.4, string.format("re-sent %.2f times the new characters", sent / new))
  end)

  it("are settings checked by name", function()
    local settings = require "orket.settings"
    local s = assert(settings.resolve {})
    assert.same({ max_chars = 32000, keep_percent = 15, recent_steps = 6, recall = 5, memory_max_age_days = 90 }, s.context)
    local _, err = settings.resolve { context = { keep_percent = 100 } }
    assert.equal("orket.lua: context.keep_percent: must be below 100 (got 100)", err)
    _, err = settings.resolve { context = { recent_steps = 0 } }
    assert.equal("orket.lua: context.recent_steps: must be at least 1: the last step is never folded", err)
    _, err = settings.resolve { context = { keep_percent = -1 } }
    assert.matches("^orket.lua: context.keep_percent: must be an integer from 0", err)
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

  it("is kept per role set and list, and sorted again when any role's list was edited in place", function()
    local rs = { names = { "coder", "reviewer" }, by_name = {
      coder = { tools = { "write_file", "read_file", "list_files" } },
      reviewer = { tools = { "read_file", "add_issue_comment" } } } }
    local coder = rs.by_name.coder.tools
    local first = roles.kept_tool_order(rs, coder)
    assert.same({ "read_file", "list_files", "write_file" }, first)
    assert.equal(first, roles.kept_tool_order(rs, coder)) -- kept: the same table
    -- another role's list, as long as before: list_files is now shared, read_file not
    rs.by_name.reviewer.tools[1] = "list_files"
    assert.same(roles.tool_order(rs, coder), roles.kept_tool_order(rs, coder))
    assert.same({ "list_files", "read_file", "write_file" }, roles.kept_tool_order(rs, coder))
    -- the list's own names, as many as before
    coder[3] = "search_files" -- for list_files
    assert.same({ "read_file", "search_files", "write_file" }, roles.kept_tool_order(rs, coder))
    -- shorter, then a role added that shares write_file
    coder[3] = nil
    assert.same({ "read_file", "write_file" }, roles.kept_tool_order(rs, coder))
    rs.names[3], rs.by_name.tester = "tester", { tools = { "write_file" } }
    assert.same({ "write_file", "read_file" }, roles.kept_tool_order(rs, coder))
    assert.is_nil(roles.kept_tool_order(rs, nil))
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
