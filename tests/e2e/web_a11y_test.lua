-- The web board with the keyboard and a screen reader in a real headless Chromium
-- (tests/webdriver.lua): a live redraw keeps what is typed and what is focused (a deny
-- reason, a card's button in the tree and the columns); focus goes to a heading, not
-- <body>, when the control in use goes away (sign-in, approve, cancel); contrast of the
-- badges, the focus ring, the fields' borders and the chosen card, computed from the
-- styles as drawn; the project switcher takes a choice, not each arrow; at 320 px the
-- people table scrolls in its own box; errors are tied to their fields; "Signed out."
-- is no error; the people panel's small buttons are 24 px at least.
local F = require "tests.fixtures"
local H = require "tests.helpers"
local WD = require "tests.webdriver"

local project = require("tests.cleanup_project").make

local PASS = "correct horse battery"

-- the page's focused element, said as "id" or "[data-key]", and where it is
local FOCUSED = [[var e = document.activeElement;
  if (!e || e === document.body) return "BODY";
  return (e.id ? "#" + e.id : "[" + (e.dataset.key || e.tagName) + "]") +
    (e.closest('#columns') ? " in columns" : e.closest('#tree') ? " in tree" : "");]]

local function focused(wd) return wd:js(FOCUSED) end

-- contrast(a, b) in the page: WCAG 2's ratio of two computed colours ("rgb(r, g, b)")
local CONTRAST = [[
  function lum(c) {
    const v = c.match(/[\d.]+/g).slice(0, 3).map(Number).map((x) => x / 255)
      .map((x) => (x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4)));
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
  }
  function ratio(a, b) { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); }
]]

local function ratio(wd, script, ...)
  return wd:js(CONTRAST .. script, ...)
end

describe("the web board with the keyboard and a screen reader in Chromium", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("keeps typed text and focus through live redraws and moves focus to a heading when its control goes", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    assert.equal(3, H.orket("run CLEAN --json", { cwd = dir }).status)
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir, F.ROOMY)
    local _, x = H.api(s, "POST", "/v1/cards", key, { parent = "CLEAN", summary = "To cancel" })
    local _, y = H.api(s, "POST", "/v1/cards", key, { parent = "CLEAN", summary = "Stays focused" })
    local _, z = H.api(s, "POST", "/v1/cards", key, { parent = "CLEAN", summary = "Moved elsewhere" })
    local X, Y, Z = x.card.id, y.card.id, z.card.id
    local n = 0
    -- comment(id): someone else comments on the card; returns once the pane shows it
    local function comment(wd, id)
      n = n + 1
      local body = "another operator comments " .. n
      assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. id .. "/comments", key, { body = body })))
      H.wait_for(function() return (wd:text_of("#comments") or ""):find(body, 1, true) end, "the comment in the pane", 3000)
    end
    WD.with({ width = 1280, height = 1000 }, function(wd)
      -- the sign-in form: focus starts in its first field; an empty form is said in people's
      -- words, tied to the field
      wd:go(s.url .. "/")
      wd:wait("#user", "the sign-in form")
      H.wait_for(function() return focused(wd) == "#user" end, "the name field focused", 3000)
      wd:press("#signin-button")
      H.wait_for(function() return wd:text_of("#signin-error") ~= "" end, "the empty sign-in's error", 3000)
      assert.equal("Enter your name and password, or an API key.", wd:text_of("#signin-error"))
      assert.same({ "true", "signin-error" }, wd:js([[var u = document.getElementById('user');
        return [u.getAttribute('aria-invalid'), u.getAttribute('aria-describedby')];]]))
      -- a wrong key: the key field is the one said invalid
      wd:type(wd:find("#key"), "ork_nope")
      wd:press("#signin-button")
      H.wait_for(function() return wd:js("return document.getElementById('key').getAttribute('aria-invalid')") == "true" end,
        "the key marked invalid", 3000)
      assert.is_false(wd:js("return document.getElementById('user').hasAttribute('aria-invalid')"))
      -- signed in: focus on the board's heading, not <body>
      wd:js("document.getElementById('key').value = ''")
      wd:type(wd:find("#key"), key)
      wd:press("#signin-button")
      wd:wait('#tree li[data-card="CLEAN-1"]', "the board")
      H.wait_for(function() return focused(wd) == "#board-title" end, "focus on the board's heading", 3000)
      H.wait_for(function() return wd:text_of("#live") == "live" end, "the event stream", 3000)

      -- contrast, from the styles as drawn: badges 4.5:1, the ring, a field's border and the
      -- chosen card's border 3:1 against what they sit on
      H.wait_for(function() return wd:js([[var b = document.querySelector('#tree li[data-card="CLEAN-1"] > .status');
        return b && b.dataset.waiting === 'approval']]) end, "the approval badge", 3000)
      local badges = ratio(wd, [[
        const out = {};
        const b = document.querySelector('#tree li[data-card="CLEAN-1"] > .status');
        out.approval = ratio(getComputedStyle(b).color, getComputedStyle(b).backgroundColor);
        for (const cls of ["status st-done", "status sb-healthy", "status st-blocked"]) {
          const s = document.createElement("span");
          s.className = cls; s.textContent = "x";
          document.getElementById("board-empty").before(s);
          out[cls] = ratio(getComputedStyle(s).color, getComputedStyle(s).backgroundColor);
          s.remove();
        }
        return out;]])
      for what, r in pairs(badges) do assert.is_true(r >= 4.5, what .. "'s contrast " .. r) end
      wd:press('#tree li[data-card="CLEAN-1"] > .card-link')
      wd:wait("#approvals .approval input", "the held tool call")
      local lines = ratio(wd, [[
        const f = document.getElementById("run-target"), panel = getComputedStyle(f.closest(".panel")).backgroundColor;
        const page = getComputedStyle(document.body).backgroundColor;
        f.focus();
        const ring = getComputedStyle(f).outlineColor, border = getComputedStyle(f).borderTopColor;
        f.blur();
        const c = getComputedStyle(document.querySelector('#tree li[data-card="CLEAN-1"] > .card-link'));
        return { ring_on_panel: ratio(ring, panel), ring_on_page: ratio(ring, page), border: ratio(border, panel),
          chosen_on_panel: ratio(c.borderTopColor, panel), chosen_on_its_own: ratio(c.borderTopColor, c.backgroundColor) };]])
      for what, r in pairs(lines) do assert.is_true(r >= 3, what .. "'s contrast " .. r) end

      -- a deny reason being typed survives a comment made elsewhere: its text, its focus and
      -- its selection
      local input = wd:find("#approvals .approval input")
      local input_id = wd:js("return document.querySelector('#approvals .approval input').id")
      wd:type(input, "typing a long reason")
      wd:js("document.querySelector('#approvals .approval input').setSelectionRange(2, 6)")
      comment(wd, "CLEAN-1")
      assert.equal("#" .. input_id, focused(wd))
      assert.same({ "typing a long reason", 2, 6 }, wd:js([[var e = document.activeElement;
        return [e.value, e.selectionStart, e.selectionEnd];]]))
      -- a blank reason is refused beside the field, which says so; that too survives
      wd:js("document.activeElement.value = ''")
      wd:press("#approvals .approval button.deny")
      local err = "#" .. input_id:gsub("reason", "error")
      H.wait_for(function() return wd:text_of(err) == "Say why to deny it." end, "the blank reason's error", 3000)
      comment(wd, "CLEAN-1")
      assert.same({ "Say why to deny it.", "true", err:sub(2) }, wd:js([[var e = document.getElementById(arguments[0]);
        return [document.querySelector(arguments[1]).textContent, e.getAttribute('aria-invalid'),
          e.getAttribute('aria-describedby')];]], input_id, err))
      -- a focused button stays focused: Approve, a run's transcript
      wd:js("document.querySelector('#approvals .approval button.approve').focus()")
      comment(wd, "CLEAN-1")
      assert.matches("^%[approve:", focused(wd))
      wd:js("document.querySelector('#history li.runs button').focus()")
      comment(wd, "CLEAN-1")
      assert.matches("^%[transcript:", focused(wd))
      -- Approve: its box goes away, focus goes to the pane's heading
      wd:press("#approvals .approval button.approve")
      H.wait_for(function() return not wd:find("#approvals .approval") end, "the approval to leave the page", 3000)
      H.wait_for(function() return focused(wd) == "#detail-title" end, "focus on the pane's heading after Approve", 3000)

      -- Cancel: its form is hidden once the card is canceled; focus on the heading
      wd:press('#tree li[data-card="' .. X .. '"] > .card-link')
      H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == X end, "X's pane", 3000)
      wd:press("#actions > summary")
      wd:type(wd:find("#cancel-reason"), "not needed")
      wd:press("#cancel-button")
      H.wait_for(function() return wd:js("return document.getElementById('cancel-form').hidden") end, "the card canceled", 3000)
      H.wait_for(function() return focused(wd) == "#detail-title" end, "focus on the pane's heading after Cancel", 3000)

      -- the columns: a card's button stays focused when another card moves
      wd:press("#view-columns")
      wd:wait('#columns li[data-card="' .. Y .. '"] > .card-link', "Y in the columns")
      wd:js("document.querySelector('#columns li[data-card=\"' + arguments[0] + '\"] > .card-link').focus()", Y)
      assert.equal("[card:" .. Y .. "] in columns", focused(wd))
      assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. Z .. "/move", key, { to = "blocked", reason = "resource" })))
      wd:wait('#columns [data-column="waiting"] li[data-card="' .. Z .. '"]', "Z moved in the columns")
      assert.equal("[card:" .. Y .. "] in columns", focused(wd))
      -- the tree: the same when a card is made elsewhere (the tree drawn anew)
      wd:press("#view-tree")
      wd:js("document.querySelector('#tree li[data-card=\"' + arguments[0] + '\"] > .card-link').focus()", Y)
      local _, w = H.api(s, "POST", "/v1/cards", key, { parent = "CLEAN", summary = "Made elsewhere" })
      wd:wait('#tree li[data-card="' .. w.card.id .. '"]', "the new card in the tree")
      assert.equal("[card:" .. Y .. "] in tree", focused(wd))

      -- signing out is said, not as an error; focus in the form's first field
      wd:press("#signout")
      wd:wait("#user", "the sign-in form again")
      H.wait_for(function() return wd:text_of("#signin-status") == "Signed out." end, "the sign-out said", 3000)
      assert.equal("", wd:text_of("#signin-error"))
      assert.is_false(wd:js("return document.getElementById('signin-status').matches('.error, [role=alert]')"))
      assert.equal("#user", focused(wd))
    end)
  end)

  it("switches project on a choice, not on each arrow, and keeps the page in 320 px with the people table", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = H.example("webapp")
    local other = H.example("notes")
    local function ok(r, what) assert(r.status == 0, what .. " failed: " .. tostring(r.stderr)); return r end
    ok(H.orket("projects add " .. other .. " --name notes", { cwd = dir }), "projects add")
    ok(H.orket("users add alice --role admin --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    ok(H.orket("projects grant notes alice developer", { cwd = dir }), "grant")
    local s = H.serve(dir, F.ROOMY)
    WD.with({ width = 1280, height = 900 }, function(wd)
      wd:go(s.url .. "/")
      wd:type(wd:wait("#user", "the sign-in form"), "alice")
      wd:type(wd:find("#password"), PASS)
      wd:press("#signin-button")
      wd:wait('#tree li[data-card="API-2"]', "alice's default board")
      wd:wait("#project-box", "the project switcher")
      -- keys(...): key presses sent to what has focus
      local function keys(...)
        local acts = {}
        for _, k in ipairs { ... } do
          acts[#acts + 1] = { type = "keyDown", value = k }
          acts[#acts + 1] = { type = "keyUp", value = k }
        end
        wd:call("POST", "/actions", { actions = { { type = "key", id = "keyboard", actions = acts } } })
      end
      wd:js("document.getElementById('project').focus()")
      keys("\u{E015}") -- ArrowDown, the list closed
      H.wait_for(function() return wd:js("return document.getElementById('project').value") == "notes" end,
        "the choice moved by the arrow", 3000)
      orket.sleep(500)
      assert.equal("", wd:js("return location.hash"))
      assert.is_truthy(wd:find('#tree li[data-card="API-2"]'))
      -- Enter takes the choice
      keys("\u{E007}")
      wd:wait('#tree li[data-card="NOTES-1"]', "the notes project's board")
      assert.equal("#project=notes", wd:js("return location.hash"))
      -- an arrow back, then leaving the select: the project shown stays, and so does the
      -- select's choice; the Switch button takes a choice
      wd:js("document.getElementById('project').focus()")
      keys("\u{E013}") -- ArrowUp
      H.wait_for(function() return wd:js("return document.getElementById('project').value") == "default" end,
        "the choice moved back", 3000)
      wd:js("document.getElementById('brand-name').closest('h1').setAttribute('tabindex', '-1'); "
        .. "document.getElementById('brand-name').closest('h1').focus()")
      assert.equal("notes", wd:js("return document.getElementById('project').value"))
      assert.is_truthy(wd:find('#tree li[data-card="NOTES-1"]'))
      wd:js("document.getElementById('project').value = 'default'")
      wd:press("#project-switch")
      wd:wait('#tree li[data-card="API-2"]', "the default board, by Switch")

      -- the people panel: its small buttons 24 px at least each way
      wd:wait('#people-list tr[data-person="alice"] button.link', "the people panel")
      local small = wd:js([[return [...document.querySelectorAll('#people button.link')].map((b) => {
        const r = b.getBoundingClientRect(); return Math.min(r.width, r.height); })]])
      assert.is_true(#small > 0)
      for _, v in ipairs(small) do assert.is_true(v >= 24, "a button of " .. v .. " px") end
      -- 320 px (1280 at 400%): the page does not scroll sideways; the table scrolls in its box
      wd:call("POST", "/goog/cdp/execute", { cmd = "Emulation.setDeviceMetricsOverride",
        params = { width = 320, height = 800, deviceScaleFactor = 1, mobile = false } })
      H.wait_for(function() return wd:js("return document.documentElement.clientWidth") <= 320 end, "the narrow page", 3000)
      local w = wd:js([[var d = document.documentElement; return [d.scrollWidth, d.clientWidth];]])
      assert.is_true(w[1] <= w[2], "the page scrolls sideways: " .. w[1] .. " > " .. w[2])
    end)
  end)
end)
