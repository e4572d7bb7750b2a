-- orket.terminal.liveview: engine events fed to the view with a fake clock and a string
-- buffer as terminal; the frames it writes, its redraw rate, colour and the final summary.
local liveview = require "orket.terminal.liveview"

local function fake(o)
  o = o or {}
  local term = { out = {}, ms = 0 }
  local cards = o.cards or {
    { id = "N-1", status = "ready" }, { id = "N-2", status = "ready" }, { id = "N-3", status = "done" },
  }
  term.view = liveview.new {
    write = function(s) term.out[#term.out + 1] = s end,
    now = function() return term.ms end,
    color = o.color, width = o.width or 100, height = o.height,
    scope = function(target)
      term.scoped = target
      return cards
    end,
  }
  term.cards = cards
  return term
end

-- The last frame as plain lines: cursor moves and colours removed.
local function plain(s)
  s = s:gsub("\27%[%d*A", ""):gsub("\27%[[%d;]*[mJK]", ""):gsub("\r", "")
  return s
end

local function last(term) return plain(term.out[#term.out]) end

describe("live view", function()
  it("shows cards by status, what each seat does, tokens and elapsed time", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 7, target = "N", concurrency = 2 }
    assert.equal("N", t.scoped)
    assert.equal(1, #t.out)
    assert.equal("orket run 7 N  00:00  0 tokens  0 turns\ncards (3): ready 2  done 1\n", last(t))
    t.ms = 150
    v:event { type = "turn_start", run_id = 7, card = "N-1", seat = "senior_developer", role = "coder", phase = "work", turn = 1 }
    t.ms = 300
    v:event { type = "turn_start", run_id = 7, card = "N-2", seat = "integrity_guard", role = "integrity_guard", phase = "review", turn = 2 }
    t.ms = 1450
    v:event { type = "model", run_id = 7, card = "N-1", seat = "senior_developer", turn = 1, step = 2,
      prompt_tokens = 1000, completion_tokens = 234 }
    v:event { type = "tool", run_id = 7, card = "N-1", seat = "senior_developer", tool = "write_file", ok = true }
    t.ms = 1600
    v:tick()
    assert.equal(table.concat({
      "orket run 7 N  00:01  1,234 tokens  0 turns",
      "cards (3): in_progress 1  code_review 1  done 1",
      "  in progress: N-1",
      "  in review:   N-2",
      "seats:",
      "  integrity_guard        N-2        integrity_guard (review) turn 2 step 0  00:01",
      "  senior_developer       N-1        coder (work) turn 1 step 2, write_file  00:01",
    }, "\n") .. "\n", last(t))
    -- each redraw first moves the cursor up over the previous frame and clears below
    assert.matches("^\r\27%[7A\27%[J", t.out[#t.out])
    t.ms = 2000
    t.cards[1].status, t.cards[2].status = "code_review", "code_review" -- the board, as the engine left it
    v:event { type = "turn_end", run_id = 7, card = "N-1", seat = "senior_developer", role = "coder", phase = "work",
      turn = 1, outcome = "handed_in", status = "code_review" }
    local f = last(t)
    assert.matches("  1 turn\n", f, 1, true)
    assert.matches("cards (3): code_review 2  done 1", f, 1, true)
    assert.matches("  in review:   N-1 N-2", f, 1, true)
    assert.matches("  senior_developer       idle", f, 1, true)
  end)

  it("redraws at most once per 100 ms and again when the elapsed second moves", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 1, target = "N", concurrency = 1 }
    for i = 1, 50 do
      t.ms = i * 10 - 5 -- 50 events in 500 ms
      v:event { type = "model", card = "N-1", seat = "s", turn = 1, step = i, prompt_tokens = 1 }
    end
    assert.is_true(#t.out <= 6, #t.out .. " frames")
    assert.is_true(#t.out >= 5, #t.out .. " frames")
    local n = #t.out
    t.ms = 600
    v:tick()
    v:tick()
    assert.equal(n + 1, #t.out) -- the change held back at 500 ms is drawn, once
    assert.matches("50 tokens", last(t), 1, true)
    t.ms = 900
    v:tick()
    assert.equal(n + 1, #t.out) -- nothing changed, same second: no frame
    t.ms = 1000
    v:tick()
    assert.equal(n + 2, #t.out)
    assert.matches("00:01", last(t), 1, true)
  end)

  it("prints notes above the frame and leaves a final summary with the stuck cards", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "card_blocked", card = "N-2", reason = "resource", detail = "turns_per_card spent" }
    assert.matches("^N%-2 blocked %(resource%): turns_per_card spent\norket run 3", last(t))
    t.ms = 700
    v:event { type = "approval_requested", card = "N-3", tool = "delete_file", approval = 7 }
    assert.matches("^N%-3 waits for approval #7 of delete_file %(orket answer N%-3 %-%-request 7 %-%-approve or %-%-deny%)\norket run 3", last(t))
    t.ms = 900
    v:event { type = "journal_error", card = "N-3", error = "disk I/O error" }
    assert.matches("^N%-3: could not write to the journal: disk I/O error\norket run 3", last(t))
    t.cards[1].status = "done"
    t.cards[2].status = "blocked"
    t.ms = 65500
    v:event { type = "stall", cards = { { card = "N-2", status = "blocked", reason = "blocked (resource): turns_per_card spent" } } }
    v:event { type = "run_end", run_id = 3, status = "failed", tokens = 4321 }
    assert.equal(table.concat({
      "run 3 N failed in 01:05, 4,321 tokens, 0 turns",
      "cards (3): blocked 1  done 2",
      "stuck cards:",
      "  N-2        blocked (resource): turns_per_card spent",
    }, "\n") .. "\n", last(t))
    local n = #t.out
    t.ms = 70000
    v:tick()
    v:event { type = "turn_start", card = "N-1", seat = "s", role = "r", phase = "work", turn = 1 }
    assert.equal(n, #t.out) -- nothing is drawn over the summary
  end)

  it("says of a model retry how many attempts failed, over how long, the last error and the wait", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "model_retry", card = "N-1", seat = "s", class = "transient", error = "stream cut",
      attempts = 2, elapsed_ms = 1340, retry = 1, delay_ms = 200 }
    assert.matches("^N%-1 model failed %(transient%) after 2 attempts over 1%.3 s: stream cut; asking again in 200 ms\norket run 3",
      last(t))
    -- the frame's head counts in the singular until a second one
    assert.matches("  0 turns  1 retry\n", last(t), 1, true)
    t.ms = 1500
    v:event { type = "model_retry", card = "N-1", seat = "s", class = "transient", error = "stream cut",
      attempts = 3, elapsed_ms = 2000, retry = 2, delay_ms = 200 }
    assert.matches("  0 turns  2 retries\n", last(t), 1, true)
  end)

  it("shows the model client's own wait on the turn's line, counting down, and notes why", function()
    local t = fake { width = 140 }
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1 }
    v:event { type = "turn_start", card = "N-1", seat = "senior_developer", role = "coder", phase = "work", turn = 1 }
    t.ms = 1000
    v:event { type = "model_retry", card = "N-1", seat = "senior_developer", class = "rate_limited", by = "client",
      error = "provider p (openai, http://m/v1), model x: HTTP 429: slow down", attempts = 1, attempt = 1,
      max_attempts = 4, elapsed_ms = 12, delay_ms = 8000, why = "HTTP 429 Retry-After", retry_after_ms = 8000 }
    assert.matches("^N%-1 model failed %(rate_limited%), attempt 1 of 4: provider p %(openai, http://m/v1%), model x: "
      .. "HTTP 429: slow down; waiting 8%.0 s %(HTTP 429 Retry%-After%)\n", last(t))
    assert.matches("\n  senior_developer       N%-1        coder %(work%) turn 1 step 0, waiting 8 s: HTTP 429 Retry%-After  00:01\n$",
      last(t))
    t.ms = 4500
    v:tick()
    assert.matches("turn 1 step 0, waiting 5 s: HTTP 429 Retry%-After  00:04\n$", last(t))
    -- once the wait is over (or the call answers) the line says no more of it
    t.ms = 9100
    v:tick()
    assert.matches("turn 1 step 0  00:09\n$", last(t))
    t.ms = 10200
    v:event { type = "model_retry", card = "N-1", seat = "senior_developer", class = "transient", by = "client",
      error = "HTTP 503: down", attempts = 2, attempt = 2, max_attempts = 4, elapsed_ms = 9000, delay_ms = 1000, why = "HTTP 503" }
    t.ms = 10400
    v:event { type = "model", card = "N-1", seat = "senior_developer", turn = 1, step = 1, prompt_tokens = 1, completion_tokens = 1 }
    assert.matches("turn 1 step 1  00:10\n$", last(t))
  end)

  it("notes the engine's later round with its wait, and a card a resume took back", function()
    local t = fake { width = 140 }
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1, resumed = true }
    t.ms = 200
    v:event { type = "card_taken_back", card = "N-2", class = "transient" }
    assert.matches("^N%-2 taken back: blocked when the model failed %(transient%); asked again, its budgets as they were\n",
      last(t))
    v:event { type = "turn_start", card = "N-1", seat = "s", role = "coder", phase = "work", turn = 2 }
    t.ms = 500
    v:event { type = "model_retry", card = "N-1", seat = "s", class = "transient", error = "HTTP 503: down",
      attempts = 4, elapsed_ms = 2100, retry = 1, delay_ms = 5000, round = 1, rounds = 4 }
    assert.matches("^N%-1 model failed %(transient%) after 4 attempts over 2%.1 s: HTTP 503: down; asking again in "
      .. "5%.0 s %(later round 1 of 4%)\n", last(t))
    assert.matches("turn 2 step 0, waiting 5 s: round 1 of 4 after transient  00:00\n$", last(t))
  end)

  it("notes a sandbox deployed after a merge, or why none was", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "sandbox", action = "deploy", card = "N-1", reason = "N-1 merged", owner_pid = 42 }
    assert.matches("^sandbox deploying %(N%-1 merged%): orket sandbox list shows it\norket run 3", last(t))
    t.ms = 1000
    v:event { type = "sandbox", action = "deploy", card = "N-2", reason = "N-2 merged",
      error = "no sandbox started: nothing in main's tree can run" }
    assert.matches("^sandbox not deployed after N%-2 merged: no sandbox started: nothing in main's tree can run\n",
      last(t))
  end)

  it("notes a bug-fix phase's end with the sandboxes it stopped and left, and those stopped for another folder", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "bugfix", action = "end", rock = "R", reason = "no bugs for 3 days", next_rock = "R-2",
      moved = 2, stopped = 0, left = 0 }
    assert.matches("^R: its bug%-fix phase ended %(no bugs for 3 days%); open bugs moved to R%-2\norket run 3", last(t))
    t.ms = 1000
    v:event { type = "bugfix", action = "end", rock = "S", reason = "r", moved = 0, stopped = 2, left = 1 }
    assert.matches("^S: its bug%-fix phase ended %(r%); 2 sandbox%(es%) stopped; 1 left running for other folders "
      .. "sharing the store\norket run 3", last(t))
    t.ms = 1500
    v:event { type = "bugfix", action = "left_stopped", rock = "S", stopped = 1,
      message = "S: the end of its bug-fix phase, ticked in another folder, left 1 of this folder's sandbox(es) "
        .. "running: stopped here (4)\nsecond line" }
    assert.matches("^S: the end of its bug%-fix phase, ticked in another folder, left 1 of this folder's "
      .. "sandbox%(es%) running: stopped here %(4%)\\nsecond line\norket run 3", last(t))
  end)

  it("notes a script folder hot reload cannot watch", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "watch_error", file = "roles", code = "ENOSPC",
      error = "roles/: cannot be watched (ENOSPC: no space left on device); edits in it are not reloaded until it can be" }
    assert.matches("^hot reload: roles/: cannot be watched %(ENOSPC: no space left on device%); edits in it are not "
      .. "reloaded until it can be\norket run 3", last(t))
  end)

  it("notes the sections of an edited orket.lua a run does not take up", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "reload", files = { "orket.lua" }, unapplied = { "budgets", "models" } }
    assert.matches("^reloaded scripts: orket.lua\n  orket.lua: budgets, models changed; not applied to this run %(a new "
      .. "run or `orket resume` takes them%)\norket run 3", last(t))
  end)

  it("notes a model whose calls count against no money budget", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "budget_unpriced", card = "N-1", model = "fake:m",
      message = "fake:m: it has no price in models.prices, so its calls count against no money budget (budgets.cost_per_*)" }
    assert.matches("^warning: fake:m: it has no price in models.prices, so its calls count against no money budget "
      .. "%(budgets.cost_per_%*%)\norket run 3", last(t))
  end)

  it("notes a merge whose view could not follow main, why, and what catches it up", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 3, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "git", action = "view_stale", card = "N-1", error = "git: main's index: the index is locked" }
    assert.matches("^workspace/ is behind main: its refresh failed %(git: main's index: the index is locked%); once that is "
      .. "settled it catches up at the next merge into main, or at the next 'orket run' or 'orket resume'", last(t))
  end)

  it("notes a sandbox check that could not run, and lists it in the summary", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 5, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "sandbox_check_skipped", card = "N-3", name = "the page", sandbox = 2,
      why = "chromium and chromedriver are not installed" }
    assert.matches("^sandbox check skipped: N%-3 the page: chromium and chromedriver are not installed\n", last(t))
    v:event { type = "run_end", run_id = 5, status = "done", tokens = 0 }
    assert.equal(table.concat({
      "run 5 N done in 00:00, 0 tokens, 0 turns",
      "cards (3): ready 2  done 1",
      "sandbox checks skipped (they could not run here; no bug filed):",
      "  N-3 the page: chromium and chromedriver are not installed",
    }, "\n") .. "\n", last(t))
  end)

  it("notes a turn whose card could no longer start, and why", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 8, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "turn_end", card = "N-2", turn = 1, outcome = "not_started", status = "ready",
      detail = "the card could not start: N-1 is not done (the reply's 1 tool call was not run)" }
    assert.matches("^N%-2 not started: the card could not start: N%-1 is not done", last(t))
  end)

  it("notes a deploy's checks that failed after the card was done, and what was filed, in the summary", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 7, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "sandbox_check_failed", card = "N-3", sandbox = 2, outcome = "followup", followup = "N-4",
      failed = { "the notes", "the page" } }
    assert.matches("^sandbox checks failed: N%-3 in sandbox 2 %(the notes, the page%): follow%-up N%-4 filed\n", last(t))
    v:event { type = "run_end", run_id = 7, status = "done", tokens = 0 }
    assert.matches("sandbox checks failed after the merge (the next run works what was filed):\n"
      .. "  N-3 in sandbox 2 (the notes, the page): follow-up N-4 filed\n", last(t), 1, true)
  end)

  it("says in the summary whose deploy's checks were still running when the run ended", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 6, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "sandbox", action = "checks_pending", card = "N-1", owner_pid = 42 }
    assert.matches("^sandbox checks after N%-1 still running: orket card N%-1 shows them\n", last(t))
    v:event { type = "run_end", run_id = 6, status = "done", tokens = 0 }
    assert.equal(table.concat({
      "run 6 N done in 00:00, 0 tokens, 0 turns",
      "cards (3): ready 2  done 1",
      "sandbox checks still running after: N-1 (orket card CARD shows them)",
    }, "\n") .. "\n", last(t))
  end)

  it("says in the summary why a run stopped itself", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 4, target = "N", concurrency = 1 }
    local why = "the run's token budget (budgets.tokens_per_run = 100) ran out; raise it in orket.lua, then 'orket resume' carries on"
    v:event { type = "stall", reason = why, cards = { { card = "N-1", status = "ready", reason = "stopped in ready: x" } } }
    v:event { type = "run_end", run_id = 4, status = "stalled", reason = why, tokens = 120 }
    assert.equal(table.concat({
      "run 4 N stalled in 00:00, 120 tokens, 0 turns",
      "stopped: " .. why,
      "cards (3): ready 2  done 1",
      "stuck cards:",
      "  N-1        stopped in ready: x",
    }, "\n") .. "\n", last(t))
  end)

  it("says a done run's reason as done, not as a stop", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 6, target = "N", concurrency = 1 }
    local why = "N-3 moved to the epic M by an import"
    v:event { type = "run_end", run_id = 6, status = "done", reason = why, tokens = 5 }
    local f = last(t)
    assert.matches("^run 6 N done in 00:00, 5 tokens, 0 turns\ndone: " .. why:gsub("%p", "%%%0") .. "\n", f)
    assert.not_matches("stopped:", f, 1, true)
  end)

  it("says in the summary which cards wait for a person, and notes a requirements review's wait", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 5, target = "N", concurrency = 1 }
    t.ms = 500
    v:event { type = "requirements_review", card = "N-9", of = "N-1", waiting = true }
    assert.matches('^N%-9 waits for a person: the requirements of N%-1 %(orket answer N%-1 "text"%)\norket run 5', last(t))
    v:event { type = "stall", cards = { { card = "N-1", status = "waiting_for_developer", waits_for = "input",
      reason = "waiting for input from a person: why", next = 'orket answer N-1 "your answer"' } } }
    v:event { type = "run_end", run_id = 5, status = "stalled", tokens = 10, waiting = { "N-1" } }
    assert.equal(table.concat({
      "run 5 N stalled in 00:00, 10 tokens, 0 turns",
      "waiting for a person: N-1",
      "cards (3): ready 2  done 1",
      "stuck cards:",
      "  N-1        waiting for input from a person: why",
      '             next: orket answer N-1 "your answer"',
    }, "\n") .. "\n", last(t))
  end)

  it("colours statuses only when asked, and cuts lines to the terminal width", function()
    local t = fake { color = true, width = 30 }
    t.view:event { type = "run_start", run_id = 1, target = "N", concurrency = 1 }
    local raw = t.out[1]
    assert.matches("\27[32mdone 1\27[0m", raw, 1, true)
    for line in plain(raw):gmatch("[^\n]+") do assert.is_true(#line <= 29, line) end
    local u = fake { color = false }
    u.view:event { type = "run_start", run_id = 1, target = "N", concurrency = 1 }
    assert.is_nil(u.out[1]:find("\27[3", 1, true))
    assert.is_nil(u.out[1]:find("\27[1m", 1, true))
  end)

  it("after a resume, says this session's tokens apart from the whole run's", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 5, target = "N", concurrency = 1, resumed = true }
    v:event { type = "turn_start", card = "N-1", seat = "s", role = "r", phase = "work", turn = 2 }
    v:event { type = "model", card = "N-1", seat = "s", turn = 2, step = 1, prompt_tokens = 300, completion_tokens = 20 }
    v:event { type = "turn_end", card = "N-1", seat = "s", status = "done" }
    t.ms = 2000
    v:event { type = "run_end", run_id = 5, status = "done", tokens = 5320 }
    assert.matches("^run 5 N done in 00:02, 320 tokens, 1 turn in this session; 5,320 tokens in the whole run\n",
      last(t))
  end)

  it("cuts a frame taller than the terminal, so a redraw leaves nothing behind", function()
    local cards = {}
    for i = 1, 30 do cards[i] = { id = "N-" .. i, status = "ready" } end
    local t = fake { height = 10, cards = cards }
    local v = t.view
    v:event { type = "run_start", run_id = 6, target = "N", concurrency = 30 }
    for i = 1, 30 do
      t.ms = t.ms + 200
      v:event { type = "turn_start", card = "N-" .. i, seat = "seat" .. i, role = "r", phase = "work", turn = 1 }
    end
    local lines = {}
    for l in last(t):gmatch("[^\n]*\n") do lines[#lines + 1] = l end
    assert.equal(9, #lines) -- one row left for the cursor
    assert.matches("^  %.%.%. %d+ more lines %(a taller terminal shows them%)\n$", lines[9])
    assert.matches("^orket run 6 N", lines[1])
    -- the next frame moves the cursor up by what was drawn, not by the uncut frame
    t.ms = t.ms + 200
    v:event { type = "turn_end", card = "N-1", seat = "seat1", status = "code_review" }
    assert.matches("^\r\27%[9A", t.out[#t.out])
  end)

  it("has no colour off a terminal and checks its arguments", function()
    assert.is_false(liveview.color_on(1)) -- the spec's stdout is not a terminal
    assert.has_error(function() liveview.new { now = function() return 0 end } end,
      "bad argument #1 to 'new' (table with write and now functions expected)")
  end)

  it("says a call the run's stop left open as open for resume, not failed", function()
    local t = fake()
    local v = t.view
    v:event { type = "run_start", run_id = 7, target = "N", concurrency = 1 }
    v:event { type = "turn_start", run_id = 7, card = "N-1", seat = "senior_developer", role = "coder", phase = "work", turn = 1 }
    v:event { type = "tool", run_id = 7, card = "N-1", seat = "senior_developer", tool = "write_file", ok = false,
      code = "ENOSPC", open = true }
    t.ms = 200
    v:tick()
    assert.matches("coder (work) turn 1 step 0, write_file left open for resume  ", last(t), 1, true)
    assert.is_nil(last(t):find("failed", 1, true))
    v:event { type = "tool", run_id = 7, card = "N-1", seat = "senior_developer", tool = "read_file", ok = false, code = "ENOENT" }
    t.ms = 400
    v:tick()
    assert.matches("step 0, read_file failed  ", last(t), 1, true)
    -- one whose tool answered success (its move to done met the full disk, the script said
    -- ok): its effects were rolled back, so it is left open too, not a plain success
    v:event { type = "tool", run_id = 7, card = "N-1", seat = "senior_developer", tool = "finish", ok = true, open = true }
    t.ms = 600
    v:tick()
    assert.matches("step 0, finish left open for resume  ", last(t), 1, true)
  end)

  it("makes every string of an event inert: only its own escapes reach the terminal", function()
    local evil = "\27]0;PWNED\7\27[2J\194\155\226\128\174"
    local t = fake { color = true, cards = { { id = "N-2" .. evil, status = "in_progress" } } }
    local v = t.view
    v:event { type = "run_start", run_id = 1, target = "N" .. evil, concurrency = 1 }
    v:event { type = "turn_start", card = "N-1", seat = "s" .. evil, role = "r" .. evil, phase = "work", turn = 1 }
    t.ms = 200
    v:event { type = "tool", card = "N-1", tool = "t" .. evil, ok = false }
    v:event { type = "model_retry", card = "N-1", class = "transient", error = "HTTP 500: " .. evil, attempts = 1,
      elapsed_ms = 5, delay_ms = 10 }
    v:event { type = "run_end", status = "failed", tokens = 0, reason = evil }
    local all = table.concat(t.out)
    -- the view's own: cursor up, erase, colours
    local rest = all:gsub("\r\27%[%d*A", ""):gsub("\27%[[%d;]*[mJK]", "")
    assert.is_nil(rest:find("[%z\1-\9\11-\31\127]"), rest)
    assert.is_nil(rest:find("\194\155", 1, true))
    assert.is_nil(rest:find("\226\128\174", 1, true))
    assert.matches("HTTP 500: \\x1b]0;PWNED\\x07\\x1b[2J\\u{9b}\\u{202e}", all, 1, true)
    assert.matches("N-2\\x1b]0;PWNED", all, 1, true) -- a card id from the board, too
  end)
end)
