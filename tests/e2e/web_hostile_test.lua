-- The web board in a real headless Chromium (tests/webdriver.lua) with text that lies about
-- itself and a server that is gone: bidirectional controls in file names, comments, titles,
-- notes and a held call's arguments are shown as marks, never obeyed; one long word in a
-- title breaks at the line instead of pushing its epic's statuses off the screen; a request
-- that gets no answer says the server cannot be reached and that nothing was saved.
local H = require "tests.helpers"
local WD = require "tests.webdriver"

local RLO = "\u{202E}"

-- a project whose coder writes docs/invoice<RLO>fdp.sh (a shell script that reads as a PDF)
-- and whose review never ends: the issue is left blocked, its branch unmerged
local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "BID-1", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "docs/invoice\u{202E}fdp.sh", content = "echo hi\n" }) } } },
  { role = "coder", card = "BID-2", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "docs/new\nline.txt", content = "a\n" }),
    call("write_file", { path = "docs/cafe\u{301}.txt", content = "b\n" }) } } },
  { role = "coder", match = '"path"', reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
}, default = { content = "Nothing more to do." } }
]]

local function project()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "hostile"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = {
  senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" } },
}
workspace = { portable_names = false }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/epics/bid.json", [[
{ "id": "BID", "name": "Bidi", "issues": [
  { "id": "BID-1", "summary": "Write the invoice", "seat": "senior_developer" },
  { "id": "BID-2", "summary": "Write the changelog", "seat": "senior_developer" } ] }
]])
  require("tests.backends").project(dir)
  local r = H.orket("import", { cwd = dir })
  if r.status ~= 0 then error("orket import failed: " .. tostring(r.stderr), 2) end
  return dir
end

local function sign_in(wd, s, key)
  wd:sign_in(s.url, key)
  wd:wait('#tree li[data-card="BID-1"]', "the board's tree")
  H.wait_for(function() return wd:js("return document.getElementById('live').textContent") == "live" end,
    "the event stream to open", 3000)
end

local function show(wd, id)
  wd:press('#tree li[data-card="' .. id .. '"] > .card-link')
  H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == id end,
    id .. "'s pane", 3000)
end

-- the bidi controls left in the text of what css selects (none: none is obeyed)
local function controls(wd, css)
  return wd:js([[var out = [];
    for (const e of document.querySelectorAll(arguments[0]))
      for (const ch of e.textContent) if (/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(ch))
        out.push(ch.codePointAt(0).toString(16));
    return out;]], css)
end

describe("the web board with hostile text, in Chromium", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("shows bidi controls in file names, comments, titles, notes and held calls as marks, not obeyed", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    H.orket("run BID-1 --json", { cwd = dir }) -- (its review never ends: the run fails, the branch stays)
    H.orket("run BID-2 --json", { cwd = dir })
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    assert.equal(200, (H.api(s, "POST", "/v1/cards/BID-1/comments", key, { body = "Wrote docs/invoice" .. RLO .. "fdp.sh." })))
    local _, x = H.api(s, "POST", "/v1/cards", key, { parent = "BID", summary = "Pay the invoice" .. RLO .. "fdp.exe",
      description = "see " .. RLO .. "txt.exe" })
    local X = x.card.id
    assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. X .. "/move", key, { to = "in_progress", note = "n " .. RLO .. "cba" })))
    assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. X .. "/move", key,
      { to = "waiting_for_developer", reason = "input" })))
    -- a tool call held for a decision, its arguments holding an override
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:run("INSERT INTO approvals (card_id, tool, arguments, digest, requested_at) VALUES (?, ?, ?, ?, ?)",
      X, "run_command", '{"command":"rm -rf /tmp/' .. RLO .. 'gol.txt"}', "d", "2026-01-01T00:00:00Z"))
    db:close()
    WD.with({ width = 1280, height = 1000 }, function(wd)
      sign_in(wd, s, key)
      -- the title in the tree and the columns
      wd:wait('#tree li[data-card="' .. X .. '"] .card-title .bidi-mark', "the title's mark")
      assert.equal("Pay the invoice⟨U+202E⟩fdp.exe", wd:text_of('#tree li[data-card="' .. X .. '"] .card-title'))
      assert.same({}, controls(wd, "#tree .card-title"))

      -- BID-1's change: the file's name with its mark, and a warning beside it
      show(wd, "BID-1")
      wd:wait("#change-files li code", "the change's files")
      local name = wd:js("return document.querySelector('#change-files li code').textContent")
      assert.equal("docs/invoice⟨U+202E⟩fdp.sh", name)
      assert.matches("RIGHT-TO-LEFT OVERRIDE",
        wd:js("return document.querySelector('#change-files li code .bidi-mark').title"), 1, true)
      assert.matches("not what it would look like", wd:text_of("#change-files li .bidi-warning"), 1, true)
      -- (the attribute keeps the name as it is: what the page matches files by)
      assert.equal("docs/invoice" .. RLO .. "fdp.sh", wd:js("return document.querySelector('#change-files li').dataset.path"))
      assert.matches("Wrote docs/invoice⟨U+202E⟩fdp.sh.", wd:text_of("#comments"), 1, true)
      for _, css in ipairs { "#change-files", "#comments", "#history", "#change-diff", "#detail-title" } do
        assert.same({}, controls(wd, css), css)
      end

      -- BID-2's change: a newline in a name written as the shell writes it, not folded into a
      -- space ("docs/new line.txt", a file that does not exist), and a name in combining
      -- characters said to be one (it looks like another file's)
      show(wd, "BID-2")
      wd:wait('#change-files li[data-path^="docs/new"] code', "BID-2's files")
      -- what the list shows of the file named path: its name, and the warning beside it
      local function row(path)
        return wd:js([[for (const li of document.querySelectorAll('#change-files li')) if (li.dataset.path === arguments[0])
          return [li.querySelector('code').textContent, (li.querySelector('.bidi-warning') || {}).textContent || ""];
          return null;]], path)
      end
      assert.same({ "$'docs/new\\x0aline.txt'", "" }, row("docs/new\nline.txt"))
      local nfd = row("docs/cafe\u{301}.txt")
      assert.equal("docs/cafe\u{301}.txt", nfd[1])
      assert.matches("not NFC", nfd[2], 1, true)

      -- the new card: its title, description, a move's note, the held call's arguments
      show(wd, X)
      wd:wait("#approvals .approval", "the held call")
      assert.matches("/tmp/⟨U+202E⟩gol.txt", wd:text_of("#approvals .approval"), 1, true)
      assert.matches("see ⟨U+202E⟩txt.exe", wd:text_of("#fields"), 1, true)
      assert.matches("n ⟨U+202E⟩cba", wd:text_of("#history"), 1, true)
      assert.matches("Pay the invoice⟨U+202E⟩fdp.exe", wd:text_of("#detail-title"), 1, true)
      for _, css in ipairs { "#approvals", "#fields", "#history", "#detail-title", "#tree", "#comments" } do
        assert.same({}, controls(wd, css), css)
      end
      -- the other controls too, each its own mark
      local every = "a\u{202A}b\u{202B}c\u{202C}d\u{202D}e\u{2066}f\u{2067}g\u{2068}h\u{2069}i\u{200E}j\u{200F}k\u{061C}l"
      assert.equal(200, (H.api(s, "POST", "/v1/cards/" .. X .. "/comments", key, { body = every })))
      H.wait_for(function() return (wd:text_of("#comments") or ""):find("⟨U+061C⟩l", 1, true) end, "the comment", 5000)
      assert.matches("a⟨U+202A⟩b⟨U+202B⟩c⟨U+202C⟩d⟨U+202D⟩e⟨U+2066⟩f⟨U+2067⟩g⟨U+2068⟩h⟨U+2069⟩i⟨U+200E⟩j⟨U+200F⟩k⟨U+061C⟩l",
        wd:text_of("#comments"), 1, true)
      assert.same({}, controls(wd, "#comments"))
    end)
    assert.equal(0, s.stop())
  end)

  -- docs/serve.md: titles wrap between words, and a word breaks only when it is longer than
  -- the whole line. One such word in a title made its epic's list as wide as the word.
  it("breaks a title's word longer than the line, every status in the window", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local long = "https://example.com/" .. string.rep("a", 300)
    local _, x = H.api(s, "POST", "/v1/cards", key, { parent = "BID", summary = "Fix the crash at " .. long })
    local X = x.card.id
    for _, size in ipairs { { 1280, 900 }, { 390, 800 } } do
      WD.with({ width = size[1], height = size[2] }, function(wd)
        sign_in(wd, s, key)
        wd:wait('#tree li[data-card="' .. X .. '"]', "the long title in the tree")
        local m = wd:js([[var out = { inner: document.documentElement.clientWidth,
            scroll: document.documentElement.scrollWidth, right: {} };
          var pane = document.getElementById('detail').getBoundingClientRect();
          out.pane = window.innerWidth >= 900 ? pane.left : window.innerWidth;
          for (const li of document.querySelectorAll('#tree li[data-card]'))
            out.right[li.dataset.card] = li.querySelector(':scope > .status').getBoundingClientRect().right;
          var t = document.querySelector('#tree li[data-card="' + arguments[0] + '"] .card-title');
          out.lines = t.getBoundingClientRect().height / parseFloat(getComputedStyle(t).lineHeight);
          return out;]], X)
        assert.is_true(m.scroll <= m.inner, string.format("the page scrolls sideways: %s > %s", m.scroll, m.inner))
        for id, right in pairs(m.right) do
          assert.is_true(right <= m.pane, string.format("%s's status ends at %s, past %s (%dx%d)", id, right, m.pane,
            size[1], size[2]))
        end
        assert.is_true(m.lines > 1.5, "the long word broke over lines") -- (the test proves something)
      end)
    end
    assert.equal(0, s.stop())
  end)

  it("says the server cannot be reached and nothing was saved, when it is gone", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = project()
    local key = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    WD.with({ width = 1280, height = 1000 }, function(wd)
      sign_in(wd, s, key)
      show(wd, "BID-1")
      assert.equal(0, s.stop())
      H.wait_for(function() return wd:text_of("#live") ~= "live" end, "the page to see the stream gone", 5000)
      wd:press("#actions > summary")
      wd:type(wd:find("#comment-text"), "while it is down")
      wd:press("#comment-button")
      H.wait_for(function() return (wd:text_of("#detail-error") or "") ~= "" end, "the comment's error", 5000)
      local said = wd:text_of("#detail-error")
      assert.matches("The server cannot be reached", said, 1, true)
      assert.matches("nothing was saved", said, 1, true)
      assert.is_nil(said:find("Failed to fetch", 1, true))
      -- what was typed is kept, to send again
      assert.equal("while it is down", wd:js("return document.getElementById('comment-text').value"))
      -- a card opened: said the same way
      wd:press('#tree li[data-card="BID-2"] > .card-link')
      H.wait_for(function() return (wd:text_of("#detail-error") or "") ~= "" end, "the card's error", 5000)
      assert.matches("The server cannot be reached", wd:text_of("#detail-error"), 1, true)
      -- signing in
      wd:press("#signout")
      wd:wait("#key", "the sign-in form")
      wd:type(wd:find("#key"), key)
      wd:press("#signin-button")
      H.wait_for(function() return (wd:text_of("#signin-error") or ""):find("reached", 1, true) end, "the sign-in's error", 5000)
      said = wd:text_of("#signin-error")
      assert.matches("The server cannot be reached", said, 1, true)
      assert.matches("not signed in", said, 1, true)
    end)
  end)
end)
