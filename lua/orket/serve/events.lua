-- orket.serve.events: the journal (the store's events table) as Server-Sent Events. One hub
-- polls the journal on a timer, so events written by any process (a run, `orket answer`)
-- reach every subscriber; a subscriber first replays what it missed (after an id), then
-- follows live. A client that falls behind is disconnected by the stream's bounded queue
-- (orket.c.httpd); it reconnects with Last-Event-ID and loses nothing.
local uv = require "luv"
local jsonout = require "orket.jsonout"
local sj = require "orket.store.journal"

local M = {}

local BATCH = 500

local function str(v) return v == nil and "null" or jsonout.encode(v) end

--- message(row) -> the SSE message of one journal row: its id as the SSE id, its kind as
--- the event name, the event as one line of JSON {id, at, kind, card, run, actor, data}
function M.message(r)
  local data = jsonout.plain((r.data or "{}"):gsub("[\r\n]", " ")) -- stored JSON is one line; stay safe
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

local Hub = {}
Hub.__index = Hub

-- How often the journal is read. A commit reaches subscribers within one interval (at 250 ms
-- that was most of the commit-to-receipt time). A poll that finds nothing is one seek on
-- the events' primary key, about 8 us, so 50 a second cost well under 0.1% of a CPU. A
-- cheaper wake-up does not pay: PRAGMA data_version costs about as much as that seek
-- (5 us), and it does not move for this connection's own writes (a comment written through
-- the API), which would then need a second signal.
M.POLL_MS = 20

--- new(db, {poll_ms=M.POLL_MS, heartbeat_ms=15000, on_error=fn(msg)}) -> hub (started)
function M.new(db, o)
  o = o or {}
  local self = setmetatable({ db = db, subs = {}, last = M.latest(db), on_error = o.on_error or function() end }, Hub)
  self.poll_timer, self.beat_timer = uv.new_timer(), uv.new_timer()
  local poll_ms, beat_ms = o.poll_ms or M.POLL_MS, o.heartbeat_ms or 15000
  -- each poll in a task, one at a time: on PostgreSQL the read waits on the server, and a
  -- timer's callback cannot wait (on SQLite the task ends before spawn returns)
  local polling = false
  self.poll_timer:start(poll_ms, poll_ms, function()
    if polling then return end
    polling = true
    require("orket.task").spawn(function()
      local ok, err = pcall(self.poll, self)
      polling = false
      if not ok then self.on_error(tostring(err)) end
    end)
  end)
  self.beat_timer:start(beat_ms, beat_ms, function() self:broadcast(": heartbeat\n\n") end)
  return self
end

local function matches(sub, r)
  return (sub.run == nil or sub.run == r.run_id) and (sub.card == nil or sub.card == r.card_id)
end

function Hub:_drop(stream)
  if self.subs[stream] then
    self.subs[stream] = nil
    stream:close()
  end
end

--- hub:poll(): hands every journal row newer than the last poll to the subscribers that
--- want it (each only rows newer than its own cursor)
function Hub:poll()
  while true do
    local rows = M.fetch(self.db, self.last, {}, BATCH)
    for _, r in ipairs(rows) do
      local msg
      for stream, sub in pairs(self.subs) do
        if r.id > sub.cursor and matches(sub, r) then
          msg = msg or M.message(r)
          sub.cursor = r.id
          if not stream:send(msg) then self:_drop(stream) end
        end
      end
      self.last = r.id
    end
    if #rows < BATCH then return end
  end
end

--- hub:broadcast(text): to every subscriber (heartbeats)
function Hub:broadcast(text)
  for stream in pairs(self.subs) do
    if not stream:send(text) then self:_drop(stream) end
  end
end

--- hub:follow(stream, filter, after): replays rows after id `after` (waiting for the client
--- to take each batch, so a long replay is never queued whole), then subscribes the stream
--- for live rows. `after` nil: live only, from now. Returns false when the client left.
function Hub:follow(stream, filter, after)
  local cursor = after
  if cursor == nil then
    cursor = M.latest(self.db)
  else
    while true do
      local rows = M.fetch(self.db, cursor, filter, BATCH)
      if #rows == 0 then break end
      for _, r in ipairs(rows) do
        if not stream:send(M.message(r)) then return false end
        cursor = r.id
      end
      if stream:drain() then return false end -- gone
    end
  end
  -- No wait between the last (empty) fetch and here: nothing can slip between the two.
  self.subs[stream] = { run = filter.run, card = filter.card, cursor = cursor }
  return true
end

function Hub:forget(stream) self.subs[stream] = nil end

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
  self.poll_timer:close()
  self.beat_timer:close()
  for stream in pairs(self.subs) do stream:close() end
  self.subs = {}
end

return M
