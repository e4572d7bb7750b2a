-- orket.engine.progwrites: what a program changed in a card's directory (run_command,
-- run_tests and the other "process" tools, an MCP server run there, the engine's checks),
-- judged at the commit that follows as the file tools' writes are: each changed path as a
-- write_file of it by the turn's seat would be (a deletion as a delete_file). A path the gate
-- refuses (deny; or ask: a program's write cannot wait for a person) is put back as the card's
-- branch has it, so the commit leaves it out, and is recorded as a policy violation naming
-- the program's call; the agent reads why in a comment on the card. orket.engine.gitwork
-- calls settle before a commit that walks the whole directory; it judges only when a program
-- ran there since the last such commit (mark, ran), so a turn without one costs nothing
-- here, and what the turn's file tools changed (judged call by call) is not judged again.
-- Contract: docs/policies.md.
local uv = require "luv"
local cjson = require "cjson.safe"
local gitexport = require "orket.c.gitexport"
local gate_mod = require "orket.gate"
local approvals = require "orket.actions.approvals"
local inert = require "orket.inert"
local tree = require "orket.tree"
local workspace = require "orket.workspace"
local tools = require "orket.tools"

local M = {}

-- write_file's cap on content: what a policy is shown of a file (cut there), and the most a
-- person's approval of a write_file can cover
M.CONTENT_MAX = tools.CHANGE_CONTENT_MAX
-- program calls a refusal names, paths a comment or an event lists, violations recorded one
-- by one (the rest in one more), at most
M.CALLS_NAMED = 3
M.PATHS_LISTED = 20
M.RECORDED = 50
-- rounds of look, judge, put back: a .gitignore put back brings into view what it hid
M.ROUNDS = 4
-- the branch's tree written out to put paths back from (a sandbox's caps: orket.sandboxes.source)
M.EXPORT_CAPS = { files = 50000, bytes = 512 * 1024 * 1024 }
-- what an event says of a refusal's reason, at most (the records keep it whole)
M.REASON_MAX = 300

-- The tools a program's change is judged as: write_file's and delete_file's path, which the
-- policies' path and outside globs match (and the gate checks as it checks a call's), and
-- content of any bytes: a build's output is no text write_file would take. The same
-- definitions judge a tool handler's own changes (orket.tools' CHANGE_TOOLS).
local AS = tools.CHANGE_TOOLS

-- run -> {card id -> the calls that ran programs there since its last judged commit}: weak,
-- a run's marks go with it
local MARKS = setmetatable({}, { __mode = "k" })

-- mark(run, card_id) -> the card's mark: the calls that ran programs in the card's
-- directory. It only names the calls a refusal is told of: every commit that walks the
-- directory judges what changed there, marked or not. Kept in this process; a resumed turn
-- marks its recorded program calls again (orket.engine.turn).
local function mark(run, card_id)
  local marks = MARKS[run]
  if not marks then
    marks = {}
    MARKS[run] = marks
  end
  local calls = marks[card_id]
  if not calls then
    calls = { more = 0 }
    marks[card_id] = calls
  end
  return calls
end

--- ran(run, card_id, call): mark, naming the call that runs the program (a process tool's,
--- an MCP server's): the refusals of the next commit name it. The first CALLS_NAMED are kept.
function M.ran(run, card_id, call)
  local calls = mark(run, card_id)
  if #calls >= M.CALLS_NAMED then
    calls.more = calls.more + 1
    return
  end
  local ok, args = pcall(approvals.canonical, call.arguments or {})
  calls[#calls + 1] = call.name .. " " .. inert.clip(ok and args or "{}", 200)
end

--- touched(job, args): a call of the turn's with effects on files (its arguments' path,
--- from, to), run or replayed by a resumed turn. Its paths are judged again at the commit
--- as any other (a program may have changed or deleted them since), but a move's source
--- (from, with a to), which the move_file call was judged for, is not judged as a
--- delete_file when it is gone.
function M.touched(job, args)
  if type(args) ~= "table" then return end
  local t = job.touched_paths
  if not t then
    t = {}
    job.touched_paths = t
  end
  for _, k in ipairs { "path", "from", "to" } do
    if type(args[k]) == "string" then t[args[k]] = true end
  end
  if type(args.from) == "string" and type(args.to) == "string" then
    job.moved_from = job.moved_from or {}
    job.moved_from[args.from] = args.to
  end
end

-- Where p went, when p is, or lies beneath, the source of one of the turn's moves: the
-- path it has under the move's destination | nil
local function moved_to(moved, p)
  if not moved then return nil end
  if moved[p] then return moved[p] end
  for dir in p:gmatch("()/") do
    local to = moved[p:sub(1, dir - 1)]
    if to then return to .. p:sub(dir) end
  end
  return nil
end

-- The program a refusal names
local function named(calls)
  if #calls == 0 then
    return "a program run in the card's directory (the issue's checks, or one a turn before ran)"
  end
  if #calls == 1 and calls.more == 0 then return calls[1] end
  return string.format("a program of the turn's (%s%s)", table.concat(calls, "; "),
    calls.more > 0 and string.format("; and %d more", calls.more) or "")
end

-- Whether a policy set reads a write's content (an args glob on content, or a `when`) in a
-- rule that may apply to write_file: only then is each changed file read. Kept per set.
local NEEDS = setmetatable({}, { __mode = "k" })
local function needs_content(set)
  if set == nil then return true end -- a gate of its own (a test's): read it
  local v = NEEDS[set]
  if v ~= nil then return v end
  v = false
  for _, r in ipairs(set.rules or {}) do
    if not r.tool or gate_mod.glob(r.tool, "write_file") then
      if r.predicate then v = true end
      for _, pair in ipairs(r.args or {}) do
        if pair[1] == "content" then v = true end
      end
    end
    if v then break end
  end
  NEEDS[set] = v
  return v
end

-- What is at p beneath root: its lstat, or nil when nothing is (a parent of it that is not a
-- folder, a link to one included, holds nothing of it: git walks no link)
local function at(root, p)
  local dir = root
  for part in p:gmatch("([^/]+)/") do
    dir = dir .. "/" .. part
    local st = uv.fs_lstat(dir)
    if not st or st.type ~= "directory" then return nil end
  end
  return uv.fs_lstat(root .. "/" .. p)
end

-- The bytes a policy and an approval are judged on: a file's first CONTENT_MAX + 1 (one more
-- says it is longer), a link's target (what git keeps of it) -> text | nil, why
local function content_of(root, p, st)
  if st.type == "link" then return uv.fs_readlink(root .. "/" .. p) end
  if st.type ~= "file" then return "" end
  local f, err = io.open(root .. "/" .. p, "rb")
  if not f then return nil, err end
  local s = f:read(M.CONTENT_MAX + 1) or ""
  f:close()
  return s
end

-- The approved request of the card's that covers a program's change of p exactly, if any: a
-- write_file of p with the same content, a delete_file of p, a move_file from or to p. A
-- person approved it, so the ask is answered (a program's build step after an approved
-- write must not put the approved file back).
local function approval_of(rows, p, tool, content)
  local digest
  for _, r in ipairs(rows) do
    if r.decision == "approve" then
      if r.tool == tool and (tool == "delete_file" or (content and #content <= M.CONTENT_MAX)) then
        digest = digest or approvals.digest(tool, tool == "write_file" and { path = p, content = content } or { path = p })
        if r.digest == digest then return r end
      elseif r.tool == "move_file" then
        local a = cjson.decode(r.arguments or "")
        if type(a) == "table" and (a.from == p or a.to == p) then return r end
      end
    end
  end
  return nil
end

-- The paths of fresh the gate refuses ({path=, tool=, verdict=, code=, reason=, remedy=,
-- rule=} each), judged as the turn's seat's write_file or delete_file of each
local function judge(run, job, dir, fresh)
  local card = assert(run.board:get(job.card_id))
  local facts = gate_mod.card_facts(run.board, card)
  local needs = needs_content(run.engine and run.engine.policies)
  local refused, rows = {}, nil
  for _, p in ipairs(fresh) do
    local st = at(dir, p)
    local tool = st and "write_file" or "delete_file"
    -- only the source of one of the turn's moves is left as its move_file call judged it
    -- (gone, no delete_file asked). Any other path the file tools touched is judged again,
    -- as a program may have changed or deleted it since: a write_file followed by a program's
    -- rm is a deletion, judged as delete_file; a file a program rewrote after an approved
    -- write_file matches that approval no more (its content differs), so it is refused.
    -- (only while its destination holds it: a program that deleted the destination since
    -- deleted the file, which is judged as such)
    local to = not st and moved_to(job.moved_from, p)
    if to and at(dir, to) then goto next end
    local args, content, cerr = { path = p }, nil, nil
    if st and needs then
      content, cerr = content_of(dir, p, st)
      args.content = content and content:sub(1, M.CONTENT_MAX)
    end
    local d
    if st and needs and not content then
      -- the policies read content and it cannot be read: refused, as a `when` that fails is
      d = { verdict = "deny", code = "POLICY_ERROR", reason = string.format("%s: the file could not be read for "
        .. "the policies: %s", tool, tostring(cerr)), remedy = "Write the file with write_file." }
    else
      -- (not the role's tool list: it says what the model may call, and the program was
      -- allowed, or is the issue's checks; a rule's role and seat globs still apply)
      d = run.gate { actor = job.actor, tool = tool, args = args, card = facts, tools = AS }
    end
    if d.verdict == "ask" then
      rows = rows or approvals.list(run.db, job.card_id)
      if tool == "write_file" and not content and st then content = content_of(dir, p, st) end
      if approval_of(rows, p, tool, content) then d = { verdict = "allow" } end
    end
    if d.verdict ~= "allow" then
      refused[#refused + 1] = { path = p, tool = tool, verdict = d.verdict, code = d.code, reason = d.reason,
        remedy = d.remedy, rule = d.rule_name }
    end
    ::next::
  end
  return refused
end

-- Puts p back in the card's directory as the branch has it, through ws (a workspace opened
-- on the folder that holds both the cards' directories and the branch's tree written out:
-- every path resolved by the kernel beneath it, no link followed in any part of it, so a
-- folder a program swapped for a link meanwhile is refused, never written through). d, s:
-- the card's directory and the written-out tree, relative to ws's root; aside: where what
-- stands at p now goes (one rename, undone when the branch's entry cannot be put in its
-- place, so a failure leaves p as it was). The branch's file or link is moved in from s (its
-- mode kept: the executable bit), a folder the branch has is made (what the branch has
-- beneath it that is refused too comes after it: restore's order). -> true | nil, why
local function put_back(ws, d, s, aside, p)
  local here, from = d .. "/" .. p, s .. "/" .. p
  -- (a stat that fails says nothing is there that git sees: a link or a file in the path)
  local want = ws:stat(from)
  local put
  if ws:stat(here) then
    local ok, err = ws:move(here, aside)
    if not ok then return nil, "it could not be removed: " .. tostring(err) end
    put = aside
  end
  if not want then return true end
  local ok, err = true, nil
  local parent = p:match("^(.*)/")
  if parent then ok, err = ws:mkdir(d .. "/" .. parent) end
  if ok then
    if want.type == "directory" then ok, err = ws:mkdir(here) else ok, err = ws:move(from, here) end
  end
  if not ok then
    if put then ws:move(put, here) end -- p as it was: nothing of it half done
    return nil, tostring(err)
  end
  return true
end

local scratch_n = 0

-- Puts each refused path back from the card's branch, written out beside the cards' state
-- (outside anything an agent can write). Every path is tried (one that fails leaves the
-- others put back, and itself as it was). -> true | nil, msg, "EUNSAFE" (nothing is
-- committed: the card blocks for a person, the worktree as it is)
local function restore(run, job, dir, state_root, refused)
  scratch_n = scratch_n + 1
  -- absolute: the export writes the tree's folders beneath it, which a relative path failed to open
  local state = uv.fs_realpath(state_root) or state_root
  local name = string.format(".put-back-%s.%d.%d", job.card_id, uv.os_getpid(), scratch_n)
  local src = state .. "/" .. name
  local commit, err, code = gitexport.export(run.git.repo:path(), "orket/" .. job.card_id, src, M.EXPORT_CAPS)
  local _ <close> = setmetatable({}, { __close = function()
    if code ~= "EEXIST" then tree.remove(src) end
    tree.remove(src .. ".aside")
  end })
  if not commit then
    return nil, string.format("the paths a program changed that the policies refuse (%s) could not be put back: "
      .. "the branch's tree could not be read: %s", refused[1].path, tostring(err)), "EUNSAFE"
  end
  -- the root: the folder that holds the cards' state and their directories (.orket/)
  local root, real = state:match("^(.*)/[^/]+$"), uv.fs_realpath(dir)
  local d = root and real and real:sub(1, #root + 1) == root .. "/" and real:sub(#root + 2)
  local ws, werr
  if d then ws, werr = workspace.open(root, { portable_names = false }) end
  if not ws then
    return nil, string.format("the paths a program changed that the policies refuse (%s) could not be put back: %s",
      refused[1].path, d and tostring(werr) or "the card's directory is not beside the cards' state"), "EUNSAFE"
  end
  local _ws <close> = ws
  local s, aside = state:sub(#root + 2) .. "/" .. name, state:sub(#root + 2) .. "/" .. name .. ".aside"
  local ok, merr = ws:mkdir(aside)
  if not ok then
    return nil, string.format("%s could not be put back: %s", refused[1].path, tostring(merr)), "EUNSAFE"
  end
  -- a path before those beneath it: a folder put back as a file first, then what it held
  table.sort(refused, function(a, b) return a.path < b.path end)
  local first
  for i, r in ipairs(refused) do
    local pok, why = put_back(ws, d, s, aside .. "/" .. i, r.path)
    if not pok and not first then
      first = string.format("%s, changed by a program, is refused by the policies (%s) and could not be put back "
        .. "as the branch has it: %s", r.path, tostring(r.reason), tostring(why))
    end
  end
  if first then return nil, first, "EUNSAFE" end
  return true
end

-- The remedy a refused path's records give
local function remedy_of(r)
  if r.verdict == "ask" then
    return string.format("A program's change cannot wait for a developer's approval: %s the file with %s, which "
      .. "asks.", r.tool == "delete_file" and "delete" or "write", r.tool)
  end
  return r.remedy
end

-- Records the refusals (violations, each naming the program's call; a comment the agent
-- reads; the run's event) in the caller's transaction
local function record(run, job, refused, by)
  local n = #refused
  for i = 1, math.min(n, M.RECORDED) do
    local r = refused[i]
    assert(run.db:record_violation { turn = job.turn_row, card = job.card_id, seat = job.seat, run = job.run,
      rule = r.code or "denied",
      attempt = string.format("%s %s %s", by, r.tool == "delete_file" and "deleted" or "wrote", r.path),
      detail = tostring(r.reason) .. "; the program's change was put back as the branch has it and not committed",
      remedy = remedy_of(r) })
  end
  if n > M.RECORDED then
    assert(run.db:record_violation { turn = job.turn_row, card = job.card_id, seat = job.seat, run = job.run,
      rule = "denied", attempt = string.format("%s changed %d more paths the policies refuse", by, n - M.RECORDED),
      detail = "each put back as the branch has it and not committed",
      remedy = "Change files with the file tools, which the policies judge call by call." })
  end
  local lines, listed, asks = {}, {}, false
  for i = 1, math.min(n, M.PATHS_LISTED) do
    local r = refused[i]
    asks = asks or r.verdict == "ask"
    lines[#lines + 1] = string.format("- %s: %s%s", r.path, r.verdict == "ask" and "needs a developer's approval: " or "",
      tostring(r.reason))
    listed[#listed + 1] = { path = r.path, verdict = r.verdict, code = r.code, rule = r.rule,
      reason = inert.clip(tostring(r.reason), M.REASON_MAX) }
  end
  if n > M.PATHS_LISTED then
    lines[#lines + 1] = string.format("- and %d more ('orket card %s' lists them)", n - M.PATHS_LISTED, job.card_id)
  end
  assert(run.board:comment(job.card_id, { author = "orket", body = string.format("%s changed %d path%s that the "
    .. "policies do not let %s change; %s put back as the branch has %s and not committed:\n%s%s", by, n,
    n == 1 and "" or "s", job.seat, n == 1 and "it was" or "they were", n == 1 and "it" or "them",
    table.concat(lines, "\n"), asks and "\nA program's change cannot wait for a developer's approval: to change "
    .. "such a file, write it with write_file (delete it with delete_file), which asks." or "") }))
  if run.emit then
    run:emit { type = "program_writes_denied", card = job.card_id, seat = job.seat, turn = job.turn, by = by,
      count = n, paths = listed }
  end
end

--- sweep(state_root[, now]) -> removes the put-back folders (restore's) of processes no longer
--- running, left at least SWEEP_AGE_S ago: a kill in the middle of a put-back leaves its
--- export there. One whose process runs here (this one, another run on the project) is its
--- own and kept; the age keeps another machine's (workers sharing the project's folder over a
--- shared file system, docs/workers.md), whose pid means nothing here, while it is at work; a
--- pid reused since only keeps a leftover a while longer. now: seconds, for tests.
M.SWEEP_AGE_S = 3600
function M.sweep(state_root, now)
  now = now or os.time()
  local scan = uv.fs_scandir(state_root)
  local gone = {}
  while scan do
    local name = uv.fs_scandir_next(scan)
    if not name then break end
    local pid = name:match("^%.put%-back%-.+%.(%d+)%.%d+$") or name:match("^%.put%-back%-.+%.(%d+)%.%d+%.aside$")
    pid = pid and math.tointeger(tonumber(pid))
    local st = pid and pid > 0 and uv.fs_lstat(state_root .. "/" .. name)
    if st and st.mtime.sec <= now - M.SWEEP_AGE_S then
      local alive, _, code = uv.kill(pid, 0)
      -- (a system's name, not an orket code: kill(pid, 0) tells "gone" only by it)
      if not alive and tostring(code):match("^ESRCH$") then gone[#gone + 1] = state_root .. "/" .. name end
    end
  end
  for _, path in ipairs(gone) do tree.remove(path) end
end

--- settle(run, job, dir, state_root) -> true | nil, msg, CODE: before every commit of the
--- card's directory dir (job.card_id's, attached) that walks it whole: each path changed
--- since the branch's tip is judged as the turn's seat's write_file of it (delete_file when
--- it is gone; a move's source the turn's move_file took away is not: touched), by the
--- engine's newest policies and the gate's path checks (the write limits count the file
--- tools' calls only). A path refused is put back as the branch has it and recorded (a violation, a comment, a `program_writes_denied` event); what the
--- policies let through is left for the commit. A path that cannot be put back fails the
--- commit (EUNSAFE: the card is blocked, nothing of it committed). state_root: where the
--- branch's tree is written out meanwhile (beside the cards' state).
function M.settle(run, job, dir, state_root)
  local marks = MARKS[run]
  local calls = marks and marks[job.card_id] or { more = 0 }
  local seen, refused, put = {}, {}, {}
  for round = 1, M.ROUNDS + 1 do
    local changed, err, code = run.git.repo:status(job.card_id)
    if not changed then return nil, tostring(err), code end
    local fresh = {}
    for _, p in ipairs(changed) do
      -- one put back that still differs from the branch would go into the commit after all
      if put[p] then
        return nil, string.format("%s, changed by a program and refused by the policies, still differs from the "
          .. "branch after it was put back", p), "EUNSAFE"
      end
      if not seen[p] then
        seen[p] = true
        fresh[#fresh + 1] = p
      end
    end
    if #fresh == 0 then break end
    if round > M.ROUNDS then
      return nil, string.format("the paths a program changed kept changing as refused ones were put back (%s ...)",
        fresh[1]), "EUNSAFE"
    end
    local now = judge(run, job, dir, fresh)
    if #now == 0 then break end
    local ok, rerr, rcode = restore(run, job, dir, state_root, now)
    if not ok then return nil, rerr, rcode end
    for _, r in ipairs(now) do
      refused[#refused + 1] = r
      put[r.path] = true
    end
  end
  if #refused > 0 then record(run, job, refused, named(calls)) end
  if marks then marks[job.card_id] = nil end
  return true
end

return M
