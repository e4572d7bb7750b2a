-- A WebDriver client for the browser tests: starts chromedriver (Debian chromium-driver) on a
-- free loopback port in its own process group, and speaks the W3C WebDriver protocol (HTTP +
-- JSON) to it with orket.c.http. stop() ends the browser, the driver and anything they left.
local H = require "tests.helpers"
local cjson = require "cjson"
local jsonout = require "orket.jsonout"

local M = {}

local ELEMENT = "element-6066-11e4-a52e-4f735466cecf" -- the W3C name of an element reference

--- available() -> chromium path, chromedriver path | nil, why (the product's own search:
--- orket.sandboxes.accept)
M.available = require("orket.sandboxes.accept").browser_available

--- artifacts() -> a new directory for a browser's profile, its logs and screenshots, under
--- /tmp (kept when a test fails, so that they can be looked at)
function M.artifacts()
  return assert(require("luv").fs_mkdtemp("/tmp/orket-web-test.XXXXXX"))
end

--- with(o, fn): fn(wd) in a browser started with o (as start), stopped after it; a failure
--- is raised with where the browser's logs are kept, which are removed otherwise
function M.with(o, fn)
  local art = M.artifacts()
  local wd = M.start(art, o)
  local ok, err = pcall(fn, wd)
  wd:stop()
  if not ok then error(tostring(err) .. "\n(the browser's logs are in " .. art .. ")", 0) end
  os.execute("rm -rf " .. H.quote(art))
end

-- call(base, method, path [, body]) -> value (the answer's "value"); raises on a
-- WebDriver error with its message
local function call(base, method, path, body)
  local status, text = H.fetch { url = base .. path, method = method,
    headers = { "Content-Type: application/json; charset=utf-8" },
    body = body ~= nil and jsonout.encode(body) or (method == "POST" and "{}" or nil),
    total_timeout_ms = 120000, max_bytes = 64 * 1048576 }
  local doc = cjson.decode(text)
  if status ~= 200 then
    local v = type(doc) == "table" and doc.value or {}
    error(string.format("webdriver %s %s: %s: %s", method, path, tostring(v.error), tostring(v.message)), 2)
  end
  return doc.value
end

local Session = {}
Session.__index = Session

--- start(dir, {width=, height=}) -> session: chromedriver and a headless chromium whose
--- profile and logs live in dir
-- Starts chromedriver in dir and waits for its port -> session (pid, base) | nil, why (it
-- did not say it listens; it is stopped then)
local function driver_up(dir, driver)
  for _, f in ipairs { "/chromedriver.out", "/chromedriver.pid" } do os.remove(dir .. f) end
  -- setsid: the driver leads a process group of its own, which the browser joins, so one
  -- signal to the group ends them all
  os.execute(string.format("setsid %s --port=0 --log-path=%s >%s 2>&1 </dev/null & echo $! >%s",
    H.quote(driver), H.quote(dir .. "/chromedriver.log"), H.quote(dir .. "/chromedriver.out"), H.quote(dir .. "/chromedriver.pid")))
  local pid = tonumber(H.wait_for(function() return (H.read(dir .. "/chromedriver.pid") or ""):match("%d+") end, "chromedriver's pid"))
  local self = setmetatable({ pid = pid, dir = dir }, Session)
  local ok, port = pcall(H.wait_for, function()
    return (H.read(dir .. "/chromedriver.out") or ""):match("started successfully on port (%d+)")
  end, "chromedriver to listen", 3000)
  if ok then
    self.base = "http://127.0.0.1:" .. port
    return self
  end
  self:stop()
  return nil, string.format("%s (its output: %q)", tostring(port), (H.read(dir .. "/chromedriver.out") or ""):sub(-300))
end

function M.start(dir, o)
  o = o or {}
  local chromium, driver, name = assert(M.available())
  -- a driver that never says it listens (seen once on a loaded machine) is started again
  -- once before the test fails on it
  local self, why = driver_up(dir, driver)
  if not self then self, why = driver_up(dir, driver) end
  if not self then error(why, 0) end
  local ok, err = pcall(function()
    -- The tests' browser shows only the board's own pages, never the agents' code: it runs
    -- as one process (no zygote, no renderer or GPU processes), which starts with a third
    -- less CPU than Chromium's usual set of processes.
    local caps = { browserName = name, ["goog:chromeOptions"] = { binary = chromium, args = {
      "--headless=new", "--no-sandbox", "--single-process", "--no-zygote", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
      "--disable-extensions", "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
      "--force-device-scale-factor=1",
      "--window-size=" .. (o.width or 1280) .. "," .. (o.height or 900), "--user-data-dir=" .. dir .. "/profile" } } }
    local v = call(self.base, "POST", "/session", { capabilities = { alwaysMatch = caps } })
    self.id = v.sessionId
    self.path = "/session/" .. self.id
  end)
  if not ok then
    self:stop()
    error(err, 0)
  end
  return self
end

function Session:call(method, path, body) return call(self.base, method, self.path .. path, body) end

--- go(url): navigates and waits for the page to load
function Session:go(url) return self:call("POST", "/url", { url = url }) end

--- sign_in(base, key): opens the web board at base and signs in with the API key through
--- its form
function Session:sign_in(base, key)
  self:go(base .. "/")
  self:type(self:wait("#key", "the sign-in form"), key)
  self:press("#signin-button")
end

--- js(script, ...) -> the script's return value (a function body; arguments[1..n])
function Session:js(script, ...) return self:call("POST", "/execute/sync", { script = script, args = jsonout.array { ... } }) end

--- js_async(script, ...) -> what the script passes to its callback (its last argument)
function Session:js_async(script, ...)
  return self:call("POST", "/execute/async", { script = script, args = jsonout.array { ... } })
end

--- find(css) -> element id | nil (no such element)
function Session:find(css)
  local ok, v = pcall(self.call, self, "POST", "/element", { using = "css selector", value = css })
  if not ok then
    if tostring(v):find("no such element", 1, true) then return nil end
    error(v, 0)
  end
  return v[ELEMENT]
end

-- stale(err): the element was replaced meanwhile (the page draws parts of itself again).
-- chromedriver says so as "stale element", or, when the node left the page between its
-- look-up and the read, as an inspector error that the node is no longer in the document.
local function stale(err)
  local e = tostring(err)
  return e:find("stale element", 1, true) ~= nil or e:find("does not belong to the document", 1, true) ~= nil
end

-- attempt(fn): fn() | false when the element it used went stale; other errors raise
local function attempt(fn)
  local ok, v = pcall(fn)
  if ok then return v end
  if stale(v) then return false end
  error(v, 0)
end

--- wait(css [, what]) -> element id, once an element matching css is displayed
function Session:wait(css, what)
  return H.wait_for(function()
    return attempt(function()
      local e = self:find(css)
      return e and self:call("GET", "/element/" .. e .. "/displayed") and e
    end)
  end, what or css, 3000)
end

--- press(css [, what]): clicks the element matching css once it is displayed (found again
--- if it was replaced before the click landed)
function Session:press(css, what)
  return H.wait_for(function()
    return attempt(function()
      local e = self:wait(css, what)
      self:call("POST", "/element/" .. e .. "/click")
      return true
    end)
  end, what or css, 100)
end

--- text_of(css) -> the visible text of the element matching css | nil
function Session:text_of(css)
  return H.wait_for(function()
    return attempt(function()
      local e = self:find(css)
      return { e and self:call("GET", "/element/" .. e .. "/text") }
    end)
  end, css, 100)[1]
end

function Session:type(e, text) return self:call("POST", "/element/" .. e .. "/value", { text = text }) end

--- resize(width, height): the window's size
function Session:resize(w, h) return self:call("POST", "/window/rect", { width = w, height = h }) end

--- screenshot(path) -> the PNG's bytes, also written to path
function Session:screenshot(path)
  local b64 = self:call("GET", "/screenshot")
  H.write(path .. ".b64", b64)
  assert(os.execute("base64 -d " .. H.quote(path .. ".b64") .. " >" .. H.quote(path)))
  os.remove(path .. ".b64")
  return H.read(path)
end

-- left(pgid, dir) -> the pid of a process not yet ended (a zombie has ended) of the driver's
-- group, or one whose arguments name dir (a browser's helper that left the group) | nil
local function left(pgid, dir)
  local uv = require "luv"
  local d = uv.fs_scandir("/proc")
  while d do
    local name = uv.fs_scandir_next(d)
    if not name then break end
    if name:match("^%d+$") then
      local stat = H.read("/proc/" .. name .. "/stat") or ""
      -- the group is the 5th field, after "(comm)", which may hold spaces
      local state, group = stat:match("^%d+ %(.*%) (%S) %S+ (%d+)")
      if state and state ~= "Z" and (tonumber(group) == pgid
          or (H.read("/proc/" .. name .. "/cmdline") or ""):find(dir, 1, true)) then
        return name
      end
    end
  end
  return nil
end

--- stop(): ends the session (the browser), then the driver's whole process group, and
--- returns once every process of it has ended
function Session:stop()
  if self.id then pcall(call, self.base, "DELETE", self.path) end
  self.id = nil
  if self.pid then
    -- the group by kill(2) itself: dash's kill (Debian's sh) refuses "--" ("Illegal number: -")
    -- and signalled nothing but the driver, so a browser whose session's end failed ran on
    local uv = require "luv"
    uv.kill(-self.pid, "sigkill")
    uv.kill(self.pid, "sigkill")
    -- kill(2) returns before its processes are gone: the caller goes on to remove the
    -- directory they write in
    -- A helper that left the group (its arguments name dir) is signalled too: waited for
    -- without, it would end the test.
    H.wait_for(function()
      local pid = left(self.pid, self.dir)
      if pid then uv.kill(math.tointeger(tonumber(pid)), "sigkill") end
      return not pid
    end, "the browser and its driver to end")
    self.pid = nil
  end
end

return M
