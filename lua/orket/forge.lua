-- orket.forge: the two forges Orket talks to (Gitea/Forgejo and GitHub): their REST calls
-- for a card's pull request (find, open) over orket.c.http, and their webhook deliveries
-- read into one shape (event) for orket.serve.webhooks. The token comes from the caller
-- (the environment variable orket.lua names); it goes into a header and nowhere else.
-- Contract: docs/git.md ("Pull requests and reviews on a forge").
local http = require "orket.c.http"
local crypto = require "orket.c.crypto"
local cjson = require "cjson.safe"

local M = {}

M.TIMEOUTS = { connect_timeout_ms = 10000, total_timeout_ms = 30000 }
M.MAX_REPLY = 4 << 20

-- The API root and the request headers of each forge.
local function api(g)
  if g.forge == "gitea" then return g.api_url .. "/api/v1" end
  return g.api_url
end

local function headers(g, token)
  local h = { "Accept: application/json", "Content-Type: application/json", "User-Agent: orket" }
  if g.forge == "github" then
    h[#h + 1] = "Authorization: Bearer " .. token
    h[#h + 1] = "X-GitHub-Api-Version: 2022-11-28"
  else
    h[#h + 1] = "Authorization: token " .. token
  end
  return h
end

-- call(g, token, method, path, body) -> status, decoded reply | nil, msg. msg names the
-- forge's host and path, never the token.
local function call(g, token, method, path, body)
  local url = api(g) .. path
  local where = (url:match("^https?://[^/]+") or "forge") .. path:gsub("%?.*", "")
  local hr <close>, err = http.request { url = url, method = method, headers = headers(g, token),
    body = body and cjson.encode(body) or nil, max_bytes = M.MAX_REPLY,
    connect_timeout_ms = M.TIMEOUTS.connect_timeout_ms, total_timeout_ms = M.TIMEOUTS.total_timeout_ms }
  if not hr then return nil, string.format("forge: %s %s: %s", method, where, tostring(err)) end
  local status, h = hr:headers()
  if not status then return nil, string.format("forge: %s %s: %s", method, where, tostring(h)) end
  local parts = {}
  while true do
    local ev, rerr = hr:read()
    if ev == false then break end
    if ev == nil then return nil, string.format("forge: %s %s: %s", method, where, tostring(rerr)) end
    for _, s in ipairs(ev) do parts[#parts + 1] = s end
  end
  local text = table.concat(parts)
  local doc = cjson.decode(text)
  if status < 200 or status > 299 then
    local why = type(doc) == "table" and type(doc.message) == "string" and doc.message or text:sub(1, 200)
    return nil, string.format("forge: %s %s: HTTP %d: %s", method, where, status, why), status
  end
  return status, doc
end

--- token(g [, getenv]) -> the forge token | nil, msg (the variable git.token_env names)
function M.token(g, getenv)
  local v = (getenv or os.getenv)(g.token_env)
  if not v or v == "" then
    return nil, "forge: the environment variable " .. g.token_env .. " (git.token_env) is not set"
  end
  return v
end

local function owner(g) return (g.repo:match("^([^/]+)/")) end

--- find_pr(g, token, branch) -> {number=, url=} | false | nil, msg: the open pull request
--- from branch into main
function M.find_pr(g, token, branch)
  local path
  if g.forge == "github" then
    path = string.format("/repos/%s/pulls?state=open&base=main&head=%s:%s", g.repo, owner(g), branch)
  else
    path = string.format("/repos/%s/pulls?state=open&limit=50", g.repo)
  end
  local st, doc = call(g, token, "GET", path)
  if not st then return nil, doc end
  if type(doc) ~= "table" then return nil, "forge: the pull request list is not a JSON array" end
  for _, pr in ipairs(doc) do
    if type(pr) == "table" and type(pr.head) == "table" and pr.head.ref == branch and math.type(pr.number) then
      return { number = pr.number, url = pr.html_url }
    end
  end
  return false
end

--- open_pr(g, token, {branch=, title=, body=}) -> {number=, url=} | nil, msg: opens a pull
--- request from branch into main; when one is open already (a crash after the forge made
--- it, before Orket noted it) that one is answered
function M.open_pr(g, token, o)
  local found, ferr = M.find_pr(g, token, o.branch)
  if found == nil then return nil, ferr end
  if found then return found end
  local st, doc = call(g, token, "POST", string.format("/repos/%s/pulls", g.repo),
    { title = o.title, body = o.body, head = o.branch, base = "main" })
  if not st then return nil, doc end
  if type(doc) ~= "table" or not math.type(doc.number) then return nil, "forge: the new pull request has no number" end
  return { number = doc.number, url = doc.html_url }
end

-- ---- webhook deliveries -------------------------------------------------------------------

local function header(h, name) return h[name] end

--- delivery(forge, headers) -> {id=, event=, signature=} from the request's headers (names in
--- lower case). Gitea sends GitHub's headers too, so each forge's own are read first.
function M.delivery(forge, h)
  if forge == "gitea" then
    return {
      id = header(h, "x-forgejo-delivery") or header(h, "x-gitea-delivery"),
      event = header(h, "x-forgejo-event-type") or header(h, "x-gitea-event-type")
        or header(h, "x-forgejo-event") or header(h, "x-gitea-event"),
      signature = header(h, "x-forgejo-signature") or header(h, "x-gitea-signature"),
    }
  end
  local sig = header(h, "x-hub-signature-256")
  return { id = header(h, "x-github-delivery"), event = header(h, "x-github-event"), signature = sig }
end

M.DELIVERY_ID = "^[%w%-_.]+$"

local function str(v) return type(v) == "string" and v or nil end

--- event(forge, event_name, doc) -> {kind=, repo=, number=, branch=, reviewer=, author=,
--- body=} | nil, why-ignored. kind: approved, changes_requested, merged, closed.
function M.event(forge, name, doc)
  if type(doc) ~= "table" then return nil, "the body is not a JSON object" end
  local pr, repo = doc.pull_request, doc.repository
  if type(pr) ~= "table" then return nil, "not a pull request event (" .. tostring(name) .. ")" end
  local out = {
    repo = type(repo) == "table" and str(repo.full_name) or nil,
    number = math.tointeger(pr.number),
    branch = type(pr.head) == "table" and str(pr.head.ref) or nil,
    author = type(pr.user) == "table" and str(pr.user.login) or nil,
  }
  local action = str(doc.action)
  local review = type(doc.review) == "table" and doc.review or nil
  local sender = type(doc.sender) == "table" and str(doc.sender.login) or nil
  if forge == "github" and name == "pull_request_review" then
    if action ~= "submitted" or not review then return nil, "review " .. tostring(action) end
    local state = str(review.state)
    state = state and state:lower()
    if state == "approved" then out.kind = "approved"
    elseif state == "changes_requested" then out.kind = "changes_requested"
    else return nil, "review state " .. tostring(state) end
    out.body = str(review.body)
    out.reviewer = type(review.user) == "table" and str(review.user.login) or sender
  elseif forge == "gitea" and (name == "pull_request_review_approved" or name == "pull_request_review_rejected") then
    out.kind = name == "pull_request_review_approved" and "approved" or "changes_requested"
    out.body = review and str(review.content) or nil
    out.reviewer = sender
  elseif name == "pull_request" then
    if action ~= "closed" then return nil, "pull request " .. tostring(action) end
    out.kind = pr.merged == true and "merged" or "closed"
    out.reviewer = (type(pr.merged_by) == "table" and str(pr.merged_by.login)) or sender
  else
    return nil, "event " .. tostring(name) .. " is not acted on"
  end
  return out
end

-- A number or a string of digits (forges send ids as either); nil otherwise.
local function id_of(v)
  if math.tointeger(v) then return tostring(math.tointeger(v)) end -- cjson reads 7 as 7.0
  if type(v) == "string" and v:match("^%d+$") and #v <= 30 then return v end
  return nil
end

local function sha_of(v) return type(v) == "string" and v:match("^%x+$") and #v <= 64 and v:lower() or nil end

--- identity(doc) -> the event's own identity | nil: what the signed body says it is, so a
--- body resent under a new delivery id (which no signature covers) is known again. In the
--- repository: a review by its id (Gitea's reviews have none: their pull request, head
--- commit, type and text's hash); a pull request's action by its number, action and head
--- commit; a push by its ref and the commit it moved to.
function M.identity(doc)
  if type(doc) ~= "table" then return nil end
  local pr, review, repo = doc.pull_request, doc.review, doc.repository
  repo = type(repo) == "table" and str(repo.full_name) or "-"
  if #repo > 255 then return nil end
  local number = type(pr) == "table" and id_of(pr.number)
  local head = type(pr) == "table" and type(pr.head) == "table" and sha_of(pr.head.sha) or "-"
  if type(review) == "table" and id_of(review.id) then return "review:" .. repo .. ":" .. id_of(review.id) end
  if type(review) == "table" and number and type(review.type) == "string" and #review.type <= 64 then
    local text = type(review.content) == "string" and review.content or ""
    return string.format("review:%s#%s:%s:%s:%s", repo, number, head, review.type,
      crypto.hash(text, 16))
  end
  if number and type(doc.action) == "string" and #doc.action <= 64 then
    return string.format("pull_request:%s#%s:%s:%s", repo, number, doc.action, head)
  end
  if sha_of(doc.after) and type(doc.ref) == "string" and #doc.ref <= 255 then
    return "push:" .. repo .. ":" .. doc.ref .. ":" .. sha_of(doc.after)
  end
  return nil
end

--- parse_time("2026-11-22T10:00:00Z" | "...+02:00" | "...123Z") -> seconds since the epoch | nil
function M.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)%.?%d*(.*)$")
  if not y then return nil end
  local off = 0
  if rest ~= "Z" then
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  -- days from the civil date (proleptic Gregorian), without the local time zone of os.time
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + tonumber(d) - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) - off
end

--- event_time(doc) -> when the event happened by its own body (seconds) | nil: a review's
--- submitted_at, a pull request's updated_at, a push's head commit's timestamp
function M.event_time(doc)
  if type(doc) ~= "table" then return nil end
  local review, pr, head = doc.review, doc.pull_request, doc.head_commit
  if type(review) == "table" and review.submitted_at then return M.parse_time(review.submitted_at) end
  if type(pr) == "table" and pr.updated_at then return M.parse_time(pr.updated_at) end
  if type(head) == "table" and head.timestamp then return M.parse_time(head.timestamp) end
  return nil
end

return M
