-- orket.mcp.manager: the MCP servers orket.lua names, for an engine: each connected at start
-- (orket.mcp.client), its tools offered as SERVER__TOOL (a "-" in the server's name reads
-- "_"), listed again on notifications/tools/list_changed, and a server that goes down
-- restarted with backoff while its tools answer EUNAVAILABLE. A name two tools would share
-- (servers a and a_: a's _b and a_'s b) routes to neither, so no server takes another's calls. wrap(registry) puts the MCP
-- tools beside the tool files' (orket.tools) for the gate and the roles; the engine runs
-- their calls as effects (orket.engine.turn), through the gate, policies and approvals.
-- Where a stdio server may write: the connection that lists its tools runs in a scratch
-- directory of its own; a card's calls go to a process of the server started in that
-- card's directory for the card's turn (release ends it), so what it writes is the card's
-- change, never main's view (workspace/).
local uv = require "luv"
local task = require "orket.task"
local client = require "orket.mcp.client"
local inert = require "orket.inert"
local rt = require "orket.c.runtime"
local gate = require "orket.c.gate"
local jsonout = require "orket.jsonout"

local M = {}

M.BACKOFF_MS = { 500, 1000, 2000, 5000, 10000, 30000 }
-- notifications/tools/list_changed lists a server's tools again at most once in this long:
-- a server sending it after every listing would otherwise keep Orket listing without pause
M.RELIST_MS = 2000
-- How long release waits for a card's server processes to be gone (past the 2 s SIGKILL
-- backstop of orket.mcp.client's close, for a confinement helper that does not end on SIGTERM)
M.RELEASE_WAIT_MS = 2500
-- Sessions lost (HTTP 404) with no call answered between, when it is said once
M.LOSSES_SAID = 3

local Manager = {}
Manager.__index = Manager
local merged -- (below) a server's listing merged with its card processes'

--- new(section, {log=, project_dir=}) -> manager (servers not started); section: settings.mcp;
--- project_dir: the folder of orket.lua (orket.mcp.client's start hint)
function M.new(section, o)
  o = o or {}
  local self = setmetatable({ servers = {}, names = {}, log = o.log or function() end, closed = false,
    by_tool = {}, defs = {}, project_dir = o.project_dir }, Manager)
  for _, name in ipairs(section and section.names or {}) do
    self.names[#self.names + 1] = name
    self.servers[name] = { spec = section.servers[name], state = "stopped", failures = 0, tools = {}, refusals = {} }
  end
  return self
end

local function orket_name(server, tool) return server .. "__" .. client.orket_spelling(tool) end
M.orket_name = orket_name

-- The longest name a provider takes for a tool: a longer Orket name is refused
M.MAX_NAME = 64

-- The configured server, other than except, whose tools' names name could be (it starts
-- with NAME__) and which has not listed its tools since it was configured | nil. Two
-- servers' Orket names can meet only as a's _b (or -b) and a_'s b: both a___b. down: only a
-- server that failed (not one still starting).
function Manager:_unlisted_owner(name, except, down)
  for _, t in ipairs(self.names) do
    local s = self.servers[t]
    if t ~= except and not s.listed and (not down or s.state == "down") and #name > #t + 2
        and name:sub(1, #t + 2) == t .. "__" then
      return t
    end
  end
end

-- A refused tool's line, with the name as its server gave it
-- (naming: refused for its Orket name, which orket validate warns of)
local function refusal(tool, why) return { name = tool, why = why, naming = true } end

-- Every server's tool definitions, rebuilt after each listing: SERVER__TOOL routes to a tool
-- only when no other tool has that name (of another server, or of the same one) and no
-- server that could have it is still unlisted; otherwise it routes to none, each holder
-- refused with a line naming the others, so a server can never take another's calls.
function Manager:_reindex()
  local holders, order = {}, {}
  for _, name in ipairs(self.names) do
    for _, t in ipairs(self.servers[name].tools or {}) do
      local n = orket_name(name, t.name)
      if not holders[n] then
        holders[n] = {}
        order[#order + 1] = n
      end
      holders[n][#holders[n] + 1] = { server = name, tool = t }
    end
  end
  local defs, refused = {}, {}
  for _, name in ipairs(self.names) do refused[name] = {} end
  for _, n in ipairs(order) do
    local h = holders[n]
    if #n > M.MAX_NAME then
      local x = h[1]
      refused[x.server][#refused[x.server] + 1] = refusal(x.tool.name,
        string.format("its Orket name %s is longer than %d characters", n, M.MAX_NAME))
    elseif #h > 1 then
      for _, x in ipairs(h) do
        local others = {}
        for _, y in ipairs(h) do
          if y ~= x then others[#others + 1] = string.format("%s's tool %s", y.server, y.tool.name) end
        end
        refused[x.server][#refused[x.server] + 1] = refusal(x.tool.name, string.format("its Orket name %s is also "
          .. "%s: refused in both, as no call may reach the wrong server (rename one of the servers)", n,
          table.concat(others, " and ")))
      end
    else
      local x = h[1]
      local wait = self:_unlisted_owner(n, x.server)
      if wait then
        local f = refusal(x.tool.name, string.format("held: its Orket name %s could be a tool of %s, which has not "
          .. "listed its tools yet", n, wait))
        -- while that server is still starting, the hold is not said: it lasts until its listing
        f.quiet = self.servers[wait].state ~= "down"
        refused[x.server][#refused[x.server] + 1] = f
      else
        local t, d = x.tool, "[" .. x.server .. "] " .. x.tool.description
        defs[n] = { name = n, description = d, effect = "mcp", parameters = t.schema, compiled_schema = t.compiled,
          mcp = { server = x.server, tool = t.name }, spec = { name = n, description = d, parameters = t.schema } }
      end
    end
  end
  self.defs = defs
  for _, name in ipairs(self.names) do
    local s, parts = self.servers[name], {}
    s.name_refused = refused[name]
    for _, f in ipairs(s.name_refused) do if not f.quiet then parts[#parts + 1] = f.name .. "\0" .. f.why end end
    -- said when they change, not at each listing (as the client's refusals)
    local said = table.concat(parts, "\n")
    if said ~= (s.name_said or "") then
      s.name_said = said
      for _, f in ipairs(s.name_refused) do
        if not f.quiet then self.log { event = "mcp_tool_refused", server = name, tool = f.name, message = f.why } end
      end
    end
  end
end

-- A server's listing taken (its connection's tools), and every server's tools indexed again.
function Manager:_index(name)
  local s = self.servers[name]
  s.tools = s.conn and merged(s, s.conn.tools) or s.tools
  s.listed = true
  self:_reindex()
end

function Manager:_connect(name)
  local s = self.servers[name]
  if self.closed then return end
  s.state = "starting"
  local conn = client.new(s.spec, { log = self.log, project_dir = self.project_dir,
    refusals = s.refusals,
    on_notify = function(c, msg)
      if msg.method == "notifications/tools/list_changed" and c == s.conn then self:_relist(name) end
    end,
    on_lost = function(c)
      -- the server forgot the session (HTTP 404): new calls go to a new connection, opened
      -- after a backoff that grows while no call is answered between losses
      if c ~= s.conn then return end
      s.lost_conns = s.lost_conns or {} -- closed when their calls in flight end, or on close
      s.lost_conns[c] = true
      s.losses = (s.losses or 0) + 1
      s.state, s.why, s.conn = "down", "the server forgot the MCP session (HTTP 404): a new one is being opened", nil
      self.log { event = "mcp_down", server = name, message = s.why }
      if s.losses == M.LOSSES_SAID then
        self.log { event = "mcp_error", server = name, message = string.format("the server has forgotten its MCP session %d "
          .. "times with no call answered between: reconnecting ever more slowly (up to %d ms)", s.losses,
          M.BACKOFF_MS[#M.BACKOFF_MS]) }
      end
      self:_restart(name)
    end,
    on_close = function(c, why)
      if s.lost_conns then s.lost_conns[c] = nil end
      if c ~= s.conn then return end
      s.state, s.why, s.conn = "down", why, nil
      self.log { event = "mcp_down", server = name, message = why }
      if not s.listed then self:_reindex() end -- the tools it holds (a name it may have) are said held now
      self:_restart(name)
    end })
  s.conn = conn
  local ok, err = conn:start()
  if ok then
    s.state, s.failures, s.why, s.listed_at = "ready", 0, nil, uv.now()
    self:_index(name)
    self.log { event = "mcp_ready", server = name, tools = #self:_routed(name) }
  elseif s.conn == conn then
    s.conn = nil
    s.state, s.why = "down", err
    self:_restart(name)
  end
  return ok, err
end

-- notifications/tools/list_changed: the tools listed again, RELIST_MS after the last listing
-- ended at the soonest; those that come meanwhile make one listing more, not one each.
function Manager:_relist(name)
  local s = self.servers[name]
  s.relist_wanted = true
  if s.relisting or s.relist_timer or self.closed then return end
  local wait = math.max(0, (s.listed_at or 0) + M.RELIST_MS - uv.now())
  s.relist_timer = uv.new_timer()
  s.relist_timer:start(wait, 0, function()
    s.relist_timer:close()
    s.relist_timer = nil
    local c = s.conn
    if self.closed or not c or not s.relist_wanted then return end
    s.relist_wanted, s.relisting = false, true
    task.spawn(function()
      local ok, err = c:list_tools()
      s.relisting, s.listed_at = false, uv.now()
      if c ~= s.conn or self.closed then return end
      if ok then self:_index(name) else self.log { event = "mcp_error", server = name, message = tostring(err) } end
      if s.relist_wanted then self:_relist(name) end
    end)
  end)
end

local function stop_relist(s)
  if s.relist_timer then s.relist_timer:close() s.relist_timer = nil end
end

-- After a failure: wait (longer each time it fails again), then connect anew.
function Manager:_restart(name)
  local s = self.servers[name]
  if self.closed or s.timer then return end
  s.failures = s.failures + 1
  -- a server that forgets every session at once starts well each time: its losses count too
  local wait = M.BACKOFF_MS[math.min(s.failures + math.max(0, (s.losses or 0) - 1), #M.BACKOFF_MS)]
  s.next_try = uv.now() + wait
  s.timer = uv.new_timer()
  s.timer:start(wait, 0, function()
    s.timer:close()
    s.timer = nil
    if not self.closed then task.spawn(self._connect, self, name) end
  end)
end

--- manager:start() -> {name -> error} for the servers that failed (inside a task): connects
--- every server at once; a failed one is retried with backoff
function Manager:start()
  local tasks, failed = {}, {}
  for _, name in ipairs(self.names) do
    tasks[name] = task.spawn(self._connect, self, name)
  end
  for name, t in pairs(tasks) do
    local ok, cok, err = t:join()
    if not ok or not cok then failed[name] = ok and err or cok end
  end
  return failed
end

--- manager:get(name) -> the MCP tool's definition | nil
function Manager:get(name) return self.defs[name] end

-- The Orket names that route to server name's tools, in its listing's order.
function Manager:_routed(name)
  local out = {}
  for _, t in ipairs(self.servers[name].tools or {}) do
    local n = orket_name(name, t.name)
    local d = self.defs[n]
    if d and d.mcp.server == name then out[#out + 1] = n end
  end
  return out
end

-- What a call of name, which no listed tool has, gets when a server that could have it
-- has not listed its tools (down since it was configured): EUNAVAILABLE naming that server,
-- not "no such tool", as it may well have it. -> result | nil
function Manager:_unlisted_call(name)
  local server = self:_unlisted_owner(name)
  if not server then return nil end
  local s = self.servers[server]
  return { ok = false, code = "EUNAVAILABLE", remedy = M.remedy(server),
    error = string.format("the MCP server %s is %s%s and has not listed its tools, so %s cannot be called until "
      .. "it is back", server, s.state, s.why and (" (" .. inert.clip(tostring(s.why), 300) .. ")") or "", name) }
end

-- A card's process that took the turn's wall budget to start (docs/mcp.md)
M.START_REMEDY = "a card's process of a stdio MCP server starts at the turn's first call of its tools and its start "
  .. "counts against the turn's wall budget: give turns a larger wall budget, or make the server start faster "
  .. "(a command installed beforehand rather than fetched by npx or uvx at each start)"
-- A card's process whose initialize (timeout_ms) or listing (20 times timeout_ms) timed out
M.SLOW_START_REMEDY = "the server did not answer initialize within its timeout_ms, or its tools/list within 20 times "
  .. "that: raise the server's timeout_ms in orket.lua, or make it start faster"

--- remedy(server) -> what to do when an MCP server's tools are unavailable (the model and
--- the operator read it)
function M.remedy(server)
  return string.format("the MCP server %s is restarted by itself (backoff up to 30 s): call other tools meanwhile or "
    .. "try again later; `orket mcp list` shows why it is down, with the end of its stderr", server)
end

-- A definition standing for a tool of a server that failed before it listed its tools
-- (_unlisted_call answers its calls), so that the gate and the policies see an MCP tool,
-- not an unknown one. -> def | nil
function Manager:_pending_def(name)
  if not self:_unlisted_owner(name, nil, true) then return nil end
  self.pending_defs = self.pending_defs or {}
  local d = self.pending_defs[name]
  if not d then
    local schema = { type = "object" }
    d = { name = name, description = "", effect = "mcp", parameters = schema,
      compiled_schema = gate.compile_schema(schema), mcp = { pending = true },
      spec = { name = name, description = "", parameters = schema } }
    self.pending_defs[name] = d
  end
  return d
end

-- Closes the connections of s for one card (key), or all of them (key nil).
local function close_cards(s, key, why)
  for k, c in pairs(s.cards or {}) do
    if key == nil or k == key then
      s.cards[k] = nil
      c:close(why)
    end
  end
end

-- The server's listing: first (the listing just taken), then the tools of its card processes
-- still running that first lacks, the freshest listing first. A card's process that listed
-- a tool (after a login it keeps in memory, say) keeps it offered while it runs, whatever
-- listing another card's process (or the server's own connection) took since.
function merged(s, first, except)
  local out, seen, others = {}, {}, {}
  for _, t in ipairs(first or {}) do
    if not seen[t.name] then seen[t.name] = true out[#out + 1] = t end
  end
  for _, c in pairs(s.cards or {}) do
    if c ~= except and c.state == "ready" and c.taken_at and c.tools then others[#others + 1] = c end
  end
  table.sort(others, function(a, b) return a.taken_at > b.taken_at end)
  for _, c in ipairs(others) do
    for _, t in ipairs(c.tools) do
      if not seen[t.name] then seen[t.name] = true out[#out + 1] = t end
    end
  end
  return out
end

-- A card's process of server name listed its tools (at its start, or again after its
-- notifications/tools/list_changed): the server's freshest listing, merged with those of its
-- other card processes still running (merged), offered from each card's next turn (a turn's
-- tools are fixed when it begins; a listing cut short is not taken: the last whole one stays).
function Manager:_take_listing(name, c)
  local s = self.servers[name]
  -- not a process of a server orket.lua has changed or dropped since (reconfigure)
  if self.closed or not s or not s.cards or s.cards[c.card_key] ~= c or c.state ~= "ready" or c.list_cut then return end
  c.taken_at = uv.now()
  s.tools, s.listed, s.listed_at = merged(s, c.tools, c), true, c.taken_at
  self:_reindex()
end

-- The connection of stdio server s for a card's turn: a process of its own whose working
-- directory (the only place it may write) is the card's, started at the turn's first call.
-- deadline: uv.now() by which it must be ready (the end of the turn's wall budget) | nil
-- (the start's own bounds only: initialize within timeout_ms, tools/list within 20 times
-- timeout_ms). -> conn | nil, why, CODE
function Manager:_card_conn(s, where, deadline)
  s.cards = s.cards or {}
  local c = s.cards[where.key]
  if c and c.cwd ~= where.cwd then -- the card's directory moved: not this process's any more
    close_cards(s, where.key, "the card's directory changed")
    c = nil
  end
  if not c then
    c = client.new(s.spec, { cwd = where.cwd, log = self.log, refusals = s.refusals, project_dir = self.project_dir,
      -- the process the card's calls go to is the one whose list changes: its tools are
      -- listed again when the call during which (or after which) it said so returns
      on_notify = function(conn, msg)
        if msg.method == "notifications/tools/list_changed" then conn.relist_wanted = true end
      end,
      on_close = function(conn)
      if s.cards and s.cards[where.key] == conn then s.cards[where.key] = nil end
    end })
    s.cards[where.key], c.card_key = c, where.key
    local ok, err, code = c:start(deadline and math.max(1, deadline - uv.now()))
    if not ok then
      if s.cards[where.key] == c then s.cards[where.key] = nil end
      return nil, err, code
    end
    self:_take_listing(s.spec.name, c)
  end
  -- a second call while the first started it waits for the start, within the turn's budget
  while c.state ~= "ready" and c.state ~= "closed" do
    if deadline and uv.now() >= deadline then return nil, "its start took longer than the turn may wait", "ETIMEDOUT" end
    rt.sleep(10)
  end
  if c.state ~= "ready" then return nil, "it ended" end
  return c
end

--- manager:call(name, args [, left_ms [, where]]) -> {ok=, result= | error=, code=} (inside
--- a task). where = {key=CARD, cwd=the card's directory}: a stdio server's call runs in a
--- process of its own there, for the card's turn (release(key) ends it)
function Manager:call(name, args, left_ms, where)
  local d = self.defs[name]
  if not d then
    return self:_unlisted_call(tostring(name)) or { ok = false, error = "no MCP tool named " .. tostring(name), code = "ENOENT" }
  end
  local s = self.servers[d.mcp.server]
  if where and s.spec.transport == "stdio" and not self.closed then
    -- the card's process is started by its first call: the start has its own bounds (as the
    -- server's own connection: initialize within timeout_ms, its listing within 20 times
    -- that) and counts against the turn's wall budget, not against the call's timeout_ms
    -- (a server slow to start would fail the first call of every turn)
    local t0 = uv.now()
    local budget_end = left_ms and t0 + math.max(1, math.floor(left_ms)) or nil
    local c, why, code = self:_card_conn(s, where, budget_end)
    if not c then
      local late = code == "ETIMEDOUT"
      local over = late and budget_end and uv.now() >= budget_end - 5
      return { ok = false, code = late and "ETIMEDOUT" or "EUNAVAILABLE",
        remedy = over and M.START_REMEDY or not late and M.remedy(d.mcp.server) or M.SLOW_START_REMEDY,
        error = string.format("the MCP server %s did not start in %s's directory%s: %s", d.mcp.server, tostring(where.key),
          over and string.format(" within the %d ms left of the turn's wall budget", math.floor(left_ms)) or "",
          inert.clip(client.bare(s.spec.name, why), 300)) }
    end
    local timeout = s.spec.timeout_ms
    if budget_end then
      local left = budget_end - uv.now()
      if left <= 0 then
        return { ok = false, code = "ETIMEDOUT", remedy = M.START_REMEDY, error = string.format("the MCP server %s took "
          .. "the %d ms left of the turn's wall budget to start in %s's directory", d.mcp.server, math.floor(left_ms),
          tostring(where.key)) }
      end
      if left < timeout then timeout = math.max(1, math.floor(left)) end
    end
    local r = c:call(d.mcp.tool, args, timeout)
    if c.relist_wanted and c.state == "ready" and not self.closed then
      -- its list changed (notifications/tools/list_changed during the call or before it):
      -- listed again once, now, for the card's next turn; within what is left of the turn's
      -- wall budget and at most timeout_ms (not the 20 times a start's listing may take)
      c.relist_wanted = false
      local cap = s.spec.timeout_ms
      local left = budget_end and math.floor(budget_end - uv.now()) or cap
      if left > 0 then
        local ok, err = c:list_tools(math.min(cap, left))
        if ok then self:_take_listing(d.mcp.server, c)
        else self.log { event = "mcp_error", server = d.mcp.server, message = tostring(err) } end
      end
    end
    return r
  end
  if not s.conn or s.state ~= "ready" or s.conn.state ~= "ready" then
    return { ok = false, code = "EUNAVAILABLE", remedy = M.remedy(d.mcp.server), error = string.format("the MCP server "
      .. "%s is %s%s; its tools are unavailable until it is back", d.mcp.server, s.state,
      s.why and (" (" .. inert.clip(tostring(s.why), 300) .. ")") or "") }
  end
  local timeout = s.spec.timeout_ms
  if left_ms and left_ms < timeout then timeout = math.max(1, math.floor(left_ms)) end
  local c = s.conn
  local r = c:call(d.mcp.tool, args, timeout)
  -- an answer in the session now open: the server keeps sessions again
  if c == s.conn and (r.ok or tostring(r.code):find("^EMCP")) then s.losses = 0 end
  return r
end

--- manager:release(key): the card's turn ended: the server processes started for it end,
--- and (inside a task) the call returns once they are gone, within M.RELEASE_WAIT_MS: their
--- files are committed and judged next (orket.engine.progwrites), so nothing they write may
--- come after. One still running at the bound is logged (mcp_error); its helper's SIGKILL
--- backstop follows.
function Manager:release(key)
  local closed = {}
  for _, name in ipairs(self.names) do
    local c = self.servers[name].cards and self.servers[name].cards[key]
    if c then closed[#closed + 1] = { name = name, conn = c } end
    close_cards(self.servers[name], key, "the card's turn ended")
  end
  if #closed == 0 or not coroutine.isyieldable() then return end
  local deadline = uv.now() + M.RELEASE_WAIT_MS
  for _, x in ipairs(closed) do
    if not x.conn:wait_gone(deadline) then
      self.log { event = "mcp_error", server = x.name, message = string.format("its process for %s was still running "
        .. "%d ms after the card's turn ended; the card's files are committed without waiting longer", tostring(key),
        M.RELEASE_WAIT_MS) }
    end
  end
end

--- manager:status() -> {{name=, transport=, state=, why=, tools={names}, refused={{name=, why=}}, listing=}...}
--- (listing: why the last tools/list was stopped before its end, when it was)
function Manager:status()
  local out = {}
  for _, name in ipairs(self.names) do
    local s = self.servers[name]
    local refused = {}
    for _, list in ipairs { s.conn and s.conn.refused or s.refused or {}, s.name_refused or {} } do
      for _, f in ipairs(list) do refused[#refused + 1] = f end
    end
    out[#out + 1] = { name = name, transport = s.spec.transport, state = s.state, why = s.why, tools = self:_routed(name),
      refused = refused, server = s.conn and s.conn.server_info or nil, listing = s.conn and s.conn.list_cut or nil }
  end
  return out
end

--- manager:close(): every connection ends, no restart follows (idempotent)
function Manager:close()
  if self.closed then return end
  self.closed = true
  for _, name in ipairs(self.names) do
    local s = self.servers[name]
    if s.timer then s.timer:close() s.timer = nil end
    stop_relist(s)
    close_cards(s, nil, "stopped")
    for lost in pairs(s.lost_conns or {}) do lost:close("stopped") end
    local c = s.conn
    s.conn, s.state = nil, "stopped"
    if c then c:close("stopped") end
  end
end

-- ---- the registry the engine sees -----------------------------------------------------------

local Proxy = {}
Proxy.__index = Proxy

--- manager:wrap(registry) -> a registry with the MCP tools beside registry's (a tool file of
--- the same name wins). A hot reload wraps the new registry again.
function Manager:wrap(reg)
  if getmetatable(reg) == Proxy then reg = reg.base end
  return setmetatable({ base = reg, m = self, names = reg.names, by_name = reg.by_name, files = reg.files }, Proxy)
end

-- An MCP tool's definition: a listed one, or one standing for a server's not listed yet
local function mcp_def(self, name) return self.m:get(name) or self.m:_pending_def(name) end

function Proxy:get(name) return self.base:get(name) or mcp_def(self, name) end

function Proxy:specs(names)
  if not names then return self.base:specs() end
  local out = {}
  for _, n in ipairs(names) do
    local d = self.base:get(n) or self.m:get(n)
    if d then out[#out + 1] = d.spec end
  end
  return out
end

function Proxy:run(name, args, ctx)
  if not self.base:get(name) and mcp_def(self, name) then
    -- only through the engine's effect path (orket.engine.turn), which waits on the loop
    return self.m:call(name, args)
  end
  return self.base:run(name, args, ctx)
end

function Proxy:recover(name, args, ctx)
  if not self.base:get(name) and mcp_def(self, name) then
    return "unknown", name .. " is an MCP tool: whether the server did it is not known"
  end
  return self.base:recover(name, args, ctx)
end

--- manager:reconfigure(section): servers gone or changed stop, new or changed ones start (in
--- a task of their own each); the unchanged keep their connection.
function Manager:reconfigure(section)
  local want = section and section.servers or {}
  for _, name in ipairs(self.names) do
    local s = self.servers[name]
    local w = want[name]
    if not w or jsonout.encode(w) ~= jsonout.encode(s.spec) then
      if s.timer then s.timer:close() s.timer = nil end
      stop_relist(s)
      close_cards(s, nil, "orket.lua changed")
      local c = s.conn
      s.conn = nil
      if c then c:close("orket.lua changed") end
      self.servers[name] = nil
    end
  end
  self.names = {}
  for _, name in ipairs(section and section.names or {}) do
    self.names[#self.names + 1] = name
    if not self.servers[name] then
      self.servers[name] = { spec = want[name], state = "stopped", failures = 0, tools = {}, refusals = {} }
      task.spawn(self._connect, self, name)
    end
  end
  self:_reindex() -- the tools of the servers gone go, and a name they held may be another's now
end

--- reload(e, s): for a hot reload, s being orket.lua's settings as the caller read
--- and resolved them (orket.engine.reload: the file is evaluated once); a changed mcp section
--- reconfigures e.mcp (made when the first server appears). The rest of orket.lua is not
--- taken up during a run.
function M.reload(e, s)
  e.settings.mcp = s.mcp
  if not e.mcp then
    if not (s.mcp and #s.mcp.names > 0) then return end
    e:swap_scripts { mcp = M.new(nil, { project_dir = e.project_dir, log = function(f)
      e:emit { type = "mcp", event = f.event, server = f.server, message = f.message, tool = f.tool, tools = f.tools }
    end }) }
  end
  e.mcp:reconfigure(s.mcp)
end

--- probe(section[, project_dir]) -> status (as manager:status()) | nil, error: each server
--- started as a run's listing starts it (a stdio server in a scratch directory of its own),
--- listed, and stopped; outside a task (it runs the loop until done). For `orket mcp list`
--- and `orket validate`. project_dir: the folder of orket.lua (a start's hint reads a
--- relative path of a command from there: orket.mcp.client).
function M.probe(section, project_dir)
  local m = M.new(section, { project_dir = project_dir })
  local ok, status = task.spawn(function()
    m:start()
    local st = m:status()
    m:close()
    return st
  end):join()
  if not ok then return nil, status end
  return status
end

M.now = rt.now
return M
