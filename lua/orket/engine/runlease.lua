-- orket.engine.runlease: a process's leases on the whole runs it executes (`orket serve`),
-- kept in the store (orket.store.leases' run_* operations), so that every process of one
-- store sees which runs are live wherever its project folder is: the folder's run lock
-- files (orket.engine.claims) are seen only by processes sharing that folder. A lease is
-- renewed every third of its time and dropped when the run ends (a drop the store could not
-- take is retried, and the run known ended here meanwhile: ended_here); a process killed leaves
-- its lease to lapse, and one of this boot and pid namespace whose pid is gone, or taken by
-- a process started at another time, is dead at once. A lease that lapsed while the store was away is renewed if its row still names this process
-- (nobody took it); one found another's, at a renewal or in a step's transaction (guard,
-- fence), stops its run, whose steps are no longer written here. Contract: docs/store.md,
-- "Several servers".
local uv = require "luv"
local task = require "orket.task"
local leases = require "orket.store.leases"
local pidstart = require "orket.sandboxes.pidstart"

local M = {}

M.TTL_MS = 15000

local host = pidstart.host
local me -- this process's owner name, made at its first use

-- Where this process's pids mean something (orket.sandboxes.pidstart.place: boot id, pid and
-- time namespaces), nil where /proc does not say
local place = pidstart.place
M.place = place

-- pid's start time (stat's field 22, clock ticks since boot, as text) | nil, "gone" when
-- there is no such process or it exited (a zombie: an exited process its parent has not
-- reaped, as a PID 1 without an init leaves it) | nil, "unknown" when /proc does not say
-- (hidepid hides or refuses another user's files): a live run taken for dead would be
-- worked twice. kill(pid, 0) first: ESRCH, no such process, is the only "gone" it tells;
-- EPERM is another user's live process.
local function stat_start(pid)
  local _, _, kerr = uv.kill(pid, 0)
  if kerr and kerr:match("^ESRCH$") then return nil, "gone" end -- (a system's name, not an orket code)
  -- (the reader is orket.sandboxes.pidstart's; what a failure means is this lease's own)
  local start, state, errno = pidstart.read(pid)
  -- (ENOENT: it went since the kill)
  if not start then return nil, (state == "open" and errno == 2 and kerr == nil) and "gone" or "unknown" end
  if state == "Z" or state == "X" then return nil, "gone" end
  if start:match("^%d+$") then return start end
  return nil, "unknown"
end

--- owner() -> this process's name in run_leases: host/place/pid.start/nonce, place being
--- where its pid means something (boot id, pid and time namespaces; "-" where unknown) and start
--- the process's start time (/proc/PID/stat's starttime), so that a pid another process
--- took after this one died is not this one; a pid reused after a restart is another owner
function M.owner()
  if not me then
    local b = uv.random(6)
    local pid = math.tointeger(uv.os_getpid()) -- (luv may give it as a float)
    local start = place and stat_start(pid)
    me = string.format("%s/%s/%d%s/%s", host, place or "-", pid, start and ("." .. start) or "",
      (b or tostring(os.time())):gsub(".", function(c) return string.format("%02x", c:byte()) end))
  end
  return me
end

--- dead(owner) -> true when owner is a process of this boot and pid namespace that is gone,
--- exited (a zombie: its lease can be taken before it lapses) or, when the owner names its
--- start time, whose pid another process has taken since (the start times differ); any
--- other process (another host, another container, an owner named before places were) is
--- never known dead here
function M.dead(owner)
  local where, pid, start = tostring(owner):match("^.*/([^/]+)/(%d+)%.?(%d*)/%x+$")
  if not place or where ~= place then return false end
  pid = math.tointeger(tonumber(pid))
  if not pid then return false end
  -- (this process's own pid: the owner is this process unless its start time says otherwise)
  if pid == uv.os_getpid() and (start == "" or owner == M.owner()) then return false end
  local now, why = stat_start(pid)
  if not now then return why == "gone" end
  -- an owner named without its start time (an older orket) is known by its pid alone
  return start ~= "" and now ~= start
end

-- The runs this process ended whose lease's DELETE failed (the store could not be written:
-- a full disk), per store: {ids = {[id] = ms when dropped}, took = {[id] = true: a take
-- was tried since}, timer=}. Their rows still name this process until the drop is retried
-- or they lapse: holders() leaves them out (this process knows they ended; its own resume
-- of one was refused, as another folder's run, until the lease lapsed), and the drop is
-- retried each RETRY_MS while the lease may be live. A keep() of the run (it goes here
-- again) ends the mark.
local ended = setmetatable({}, { __mode = "k" })
M.RETRY_MS = 1000

local function ms() return uv.hrtime() // 1000000 end

local function unmark(db, id)
  local e = ended[db]
  if e then e.ids[id], e.took[id] = nil, nil end
end

--- ended_here(db, id) -> whether run id ended in this process while the store could not
--- take its lease's drop, which is still to be done
function M.ended_here(db, id)
  local e = ended[db]
  return e ~= nil and e.ids[id] ~= nil
end

--- holders(db) -> {[run id] = owner} of the runs whose lease is live and whose owner is not
--- known dead, nor this process for a run it ended (ended_here: its lease's drop waits)
function M.holders(db)
  local out = {}
  for _, h in ipairs(leases.run_holders(db)) do
    if not M.dead(h.owner) and not (h.owner == M.owner() and M.ended_here(db, h.run)) then out[h.run] = h.owner end
  end
  return out
end

--- take(db, id) -> nil | owner: run id leased to this process (in a transaction of its
--- own), or the owner whose live lease keeps it
function M.take(db, id)
  -- a run ended here taken again (its resume): its old lease's drop is retried no more, as
  -- this take may be committed (the lease the run's again) or rolled back with the caller's
  -- transaction; the run's keep() ends the mark, else the lease lapses
  local e = ended[db]
  if e and e.ids[id] then e.took[id] = true end
  local held
  assert(db:tx(function()
    local h = leases.run_take(db, id, M.owner(), M.TTL_MS)
    if h and M.dead(h.owner) then h = leases.run_take(db, id, M.owner(), M.TTL_MS, h.owner) end
    held = h and h.owner or nil
    return true
  end))
  return held
end

-- This process's runs, per store: {timer=, runs = {id -> on_lost}, sure = {id -> ms: the
-- monotonic time before the query that last found the lease held}, kept = {id -> the
-- number of the keep() that kept it}, keeps = that number's last}
local keepers = setmetatable({}, { __mode = "k" })

-- Renews the runs k holds, and only those: a run given up here while the store was away
-- (drop's DELETE failed) still names this process, and was kept live with no engine.
local function renew(db, k)
  local sent = ms()
  local ids, kept = {}, {}
  for id in pairs(k.runs) do ids[#ids + 1], kept[id] = id, k.kept[id] end
  -- one statement, outside a transaction: it commits on the server whole even if this
  -- process stalls before it reads the answer, so no lock outlives a stall (a transaction
  -- holds the journal's lock, and a stopped server kept every other writer waiting)
  local ok, held = pcall(leases.run_renew, db, M.owner(), M.TTL_MS, ids)
  if not ok then return end -- the store away: renewed at the next tick (a lapsed lease nobody took is ours still)
  -- (the runs asked about only: one kept meanwhile was not asked, and is not lost; nor one
  -- dropped and kept again meanwhile, a stop and a resume: its lease was taken anew after
  -- the renewal's statement may have found it dropped)
  for _, id in ipairs(ids) do
    local on_lost = k.kept[id] == kept[id] and k.runs[id] or nil -- (nil: dropped meanwhile)
    if on_lost and held[id] then
      k.sure[id] = sent
    elseif on_lost then
      k.runs[id], k.sure[id], k.kept[id] = nil, nil, nil
      on_lost(id)
    end
  end
end

--- guard(db, id, e, on_lost): each step of engine e's run id is written only while this
--- process holds the run's lease (e.run_fence, asked by Run:check_lease in the step's
--- transaction); the first time it is found another's, on_lost(id) is called on the loop's
--- next turn (not inside that transaction: it stops the run)
function M.guard(db, id, e, on_lost)
  local lost = false
  e.run_fence = function()
    if M.fence(db, id) then return true end
    if not lost then
      lost = true
      local t = uv.new_timer()
      t:start(0, 0, function()
        t:close()
        task.spawn(on_lost, id)
      end)
    end
    return false
  end
end

--- watch(db, id, e, on_lost): keep() renewing run id's lease and guard() fencing engine e's
--- steps, as a run this process executes needs both; on_lost(id) is called once, whichever
--- of the two finds the lease another's first
function M.watch(db, id, e, on_lost)
  local said = false
  local function once(...)
    if said then return end
    said = true
    return on_lost(...)
  end
  M.keep(db, id, once)
  M.guard(db, id, e, once)
end

--- fence(db, id) -> whether this process still holds run id's lease, asked in the caller's
--- transaction (each step's) so that a step is written only by the lease's holder. Cheap:
--- the store is asked only when the last renewal that found it held is older than half the
--- lease (the store away meanwhile, or the loop held up), and then it is renewed at once.
function M.fence(db, id)
  local k = keepers[db]
  local sure = k and k.sure[id]
  local now = ms()
  if sure and now - sure < M.TTL_MS // 2 then return true end
  local held = leases.run_fence(db, id, M.owner(), M.TTL_MS)
  if k and held then k.sure[id] = now end
  return held
end

--- keep(db, id, on_lost): this process renews run id's lease until drop(); on_lost(id) is
--- called once if a renewal finds it another's (lapsed and taken)
function M.keep(db, id, on_lost)
  unmark(db, id) -- (it goes here again: its lease is no drop's to take)
  local k = keepers[db]
  if not k then
    k = { runs = {}, sure = {}, kept = {}, keeps = 0 }
    keepers[db] = k
  end
  k.runs[id] = on_lost
  k.keeps = k.keeps + 1
  k.kept[id] = k.keeps
  if k.timer then return end
  local period = M.TTL_MS // 3
  k.timer = uv.new_timer()
  k.timer:start(period, period, function()
    if k.renewing then return end
    k.renewing = true
    task.spawn(function()
      renew(db, k)
      k.renewing = false
    end)
  end)
  k.timer:unref()
end

-- The DELETE of this process's lease on run id, in a transaction of its own -> whether it
-- was done. retried: only while the run is still marked ended here and not taken since.
local function delete(db, id, retried)
  return (pcall(function()
    assert(db:tx(function()
      local e = ended[db]
      if retried and not (e and e.ids[id] and not e.took[id]) then return true end
      leases.run_drop(db, id, M.owner())
      unmark(db, id)
      return true
    end))
  end))
end

-- Each RETRY_MS, the pending drops of db's ended runs are tried again, until each is done,
-- the run taken again, or its lease surely lapsed (twice its time since the drop: it keeps
-- nobody off then, and holders() leaves it out, marked still)
local function retry_later(db, e)
  if e.timer then return end
  local function due()
    local out = {}
    for id, since in pairs(e.ids) do
      if not e.took[id] and ms() - since <= 2 * M.TTL_MS then out[#out + 1] = id end
    end
    return out
  end
  e.timer = uv.new_timer()
  e.timer:start(M.RETRY_MS, M.RETRY_MS, function()
    if e.retrying then return end
    e.retrying = true
    task.spawn(function()
      for _, id in ipairs(due()) do
        if not delete(db, id, true) then break end -- the store still cannot: at the next tick
      end
      e.retrying = false
      if not due()[1] and e.timer then
        e.timer:close()
        e.timer = nil
      end
    end)
  end)
  e.timer:unref()
end

--- drop(db, id): the run is over in this process: its lease goes. A store that cannot take
--- the DELETE (away, its disk full) leaves the run marked ended here (ended_here; holders
--- leaves its lease out) and the drop retried each RETRY_MS while the lease may be live
function M.drop(db, id)
  local k = keepers[db]
  if k then
    k.runs[id], k.sure[id], k.kept[id] = nil, nil, nil
    if not next(k.runs) and k.timer then
      k.timer:close()
      k.timer = nil
    end
  end
  if delete(db, id) then return end
  local e = ended[db]
  if not e then
    e = { ids = {}, took = {} }
    ended[db] = e
  end
  e.ids[id], e.took[id] = ms(), nil
  retry_later(db, e)
end

return M
