-- The web board in a real headless Chromium, driven over WebDriver (chromedriver): sign in
-- with a key through the page, see the board's tree, watch a card change status live while
-- `orket run` works in another process (no reload), approve the held tool call with the
-- page's button and see the card go on to done; a screenshot is a PNG of the window's size
-- that is not blank; on a phone's width nothing scrolls sideways.
local H = require "tests.helpers"
local WD = require "tests.webdriver"

local project = require("tests.cleanup_project").make

-- background(dir, args, name): `orket ARGS` in another process; returns a function that
-- gives its exit status once it has ended (nil before). Ended after the test if it still
-- runs (a failed assertion): it and its shell write into dir, which the test removes.
local started = {}
local function background(dir, args, name)
  os.execute(string.format("cd %s && { %s %s >%s.out 2>%s.err & echo $! >%s.pid; wait $!; echo $? >%s.rc; } >/dev/null 2>&1 &",
    H.quote(dir), H.quote(H.BIN), args, name, name, name, name))
  started[#started + 1] = { dir, name }
  return function() return tonumber((H.read(dir .. "/" .. name .. ".rc") or ""):match("^%d+")) end
end

local function status_of(wd, id)
  return wd:js([[var e = document.querySelector('#tree li[data-card="' + arguments[0] + '"] > .status');
    return e ? e.getAttribute('data-status') : null;]], id)
end

-- png_size(bytes) -> width, height from the PNG's IHDR | nil
local function png_size(png)
  if type(png) ~= "string" or #png < 33 or png:sub(1, 8) ~= "\137PNG\r\n\26\n" or png:sub(13, 16) ~= "IHDR" then return nil end
  return string.unpack(">I4I4", png, 17)
end

describe("the web board in Chromium", function()
  after_each(function()
    for _, b in ipairs(started) do H.end_started(b[1], b[2] .. ".pid", b[2] .. ".rc", true) end
    started = {}
    H.kill_servers()
    H.cleanup()
  end)

  it("signs in, follows a run live, approves a held tool call and shows the card done", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local r = H.orket("keys create ops --role operator", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local key = r.stdout:gsub("\n$", "")
    local s = H.serve(dir)
    -- the browser's profile, its logs and the screenshots: kept when the test fails
    local art = WD.artifacts()
    local wd = WD.start(art, { width = 1280, height = 900 })
    local ok, err = pcall(function()
      -- signing in through the page
      wd:sign_in(s.url, key)
      wd:wait('#tree li[data-card="CLEAN-1"]', "the board's tree")
      assert.equal("ready", status_of(wd, "CLEAN-1"))
      assert.truthy(wd:find('#tree li[data-card="CLEAN"] > ul > li[data-card="CLEAN-2"]'), "CLEAN-2 under its epic")
      assert.matches("ops · developer", wd:text_of("#who")) -- (its role in the project, by the project's name for it)
      H.wait_for(function() return wd:js("return document.getElementById('live').textContent") == "live" end,
        "the event stream to open", 3000)
      -- the key is not kept by the page; the session is an HttpOnly cookie it cannot read
      assert.equal("", wd:js("return document.getElementById('key').value"))
      -- a card that cannot be read, with none shown yet: its error was written into the
      -- hidden card's body, and the pane still said "Choose a card"
      wd:js("window.__fetch = window.fetch; window.fetch = () => Promise.reject(new Error('offline'))")
      wd:press('#tree li[data-card="CLEAN-2"] > .card-link')
      -- (a fetch with no answer says the server cannot be reached, not the browser's words)
      H.wait_for(function() return (wd:text_of("#detail-none") or ""):find("could not be shown: The server cannot be reached", 1, true) end,
        "the card's failure said in the pane", 3000)
      wd:js("window.fetch = window.__fetch")
      assert.equal("", wd:js("return document.cookie"))
      -- a mark the page would lose if it were loaded again
      wd:js("window.__not_reloaded = true")

      -- a run in another process: the card's status changes in the page as it happens
      local run_rc = background(dir, "run CLEAN --json", "run")
      H.wait_for(function() return status_of(wd, "CLEAN-1") == "waiting_for_developer" end,
        "CLEAN-1 to wait for approval in the page", 6000)
      H.wait_for(function() return status_of(wd, "CLEAN-2") == "done" end, "CLEAN-2 done in the page", 3000)
      assert.equal(3, H.wait_for(run_rc, "the run to stop (stalled)", 6000))
      assert.is_true(wd:js("return window.__not_reloaded === true"))

      -- the card's details show the held call; the approve button lets it through
      wd:press('#tree li[data-card="CLEAN-1"] > .card-link')
      wd:wait('#approvals .approval button.approve', "the held tool call")
      assert.matches('delete_file {"path":"old.txt"}', wd:text_of("#approvals .approval"), 1, true)
      wd:press('#approvals .approval button.approve')
      H.wait_for(function() return status_of(wd, "CLEAN-1") == "ready" end, "CLEAN-1 approved and ready", 3000)
      H.wait_for(function() return not wd:find("#approvals .approval") end, "the approval to leave the page", 3000)
      assert.equal("old\n", H.read(dir .. "/workspace/old.txt"))

      -- the run goes on in another process: the card reaches done, seen live
      local resume_rc = background(dir, "resume --json", "resume")
      H.wait_for(function() return status_of(wd, "CLEAN-1") == "done" end, "CLEAN-1 done in the page", 6000)
      assert.equal(0, H.wait_for(resume_rc, "the resumed run to end", 6000))
      assert.is_nil(H.read(dir .. "/workspace/old.txt"))
      assert.is_true(wd:js("return window.__not_reloaded === true"))
      -- the approval names the key's id as who decided (the card's history, in the page)
      local key_id = key:match("^ork_(%x+)_")
      H.wait_for(function() return (wd:text_of("#history") or ""):find(key_id, 1, true) end,
        "the history to name the key's id", 3000)

      -- a screenshot: a PNG of the window's size, not blank (compared with the same window
      -- with the page hidden, taken in the same run)
      local w, h = table.unpack(wd:js("return [window.innerWidth * devicePixelRatio, window.innerHeight * devicePixelRatio]"))
      local shot = wd:screenshot(art .. "/board.png")
      local pw, ph = png_size(shot)
      assert.is_not_nil(pw, "the screenshot is not a PNG")
      assert.equal(math.floor(w), pw)
      assert.equal(math.floor(h), ph)
      wd:js("document.body.style.visibility = 'hidden'")
      local blank = wd:screenshot(art .. "/blank.png")
      wd:js("document.body.style.visibility = ''")
      assert.equal(pw, (png_size(blank)))
      assert.is_true(#shot > 3 * #blank, string.format("the board's screenshot (%d bytes) is not much more than a blank one (%d bytes)", #shot, #blank))

      -- on a phone's width the page fits: nothing scrolls sideways, the buttons are there
      wd:resize(390, 844)
      H.wait_for(function() return wd:js("return window.innerWidth") < 500 end, "the narrow window", 3000)
      assert.is_true(wd:js("return document.documentElement.scrollWidth <= window.innerWidth"))
      -- a card's title of one long word (a URL, a path) in the card's heading breaks there:
      -- the whole page scrolled sideways, the tree's rows under the card's pane
      local title = wd:js("return document.getElementById('detail-title').textContent")
      wd:js("document.getElementById('detail-title').textContent = 'CLEAN-1 ' + 'x'.repeat(4000)")
      assert.is_true(wd:js("return document.documentElement.scrollWidth <= window.innerWidth"))
      wd:js("document.getElementById('detail-title').textContent = arguments[0]", title)
      assert.truthy(wd:find('#tree li[data-card="CLEAN-1"] > .card-link'))
      local phone = wd:screenshot(art .. "/phone.png")
      assert.is_not_nil(png_size(phone))

      -- signing out ends the session: the page asks for a key again
      wd:resize(1280, 900)
      wd:press("#signout")
      wd:wait("#key", "the sign-in form again")
      local log = s.log()
      assert.is_nil(log:find(key, 1, true), "the key is in the server's log")
      assert.is_nil(log:find("ors_", 1, true), "a session token is in the server's log")
    end)
    wd:stop()
    assert.equal(0, s.stop())
    if not ok then error(tostring(err) .. "\n(screenshots and the browser's logs are in " .. art .. ")", 0) end
    os.execute("rm -rf " .. H.quote(art))
  end)
end)
