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
local inert = require "orket.inert"

local M = {}

-- The fields of a journal event's data that are lists, by its kind: decoded from the store,
-- an empty one is a table like an empty object, and came out as {} (a transition's roles:
-- orket's own moves and a person's have none), where the same event in another view gave
-- [], and `.roles[0]` failed in jq.
local LISTS = { transition = { "roles" } }

--- event_data(kind, data) -> data as every view of the journal gives it (`orket log --json`,
--- the transcript, `orket card --json`'s history, the /v1/events stream): its lists, empty
--- or not, marked to be written as arrays, in place. data: the decoded event's (anything
--- not a table passes as it is).
function M.event_data(kind, data)
  local lists = LISTS[kind]
  if not lists or type(data) ~= "table" then return data end
  for _, k in ipairs(lists) do
    if type(data[k]) == "table" and jsonout.is_array(data[k]) then data[k] = jsonout.array(data[k]) end
  end
  return data
end

--- event_text(kind, text) -> text, the event's data as stored (its JSON), with event_data's
--- lists written as arrays: for a view that passes the stored text on (the event stream).
--- Decoded only when an empty list may be there ({}), else the text itself.
function M.event_text(kind, text)
  local lists = LISTS[kind]
  if not lists or type(text) ~= "string" then return text end
  for _, k in ipairs(lists) do
    if text:find('"' .. k .. '"%s*:%s*{%s*}') then
      local d = cjson.decode(text)
      if type(d) ~= "table" then return text end
      local ok, out = pcall(jsonout.encode, M.event_data(kind, d))
      return ok and out or text
    end
  end
  return text
end

--- FIELD_MAX: the bytes of one text (a message's content, a call's arguments or raw text, a
--- tool call's result, an event's data) a served transcript keeps: past it the text is cut
--- as orket.inert.clip cuts a message (its start, then "... (N bytes)", N its whole length)
--- and its event's `cut` names it. A model may answer 16 MiB (max_response_bytes) a step, and
--- each step's request repeats the last answer: one run's whole document was 236 MB.
M.FIELD_MAX = 64 * 1024
--- PAGE_MAX: the bytes (about: texts and keys) of events one page of a served transcript
--- holds; the events after it are the next page's (`next`)
M.PAGE_MAX = 4 * 1024 * 1024
--- FIELD_TIGHT: what an event that alone passes PAGE_MAX keeps of each text after that
--- point (a step of 1,024 tool calls, each of them cut at FIELD_MAX, would be 64 MB)
M.FIELD_TIGHT = 1024

local BATCH = 256 -- events read from the store at a time
local GONE_COLLECT = 4 * 1024 * 1024 -- bytes cut from one event past which the garbage is collected

-- A key as a JSON Pointer (RFC 6901) writes it: "~" and "/" escaped
local function pointer_part(k) return (tostring(k):gsub("~", "~0"):gsub("/", "~1")) end
local function by_name(a, b) return tostring(a) < tostring(b) end

-- v with every text longer than the page's cap cut, in place (the tables are this
-- document's own, fresh from the store), st.room counting down the page's bytes: st.cut
-- gets {field = its JSON Pointer from the event, bytes = its whole length, left_out = the
-- bytes not kept} for each. Keys in order, so which texts an overflow tightens is stable.
local function fit(v, st, at)
  if type(v) == "string" then
    local cap = st.room > 0 and st.cap or math.min(st.cap, M.FIELD_TIGHT)
    if #v > cap then
      local left_out = #v - #inert.cut(v, cap)
      st.cut[#st.cut + 1] = { field = at, bytes = #v, left_out = left_out }
      st.gone = st.gone + left_out
      v = inert.clip(v, cap)
    end
    st.room = st.room - #v
  elseif type(v) == "table" then
    if v[1] ~= nil then
      for i = 1, #v do v[i] = fit(v[i], st, at .. "/" .. (i - 1)) end
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, by_name)
      for _, k in ipairs(keys) do
        v[k] = fit(v[k], st, at .. "/" .. pointer_part(k))
        st.room = st.room - #tostring(k)
      end
    end
  end
  st.room = st.room - 8 -- (a value's quotes, separators and the like)
  return v
end

-- A journal event of the run as the document gives it | nil, message, CODE
local function event_item(db, ev)
  -- an event's data is an object as orket writes it; a hand-edited one (JSON null, a
  -- string) is read, and shown, as no data: one odd row does not fail the transcript
  local d = type(ev.data) == "table" and M.event_data(ev.kind, ev.data) or {}
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
  return item
end

-- The run's events after opts.after as the document gives them: every one (opts.cap nil),
-- or each text cut at opts.cap and, with opts.page, as many as about opts.page bytes hold
-- (one at least) -> events, the id after which the next page starts (nil: the last page) |
-- nil, message, CODE
local function events_of(db, id, opts)
  local events, after, more = {}, opts.after or 0, nil
  local st = opts.cap and { cap = opts.cap, room = opts.page or math.huge }
  repeat
    local batch = db:events { run = id, after = after, limit = BATCH }
    for _, ev in ipairs(batch) do
      local item, e, code = event_item(db, ev)
      if not item then return nil, e, code end
      if st then
        st.cut, st.gone = {}, 0
        fit(item, st, "")
        if #st.cut > 0 then item.cut = jsonout.array(st.cut) end
        -- what was cut is garbage now, with the turn's stored text: tens of MB for a
        -- step of 16 MiB, which the collector's pace (the heap doubles first) would keep
        -- across the next turns too (one request: 132 MB of RSS, 86 MB with this)
        if st.gone > GONE_COLLECT then collectgarbage() end
        -- an event past the page's end begins the next page, unless it is the page's first
        if st.room < 0 and #events > 0 then
          more = events[#events].id
          break
        end
      end
      events[#events + 1] = item
      after = ev.id
    end
  until more or #batch < BATCH
  return events, more
end

--- json_doc(db, dir, id[, opts]) -> doc | nil, message: run id's transcript as data, what
--- `orket log RUN --json` prints and GET /v1/runs/{id}/transcript answers (format
--- orket.log/1, docs/store.md): run {id, target, kind, state, started_at, ended_at}, events
--- (the run's journal, oldest first: id, at, kind, card, actor, data; a "turn" event also
--- carries turn {step, model, provider, prompt_tokens, completion_tokens, cached_tokens,
--- cost (micro-units), currency, messages, response}, a "tool_call" event result: the
--- result as the JSON text the journal holds), transitions (the board moves the run made:
--- at, card, actor, from, to; on the first page only, empty after) and usage (the run's tokens by kind and cost by currency,
--- docs/cost.md: {calls, priced, input, cached, output, cost = {CURRENCY = micro-units}}).
--- opts: cap (bytes: each text longer is cut, as fit says, the event's `cut` listing them
--- and the document's field_max saying cap; nil: every text whole), page (bytes: a page of
--- the events, the document's `next` the after of the next one; nil: every event), after
--- (an event id: the events after it; 0 when absent). A store that cannot be read gives
--- its own message and CODE (ECORRUPT: the file is damaged), never "no run".
function M.json_doc(db, dir, id, opts)
  opts = opts or {}
  local run, rerr, rcode = runs.get(db, id)
  if rerr then return nil, rerr, rcode end
  if not run then return nil, string.format("no run %s (see 'orket runs')", tostring(id)), "ENOENT" end
  local events, more, ecode = events_of(db, id, opts)
  if not events then return nil, more, ecode end
  -- The board's moves made by the run carry its id. A run started before they did
  -- (untagged_upto, store migration 8) also shows the moves without a run id written in its
  -- time window before the upgrade: never those of later runs, commands or other runs.
  -- (on the first page alone: the same moves are in the events too, and a run of thousands
  -- of cards would put them whole on every page)
  local moves = {}
  for _, m in ipairs((opts.after or 0) == 0 and sj.run_moves(db, run) or {}) do
    local d = type(m.data) == "table" and m.data or {} -- (hand-edited: JSON null, a string)
    moves[#moves + 1] = { at = m.at, card = m.card_id, actor = m.actor, from = d.from, to = d.to }
  end
  return { format = "orket.log/1",
    run = { id = run.id, target = run.target, kind = run.kind, state = project.run_state(dir, run.status,
      run.id), started_at = run.started_at, ended_at = run.ended_at },
    events = jsonout.array(events), transitions = jsonout.array(moves), usage = costs.totals(db, { run = run.id }),
    field_max = opts.cap, next = more }
end

--- served(db, dir, id, after) -> doc | nil, message, CODE: the transcript the API and the
--- MCP server give: each text cut at FIELD_MAX, a page of PAGE_MAX of the events after
--- event id after (nil: from the first)
function M.served(db, dir, id, after)
  return M.json_doc(db, dir, id, { cap = M.FIELD_MAX, page = M.PAGE_MAX, after = after })
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
