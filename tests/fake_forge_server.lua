-- A fake forge REST API for tests, on 127.0.0.1 only, following the documented behaviour of
-- Gitea (/api/v1/repos/OWNER/NAME/...) and GitHub (/repos/OWNER/NAME/...) for the calls Orket
-- makes: pull requests (list with their paging, create, get, merge, close), issue comments
-- and commit statuses, kept in memory. GitHub's answers carry its rate-limit headers.
--   build/orket lua tests/fake_forge_server.lua [PORT]   -> prints "listening http://127.0.0.1:PORT"
-- Test controls (never called by Orket):
--   GET /__log: every API request seen ({method=, path=, query=, authorization=, body=})
--   GET /__prs, /__comments, /__statuses: what the forge holds
--   POST /__fail?status=N&times=K[&echo=1|html=1]: the next K API calls answer N (echo: the error
--     message quotes the Authorization header, as some proxies and forges do; html: so does
--     a proxy's HTML page, the header's value starting 180 bytes in)
--   POST /__hold?ms=N&times=K: the next K API calls are answered after N ms (a slow forge)
--   POST /__hold?until=unhold&times=K[&ms=N]: the next K API calls are held until POST /__unhold
--     (at most N ms, 60000 by default: a test that never releases them still ends)
--   POST /__ratelimit?kind=primary|secondary&times=K[&after=S]: the next K API calls are refused for
--     the rate limit (primary: 403 with x-ratelimit-remaining 0; secondary: 429, Retry-After: S,
--     7 by default; secondary403: the same as a 403, which GitHub sends too)
--   POST /__seed?repo=OWNER/NAME&count=N: N open pull requests from other people's branches
--   POST /__fork?repo=OWNER/NAME&branch=B[&from=R][&base=BR]: a person opens a pull request
--     from repository R's branch B (stranger/NAME by default: a fork's; R may be OWNER/NAME
--     itself) into BR (main by default); a fork's head is not in /__remote's repository
--   POST /__merge?repo=OWNER/NAME&number=N&sha=S: a person merges pull request N as commit S
--   POST /__head?repo=OWNER/NAME&number=N&sha=S: pull request N's head is now commit S
--   POST /__release?repo=OWNER/NAME&tag=T[&draft=1][&prerelease=1][&url=U]: a release is
--     published (listed newest first by GET /repos/OWNER/NAME/releases)
--   POST /__remote?path=P: the git repository the forge hosts is P: as a forge does, each
--     open pull request's head is then its branch's tip there (read on every API call)
local httpd = require "orket.c.httpd"
local task = require "orket.task"
local json = require "cjson"

local port = tonumber(arg and arg[1]) or 0
local srv = assert(httpd.listen { host = "127.0.0.1", port = port, max_body_bytes = 1 << 20 })
local base_url = "http://127.0.0.1:" .. srv:port()
io.stdout:write("listening " .. base_url .. "\n")
io.stdout:flush()

local log, prs, comments, statuses, releases = {}, {}, {}, {}, {}
local fail = { status = 0, times = 0, echo = false }
local limited = { kind = nil, times = 0, after = 7 }
local hold = { ms = 0, times = 0, gated = false }
local next_number = 1
local remote_path -- /__remote: where the branches live
local RESET = os.time() + 3600

local function array(t) return setmetatable(t, json.array_mt) end

local function reply(req, status, doc, extra)
  local h = { "Content-Type: application/json" }
  for _, line in ipairs(extra or {}) do h[#h + 1] = line end
  req:respond(status, h, doc == nil and "" or json.encode(doc))
end

-- GitHub sends its rate-limit state on every answer; Gitea sends none by default.
local function rate_headers(github, remaining)
  if not github then return {} end
  return { "x-ratelimit-limit: 5000", "x-ratelimit-remaining: " .. remaining, "x-ratelimit-reset: " .. RESET,
    "x-ratelimit-used: " .. (5000 - remaining), "x-ratelimit-resource: core" }
end

local function find(repo, number)
  for _, pr in ipairs(prs) do
    if pr.repo == repo and pr.number == number then return pr end
  end
end

-- head_repo: the repository the branch is in (repo itself by default; another: a fork's)
local function new_pr(repo, head, title, body, login, head_repo, base)
  head_repo = head_repo or repo
  local pr = { number = next_number, repo = repo, state = "open", title = title, body = body, merged = false,
    head = { ref = head, sha = string.format("%040x", next_number), repo = { full_name = head_repo },
      label = head_repo:match("^[^/]+") .. ":" .. head },
    base = { ref = base or "main", repo = { full_name = repo } },
    user = { login = login }, html_url = "http://forge.invalid/" .. repo .. "/pulls/" .. next_number }
  next_number = next_number + 1
  prs[#prs + 1] = pr
  return pr
end

-- One page of items, with the forge's Link header (rel next/last/first/prev) and, for Gitea,
-- X-Total-Count. GitHub: per_page (default 30, at most 100); Gitea: limit (at most 50).
local function paged(req, github, items, query, path)
  local size_name = github and "per_page" or "limit"
  local size = math.tointeger(tonumber(query[size_name])) or (github and 30 or 50)
  size = math.max(1, math.min(size, github and 100 or 50))
  local page = math.max(1, math.tointeger(tonumber(query.page)) or 1)
  local last = math.max(1, (#items + size - 1) // size)
  local out = array {}
  for i = (page - 1) * size + 1, math.min(#items, page * size) do out[#out + 1] = items[i] end
  local keep = {}
  for k, v in pairs(query) do
    if k ~= "page" and k ~= size_name then keep[#keep + 1] = k .. "=" .. v end
  end
  table.sort(keep)
  local function link(n, rel)
    local q = table.concat(keep, "&")
    return string.format('<%s%s?%s%s%s=%d&page=%d>; rel="%s"', base_url, path, q, q ~= "" and "&" or "",
      size_name, size, n, rel)
  end
  local links = {}
  if page < last then links[#links + 1] = link(page + 1, "next"); links[#links + 1] = link(last, "last") end
  if page > 1 then links[#links + 1] = link(1, "first"); links[#links + 1] = link(page - 1, "prev") end
  local extra = rate_headers(github, 4999)
  if #links > 0 then extra[#extra + 1] = "Link: " .. table.concat(links, ", ") end
  if not github then extra[#extra + 1] = "X-Total-Count: " .. #items end
  return reply(req, 200, out, extra)
end

local function list_prs(req, github, repo, query, path)
  local state = query.state or "open"
  -- GitHub's head=OWNER:BRANCH names the head repository's owner (so a fork in the same
  -- organisation matches too); Gitea's list has neither filter
  local head_filter = github and query.head or nil
  local base_filter = github and query.base or nil
  local items = {}
  for _, pr in ipairs(prs) do
    if pr.repo == repo and (state == "all" or pr.state == state)
        and (not head_filter or head_filter == pr.head.label)
        and (not base_filter or base_filter == pr.base.ref) then
      items[#items + 1] = pr
    end
  end
  return paged(req, github, items, query, path)
end

local function create_pr(req, github, repo, doc)
  if type(doc) ~= "table" or type(doc.head) ~= "string" or type(doc.title) ~= "string" then
    return reply(req, 422, { message = "Validation Failed" })
  end
  for _, pr in ipairs(prs) do
    -- (a fork's branch of the same name, or one into another base, is another pull request)
    if pr.repo == repo and pr.state == "open" and pr.head.ref == doc.head and pr.head.repo.full_name == repo
        and pr.base.ref == (doc.base or "main") then
      if github then
        return reply(req, 422, { message = "Validation Failed", errors = array { { resource = "PullRequest",
          code = "custom", message = "A pull request already exists for " .. repo:match("^[^/]+") .. ":" .. doc.head .. "." } } },
          rate_headers(true, 4999))
      end
      return reply(req, 409, { message = "pull request already exists for these targets" })
    end
  end
  return reply(req, 201, new_pr(repo, doc.head, doc.title, doc.body, "orket-bot", repo, doc.base),
    rate_headers(github, 4999))
end

local function merge_pr(req, github, pr, doc)
  doc = type(doc) == "table" and doc or {}
  if pr.merged or pr.state ~= "open" then
    return reply(req, 405, { message = "Pull Request is not mergeable" }, rate_headers(github, 4999))
  end
  if not github and doc.Do == "manually-merged" then
    pr.state, pr.merged, pr.merge_commit_sha = "closed", true, doc.MergeCommitID
    return reply(req, 200, nil)
  end
  local want = github and doc.sha or doc.head_commit_id
  if want and want ~= pr.head.sha then
    return reply(req, 409, { message = "Head branch was modified. Review and try the merge again." },
      rate_headers(github, 4999))
  end
  pr.state, pr.merged = "closed", true
  pr.merge_commit_sha = string.format("%040x", 0xa0000 + pr.number)
  if github then
    return reply(req, 200, { sha = pr.merge_commit_sha, merged = true, message = "Pull Request successfully merged" },
      rate_headers(true, 4999))
  end
  return reply(req, 200, nil)
end

local function handle(req)
  local body = req:body() or ""
  local path, query = req.path, {}
  for k, v in pairs(req.query or {}) do query[k] = v end
  if path == "/__log" then return reply(req, 200, array(log)) end
  if path == "/__prs" then return reply(req, 200, array(prs)) end
  if path == "/__comments" then return reply(req, 200, array(comments)) end
  if path == "/__statuses" then return reply(req, 200, array(statuses)) end
  if path == "/__fail" then
    fail.status, fail.times = tonumber(query.status) or 500, tonumber(query.times) or 1
    fail.echo = query.echo == "1"
    fail.html = query.html == "1"
    return reply(req, 200, {})
  end
  if path == "/__hold" then
    hold.gated = query["until"] == "unhold"
    hold.ms, hold.times = tonumber(query.ms) or (hold.gated and 60000 or 1000), tonumber(query.times) or 1
    return reply(req, 200, {})
  end
  if path == "/__unhold" then
    hold.gated = false
    return reply(req, 200, {})
  end
  if path == "/__ratelimit" then
    limited.kind, limited.times = query.kind or "primary", tonumber(query.times) or 1
    limited.after = math.tointeger(tonumber(query.after)) or 7
    return reply(req, 200, {})
  end
  if path == "/__seed" then
    for i = 1, tonumber(query.count) or 1 do
      new_pr(query.repo, "feature-" .. next_number, "someone's change " .. i, "", "someone")
    end
    return reply(req, 200, {})
  end
  if path == "/__fork" then
    local from = query.from or ("stranger/" .. tostring(query.repo):match("[^/]*$"))
    local pr = new_pr(query.repo, query.branch, "a person's change", "", from:match("^[^/]+"), from, query.base)
    if from ~= query.repo then pr.head.sha = string.rep("f", 40) end
    return reply(req, 200, pr)
  end
  if path == "/__head" then
    -- the branch moved on the forge (a push): the pull request's head is now sha
    local pr = find(query.repo, tonumber(query.number))
    if not pr then return reply(req, 404, { message = "Not Found" }) end
    pr.head.sha = query.sha
    return reply(req, 200, pr)
  end
  if path == "/__release" then
    local r = { id = #releases + 1, repo = query.repo, tag_name = query.tag, name = "Release " .. tostring(query.tag),
      draft = query.draft == "1", prerelease = query.prerelease == "1",
      html_url = query.url or ("http://forge.invalid/" .. tostring(query.repo) .. "/releases/tag/" .. tostring(query.tag)) }
    table.insert(releases, 1, r) -- newest first, as both forges list them
    return reply(req, 200, r)
  end
  if path == "/__remote" then
    remote_path = query.path
    return reply(req, 200, {})
  end
  if path == "/__merge" then
    local pr = find(query.repo, tonumber(query.number))
    if not pr then return reply(req, 404, { message = "Not Found" }) end
    pr.state, pr.merged, pr.merge_commit_sha = "closed", true, query.sha
    return reply(req, 200, pr)
  end
  log[#log + 1] = { method = req.method, path = path, query = query, authorization = req.headers.authorization,
    body = body }
  local github = path:sub(1, 8) ~= "/api/v1/"
  if hold.times > 0 then
    hold.times = hold.times - 1
    if hold.gated then
      -- held until the test says (POST /__unhold), whatever the machine's load
      local waited = 0
      while hold.gated and waited < hold.ms do
        require("orket").sleep(20)
        waited = waited + 20
      end
    else
      require("orket").sleep(hold.ms)
    end
  end
  if fail.times > 0 then
    fail.times = fail.times - 1
    local m = "the fake forge fails on purpose"
    if fail.echo then m = m .. " (" .. tostring(req.headers.authorization) .. " was sent)" end
    if fail.html then
      local head = "<html><body><h1>502 Bad Gateway</h1><pre>request headers:\nAccept: application/json\n"
      head = head .. string.rep(" ", 180 - #head - #"Authorization: ") .. "Authorization: "
      return req:respond(fail.status, { "Content-Type: text/html" }, head .. tostring(req.headers.authorization)
        .. "\n</pre></body></html>")
    end
    return reply(req, fail.status, { message = m })
  end
  if limited.times > 0 then
    limited.times = limited.times - 1
    if limited.kind == "secondary403" then
      return reply(req, 403, { message = "You have exceeded a secondary rate limit." }, { "Retry-After: " .. limited.after })
    end
    if limited.kind == "secondary" then
      return reply(req, 429, { message = "You have exceeded a secondary rate limit." }, { "Retry-After: " .. limited.after })
    end
    return reply(req, 403, { message = "API rate limit exceeded" }, rate_headers(true, 0))
  end
  if remote_path then
    -- a forge follows pushes: an open pull request's head is its branch's tip
    local refs = require("orket.c.gitrepo").ls_remote(remote_path) or {}
    for _, pr in ipairs(prs) do
      local tip = pr.state == "open" and pr.head.repo.full_name == pr.repo and refs["refs/heads/" .. pr.head.ref]
      if tip then pr.head.sha = tip end
    end
  end
  local rest = github and path or path:sub(8)
  local repo, tail = rest:match("^/repos/([^/]+/[^/]+)(/.*)$")
  if not repo then return reply(req, 404, { message = "Not Found" }) end
  local doc = body ~= "" and json.decode(body) or nil
  local m = req.method
  if tail == "/pulls" and m == "GET" then return list_prs(req, github, repo, query, path) end
  if tail == "/releases" and m == "GET" then
    local items = {}
    for _, r in ipairs(releases) do
      if r.repo == repo then items[#items + 1] = r end
    end
    return paged(req, github, items, query, path)
  end
  if tail == "/pulls" and m == "POST" then return create_pr(req, github, repo, doc) end
  local n, sub = tail:match("^/pulls/(%d+)(.*)$")
  if n then
    local pr = find(repo, tonumber(n))
    if not pr then return reply(req, 404, { message = "Not Found" }) end
    if sub == "" and m == "GET" then return reply(req, 200, pr, rate_headers(github, 4999)) end
    if sub == "" and m == "PATCH" then
      if type(doc) == "table" and (doc.state == "closed" or doc.state == "open") and not pr.merged then pr.state = doc.state end
      return reply(req, 200, pr, rate_headers(github, 4999))
    end
    if sub == "/merge" and ((github and m == "PUT") or (not github and m == "POST")) then
      return merge_pr(req, github, pr, doc)
    end
  end
  n = tail:match("^/issues/(%d+)/comments$")
  if n and m == "POST" then
    if not find(repo, tonumber(n)) then return reply(req, 404, { message = "Not Found" }) end
    local c = { id = #comments + 1, repo = repo, number = tonumber(n), body = type(doc) == "table" and doc.body or nil }
    comments[#comments + 1] = c
    return reply(req, 201, c, rate_headers(github, 4999))
  end
  local sha = tail:match("^/statuses/(%x+)$")
  if sha and m == "POST" then
    local states = github and { pending = 1, success = 1, failure = 1, error = 1 }
      or { pending = 1, success = 1, failure = 1, error = 1, warning = 1 }
    if type(doc) ~= "table" or not states[doc.state] then return reply(req, 422, { message = "Validation Failed" }) end
    if github and doc.description and #doc.description > 140 then
      return reply(req, 422, { message = "Validation Failed: description is too long (maximum is 140 characters)" })
    end
    local st = { id = #statuses + 1, repo = repo, sha = sha, state = doc.state, context = doc.context or "default",
      description = doc.description, target_url = doc.target_url }
    statuses[#statuses + 1] = st
    return reply(req, 201, st, rate_headers(github, 4999))
  end
  return reply(req, 404, { message = "Not Found" })
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
