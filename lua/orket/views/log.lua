-- orket.views.log: a run's transcript as data, the orket.log/1 document that
-- `orket log RUN --json`, GET /v1/runs/{id}/transcript and the MCP server give.
-- Uses the store's runs, turns and journal, and orket.project for the run's state.
local cjson = require "cjson.safe"
local jsonout = require "orket.jsonout"
local turns = require "orket.store.turns"
local runs = require "orket.store.runs"
local sj = require "orket.store.journal_reads"
local project = require "orket.project"
local costs = require "orket.store.costs"
local cost = require "orket.cost"

local M = {}

--- json_doc(db, dir, id) -> doc | nil, message: run id's transcript as data, what
--- `orket log RUN --json` prints and GET /v1/runs/{id}/transcript answers (format
--- orket.log/1, docs/cli.md): run {id, target, kind, state, started_at, ended_at}, events
--- (the run's journal, oldest first: id, at, kind, card, actor, data; a "turn" event also
--- carries turn {step, model, provider, prompt_tokens, completion_tokens, cached_tokens,
--- cost (micro-units), currency, messages, response}, a "tool_call" event result: the
--- result as the JSON text the journal holds), transitions (the board moves the run made:
--- at, card, actor, from, to) and usage (the run's tokens by kind and cost by currency,
--- docs/cost.md: {calls, priced, input, cached, output, cost = {CURRENCY = micro-units}}).
--- A store that cannot be read gives its own message and CODE (ECORRUPT: the file is
--- damaged), never "no run".
function M.json_doc(db, dir, id)
  local run, rerr, rcode = runs.get(db, id)
  if rerr then return nil, rerr, rcode end
  if not run then return nil, string.format("no run %s (see 'orket runs')", tostring(id)), "ENOENT" end
  local events = {}
  for _, ev in ipairs(db:events { run = id }) do
    -- an event's data is an object as orket writes it; a hand-edited one (JSON null, a
    -- string) is read, and shown, as no data: one odd row does not fail the transcript
    local d = type(ev.data) == "table" and ev.data or {}
    local item = { id = ev.id, at = ev.at, kind = ev.kind, card = ev.card, actor = ev.actor, data = d }
    if ev.kind == "turn" and d.id ~= nil then
      local t, terr, tcode = turns.get(db, d.id)
      if terr then return nil, terr, tcode end -- not a turn shown empty
      t = t or {}
      local req = cjson.decode(t.request or "{}") or {}
      local resp = cjson.decode(t.response or "{}") or {}
      local td = cjson.decode(t.data or "{}") or {}
      item.turn = { step = td.step, model = t.model, cached_tokens = td.cached_tokens, cost = cost.spent(td.cost),
        currency = td.currency, summarized = td.summarized,
        -- the provider that answered (older records: the one the request named, "provider:model")
        provider = resp.provider or (type(req.model) == "string" and req.model:match("^([^:]+):")) or nil,
        prompt_tokens = t.prompt_tokens, completion_tokens = t.completion_tokens,
        messages = jsonout.array(type(req.messages) == "table" and req.messages or {}), response = resp }
    elseif ev.kind == "tool_call" and d.id ~= nil then
      item.result = turns.tool_call_result(db, d.id)
    end
    events[#events + 1] = item
  end
  -- The board's moves made by the run carry its id. A run started before they did
  -- (untagged_upto, store migration 8) also shows the moves without a run id written in its
  -- time window before the upgrade: never those of later runs, commands or other runs.
  local moves = {}
  for _, m in ipairs(sj.run_moves(db, run)) do
    local d = type(m.data) == "table" and m.data or {} -- (hand-edited: JSON null, a string)
    moves[#moves + 1] = { at = m.at, card = m.card_id, actor = m.actor, from = d.from, to = d.to }
  end
  return { format = "orket.log/1",
    run = { id = run.id, target = run.target, kind = run.kind, state = project.run_state(dir, run.status,
      run.id), started_at = run.started_at, ended_at = run.ended_at },
    events = jsonout.array(events), transitions = jsonout.array(moves), usage = costs.totals(db, { run = run.id }) }
end

-- A message as the text a prompt holds of it (role, content, calls), for comparing prompts.
local function message_text(m)
  local out = { tostring(m.role), "\0", type(m.content) == "string" and m.content or "" }
  for _, c in ipairs(type(m.tool_calls) == "table" and m.tool_calls or {}) do
    out[#out + 1] = "\0" .. tostring(c.name) .. "\0" .. tostring(c.raw_arguments or cjson.encode(c.arguments or {}))
  end
  out[#out + 1] = "\1"
  return table.concat(out)
end

-- The length of the common start of two strings.
local function common_start(a, b)
  local n = math.min(#a, #b)
  local i = 0
  -- in blocks first, then byte by byte
  while i + 64 <= n and a:sub(i + 1, i + 64) == b:sub(i + 1, i + 64) do i = i + 64 end
  while i < n and a:byte(i + 1) == b:byte(i + 1) do i = i + 1 end
  return i
end

--- cache(doc) -> rows, total: how much of each model call's prompt repeated the start of
--- the prompt of the call before it on the same card and seat (what a provider's prompt
--- cache, a local server's KV cache, can reuse), from orket.log/1's turn events in order.
--- rows: {card, seat, turn, step, chars (the prompt's messages as text), prefix (chars in
--- common with the call before; 0 for the first), summarized (steps folded into the
--- history's summary), moved (the summary changed since the call before)}; total: {chars,
--- prefix} over the calls that had a call before.
function M.cache(doc)
  local last, rows, total = {}, {}, { chars = 0, prefix = 0, calls = 0 }
  for _, ev in ipairs(doc.events) do
    local t = ev.turn
    if t then
      local parts = {}
      for i, m in ipairs(t.messages or {}) do parts[i] = message_text(m) end
      local text = table.concat(parts)
      local key = tostring(ev.card) .. "\0" .. tostring(ev.actor)
      local prev = last[key]
      local row = { card = ev.card, seat = ev.actor, turn = ev.data and ev.data.turn, step = t.step, chars = #text,
        prefix = prev and common_start(prev.text, text) or 0, summarized = t.summarized or 0 }
      row.moved = prev ~= nil and prev.summarized ~= row.summarized
      if prev then
        total.chars, total.prefix, total.calls = total.chars + row.chars, total.prefix + row.prefix, total.calls + 1
      end
      last[key] = { text = text, summarized = row.summarized }
      rows[#rows + 1] = row
    end
  end
  return rows, total
end

return M
