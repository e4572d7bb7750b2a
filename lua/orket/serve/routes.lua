-- orket.serve.routes: the read-only API of orket serve: probes, the board, one card, main's view, the
-- journal as Server-Sent Events. Each handler gets (req, ctx) and returns status, document
-- (sent as JSON), or answers the request itself (streams). Documents are the same as the
-- CLI's --json (orket.cmd.board / orket.cmd.card build them: one implementation).
local events = require "orket.serve.events"
local jsonout = require "orket.jsonout"
local store_keys = require "orket.store.keys"
local store_runs = require "orket.store.runs"
local cards_store = require "orket.store.cards"
local store_approvals = require "orket.store.approvals"
local board_view = require "orket.views.board"
local card_view = require "orket.views.card"
local status_view = require "orket.views.status"
local experiments_view = require "orket.views.experiments"
local config = require "orket.config"
local projects = require "orket.serve.projects"
local oa = require "orket.serve.openapi"
local errors = require "orket.errors"
local uv = require "luv"

local M = {}

-- an error answer, with its code's remedy (orket.errors, the vocabulary every surface shares)
local err = errors.answer
M.err = err

-- A decimal whole number from a query or path part; nil for anything else.
local function whole(s) return math.tointeger(tonumber(s:match("^%d+$") or "")) end
M.whole = whole

-- As whole, with digits past what an integer holds read as the largest one: a page's
-- bound, where "more than any" means as much ("?limit=99999999999999999999" takes the cap)
local function whole_or_most(s)
  local n = whole(s)
  if n == nil and s:match("^%d+$") then return math.maxinteger end
  return n
end
M.whole_or_most = whole_or_most -- (a route's own bound reads its digits so too)

--- after(s) -> n | nil, status, doc: a listing's ?after=ID (0 when absent: from the first;
--- digits past an integer read as the largest one: after every entry), else 400
function M.after(s)
  local n = whole_or_most(s or "0")
  -- (an audit's entry's id, a transcript's event's: the id the page starts after)
  if not n then
    return nil, err(400, "bad_query", "?after= takes the id the page starts after (the last page's next), a whole "
      .. "number (0: from the first)")
  end
  return n
end

--- limit(s, default, max) -> n | nil, status, doc: a listing's ?limit=N (default when absent;
--- a larger one than max, digits past an integer too, taken as max), else 400 naming the
--- bounds: the one reading of every listing's ?limit=
function M.limit(s, default, max)
  local n = whole_or_most(s or tostring(default))
  if not n or n < 1 then
    return nil, err(400, "bad_query", "?limit= takes a whole number from 1 to " .. max .. " (" .. default .. " when absent)")
  end
  return math.min(n, max)
end

--- page(after, limit, max) -> after, limit | nil, status, doc: a listing's ?after=ID (0:
--- from the first) and ?limit=N (100 when absent, at most max) as the request gave them,
--- each checked (the route reads them: it declares them)
function M.page(after, limit, max)
  local from, st, doc = M.after(after)
  if not from then return nil, st, doc end
  local n, lst, ldoc = M.limit(limit, 100, max)
  if not n then return nil, lst, ldoc end
  return from, n
end

--- NAMED_MAX: the most entries one page of a listing paged by name or id holds (the
--- people's, the keys')
M.NAMED_MAX = 200

--- named_query(what) -> the query a listing paged by name or id declares: ?after= (what:
--- "the people after this name") and ?limit=
function M.named_query(what)
  return { { name = "after", type = "string", description = what .. " (a page's next; absent: from the first)" },
    { name = "limit", type = "integer", description = "at most this many (100; " .. M.NAMED_MAX .. " at most)" } }
end

--- named_page(query, valid, takes) -> {after, limit} | nil, status, doc: such a listing's
--- ?after= (nil: from the first), which valid(after) accepts (else 400 saying it takes
--- takes, "a person's name"), and ?limit= (100 when absent, at most NAMED_MAX)
function M.named_page(query, valid, takes)
  local from, limit, bad = M.page(nil, query.limit, M.NAMED_MAX)
  if not from then return nil, limit, bad end
  if query.after ~= nil and not valid(query.after) then
    return nil, err(400, "bad_query", "?after= takes " .. takes .. " (the next of the page before; absent: from the first)")
  end
  return { after = query.after, limit = limit }
end

--- next_of(out, limit, field) -> the ?after= of the page after out (a page of at most limit
--- entries): its last entry's field when the page is full, else nil (the last page)
function M.next_of(out, limit, field) return #out == limit and out[#out][field] or nil end

-- /health's answer (orket.serve answers the plain GET in C before the router, from this: core/health.c)
M.health_doc = { status = "ok" }
local function health() return 200, M.health_doc end

--- READY_MIN_FREE: the free space (bytes) under a SQLite store below which /ready fails: the
--- WAL grows by up to 1,000 frames of 4 KiB pages (about 4 MiB) before its checkpoint, which
--- may grow the file by as much. The probe's write lock, rolled back, needs no page: on a
--- full disk it passed while every write failed with ENOSPC.
M.READY_MIN_FREE = 8 * 1024 * 1024

-- n bytes as a person reads them: "120 KiB", "7.5 MiB"
local function bytes(n)
  local mib = 1024 * 1024
  if n < mib then return string.format("%d KiB", n // 1024) end
  if n % mib == 0 then return string.format("%d MiB", n // mib) end
  return string.format("%.1f MiB", n / mib)
end

-- short_of_space(db) -> problem | nil: a SQLite store whose file system has less free space
-- than READY_MIN_FREE: statfs's bavail, what a write may take (ext4 keeps part of bfree
-- from every writer, root too: its writes failed at bavail 0). Named by its file inside
-- the project (no key is needed here: the server's folders are no client's to know). A
-- file system that does not say is no problem.
local function short_of_space(db)
  if db.backend ~= "sqlite" or type(db.path) ~= "string" then return nil end
  local st = uv.fs_statfs(db.path:match("^(.*)/[^/]*$") or ".")
  if not (st and st.bsize and st.bavail) then return nil end
  local free = st.bavail * st.bsize
  if free >= M.READY_MIN_FREE then return nil end
  return string.format("the disk that holds the store (%s) has %s free, less than the %s its writes need: free space "
    .. "on it (df .orket)", db.path:match("([^/]+/[^/]+)$") or db.path, bytes(free), bytes(M.READY_MIN_FREE))
end

-- ready: the store takes a write (a write lock, rolled back) with room on its disk, and orket.lua loads
local function ready(_, ctx)
  local db, problems = ctx.db, {}
  if db.readonly then
    problems[#problems + 1] = "the store is open read-only"
  else
    problems[#problems + 1] = short_of_space(db)
    -- a newer orket migrated the store while this one runs (a rolling upgrade): this server's
    -- reads and writes are of the schema it knows, so it takes no more traffic. Read in the
    -- probe's transaction (no second connection; not asked of a store that failed it).
    local ahead, known
    local _, terr = db:tx(function()
      local ok, werr = store_keys.write_probe(db)
      if not ok then return nil, werr end
      ahead, known = store_keys.schema_ahead(db)
      return nil, "probe" -- always roll back
    end)
    if terr ~= "probe" then
      problems[#problems + 1] = "the store cannot be written: " .. tostring(terr)
    elseif ahead then
      problems[#problems + 1] = string.format("the store's schema is version %d, newer than this orket knows (%d): "
        .. "a newer orket migrated it; replace this server with one of that version", ahead, known)
    end
  end
  -- orket.lua resolved as a run's start resolves it (its settings checked too): a file that
  -- loads but names a forge without a remote refuses every run
  local cfg, cerr = config.settings(ctx.dir, true)
  if not cfg then problems[#problems + 1] = cerr end
  -- hosted projects that did not open are counted, not a 503: the server serves the others.
  -- Counted only: /ready needs no key, and a project's name is for its members (the log names it)
  local down = 0
  for _ in pairs(ctx.server and ctx.server.unavailable or {}) do down = down + 1 end
  down = down > 0 and down or nil
  if #problems > 0 then return 503, { status = "not_ready", problems = jsonout.array(problems), projects_unavailable = down } end
  return 200, { status = "ready", projects_unavailable = down }
end

-- A whole board is large (about 400 KB of JSON for 1,000 cards) and took about 15 ms to
-- read and encode, so under load every GET paid it again (about 50 requests/s at 64
-- connections). The text is kept with the store's card stamp (cards_stamp: this
-- connection's writes to cards, a rollback or any other connection's commit move it),
-- taken before the read: a change racing the read only makes the next request build it
-- again. The last text per root is kept.
local board_texts = setmetatable({}, { __mode = "k" }) -- db -> { gen=, dv=, [root] = text }

-- The filter of what the caller may read of the journal (orket.serve.events): the rows
-- about the server's people are its admins' (local use is the one person there is), and
-- their own sign-ins and sign-outs are everyone's own (orket.serve.events.own_sign)
local function reader(ctx)
  return { people = M.people_reader(ctx.server, ctx.who), own = ctx.who and ctx.who.id or nil }
end

-- The store's id as its journal's (orket.store.projects.journal_store_id: made with the
-- store, kept by its copies, a word added by each restore, which replaces the journal) | nil
-- (a stand-in store that has none). Journal ids mean something only in the journal of one
-- store: the board names its store, and a stream asked with ?store= another id is answered
-- with a reset, whatever the id it replays after.
local store_of = events.store_of

-- held_cards(db) -> the ids of the cards with a tool call held for a decision (at most one
-- undecided request a card: approvals' partial unique index, which this read walks), so
-- that a page tells "waiting for approval" from a question without a card's read each
-- (docs/serve.md, The web board). Read at each request, not kept with the board's text:
-- a request or a decision does not move the cards' stamp.
local function held_cards(db)
  return jsonout.array(store_approvals.held_cards(db))
end

local function board(req, ctx)
  local db, root = ctx.db, ctx.query.root
  -- the store's id, read before the journal's: a restore between the two then leaves the page
  -- the old store's id, whose stream is reset, never the new one's with an old journal's id
  local sid = store_of(db)
  -- the journal's id, read before the board: a page that follows the journal after it
  -- (/v1/events?after=) misses nothing written since the board was read, in any client
  local at = events.latest(db)
  local gen, dv
  local c = db.conn
  if type(c) == "userdata" or (type(c) == "table" and c.cards_stamp) then gen, dv = c:cards_stamp() end
  local kept = board_texts[db]
  if gen and not (kept and kept.gen == gen and kept.dv == dv) then
    kept = { gen = gen, dv = dv }
    board_texts[db] = kept
  end
  local key = root or ""
  local text = gen and kept[key]
  if not text then
    local doc, e = board_view.json_doc(db, root)
    if not doc then return err(404, "not_found", e) end
    text = jsonout.encode(doc) .. "\n"
    if gen then kept[key] = text end
  end
  -- the kept text with the caller's id added (the newest row they may read: not kept, as it
  -- is the caller's); one copy of the text per request, against a build of it each time
  local id = events.readable_latest(db, at, reader(ctx))
  return 200, jsonout.encoded(text:sub(1, -3) .. ',"journal_id":' .. string.format("%d", id)
    .. (sid and ',"store":' .. jsonout.encode(sid) or "") .. ',"held":' .. jsonout.encode(held_cards(db)) .. "}\n")
end

local function card(_, ctx)
  local doc, e = card_view.json_doc(ctx.db, ctx.params.id, ctx.dir)
  if not doc then return err(404, "not_found", e) end
  return 200, doc
end

-- An experiment's report, with orket.lua's experiments as they are now.
local function experiment(_, ctx)
  local _, st = config.settings(ctx.dir, true)
  local doc, e = experiments_view.doc(ctx.db, ctx.params.name, st and st.experiments)
  if not doc then return err(404, "not_found", e) end
  return 200, doc
end

-- The id to replay after: Last-Event-ID, else ?lastEventId= (what EventSource polyfills,
-- which a cross-origin client with a key needs, add to the URL on each reconnect beside
-- the header), else ?after=; nil: live only.
-- The header's value is read without the blanks around it (RFC 9110 5.5: not part of it).
-- Digits past an integer read as the largest one, as a listing's ?after= reads them: past
-- the journal's end, so the stream is reset (below). -> id | nil | false
local function after_of(req, ctx)
  local h = req.headers["last-event-id"]
  local v = h and h:match("^[ \t]*(.-)[ \t]*$") or ctx.query.lastEventId or ctx.query.after
  if v == nil then return nil end
  local n = whole_or_most(v)
  if not n then return false end
  return n
end

-- Whether who reads the journal's rows about the server's people: whoever has the admin
-- role on the server's own routes (a personal key capped below admin has not), local use,
-- or the server's own caller
local function people_reader(srv, who)
  if not who or who.local_use then return true end
  return srv ~= nil and projects.server_role(srv.db, who) == "admin"
end
M.people_reader = people_reader

local function stream(req, ctx, filter)
  local after = after_of(req, ctx)
  if after == false then
    -- the header's value is the same id as the query's, refused alike (bad_query): a client
    -- tells the one case by its code
    return err(400, "bad_query", "Last-Event-ID, ?lastEventId= and ?after= take a journal id (a whole number)")
  end
  local want = ctx.query.store
  if want ~= nil and not (#want <= 128 and want:match("^[%w%-]+$")) then
    return err(400, "bad_query", "?store= takes a store's id (the board's store: letters, digits and -)")
  end
  if ctx.server and not ctx.server:take_stream(req, ctx) then return end -- answered 429
  local f = reader(ctx)
  filter.people, filter.own = f.people, f.own
  -- The hub's count of restores and the store's id, taken before the reads below: a restore
  -- the hub notices after them resets this stream too (as it does every open stream:
  -- orket.serve.events), unless this read the new id already.
  local epoch = ctx.hub:epoch()
  local own = store_of(ctx.hub.db)
  -- live only: the stream's start, read before the client sees it open (an event committed
  -- between the two would be older than the start, and never sent)
  local start = after == nil and ctx.hub:open(filter, own, epoch) or nil
  local s
  -- the stream leaves the hub's subscribers however this ends: a raise (req:sse refuses a
  -- header it is given) or the request's task closed, while it opens or while it follows
  local _ <close> = setmetatable({}, { __close = function()
    if start then ctx.hub:forget(start) end
    if s then ctx.hub:forget(s) end
  end })
  local serr
  s, serr = req:sse { "X-Accel-Buffering: no", table.unpack(ctx.headers or {}) }
  if not s then return err(500, "internal", serr) end
  ctx.status = 200
  local srv = ctx.server
  s:send("retry: 2000\n\n")
  -- An id past the journal's end is another journal's (the server restarted onto a store
  -- restored from a backup, or a project added again from another folder): followed from
  -- it, nothing would come until this journal passed it. The stream follows from this
  -- journal's end instead and says so first (an event with an id, which every client keeps),
  -- so that a page loads the board again. So is an id given with ?store= another store's
  -- (the board's `store` when the page read it): a project added again from another folder
  -- whose journal is longer than the id would otherwise replay that journal from an id
  -- that means nothing in it. With no id there is nothing to replay: the stream follows
  -- from the end as always, and a reset would only cost the client a needless board read.
  if after then
    local last = events.latest(ctx.hub.db)
    if (want ~= nil and own and own ~= want) or after > last then
      s:send(events.reset(events.readable_latest(ctx.hub.db, last, filter)))
      after = last
    end
  end
  -- asked at each heartbeat: a caller who may read no more, or who reads the people's rows
  -- and is no admin now (demoted), is ended; reconnected, they get what they may read
  local still = srv and ctx.who and function()
    if not srv:still_allowed(req, ctx) then return false end
    if not filter.people or ctx.who.local_use then return true end
    local now = srv.auth:check(req)
    return now ~= nil and people_reader(srv, now)
  end
  if ctx.hub:follow(s, filter, after, still, epoch, own, start) then s:wait_gone() end
end

--- card_query(ctx[, name]) -> the card ?name= (default card) names | nil (absent) | false,
--- status, doc: empty, 400 bad_query; no such card in the project's board, 404 naming it. A
--- filter on a card that is not there would answer nothing, never saying so (a typo, a
--- lowercase id: ids are case-sensitive).
function M.card_query(ctx, name)
  name = name or "card"
  local v = ctx.query[name]
  if v == nil then return nil end
  if v == "" then
    return false, err(400, "bad_query", "?" .. name .. "= takes a card's id (as the board spells it: ids are "
      .. "case-sensitive); leave it out for every card's")
  end
  if not cards_store.get(ctx.db, v) then -- (an id is 100 bytes at most: a longer value is cut in the message)
    return false, err(404, "not_found", "?" .. name .. "=: no card " .. jsonout.encode(v:sub(1, 128)))
  end
  return v
end

local function all_events(req, ctx)
  local card, cst, cdoc = M.card_query(ctx)
  if card == false then return cst, cdoc end
  local filter = { card = card }
  if ctx.query.run then
    filter.run = whole(ctx.query.run)
    if not filter.run then return err(400, "bad_query", "?run= takes a run id (a whole number)") end
    -- as /v1/runs/{id}/events answers a run that is not there
    if not store_runs.get(ctx.db, filter.run) then return err(404, "not_found", "?run=: no run " .. ctx.query.run) end
  end
  return stream(req, ctx, filter)
end

local function run_events(req, ctx)
  local id = whole(ctx.params.id)
  if not id or not store_runs.get(ctx.db, id) then
    return err(404, "not_found", "no run " .. ctx.params.id)
  end
  local card, cst, cdoc = M.card_query(ctx)
  if card == false then return cst, cdoc end
  return stream(req, ctx, { run = id, card = card })
end

-- main's view: where workspace/ keeps a person's version (the document of `orket status
-- --json` but its dir: the server's folders are no client's to know, nor can a client run
-- the argv lists there)
local function view_status(_, ctx)
  local doc, derr, dcode = status_view.of_project(ctx.dir, ctx.db)
  if not doc and dcode == "ENOENT" then return err(404, "not_found", derr) end
  if not doc then return err(500, "internal", derr) end
  doc.dir = nil
  status_view.hide_folders(doc) -- a path remote is a folder of this server, as dir is
  return 200, status_view.as_json(doc)
end

-- orket.board/1 as the API gives it: with the journal's id it was read at
local BOARD_AT = { type = "object", additionalProperties = true, required = { "cards", "format", "held", "journal_id",
  "root" }, properties = { format = oa.BOARD.properties.format, root = oa.BOARD.properties.root,
    cards = oa.BOARD.properties.cards, journal_id = { type = "integer", minimum = 0,
    description = "the journal's id the board was read at (the newest event the caller may read): "
      .. "/v1/events?after= it follows the journal from the board, missing nothing" },
    store = { type = "string", description = "the store's own id (made with it, a word added by each "
      .. "`orket restore`, which replaces the journal): journal ids are of this store's journal; "
      .. "/v1/events?store= it is answered with a reset when the project's store is another by then" },
    held = { type = "array", items = { type = "string" }, description = "the ids of the project's cards that wait on "
      .. "a tool call held for a decision (POST /v1/cards/{id}/approve or /deny), of the whole project with ?root= too" } } }
local function json(schema, description) return { schema = schema, description = description } end
local SSE = { media = "text/event-stream", schema = { type = "string" }, description = "the journal as Server-Sent Events" }
local AFTER = { name = "after", type = "integer", description = "replay the events after this journal id" }
local CARD_Q = { name = "card", description = "only this card's events (a card that is not there: 404; empty: 400)" }
local STORE_Q = { name = "store", description = "the store the caller's journal id is of (the board's `store`): "
  .. "another store's, with an id to replay after, is answered with event reset, as an id past the journal's end" }
local LAST = { name = "Last-Event-ID", ["in"] = "header", type = "integer", description = "as ?after= (a reconnecting client)" }
local LAST_Q = { name = "lastEventId", type = "integer",
  description = "as Last-Event-ID (EventSource polyfills add it on each reconnect)" }

--- add(router): the routes; role nil means no key is needed (probes). Each carries what
--- orket.serve.openapi describes: summary, query, responses. The probes under a project's
--- prefix (/v1/projects/P/ready) need a member's key (scoped_role): they say how that project
--- is, and a stranger must not tell an existing project's name from another by them.
function M.add(router)
  -- the probes take any query (any_query): their callers are load balancers, orchestrators
  -- and uptime monitors, not ours, some of which add their own (a cache-buster)
  router:add("GET", "/health", { handler = health, name = "health", summary = "Alive", scoped_role = "viewer", any_query = true,
    responses = { [200] = json { type = "object", required = { "status" }, properties = { status = { enum = { "ok" } } } } } })
  router:add("GET", "/ready", { handler = ready, name = "ready", summary = "Takes writes and loads orket.lua",
    scoped_role = "viewer", any_query = true,
    responses = { [200] = json { type = "object", required = { "status" }, properties = { status = { enum = { "ready" } },
      projects_unavailable = { type = "integer",
        description = "how many hosted projects did not open at the start (each answers 503; the log names them)" } } },
      [503] = json({ type = "object", required = { "status", "problems" }, properties = { status = { enum = { "not_ready" } },
        problems = { type = "array", items = { type = "string" } } } }, "not ready, and why") } })
  router:add("GET", "/v1/board", { handler = board, role = "viewer", name = "board", summary = "The board (orket.board/1)",
    query = { { name = "root", description = "an epic or rock to show alone" } }, responses = { [200] = json(BOARD_AT) } })
  router:add("GET", "/v1/cards/{id}", { handler = card, role = "viewer", name = "card", summary = "One card (orket.card/1)",
    responses = { [200] = json(oa.CARD) } })
  router:add("GET", "/v1/experiments/{name}", { handler = experiment, role = "viewer", name = "experiment",
    summary = "An experiment's variant against its control (orket.experiment/1)", responses = { [200] = json(oa.EXPERIMENT) } })
  router:add("GET", "/v1/status", { handler = view_status, role = "viewer", name = "status",
    summary = "Where workspace/ keeps a person's version rather than main's (orket.status/1)",
    responses = { [200] = json(oa.STATUS) } })
  router:add("GET", "/v1/events", { handler = all_events, role = "viewer", name = "events", summary = "The journal, live",
    query = { { name = "run", type = "integer", description = "only this run's events (a run that is not there: 404)" }, CARD_Q, AFTER, LAST_Q, LAST, STORE_Q },
    responses = { [200] = SSE } })
  router:add("GET", "/v1/runs/{id}/events", { handler = run_events, role = "viewer", name = "run_events",
    summary = "One run's journal, live", query = { CARD_Q, AFTER, LAST_Q, LAST, STORE_Q }, responses = { [200] = SSE } })
end

M.events = events
return M
