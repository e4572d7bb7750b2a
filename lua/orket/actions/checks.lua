-- orket.actions.checks: check results on the forge. A card's verification result is posted
-- as a commit status on its branch head (orket.forge.post_status; the branch pushed first,
-- never over a person's commits, so the forge has the commit), and a failure's output tail
-- goes to its open pull request as a comment; a sandbox's acceptance checks (orket/sandbox)
-- on the commit of main it runs.
-- Network: call it in a task, outside any transaction. Contract: docs/git.md, docs/sandbox.md.
local forge = require "orket.forge"
local sf = require "orket.store.forge"
local prbranch = require "orket.actions.prbranch"

local M = {}

M.CONTEXT = "orket/verify"
M.SANDBOX_CONTEXT = "orket/sandbox"
M.COMMENT_TAIL = 3000 -- bytes of the failing output in the comment

--- report{repo=, g=, auth=, token=, card=, passed=, what=, outcome=, output=}
--- -> {sha=, state=, commented=} | nil, msg, CODE: the branch orket/<card> pushed (never
--- forced: commits a person pushed there are the hand-in's to take in, orket.actions.prbranch,
--- so a remote branch that is not behind the card's refuses it, EREJECTED, and no status is
--- posted), then a status on its head (success or failure, described by the check and its
--- outcome); a failure with an open pull request also gets a comment with the output's tail.
function M.report(o)
  local g = o.g
  local sha = o.repo:head("orket/" .. o.card)
  if not sha then return nil, "git: no branch orket/" .. o.card, "ENOENT" end
  -- a take-in's merge whose conflict markers were never resolved is never pushed, whatever
  -- the checks said of it (orket.engine.verify sends such a card back before checking it)
  if prbranch.unresolved(o.repo, o.card) then
    return nil, string.format("the head of orket/%s (%s) is a take-in's merge with unresolved conflict markers: "
      .. "it is not pushed and no status is posted", o.card, sha), "EUNRESOLVED"
  end
  local auth = {}
  for k, v in pairs(o.auth or {}) do auth[k] = v end
  auth.force = nil
  local ok, err, code = o.repo:push(g.remote, "orket/" .. o.card, auth)
  if not ok and code == "EREJECTED" then
    return nil, string.format("the remote's orket/%s has commits the card's branch does not (a person's, taken in "
      .. "by the card's hand-in, or a rewrite it replaces), so it is not pushed over here and no status is posted "
      .. "for %s: %s", o.card, sha, tostring(err)), code
  end
  if not ok then return nil, err, code end
  local state = o.passed and "success" or "failure"
  ok, err, code = forge.post_status(g, o.token, sha, { state = state, context = M.CONTEXT,
    description = string.format("%s: %s", o.what, o.outcome) })
  if not ok then return nil, err, code end
  local out = { sha = sha, state = state }
  local row = not o.passed and sf.pull_request(o.db, o.card)
  local number = row and math.tointeger(row.number)
  if number then
    local text = o.output or ""
    if #text > M.COMMENT_TAIL then text = "[...]" .. text:sub(-M.COMMENT_TAIL) end
    -- the output is the agents' program's: fenced, never read as the forge's markup
    local fence = "````"
    while text:find(fence, 1, true) do fence = fence .. "`" end
    ok, err, code = forge.comment(g, o.token, number, string.format("Orket's verification failed at %s (%s): %s.\n\n"
      .. "%stext\n%s\n%s", sha:sub(1, 12), o.what, o.outcome, fence, text, fence))
    if not ok then return nil, err, code end
    out.commented = true
  end
  return out
end

--- report_sandbox{g=, token=, sha=, passed=, description=} -> {sha=, state=} | nil, msg,
--- CODE: a sandbox's acceptance checks as the status orket/sandbox of the commit of main it
--- runs (main is pushed by the merge before the deploy)
function M.report_sandbox(o)
  local state = o.passed and "success" or "failure"
  local ok, err, code = forge.post_status(o.g, o.token, o.sha, { state = state, context = M.SANDBOX_CONTEXT,
    description = o.description })
  if not ok then return nil, err, code end
  return { sha = o.sha, state = state }
end

return M
