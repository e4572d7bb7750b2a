-- orket.engine.context: memory hygiene for one turn. The window policy keeps the system
-- prompt and brief (built by the role) and the recent steps of the turn, and folds older
-- steps into one summary message; a step is an assistant message with the tool results
-- that answer it, so a call is never separated from its result. Recall brings relevant
-- project memory (FTS5) with its source card and age. Settings: orket.lua `context`.
local inert = require "orket.inert"
local clock = require "orket.clock"

local M = {}

local function size(m)
  local n = #(m.content or "")
  local calls = m.tool_calls
  if calls then
    local i, c = 1, calls[1]
    while c ~= nil do -- as ipairs walks them, by index
      n = n + #(c.raw_arguments or "") + #(c.name or "")
      i = i + 1
      c = calls[i]
    end
  end
  return n
end

-- history -> array of steps, each an array of messages starting at an assistant message
local function steps_of(history)
  local steps = {}
  local i, m = 1, history[1]
  while m ~= nil do -- as ipairs walks it, by index
    if m.role == "assistant" or #steps == 0 then steps[#steps + 1] = {} end
    local step = steps[#steps]
    step[#step + 1] = m
    i = i + 1
    m = history[i]
  end
  return steps
end
M.steps_of = steps_of

-- (cut on a character's start: half a character in a request is invalid UTF-8, which a
-- provider may refuse)
local function clip(s, n)
  return inert.clip((s or ""):gsub("%s+", " "), n)
end

-- One line per message of a compacted step.
local function summarize(step)
  local out = {}
  for _, m in ipairs(step) do
    if m.role == "assistant" then
      if m.content and m.content:find("%S") then out[#out + 1] = "you said: " .. clip(m.content, 160) end
      for _, c in ipairs(m.tool_calls or {}) do
        out[#out + 1] = "you called " .. c.name .. " " .. clip(c.raw_arguments or "", 120)
      end
    else
      out[#out + 1] = "result: " .. clip(m.content, 160)
    end
  end
  return table.concat(out, "; ")
end

-- The summarized steps' count: chosen points, replayed the same way from the turn's first
-- step, so a history that only grows keeps its cut (and its summary) until the steps after
-- the cut pass max_chars (the high-water mark). Between moves the prompt only grows at its
-- end, which is what a provider's prompt cache (a local server's KV cache) reuses. A move
-- re-sends every step it keeps (the summary's start stays: its earlier lines do not
-- change), so it folds down to the low-water mark, keep_percent of max_chars and at most
-- recent_steps steps (the last step always kept: its results answer the call before), and
-- a long turn pays about 1 + low / (max_chars - low) times its new tokens. Keeping a
-- count of steps instead re-sent whatever those steps weighed: six steps of tool results
-- were a third of the window, 1.23 times the new tokens of a 25-step turn.
local function step_size(st)
  local n = 0
  for _, m in ipairs(st) do n = n + size(m) end
  return n
end

local function cut_of(steps, opts)
  local low = opts.max_chars * opts.keep_percent // 100
  local cut, tail = 1, 0
  for i, st in ipairs(steps) do
    tail = tail + step_size(st)
    if tail > opts.max_chars then
      while cut < i and (cut <= i - opts.recent_steps or tail > low) do
        tail = tail - step_size(steps[cut])
        cut = cut + 1
      end
    end
  end
  return cut
end

--- window(history, {max_chars=, keep_percent=, recent_steps=}) -> history to send,
--- summarized: the oldest steps folded into one summary message once the steps after it
--- passed max_chars, down to keep_percent of it and at most recent_steps steps (never the
--- last step), at points chosen so the summary changes rarely (cut_of); summarized is how
--- many steps the summary holds (0: none).
function M.window(history, opts)
  local steps = steps_of(history)
  local cut = cut_of(steps, opts)
  if cut == 1 then return history, 0 end
  local lines = { "Summary of your earlier steps in this turn (older details were dropped to save space):" }
  for i = 1, cut - 1 do lines[#lines + 1] = string.format("%d. %s", i, summarize(steps[i])) end
  local out = { { role = "user", content = table.concat(lines, "\n") } }
  for i = cut, #steps do
    for _, m in ipairs(steps[i]) do out[#out + 1] = m end
  end
  return out, cut - 1
end

-- whole days from the store's UTC time created_at to now (seconds since the epoch), 0 for
-- a time not read. Read by clock.parse_time, not os.time: os.time takes the fields as local
-- time, and in a zone's summer time that put every age an hour over (23.5 h: "1 day old").
local function age_days(created_at, now)
  local t = clock.parse_time(created_at)
  if not t then return 0 end
  return math.max(0, (now - t) // 86400)
end
M.age_days = age_days

-- The share of max_chars the brief's recalled memory may take, in percent: the brief is
-- outside the window max_chars bounds (it is never folded), and a project's tool or the
-- REPL may store entries of 64 KiB, five of which were 322,000 characters in every step.
M.MEMORY_PERCENT = 25

--- recall(memory, card, {recall=, memory_max_age_days=, max_chars=}) -> array of {card, text,
--- age_days}: at most `recall` entries the card's summary and description find, best
--- first, none older than memory_max_age_days (0: no limit; the store's search leaves them
--- out, so older entries never crowd out newer ones), each text once (a fact remembered
--- again and again is one line). With max_chars, each text is cut to MEMORY_PERCENT of it
--- shared by the `recall` entries (1,600 bytes of the defaults), on a character's start and
--- marked as inert.clip marks a cut ("... (N bytes)"), so the section stays about a quarter
--- of max_chars.
function M.recall(memory, card, opts)
  if not memory or (opts.recall or 0) < 1 then return {} end
  local q = ((card.summary or "") .. " " .. (card.description or "")):sub(1, 2000)
  local want, days = opts.recall, opts.memory_max_age_days or 0
  local each = opts.max_chars and math.max(1, opts.max_chars * M.MEMORY_PERCENT // 100 // want)
  -- twice the entries wanted, read on (more of the same search) while repeated texts leave
  -- too few: agents remember one fact again in many turns
  local limit, out = math.min(100, want * 2), {}
  while true do
    local rows = memory:recall(q, { limit = limit, max_age_days = days }) or {}
    local seen, now = {}, os.time()
    out = {}
    for i = 1, #rows do -- the store's rows, without holes
      local r = rows[i]
      if not seen[r.text] then
        seen[r.text] = true
        out[#out + 1] = { card = r.card, text = each and inert.clip(r.text, each) or r.text,
          age_days = age_days(r.created_at, now) }
        if #out >= want then return out end
      end
    end
    if #rows < limit or limit >= 100 then return out end
    limit = math.min(100, limit * 2)
  end
end

return M
