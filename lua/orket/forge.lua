-- orket.forge: the two forges Orket talks to (Gitea/Forgejo and GitHub): their REST calls
-- for a card's pull request (find, open) over orket.c.http, and their webhook deliveries
-- read into one shape (event) for orket.serve.webhooks. The token comes from the caller
-- (the environment variable orket.lua names); it goes into a header and nowhere else.
-- Contract: docs/git.md ("Pull requests and reviews on a forge").
local inert = require "orket.inert"
local http = require "orket.c.http"
local crypto = require "orket.c.crypto"
local cjson = require "cjson.safe"
local common = require "orket.llm.common"
local secret = require "orket.settings.secret"
local config = require "orket.config"
local rt = require "orket.c.runtime"
local clock = require "orket.clock"

local M = {}

M.TIMEOUTS = { connect_timeout_ms = 10000, total_timeout_ms = 30000 }
M.MAX_REPLY = 4 << 20

-- The API root and the request headers of each forge.
local function api(g)
  if g.forge == "gitea" then return g.api_url .. "/api/v1" end
  return g.api_url
end

-- token nil: no Authorization (a public repository's releases need none)
local function headers(g, token)
  local h = { "Accept: application/json", "Content-Type: application/json", "User-Agent: orket" }
  if g.forge == "github" then
    if token then h[#h + 1] = "Authorization: Bearer " .. token end
    h[#h + 1] = "X-GitHub-Api-Version: 2022-11-28"
  elseif token then
    h[#h + 1] = "Authorization: token " .. token
  end
  return h
end

-- Errors carry a code a caller can act on: ERATELIMIT (403 with no requests left, or with
-- Retry-After or a message saying so, as GitHub's secondary limits come; or 429: wait
-- info.retry_after seconds), EAUTH (401, or 403 otherwise: the token lacks the right),
-- ENOTFOUND (404), ECONFLICT (409, 405: not mergeable, head moved), EINVAL (422), EFORGE (other
-- 4xx), EUNAVAILABLE (5xx, or no answer: worth retrying later).
local function code_of(status, h, why)
  if status == 429 or (status == 403 and (h["x-ratelimit-remaining"] == "0" or h["retry-after"]
      or why:lower():find("rate limit", 1, true))) then
    return "ERATELIMIT"
  end
  if status == 401 or status == 403 then return "EAUTH" end
  if status == 404 then return "ENOTFOUND" end
  if status == 405 or status == 409 then return "ECONFLICT" end
  if status == 422 then return "EINVAL" end
  if status >= 500 then return "EUNAVAILABLE" end
  return "EFORGE"
end

-- Seconds to wait before the next call, from Retry-After or GitHub's/Gitea's reset time
-- (capped: a forge cannot park Orket for hours through one header).
M.MAX_RETRY_AFTER = 3600
local function retry_after(h, now)
  local s = tonumber(h["retry-after"])
  if not s and h["x-ratelimit-reset"] then
    local reset = tonumber(h["x-ratelimit-reset"])
    if reset then s = reset - (now or os.time()) end
  end
  if not s then return nil end
  return math.max(1, math.min(M.MAX_RETRY_AFTER, math.floor(s)))
end

-- One call, no retry: see request.
local function request_once(g, token, method, url, body)
  local where = (url:match("^https?://[^/]+") or "forge") .. ((url:match("^https?://[^/]+(/[^?]*)") or ""))
  local function fail(msg, code, info)
    -- a forge (or a proxy before it) may quote the request's Authorization header: its text
    -- is masked as a provider's errors are before the journal or the output sees it
    return nil, common.redact(string.format("forge: %s %s: %s", method, where, msg), { token }), code, info or {}
  end
  local hr <close>, err, ecode = http.request { url = url, method = method, headers = headers(g, token),
    body = body and cjson.encode(body) or nil, max_bytes = M.MAX_REPLY,
    connect_timeout_ms = M.TIMEOUTS.connect_timeout_ms, total_timeout_ms = M.TIMEOUTS.total_timeout_ms }
  -- (unsent: the forge never saw the request, so asking again cannot do it twice)
  if not hr then return fail(tostring(err), "EUNAVAILABLE", { unsent = common.refused(err) or nil, code = ecode }) end
  local status, h, hcode = hr:headers()
  if not status then return fail(tostring(h), "EUNAVAILABLE", { unsent = common.refused(h) or nil, code = hcode }) end
  local parts = {}
  while true do
    local ev, rerr = hr:read()
    if ev == false then break end
    if ev == nil then return fail(tostring(rerr), "EUNAVAILABLE") end
    for _, s in ipairs(ev) do parts[#parts + 1] = s end
  end
  local text = table.concat(parts)
  local doc = cjson.decode(text)
  if status < 200 or status > 299 then
    -- (masked before it is cut: a cut through the token would leave its start unmasked)
    local why = type(doc) == "table" and type(doc.message) == "string" and doc.message
      or common.redact(text, { token }):sub(1, 200)
    local code = code_of(status, h, why)
    local info = { status = status, retry_after = code == "ERATELIMIT" and (retry_after(h) or 60) or nil }
    local msg = string.format("HTTP %d: %s", status, why)
    if info.retry_after then msg = msg .. string.format(" (rate limited: retry in %d s)", info.retry_after) end
    return fail(msg, code, info)
  end
  -- a forge's answer that quotes the token (a release's or a pull request's URL a proxy
  -- rewrote) is masked too: it is printed (orket version --check) and stored (the PR's link)
  if token and token ~= "" and type(doc) == "table" and text:find(token, 1, true) then doc = common.mask(doc, { token }) end
  return status, doc, h
end

-- What is asked again after a passing failure: a rate limit whose wait is short (its
-- Retry-After, or the reset time) and a refused connection (the forge did nothing), and
-- for calls that do the same thing twice (GET, PATCH, DELETE) a 5xx or a dropped
-- connection too. A POST (a comment, a pull request) or a PUT (GitHub's merge: asked again
-- after a merge whose answer was lost, it says "not mergeable") is not sent again once the
-- forge may have acted. A timeout is not asked again: the forge is not answering, and each
-- try would cost the whole timeout. At most ATTEMPTS calls, waits of BASE_MS doubling (or
-- the forge's own), each at most WAIT_MAX_S.
M.RETRY = { attempts = 3, base_ms = 1000, wait_max_s = 10 }
local SAME_TWICE = { GET = true, PATCH = true, DELETE = true }

local function wait_before_retry(method, code, info, n)
  if code == "ERATELIMIT" then
    local s = info.retry_after or 60
    return s <= M.RETRY.wait_max_s and s * 1000 or nil
  end
  if code ~= "EUNAVAILABLE" then return nil end
  if info.code == "timeout" then return nil end
  if not (info.unsent or SAME_TWICE[method]) then return nil end
  return math.min(M.RETRY.base_ms * (1 << (n - 1)), M.RETRY.wait_max_s * 1000)
end

-- request(g, token, method, url, body) -> status, decoded reply, headers | nil, msg, CODE,
-- {status=, retry_after=, attempts=}. msg names the forge's host and path, never the token
-- or a query. A passing failure is asked again (RETRY; waits inside a task); the message
-- of the last one says how many calls were made.
local function request(g, token, method, url, body)
  local n = 0
  while true do
    n = n + 1
    local st, doc, h, info = request_once(g, token, method, url, body)
    if st then return st, doc, h end
    local wait = n < M.RETRY.attempts and wait_before_retry(method, h, info, n)
    if not wait then
      info.attempts = n
      if n > 1 then doc = string.format("%s (after %d calls)", doc, n) end
      return nil, doc, h, info
    end
    rt.sleep(wait)
  end
end

-- call(g, token, method, path, body): request on the forge's API root.
local function call(g, token, method, path, body)
  return request(g, token, method, api(g) .. path, body)
end

-- The URL of the next page from a Link header, only when it stays on the API's own origin:
-- a hostile or misconfigured forge cannot send the token elsewhere.
local function next_link(g, h)
  local link = h and h["link"]
  if not link then return nil end
  for part in link:gmatch("[^,]+") do
    local url, rel = part:match("<([^>]+)>%s*;%s*rel=\"?([%w]+)\"?")
    if rel == "next" and url then
      local origin = api(g):match("^(https?://[^/]+)")
      if origin and url:sub(1, #origin + 1) == origin .. "/" then return url end
      return nil, "forge: a Link header points outside " .. origin
    end
  end
  return nil
end

M.PAGE_SIZE = 50   -- Gitea's default maximum page size; GitHub allows 100
M.MAX_PAGES = 100

--- list(g, token, path) -> array of every item | nil, msg, CODE, info: a list call read page
--- by page (the Link header's next page where the forge sends one, else page numbers until
--- a short page), at most MAX_PAGES pages.
function M.list(g, token, path)
  local sep = path:find("?", 1, true) and "&" or "?"
  local size_param = g.forge == "github" and "per_page" or "limit"
  local function page_url(n)
    return string.format("%s%s%s%s=%d&page=%d", api(g), path, sep, size_param, M.PAGE_SIZE, n)
  end
  local what = "forge: GET " .. path:gsub("%?.*", "")
  local out, url = {}, page_url(1)
  for n = 1, M.MAX_PAGES do
    local st, doc, h, info = request(g, token, "GET", url)
    if not st then return nil, doc, h, info end
    if type(doc) ~= "table" or (doc[1] == nil and next(doc) ~= nil) then
      return nil, what .. ": the answer is not a JSON array", "EFORGE"
    end
    for _, item in ipairs(doc) do out[#out + 1] = item end
    local nxt, lerr = next_link(g, h)
    if lerr then return nil, lerr, "EFORGE" end
    if not nxt then
      -- a forge that sends Link headers sends no next on the last page; without them a short
      -- page is the last
      if h["link"] or #doc < M.PAGE_SIZE then return out end
      nxt = page_url(n + 1)
    end
    url = nxt
  end
  return nil, string.format("%s: more than %d pages", what, M.MAX_PAGES), "EFORGE"
end

--- token(g [, getenv]) -> the forge token | nil, msg: the variable git.token_env names when
--- set, else git.token's secret (orket.settings.secret)
function M.token(g, getenv)
  local v, err = secret.value(g.token, g.token_env, getenv)
  if v then return v end
  if err then
    -- a secret the store holds but did not give: named, at its orket.lua line (as a model
    -- key's is: orket.llm)
    local name = secret.name_of(g.token)
    if not name then return nil, "forge: git.token: " .. err end
    local msg = secret.unopened("git.token", name, err)
    return nil, g.token.dir and config.placed(g.token.dir, msg) or msg
  end
  if not g.token_env then return nil, "forge: no token: set git.token = secret \"NAME\" or git.token_env" end
  return nil, "forge: the environment variable " .. g.token_env .. " (git.token_env) is not set"
end

local function owner(g) return (g.repo:match("^([^/]+)/")) end

-- A pull request as Orket keeps it, from either forge's answer.
local function pr_of(doc)
  local head = type(doc.head) == "table" and doc.head or {}
  return { number = doc.number, url = doc.html_url, state = doc.state, merged = doc.merged == true,
    merge_commit = type(doc.merge_commit_sha) == "string" and doc.merge_commit_sha or nil,
    head = type(head.sha) == "string" and head.sha or nil, branch = head.ref }
end

-- Whether a listed pull request is the one Orket would open: from branch in git.repo itself
-- into main. A fork's branch of that name is anyone's (its merge would be taken for the
-- card's reviewed work), and one into another branch (a backport) is no merge into main.
-- GitHub's head= filter names the owner only (a fork in the same organisation has the same
-- label) and Gitea's list has no filter: both are checked here. None named is none taken
-- (GitHub names no head repository once a fork is deleted).
local function own_pr(g, pr, branch)
  if type(pr) ~= "table" or not math.type(pr.number) or type(pr.head) ~= "table" or pr.head.ref ~= branch then
    return false
  end
  local head_repo = type(pr.head.repo) == "table" and pr.head.repo.full_name
  if type(head_repo) ~= "string" or head_repo:lower() ~= g.repo:lower() then return false end
  return type(pr.base) == "table" and pr.base.ref == "main"
end

--- find_pr(g, token, branch) -> {number=, url=, ...} | false | nil, msg, CODE: the open pull
--- request from git.repo's own branch into main (every page of the open ones is read)
function M.find_pr(g, token, branch)
  local path
  if g.forge == "github" then
    path = string.format("/repos/%s/pulls?state=open&base=main&head=%s:%s", g.repo, owner(g), branch)
  else
    path = string.format("/repos/%s/pulls?state=open", g.repo)
  end
  local prs, err, code = M.list(g, token, path)
  if not prs then return nil, err, code end
  for _, pr in ipairs(prs) do
    if own_pr(g, pr, branch) then return pr_of(pr) end
  end
  return false
end

--- open_pr(g, token, {branch=, title=, body=}) -> {number=, url=} | nil, msg, CODE: opens a
--- pull request from branch into main; when one is open already (a crash after the forge
--- made it, before Orket noted it; or another process opening it at the same moment, which
--- the forge answers with 422 on GitHub, 409 on Gitea) that one is answered
function M.open_pr(g, token, o)
  local found, ferr, fcode = M.find_pr(g, token, o.branch)
  if found == nil then return nil, ferr, fcode end
  if found then return found end
  local st, doc, code = call(g, token, "POST", string.format("/repos/%s/pulls", g.repo),
    { title = o.title, body = o.body, head = o.branch, base = "main" })
  if not st then
    if code == "EINVAL" or code == "ECONFLICT" then
      local again = M.find_pr(g, token, o.branch)
      if again then return again end
    end
    return nil, doc, code
  end
  if type(doc) ~= "table" or not math.type(doc.number) then return nil, "forge: the new pull request has no number", "EFORGE" end
  return pr_of(doc)
end

--- get_pr(g, token, number) -> {number=, url=, state=, merged=, merge_commit=, head=, branch=}
--- | nil, msg, CODE
function M.get_pr(g, token, number)
  local st, doc, code = call(g, token, "GET", string.format("/repos/%s/pulls/%d", g.repo, number))
  if not st then return nil, doc, code end
  if type(doc) ~= "table" or not math.type(doc.number) then return nil, "forge: the pull request has no number", "EFORGE" end
  return pr_of(doc)
end

--- comment(g, token, number, body) -> true | nil, msg, CODE: a comment on the pull request
--- (both forges keep them as the issue's comments)
function M.comment(g, token, number, body)
  local st, err, code = call(g, token, "POST", string.format("/repos/%s/issues/%d/comments", g.repo, number),
    { body = body })
  if not st then return nil, err, code end
  return true
end

--- releases(g, token) -> array of {tag_name=, name=, html_url=, draft=, prerelease=, ...} |
--- nil, msg, CODE: the first page of the repository's releases (newest first on both
--- forges; enough to find a newer one). token may be nil.
function M.releases(g, token)
  local size = g.forge == "github" and "per_page" or "limit"
  local st, doc, code = call(g, token, "GET", string.format("/repos/%s/releases?%s=%d", g.repo, size, M.PAGE_SIZE))
  if not st then return nil, doc, code end
  if type(doc) ~= "table" or (doc[1] == nil and next(doc) ~= nil) then
    return nil, "forge: GET /repos/" .. g.repo .. "/releases: the answer is not a JSON array", "EFORGE"
  end
  return doc
end

--- merge_pr(g, token, number, {head=, title=, message=}) -> {merged=true, sha=} | nil, msg,
--- CODE: merges the pull request on the forge, only while its head is still `head`
--- (ECONFLICT when it moved or cannot be merged)
function M.merge_pr(g, token, number, o)
  local path = string.format("/repos/%s/pulls/%d/merge", g.repo, number)
  local st, doc, code
  if g.forge == "github" then
    st, doc, code = call(g, token, "PUT", path, { sha = o.head, merge_method = "merge",
      commit_title = o.title, commit_message = o.message })
  else
    st, doc, code = call(g, token, "POST", path, { Do = "merge", head_commit_id = o.head,
      MergeTitleField = o.title, MergeMessageField = o.message })
  end
  if not st then return nil, doc, code end
  return { merged = true, sha = type(doc) == "table" and type(doc.sha) == "string" and doc.sha or nil }
end

--- close_pr(g, token, number, note) -> true | nil, msg, CODE: comments `note` (when given)
--- and closes the pull request without merging it
function M.close_pr(g, token, number, note)
  if note then
    local ok, err, code = M.comment(g, token, number, note)
    if not ok then return nil, err, code end
  end
  local st, err, code = call(g, token, "PATCH", string.format("/repos/%s/pulls/%d", g.repo, number),
    { state = "closed" })
  if not st then return nil, err, code end
  return true
end

--- mark_merged(g, token, number, commit) -> true | nil, msg, CODE: tells Gitea the pull
--- request was merged by `commit` outside the forge ("manually-merged"; the repository must
--- allow it). GitHub has no such call: ENOTSUP, and the caller closes it with a comment.
function M.mark_merged(g, token, number, commit)
  if g.forge == "github" then return nil, "forge: GitHub cannot mark a pull request merged", "ENOTSUP" end
  local st, err, code = call(g, token, "POST", string.format("/repos/%s/pulls/%d/merge", g.repo, number),
    { Do = "manually-merged", MergeCommitID = commit })
  if not st then return nil, err, code end
  return true
end

M.STATUS_STATES = { pending = true, success = true, failure = true, error = true }
M.STATUS_DESCRIPTION_MAX = 140   -- GitHub refuses longer descriptions

--- post_status(g, token, sha, {state=, context=, description=, target_url=}) -> true | nil,
--- msg, CODE: a commit status on sha (GitHub's and Gitea's statuses API have the same shape)
function M.post_status(g, token, sha, o)
  if not M.STATUS_STATES[o.state] then error("bad argument #4 to 'post_status' (state " .. tostring(o.state) .. ")", 2) end
  if type(sha) ~= "string" or not sha:match("^%x+$") then error("bad argument #3 to 'post_status' (not a commit id)", 2) end
  local desc = o.description
  -- (the forge's cap, "..." within it; cut on a character's start: valid UTF-8)
  if desc and #desc > M.STATUS_DESCRIPTION_MAX then desc = inert.cut(desc, M.STATUS_DESCRIPTION_MAX - 3) .. "..." end
  local st, err, code = call(g, token, "POST", string.format("/repos/%s/statuses/%s", g.repo, sha),
    { state = o.state, context = o.context, description = desc, target_url = o.target_url })
  if not st then return nil, err, code end
  return true
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

local function sha_of(v) return type(v) == "string" and v:match("^%x+$") and #v <= 64 and v:lower() or nil end

--- event(forge, event_name, doc) -> {kind=, repo=, number=, branch=, reviewer=, author=,
--- body=, commit=, head_repo=, base=, association=} | nil, why-ignored. kind: approved,
--- changes_requested, merged, closed. head_repo: the repository the pull request's branch is
--- in (a fork's for a fork's pull request); base: the branch it merges into; association:
--- GitHub's review.author_association (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE...).
--- commit: the commit a review was given to (GitHub's review.commit_id; Gitea's review
--- names none, its pull request's head when the review was submitted), or a pull request
--- closed's head (the commit merged), lower case | nil; merge_commit: a merge's commit on the
--- forge (merge_commit_sha) | nil
function M.event(forge, name, doc)
  if type(doc) ~= "table" then return nil, "the body is not a JSON object" end
  local pr, repo = doc.pull_request, doc.repository
  if type(pr) ~= "table" then return nil, "not a pull request event (" .. tostring(name) .. ")" end
  local out = {
    repo = type(repo) == "table" and str(repo.full_name) or nil,
    number = math.tointeger(pr.number),
    branch = type(pr.head) == "table" and str(pr.head.ref) or nil,
    author = type(pr.user) == "table" and str(pr.user.login) or nil,
    head_repo = type(pr.head) == "table" and type(pr.head.repo) == "table" and str(pr.head.repo.full_name) or nil,
    base = type(pr.base) == "table" and str(pr.base.ref) or nil,
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
    -- (none said is said so, never as "nil")
    else return nil, state and ("review state " .. state) or "the review names no state (review.state)" end
    out.body = str(review.body)
    out.reviewer = type(review.user) == "table" and str(review.user.login) or sender
    out.commit = sha_of(review.commit_id)
    -- (none said reads as no access: GitHub says it on every review)
    out.association = str(review.author_association) or "NONE"
  elseif forge == "gitea" and (name == "pull_request_review_approved" or name == "pull_request_review_rejected") then
    out.kind = name == "pull_request_review_approved" and "approved" or "changes_requested"
    out.body = review and str(review.content) or nil
    out.reviewer = sender
    out.commit = type(pr.head) == "table" and sha_of(pr.head.sha) or nil
  elseif name == "pull_request" then
    if action ~= "closed" then return nil, "pull request " .. tostring(action) end
    out.kind = pr.merged == true and "merged" or "closed"
    out.reviewer = (type(pr.merged_by) == "table" and str(pr.merged_by.login)) or sender
    -- the head the forge merged (or closed): a rework pushed since is not what was merged
    out.commit = type(pr.head) == "table" and sha_of(pr.head.sha) or nil
    out.merge_commit = sha_of(pr.merge_commit_sha)
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

-- The event's own time as its body says it (text, as sent), when it reads as one
local function stamp(v)
  return type(v) == "string" and #v <= 40 and v:match("^[%w:.+%-]+$") and v or nil
end

--- identity(doc) -> the event's own identity, scoped | nil: what the signed body says it is,
--- so a body resent under a new delivery id (which no signature covers) is known again. In
--- the repository: a review by its id; a pull request's action by its number, action, head
--- commit, whether it was merged (a pull request closed, reopened and merged closes twice on
--- one head) and its updated_at (closed, reopened and closed again on one head is two
--- closes); a push by its ref and the commit it moved to. scoped: true when the body names
--- nothing of the event's own (Gitea's reviews have no id, nor a time of their own: their pull
--- request, head commit, type and text's hash; a pull request's action without updated_at),
--- so the same look is a new decision once the card is in another review cycle: the caller
--- adds the card's cycle (orket.serve.webhooks).
function M.identity(doc)
  if type(doc) ~= "table" then return nil end
  local pr, review, repo = doc.pull_request, doc.review, doc.repository
  repo = type(repo) == "table" and str(repo.full_name) or "-"
  if #repo > 255 then return nil end
  local number = type(pr) == "table" and id_of(pr.number)
  local head = type(pr) == "table" and type(pr.head) == "table" and sha_of(pr.head.sha) or "-"
  if type(review) == "table" and id_of(review.id) then return "review:" .. repo .. ":" .. id_of(review.id), false end
  if type(review) == "table" and number and type(review.type) == "string" and #review.type <= 64 then
    local text = type(review.content) == "string" and review.content or ""
    return string.format("review:%s#%s:%s:%s:%s", repo, number, head, review.type,
      crypto.hash(text, 16)), true
  end
  if number and type(doc.action) == "string" and #doc.action <= 64 then
    local at = stamp(pr.updated_at)
    return string.format("pull_request:%s#%s:%s:%s%s%s", repo, number, doc.action, head,
      pr.merged == true and ":merged" or "", at and (":" .. at) or ""), at == nil
  end
  if sha_of(doc.after) and type(doc.ref) == "string" and #doc.ref <= 255 then
    return "push:" .. repo .. ":" .. doc.ref .. ":" .. sha_of(doc.after), false
  end
  return nil
end


--- event_time(doc) -> when the event happened by its own body (seconds) | nil: a review's
--- submitted_at, a pull request's updated_at, a push's repository.pushed_at (GitHub's push
--- payload gives it in Unix seconds, its other events as ISO 8601: both read). A push
--- without one (Gitea/Forgejo send none) has no time: never its head commit's timestamp,
--- which is when the commit was made, not pushed. A card's branch that waited in review
--- for days and was then fast-forwarded into main was refused as stale, for good.
function M.event_time(doc)
  if type(doc) ~= "table" then return nil end
  local review, pr = doc.review, doc.pull_request
  if type(review) == "table" and review.submitted_at then return clock.parse_time(review.submitted_at) end
  if type(pr) == "table" and pr.updated_at then return clock.parse_time(pr.updated_at) end
  local repo = doc.repository
  if sha_of(doc.after) and type(doc.ref) == "string" and type(repo) == "table" then
    local at = repo.pushed_at
    if type(at) == "number" then return at > 0 and math.tointeger(at) or nil end -- (a fraction: not a time)
    return clock.parse_time(at)
  end
  return nil
end

return M
