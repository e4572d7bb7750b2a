-- The web board with a keyboard and a screen reader in a real headless Chromium
-- (tests/webdriver.lua), as read from the browser's own accessibility tree: a card's button
-- carries its status; buttons for different objects have different names (Approve request
-- #1, Resume run 1, Disable alice); one key takes a keyboard user from the chosen card to
-- its pane and back; a run's end is said, and the run status line no longer says
-- "(running)" beside a run that failed; the run and people forms mark the field an error
-- is about; the header's focus ring and text stand out on a branding accent.
local F = require "tests.fixtures"
local H = require "tests.helpers"
local WD = require "tests.webdriver"

local project = require("tests.cleanup_project").make

local PASS = "correct horse battery"
local TAB, ENTER = "\u{E004}", "\u{E007}"

local FOCUSED = [[var e = document.activeElement;
  if (!e || e === document.body) return "BODY";
  return e.id ? "#" + e.id : "[" + (e.dataset.key || e.tagName) + "]";]]

local CONTRAST = [[
  function lum(c) {
    const v = c.match(/[\d.]+/g).slice(0, 3).map(Number).map((x) => x / 255)
      .map((x) => (x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4)));
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
  }
  function ratio(a, b) { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); }
]]

describe("the web board's names, announcements and ways past the board", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses branding colours the page cannot be read with, naming the field and the ratio", function()
    local dir = project()
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
      .. '\nserve = { branding = { name = "Acme Works", colors = { accent = "#7ec8e3", text = "#999" } } }\n')
    local r = H.orket("validate", { cwd = dir })
    assert.is_not.equal(0, r.status)
    -- (the accent is checked first: the header and every button)
    assert.matches('serve.branding.colors.accent: "#7ec8e3" has 1.86:1 contrast with the white text drawn on it',
      r.stdout .. r.stderr, 1, true)
  end)

  it("names each control by what it acts on and says a run's end, in Chromium", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    assert.equal(3, H.orket("run CLEAN --json", { cwd = dir }).status)
    -- the next runs think a while each turn: the page sees them going before they end
    H.write(dir .. "/script.lua", H.read(dir .. "/script.lua"):gsub('default = { content = "Nothing more to do." }',
      'default = { content = "Nothing more to do.", delay_ms = 300 }'))
    -- a readable accent on which app.css's amber ring would be 2.4:1
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
      .. '\nserve = { branding = { name = "Acme Works", colors = { accent = "#1a73e8" } } }\n')
    local function ok(r, what) assert(r.status == 0, what .. " failed: " .. tostring(r.stderr)); return r end
    ok(H.orket("users add alice --role admin --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir, F.ROOMY)
    local _, x = H.api(s, "POST", "/v1/cards", key, { parent = "CLEAN", summary = "Slow one" })
    local _, y = H.api(s, "POST", "/v1/cards", key, { parent = "CLEAN", summary = "Slow two" })
    local X, Y = x.card.id, y.card.id
    WD.with({ width = 1280, height = 1000 }, function(wd)
      local function focused() return wd:js(FOCUSED) end
      local function keys(...)
        local acts = {}
        for _, k in ipairs { ... } do
          acts[#acts + 1] = { type = "keyDown", value = k }
          acts[#acts + 1] = { type = "keyUp", value = k }
        end
        wd:call("POST", "/actions", { actions = { { type = "key", id = "keyboard", actions = acts } } })
      end
      -- ax() -> the buttons of the browser's accessibility tree: name -> description ("" for none)
      local function ax()
        local tree = wd:call("POST", "/goog/cdp/execute", { cmd = "Accessibility.getFullAXTree", params = {} })
        local out = {}
        for _, n in ipairs(tree.nodes or {}) do
          if not n.ignored and n.role and n.role.value == "button" and n.name then
            out[n.name.value] = n.description and n.description.value or ""
          end
        end
        return out
      end
      wd:go(s.url .. "/")
      wd:type(wd:wait("#user", "the sign-in form"), "alice")
      wd:type(wd:find("#password"), PASS)
      wd:press("#signin-button")
      wd:wait('#tree li[data-card="CLEAN-1"]', "the board")
      H.wait_for(function() return wd:js([[var b = document.querySelector('#tree li[data-card="CLEAN-1"] > .status');
        return b && b.dataset.waiting === 'approval']]) end, "the approval badge", 3000)

      -- (1) the header on the branding accent: its white text 4.5:1, its focus ring 3:1
      local header = wd:js(CONTRAST .. [[
        const top = getComputedStyle(document.querySelector('.top')), bg = top.backgroundColor;
        const ring = getComputedStyle(document.documentElement).getPropertyValue('--ring-on-accent').trim();
        const probe = document.createElement('span'); probe.style.color = ring; document.body.append(probe);
        const r = getComputedStyle(probe).color; probe.remove();
        return { text: ratio(top.color, bg), ring: ratio(r, bg) };]])
      assert.is_true(header.text >= 4.5, "the header's text " .. header.text)
      assert.is_true(header.ring >= 3, "the header's focus ring " .. header.ring)

      -- (3) a card's button carries its status as its description
      H.wait_for(function() return ax()["ISSUE CLEAN-1 Remove old.txt"] == "waiting for approval" end,
        "CLEAN-1's status in its button's description", 3000)
      assert.equal("done", ax()["ISSUE CLEAN-2 Write new.txt"])

      -- (5) chosen with Enter: the card is current (not a toggle); Tab then Enter goes to its
      -- pane's heading, past the rest of the board; back by the pane's first button
      wd:js([[document.querySelector('#tree [data-key="card:CLEAN-1"]').focus()]])
      keys(ENTER)
      wd:wait("#approvals .approval button.approve", "CLEAN-1's pane")
      assert.equal("true", wd:js([[return document.querySelector('#tree [data-key="card:CLEAN-1"]').getAttribute('aria-current')]]))
      assert.is_false(wd:js([[return document.querySelector('#tree [data-key="card:CLEAN-1"]').hasAttribute('aria-pressed')]]))
      keys(TAB)
      assert.equal("[to-pane:CLEAN-1]", focused())
      keys(ENTER)
      H.wait_for(function() return focused() == "#detail-title" end, "focus on the pane's heading", 3000)
      keys(TAB)
      assert.equal("#back-to-board", focused())
      keys(ENTER)
      assert.equal("[card:CLEAN-1]", focused())
      -- and Skip to the card, the app's first stop
      wd:js("document.getElementById('skip-card').focus()")
      keys(ENTER)
      assert.equal("#detail-title", focused())

      -- (4) buttons for different objects have different names
      wd:wait('#people-list tr[data-person="alice"] button.link', "the people panel")
      H.wait_for(function() return wd:find('#runs [data-key="resume:1"]') end, "run 1's Resume", 3000)
      local names = ax()
      for _, n in ipairs { "Approve request #1 (delete_file)", "Deny request #1 (delete_file)", "Resume run 1",
        "Remove alice from default", "Disable alice" } do
        assert.is_not_nil(names[n], n .. " in the accessibility tree")
      end
      for _, n in ipairs { "Approve", "Deny", "Resume", "Remove", "Disable" } do assert.is_nil(names[n], n) end

      -- (6) the run form marks the target no card has; a good one clears it
      wd:type(wd:find("#run-target"), "NOPE-9")
      keys(ENTER)
      H.wait_for(function() return wd:text_of("#run-status") == 'no card "NOPE-9"' end, "the refusal", 3000)
      assert.same({ "true", "run-status" }, wd:js([[var t = document.getElementById('run-target');
        return [t.getAttribute('aria-invalid'), t.getAttribute('aria-describedby')];]]))

      -- (2) the run started here: its end said on the status line, no "(running)" left over
      wd:js("document.getElementById('run-target').value = ''")
      wd:type(wd:find("#run-target"), X)
      keys(ENTER)
      H.wait_for(function() return (wd:text_of("#run-status") or ""):match("^Run %d+ started") end, "the start said", 3000)
      assert.is_false(wd:js("return document.getElementById('run-target').hasAttribute('aria-invalid')"))
      local started = wd:text_of("#run-status")
      local n = assert(started:match("^Run (%d+)"))
      H.wait_for(function()
        local st = wd:js("var e = document.querySelector('#runs li[data-run=\"" .. n .. "\"] .run-state'); return e && e.textContent")
        return type(st) == "string" and st ~= "running" and st ~= "queued" and st
      end, "the run's end in the list", 30000)
      local st = wd:js("return document.querySelector('#runs li[data-run=\"" .. n .. "\"] .run-state').textContent")
      H.wait_for(function() return wd:text_of("#run-status") == "Run " .. n .. " (" .. X .. ") ended: " .. st .. "." end,
        "the end on the status line (was: " .. started .. ")", 3000)
      -- a run started elsewhere, seen going, is said when it ends
      wd:js([[window.orketTestSaid = []; var a = document.getElementById('announce');
        new MutationObserver(() => window.orketTestSaid.push(a.textContent)).observe(a, { childList: true, characterData: true, subtree: true });]])
      local code, other = H.api(s, "POST", "/v1/runs", key, { target = Y })
      assert.equal(201, code)
      local m = math.tointeger(other.run.id)
      local seen = pcall(H.wait_for, function() return wd:find('#runs li[data-run="' .. m .. '"]') end, "", 3000)
      assert(seen, "run " .. m .. " not in the list: " .. tostring(wd:text_of("#runs")))
      H.wait_for(function()
        for _, t in ipairs(wd:js("return window.orketTestSaid")) do
          if t:find("Run " .. m .. " (" .. Y .. ") ended: ", 1, true) then return true end
        end
      end, "the other run's end announced", 30000)

      -- (6) the people form: a name taken marks the name, keeps the password for a second try
      wd:press("#add-person > summary")
      wd:type(wd:find("#new-name"), "alice")
      wd:type(wd:find("#new-password"), PASS)
      wd:press("#add-person-button")
      H.wait_for(function() return wd:js("return document.getElementById('new-name').getAttribute('aria-invalid')") == "true" end,
        "the name marked", 3000)
      assert.equal("people-status", wd:js("return document.getElementById('new-name').getAttribute('aria-describedby')"))
      assert.equal(PASS, wd:js("return document.getElementById('new-password').value"))
    end)
  end)
end)
