-- Filing bugs from the web board in a real headless Chromium (tests/webdriver.lua): a done
-- rock shows its bug-fix phase; an operator files a bug under it from the page and reads
-- the new card's id, the card appears through the event stream and the phase counts it; the
-- same fingerprint again is "seen again", a blank title shows the server's error, text from
-- the server stays text; a viewer sees the phase but no form. The phases are fetched on the
-- journal's bug events only.
local H = require "tests.helpers"
local WD = require "tests.webdriver"

local SCRIPT = [[return { rules = {
  { role = "coder", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "code_review" } } } } },
  { role = "integrity_guard", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "done" } } } } },
}, default = { content = "Nothing more to do." } }
]]

local function project()
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  os.remove(dir .. "/epics/start.json")
  H.write(dir .. "/epics/r.json", '{ "id": "R", "type": "rock", "name": "Notes", "epics": [ "E" ] }\n')
  H.write(dir .. "/epics/e.json", '{ "id": "E", "name": "Serve notes", "issues": [ { "id": "E-1", '
    .. '"summary": "Serve the notes", "seat": "senior_developer" } ] }\n')
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. [[

team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
bug_fix = { days = 7, extend_above = 1, max_days = 28, check_interval_ms = 600000 }
]])
  require("tests.backends").project(dir)
  r = H.orket("import", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  r = H.orket("run R", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return dir
end

local function sign_in(wd, s, key)
  wd:sign_in(s.url, key)
  wd:wait('#tree li[data-card="R"]', "the board's tree")
  H.wait_for(function() return wd:js("return document.getElementById('live').textContent") == "live" end,
    "the event stream to open", 3000)
end

local function visible(wd, css)
  return wd:js([[var e = document.querySelector(arguments[0]); return !!(e && e.offsetParent !== null);]], css)
end

local function text(wd, css)
  return wd:js([[var e = document.querySelector(arguments[0]); return e ? e.textContent : null;]], css)
end

local function status_line(wd, before)
  return H.wait_for(function()
    local t = text(wd, "#bug-status")
    return t ~= "" and t ~= "filing…" and t ~= before and t
  end, "the answer to the bug", 3000)
end

local function fill(wd, title, body, fingerprint)
  wd:js([[document.getElementById('bug-title').value = arguments[0];
    document.getElementById('bug-body').value = arguments[1];
    document.getElementById('bug-fingerprint').value = arguments[2];]], title, body, fingerprint)
  wd:press("#bug-button")
end

describe("filing bugs from the web board in Chromium", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("files a bug under a rock as an operator, shows the phase, and gives a viewer no form", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local op = H.api_key(dir, "ops", "operator")
    local viewer = H.api_key(dir, "look", "viewer")
    local s = H.serve(dir)
    local art = WD.artifacts()
    local wd = WD.start(art, { width = 1280, height = 1000 })
    local ok, err = pcall(function()
      sign_in(wd, s, op)
      -- the phase, fetched once after the board: in the tree and in the rock's pane
      H.wait_for(function() return wd:js("return window.orketBoardStats.bugfix") == 1 end, "the phases' fetch")
      H.wait_for(function() return text(wd, '#tree li[data-card="R"] > .phase-badge') == "bug-fix day 1 · 0 bugs" end,
        "the rock's phase in the tree")
      assert.equal("open", wd:js([[return document.querySelector('#tree li[data-card="R"] > .phase-badge')
        .getAttribute('data-phase')]]))
      assert.is_false(wd:js([[return !!document.querySelector('#tree li[data-card="E"] > .phase-badge')]]))
      assert.is_false(wd:js([[return !!document.querySelector('#tree li[data-card="E"] > .file-bug')]]))
      wd:press('#tree li[data-card="R"] > .file-bug')
      wd:wait("#bug-title", "the bug form")
      assert.is_true(visible(wd, "#bug-form"))
      H.wait_for(function() return wd:js("return document.activeElement.id") == "bug-title" end, "the title focused")
      assert.matches("^Bug%-fix phase open · day 1 · 0 bugs %(0 open%)", text(wd, "#phase"))
      -- an epic's pane has neither
      wd:press('#tree li[data-card="E"] > .card-link')
      H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == "E" end, "E's pane")
      assert.is_false(visible(wd, "#rock-bugs"))
      wd:press('#tree li[data-card="R"] > .card-link')
      H.wait_for(function() return visible(wd, "#bug-form") end, "R's bug form")
      local board_before = wd:js("return window.orketBoardStats.board")
      local bugfix_before = wd:js("return window.orketBoardStats.bugfix")

      -- filed: the answer names the card, which comes to the tree by the event stream, as
      -- text; the phase counts it
      local title = "<img src=x onerror=\"window.pwned=1\"> saving loses the title"
      fill(wd, title, "Open /, save, reload", "lost-title")
      assert.equal("R-bugs-1 filed.", status_line(wd, ""))
      assert.equal("", wd:js("return document.getElementById('bug-title').value"))
      wd:wait('#tree li[data-card="R-bugs-1"]', "the bug's card in the tree")
      assert.equal(title, text(wd, '#tree li[data-card="R-bugs-1"] > .card-link > .card-title'))
      assert.is_true(wd:js("return window.pwned === undefined"))
      assert.equal(0, wd:js([[return document.querySelectorAll('#tree img').length]]))
      H.wait_for(function() return text(wd, '#tree li[data-card="R"] > .phase-badge') == "bug-fix day 1 · 1 bug" end,
        "the phase counting the bug")
      assert.matches("· 1 bug %(1 open%) · 1 in the last 24 h", text(wd, "#phase"))
      local _, doc = H.api(s, "GET", "/v1/cards/R-bugs-1", op)
      assert.equal("Open /, save, reload", doc.card.description)
      assert.equal("R-bugs", doc.card.parent)
      -- a burst of the journal's bug events costs a fetch or two of the phases, not one each
      local fetched = wd:js("return window.orketBoardStats.bugfix") - bugfix_before
      assert.is_true(fetched >= 1 and fetched <= 3, "phase fetches: " .. fetched)

      -- the same fingerprint while it is open: seen again, a comment on it, no new card
      fill(wd, "the title is lost again", "", "lost-title")
      assert.equal("Seen again: R-bugs-1 is open with the same fingerprint; the report is a comment on it.",
        status_line(wd, "R-bugs-1 filed."))
      H.wait_for(function()
        local _, d = H.api(s, "GET", "/v1/cards/R-bugs-1", op)
        return #(d.comments or {}) == 1 and d.comments[1].body:find("the title is lost again", 1, true)
      end, "the comment on R-bugs-1")
      assert.equal(404, (H.api(s, "GET", "/v1/cards/R-bugs-2", op)))

      -- a blank title: the server's error, as the page's answer; nothing filed
      fill(wd, "   ", "", "")
      local msg = status_line(wd, "Seen again: R-bugs-1 is open with the same fingerprint; the report is a comment on it.")
      assert.equal("a bug needs a title (what goes wrong)", msg)
      assert.equal("error", wd:js("return document.getElementById('bug-status').className"))
      assert.equal(404, (H.api(s, "GET", "/v1/cards/R-bugs-2", op)))
      -- only the new card cost a board; the page did not reload it for the rest
      assert.is_true(wd:js("return window.orketBoardStats.board") - board_before <= 2)
      wd:screenshot(art .. "/bug.png")

      -- a viewer: the phase, no form and no button
      wd:press("#signout")
      sign_in(wd, s, viewer)
      H.wait_for(function() return text(wd, '#tree li[data-card="R"] > .phase-badge') == "bug-fix day 1 · 1 bug" end,
        "the phase for the viewer")
      assert.is_false(wd:js([[return !!document.querySelector('#tree li[data-card="R"] > .file-bug')]]))
      wd:press('#tree li[data-card="R"] > .card-link')
      H.wait_for(function() return visible(wd, "#rock-bugs") end, "R's phase for the viewer")
      assert.matches("^Bug%-fix phase open · day 1 · 1 bug", text(wd, "#phase"))
      assert.is_false(visible(wd, "#bug-form"))
      assert.is_false(visible(wd, "#bug-button"))
    end)
    wd:stop()
    if not ok then error(tostring(err) .. "\n(the browser's logs are in " .. art .. ")", 0) end
    os.execute("rm -rf " .. H.quote(art))
    assert.equal(0, s.stop())
  end)
end)
