-- The web board's sandboxes in a real headless Chromium (tests/webdriver.lua): a sandbox
-- started from the CLI while the page is open appears with its health and a link that
-- opens its app on its own origin, which the signed-in browser follows; stopping it shows it
-- stopped, live, with its reason; the list is fetched on sandbox events only, and nothing
-- of the sandbox is left running. Needs network and user namespaces, node and Chromium.
local H = require "tests.helpers"
local WD = require "tests.webdriver"

local SERVER = [[
const mark = process.argv[2];
require('http').createServer((req, res) => {
  res.setHeader('Content-Type', 'text/html');
  res.end('<!doctype html><title>app</title><p id="hello">hello from ' + mark + ' at ' + req.url + '</p>');
}).listen(Number(process.env.PORT), '127.0.0.1');
]]

local function procs(mark)
  local out = {}
  local p = io.popen("ps -eo pid=,args=")
  for line in p:lines() do
    if line:find(mark, 1, true) and not line:find("ps -eo", 1, true) then out[#out + 1] = line end
  end
  p:close()
  return out
end

-- the sandbox's row in the page, or nil while there is none (the script's null arrives as
-- JSON null, a value that is not nil)
local function row(wd, id)
  local x = wd:js([[var li = document.querySelector('#sandbox-list li[data-sandbox="' + arguments[0] + '"]');
    if (!li) return null;
    var a = li.querySelector('a.sandbox-app'), d = li.querySelector('.sandbox-detail');
    return { status: li.querySelector('.status').getAttribute('data-status'), text: li.textContent,
      href: a ? a.getAttribute('href') : '', target: a ? a.getAttribute('target') : '',
      detail: d ? d.textContent : '' };]], id)
  return type(x) == "table" and x or nil
end

describe("the web board's sandboxes in Chromium", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("shows each sandbox's health live, with a link that opens its app on its own origin", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local skip = H.no_node_sandbox()
    if skip then return pending(skip) end
    local mark = "sbw" .. math.random(1, 1e9)
    local dir = H.node_project(SERVER, mark)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local key = H.api_key(dir, "v", "viewer")
    local s = H.serve(dir)
    local art = WD.artifacts()
    local wd = WD.start(art, { width = 1280, height = 1000 })
    local ok, err = pcall(function()
      wd:sign_in(s.url, key)
      H.wait_for(function() return wd:js("return document.getElementById('live').textContent") == "live" end,
        "the event stream to open", 3000)
      -- none yet: the hint says how to start one, fetched once after the board
      H.wait_for(function() return wd:js("return window.orketBoardStats.sandboxes") == 1 end, "the sandboxes' fetch")
      assert.is_false(wd:js("return document.getElementById('sandboxes-empty').hidden"))
      assert.equal(0, wd:js("return document.querySelectorAll('#sandbox-list li').length"))
      local fetched = wd:js("return window.orketBoardStats.sandboxes")

      -- started from the CLI, another process: the page shows it healthy, with the app's link
      local r = H.orket("sandbox up -d", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      local shown = H.wait_for(function()
        local x = row(wd, "1")
        return x and x.status == "healthy" and x
      end, "sandbox 1 healthy in the page", 1000)
      assert.equal("/v1/sandboxes/1/open", shown.href)
      assert.equal("_blank", shown.target)
      assert.matches("port 8080", shown.text, 1, true)
      assert.is_true(wd:js("return document.getElementById('sandboxes-empty').hidden"))
      -- a deploy's burst of events costs a fetch or two, not one each
      local after_start = wd:js("return window.orketBoardStats.sandboxes")
      assert.is_true(after_start - fetched >= 1 and after_start - fetched <= 3, "fetches: " .. (after_start - fetched))
      assert.equal(1, wd:js("return window.orketBoardStats.board"))

      -- stopped: the page shows it stopped with its reason, and no link
      assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
      local ended = H.wait_for(function()
        local x = row(wd, "1")
        return x and x.status == "stopped" and x
      end, "sandbox 1 stopped in the page", 1000)
      assert.equal("", ended.href)
      assert.are_not.equal("", ended.detail) -- the end's reason
      H.wait_for(function() return #procs(mark) == 0 end, "the sandbox's processes to end")

      -- a second one: its link opens the app on its own origin, with a sign-in of its own
      assert.equal(0, H.orket("sandbox up -d", { cwd = dir }).status)
      local second = H.wait_for(function()
        local x = row(wd, "2")
        return x and x.status == "healthy" and x
      end, "sandbox 2 healthy in the page", 1000)
      assert.equal("stopped", row(wd, "1").status) -- the ended one stays listed under it
      wd:go(s.url .. second.href .. "?path=%2Fnotes%3Fx%3D1")
      local hello = wd:wait("#hello", "the app's page on its origin")
      assert.truthy(hello)
      assert.equal("hello from " .. mark .. " at /notes?x=1", wd:text_of("#hello"))
      assert.equal("http://2.sandbox.localhost:" .. s.port, wd:js("return location.origin"))
      -- the app's page runs as an origin of its own: it cannot read the board's cookies
      assert.equal("", wd:js("return (function () { try { return document.cookie; } catch (e) { return ''; } })()"))
    end)
    wd:stop()
    -- both, in case the test broke off before stopping the first (a refusal is harmless)
    H.orket("sandbox stop 1", { cwd = dir })
    H.orket("sandbox stop 2", { cwd = dir })
    H.wait_for(function() return #procs(mark) == 0 end, "nothing of the sandboxes left running")
    if not ok then error(tostring(err) .. "\n(the browser's logs are in " .. art .. ")", 0) end
    os.execute("rm -rf " .. H.quote(art))
    assert.equal(0, s.stop())
  end)
end)
