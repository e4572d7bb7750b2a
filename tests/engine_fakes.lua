-- Small stand-ins for the engine's collaborators in tests: a scripted model client (answers
-- by role, card, phase and step, like the `scripted` provider), a tool registry with a few
-- board tools, and a gate that allows a role's own tools. Also a fixture: a store with one
-- epic whose issues depend on each other, one rejected once in review.
local store = require "orket.store"
local board_mod = require "orket.board"
local settings = require "orket.settings"
local routing = require "orket.engine.routing"
local roles = require "orket.engine.roles"
local engine = require "orket.engine"

local M = {}

--- tools(): registry with get/specs/run over add_issue_comment, update_issue_status, note
function M.tools()
  local defs = {
    add_issue_comment = function(a, ctx)
      return ctx.board:comment(ctx.card.id, { author = ctx.actor.seat, body = a.body })
    end,
    update_issue_status = function(a, ctx)
      local c, err, code = ctx.board:transition(ctx.card.id, a.status, { actor = ctx.actor, reason = a.wait_reason, note = a.note })
      if not c then return nil, err, code end
      return { id = c.id, status = c.status }
    end,
    request_input = function(a, ctx)
      local c, err, code = ctx.board:transition(ctx.card.id, "waiting_for_developer", { actor = ctx.actor, reason = "input", note = a.question })
      if not c then return nil, err, code end
      return { id = c.id, status = c.status }
    end,
    read_file = function(a) return nil, "no such file: " .. tostring(a.path), "ENOENT" end,
    write_file = function(a) return { path = a.path, bytes = #(a.content or "") } end,
  }
  local reg = { calls = {} }
  function reg:get(name) return defs[name] and { name = name } or nil end
  function reg:specs(names)
    local out = {}
    for _, n in ipairs(names) do
      if defs[n] then out[#out + 1] = { name = n, description = n, parameters = { type = "object", properties = {} } } end
    end
    return out
  end
  function reg:run(name, args, ctx)
    self.calls[#self.calls + 1] = name
    local r, err, code = defs[name](args, ctx)
    if r == nil then return { ok = false, error = err, code = code } end
    return { ok = true, result = { done = true } }
  end
  return reg
end

--- gate(input) -> allow for the role's tools, deny otherwise (and records both)
function M.gate(input)
  local allowed = false
  for _, t in ipairs(input.allowed or {}) do if t == input.tool then allowed = true end end
  local d = allowed and { verdict = "allow" } or
    { verdict = "deny", code = "ETOOL_ROLE", reason = input.tool .. " is not a tool of this role", remedy = "use your own tools" }
  if input.record then
    input.record("gate_decision", { tool = input.tool, verdict = d.verdict, code = d.code, reason = d.reason })
    if d.verdict == "deny" then
      input.record("policy_violation", { code = d.code, what = input.tool .. " {}", why = d.reason, how_to_fix = d.remedy })
    end
  end
  return d
end

local function call(name, args, id) return { id = id, name = name, arguments = args, raw_arguments = "{}" } end

--- llm(board, opts) -> client. Behaviour per card, read from its summary:
---   "[reject]" the reviewer rejects it once; "[input]" the coder asks a question;
---   "[fail]" every model call fails with a bad_request; "[flaky]" the first call is transient;
---   "[cancel]" the coder first tries to cancel it; "[archive]" the reviewer first tries to
---   archive it; "[testing]" the coder hands it in for testing; "[prose]" the model never
---   calls a tool.
function M.llm(board, opts)
  opts = opts or {}
  local c = { requests = {}, flaky = {} }
  function c:chat(req)
    self.requests[#self.requests + 1] = req
    if opts.sleep then orket.sleep(opts.sleep) end
    local m = req.meta
    local card = board:get(m.card)
    local s = card.summary or ""
    if s:find("[fail]", 1, true) then return nil, "model refused the request", "bad_request" end
    if s:find("[flaky]", 1, true) and not self.flaky[m.card] then
      self.flaky[m.card] = true
      return nil, "connection reset", "transient"
    end
    local calls
    if s:find("[prose]", 1, true) then
      calls = nil
    elseif m.role == "integrity_guard" then
      if m.step == 1 and s:find("[archive]", 1, true) then
        calls = { call("update_issue_status", { status = "archived" }, "a1") }
      elseif m.step == 2 and s:find("[archive]", 1, true) then
        calls = { call("update_issue_status", { status = "done" }, "a2") }
      elseif m.step == 1 then
        if s:find("[reject]", 1, true) and (card.retries or 0) == 0 then
          calls = { call("add_issue_comment", { body = "missing tests" }, "r1"),
            call("update_issue_status", { status = "in_progress" }, "r2") }
        else
          calls = { call("update_issue_status", { status = "done" }, "r1") }
        end
      end
    elseif m.phase == "escalation" then
      if m.step == 1 then calls = { call("add_issue_comment", { body = "architect: do it this way" }, "e1") } end
    else
      if m.step == 1 then
        if s:find("[input]", 1, true) then
          calls = { call("request_input", { question = "which database?" }, "q1") }
        elseif s:find("[cancel]", 1, true) then
          calls = { call("update_issue_status", { status = "canceled", note = "too hard" }, "x1") }
        else
          calls = { call("add_issue_comment", { body = "work on " .. m.card .. " turn " .. m.turn }, "c1"),
            call("write_file", { path = "src/" .. m.card .. ".txt", content = "x" }, "c2") }
        end
      elseif m.step == 2 then
        calls = { call("update_issue_status", { status = s:find("[testing]", 1, true) and "ready_for_testing"
          or "code_review" }, "c3") }
      end
    end
    return { content = calls and "" or "finished", tool_calls = calls or {}, finish_reason = calls and "tool_calls" or "stop",
      usage = { prompt_tokens = 100, completion_tokens = 10 }, model = "fake:model" }
  end
  return c
end

--- fixture(path, issues) -> db, board. issues: array of {id=, summary=, depends_on=, seat=}
--- On PostgreSQL (tests.backends) a fresh database instead of the file at path.
function M.fixture(path, issues)
  local backends = require "tests.backends"
  local db = backends.name() == "pg" and backends.open_store() or assert(store.open(path))
  local b = board_mod.open(db)
  assert(db:tx(function()
    require("orket.store.imports").insert_card(db, { id = "E", type = "epic", name = "Epic", priority = 2 })
    return true
  end))
  for _, i in ipairs(issues or {}) do
    assert(b:create { parent = "E", id = i.id, summary = i.summary, depends_on = i.depends_on,
      seat = i.seat or "senior_developer", priority = i.priority })
  end
  return db, b
end

M.STANDARD = {
  { id = "E-1", summary = "design" },
  { id = "E-2", summary = "build [reject]", depends_on = { "E-1" } },
  { id = "E-3", summary = "document", depends_on = { "E-1" } },
  { id = "E-4", summary = "ship", depends_on = { "E-2", "E-3" } },
}

--- engine(db, board, opts) -> engine with the fakes (opts: settings=, events=, llm=, tools=, gate=,
--- tracer= (orket.otel's), dir= (the project's: its roles/, and routing= named from it, as a
--- run's routing.lua is))
function M.engine(db, b, opts)
  opts = opts or {}
  local s = assert(settings.resolve(opts.config or {}))
  local events = opts.events or {}
  return engine.new {
    db = db, board = b, settings = s, llm = opts.llm or M.llm(b, opts), tools = opts.tools or M.tools(),
    gate = opts.gate or M.gate, roles = assert(roles.load(roles.dirs(opts.dir))),
    routing = assert(routing.load(opts.routing, opts.dir)),
    emit = function(ev) events[#events + 1] = ev end, concurrency = opts.concurrency, tracer = opts.tracer,
  }, events
end

--- board_state(board) -> comparable text: each card's status, retries and comment bodies
function M.board_state(b)
  local out = {}
  for _, c in ipairs(b:list {}) do
    local cs = {}
    for _, k in ipairs(b:comments(c.id)) do cs[#cs + 1] = k.author .. ":" .. k.body end
    out[#out + 1] = string.format("%s %s %s r%d [%s]", c.id, c.status, tostring(c.wait_reason), c.retries or 0,
      table.concat(cs, "|"))
  end
  return table.concat(out, "\n")
end

return M
