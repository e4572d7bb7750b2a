-- orket.engine.sandboxtool: what a tool with effect = "sandbox" (sandbox_status,
-- http_request) asks for, done by the engine against the project's live sandbox: the newest
-- live sandbox of main of the project's folder (a project's sandboxes all run main's tree;
-- the one a deploy after a card's merge starts is the card's; a store several folders share
-- holds each folder's). The request is hostile data, checked again here; the
-- HTTP request goes only through that sandbox's unix socket (orket.sandboxes.accept), its
-- answer capped. Run between two transactions of the turn's step, like a process tool.
-- Contract: docs/tools.md, docs/sandbox.md.
local accept = require "orket.sandboxes.accept"
local service = require "orket.sandboxes.service"
local inert = require "orket.inert"
local uv = require "luv"

local M = {}

M.BODY_CAP = 16384          -- bytes of an answer the model reads
M.READ_CAP = 262144         -- bytes of an answer read at most
M.TIMEOUT_MS = 10000
M.LOG_LINES = 40
-- the answer's headers the model is shown (others say nothing it needs)
local SHOWN = { ["content-type"] = true, location = true, ["content-length"] = true }

--- live(db, dir) -> the newest live sandbox of main (healthy or not) of the folder dir | nil, why
function M.live(db, dir)
  local real = uv.fs_realpath(dir or ".") or dir or "."
  local best, others = service.pick(service.list(db, false), real)
  if best then return best end
  local why = "no live sandbox of main in the project's folder, " .. real .. ": one runs after a merge when "
    .. "orket.lua sets sandbox.deploy, or when a person runs `orket sandbox up`"
  local elsewhere = service.elsewhere(others, real)
  -- (named: the store's listing shows them, so "none" alone would read as a fault)
  if elsewhere then why = why .. "; " .. elsewhere .. ", not the project's, and never reached from here" end
  return nil, why
end

local function fail(name, msg, code) return { ok = false, error = name .. ": " .. msg, code = code } end

--- run(run, card_id, name, req) -> {ok=true, result=} | {ok=false, error=, code=}: req is the
--- handler's {op="status", lines=} or {op="http", method=, path=, body=, headers=}.
--- ENOSANDBOX when no sandbox of main is live, EINVAL for a request refused, EUNAVAILABLE
--- when the app does not answer; an answer past the read cap is cut (truncated = true).
function M.run(run, card_id, name, req)
  if type(req) ~= "table" then return fail(name, "the request must be a table", "ETOOL") end
  local row, why = M.live(run.db, run.project_dir or run.dir)
  if not row then return fail(name, why, "ENOSANDBOX") end
  local home = row.socket:gsub("/app%.sock$", "")
  if req.op == "status" then
    local n = math.tointeger(req.lines) or M.LOG_LINES
    n = math.max(1, math.min(200, n))
    return { ok = true, result = { sandbox = row.id, status = row.status, detail = row.detail, port = row.port,
      commit = row.commit_id, started_at = row.started_at, healthy_at = row.healthy_at,
      log = accept.log_tail(home .. "/app.log", n) } }
  end
  if req.op ~= "http" then return fail(name, "unknown request " .. tostring(req.op), "ETOOL") end
  -- the same rules as an issue's HTTP check: a path on the app, one-line headers, no Host
  local c, field, err = accept.normalize { http = { method = req.method, path = req.path, body = req.body,
    headers = req.headers } }
  if not c then return fail(name, field .. ": " .. err, "EINVAL") end
  local status, body, headers, cut = accept.request(row.socket, { method = c.method, path = c.path, body = c.body,
    headers = c.headers, timeout_ms = M.TIMEOUT_MS, max_bytes = M.READ_CAP, truncate = true })
  if not status then return fail(name, body, headers) end
  local shown = {}
  for k, v in pairs(headers or {}) do
    if SHOWN[k] then shown[k] = v end
  end
  -- bytes: what was read (at most READ_CAP; the answer may be longer when truncated)
  local out = { sandbox = row.id, status = status, headers = shown, bytes = #body }
  if #body > M.BODY_CAP or cut then
    out.body, out.truncated = body:sub(1, M.BODY_CAP), true
  else
    out.body = body
  end
  if not utf8.len(out.body) then out.body = inert.text(out.body) end
  return { ok = true, result = out }
end

return M
