-- The web board in a real headless Chromium (tests/webdriver.lua): moves one after another
-- (the wait reason does not stay) with refusals shown where one looks, titles that wrap
-- between words on a phone, the "new card" form, the policy violations, a card's change
-- (files, diff, commits) and the board by status columns, live.
local H = require "tests.helpers"
local uv = require "luv"
local WD = require "tests.webdriver"
local project = require("tests.changes_project").make

local browser -- { wd =, art = } | nil: one Chromium for the file's tests

local function stop_browser(keep)
  if not browser then return end
  browser.wd:stop()
  if not keep then os.execute("rm -rf " .. H.quote(browser.art)) end
  browser = nil
end

-- with_browser(w, h, fn(wd)): Chromium at that size for fn; when fn fails the browser is
-- stopped and its artifacts kept (the next test starts another)
local function with_browser(w, h, fn)
  if not browser then
    local art = WD.artifacts()
    browser = { wd = WD.start(art, { width = w, height = h }), art = art }
  else
    browser.wd:resize(w, h)
  end
  local ok, err = pcall(fn, browser.wd)
  if not ok then
    local art = browser.art
    pcall(browser.wd.screenshot, browser.wd, art .. "/failed.png")
    stop_browser(true)
    error(tostring(err) .. "\n(screenshots and the browser's logs are in " .. art .. ")", 0)
  end
end

local function sign_in(wd, s, key)
  wd:sign_in(s.url, key)
  wd:wait('#tree li[data-card="CHG-1"]', "the board's tree")
  H.wait_for(function() return wd:js("return document.getElementById('live').textContent") == "live" end,
    "the event stream to open", 3000)
end

local function show(wd, id)
  wd:press('#tree li[data-card="' .. id .. '"] > .card-link')
  H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == id end,
    id .. "'s pane", 3000)
end

-- Whether the element's box is inside the window (what the person sees without scrolling)
local function in_view(wd, css)
  return wd:js([[var e = document.querySelector(arguments[0]); if (!e || e.offsetParent === null) return false;
    var r = e.getBoundingClientRect(); return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;]], css)
end

describe("the web board in Chromium", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)
  teardown(function() stop_browser() end)

  it("on a phone: moves one after another, refusals in view, titles wrapped between words", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local title = "Internationalize configuration subsystem notifications everywhere"
    local _, x = H.api(s, "POST", "/v1/cards", key, { parent = "CHG", summary = title })
    local X = x.card.id
    local function status(id) return select(2, H.api(s, "GET", "/v1/cards/" .. id, key)).card.status end
    with_browser(390, 800, function(wd)
      sign_in(wd, s, key)
      wd:wait('#tree li[data-card="' .. X .. '"]', "the new card in the tree")
      -- On a phone the card pane is under the board, and the sign-in's later loads still
      -- change the board's height: the violations' labels in the tree come 200 ms after it
      -- is drawn, a line more under CHG-1. A click in the pane meanwhile could land where
      -- its target was a moment before (chromedriver clicks a point): the actions' summary
      -- moved 25 px down while it was clicked, the form stayed closed, and the move's wait
      -- timed out (seen under the sanitizer build, whose slower answers land later). The
      -- label shown, nothing above the pane moves until the test's own moves.
      wd:wait('#tree li[data-card="CHG-1"] > .violation-label', "CHG-1's violation label")
      -- no title on the board is broken inside a word: each word's text lies on one line
      local split = wd:js([[
        var out = [];
        for (const t of document.querySelectorAll('#tree .card-title')) {
          const text = t.firstChild; if (!text) continue;
          const re = /\S+/g; let m;
          while ((m = re.exec(text.data))) {
            const r = document.createRange(); r.setStart(text, m.index); r.setEnd(text, m.index + m[0].length);
            const tops = new Set([...r.getClientRects()].map((b) => Math.round(b.top)));
            if (tops.size > 1) out.push(m[0]);
          }
        }
        return out;]])
      assert.same({}, split)
      -- and the long title did wrap (the test would prove nothing on one line)
      assert.is_true(wd:js([[var t = document.querySelector('#tree li[data-card="' + arguments[0] + '"] .card-title');
        return t.getClientRects().length > 0 && t.getBoundingClientRect().height > 1.5 * parseFloat(getComputedStyle(t).lineHeight);]], X))

      show(wd, X)
      wd:press("#actions > summary")
      assert.is_true(wd:js("return document.getElementById('actions').open"), "the actions' form did not open")
      wd:press('#move-to option[value="blocked"]')
      wd:press('#move-reason option[value="resource"]')
      wd:press("#move-button")
      H.wait_for(function() return status(X) == "blocked" end, "the move to blocked", 3000)
      -- the reason went with that move only: the next move, to ready, carries none
      H.wait_for(function() return wd:js("return document.getElementById('move-reason').value") == "" end,
        "the wait reason cleared", 3000)
      H.wait_for(function() return not wd:find('#move-to option[value="blocked"]') end, "the form for blocked", 3000)
      wd:press('#move-to option[value="ready"]')
      wd:press("#move-button")
      H.wait_for(function()
        local shown = wd:text_of("#move-error")
        if shown and shown ~= "" then error("the move to ready was refused: " .. shown, 0) end
        return status(X) == "ready"
      end, "the move to ready", 3000)
      -- a refused move (blocked needs a reason) says why next to the button, in view
      H.wait_for(function() return not wd:find('#move-to option[value="ready"]') end, "the form for ready", 3000)
      wd:js("window.scrollTo(0, 0)")
      wd:press('#move-to option[value="blocked"]')
      wd:press("#move-button")
      H.wait_for(function() return (wd:text_of("#move-error") or "") ~= "" end, "the refusal", 3000)
      assert.matches("reason", wd:text_of("#move-error"))
      H.wait_for(function() return in_view(wd, "#move-error") end, "the refusal in view", 3000)
      assert.equal("ready", status(X))
    end)
    assert.equal(0, s.stop())
  end)

  it("creates a card, lists violations, shows a card's change and the board by status, live", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    with_browser(1280, 1000, function(wd)
      sign_in(wd, s, key)
      -- a new card, from the form under the board
      wd:press("#create-box > summary")
      wd:press('#create-parent option[value="CHG"]')
      wd:type(wd:find("#create-summary"), "Made in the browser")
      wd:press('#create-priority option[value="High"]')
      wd:press("#create-button")
      local made
      H.wait_for(function()
        local _, b = H.api(s, "GET", "/v1/board", key)
        for _, c in ipairs(b.cards) do if c.summary == "Made in the browser" then made = c end end
        return made
      end, "the card created", 3000)
      assert.equal("CHG", made.parent)
      assert.equal("ready", made.status)
      H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == made.id end,
        "the new card's pane", 3000)
      assert.matches(made.id .. " created", wd:text_of("#create-status"), 1, true)
      wd:wait('#tree li[data-card="' .. made.id .. '"]', "the new card in the tree")
      -- an operator is no server admin: the people are not asked for (a 403 in the console
      -- at every sign-in)
      assert.equal(0, wd:js("return window.orketBoardStats.users"))
      assert.is_true(wd:js("return document.getElementById('people').hidden"))
      -- its priority as the form named it, not the number the API holds (3)
      assert.matches("Priority%s*high", wd:text_of("#fields"))
      -- a description past the limit is said, its text kept (the field's maxlength cut a paste
      -- to 65,536 characters without a word); in characters, as the server counts
      wd:press('#create-parent option[value="CHG"]')
      wd:type(wd:find("#create-summary"), "Too long")
      wd:js([[document.getElementById("create-description").value = "\u{1F680}".repeat(65537)]])
      wd:press("#create-button")
      H.wait_for(function() return (wd:text_of("#create-status") or ""):find("65537 characters", 1, true) end,
        "the refusal", 3000)
      assert.equal("The description is 65537 characters long; a card's takes at most 65536.", wd:text_of("#create-status"))
      assert.equal(131074, wd:js([[return document.getElementById("create-description").value.length]]))
      wd:js([[document.getElementById("create-description").value = ""]])

      -- the violations panel: the refused write, and its card one click away
      wd:wait('#violation-list li.violation', "a violation")
      local v = wd:text_of("#violation-list li.violation")
      assert.matches("PATH_PROTECTED", v)
      assert.matches("protected path: .git/config", v, 1, true)
      assert.matches("PATH_PROTECTED · 1", wd:text_of("#violation-rules"), 1, true)
      -- and a label on the card, in the tree (none on a card without violations)
      wd:wait('#tree li[data-card="CHG-1"] > .violation-label', "CHG-1's violation label")
      assert.equal("1 violation", wd:text_of('#tree li[data-card="CHG-1"] > .violation-label'))
      assert.equal("", wd:text_of('#tree li[data-card="CHG-2"] > .violation-label')) -- there, hidden
      wd:press("#violation-list li.violation button.violation-card")
      H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == "CHG-1" end,
        "CHG-1's pane from the violation", 3000)

      -- what CHG-1's model calls used (docs/cost.md): tokens by kind; no cost without a price
      local fields = wd:text_of("#fields")
      assert.matches("Model use", fields, 1, true)
      assert.matches("%d+ calls?, %d+ prompt tokens, %d+ output tokens", fields)
      assert.is_nil(fields:find("cost", 1, true))
      -- and by seat, the coder's and the reviewer's (as orket card's lines under its model line)
      local seats = wd:js("return Array.from(document.querySelectorAll('#fields ul.by-seat li'), "
        .. "function (e) { return e.textContent; })")
      assert.equal(2, #seats, fields)
      -- (the scripted provider sends no counts: they are estimated, and said so)
      assert.matches("^integrity_guard: 1 call, %d+ prompt tokens, %d+ output tokens %(estimated%)$", seats[1])
      assert.matches("^senior_developer: %d+ calls?, %d+ prompt tokens, %d+ output tokens %(estimated%)$", seats[2])

      -- CHG-1's change: its files against main, the binary one named, the diff, the commit
      wd:wait('#change-files li[data-path="notes.txt"]', "the change's files")
      assert.matches("added", wd:text_of('#change-files li[data-path="notes.txt"]'))
      assert.matches("+2", wd:text_of('#change-files li[data-path="notes.txt"]'), 1, true)
      assert.matches("binary: not shown", wd:text_of('#change-files li[data-path="data.bin"]'), 1, true)
      assert.matches("\n%+hello\n%+world", wd:js("return document.getElementById('change-diff').textContent"))
      local _, diff = H.api(s, "GET", "/v1/cards/CHG-1/diff", key)
      assert.matches("^" .. diff.tip:sub(1, 12) .. " turn 1 · run 1", wd:text_of("#change-commits li"))
      assert.matches("2 files changed against main", wd:text_of("#change-summary"))

      -- by status: each issue in its column; a move made elsewhere moves it here
      wd:press("#view-columns")
      wd:wait('#columns [data-column="done"] li[data-card="CHG-1"]', "CHG-1 in done")
      wd:wait('#columns [data-column="waiting"] li[data-card="CHG-2"]', "CHG-2 in blocked or waiting")
      wd:wait('#columns li[data-card="CHG-1"] > .violation-label', "the label in the columns too")
      wd:wait('#columns [data-column="ready"] li[data-card="' .. made.id .. '"]', "the new card in ready")
      assert.is_false(wd:js("return !!document.querySelector('#columns li[data-card=\"CHG\"]')")) -- issues only
      assert.is_true(wd:js("return document.getElementById('tree').hidden"))
      local boards = wd:js("return window.orketBoardStats.board")
      assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. made.id .. "/move", key, { to = "in_progress" })))
      wd:wait('#columns [data-column="in_progress"] li[data-card="' .. made.id .. '"]', "the moved card in progress")
      assert.is_nil(wd:find('#columns [data-column="ready"] li[data-card="' .. made.id .. '"]'))
      assert.equal(boards, wd:js("return window.orketBoardStats.board")) -- the card alone was fetched
      -- the choice is kept across a reload
      wd:go(s.url .. "/")
      wd:wait('#columns [data-column="done"] li[data-card="CHG-1"]', "the columns after a reload")
      wd:press("#view-tree")
      wd:wait('#tree li[data-card="CHG-1"]', "the tree again")
    end)
    assert.equal(0, s.stop())
  end)

  -- A board of 1,000 cards, 30 of them waiting on a question and one on a held tool call:
  -- the page draws them all and tells which waits on a held call from the board itself
  -- (its `held`), fetching no waiting card's document (one after another, 400 took 5.7 s
  -- at each sign-in and reload, and held the live events back until they were done).
  it("a large board: 1,000 cards drawn, the held ones known from the board, no waiting card fetched", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local issues = {}
    for i = 1, 1000 do issues[i] = string.format('{ "id": "BIG-%d", "summary": "Card %d" }', i, i) end
    H.write(dir .. "/epics/big.json", '{ "id": "BIG", "name": "Big", "issues": [' .. table.concat(issues, ",") .. "] }")
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    for i = 1, 30 do
      local id = "BIG-" .. i
      assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. id .. "/move", key, { to = "in_progress" })))
      assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. id .. "/move", key, { to = "waiting_for_developer", reason = "input" })))
    end
    -- BIG-7 waits on a tool call held for a decision (as the gate holds one)
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:run("INSERT INTO approvals (card_id, tool, arguments, digest, requested_at) VALUES (?, ?, ?, ?, ?)",
      "BIG-7", "delete_file", '{"path":"old.txt"}', "d", "2026-01-01T00:00:00Z"))
    db:close()
    with_browser(1280, 1000, function(wd)
      sign_in(wd, s, key)
      wd:wait('#tree li[data-card="BIG-1000"]', "the last card in the tree")
      assert.equal(1004, wd:js("return document.querySelectorAll('#tree li.card').length"))
      wd:wait('#tree li[data-card="BIG-7"] > .status[data-waiting="approval"]', "BIG-7 waiting for approval")
      assert.equal("waiting for approval", wd:text_of('#tree li[data-card="BIG-7"] > .status'))
      assert.equal("waiting for developer (input)", wd:text_of('#tree li[data-card="BIG-8"] > .status'))
      -- a move made now is shown at once (no waiting card's fetch before it)
      assert.equal(200, (H.api(s, "POST", "/v1/cards/BIG-40/move", key, { to = "in_progress" })))
      wd:wait('#tree li[data-card="BIG-40"] > .status[data-status="in_progress"]', "BIG-40's move")
      local cards, boards = wd:js("return window.orketBoardStats.card"), wd:js("return window.orketBoardStats.board")
      assert.is_true(cards <= 1, "cards fetched at sign-in: " .. tostring(cards)) -- (BIG-40's own, at most)
      -- a new card: the board again (its card is not known), no waiting card's document
      local _, x = H.api(s, "POST", "/v1/cards", key, { parent = "BIG", summary = "One more" })
      wd:wait('#tree li[data-card="' .. x.card.id .. '"]', "the new card in the tree")
      os.execute("sleep 1")
      assert.equal(boards + 1, wd:js("return window.orketBoardStats.board"))
      assert.equal(cards, wd:js("return window.orketBoardStats.card"))
      assert.equal("waiting for approval", wd:text_of('#tree li[data-card="BIG-7"] > .status'))
      -- a card that waits anew is shown so from its events
      assert.equal(200, (H.api(s, "POST", "/v1/cards/BIG-31/move", key, { to = "in_progress" })))
      assert.equal(200, (H.api(s, "POST", "/v1/cards/BIG-31/move", key, { to = "waiting_for_developer", reason = "input" })))
      wd:wait('#tree li[data-card="BIG-31"] > .status[data-status="waiting_for_developer"]', "BIG-31 waiting")
      assert.equal(0, wd:js("return window.orketBoardStats.limited"))
    end)
    assert.equal(0, s.stop())
  end)

  -- quiet_port() -> a loopback port free now, below the kernel's ephemeral range: no
  -- server started on port 0 nor outgoing connection is given it, so a server stopped under
  -- an open page can come back on it without another test taking it meanwhile
  local function quiet_port()
    local f = io.open("/proc/sys/net/ipv4/ip_local_port_range")
    local lo = tonumber(f and f:read("l"):match("^%s*(%d+)") or "") or 32768
    if f then f:close() end
    for _ = 1, 100 do
      local port = math.random(math.max(1024, lo - 12000), lo - 1)
      local t = uv.new_tcp()
      local ok = t:bind("127.0.0.1", port) and t:listen(1, function() end) -- (libuv may say EADDRINUSE at listen)
      t:close()
      if ok then return port end
    end
    error("no free port below " .. lo)
  end

  -- The server restarted under an open page: the stream comes back by itself, with
  -- Last-Event-ID, and what was written meanwhile reaches the page as events (no board
  -- fetched again); the session cookie still holds.
  it("follows the journal across a restart of the server, with Last-Event-ID", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local listen = "127.0.0.1:" .. quiet_port()
    local s = H.serve(dir, { listen = listen })
    with_browser(1280, 1000, function(wd)
      sign_in(wd, s, key)
      wd:wait('#tree li[data-card="CHG-2"] > .status[data-status="blocked"]', "CHG-2 blocked")
      local boards = wd:js("return window.orketBoardStats.board")
      -- a quiet board: the page was given no event, so its stream had no id of its own yet
      assert.equal(0, wd:js("return window.orketBoardStats.events"))
      assert.equal(0, s.stop())
      H.wait_for(function() return wd:text_of("#live") ~= "live" end, "the page to see the stream gone", 5000)
      assert.equal(0, H.orket('cancel CHG-2 "not needed"', { cwd = dir }).status)
      s = H.serve(dir, { listen = listen })
      H.wait_for(function() return wd:text_of("#live") == "live" end, "the stream back", 10000)
      wd:wait('#tree li[data-card="CHG-2"] > .status[data-status="canceled"]', "the cancel made while it was down")
      assert.equal(boards, wd:js("return window.orketBoardStats.board"))
      -- and the page still writes (the session and its CSRF token outlive the restart)
      wd:press('#tree li[data-card="CHG-1"] > .card-link')
      wd:press("#actions > summary")
      wd:type(wd:find("#comment-text"), "after the restart")
      wd:press("#comment-button")
      wd:wait("#comments li", "the comment")
      H.wait_for(function() return (wd:text_of("#comments") or ""):find("after the restart", 1, true) end, "the comment shown", 3000)
    end)
    assert.equal(0, s.stop())
  end)

  -- The page's own stream was refused and closed, so the page opens one anew: it opens it
  -- after the last journal id it holds, and what was written meanwhile reaches it as the
  -- replayed events (the changed card fetched alone, no board read again). Screen readers
  -- hear the move as one short status line; the card pane is no live region.
  it("opens its stream anew after the last id it holds, fetching only what changed, and announces a move", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    with_browser(1280, 1000, function(wd)
      wd:go(s.url .. "/")
      wd:wait("#key", "the sign-in form")
      -- the page's streams kept where the test can reach them, to close one as a refusal does
      wd:js([[var E = window.EventSource; window.orketTestStreams = [];
        var W = function (u, o) { var es = new E(u, o); window.orketTestStreams.push(es); return es; };
        W.CONNECTING = E.CONNECTING; W.OPEN = E.OPEN; W.CLOSED = E.CLOSED; window.EventSource = W;]])
      wd:type(wd:find("#key"), key)
      wd:press("#signin-button")
      wd:wait('#tree li[data-card="CHG-2"] > .status[data-status="blocked"]', "CHG-2 blocked")
      H.wait_for(function() return wd:text_of("#live") == "live" end, "the event stream to open", 3000)
      local boards = wd:js("return window.orketBoardStats.board")
      local cards = wd:js("return window.orketBoardStats.card")
      assert.equal(1, wd:js("return window.orketTestStreams.length"))
      -- what the status line says, each line kept
      wd:js([[window.orketTestSaid = []; var a = document.getElementById('announce');
        new MutationObserver(function () { window.orketTestSaid.push(a.textContent); })
          .observe(a, { childList: true, characterData: true, subtree: true });]])
      -- the stream closed first, the cancel journaled while it is closed, then the refusal
      -- reported: only a replay can bring the cancel to the page
      local _, before = H.api(s, "GET", "/v1/board", key)
      wd:js("window.orketTestStreams[0].close();")
      assert.equal(0, H.orket('cancel CHG-2 "not needed"', { cwd = dir }).status)
      H.wait_for(function() local _, b = H.api(s, "GET", "/v1/board", key); return b.journal_id > before.journal_id end,
        "the cancel journaled", 1000)
      wd:js("var es = window.orketTestStreams[0]; es.onerror(new Event('error'));")
      H.wait_for(function() return wd:js("return window.orketTestStreams.length") == 2 end, "the stream made anew", 10000)
      -- after the id the page held when its stream closed, not from the journal's start
      -- (and the board's store: ?store=, after it)
      assert.equal(string.format("?after=%d", before.journal_id), wd:js("return window.orketTestStreams[1].url"):match("%?after=%d+"))
      assert.matches("%?after=%d+&store=%x+$", wd:js("return window.orketTestStreams[1].url"))
      wd:wait('#tree li[data-card="CHG-2"] > .status[data-status="canceled"]', "the cancel made while it was closed")
      assert.equal("live", wd:text_of("#live"))
      assert.equal(boards, wd:js("return window.orketBoardStats.board"))
      assert.is_true(wd:js("return window.orketBoardStats.card") > cards)
      -- the move said once in the status line (the cancel may move the epic too: then as a count)
      H.wait_for(function() return wd:js("return window.orketTestSaid.length") >= 1 end, "the move announced", 3000)
      os.execute("sleep 1.5") -- (no second line comes for the same burst)
      local said = wd:js("return window.orketTestSaid")
      assert.equal(1, #said)
      assert.truthy(said[1] == "CHG-2 moved to canceled" or said[1] == "2 cards moved", said[1])
      -- a polite status, rendered (not hidden) but clipped to nothing seen
      assert.equal("polite", wd:js("return document.getElementById('announce').getAttribute('aria-live')"))
      assert.is_true(wd:js([[var a = document.getElementById('announce');
        return a.getClientRects().length > 0 && a.getBoundingClientRect().width <= 1;]]))
      -- no live region holds the card pane
      assert.is_true(wd:js("return document.getElementById('detail-body') !== null"))
      assert.is_false(wd:js([[for (var e = document.getElementById('detail-body'); e; e = e.parentElement)
        if (e.hasAttribute('aria-live') || /^(status|log|alert)$/.test(e.getAttribute('role') || '')) return true;
        return false;]]))
      -- signed out, the line is not left for the next person
      wd:press("#signout")
      wd:wait("#key", "the sign-in form")
      assert.equal("", wd:js("return document.getElementById('announce').textContent"))
    end)
    assert.equal(0, s.stop())
  end)

  -- Many cards changed while the stream was closed: past the catch-up cap the page reads the
  -- board once rather than each card (which at the key's rate would take seconds and meet
  -- 429s), and the moves are said as one line.
  it("catches up on more than 50 changed cards with one board read, said once", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local issues = {}
    for i = 1, 60 do issues[i] = string.format('{ "id": "BIG-%d", "summary": "Card %d" }', i, i) end
    H.write(dir .. "/epics/big.json", '{ "id": "BIG", "name": "Big", "issues": [' .. table.concat(issues, ",") .. "] }")
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    with_browser(1280, 1000, function(wd)
      wd:go(s.url .. "/")
      wd:wait("#key", "the sign-in form")
      wd:js([[var E = window.EventSource; window.orketTestStreams = [];
        var W = function (u, o) { var es = new E(u, o); window.orketTestStreams.push(es); return es; };
        W.CONNECTING = E.CONNECTING; W.OPEN = E.OPEN; W.CLOSED = E.CLOSED; window.EventSource = W;]])
      wd:type(wd:find("#key"), key)
      wd:press("#signin-button")
      wd:wait('#tree li[data-card="BIG-60"]', "the last card in the tree")
      H.wait_for(function() return wd:text_of("#live") == "live" end, "the event stream to open", 3000)
      local boards = wd:js("return window.orketBoardStats.board")
      local cards = wd:js("return window.orketBoardStats.card")
      wd:js([[window.orketTestSaid = []; var a = document.getElementById('announce');
        new MutationObserver(function () { window.orketTestSaid.push(a.textContent); })
          .observe(a, { childList: true, characterData: true, subtree: true });]])
      wd:js("window.orketTestStreams[0].close();")
      assert.is_true(os.execute("cd " .. H.quote(dir) .. " && for i in $(seq 1 60); do " .. H.quote(H.BIN)
        .. ' cancel BIG-$i "not needed" >/dev/null 2>&1 || exit 1; done'))
      wd:js("var es = window.orketTestStreams[0]; es.onerror(new Event('error'));")
      wd:wait('#tree li[data-card="BIG-60"] > .status[data-status="canceled"]', "the last cancel")
      H.wait_for(function() return wd:js("return window.orketTestSaid.length") >= 1 end, "the moves announced", 3000)
      os.execute("sleep 1.5")
      assert.equal(2, wd:js("return window.orketTestStreams.length"))
      for i = 1, 60 do
        assert.equal("canceled", wd:js("return document.querySelector('#tree li[data-card=\"BIG-" .. i
          .. "\"] > .status').dataset.status"))
      end
      assert.equal(boards + 1, wd:js("return window.orketBoardStats.board"))
      assert.equal(cards, wd:js("return window.orketBoardStats.card"))
      assert.equal(0, wd:js("return window.orketBoardStats.limited"))
      local said = wd:js("return window.orketTestSaid")
      assert.equal(1, #said)
      assert.truthy(said[1]:match("^%d+ cards moved$"), said[1])
      assert.is_true(tonumber(said[1]:match("^%d+")) >= 60)
    end)
    assert.equal(0, s.stop())
  end)

  -- The server came back on a store restored from a backup: the page's journal id is past
  -- this journal's end. The stream says so (event reset), the page reads the board again, and
  -- follows this journal from its end (its events reach the page).
  it("reads the board again when the journal it followed is another store's (restored from a backup)", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local listen = "127.0.0.1:" .. quiet_port()
    local s = H.serve(dir, { listen = listen })
    with_browser(1280, 1000, function(wd)
      sign_in(wd, s, key)
      -- the backup: the store as it is now (the session in it), copied while the server is down
      assert.equal(0, s.stop())
      local backup = H.tmpdir() .. "/backup"
      assert.is_true(os.execute("cp -a " .. H.quote(dir) .. " " .. H.quote(backup)))
      s = H.serve(dir, { listen = listen })
      H.wait_for(function() return wd:text_of("#live") == "live" end, "the stream back", 10000)
      for i = 1, 3 do assert.equal(200, (H.api(s, "POST", "/v1/cards/CHG-1/comments", key, { body = "note " .. i }))) end
      H.wait_for(function() return wd:js("return window.orketBoardStats.events") >= 3 end, "the comments' events", 5000)
      local boards = wd:js("return window.orketBoardStats.board")
      assert.equal(0, s.stop())
      s = H.serve(backup, { listen = listen })
      H.wait_for(function() return wd:js("return window.orketBoardStats.resets") == 1 end, "the stream's reset", 10000)
      H.wait_for(function() return wd:js("return window.orketBoardStats.board") == boards + 1 end, "the board again", 5000)
      assert.equal("live", wd:text_of("#live"))
      -- and this journal's new events reach the page
      assert.equal(0, H.orket('cancel CHG-2 "not needed"', { cwd = backup }).status)
      wd:wait('#tree li[data-card="CHG-2"] > .status[data-status="canceled"]', "the cancel in the restored store")
    end)
    assert.equal(0, s.stop())
  end)

  -- The server came back on another store (a project added again from another folder) whose
  -- journal is longer than the page's id: that id means nothing there. The page gave the
  -- board's store with its stream: the server answers with a reset, the page reads the board
  -- again and follows the new store's journal (its reconnects ask for that store, no reset).
  it("reads the board again when the server's store is another, its journal however long", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local listen = "127.0.0.1:" .. quiet_port()
    local s = H.serve(dir, { listen = listen })
    with_browser(1280, 1000, function(wd)
      sign_in(wd, s, key)
      local boards = wd:js("return window.orketBoardStats.board")
      assert.equal(0, s.stop())
      -- another store holding the same key (a copy made another store: its own id) and a
      -- journal longer than the page's id
      local other = H.tmpdir() .. "/other"
      assert.is_true(os.execute("cp -a " .. H.quote(dir) .. " " .. H.quote(other)))
      assert.is_true(os.execute(H.quote(H.BIN) .. " lua -e " .. H.quote([[
        local db = assert(require("orket.store").open(arg[1] .. "/.orket/orket.db"))
        assert(db:run("UPDATE store_identity SET id = ?", "0ther5t0re"))
        db:close()]]) .. " " .. H.quote(other)))
      assert.equal(0, H.orket('cancel CHG-2 "not needed"', { cwd = other }).status)
      s = H.serve(other, { listen = listen })
      H.wait_for(function() return wd:js("return window.orketBoardStats.resets") == 1 end, "the stream's reset", 10000)
      H.wait_for(function() return wd:js("return window.orketBoardStats.board") == boards + 1 end, "the board again", 5000)
      wd:wait('#tree li[data-card="CHG-2"] > .status[data-status="canceled"]', "the other store's board")
      H.wait_for(function() return wd:text_of("#live") == "live" end, "the stream for this store", 5000)
      -- this store's new events reach the page, replayed across a restart, with no reset
      assert.equal(0, s.stop())
      s = H.serve(other, { listen = listen })
      local events = wd:js("return window.orketBoardStats.events")
      assert.equal(200, (H.api(s, "POST", "/v1/cards/CHG-1/comments", key, { body = "after the move" })))
      H.wait_for(function() return wd:js("return window.orketBoardStats.events") > events end, "the comment's event", 10000)
      assert.equal("live", wd:text_of("#live"))
      assert.equal(1, wd:js("return window.orketBoardStats.resets"))
    end)
    assert.equal(0, s.stop())
  end)

  -- A card whose fetch finds it under another parent (here moved in the store, then
  -- canceled: the cancel's event fetches it) is drawn in its new place, not left under its
  -- old epic until the board is read again.
  it("draws a card fetched again under its new parent, with no board read", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    H.write(dir .. "/epics/oth.json", [[
{ "id": "OTH", "name": "Others", "issues": [ { "id": "OTH-1", "summary": "Other", "seat": "senior_developer" } ] }
]])
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    -- a card under CHG made after OTH-1 (a second on: created_at's resolution), drawn after it
    -- in the page's list (CHG's issues come before OTH's)
    orket.sleep(1100)
    local _, later = H.api(s, "POST", "/v1/cards", key, { parent = "CHG", summary = "Later" })
    local LATER = later.card.id
    with_browser(1280, 1000, function(wd)
      sign_in(wd, s, key)
      wd:wait('#tree li[data-card="CHG"] li[data-card="CHG-2"]', "CHG-2 under CHG")
      wd:wait('#tree li[data-card="CHG"] li[data-card="' .. LATER .. '"]', "the later card under CHG")
      local boards = wd:js("return window.orketBoardStats.board")
      local db = assert(require("orket.project").open_store(dir, false))
      assert(db:run("UPDATE cards SET parent = 'OTH' WHERE id = 'CHG-2'"))
      db:close()
      assert.equal(0, H.orket('cancel CHG-2 "not needed"', { cwd = dir }).status)
      wd:wait('#tree li[data-card="OTH"] li[data-card="CHG-2"] > .status[data-status="canceled"]', "CHG-2 under OTH")
      assert.equal(0, wd:js([[return document.querySelectorAll('#tree li[data-card="CHG"] li[data-card="CHG-2"]').length]]))
      -- before OTH-1, made after it: the order the server gives siblings (by creation)
      local function kids(epic)
        return wd:js([[return [...document.querySelectorAll('#tree li[data-card="]] .. epic .. [["] > ul > li')]
          .map((li) => li.dataset.card)]])
      end
      assert.same({ "CHG-2", "OTH-1" }, kids("OTH"))
      -- OTH-1 moved under CHG: between CHG-1 and the later card (by creation), not after the
      -- later card as the page's list holds them
      db = assert(require("orket.project").open_store(dir, false))
      assert(db:run("UPDATE cards SET parent = 'CHG' WHERE id = 'OTH-1'"))
      db:close()
      assert.equal(0, H.orket('cancel OTH-1 "not needed"', { cwd = dir }).status)
      wd:wait('#tree li[data-card="CHG"] li[data-card="OTH-1"] > .status[data-status="canceled"]', "OTH-1 under CHG")
      assert.same({ "CHG-1", "OTH-1", LATER }, kids("CHG"))
      assert.same({ "CHG-2" }, kids("OTH"))
      assert.equal(boards, wd:js("return window.orketBoardStats.board"))
    end)
    assert.equal(0, s.stop())
  end)

  -- A restore journals one event and no event for the cards it put back, and gives the
  -- store a new id: the page, whose stream names the old one, is answered with a reset when
  -- it reconnects (rather than the restored journal replayed from its id) and reads the
  -- board again, once.
  it("reads the board again on a restore the stream brings", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local listen = "127.0.0.1:" .. quiet_port()
    local s = H.serve(dir, { listen = listen })
    with_browser(1280, 1000, function(wd)
      sign_in(wd, s, key)
      local file = H.tmpdir() .. "/store.backup"
      assert.equal(0, H.orket("backup " .. H.quote(file), { cwd = dir }).status)
      local boards = wd:js("return window.orketBoardStats.board")
      assert.equal(0, s.stop())
      -- (the backup is older than the audit the project signed since: taken as it is)
      local r = H.orket("restore --accept-older-audit --accept-unverified-audit " .. H.quote(file), { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      s = H.serve(dir, { listen = listen })
      H.wait_for(function() return wd:js("return window.orketBoardStats.board") == boards + 1 end, "the board again", 10000)
      assert.equal(1, wd:js("return window.orketBoardStats.resets"))
      wd:wait('#tree li[data-card="CHG-2"] > .status[data-status="blocked"]', "the board as restored")
    end)
    assert.equal(0, s.stop())
  end)

  -- Markup in what people and agents write (a title, a description, a comment, a move's
  -- note, a cancel's reason) is shown as the text it is: no element made from it, no script run.
  it("shows markup in titles, descriptions, comments and notes as text", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local bad = [[<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>]]
    local _, x = H.api(s, "POST", "/v1/cards", key, { parent = "CHG", summary = "T " .. bad, description = "D " .. bad })
    local X = x.card.id
    assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. X .. "/comments", key, { body = "C " .. bad })))
    assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. X .. "/move", key, { to = "in_progress", note = "N " .. bad })))
    assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. X .. "/cancel", key, { reason = "R " .. bad })))
    with_browser(1280, 1000, function(wd)
      sign_in(wd, s, key)
      wd:wait('#tree li[data-card="' .. X .. '"]', "the card in the tree")
      show(wd, X)
      H.wait_for(function() return (wd:text_of("#comments") or ""):find("R <img", 1, true) end, "the reason, as text", 3000)
      assert.equal("T " .. bad, wd:text_of('#tree li[data-card="' .. X .. '"] .card-title'))
      assert.matches("D " .. bad, wd:text_of("#fields"), 1, true)
      assert.matches("C " .. bad, wd:text_of("#comments"), 1, true)
      assert.matches("N " .. bad, wd:text_of("#history"), 1, true)
      assert.equal(0, wd:js("return document.querySelectorAll('#app img, #app script').length"))
      assert.is_false(wd:js("return window.pwned !== undefined"))
    end)
    assert.equal(0, s.stop())
  end)
end)
