-- The web board's view of workspace/ in a real headless Chromium (tests/webdriver.lua): a
-- person's file at a path a card's merge then adds appears, live on the merge's event, with
-- what main has there, the person's version and the commands that take main's or keep
-- theirs, the same document GET /v1/status gives (docs/git.md, *main's view*).
local H = require "tests.helpers"
local WD = require "tests.webdriver"
local cjson = require "cjson"

-- the page's rows: {path, main, yours, take, keep} each (texts)
local function rows(wd)
  return wd:js([[return Array.from(document.querySelectorAll('#view-list li')).map(function (li) {
    var codes = function (sel) { return Array.from(li.querySelectorAll(sel + ' code')).map(function (c) {
      return c.textContent; }); };
    return { path: li.getAttribute('data-path'), main: li.querySelector('.view-main').textContent,
      yours: li.querySelector('.view-yours').textContent, take: codes('.take-main'), keep: codes('.keep-view') };
  });]])
end

describe("the web board's view of workspace/ in Chromium", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("shows a person's file a merge kept, both versions and the commands, live", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local root = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = root }).status)
    local dir = root .. "/p"
    H.write(dir .. "/workspace/hello.txt", "draft\n")
    local key = H.api_key(dir, "v", "viewer")
    local s = H.serve(dir)
    WD.with({ width = 1280, height = 1000 }, function(wd)
      wd:sign_in(s.url, key)
      -- nothing diverged yet: the hint shows, fetched once after the board
      H.wait_for(function() return wd:js("return window.orketBoardStats.view") == 1 end, "the view's fetch", 3000)
      assert.is_false(wd:js("return document.getElementById('view-empty').hidden"))
      assert.equal(0, #rows(wd))
      H.wait_for(function() return wd:js("return document.getElementById('live').textContent") == "live" end,
        "the event stream to open", 3000)

      -- a run in another process merges a card that adds hello.txt: the page shows it
      local r = H.orket("run START-1", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      local shown = H.wait_for(function()
        local x = rows(wd)
        return #x == 1 and x
      end, "hello.txt in the page's view", 3000)[1]
      assert.is_true(wd:js("return document.getElementById('view-empty').hidden"))
      local _, doc = H.api(s, "GET", "/v1/status", key)
      local d = doc.diverged[1]
      assert.equal("hello.txt", shown.path)
      assert.equal("main has: file " .. d.main.id:sub(1, 12) .. " (" .. math.tointeger(d.main.size) .. " bytes)",
        shown.main)
      assert.equal("yours: file " .. d.view.id:sub(1, 12) .. " (6 bytes)", shown.yours)
      assert.same({ "git --literal-pathspecs -C workspace checkout main -- hello.txt" }, shown.take)
      assert.same({ "git --literal-pathspecs -C workspace add -A -- hello.txt",
        "git --literal-pathspecs -C workspace commit -m 'Keep my version of hello.txt' -- hello.txt" }, shown.keep)
      -- fetched on the merge's event, not on each of the run's events (waited for: on a busy
      -- machine the first fetch's answer can come after the merge, and show its file before
      -- the merge's event reaches the page)
      H.wait_for(function() return wd:js("return window.orketBoardStats.view") >= 2 end, "the merge's fetch", 5000)
      local n = wd:js("return window.orketBoardStats.view")
      assert.is_true(n >= 2 and n <= 3, "fetches: " .. cjson.encode(n))
    end)
    assert.equal(0, s.stop())
  end)

  -- the panel drew the paths alone: with the view waiting on a person's branch it showed
  -- "Nothing of yours ... differs from main", and no keep warning, no "in the way"
  it("says what orket status says: the view waiting on a person's branch, never that nothing differs", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local root = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = root }).status)
    local dir = root .. "/p"
    assert(os.execute("git -C " .. H.quote(dir .. "/workspace") .. " checkout -q -b mine"))
    local r = H.orket("run START-1", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local key = H.api_key(dir, "v", "viewer")
    local s = H.serve(dir)
    local _, doc = H.api(s, "GET", "/v1/status", key)
    assert.is_true(doc.behind and doc.behind.waits)
    WD.with({ width = 1280, height = 1000 }, function(wd)
      wd:sign_in(s.url, key)
      local notes = H.wait_for(function()
        local t = wd:js("return document.getElementById('view-notes').textContent")
        return t ~= "" and t
      end, "the view's notes", 3000)
      assert.equal(doc.behind.reason .. "; " .. doc.behind.catch_up, notes)
      assert.is_true(wd:js("return document.getElementById('view-empty').hidden"))
      assert.equal(0, #rows(wd))
    end)
    assert.equal(0, s.stop())
  end)
end)
