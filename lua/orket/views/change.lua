-- orket.views.change: what an agent changed on a card, the orket.change/1 document of
-- GET /v1/cards/{id}/diff: the files its branch (orket/<CARD>) changed against main, each
-- with a unified diff (capped; a binary file is named, never shown), and the commit of
-- each turn (from the journal, orket.engine.gitwork.info). Read with orket.c.gitdiff.
local gitdiff = require "orket.c.gitdiff"
local gitrepo = require "orket.c.gitrepo"
local gitwork = require "orket.engine.gitwork"
local jsonout = require "orket.jsonout"
local cjson = require "cjson"
local sj = require "orket.store.journal_reads"

local M = {}

M.MAX_FILES = 300
M.MAX_BYTES = 256 * 1024

-- The commit the branch's change is measured from, and why. Not merged yet: where the
-- branch left main (its merge base with main now), so main's later work and what the
-- branch took from main are not the card's. Merged with a merge commit: the merge base of
-- that commit's first parent (main before it) and the branch. Merged by a fast-forward:
-- main as the branch last took it in (the second parent of the newest merge of main on the
-- branch's own line, as merge_from_main makes one after a conflict, journaled merge_main; a
-- merge of the remote's copy of the branch is the card's own work), else the parent of the
-- card's first turn commit: what main's other cards merged meanwhile is not the card's.
M.WALK_MAX = 10000
local function base_of(g, tip, info)
  local mb, err, code = g:merge_base("refs/heads/main", tip)
  if err then return nil, err, code end
  if mb and mb ~= tip then return mb, "main" end
  -- (a fast-forward leaves main at the branch's tip, which may be a merge of the branch's own)
  if info.merged and info.merged ~= tip then
    local ps = g:parents(info.merged) or {}
    if #ps >= 2 then
      local b = g:merge_base(ps[1], tip)
      if b then return b, "merge" end
    end
  end
  local first = info.commits[1]
  local c = tip
  for _ = 1, M.WALK_MAX do
    if not first or c == first.id then break end
    local cps = g:parents(c)
    if not cps or not cps[1] then break end
    -- main's (merge_from_main, journaled as merge_main), not the remote's copy of the card's
    -- own branch (a hand-in's merge_remote_to_card), whose work is the card's
    if cps[2] and info.main_merges[c] then return cps[2], "main_taken" end
    c = cps[1]
  end
  local ps = first and g:parents(first.id) or {}
  if ps[1] then return ps[1], "first_turn" end
  return mb or tip, "main"
end

--- of(db, dir, card_id[, {max_files=, max_bytes=}]) -> the orket.change/1 document
---   | nil, msg, CODE (ENOENT: no such card, or the card has no branch). dir: the project.
--- doc: {format, card, branch, base, tip, base_from ("main", "merge", "main_taken" or "first_turn"),
---   merged (main's commit after the merge, or null), commits = {{id, turn, run, seat}...},
---   files = {{path, old_path, status (A D M R T), binary, additions, deletions, patch,
---   omitted}...}, changed (files that differ), bytes, truncated}
function M.of(db, dir, card_id, caps)
  caps = caps or {}
  local repo = gitrepo.open(dir .. "/workspace")
  if not repo then return nil, "the workspace is not a git repository", "ENOENT" end
  local info = gitwork.info(db, repo, card_id)
  repo:close()
  if not info then return nil, card_id .. " has no branch: no turn has worked it", "ENOENT" end
  info.main_merges = sj.main_merges(db, card_id)
  local g, err, code = gitdiff.open(dir .. "/workspace")
  if not g then return nil, err, code end
  local _ <close> = g
  local tip = g:resolve("refs/heads/" .. info.branch)
  if not tip then return nil, card_id .. " has no branch: no turn has worked it", "ENOENT" end
  local base, from, bcode = base_of(g, tip, info)
  if not base then return nil, from, bcode end
  local d, derr, dcode = g:diff(base, tip, { max_files = caps.max_files or M.MAX_FILES,
    max_bytes = caps.max_bytes or M.MAX_BYTES })
  if not d then return nil, derr, dcode end
  local files = {}
  for i, f in ipairs(d.files) do
    files[i] = { path = f.path, old_path = f.old_path or cjson.null, status = f.status, binary = f.binary,
      additions = f.additions, deletions = f.deletions, patch = f.patch or cjson.null, omitted = f.omitted }
  end
  local commits = {}
  for i, c in ipairs(info.commits) do
    commits[i] = { id = c.id, turn = c.turn, run = c.run or cjson.null, seat = c.seat or cjson.null }
  end
  return { format = "orket.change/1", card = card_id, branch = info.branch, base = base, tip = tip,
    base_from = from, merged = info.merged or cjson.null, commits = jsonout.array(commits),
    files = jsonout.array(files), changed = d.changed, bytes = d.bytes, truncated = d.truncated }
end

return M
