-- The web board's card actions in a real headless Chromium (tests/webdriver.lua): a card held
-- on a tool call reads "waiting for approval" and offers only Approve/Deny; deny, move, retry,
-- answer, comment, cancel, start, stop and resume a run are done by clicks and checked
-- through the API.
-- Then runs of four epics followed live: the page fetches single cards, not the board, and
-- it waits out a 429's Retry-After.
local H = require "tests.helpers"
local WD = require "tests.webdriver"
local cjson = require "cjson"

local project = require("tests.cleanup_project").make

local function badge(wd, id)
  return wd:js([[var e = document.querySelector('#tree li[data-card="' + arguments[0] + '"] > .status');
    return e ? [e.getAttribute('data-status'), e.textContent, e.getAttribute('data-waiting') || ""] : null;]], id)
end

local function sign_in(wd, s, key, first_card)
  wd:sign_in(s.url, key)
  wd:wait('#tree li[data-card="' .. first_card .. '"]', "the board's tree")
  H.wait_for(function() return wd:js("return document.getElementById('live').textContent") == "live" end,
    "the event stream to open", 3000)
end

-- One Chromium for the file's tests, started at the first (a start costs seconds of CPU):
-- each test signs in to a server of its own, on a port, and so an origin, of its own.
local browser -- { wd =, art = } | nil

local function stop_browser(keep)
  if not browser then return end
  browser.wd:stop()
  if not keep then os.execute("rm -rf " .. H.quote(browser.art)) end
  browser = nil
end

-- with_browser(fn(wd, art)): Chromium for fn; when fn fails the browser is stopped and its
-- artifacts kept (the next test starts another)
local function with_browser(s, fn)
  if not browser then
    local art = WD.artifacts()
    browser = { wd = WD.start(art, { width = 1280, height = 1000 }), art = art }
  end
  local art = browser.art
  local ok, err = pcall(fn, browser.wd, art)
  if not ok then
    stop_browser(true)
    error(tostring(err) .. "\n(screenshots and the browser's logs are in " .. art .. ")", 0)
  end
end

local function visible(wd, css)
  return wd:js([[var e = document.querySelector(arguments[0]); return !!(e && e.offsetParent !== null);]], css)
end

describe("the web board's actions in Chromium", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)
  teardown(function() stop_browser() end)

  it("shows approvals as approvals and does every card action by clicks", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    assert.equal(3, H.orket("run CLEAN --json", { cwd = dir }).status)
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local _, x = H.api(s, "POST", "/v1/cards", key, { parent = "CLEAN", summary = "Extra work" })
    local _, y = H.api(s, "POST", "/v1/cards", key, { parent = "CLEAN", summary = "Not needed" })
    local X, Y = x.card.id, y.card.id
    local function card(id) return select(2, H.api(s, "GET", "/v1/cards/" .. id, key)) end
    with_browser(s, function(wd)
      -- reached(id, status, what): waits for the card's status; an error the page shows for
      -- the action fails the wait at once, saying it
      -- show(id, what): the card's pane, opened from the tree
      local function show(id, what)
        wd:press('#tree li[data-card="' .. id .. '"] > .card-link')
        H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == id end, what, 3000)
      end
      local function reached(id, status, what)
        H.wait_for(function()
          local shown = wd:js("return document.getElementById('detail-error').textContent")
          if shown and shown ~= "" then error(what .. ": the page says: " .. shown, 0) end
          return card(id).card.status == status
        end, what, 3000)
      end
      sign_in(wd, s, key, "CLEAN-1")
      -- the held tool call: its badge and its pane say approval; no answer, no retry
      H.wait_for(function() return (badge(wd, "CLEAN-1") or {})[3] == "approval" end, "the approval badge", 3000)
      local b = badge(wd, "CLEAN-1")
      assert.equal("waiting_for_developer", b[1])
      assert.equal("waiting for approval", b[2])
      wd:press('#tree li[data-card="CLEAN-1"] > .card-link')
      wd:wait("#approvals .approval button.deny", "the held tool call")
      assert.is_false(visible(wd, "#answer-button"))
      assert.is_false(visible(wd, "#retry-button"))
      -- a denial without a reason is refused in the page, beside the reason's field; the
      -- message is this card's and does not stay when another card is shown
      wd:press("#approvals .approval button.deny")
      H.wait_for(function() return wd:text_of("#approvals .approval .error") == "Say why to deny it." end, "the missing reason", 3000)
      show(X, "the other card's pane")
      assert.equal("", wd:text_of("#detail-error"))
      show("CLEAN-1", "the held card's pane again")
      wd:wait("#approvals .approval button.deny", "the held tool call again")
      assert.equal("", wd:text_of("#approvals .approval .error"))
      -- deny it, with a reason typed in the page
      wd:type(wd:find("#approvals .approval input"), "keep old.txt")
      wd:press("#approvals .approval button.deny")
      H.wait_for(function()
        local a = card("CLEAN-1").approvals
        return a[1] and a[1].decision == "deny"
      end, "the denial", 3000)
      H.wait_for(function() return not wd:find("#approvals .approval") end, "the approval to leave the page", 3000)
      assert.equal("", badge(wd, "CLEAN-1")[3])

      -- another card: move it to blocked (resource), then retry it
      show(X, "its pane")
      wd:press("#actions > summary")
      wd:press('#move-to option[value="blocked"]')
      wd:press('#move-reason option[value="resource"]')
      wd:press("#move-button")
      reached(X, "blocked", "the move to blocked")
      assert.equal("resource", card(X).card.wait_reason)
      H.wait_for(function() return (badge(wd, X) or {})[1] == "blocked" end, "blocked in the tree", 3000)
      H.wait_for(function() return visible(wd, "#retry-button") end, "the retry button", 3000)
      wd:press("#retry-button")
      H.wait_for(function() return card(X).card.status ~= "blocked" end, "the retry", 3000)
      -- each move picks its target from the list the pane shows for the card's status now:
      -- a list drawn for an earlier status is replaced when the pane catches up, and an
      -- option clicked in the old one is lost (the form then sends another target)
      H.wait_for(function() return not wd:find('#move-to option[value="ready"]') end, "the form for ready", 3000)
      -- waiting for input: the answer form, and the answer sends it back to work
      -- (from ready, to in_progress first: the state machine allows no other way)
      wd:press('#move-to option[value="in_progress"]')
      wd:press("#move-button") -- the reason of the move to blocked is gone: not sent again
      reached(X, "in_progress", "the move to in_progress")
      H.wait_for(function() return not wd:find('#move-to option[value="in_progress"]') end, "the form for in_progress", 3000)
      wd:press('#move-to option[value="waiting_for_developer"]')
      wd:press('#move-reason option[value="input"]')
      wd:press("#move-button")
      reached(X, "waiting_for_developer", "waiting for input")
      H.wait_for(function() return visible(wd, "#answer-button") end, "the answer form", 3000)
      assert.is_false(wd:find("#approvals .approval") ~= nil)
      wd:type(wd:find("#answer-text"), "Use the blue one.")
      wd:press("#answer-button")
      reached(X, "ready", "the answer")
      -- a comment, once the pane is drawn for ready (the answer form gone): typed while the
      -- pane still moved, the click could land on what the redraw moved under it
      H.wait_for(function() return not visible(wd, "#answer-button") end, "the pane drawn for ready", 10000)
      wd:type(wd:find("#comment-text"), "Looked at it in the browser.")
      assert.equal("Looked at it in the browser.", wd:js("return document.getElementById('comment-text').value"))
      wd:press("#comment-button")
      H.wait_for(function()
        local shown = wd:js("return document.getElementById('detail-error').textContent")
        if shown and shown ~= "" then error("the comment: the page says: " .. shown, 0) end
        for _, c in ipairs(card(X).comments) do if c.body == "Looked at it in the browser." then return true end end
      end, "the comment", 10000)
      H.wait_for(function() return (wd:text_of("#comments") or ""):find("Looked at it in the browser.", 1, true) end,
        "the comment in the page", 3000)

      -- cancel the other card
      show(Y, "its pane")
      if not visible(wd, "#cancel-reason") then wd:press("#actions > summary") end
      wd:type(wd:find("#cancel-reason"), "not needed after all")
      wd:press("#cancel-button")
      reached(Y, "canceled", "the cancel")
      H.wait_for(function() return (badge(wd, Y) or {})[1] == "canceled" end, "canceled in the tree", 3000)

      -- the stalled run: resumed from the runs panel
      wd:wait('#runs li[data-run="1"] button.run-resume', "the run's resume button")
      wd:press('#runs li[data-run="1"] button.run-resume')
      H.wait_for(function()
        local _, audit = H.api(s, "GET", "/v1/audit", key)
        for _, e in ipairs(audit.entries) do if e.action == "resume" then return true end end
      end, "the resume in the audit", 5000)
      -- the two cards made through the API, then the page's sign-in and every write it
      -- made: the audit names them in order
      local _, audit = H.api(s, "GET", "/v1/audit", key)
      local acts = {}
      for _, e in ipairs(audit.entries) do acts[#acts + 1] = e.action end
      assert.same({ "create", "create", "sign_in", "deny", "move", "retry", "move", "move", "answer", "comment",
        "cancel", "resume" }, acts)
    end)
    H.wait_for(function()
      local _, r = H.api(s, "GET", "/v1/runs/1", key)
      return r.run.state ~= "running"
    end, "the resumed run to end", 10000)
    assert.equal(0, s.stop())
  end)

  -- (its text answer form approved it, whatever the text said: a button approves it now)
  it("approves going on for a card a money budget stopped, from its pane's button", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local _, x = H.api(s, "POST", "/v1/cards", key, { parent = "CLEAN", summary = "Costly work" })
    local X = x.card.id
    -- the engine's stop, as a run makes it when the card's money budget would be passed
    local db = assert(require("orket.project").open_store(dir, false))
    local b = require("orket.board").open(db)
    local engine = require("orket.board").ENGINE
    assert(b:transition(X, "in_progress", { actor = engine }))
    assert(b:transition(X, "waiting_for_developer", { actor = engine, reason = "budget",
      note = "Turn stopped: money budget: the card spent 0.06 USD of its 0.06 USD (budgets.cost_per_card)" }))
    db:close()
    local function card(id) return select(2, H.api(s, "GET", "/v1/cards/" .. id, key)) end
    with_browser(s, function(wd)
      sign_in(wd, s, key, "CLEAN-1")
      wd:press('#tree li[data-card="' .. X .. '"] > .card-link')
      H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == X end, "its pane", 3000)
      H.wait_for(function() return visible(wd, "#budget-button") end, "the budget's approval", 3000)
      assert.is_false(visible(wd, "#answer-button"), "no text answer for a budget's wait")
      wd:type(wd:find("#budget-note"), "Go on, it is worth it.")
      wd:press("#budget-button")
      H.wait_for(function() return card(X).card.status == "ready" end, "the approval", 3000)
    end)
    local kinds = {}
    for _, h in ipairs(card(X).history) do kinds[h.kind or h.type or "?"] = true end
    assert.is_true(kinds.budget_approved, "the button approved one budget more")
    local said = card(X).comments
    assert.matches("Approved going on past the card's money budget: one budget's worth more (Go on, it is worth it.).",
      said[#said].body, 1, true)
    assert.equal(0, s.stop())
  end)

  it("starts a run from the page and stops it with the runs panel's button", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = H.tmpdir()
    for _, d in ipairs { "epics", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
    H.write(dir .. "/orket.lua", [[
name = "slow"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
    -- the coder thinks for a long time: the run is going when the page stops it. The card
    -- shows in_progress once the first turn ends; the run would then go on for five more
    -- such turns (stopped for calling no tool) before it ended on its own: 5 s each leaves
    -- 25 s for the stop, where a longer think only made the test wait for the first turn.
    H.write(dir .. "/script.lua", [[
return { rules = { { role = "coder", match = "^Issue ", reply = { content = "Thinking.", delay_ms = 5000 } } },
  default = { content = "Nothing more to do." } }
]])
    H.write(dir .. "/epics/slow.json", [[
{ "id": "SLOW", "name": "Slow", "issues": [ { "id": "SLOW-1", "summary": "Think", "seat": "senior_developer" } ] }
]])
    require("tests.backends").project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    with_browser(s, function(wd)
      sign_in(wd, s, key, "SLOW-1")
      wd:type(wd:find("#run-target"), "SLOW")
      wd:press("#run-button")
      wd:wait('#runs li[data-run="1"] button.run-stop', "the run's stop button")
      -- the answer's run has a state (no status): the page says it
      H.wait_for(function() return wd:text_of("#run-status") == "Run 1 started (running)." end, "the run's start said", 3000)
      H.wait_for(function() return (badge(wd, "SLOW-1") or {})[1] == "in_progress" end, "the card in progress", 5000)
      wd:press('#runs li[data-run="1"] button.run-stop')
      H.wait_for(function()
        local _, r = H.api(s, "GET", "/v1/runs/1", key)
        return r.run.state == "interrupted"
      end, "the run to stop", 10000)
      H.wait_for(function() return wd:find('#runs li[data-run="1"] button.run-resume') end, "the resume button", 3000)
      local _, audit = H.api(s, "GET", "/v1/audit", key)
      local acts = {}
      for _, e in ipairs(audit.entries) do acts[#acts + 1] = e.action end
      assert.same({ "sign_in", "run", "stop" }, acts)
    end)
    assert.equal(0, s.stop())
  end)

  it("follows runs of four epics with single-card fetches, and waits out a 429", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = H.tmpdir()
    for _, d in ipairs { "epics", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
    H.write(dir .. "/orket.lua", [[
name = "four"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "f.txt", content = "x\n" }), call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]])
    for e = 1, 4 do
      H.write(string.format("%s/epics/e%d.json", dir, e), string.format([[
{ "id": "E%d", "name": "Epic %d", "issues": [
  { "id": "E%d-1", "summary": "One", "seat": "senior_developer" },
  { "id": "E%d-2", "summary": "Two", "seat": "senior_developer" } ] }
]], e, e, e, e))
    end
    require("tests.backends").project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local key = H.api_key(dir, "ops", "operator")
    -- a key may make 4 requests at once, then 2 a second: the page meets 429s
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "key_rate=2,key_burst=4" } })
    with_browser(s, function(wd)
      sign_in(wd, s, key, "E1-1")
      local before = wd:js("return Object.assign({}, window.orketBoardStats)")
      assert.equal(1, before.board)
      for e = 1, 4 do
        assert.is_true(os.execute(string.format("cd %s && %s run E%d --json >>run.out 2>>run.err", H.quote(dir), H.quote(H.BIN), e)))
      end
      for e = 1, 4 do
        for i = 1, 2 do
          local id = string.format("E%d-%d", e, i)
          H.wait_for(function() return (badge(wd, id) or {})[1] == "done" end, id .. " done in the page", 20000)
        end
        H.wait_for(function() return (badge(wd, "E" .. e) or {})[1] == "done" end, "E" .. e .. " done in the page", 20000)
      end
      local after = wd:js("return Object.assign({}, window.orketBoardStats)")
      -- no board fetched again during the run; each of the 12 cards fetched a few times at most
      assert.equal(1, after.board)
      assert.is_true(after.card >= 12 and after.card <= 12 * 6, "card fetches: " .. tostring(after.card))
      -- the rate limit was met, and each 429 was waited out: no request went out before its
      -- Retry-After (the page's requests carry on after it, as the board shows)
      assert.is_true(after.limited >= 1, "no 429 met")
      assert.equal(0, after.early, "a request went out before the Retry-After")
    end)
    -- the server saw as many board requests as the page counted, and 429s
    local log = s.log()
    local boards, limited = 0, 0
    for line in log:gmatch("[^\n]+") do
      local ok, e = pcall(cjson.decode, line)
      if ok and type(e) == "table" then
        if e.route == "/v1/board" and e.method == "GET" then boards = boards + 1 end
        if e.status == 429 then limited = limited + 1 end
      end
    end
    assert.is_true(boards <= 2, "board requests: " .. boards)
    assert.is_true(limited >= 1)
    assert.equal(0, s.stop())
  end)
end)
