-- orket.serve.events: the journal (the store's events table) as Server-Sent Events. One hub
-- reads the journal when it may have grown (SQLite: on a timer; PostgreSQL: when the
-- events trigger's NOTIFY arrives), so events written by any process (a run, a worker,
-- `orket answer`, another `orket serve`) reach every subscriber; a subscriber first
-- replays what it missed (after an id), then follows live. A client that falls behind is disconnected by the stream's bounded queue
-- (orket.c.httpd); it reconnects with Last-Event-ID and loses nothing.
local uv = require "luv"
local jsonout = require "orket.jsonout"
local sj = require "orket.store.journal_reads"
local task = require "orket.task"
local pglisten = require "orket.store.pglisten"
local httpd = require "orket.c.httpd"
local rt = require "orket.c.runtime"
local cjson = require "cjson.safe"
local store_projects = require "orket.store.projects"
local log_view = require "orket.views.log"
local revoking = require "orket.audit.revoking"

local M = {}

local BATCH = 500

local function str(v) return v == nil and "null" or jsonout.encode(v) end

--- message(row) -> the SSE message of one journal row: its id as the SSE id, its kind as
--- the event name, the event as one line of JSON {id, at, kind, card, run, actor, data}
function M.message(r, people)
  local raw = r.data or "{}"
  -- which of a person's keys an API write came through is the server's admins' to read,
  -- as whom it was about is (orket.serve.writes' audit); the others get the row without it
  if not people and r.kind == "api_write" and raw:find('"key"%s*:') then
    local d = cjson.decode(raw)
    if type(d) == "table" then
      d.key = nil
      raw = jsonout.encode(d)
    end
  end
  -- its lists as arrays, as the other views of the journal give them (a move's roles)
  raw = log_view.event_text(r.kind, raw)
  local data = jsonout.plain(raw:gsub("[\r\n]", " ")) -- stored JSON is one line; stay safe
  local kind = tostring(r.kind):gsub("[^%w_.%-]", "_")
  return string.format('id: %d\nevent: %s\ndata: {"id":%d,"at":%s,"kind":%s,"card":%s,"run":%s,"actor":%s,"data":%s}\n\n',
    r.id, kind, r.id, str(r.at), str(r.kind), str(r.card_id), r.run_id and tostring(math.tointeger(r.run_id) or r.run_id) or "null",
    str(r.actor), data)
end

--- fetch(db, after, filter, limit) -> rows after id `after` matching filter {run=, card=}
function M.fetch(db, after, filter, limit)
  return sj.entries_after(db, after, filter.run, filter.card, limit or BATCH)
end

--- latest(db) -> the newest journal id (0 when empty)
function M.latest(db)
  return sj.latest_id(db)
end

--- store_of(db) -> the store's id as its journal's (orket.store.projects.journal_store_id:
--- made with the store, kept by its copies, a word added by each `orket restore`, which
--- replaces the journal) | nil (a stand-in store that has none, or the read failed)
function M.store_of(db)
  local ok, id = pcall(store_projects.journal_store_id, db)
  return ok and type(id) == "string" and id or nil
end

--- reset(id) -> the SSE message that tells a client to start over: its journal ids mean
--- nothing in the journal the stream follows now; id is the newest the caller may read there
function M.reset(id)
  return string.format('id: %d\nevent: reset\ndata: {"id":%d}\n\n', id, id)
end

local Hub = {}
Hub.__index = Hub

-- How often the journal is read on SQLite. A commit reaches subscribers within one interval (at 250 ms
-- that was most of the commit-to-receipt time). A poll that finds nothing is one seek on
-- the events' primary key, about 8 us, and a read of the store's id (Hub:_check_store),
-- about as much, so 50 a second cost under 0.1% of a CPU. A
-- cheaper wake-up does not pay: PRAGMA data_version costs about as much as that seek
-- (5 us), and it does not move for this connection's own writes (a comment written through
-- the API), which would then need a second signal.
M.POLL_MS = 20

-- On PostgreSQL a poll is a round trip to the server, paid by every `orket serve` 50 times a
-- second; the events trigger (pg_schema migrations 4 and 15) sends NOTIFY orket_journal
-- when a transaction that wrote events commits, so the hub waits on that instead. The journal is
-- still read every LISTEN_POLL_MS without one: a safety net for a wake-up the listener
-- cannot see (its connection refused, or events written by something that bypassed the
-- trigger), not the way events normally arrive.
M.LISTEN_POLL_MS = 5000

-- A notification wakes every server's hub, and each wake-up has a cost of its own, whatever
-- it delivers: the listener's read, the hub's pass over its subscribers, a turn of the loop
-- and of libmicrohttpd for the streams it queued on. Events written one transaction each
-- come as one notification each: the hub takes those that follow the first within
-- GATHER_MS of it (at most GATHER_MAX in all), and delivers them in one pass; each stream
-- is then written once for all of them. An event waits GATHER_MS at most. With two servers
-- every event paid that cost twice (bench/fanout.lua: about 60 us of a server's CPU).
M.GATHER_MS = 2
M.GATHER_MAX = 256
-- ... and while their payloads hold at most this many bytes: what one pass queues on a
-- stream stays far below its queue's cap (max_stream_queue, 1 MiB), which a healthy
-- client must never be dropped for.
M.GATHER_BYTES = 64 * 1024

-- A replay queues at most about this much on a stream before it waits for the client to
-- take it: a batch of large events (500 of 6 KB) once passed the queue's cap whole, and a
-- client replaying them was disconnected at every reconnect, never catching up.
M.REPLAY_HIGH = 64 * 1024

-- A stream opening live only is among the subscribers before it reads the journal's newest
-- id, and holds what the hub hands it meanwhile (hub:open), older rows than that id too (it
-- is not known yet). At most this many bytes are held (a round trip's deliveries are far
-- fewer, unless the hub is catching up a backlog; well under the stream's queue, which takes
-- them at once): past them it holds no more, and once it has sent what it held past its
-- start it reads the rest from the journal, as a stream given an id to replay after does.
M.HOLD_BYTES = 256 * 1024

--- new(db, {poll_ms=M.POLL_MS, listen_poll_ms=M.LISTEN_POLL_MS, heartbeat_ms=15000,
--- gather_ms=M.GATHER_MS, gather_max=M.GATHER_MAX, on_error=fn(msg)}) -> hub (started)
function M.new(db, o)
  o = o or {}
  -- sid: the store's id when the hub last looked; restores: how many restores it has seen
  local self = setmetatable({ db = db, subs = {}, sid = M.store_of(db), restores = 0, last = M.latest(db),
    on_error = o.on_error or function() end,
    reads = { timer = 0, notify = 0, reconnect = 0, fallback = 0 }, carried = 0,
    gather_ms = o.gather_ms or M.GATHER_MS, gather_max = o.gather_max or M.GATHER_MAX,
    watched = {}, nwatched = 0, sweep_at = 64 }, Hub)
  self.sid_unread = self.sid == nil
  self.beat_timer = uv.new_timer()
  local poll_ms, beat_ms = o.poll_ms or M.POLL_MS, o.heartbeat_ms or 15000
  self.beat_timer:start(beat_ms, beat_ms, function()
    self:broadcast(": heartbeat\n\n")
    -- in a task: the checks ask the store (docs/teams.md: a person disabled or taken out
    -- of the project loses their streams by the next heartbeat)
    if not self.checking then task.spawn(self.recheck, self) end
  end)
  if db.backend == "pg" then
    -- what the store's open found: any role may connect, and so listen and notify
    if db.public_warning then self.on_error(db.public_warning) end
    self:_listen(o.listen_poll_ms or M.LISTEN_POLL_MS)
    return self
  end
  self.poll_timer = uv.new_timer()
  -- each poll in a task, one at a time: a timer's callback cannot call the store (on SQLite
  -- the task ends before spawn returns)
  local polling = false
  self.poll_timer:start(poll_ms, poll_ms, function()
    if polling then return end
    polling = true
    task.spawn(function()
      self.reads.timer = self.reads.timer + 1
      local ok, err = pcall(self.poll, self)
      polling = false
      if not ok then self.on_error(tostring(err)) end
    end)
  end)
  return self
end

-- One listener per hub (per server process, whatever the number of subscribers), in a task
-- of its own. A notification on orket_journal carries the events it announces (pg_schema
-- migration 15), so a second server costs no second read of each event; one that does not
-- (too large for a payload), or whose first id skips past the hub's cursor, reads the
-- journal from the cursor. A (re)connect reads it too (wake_on_connect): notifications sent while the
-- listener was away are lost, the journal is not.
function Hub:_listen(fallback_ms)
  self.listener = pglisten.new { url = self.db.url, channels = { "orket_journal" },
    wake_on_connect = true }
  task.spawn(function()
    local failing = false
    while not self.closed do
      local notes, info = self.listener:wait(fallback_ms)
      if not notes then return end -- closed
      if info.error then
        if not failing then self.on_error("event stream: cannot listen for journal events (reading every "
          .. fallback_ms .. " ms): " .. tostring(info.error)) end
        failing = true
      else
        failing = false
      end
      if #notes > 0 and not info.reconnected then self:_gather(notes, info) end
      local ok, err = pcall(self._woken, self, notes, info)
      if not ok then self.on_error(tostring(err)) end
    end
  end)
end

-- adds to notes those that come within gather_ms, at most gather_max in all (a reconnect
-- meanwhile is kept in info: the journal is read then)
function Hub:_gather(notes, info)
  local deadline = rt.now() + self.gather_ms
  local bytes = 0
  for _, n in ipairs(notes) do bytes = bytes + #(n.payload or "") end
  while #notes < self.gather_max and bytes < M.GATHER_BYTES and not self.closed do
    local left = math.ceil(deadline - rt.now())
    if left <= 0 then return end
    local more, minfo = self.listener:wait(left)
    if not more then return end -- closed
    for _, n in ipairs(more) do
      notes[#notes + 1] = n
      bytes = bytes + #(n.payload or "")
    end
    -- (a reconnect's wake-up comes with no notes: it must not be taken for the end)
    if minfo.reconnected then info.reconnected = true end
    if #more == 0 or minfo.reconnected or minfo.error then return end
  end
end

--- people(kind, data) -> whether a journal row of this kind (and data, its JSON text) is
--- about the server's people (its
--- accounts, keys, sessions and projects' members, journaled in the default project's
--- store): a server admin's, not every viewer's, or projects a person is not a member of
--- would show through the default project's stream (docs/teams.md, "Visible only to members")
function M.people(kind, data)
  if type(kind) ~= "string" then return false end
  -- an API write that names whom it was about (orket.serve.writes' subject: a grant, a
  -- key, a person) is about people too; a card's write names no subject
  -- (PostgreSQL's jsonb text has a space after the colon)
  if kind == "api_write" then return type(data) == "string" and data:find('"subject"%s*:') ~= nil end
  -- a project's own rows (project_add, project_remove, project_rebound) name it, its folder
  -- and its members' count: a project a viewer of the default one is no member of
  return (kind:find("^project_") or kind:find("^user_") or kind:find("^member_") or kind:find("^key_")
    or kind:find("^session_")) ~= nil
end

--- own_sign(r, own) -> whether journal row r is a sign-in or sign-out of own (an actor:
--- user:NAME, a key's id): its api_write of action sign_in or sign_out, the row GET
--- /v1/audit gives them (the way, the session; no client address: none is kept). A
--- person's own are theirs to see on their stream; other rows about people are not, nor the
--- journal's session_start and session_end (the same acts, said twice).
function M.own_sign(r, own)
  if own == nil or r.actor ~= own or r.kind ~= "api_write" or type(r.data) ~= "string" then return false end
  local d = cjson.decode(r.data)
  return type(d) == "table" and (d.action == "sign_in" or d.action == "sign_out")
end

-- whether a subscriber reading filter (or sub) {people=, own=} is given row r, as to people
local function readable(f, r)
  return f.people or not M.people(r.kind, r.data) or M.own_sign(r, f.own)
end

--- readable_latest(db, upto, f) -> the newest journal id at or before `upto` whose row a
--- reader of filter f {people=, own=} may read (0: none). An id given to a caller is one of
--- theirs: the whole journal's newest would tell anyone, as often as they ask, when a row
--- about the server's people (a sign-in, a key, a member) was written. Replaying after it
--- gives them all they may read after `upto`: the rows between are not theirs.
function M.readable_latest(db, upto, f)
  if f.people then return upto end
  local top, N = upto, 50
  while top > 0 do
    local rows = sj.entries_upto(db, top, N)
    for _, r in ipairs(rows) do
      if readable(f, r) then return r.id end
    end
    if #rows < N then return 0 end
    top = rows[#rows].id - 1
  end
  return 0
end

local function matches(sub, r)
  return (sub.run == nil or sub.run == r.run_id) and (sub.card == nil or sub.card == r.card_id)
    and readable(sub, r)
end

function Hub:_drop(stream)
  if self.subs[stream] then
    self.subs[stream] = nil
    stream:close()
  end
end

--- REVOKING: the journal's kinds that may take a reader's right away (a key revoked, a
--- person disabled or demoted, a membership taken, a password changed, a sign-out, a
--- project removed or bound to another store: orket.audit.revoking, the one list of them).
--- Such a row has the streams checked (hub.on_revoke, else hub:recheck) before it and
--- anything after it is delivered: by the next heartbeat (15 s), a revoked key's open
--- stream still got what was written meanwhile.
M.REVOKING = revoking.KINDS

-- hands one journal row to the subscribers that want it (each only rows newer than its own
-- cursor), and moves the hub's cursor to it
function Hub:_deliver(r)
  if M.REVOKING[r.kind] then
    local ok, err = pcall(self.on_revoke or self.recheck, self, r)
    if not ok then self.on_error(tostring(err)) end
  end
  -- encoded once for each kind of reader, one shared copy queued on every subscriber's stream
  local msgs = {}
  for stream, sub in pairs(self.subs) do
    if r.id > sub.cursor and matches(sub, r) then
      local people = sub.people and true or false
      msgs[people] = msgs[people] or httpd.blob(M.message(r, people))
      local msg = msgs[people]
      sub.cursor = r.id
      if sub.held then
        self:_hold(sub, r.id, msg)
      elseif not stream:send(msg) then
        self:_drop(stream)
      end
    end
  end
  self.last = r.id
end

-- keeps a row's message for a stream still opening (hub:open) or replaying (hub:_replay);
-- past HOLD_BYTES it keeps no more (hub:_start, hub:_replay_rows read the rest by id), and
-- stays a subscriber (heartbeats, its end, a restore's reset reach it)
function Hub:_hold(sub, id, msg)
  if sub.overflow then return end
  local bytes = sub.held_bytes + #msg
  if bytes > M.HOLD_BYTES then
    sub.overflow = true
    return
  end
  sub.held_bytes = bytes
  sub.held[#sub.held + 1] = { id = id, msg = msg }
end

-- A restore (`orket restore`, from any process) replaces the journal under the hub: its ids
-- then name other events, and the hub's cursor and its streams' are of the old journal
-- (followed on, a shorter new journal sends nothing until it passes them; a longer one
-- hands on its rows past them as if new). The restore gives the store a new id (on
-- PostgreSQL in its transaction, on SQLite in the one after the pages): seen, every open
-- stream gets what a client reconnecting with the old store's id gets, `event: reset` with
-- the newest id its caller may read, and follows the new journal from its end. Read in the
-- task that reads the journal, once per read of it for all streams (SQLite: each poll, one
-- row of a one-row table, about as cheap as the poll's own seek), so no delivery runs
-- between the check and the cursors it moves. Read only while a stream is open: one that
-- opens reads the id itself (its route) and registers with it, and the next check catches
-- it up or resets it. -> whether the store was another.
function Hub:_check_store()
  if next(self.subs) == nil then return false end
  local sid = M.store_of(self.db)
  -- (a failed read: the next wake-up on PostgreSQL checks again whatever its rows' ids)
  self.sid_unread = sid == nil
  if sid == nil or sid == self.sid then return false end
  local before, last_before = self.sid, self.last
  -- set before the reads below, which may wait on the store (PostgreSQL): a stream that
  -- registers meanwhile takes the new id (hub:follow)
  self.sid = sid
  -- none read when the hub started (a read that failed then): a restore only if a stream
  -- registered with another id than the store's now, each stream's own (from its route)
  if before == nil then
    local other = false
    for _, sub in pairs(self.subs) do
      if sub.sid ~= nil and sub.sid ~= sid then other = true break end
    end
    if not other then return false end
  end
  self.restores = self.restores + 1
  -- a read below that fails (a locked SQLite, a dropped connection) undoes the check, so
  -- the next poll or wake-up does it again: the streams reset already carry the new id,
  -- and are caught up then, not reset twice. While they run, the hub's cursor may be the
  -- old journal's (resetting: a replay does not take it for the new one's, Hub:_replay_rows)
  self.resetting = true
  local ok, err = pcall(self._reset_streams, self, sid)
  self.resetting = false
  if not ok then
    self.sid, self.last, self.sid_unread = before, last_before, true
    error(err, 0)
  end
  return true
end

-- moves the hub and every open stream onto the journal of the store whose id is sid
function Hub:_reset_streams(sid)
  local last = M.latest(self.db)
  self.last = last
  -- the subscribers as they are now: the reads below may wait on the store (PostgreSQL),
  -- while streams open and close
  local list = {}
  -- (a replaying one is not: its replay sees the restore, and resets it itself)
  for stream, sub in pairs(self.subs) do
    if not sub.replaying then list[#list + 1] = { stream, sub } end
  end
  local ids = {} -- the newest readable id, once per kind of reader
  for _, x in ipairs(list) do
    local stream, sub = x[1], x[2]
    local key = sub.people and "*" or "-" .. tostring(sub.own)
    -- one still opening (hub:open) is reset whatever id it has: the start it reads
    -- meanwhile may be either journal's
    if sub.sid ~= sid or sub.held then
      if ids[key] == nil then ids[key] = M.readable_latest(self.db, last, sub) end
      if self.subs[stream] == sub then
        sub.sid, sub.cursor = sid, last
        if sub.held then
          -- sent as it opens, then what it holds from now on: the new journal's past last
          sub.reset, sub.top, sub.held, sub.held_bytes = M.reset(ids[key]), last, {}, 0
          sub.overflow, sub.epoch = nil, self.restores
        elseif not stream:send(M.reset(ids[key])) then
          self:_drop(stream)
        end
      end
    else
      -- one that opened on the new id (between the restore and now) follows the new journal
      -- already, from its own cursor: what came after it, up to the hub's, is its due
      self:_catch_up(stream, sub, last)
    end
  end
end

-- hands sub the rows after its cursor up to id `upto` (it waited for the hub to pass them)
function Hub:_catch_up(stream, sub, upto)
  while self.subs[stream] == sub and sub.cursor < upto do
    local rows = M.fetch(self.db, sub.cursor, sub, BATCH)
    if #rows == 0 then return end
    for _, r in ipairs(rows) do
      if r.id > upto or self.subs[stream] ~= sub then return end
      if readable(sub, r) and not stream:send(M.message(r, sub.people)) then return self:_drop(stream) end
      sub.cursor = r.id
    end
  end
end

--- hub:poll([checked]): hands every journal row newer than the hub's cursor to the
--- subscribers, the store's id checked first (a restore resets the streams) unless checked
function Hub:poll(checked)
  if not checked then self:_check_store() end
  while true do
    local rows = M.fetch(self.db, self.last, {}, BATCH)
    for _, r in ipairs(rows) do self:_deliver(r) end
    if #rows < BATCH then return end
  end
end

local FIELDS = { "at", "kind", "card_id", "run_id", "actor", "data" }

--- carried(payload) -> the journal rows a notification's payload carries, oldest first, as
--- the journal's reads return them | nil (none: an empty payload, or one not of that shape)
function M.carried(payload)
  local list = payload ~= "" and cjson.decode(payload)
  if type(list) ~= "table" or #list == 0 then return nil end
  local rows = {}
  for i, e in ipairs(list) do
    local id = type(e) == "table" and math.tointeger(e.id)
    if not id then return nil end
    local r = { id = id }
    for _, k in ipairs(FIELDS) do
      if e[k] ~= cjson.null then r[k] = e[k] end
    end
    r.run_id = r.run_id and math.tointeger(r.run_id)
    if type(r.kind) ~= "string" or (i > 1 and id <= rows[i - 1].id) then return nil end
    rows[i] = r
  end
  return rows
end

-- One wake-up of the listener. Commit order is id order (orket.store.pgevents), and
-- notifications arrive in commit order, so a carried row whose id is the hub's cursor + 1 is
-- the next event; any other (a rolled-back id's gap, or one missed) sends the hub to the
-- journal from its cursor, which also takes in the rest; rows at or below the cursor were
-- delivered already.
function Hub:_woken(notes, info)
  if info.reconnected or #notes == 0 then
    local why = info.reconnected and "reconnect" or "fallback"
    self.reads[why] = self.reads[why] + 1
    return self:poll()
  end
  local checked = false
  for _, note in ipairs(notes) do
    local rows = M.carried(note.payload or "")
    -- a row the hub is past is rare (a read of the journal ran ahead of its note) but is
    -- what a restore's rows look like (it inserts the new journal from id 1): the store's
    -- id is read then, once per wake-up, before any of them is taken for a new event (and
    -- at every wake-up after a read of it failed, till one succeeds)
    if rows and not checked and (rows[1].id <= self.last or self.sid_unread) then
      checked = true
      self:_check_store()
    end
    for _, r in ipairs(rows or {}) do
      if r.id > self.last then
        if r.id ~= self.last + 1 then rows = nil break end
        self:_deliver(r)
      end
    end
    if rows then
      self.carried = self.carried + 1
    else
      self.reads.notify = self.reads.notify + 1
      self:poll(checked)
      checked = true
    end
  end
end

--- hub:recheck(): ends each stream whose still() no longer holds (the caller who opened
--- it can no longer read it), one check at a time
function Hub:recheck()
  self.checking = true
  local list = {}
  for stream, sub in pairs(self.subs) do
    if sub.still then list[#list + 1] = { stream, sub.still } end
  end
  local watched = {}
  for w in pairs(self.watched) do watched[#watched + 1] = w end
  for _, x in ipairs(list) do
    local ok, allowed = pcall(x[2])
    if ok and not allowed and not self.closed then self:_drop(x[1]) end
  end
  for _, w in ipairs(watched) do
    if self.watched[w] then
      if w.over() then
        self:unwatch(w)
      else
        local ok, allowed = pcall(w.still)
        if ok and not allowed and not self.closed then
          self:unwatch(w)
          pcall(w.stop)
        end
      end
    end
  end
  self.checking = false
end

--- hub:watch{still=fn, stop=fn, over=fn} -> w: another kind of stream than the journal's
--- (a log followed, an app's answer proxied) checked as the hub's own are, at a revoking
--- row and at each heartbeat (hub:recheck): once still() is false, stop() ends it. over():
--- whether it ended by itself (then it is forgotten, unasked; cheap, no store read).
--- Forgotten with hub:unwatch(w).
function Hub:watch(w)
  if self.nwatched >= self.sweep_at then -- those over (ended) left by their ways go first
    for x in pairs(self.watched) do
      if x.over() then self.watched[x], self.nwatched = nil, self.nwatched - 1 end
    end
    self.sweep_at = math.max(64, self.nwatched * 2)
  end
  self.watched[w], self.nwatched = true, self.nwatched + 1
  return w
end

function Hub:unwatch(w)
  if self.watched[w] then self.watched[w], self.nwatched = nil, self.nwatched - 1 end
end

--- hub:broadcast(text): to every subscriber (heartbeats)
function Hub:broadcast(text)
  text = httpd.blob(text) -- one copy, shared by every stream's queue
  for stream in pairs(self.subs) do
    if not stream:send(text) then self:_drop(stream) end
  end
end

-- What the hub keeps a stream opened with hub:open under: heartbeats and the end go to the
-- stream once hub:follow gives it (before, there is nothing to send them to)
local Opening = {}
Opening.__index = Opening
function Opening:send(msg) return self.stream == nil or self.stream:send(msg) end
function Opening:close() if self.stream then self.stream:close() end end

-- runs f(...) for the stream opening as sub under key; if it raises, or the task is closed
-- while it waits (task.cancel), the stream leaves the subscribers first
local function opening_read(self, key, sub, f, ...)
  local read <close> = setmetatable({}, { __close = function(r)
    if not r.done and self.subs[key] == sub then self.subs[key] = nil end
  end })
  local v = f(...)
  read.done = true
  return v
end

-- registers a stream opening live only under key, holding, then reads its start (the
-- journal's newest id) -> its record
function Hub:_open(key, filter, sid, epoch, still)
  epoch, sid = epoch or self.restores, sid or self.sid
  local sub = { run = filter.run, card = filter.card, people = filter.people, own = filter.own,
    cursor = self.last, still = still, sid = sid, epoch = epoch, held = {}, held_bytes = 0 }
  -- the caller read the store's id before a restore the hub has seen since: the stream
  -- follows the new journal, its client told first (a reset), as every open stream was
  if self.restores ~= epoch and sid ~= self.sid then sub.sid, sub.stale, sub.epoch = self.sid, true, self.restores end
  self.subs[key] = sub
  local top = opening_read(self, key, sub, M.latest, self.db)
  -- (a restore seen meanwhile set where it starts: hub:_reset_streams)
  if not sub.reset then sub.top = top end
  return sub
end

--- hub:open(filter[, sid, epoch]) -> a live-only stream's start, for hub:follow: the
--- journal's newest id is read now, the stream already among the subscribers, holding what
--- the hub hands it until hub:follow sends that; so every row committed after the read
--- reaches it once (on PostgreSQL the read waits on the store, and the hub may pass rows on
--- meanwhile). A route reads it before it answers: its client must not see the stream open
--- before its start is read. Not followed: hub:forget(start).
function Hub:open(filter, sid, epoch)
  local start = setmetatable({}, Opening)
  start.sub = self:_open(start, filter, sid, epoch)
  return start
end

-- sends a stream opened live only (hub:_open, under key) what it held past its start, in
-- order, then has it follow live -> false: it ended
function Hub:_start(stream, key, sub)
  local function ended()
    if self.subs[key] == sub then self.subs[key] = nil end
    stream:close()
    return false
  end
  if sub.stale and not sub.reset and self.subs[key] == sub then
    local id = opening_read(self, key, sub, M.readable_latest, self.db, sub.top, sub)
    if not sub.reset then sub.reset = M.reset(id) end
  end
  if self.subs[key] ~= sub then return false end -- ended meanwhile
  local held, top, sent = sub.held, sub.top, sub.reset ~= nil
  sub.held, sub.held_bytes = nil, nil -- live from here: no wait till the end
  if sub.reset and not stream:send(sub.reset) then return ended() end
  sub.reset = nil
  local last = top -- the newest id it was sent past its start (none: its start)
  for _, h in ipairs(held) do
    if h.id > top then
      if not stream:send(h.msg) then return ended() end
      sent, last = true, h.id
    end
  end
  if sub.overflow then return self:_resume(stream, key, sub, last, sent) end
  -- (not the cursor it registered with: a restore may have left the hub's stale then)
  sub.cursor = last
  return true
end

-- has a stream that held all it may (HOLD_BYTES) read the rest from the journal after id
-- `last`, as one given an id does, then follow live -> false: it ended. A read that fails
-- ends it (the error raised again): its client reconnects from the last id it got; if it
-- got none, it is sent a reset to its start's newest id it may read first (its client would
-- reconnect live only, and miss what was committed since).
function Hub:_resume(stream, key, sub, last, sent)
  self.subs[key] = nil -- the replay registers it again, replaying (the hub hands it no rows)
  local at = { sent = sent }
  local filter = { run = sub.run, card = sub.card, people = sub.people, own = sub.own }
  local ok, v = pcall(self._replay, self, stream, key, filter, last, sub.still, sub.epoch, sub.sid, at)
  if ok then return v end
  if not at.sent then
    local got, id = true, last
    if not sub.people then got, id = pcall(M.readable_latest, self.db, last, sub) end
    if got then stream:send(M.reset(id)) end
  end
  stream:close()
  error(v, 0)
end

--- hub:follow(stream, filter, after[, still, epoch, sid, start]): filter {run=, card=, people=
--- whether the people's rows go too, own= the caller's actor, whose own sign-ins go
--- (M.own_sign)}; replays rows after id `after` (waiting for the client to take them,
--- REPLAY_HIGH at a time, so a long replay is never queued whole), then subscribes the stream
--- for live rows. `after` nil: live only, from start (hub:open; default: one read here):
--- every row committed after its read, once each and in order, none before. Returns false
--- when the client left. still() -> whether its caller may still read it, asked at each
--- heartbeat. epoch: hub:epoch() when the caller read the journal's id it passes (default:
--- now), sid: the store's id it read before (store_of; default: the hub's): a restore the hub
--- sees after it resets the stream (hub:_check_store), as one it sees while this replays,
--- unless the caller read the new id already.
function Hub:follow(stream, filter, after, still, epoch, sid, start)
  if after == nil then
    if not start then return self:_start(stream, stream, self:_open(stream, filter, sid, epoch, still)) end
    start.stream, start.sub.still = stream, still
    return self:_start(stream, start, start.sub)
  end
  return self:_replay(stream, stream, filter, after, still, epoch, sid)
end

-- hub:follow's replay after id `after`, under key; at: {sent=} set once it sent a row
-- (hub:_resume). The stream is a subscriber from the start, marked replaying: counted
-- (hub:count), given heartbeats, checked with still() (hub:recheck, which ends it) and ended by
-- hub:close() as a live one is. The hub does not send it rows meanwhile (they would come out
-- of order), nor resets it (the replay sees a restore itself): it holds those it hands on
-- during each read of the journal and the sends that follow (hub:_hold, HOLD_BYTES at most),
-- as an opening stream does. Its replay's own place in the journal is sub.pos.
function Hub:_replay(stream, key, filter, after, still, epoch, sid, at)
  if self.closed then
    stream:close()
    return false
  end
  local sub = { run = filter.run, card = filter.card, people = filter.people, own = filter.own, pos = after,
    cursor = self.last, held = {}, held_bytes = 0, still = still, sid = sid or self.sid,
    epoch = epoch or self.restores, replaying = true }
  self.subs[key] = sub
  -- however it ends before it caught up (gone, a read raised, its task closed), it leaves
  local _ <close> = setmetatable({}, { __close = function()
    if sub.replaying and self.subs[key] == sub then self.subs[key] = nil end
  end })
  while true do
    local how = self:_replay_rows(stream, key, sub, at)
    if how == nil then return false end
    if how == "caught" then break end
    -- the store was restored since the caller's read, or during the replay: whatever the
    -- place, it is the old journal's. The new journal's end is read here: the hub's own
    -- cursor is the old journal's until its reset has read it (hub:_check_store); then the
    -- replay goes on with what the new journal got while these reads waited
    local now, nsid = self.restores, self.sid
    local top = M.latest(self.db)
    local id = M.readable_latest(self.db, top, sub)
    if self.subs[key] ~= sub or not stream:send(M.reset(id)) then return false end
    if at then at.sent = true end
    sub.pos, sub.epoch, sub.sid = top, now, nsid
  end
  -- what the hub handed on past the last read's rows, then live: no wait from that read's
  -- rows to here, so nothing slips between (at most HOLD_BYTES, queued at once)
  for _, h in ipairs(sub.held) do
    if h.id > sub.pos then
      if not stream:send(h.msg) then return false end
      if at then at.sent = true end
      sub.pos = h.id
    end
  end
  -- (the read may have passed the hub's cursor: rows it sent, the hub has yet to hand on)
  sub.cursor = sub.pos
  sub.replaying, sub.pos, sub.held, sub.held_bytes, sub.overflow = nil, nil, nil, nil, nil
  return true
end

-- sends a replaying sub the rows after its place, REPLAY_HIGH queued at most -> "caught" (it
-- has every row up to where the hub was as its last read began, and holds what the hub
-- handed on since) | "reset" (the store was restored) | nil: it ended (its client gone, or the
-- hub dropped it meanwhile: each wait is followed by a look at whether it is still the hub's)
function Hub:_replay_rows(stream, key, sub, at)
  local function restored() return self.restores ~= sub.epoch and sub.sid ~= self.sid end
  while true do
    -- A read that is not a full batch has every row of the sub's up to the journal's end as
    -- it read it, at or past the hub's cursor when the read began; the hub's, from that
    -- cursor on, are held. So the replay catches up at the first such read, under sustained
    -- load too (waiting for a read that finds none, it would chase the load as it lasts).
    -- (A round that a restore overlaps may not: the hub's cursor was the old journal's, or
    -- moved to the new one's. It catches up as the replay did before: at a read that finds
    -- none, the hub not moved during it.)
    sub.held, sub.held_bytes, sub.overflow, sub.cursor = {}, 0, nil, self.last
    local seen, restores, trusted = self.last, self.restores, not self.resetting
    local rows = M.fetch(self.db, sub.pos, sub, BATCH)
    if self.subs[key] ~= sub then return nil end
    if restored() then return "reset" end
    for _, r in ipairs(rows) do
      if readable(sub, r) then
        local msg = M.message(r, sub.people)
        if stream:queued() + #msg > M.REPLAY_HIGH and (stream:drain(M.REPLAY_HIGH // 2) or self.subs[key] ~= sub) then
          return nil
        end
        if not stream:send(msg) then return nil end
        if at then at.sent = true end
      end
      sub.pos = r.id
    end
    -- a restore seen while the sends waited: this round cannot catch up (the hub's restores
    -- moved, and it read rows), and the next round's read would reset; resetting here spares
    -- that round's wait for the client and its read
    if restored() then return "reset" end
    trusted = trusted and self.restores == restores and #rows < BATCH and not sub.overflow
    if trusted or (#rows == 0 and self.last == seen) then return "caught" end
    if stream:drain() or self.subs[key] ~= sub then return nil end
  end
end

function Hub:forget(stream) self.subs[stream] = nil end

--- hub:epoch() -> how many restores of its store the hub has seen: taken by a stream before
--- it reads the journal's id, for hub:follow
function Hub:epoch() return self.restores end

--- hub:journal_reads() -> {timer=, notify=, reconnect=, fallback=}: why the journal was
--- read, counted since the hub started (/metrics)
function Hub:journal_reads() return self.reads end

--- hub:notified() -> notifications whose events were delivered from their payload, with
--- no read of the journal, since the hub started (/metrics)
function Hub:notified() return self.carried end

--- hub:count() -> subscribers
function Hub:count()
  local n = 0
  for _ in pairs(self.subs) do n = n + 1 end
  return n
end

--- hub:close(): stops polling and ends every stream (their clients see the end)
function Hub:close()
  if self.closed then return end
  self.closed = true
  if self.poll_timer then self.poll_timer:close() end
  if self.listener then self.listener:close() end -- ends the listening task
  self.beat_timer:close()
  for stream in pairs(self.subs) do stream:close() end
  self.subs = {}
  self.watched, self.nwatched = {}, 0 -- (each ends with the server's stop its own way)
end

return M
