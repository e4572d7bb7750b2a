-- The statement floor of a run (bench/engine.lua's "statements" mode): every call a run
-- makes on the store's connections (run, rows, row, exec, and the transactions around
-- them: tx, read), captured with their bound values, then made again through the same
-- connection API, in the same order and nesting, on a copy of the store as it was before
-- the run, with nothing else in the process. Its CPU is what the run's statements cost
-- whatever builds them: the reads and savepoints a turn runs besides the journal floor's
-- writes, each row handed back as a Lua table as the engine gets it. What the run costs
-- above it is the rest of the engine: the orchestration, its scripts, the records' JSON
-- and the collector's share of all that.
local M = {}

local VERBS = { "exec", "run", "rows", "row", "tx", "read" }

-- capture(methods) -> log, stop(): wraps the connection methods (orket.c.store's, shared by
-- every connection) so each call is appended to log as {verb, sql, n, args...} and each
-- transaction as {"tx"|"read"} ... {"end", rolled}; stop() puts the methods back.
-- log.mark() and log.stop() set where the timed part starts and ends (the run's execute).
function M.capture(methods)
  local log, orig = { n = 0 }, {}
  local function push(e)
    log.n = log.n + 1
    log[log.n] = e
  end
  for _, v in ipairs(VERBS) do orig[v] = methods[v] end
  for _, v in ipairs({ "exec", "run", "rows", "row" }) do
    local f = orig[v]
    methods[v] = function(self, sql, ...)
      push({ v, sql, select("#", ...), ... })
      return f(self, sql, ...)
    end
  end
  for _, v in ipairs({ "tx", "read" }) do
    local f = orig[v]
    methods[v] = function(self, fn, ...)
      push({ v })
      local r = table.pack(f(self, fn, ...))
      -- rolled back: raised inside, or returned nil, msg (core/lstore.c's contract)
      push({ "end", r[1] == nil and r.n >= 2 })
      return table.unpack(r, 1, r.n)
    end
  end
  function log.mark() push({ "mark" }) end
  function log.stop() push({ "stop" }) end
  return log, function()
    for _, v in ipairs(VERBS) do methods[v] = orig[v] end
  end
end

-- save(log, path): the log as a Lua chunk (%q keeps integers, floats and any bytes exact)
function M.save(log, path)
  local f = assert(io.open(path, "w"))
  f:write("return {\n")
  for i = 1, log.n do
    local e, parts = log[i], {}
    local n = e[1] == "end" and 2 or (e[3] and e[3] + 3 or 1) -- mark, stop, tx, read: 1
    for j = 1, n do
      local x = e[j]
      parts[j] = x == nil and "nil" or string.format("%q", x)
    end
    f:write("{", table.concat(parts, ","), "},\n")
  end
  f:write("}\n")
  f:close()
end

-- counts(log) -> statements, reads, writes, transactions in the timed part
function M.counts(log)
  local timed, st, reads, writes, txs = false, 0, 0, 0, 0
  for i = 1, (log.n or #log) do
    local v = log[i][1]
    if v == "mark" or v == "stop" then timed = v == "mark"
    elseif timed then
      if v == "rows" or v == "row" then st, reads = st + 1, reads + 1
      elseif v == "run" or v == "exec" then st, writes = st + 1, writes + 1
      elseif v == "tx" or v == "read" then txs = txs + 1 end
    end
  end
  return st, reads, writes, txs
end

-- replay(conn, log, clock) -> CPU us of the timed part (after the mark): the calls made
-- again in order, each transaction around the calls it held, rolled back where it was
local function replay(conn, log, cpu_now)
  local i, t0, t1 = 1, nil, nil
  local function calls(depth)
    while i <= #log do
      local e = log[i]
      i = i + 1
      local v = e[1]
      if v == "end" then
        assert(depth > 0, "statements: an end with no transaction open")
        if e[2] then return nil, "rolled back as in the run" end
        return true
      elseif v == "mark" then
        t0 = cpu_now()
      elseif v == "stop" then
        t1 = cpu_now()
      elseif v == "tx" or v == "read" then
        conn[v](conn, calls, depth + 1)
      else
        conn[v](conn, e[2], table.unpack(e, 4, 3 + e[3]))
      end
    end
    assert(depth == 0, "statements: the log ends inside a transaction")
    return true
  end
  calls(0)
  assert(t0 and t1, "statements: the log has no timed part")
  return t1 - t0
end
M.replay = replay

return M
