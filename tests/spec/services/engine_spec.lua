-- orket.engine with fake collaborators: a whole epic to done with a review rejection,
-- concurrency, stalls with reasons, failure classification, review rules, budgets.
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local run_mod = require "orket.engine.run"

local function run(issues, opts)
  local db, b = F.fixture(H.tmpdir() .. "/o.db", issues)
  local e, events = F.engine(db, b, opts)
  local id = assert(e:start("E", opts and { concurrency = opts.concurrency }))
  local status, report = e:execute(id)
  return status, report, b, db, events, e
end

describe("engine", function()
  after_each(H.cleanup)

  it("runs an epic to done, with a rejection and its fix", function()
    local status, _, b, db, events = run(F.STANDARD, {})
    assert.equal("done", status)
    for _, id in ipairs { "E-1", "E-2", "E-3", "E-4" } do assert.equal("done", b:get(id).status) end
    assert.equal("done", b:get("E").status)
    assert.equal(1, b:get("E-2").retries)
    assert.equal("integrity_guard", b:get("E-2").worked_by == "senior_developer" and "integrity_guard" or "x")
    local bodies = {}
    for _, c in ipairs(b:comments("E-2")) do bodies[#bodies + 1] = c.body end
    assert.same({ "work on E-2 turn 1", "missing tests", "work on E-2 turn 3" }, bodies)
    -- Every model response and tool call is in the journal.
    assert.is_true(db:row("SELECT count(*) AS n FROM turns").n >= 12)
    assert.is_true(db:row("SELECT count(*) AS n FROM tool_calls").n >= 12)
    assert.equal("done", db:row("SELECT status FROM runs").status)
    assert.equal("run_end", events[#events].type)
    -- Dependencies were respected: E-4's first turn began after E-2 and E-3 were done. Read
    -- in the journal's order: the turn_end event a turn emits comes after its records are
    -- written, and on a store that waits on the network another card's turn may begin in
    -- between, rightly.
    local seen_done, began = {}, nil
    for _, ev in ipairs(db:events {}) do
      if ev.kind == "transition" and ev.data.to == "done" then seen_done[ev.card] = true end
      if ev.kind == "turn_begin" and ev.card == "E-4" and began == nil then
        began = seen_done["E-2"] == true and seen_done["E-3"] == true
      end
    end
    assert.is_true(began)
  end)

  -- A run of a target already finished is not refused (it still settles what main owes);
  -- it says why it did nothing, and a run that worked says no such thing.
  it("says at its end that the target was already done when the run began", function()
    local status, report, b, _, _, e = run({ { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" } }, {})
    assert.equal("done", status)
    assert.is_nil(report.reason)
    local again, areport = e:execute(assert(e:start("E")))
    assert.equal("done", again)
    assert.equal("every issue of E (2) was already done when the run began", areport.reason)
    local one, oreport = e:execute(assert(e:start("E-2")))
    assert.equal("done", one)
    assert.equal("E-2 was already done when the run began", oreport.reason)
  end)

  it("counts canceled issues as finished when it says so, and only when the run began so", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" } })
    assert(b:cancel("E-2", { actor = { seat = "developer", roles = {}, by = "person" }, reason = "dropped" }))
    local e = F.engine(db, b, {})
    local status, report = e:execute(assert(e:start("E")))
    assert.equal("done", status)
    assert.is_nil(report.reason)
    local _, again = e:execute(assert(e:start("E")))
    assert.equal("every issue of E (2) was already done or canceled when the run began", again.reason)
    local _, one = e:execute(assert(e:start("E-2")))
    assert.equal("E-2 was already canceled when the run began", one.reason)
  end)

  -- a run stopped, its epic canceled meanwhile, then resumed ended done with no reason, as if
  -- its work were done
  it("says at its end that its cards were canceled while it was stopped, and not when they were done", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" } })
    local run_id = assert(F.engine(db, b, {}):start("E"))
    assert(b:cancel("E", { actor = { seat = "developer", roles = {}, by = "person" }, reason = "descoped" }))
    local status, report = F.engine(db, b, {}):execute(run_id)
    assert.equal("done", status)
    assert.equal("every issue of E (2) was already canceled when the run resumed", report.reason)
    -- a resumed run whose cards were all done before it stopped just ends done
    local db2, b2 = F.fixture(H.tmpdir() .. "/d.db", { { id = "E-1", summary = "a" } })
    local e2 = F.engine(db2, b2, {})
    assert.equal("done", (e2:execute(assert(e2:start("E")))))
    local again = assert(F.engine(db2, b2, {}):start("E"))
    local st2, report2 = F.engine(db2, b2, {}):execute(again)
    assert.equal("done", st2)
    assert.is_nil(report2.reason)
  end)

  it("tags every event of the run's work with its id, and none after it", function()
    local status, _, b, db = run(F.STANDARD, {})
    assert.equal("done", status)
    -- the fixture's cards were created before the run
    local untagged = db:row([[SELECT count(*) AS n FROM events WHERE run_id IS NULL
      AND id > (SELECT id FROM events WHERE kind = 'run_start')]]).n
    assert.equal(0, untagged)
    assert.is_true(db:row("SELECT count(*) AS n FROM events WHERE kind = 'transition' AND run_id = 1").n >= 12)
    assert.is_nil(b.run)
    assert(b:comment("E-1", { author = "developer", body = "later" }))
    assert.is_nil(db:row("SELECT run_id FROM events WHERE kind = 'comment' ORDER BY id DESC LIMIT 1").run_id)
  end)

  it("keeps several turns in flight when the model waits", function()
    local issues = {}
    for i = 1, 6 do issues[i] = { id = "E-" .. i, summary = "task " .. i } end
    local status, _, _, _, events = run(issues, { concurrency = 3, sleep = 30 })
    assert.equal("done", status)
    local live, peak = 0, 0
    for _, ev in ipairs(events) do
      if ev.type == "turn_start" then live = live + 1 end
      if ev.type == "turn_end" then live = live - 1 end
      peak = math.max(peak, live)
    end
    -- three turns were open at once while the model slept: the loop went on between them
    -- (how fast that is belongs to make bench, not to a test)
    assert.equal(3, peak)
  end)

  it("reports a stall with each stuck card and why", function()
    local status, report, b = run({
      { id = "E-1", summary = "ask [input]" },
      { id = "E-2", summary = "after", depends_on = { "E-1" } },
      { id = "E-3", summary = "independent" },
    }, {})
    assert.equal("stalled", status)
    assert.equal("done", b:get("E-3").status)
    assert.equal("waiting_for_developer", b:get("E-1").status)
    local why = {}
    for _, s in ipairs(report.stuck) do why[s.card] = s.reason end
    assert.matches("waiting for input", why["E-1"])
    -- a dependency that waits for the developer has not failed: the next step is to answer it
    assert.equal("waits for E-1 (waiting_for_developer, waiting for the developer)", why["E-2"])
    local next_step = {}
    for _, s in ipairs(report.stuck) do next_step[s.card] = s.next end
    assert.equal('orket answer E-1 "your answer"', next_step["E-1"])
    assert.equal('orket answer E-1 "your answer"', next_step["E-2"])
  end)

  -- The engine blocks with reason resource only for a budget (its comment and move say so);
  -- an agent that blocks its card for a resource it lacks is waiting for that, said with its
  -- note, and its run has not failed.
  it("tells an agent's block for a resource from a budget that ran out", function()
    local client
    local function agent_blocks(b)
      client = F.llm(b)
      local chat = client.chat
      function client:chat(req)
        if req.meta.card == "E-1" then
          self.requests[#self.requests + 1] = req
          return { content = "", finish_reason = "tool_calls", model = "fake:model", usage = { prompt_tokens = 1, completion_tokens = 1 },
            tool_calls = { { id = "b1", name = "update_issue_status", raw_arguments = "{}", arguments = {
              status = "blocked", wait_reason = "resource", note = "needs the vendor's sandbox account\nand more" } } } }
        end
        return chat(self, req)
      end
      return client
    end
    local db, b = F.fixture(H.tmpdir() .. "/o.db", {
      { id = "E-1", summary = "vendor" }, { id = "E-2", summary = "after", depends_on = { "E-1" } } })
    local e = F.engine(db, b, { llm = agent_blocks(b) })
    local status, report = e:execute(assert(e:start("E")))
    assert.equal("stalled", status)
    local why, next_step = {}, {}
    for _, st in ipairs(report.stuck) do why[st.card], next_step[st.card] = st.reason, st.next end
    assert.equal("blocked (resource): needs the vendor's sandbox account", why["E-1"])
    assert.equal("waits for E-1 (blocked, blocked: waits for a resource: needs the vendor's sandbox account)", why["E-2"])
    assert.equal("orket retry E-1 once the resource is there", next_step["E-1"])
    assert.equal("orket retry E-1 once the resource is there", next_step["E-2"])
    db:close()
    -- the engine's own block for a budget (no model step allowed) is still one
    local status2, report2, b2 = run({ { id = "E-1", summary = "a" } }, { config = { budgets = { steps_per_turn = 0 } } })
    assert.equal("failed", status2)
    assert.equal("resource", b2:get("E-1").wait_reason)
    assert.matches("^blocked %(resource%): Turn stopped: ", report2.stuck[1].reason)
    assert.equal("raise the budget in orket.lua, then orket retry E-1", report2.stuck[1].next)
  end)

  it("retries transient model errors and blocks a card the model refuses, without stopping others", function()
    local status, report, b, _, events = run({
      { id = "E-1", summary = "bad [fail]" },
      { id = "E-2", summary = "shaky [flaky]" },
    }, { config = { budgets = { backoff_ms = 1 } } })
    assert.equal("failed", status)
    assert.equal("done", b:get("E-2").status)
    local c = b:get("E-1")
    assert.equal("blocked", c.status)
    assert.equal("system", c.wait_reason)
    assert.matches("bad_request", b:comments("E-1")[1].body)
    local retried = false
    for _, ev in ipairs(events) do if ev.type == "model_retry" and ev.card == "E-2" then retried = true end end
    assert.is_true(retried)
    assert.equal("E-1", report.stuck[1].card)
    -- a card blocked by a model that refused the request has a next step: what to fix (waiting
    -- for the model mends no request it refuses)
    assert.equal("fix what the card's last comment names (the model's name, base_url, a request the server refuses), "
      .. "then orket retry E-1", report.stuck[1].next)
  end)

  describe("asks the model again", function()
    -- a client that fails E-1's calls as given (failure: the client's report), answers the rest
    local function failing(failures)
      return function(b)
        local llm = F.llm(b)
        local inner, calls = llm.chat, 0
        function llm:chat(req)
          if req.meta.card ~= "E-1" then return inner(self, req) end
          calls = calls + 1
          local f = failures[math.min(calls, #failures)]
          if f == "ok" then return inner(self, req) end
          return nil, f.msg, "transient", f
        end
        return llm, function() return calls end
      end
    end
    local function run_with(make)
      local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "x" } })
      local llm, calls = make(b)
      local e, events = F.engine(db, b, { llm = llm, config = { budgets = { backoff_ms = 1, model_retries = 3 } } })
      local status = e:execute(assert(e:start("E")))
      local retries, kinds = {}, {}
      for _, ev in ipairs(events) do
        if ev.card == "E-1" then kinds[#kinds + 1] = ev.type end
        if ev.type == "model_retry" then retries[#retries + 1] = ev end
      end
      return status, b, calls(), retries, kinds
    end

    it("not at once after a failure the client already retried: only in its later rounds", function()
      local status, b, calls, retries = run_with(failing {
        { msg = "HTTP 503: busy (gave up after 4 attempts over 3.1 s)", error = "HTTP 503: busy", attempts = 4, final = true },
      })
      assert.equal("failed", status)
      assert.equal(5, calls) -- the first call, then 4 later rounds
      assert.equal(4, #retries)
      for i, r in ipairs(retries) do
        -- 25 x backoff_ms, doubling: 25, 50, 100, 200 ms with backoff_ms = 1
        assert.same({ i, 4, i, 25 << (i - 1), 4 * i }, { r.round, r.rounds, r.retry, r.delay_ms, r.attempts })
      end
      local cs = b:comments("E-1")
      assert.matches("^The model failed %(transient%): HTTP 503: busy %(gave up after 20 attempts over [%d%.]+ m?s, in 5 rounds%)$",
        cs[#cs].body)
      -- the journal tells it in order: the turn begins, then its calls fail, then the block
      local kinds = {}
      for _, ev in ipairs(b.db:events { card = "E-1" }) do
        if ev.kind ~= "comment" and ev.kind ~= "create" then kinds[#kinds + 1] = ev.kind .. (ev.data.to and (":" .. ev.data.to) or "") end
      end
      assert.same({ "transition:in_progress", "turn_begin", "model_failure", "model_failure", "model_failure", "model_failure",
        "model_failure", "transition:blocked", "turn_end" }, kinds)
    end)

    it("in a later round no sooner than the server asked, and not at all when it asked for more than the engine waits", function()
      local busy = { msg = "HTTP 429: slow down", error = "HTTP 429: slow down", attempts = 1, final = true, retry_after_ms = 300 }
      local status, _, calls, retries = run_with(failing { busy, "ok" })
      assert.equal("done", status)
      assert.equal(4, calls) -- the 429, then the work turn's two steps and the review
      assert.same({ 1, 300 }, { retries[1].round, retries[1].delay_ms })
      local long = { msg = "HTTP 429: quota", error = "HTTP 429: quota", attempts = 1, final = true, retry_after_ms = 3600000 }
      local status2, b2, calls2, retries2 = run_with(failing { long })
      assert.equal("failed", status2)
      assert.same({ 1, 0 }, { calls2, #retries2 })
      local cs = b2:comments("E-1")
      assert.equal("The model failed (transient): HTTP 429: quota; not asked again later: the server's wait is longer than "
        .. "the 120.0 s the engine waits at most", cs[#cs].body)
    end)

    it("in a later round only when the card's wall budget leaves time for its wait", function()
      local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "x" } })
      local llm, calls = failing { { msg = "HTTP 503: down", error = "HTTP 503: down", attempts = 2, final = true } }(b)
      -- the first round would wait 25 x 100 ms: more than the 1 s the card has
      local e = F.engine(db, b, { llm = llm, config = { budgets = { backoff_ms = 100, wall_ms_per_card = 1000 } } })
      assert.equal("failed", (e:execute(assert(e:start("E")))))
      assert.equal(1, calls())
      local cs = b:comments("E-1")
      assert.matches("^The model failed %(transient%): HTTP 503: down; not asked again later: budgets%.wall_ms_per_card = 1000 "
        .. "leaves [%d%.]+ m?s, less than the next round's wait %(2%.5 s%)$", cs[#cs].body)
    end)

    it("for what the client left to it, counting the client's attempts against model_retries", function()
      local cut = { msg = "stream cut", error = "stream cut", attempts = 2, final = false }
      local status, b, calls, retries, kinds = run_with(failing { cut })
      assert.equal("failed", status)
      -- 2 attempts, then 4: more than model_retries = 3, so the rest are later rounds
      assert.equal(6, calls)
      assert.equal(5, #retries)
      local r = retries[1]
      assert.same({ "transient", "stream cut", 2, 1, 1 }, { r.class, r.error, r.attempts, r.retry, r.delay_ms })
      assert.is_nil(r.round)
      assert.is_true(r.elapsed_ms >= 0)
      for i = 2, 5 do assert.same({ i - 1, 2 * i }, { retries[i].round, retries[i].attempts }) end
      -- each failed call said as a call (model_failure), retried or not
      local want = { "turn_start" }
      for _ = 1, 5 do
        want[#want + 1] = "model_failure"
        want[#want + 1] = "model_retry"
      end
      for _, k in ipairs { "model_failure", "card_blocked", "turn_end" } do want[#want + 1] = k end
      assert.same(want, kinds)
      local cs = b:comments("E-1")
      assert.matches("^The model failed %(transient%): stream cut %(gave up after 12 attempts over [%d%.]+ m?s, in 5 rounds%)$", cs[#cs].body)
    end)

    it("and goes on when the next call answers", function()
      local cut = { msg = "stream cut", error = "stream cut", attempts = 1, final = false }
      local status, _, calls, retries = run_with(failing { cut, cut, "ok" })
      assert.equal("done", status)
      assert.equal(5, calls) -- two failures, the work turn's two steps, the review
      assert.same({ 1, 2 }, { retries[1].attempts, retries[2].attempts })
      assert.same({ 1, 2 }, { retries[1].retry, retries[2].retry })
      assert.same({ 1, 2 }, { retries[1].delay_ms, retries[2].delay_ms })
    end)
  end)

  it("refuses to start without a reviewer seat", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", F.STANDARD)
    local e = F.engine(db, b, { config = { team = { dev = { roles = { "coder" } } } } })
    local id, err, code = e:start("E")
    assert.is_nil(id)
    assert.equal("ENOREVIEWER", code)
    assert.matches("integrity_guard", err)
  end)

  it("escalates after N rejections and asks for a requirements review after M", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "hard [reject]" } })
    -- A reviewer that always rejects.
    local llm = F.llm(b)
    local inner = llm.chat
    function llm:chat(req)
      if req.meta.role == "integrity_guard" and req.meta.step == 1 and req.meta.card == "E-1" then
        return { content = "", tool_calls = { { id = "x", name = "add_issue_comment", arguments = { body = "still wrong" } },
          { id = "y", name = "update_issue_status", arguments = { status = "in_progress" } } }, usage = {} }
      end
      return inner(self, req)
    end
    local e = F.engine(db, b, { llm = llm, config = { review = { escalate_after = 1, requirements_review_after = 2 } } })
    local status = e:execute(assert(e:start("E")))
    assert.equal("stalled", status)
    local c = b:get("E-1")
    assert.equal("waiting_for_developer", c.status)
    assert.equal("input", c.wait_reason)
    local escalated = db:row("SELECT count(*) AS n FROM turns WHERE role = 'architect'").n
    assert.is_true(escalated >= 1)
    local rr = b:get("E-2")
    assert.matches("^Requirements review", rr.summary)
    assert.equal("done", rr.status) -- the new issue was scheduled in the same run
  end)

  it("reaches the requirements review with the default settings when the reviewer always rejects", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "hard" } })
    local llm = F.llm(b)
    local inner = llm.chat
    function llm:chat(req)
      if req.meta.role == "integrity_guard" and req.meta.step == 1 and req.meta.card == "E-1" then
        return { content = "", tool_calls = { { id = "x", name = "add_issue_comment", arguments = { body = "still wrong" } },
          { id = "y", name = "update_issue_status", arguments = { status = "in_progress" } } }, usage = {} }
      end
      return inner(self, req)
    end
    local e, events = F.engine(db, b, { llm = llm })
    assert.equal(6, e.settings.budgets.turns_per_card)
    assert.equal("stalled", (e:execute(assert(e:start("E")))))
    local c = b:get("E-1")
    assert.equal("waiting_for_developer", c.status)
    assert.equal("input", c.wait_reason)
    assert.equal(3, c.retries)
    local phases, filed = {}, nil
    for _, ev in ipairs(events) do
      assert.is_false(ev.type == "card_blocked", "a card was blocked: " .. tostring(ev.detail))
      if ev.type == "turn_start" and ev.card == "E-1" then phases[#phases + 1] = ev.phase end
      if ev.type == "requirements_review" then filed = ev.issue end
    end
    -- work, reject, rework, reject, escalation, rework, reject: then the review is filed
    assert.same({ "work", "review", "rework", "review", "escalation", "rework", "review" }, phases)
    assert.equal("E-2", filed)
    assert.matches("^Requirements review", b:get("E-2").summary)
  end)

  it("bounds a card's review turns apart from its work turns", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "x" } })
    local llm = F.llm(b)
    local inner = llm.chat
    function llm:chat(req)
      -- a reviewer that never decides (it comments, so it can call tools)
      if req.meta.role == "integrity_guard" then
        return { content = "hmm", usage = {}, tool_calls = req.meta.step == 1
          and { { id = "r", name = "add_issue_comment", arguments = { body = "hmm" }, raw_arguments = "{}" } } or {} }
      end
      return inner(self, req)
    end
    local e = F.engine(db, b, { llm = llm, config = { budgets = { turns_per_card = 2 } } })
    assert.equal("failed", (e:execute(assert(e:start("E")))))
    local c = b:get("E-1")
    assert.equal("blocked", c.status)
    assert.equal("resource", c.wait_reason)
    local comments = b:comments("E-1")
    assert.matches("Stopped after 2 review turns without a decision %(budgets.turns_per_card%)", comments[#comments].body)
    assert.equal(2, db:row("SELECT count(DISTINCT turn) AS n FROM turns WHERE role = 'integrity_guard'").n)
  end)

  it("ends the run failed when Orket's own code errors in a turn, rather than waiting for that turn", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", F.STANDARD)
    local e, events = F.engine(db, b, { concurrency = 2 })
    local id = assert(e:start("E"))
    local real = run_mod.Run.take_turn
    finally(function() run_mod.Run.take_turn = real end)
    run_mod.Run.take_turn = function(self, job)
      if job.card_id == "E-2" then error("a bug in the engine") end
      return real(self, job)
    end
    local status, report = e:execute(id)
    assert.equal("failed", status)
    assert.matches("an internal error ended the run %(E%-2: .*a bug in the engine", report.reason)
    assert.equal("run_end", events[#events].type)
    assert.equal("failed", require("orket.store.runs").get(db, id).status)
  end)

  it("ends the run when tokens_per_run runs out, leaving every card as it was, and resume goes on", function()
    local path = H.tmpdir() .. "/o.db"
    local db, b = F.fixture(path, F.STANDARD)
    -- every model call costs 110 tokens: the fourth (E-2's first step) spends the budget
    local e, events = F.engine(db, b, { concurrency = 1, config = { budgets = { tokens_per_run = 400 } } })
    local id = assert(e:start("E"))
    local status, report = e:execute(id)
    assert.equal("stalled", status)
    local why = "the run's token budget %(budgets.tokens_per_run = 400%) ran out"
    assert.matches(why, report.reason)
    local last, stall = events[#events], events[#events - 1]
    assert.equal("run_end", last.type)
    assert.equal("stalled", last.status)
    assert.matches(why, last.reason)
    assert.equal("stall", stall.type)
    assert.matches(why, stall.reason)
    local reasons = {}
    for _, s in ipairs(stall.cards) do reasons[s.card] = s.reason end
    assert.matches("^stopped in in_progress: " .. why, reasons["E-2"])
    assert.matches("^stopped in ready: " .. why, reasons["E-3"])
    assert.matches("^waits for E%-2", reasons["E-4"])
    for _, ev in ipairs(events) do assert.is_false(ev.type == "card_blocked") end
    assert.equal("done", b:get("E-1").status)
    assert.equal("in_progress", b:get("E-2").status)
    assert.equal("ready", b:get("E-3").status)
    assert.equal("stalled", require("orket.store.runs").get(db, id).status)
    -- resumed with the same budget: it stops again at once, asking nothing
    local again = F.engine(db, b, { config = { budgets = { tokens_per_run = 400 } } })
    assert.equal("stalled", (again:execute(id)))
    assert.equal(0, #again.llm.requests)
    -- raised: the run goes on where it stopped (E-2's open turn at its second step) and ends
    -- with the board of a run that never stopped, no work done twice
    local e2 = F.engine(db, b, { config = { budgets = { tokens_per_run = 0 } } })
    assert.equal("done", (e2:execute(id)))
    local fresh_db, fresh_b = F.fixture(H.tmpdir() .. "/p.db", F.STANDARD)
    local e3 = F.engine(fresh_db, fresh_b, { concurrency = 1 })
    assert.equal("done", (e3:execute(assert(e3:start("E")))))
    assert.equal(F.board_state(fresh_b), F.board_state(b))
    assert.equal(#e3.llm.requests, #e.llm.requests + #e2.llm.requests)
  end)

  it("counts a card's tokens spent by every worker of the run (tokens_per_card), from its last retry", function()
    local db = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "one" }, { id = "E-2", summary = "two" } })
    local id = assert(db:record_run { target = "E", kind = "epic", data = { workers = true } })
    -- two workers' views of the run (engine.lease set), and the turns each records as a
    -- step does: the row, then the running totals
    local function worker() return run_mod.new({ db = db, lease = {} }, id) end
    local function spend(r, card, n)
      assert(db:tx(function()
        return db:record_turn { run = id, card = card, seat = "senior_developer", turn = 1, model = "m",
          prompt_tokens = n, completion_tokens = 0, data = { step = 1 } }
      end))
      r:add_tokens(n, card)
    end
    local a, b = worker(), worker()
    assert.equal(0, a:card_tokens("E-1"))
    spend(a, "E-1", 100)
    assert.equal(100, a:card_tokens("E-1"))
    -- the card's lease moved to b (a's lapsed): b counts a's tokens, and spends more
    assert.equal(100, b:card_tokens("E-1"))
    spend(b, "E-1", 150)
    spend(b, "E-2", 1000) -- another card's
    -- back with a: it counts b's too, as the journal does
    assert.same({ 250, 250, 1000 }, { a:card_tokens("E-1"), b:card_tokens("E-1"), a:card_tokens("E-2") })
    assert.equal(1250, a:run_tokens())
    -- a retry starts the card's count again, in every worker
    assert(db:tx(function()
      db:event { kind = "retry", card = "E-1", data = { from = "blocked" } }
      return true
    end))
    spend(b, "E-1", 7)
    assert.same({ 7, 7 }, { a:card_tokens("E-1"), b:card_tokens("E-1") })
    -- a run of one process keeps its own running total
    local solo = run_mod.new({ db = db }, id)
    assert.equal(7, solo:card_tokens("E-1"))
    spend(solo, "E-1", 5)
    assert.same({ 12, 12 }, { solo:card_tokens("E-1"), a:card_tokens("E-1") })
    -- within a turn (its job given) a worker reads the card once, at the turn's first check,
    -- and adds its own calls after; its next turn reads what the others spent meanwhile, and
    -- its own calls once
    local job = {}
    assert.equal(12, a:card_tokens("E-1", job))
    spend(a, "E-1", 3)
    spend(b, "E-1", 50) -- recorded meanwhile, which a's turn does not read again
    assert.equal(15, a:card_tokens("E-1", job))
    -- a step whose transaction rolled back: its tokens added, then taken back (commit_step)
    a:add_tokens(5, "E-1")
    a:add_tokens(-5, "E-1")
    assert.equal(65, a:card_tokens("E-1", {}))
    db:close()
  end)

  it("reads a worker's token tallies again after a rolled-back transaction that held their read", function()
    local db = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "one" } })
    local id = assert(db:record_run { target = "E", kind = "epic", data = { workers = true } })
    local function worker() return run_mod.new({ db = db, lease = {} }, id) end
    local function turn_row(n)
      return db:record_turn { run = id, card = "E-1", seat = "senior_developer", turn = 1, model = "m",
        prompt_tokens = n, completion_tokens = 0, data = { step = 1 } }
    end
    local a, b = worker(), worker()
    assert(db:tx(function() return turn_row(100) end))
    assert.same({ 100, 100 }, { a:run_tokens(), a:card_tokens("E-1") })
    -- a step's transaction: its row written, the budgets checked inside it (the tallies read
    -- past the row), then rolled back
    local ok, err = db:tx(function()
      assert(turn_row(40))
      assert.same({ 140, 140 }, { a:run_tokens(), a:card_tokens("E-1") })
      return nil, "the step failed"
    end)
    assert.same({ nil, "the step failed" }, { ok, err })
    -- another worker's call, recorded next (on SQLite its row takes the undone row's id)
    assert(db:tx(function() return turn_row(9) end))
    assert.same({ 109, 109 }, { a:run_tokens(), a:card_tokens("E-1") })
    assert.same({ 109, 109 }, { b:run_tokens(), b:card_tokens("E-1") })
    -- and counts on from there
    assert(db:tx(function() return turn_row(1) end))
    assert.same({ 110, 110 }, { a:run_tokens(), a:card_tokens("E-1") })
    db:close()
  end)

  it("reads a worker's token tallies again after a read whose task was cancelled while it waited", function()
    local db = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "one" } })
    local id = assert(db:record_run { target = "E", kind = "epic", data = { workers = true } })
    local a = run_mod.new({ db = db, lease = {} }, id)
    local function turn_row(n)
      assert(db:tx(function()
        return db:record_turn { run = id, card = "E-1", seat = "senior_developer", turn = 1, model = "m",
          prompt_tokens = n, completion_tokens = 0, data = { step = 1 } }
      end))
    end
    turn_row(100)
    -- the reads wait (as on PostgreSQL) and their task is cancelled meanwhile (Run:stop)
    local recorded = require "orket.engine.recorded"
    local run_since, card_since = recorded.tokens_since, recorded.card_tokens_since
    local function waits(f) return function(...) orket.sleep(50); return f(...) end end
    recorded.tokens_since, recorded.card_tokens_since = waits(run_since), waits(card_since)
    local reads = {
      require("orket.task").spawn(function() return a:run_tokens() end),
      require("orket.task").spawn(function() return a:card_tokens("E-1") end),
    }
    recorded.tokens_since, recorded.card_tokens_since = run_since, card_since
    for _, t in ipairs(reads) do assert.is_true(t:cancel()) end
    -- the next reads count what the journal holds, and on from there
    assert.same({ 100, 100 }, { a:run_tokens(), a:card_tokens("E-1") })
    turn_row(7)
    assert.same({ 107, 107 }, { a:run_tokens(), a:card_tokens("E-1") })
    db:close()
  end)

  -- on PostgreSQL a statement cancelled with its task closes its connection, and the next
  -- one connects anew (a SCRAM exchange, about 100 ms on a loaded test machine): more than
  -- the 200 ms this run may take
  local sqlite_it = require("tests.backends").name() == "sqlite" and it
    or function(name) pending(name .. " [SQLite only]") end
  sqlite_it("ends the run when wall_ms_per_run runs out, cancelling the calls in flight", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", F.STANDARD)
    local e, events = F.engine(db, b, { sleep = 40, config = { budgets = { wall_ms_per_run = 100 } } })
    local id = assert(e:start("E"))
    local t0 = orket.now()
    local status, report = e:execute(id)
    assert.is_true(orket.now() - t0 < 200, "the run went on past its budget")
    assert.equal("stalled", status)
    local why = "the run's time budget %(budgets.wall_ms_per_run = 100%) ran out"
    assert.matches(why, report.reason)
    assert.matches(why, events[#events].reason)
    local stall = events[#events - 1]
    assert.equal("stall", stall.type)
    for _, s in ipairs(stall.cards) do
      assert.not_matches("cannot be scheduled", s.reason)
      assert.is_true(s.status ~= "blocked")
    end
    for _, ev in ipairs(events) do assert.is_false(ev.type == "card_blocked") end
    -- the cancelled call left no record: the journal is as a stopped run's
    assert.equal(0, db:row("SELECT count(*) AS n FROM events WHERE kind = 'model_failure'").n)
    local e2 = F.engine(db, b, {})
    assert.equal("done", (e2:execute(id)))
    for _, c in ipairs { "E-1", "E-2", "E-3", "E-4" } do assert.equal("done", b:get(c).status) end
  end)

  it("stops a model call when the card's wall budget runs out, and blocks the card", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "slow" }, { id = "E-2", summary = "quick" } })
    local timeouts, ran_past = {}, false
    local llm = F.llm(b)
    local inner = llm.chat
    function llm:chat(req)
      if req.meta.card == "E-1" then
        timeouts[#timeouts + 1] = req.timeout_ms
        -- a model that takes 2 s, as a client honouring timeout_ms sees it
        if not req.timeout_ms or req.timeout_ms >= 2000 then
          ran_past = true
          orket.sleep(2000)
          return inner(self, req)
        end
        orket.sleep(req.timeout_ms)
        return nil, "no answer in time", "timeout"
      end
      return inner(self, req)
    end
    -- a second of wall time each: the quick card's own work (on PostgreSQL, on a loaded
    -- machine) must fit in it, the slow model's 2 s must not
    local e, events = F.engine(db, b, { llm = llm, config = { budgets = { wall_ms_per_card = 1000, backoff_ms = 1 } } })
    assert.equal("failed", (e:execute(assert(e:start("E")))))
    -- what the call was allowed, not how long it took: a loaded machine may take long
    assert.is_false(ran_past, "the call ran past the card's budget")
    assert.is_true(timeouts[1] <= 1000)
    local c = b:get("E-1")
    assert.equal("blocked", c.status)
    assert.equal("resource", c.wait_reason)
    local comments = b:comments("E-1")
    assert.matches("budgets.wall_ms_per_card", comments[#comments].body)
    assert.equal("done", b:get("E-2").status)
    local blocked
    for _, ev in ipairs(events) do if ev.type == "card_blocked" then blocked = ev end end
    assert.matches("the card used its 1000 ms %(budgets.wall_ms_per_card%)", blocked.detail)
  end)

  describe("with a routing.lua that", function()
    local function routed(src)
      local dir = H.tmpdir()
      H.write(dir .. "/routing.lua", src)
      local db, b = F.fixture(dir .. "/o.db", { { id = "E-1", summary = "x" } })
      local e, events = F.engine(db, b, { dir = dir, routing = dir .. "/routing.lua" })
      local status, report = e:execute(assert(e:start("E")))
      local skipped
      for _, ev in ipairs(events) do if ev.type == "card_skipped" then skipped = ev.reason end end
      return status, report.stuck[1], b:get("E-1"), skipped, events
    end

    it("names the worker as reviewer, says so in the stall", function()
      local status, stuck, c, skipped = routed("return { reviewer = function(c) return c.worked_by end }\n")
      assert.equal("stalled", status)
      assert.equal("code_review", c.status)
      local want = "routing.lua's reviewer chose senior_developer, the seat that did the work"
      assert.matches(want, skipped, 1, true)
      assert.equal("skipped in code_review: " .. skipped, stuck.reason)
    end)

    it("names no seat of the team, says which", function()
      local status, stuck, c = routed("return { reviewer = function() return \"nobody\" end }\n")
      assert.equal("stalled", status)
      assert.equal("code_review", c.status)
      assert.equal("skipped in code_review: routing.lua's reviewer chose \"nobody\", which is not a seat of "
        .. "orket.lua's team (integrity_guard, lead_architect, senior_developer)", stuck.reason)
    end)

    it("raises an error, reports it with routing.lua's line and blocks nothing", function()
      local status, stuck, c, skipped, events = routed("-- routing\nreturn { reviewer = function() error(\"boom\") end }\n")
      assert.equal("stalled", status)
      assert.equal("code_review", c.status)
      assert.equal("routing error in routing.lua's reviewer: routing.lua:2: boom", skipped)
      assert.equal("skipped in code_review: " .. skipped, stuck.reason)
      for _, ev in ipairs(events) do assert.is_false(ev.type == "card_blocked") end
      status, stuck, c = routed("return { worker = function() error(\"no worker\") end }\n")
      assert.equal("stalled", status)
      assert.equal("ready", c.status)
      assert.equal("skipped in ready: routing error in routing.lua's worker: routing.lua:1: no worker", stuck.reason)
    end)
  end)

  it("blocks a card that uses up its turns, with a comment", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "lazy" } })
    local llm = { chat = function() return { content = "thinking", tool_calls = {}, usage = {} } end }
    local e = F.engine(db, b, { llm = llm, config = { budgets = { turns_per_card = 2 } } })
    assert.equal("failed", (e:execute(assert(e:start("E")))))
    local c = b:get("E-1")
    assert.equal("blocked", c.status)
    assert.equal("resource", c.wait_reason)
    assert.matches("budgets.turns_per_card", b:comments("E-1")[1].body)
  end)

  it("blocks a card that uses up its wall time, and only that card", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "slow" } })
    local llm = { chat = function() orket.sleep(25) return { content = "thinking", tool_calls = {}, usage = {} } end }
    local e = F.engine(db, b, { llm = llm, config = { budgets = { turns_per_card = 50, wall_ms_per_card = 60 } } })
    assert.equal("failed", (e:execute(assert(e:start("E")))))
    local c = b:get("E-1")
    assert.equal("blocked", c.status)
    assert.equal("resource", c.wait_reason)
    local comments = b:comments("E-1")
    assert.matches("budgets.wall_ms_per_card", comments[#comments].body)
    -- it stopped on time, long before its 50 turns
    assert.is_true(db:row("SELECT count(*) AS n FROM turns").n < 10)
  end)

  it("returns gate denials to the model and records them as violations", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "x" } })
    local llm = F.llm(b)
    local inner = llm.chat
    local seen
    function llm:chat(req)
      if req.meta.role == "coder" and req.meta.step == 1 and req.meta.turn == 1 then
        return { content = "", tool_calls = { { id = "d", name = "delete_everything", arguments = {} } }, usage = {} }
      end
      if req.meta.role == "coder" and req.meta.step == 2 and req.meta.turn == 1 then
        seen = req.messages[#req.messages]
        return { content = "", tool_calls = { { id = "c3", name = "update_issue_status", arguments = { status = "code_review" } } }, usage = {} }
      end
      return inner(self, req)
    end
    local e = F.engine(db, b, { llm = llm })
    assert.equal("done", (e:execute(assert(e:start("E")))))
    assert.equal("tool", seen.role)
    assert.matches("denied", seen.content)
    assert.equal(1, db:row("SELECT count(*) AS n FROM violations").n)
    local v = db:violations("E-1")[1]
    assert.same({ "ETOOL_ROLE", "delete_everything {}", "delete_everything is not a tool of this role", "use your own tools" },
      { v.rule, v.attempt, v.detail, v.remedy })
    assert.equal(1, db:row("SELECT count(*) AS n FROM gate_decisions WHERE verdict = 'deny'").n)
    -- allowed calls keep their decision in their own tool_calls row, not in gate_decisions
    assert.equal(0, db:row("SELECT count(*) AS n FROM gate_decisions WHERE verdict = 'allow'").n)
    assert.equal(0, db:row("SELECT count(*) AS n FROM tool_calls WHERE ok AND gate_code IS NULL").n)
    assert.is_true(db:row("SELECT count(*) AS n FROM tool_calls WHERE gate_code IS NOT NULL").n > 0)
    assert.is_nil(db:row("SELECT gate_code FROM tool_calls WHERE tool = 'delete_everything'").gate_code)
  end)

  it("resumes a stopped run without asking the model again for recorded steps", function()
    local path = H.tmpdir() .. "/o.db"
    local db, b = F.fixture(path, F.STANDARD)
    local ev1, ev2 = {}, {}
    local e = F.engine(db, b, { events = ev1 })
    local id = assert(e:start("E"))
    local n = 0
    local inner = e.llm.chat
    e.llm.chat = function(self, req)
      n = n + 1
      if n == 5 then e:stop() return nil, "canceled", "canceled" end
      return inner(self, req)
    end
    assert.equal("interrupted", (e:execute(id)))
    local recorded = db:row("SELECT count(*) AS n FROM turns").n
    local e2 = F.engine(db, b, { events = ev2 })
    assert.equal("done", (e2:execute(id)))
    -- the live view tells this session's figures from the whole run's by this flag
    assert.same({ "run_start", false }, { ev1[1].type, ev1[1].resumed })
    assert.same({ "run_start", true }, { ev2[1].type, ev2[1].resumed })
    local fresh_db, fresh_b = F.fixture(H.tmpdir() .. "/p.db", F.STANDARD)
    local e3 = F.engine(fresh_db, fresh_b, {})
    assert.equal("done", (e3:execute(assert(e3:start("E")))))
    assert.equal(F.board_state(fresh_b), F.board_state(b))
    assert.equal(#e3.llm.requests, recorded + #e2.llm.requests)
  end)

  it("is made whole: a full run adds no field to the engine or the run, and refuses one that would", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", F.STANDARD)
    local e = F.engine(db, b, {})
    local runs_seen = {}
    local inner = e.llm.chat
    e.llm.chat = function(self, req)
      runs_seen[e.current] = true
      return inner(self, req)
    end
    assert.equal("done", (e:execute(assert(e:start("E")))))
    local declared = require("orket.engine").FIELDS
    for k in pairs(getmetatable(e).__index) do
      assert.is_true(declared.fixed[k] or declared.scripts[k] or declared.state[k] or false, k)
    end
    assert.is_nil(next(e)) -- every field is behind the guard
    assert.is_not_nil(next(runs_seen))
    for r in pairs(runs_seen) do
      for k in pairs(r) do assert.is_true(run_mod.FIELDS[k] or false, k) end
      assert.error_matches(function() r.halted_by = "x" end, "a run has no field 'halted_by'")
      r.halted = "set" -- a declared field that starts nil
      assert.equal("set", r.halted)
    end
    assert.error_matches(function() e.reloded = 1 end, "engine has no field 'reloded'")
    assert.error_matches(function() e.db = {} end, "engine.db is fixed")
    assert.error_matches(function() e.tools = {} end, "engine.tools is replaced only by a hot reload")
    assert.error_matches(function() e.halted = "x" end, "engine has no field 'halted'")
    local ok = pcall(require("orket.engine").new, { db = db, board = b, settings = e.settings, llm = e.llm,
      tools = e.tools, gate = e.gate, roles = e.roles, routing = e.routing, on_request = print })
    assert.is_false(ok)
    e.stop_requested = nil -- the engine's own state stays writable
  end)

  it("gives each run its own state: nothing of one run carries into the next", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" } })
    assert(db:tx(function()
      require("orket.store.imports").insert_card(db, { id = "F", type = "epic", name = "F", priority = 2 })
      return true
    end))
    assert(b:create { parent = "F", id = "F-1", summary = "f", seat = "senior_developer" })
    local e = F.engine(db, b, {})
    -- the first run was started with a model of its own (orket run --model)
    assert.equal("done", (e:execute(assert(e:start("E", { model = "fake:chosen" })))))
    for _, r in ipairs(e.llm.requests) do assert.equal("fake:chosen", r.model) end
    local n = #e.llm.requests
    assert.is_nil(e.current)
    assert.equal("done", (e:execute(assert(e:start("F")))))
    assert.is_true(#e.llm.requests > n)
    for i = n + 1, #e.llm.requests do assert.not_equal("fake:chosen", e.llm.requests[i].model) end
    -- the run's state lived on the run, not on the engine
    for _, k in ipairs { "halted", "skipped", "tokens_used", "card_clock", "run_counters", "tasks", "stopping" } do
      assert.is_nil(rawget(e, k), k)
    end
  end)

  describe("keeps the board's rules", function()
    local PERSON = { seat = "developer", roles = {}, by = "person" }

    it("refuses a worker that cancels its own card: the card is reviewed and done", function()
      local status, report, b, db = run({ { id = "E-1", summary = "hard [cancel]" } }, {})
      assert.equal("done", status)
      assert.equal("done", b:get("E-1").status)
      assert.is_nil(report.canceled[1])
      assert.equal(1, db:row("SELECT count(*) AS n FROM tool_calls WHERE error_code = 'EPERSON'").n)
    end)

    it("refuses a reviewer that archives instead of deciding", function()
      local status, _, b, db = run({ { id = "E-1", summary = "dull [archive]" } }, {})
      assert.equal("done", status)
      assert.equal("done", b:get("E-1").status)
      assert.equal(1, db:row("SELECT count(*) AS n FROM tool_calls WHERE error_code = 'EPERSON'").n)
    end)

    it("says which cards a person canceled in run_end and its report", function()
      local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" } })
      assert(b:cancel("E-2", { actor = PERSON, reason = "out of scope" }))
      local e, events = F.engine(db, b, {})
      local status, report = e:execute(assert(e:start("E")))
      assert.equal("done", status)
      assert.same({ "E-2 (canceled by developer: out of scope)" }, report.canceled)
      assert.same(report.canceled, events[#events].canceled)
      local h = b:history("E-2")
      local moved
      for _, ev in ipairs(h) do if ev.kind == "transition" and ev.data.to == "canceled" then moved = ev end end
      assert.same({ "developer", "person" }, { moved.actor, moved.data.by })
    end)

    it("moves a card handed in for testing on to review", function()
      local status, _, b = run({ { id = "E-1", summary = "tested [testing]" } }, {})
      assert.equal("done", status)
      assert.equal("done", b:get("E-1").status)
      local path = {}
      for _, ev in ipairs(b:history("E-1")) do
        if ev.kind == "transition" then path[#path + 1] = ev.data.to .. ":" .. ev.actor end
      end
      assert.same({ "in_progress:senior_developer", "ready_for_testing:senior_developer", "code_review:orket",
        "done:integrity_guard" }, path)
    end)

    it("moves a rock's epics after their issues, and an epic waits for the epics it depends on", function()
      local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "first" } })
      assert(db:tx(function()
        local imports = require "orket.store.imports"
        imports.insert_card(db, { id = "R", type = "rock", name = "Rock", priority = 2 })
        assert(db:run("UPDATE cards SET parent = 'R' WHERE id = 'E'"))
        imports.insert_card(db, { id = "L", type = "epic", parent = "R", name = "Later", priority = 3 })
        imports.add_dependency(db, "L", "E", 1)
        return true
      end))
      assert(b:create { parent = "L", id = "L-1", summary = "after", priority = 3, seat = "senior_developer" })
      local e, events = F.engine(db, b, {})
      assert.equal("done", (e:execute(assert(e:start("R")))))
      for _, id in ipairs { "E", "L", "R" } do assert.equal("done", b:get(id).status, id) end
      -- L-1 (higher priority) waited for epic E
      local first
      for _, ev in ipairs(events) do
        if ev.type == "turn_start" and not first then first = ev.card end
      end
      assert.equal("E-1", first)
      local moves = {}
      for _, ev in ipairs(b:history("L")) do if ev.kind == "transition" then moves[#moves + 1] = ev.data.to end end
      assert.same({ "in_progress", "done" }, moves)
    end)

    it("names for every stuck card the command that gets it moving", function()
      local scheduler = require "orket.engine.scheduler"
      local db, b = F.fixture(H.tmpdir() .. "/o.db", {
        { id = "E-1", summary = "down" }, { id = "E-2", summary = "after down", depends_on = { "E-1" } },
        { id = "E-3", summary = "chain", depends_on = { "E-2" } }, { id = "E-4", summary = "dropped" },
        { id = "E-5", summary = "after dropped", depends_on = { "E-4" } }, { id = "E-6", summary = "tested" },
        { id = "E-7", summary = "a role that fails" }, { id = "E-8", summary = "after dropped, from a file", depends_on = { "E-4" } },
        { id = "E-9", summary = "a key refused" }, { id = "E-10", summary = "a request refused" },
      })
      -- E-8 came from a file, whose depends_on can be edited; E-5 was made on the board
      assert(db:run("UPDATE cards SET source = 'epics/e.json' WHERE id = 'E-8'"))
      local CODER = { seat = "senior_developer", roles = { "coder" } }
      assert(b:transition("E-1", "in_progress", { actor = CODER }))
      assert(b:transition("E-1", "blocked", { actor = CODER, reason = "system" }))
      assert(b:cancel("E-4", { actor = PERSON, reason = "not needed" }))
      assert(b:transition("E-6", "in_progress", { actor = CODER }))
      assert(b:transition("E-6", "ready_for_testing", { actor = CODER }))
      -- a turn that failed by its own scripts (the engine's comment says so), not the model's
      assert(b:transition("E-7", "in_progress", { actor = CODER }))
      assert(b:comment("E-7", { author = "orket", body = "The turn failed: ./roles/coder.lua:1: attempt to index a nil value" }))
      assert(b:transition("E-7", "blocked", { actor = CODER, reason = "system" }))
      -- the model's failures: waiting mends neither a key the server refuses nor a request
      for id, class in pairs { ["E-9"] = "auth", ["E-10"] = "bad_request" } do
        assert(b:transition(id, "in_progress", { actor = CODER }))
        assert(b:comment(id, { author = "orket", body = "The model failed (" .. class .. "): http://m: HTTP 4xx" }))
        assert(b:transition(id, "blocked", { actor = CODER, reason = "system" }))
      end
      local next_step, reason = {}, {}
      for _, st in ipairs(scheduler.stuck(b, scheduler.scope(b, { id = "E", type = "epic" }), { run = 4 })) do
        next_step[st.card], reason[st.card] = st.next, st.reason
      end
      assert.equal("waits for E-4 (canceled, it will never be done)", reason["E-5"])
      assert.same({
        ["E-1"] = "once the model answers again, orket retry E-1",
        ["E-2"] = "once the model answers again, orket retry E-1",
        ["E-3"] = "once the model answers again, orket retry E-1",
        ["E-5"] = 'orket cancel E-5 "reason" (it was made on the board: its dependencies are kept), and file its work '
          .. "again without E-4",
        ["E-8"] = 'orket cancel E-8 "reason", or drop E-4 from its depends_on in epics/e.json and orket import',
        ["E-6"] = "orket retry E-6",
        ["E-7"] = "fix what the card's last comment names (a role, a tool or a script), then orket retry E-7",
        ["E-9"] = "check the key of the model's provider (its api_key_env or api_key in orket.lua; the card's last "
          .. "comment names the server), then orket retry E-9",
        ["E-10"] = "fix what the card's last comment names (the model's name, base_url, a request the server "
          .. "refuses), then orket retry E-10",
      }, next_step)
      db:close()
    end)

    it("a parent whose issues were all canceled is canceled", function()
      local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" } })
      assert(b:cancel("E-1", { actor = PERSON, reason = "not needed" }))
      assert.equal("canceled", b:get("E").status)
      db:close()
    end)

    it("says that a model that never calls a tool is not helped by a bigger budget", function()
      local status, report, b = run({ { id = "E-1", summary = "chatty [prose]" } },
        { config = { budgets = { turns_per_card = 2 } } })
      assert.equal("failed", status)
      assert.equal("blocked", b:get("E-1").status)
      local cs = b:comments("E-1")
      assert.matches("called no tool", cs[#cs].body)
      assert.matches("would not help", cs[#cs].body)
      assert.is_nil(cs[#cs].body:find("raise the budget", 1, true))
      assert.equal("orket retry E-1 once the model calls tools (see the card's last comment)", report.stuck[1].next)
    end)
  end)

  -- An import that moves the run's cards to another epic while a turn is in flight: the
  -- run goes on only with what is still in its scope. Each run has a wall budget far above
  -- its time, so a run that spins ends on it (and fails the test) instead of hanging.
  describe("after an import moves cards out of the run's epic", function()
    local uv = require "luv"
    local import = require "orket.import"

    -- files: epics/ of the import, made during the model call numbered at
    local function moving_run(issues, files, at, opts)
      local dir = H.tmpdir()
      local db, b = F.fixture(dir .. "/o.db", issues)
      os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
      for name, text in pairs(files) do H.write(dir .. "/epics/" .. name, text) end
      local llm = F.llm(b, {})
      local n, chat = 0, llm.chat
      function llm:chat(req)
        n = n + 1
        if n == at then assert(import.import(db, dir)) end
        return chat(self, req)
      end
      local e, events = F.engine(db, b, { llm = llm, concurrency = opts.concurrency,
        config = { budgets = { wall_ms_per_run = 5000 } } })
      local t0 = uv.hrtime()
      local status, report = e:execute(assert(e:start("E")))
      local ms = (uv.hrtime() - t0) / 1e6
      assert.is_true(ms < 4000, string.format("the run took %.0f ms: it spun until its wall budget", ms))
      local turns = {}
      for _, ev in ipairs(events) do
        if ev.type == "turn_start" then turns[#turns + 1] = ev.card .. ":" .. ev.phase end
        assert.is_false(ev.type == "card_skipped", ev.card and (ev.card .. " skipped: " .. tostring(ev.reason)))
      end
      return status, report, b, turns, events
    end

    -- The run's rounds end only when one changes nothing: a card whose turns ran out and that
    -- cannot be blocked (a view's stale copy in review of a card now done) changed nothing.
    it("counts a spent card it could not block as no change, so its rounds end", function()
      local status, _, b, db, _, e = run({ { id = "E-1", summary = "a" } }, {})
      assert.equal("done", status)
      local id = db:row("SELECT id FROM runs").id
      assert(db:tx(function()
        for t = 3, 8 do
          db:event { kind = "turn_begin", card = "E-1", run = id, actor = "integrity_guard",
            data = { turn = t, phase = "review", seat = "integrity_guard", role = "integrity_guard" } }
          db:event { kind = "turn_end", card = "E-1", run = id, actor = "integrity_guard", data = { turn = t } }
        end
        return true
      end))
      local stale = b:get("E-1")
      stale.status = "code_review"
      local job, changed = run_mod.new(e, id):prepare(stale)
      assert.is_nil(job)
      assert.is_false(changed)
      assert.equal("done", b:get("E-1").status)
    end)

    local TWO = { { id = "E-1", summary = "design" }, { id = "E-2", summary = "build" } }
    local BOTH = '{"id":"F","name":"F","issues":[{"id":"E-1","summary":"design"},{"id":"E-2","summary":"build"}]}'

    it("finishes the turn in flight, takes no card of another epic, and ends saying why", function()
      local status, report, b, turns = moving_run(TWO, { ["f.json"] = BOTH }, 2, { concurrency = 1 })
      assert.equal("done", status)
      -- E-1's turn was under way (its second model call): it ended as it would have
      assert.same({ "E-1:work" }, turns)
      assert.equal("code_review", b:get("E-1").status)
      assert.equal("ready", b:get("E-2").status)
      assert.equal("F", b:get("E-2").parent)
      assert.equal("E has no issues left: an import moved E-1, E-2 out of E during the run (now under F: "
        .. "'orket run F' works them)", report.reason)
    end)

    it("gives no card picked before the import a turn after its own, and none a review", function()
      local status, report, b, turns = moving_run(TWO, { ["f.json"] = BOTH }, 2, {})
      assert.equal("done", status)
      -- both were picked in the first round (concurrency 3), before the import
      table.sort(turns)
      assert.same({ "E-1:work", "E-2:work" }, turns)
      for _, id in ipairs { "E-1", "E-2" } do assert.equal("code_review", b:get(id).status) end
      assert.matches("^E has no issues left", report.reason)
    end)

    it("names each moved card's new epic", function()
      local status, report = moving_run(TWO, {
        ["f.json"] = '{"id":"F","name":"F","issues":[{"id":"E-1","summary":"design"}]}',
        ["g.json"] = '{"id":"G","name":"G","issues":[{"id":"E-2","summary":"build"}]}',
      }, 2, { concurrency = 1 })
      assert.equal("done", status)
      assert.equal("E has no issues left: an import moved E-1, E-2 out of E during the run (E-1 now under F, E-2 "
        .. "under G)", report.reason)
    end)

    -- An issue's run follows the issue, not the epic it was in when the run began: moved by
    -- an import to another epic while its turn went, then blocked and retried (back to
    -- ready, as `orket retry` from another process), it is still the run's to work.
    it("works an issue run's issue on after an import moved it to another epic and a retry", function()
      local dir = H.tmpdir()
      local db, b = F.fixture(dir .. "/o.db", TWO)
      os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
      H.write(dir .. "/epics/f.json", '{"id":"F","name":"F","issues":[{"id":"E-1","summary":"design"}]}')
      local llm = F.llm(b, {})
      local n, chat = 0, llm.chat
      local person = { seat = "developer", roles = {} }
      function llm:chat(req)
        n = n + 1
        if n == 1 then
          assert(import.import(db, dir))
          assert(b:transition("E-1", "blocked", { actor = person, reason = "input", note = "wait" }))
        end
        return chat(self, req)
      end
      -- the blocked card's turn ended (its status changed): retried before the next pass
      local retried = false
      local events = setmetatable({}, { __newindex = function(t, k, ev)
        rawset(t, k, ev)
        if ev.type == "turn_end" and not retried then
          retried = true
          assert(b:retry("E-1", { actor = person }))
        end
      end })
      local e = F.engine(db, b, { llm = llm, events = events, config = { budgets = { wall_ms_per_run = 5000 } } })
      local status, report = e:execute(assert(e:start("E-1")))
      assert.equal("done", status, report.reason)
      assert.equal("F", b:get("E-1").parent)
      assert.equal("done", b:get("E-1").status)
      assert.equal("ready", b:get("E-2").status) -- the epic's other issue is not the run's
      local turns = {}
      for _, ev in ipairs(events) do
        if ev.type == "turn_start" then turns[#turns + 1] = ev.card .. ":" .. ev.phase end
      end
      assert.same({ "E-1:work", "E-1:work", "E-1:review" }, turns)
    end)

    it("goes on with the epic's other cards", function()
      local status, report, b, turns = moving_run(TWO,
        { ["f.json"] = '{"id":"F","name":"F","issues":[{"id":"E-1","summary":"design"}]}' }, 2, { concurrency = 1 })
      assert.equal("done", status)
      assert.same({ "E-1:work", "E-2:work", "E-2:review" }, turns)
      assert.equal("code_review", b:get("E-1").status)
      assert.equal("done", b:get("E-2").status)
      assert.equal("done", b:get("E").status)
      assert.equal("an import moved E-1 out of E during the run (now under F: 'orket run F' works it)", report.reason)
    end)
  end)
end)
