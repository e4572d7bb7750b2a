-- A fake forge REST API for tests, on 127.0.0.1 only: the pull request calls Orket makes to
-- Gitea (/api/v1/repos/OWNER/NAME/pulls) and GitHub (/repos/OWNER/NAME/pulls), list and
-- create, kept in memory:
--   build/orket lua tests/fake_forge_server.lua [PORT]   -> prints "listening http://127.0.0.1:PORT"
-- GET /__log: every API request seen ({method=, path=, authorization=, body=});
-- GET /__prs: the pull requests; POST /__fail?status=N&times=K: the next K API calls answer N.
local httpd = require "orket.c.httpd"
local task = require "orket.task"
local json = require "cjson"

local port = tonumber(arg and arg[1]) or 0
local srv = assert(httpd.listen { host = "127.0.0.1", port = port, max_body_bytes = 1 << 20 })
io.stdout:write("listening http://127.0.0.1:" .. srv:port() .. "\n")
io.stdout:flush()

local log, prs, fail = {}, {}, { status = 0, times = 0 }
local next_number = 1

local function reply(req, status, doc)
  req:respond(status, { "Content-Type: application/json" }, json.encode(doc))
end

local function handle(req)
  local body = req:body() or ""
  local path, query = req.path, {}
  for k, v in pairs(req.query or {}) do query[k] = v end
  if path == "/__log" then return reply(req, 200, log) end
  if path == "/__prs" then return reply(req, 200, prs) end
  if path == "/__fail" then
    fail.status, fail.times = tonumber(query.status) or 500, tonumber(query.times) or 1
    return reply(req, 200, {})
  end
  log[#log + 1] = { method = req.method, path = path, authorization = req.headers.authorization, body = body }
  if fail.times > 0 then
    fail.times = fail.times - 1
    return reply(req, fail.status, { message = "the fake forge fails on purpose" })
  end
  local repo = path:match("^/api/v1/repos/([^/]+/[^/]+)/pulls$") or path:match("^/repos/([^/]+/[^/]+)/pulls$")
  if not repo then return reply(req, 404, { message = "not found" }) end
  if req.method == "GET" then
    local out = setmetatable({}, json.array_mt)
    for _, pr in ipairs(prs) do
      if pr.repo == repo and pr.state == "open" then out[#out + 1] = pr end
    end
    return reply(req, 200, out)
  end
  local doc = json.decode(body)
  for _, pr in ipairs(prs) do
    if pr.repo == repo and pr.state == "open" and pr.head.ref == doc.head then
      return reply(req, 422, { message = "A pull request already exists for " .. doc.head })
    end
  end
  local pr = { number = next_number, repo = repo, state = "open", title = doc.title, body = doc.body,
    head = { ref = doc.head }, base = { ref = doc.base }, user = { login = "orket-bot" },
    html_url = "http://forge.invalid/" .. repo .. "/pulls/" .. next_number }
  next_number = next_number + 1
  prs[#prs + 1] = pr
  return reply(req, 201, pr)
end

while true do
  local req = srv:accept()
  if not req then break end
  task.spawn(function()
    local ok, err = pcall(handle, req)
    if not ok then pcall(reply, req, 500, { message = tostring(err) }) end
    req:close()
  end)
end
