-- orket.sandboxes.accept: acceptance by use (docs/sandbox.md, *Acceptance checks*). A
-- card's sandbox_checks (its epic file's) are checked against a live sandbox: HTTP checks go
-- through the sandbox's unix socket (from inside its network), browser checks drive Debian's
-- chromium through chromedriver (WebDriver over orket.c.http), both in a network namespace
-- of their own whose one way out is the sandbox's socket (the confinement helper's relays,
-- orket.c.proc). Uses luv, orket.c.http, orket.c.proc, orket.c.crypto.
local uv = require "luv"
local cjson = require "cjson.safe"
local http = require "orket.c.http"
local rt = require "orket.c.runtime"
local proc = require "orket.c.proc"
local crypto = require "orket.c.crypto"
local jsonout = require "orket.jsonout"
local tree = require "orket.tree"
local inert = require "orket.inert"
local service = require "orket.sandboxes.service"
local checks = require "orket.actions.sandbox_checks"

local M = {}

M.MAX_BODY = 1048576        -- bytes of an answer read (more fails the check)
M.LOG_LINES = 40            -- the sandbox log's last lines kept with a result
M.LOG_SETTLE_MS = 100     -- the log quiet this long before its tail is read
M.DETAIL = 2000             -- bytes of an answer quoted in a failure's detail
M.NOBODY = 65534            -- the user (and group) a browser runs as when Orket is root
M.DRIVER_PORT = 9515        -- chromedriver's, inside the browser's own network namespace
M.APP_PORT = 8080           -- the app as the page sees it there: http://127.0.0.1:8080
M.BROWSER_LIMITS = { cpu_seconds = 600, memory = 8 * 1073741824, file_size = 1073741824, open_files = 4096 }

-- ---- the checks' shape: orket.actions.sandbox_checks ------------------------------------

M.MAX_CHECKS, M.MAX_SENT, M.TIMEOUT_MS, M.MAX_TIMEOUT_MS, M.METHODS =
  checks.MAX_CHECKS, checks.MAX_SENT, checks.TIMEOUT_MS, checks.MAX_TIMEOUT_MS, checks.METHODS
M.bad_path, M.normalize, M.normalize_list = checks.bad_path, checks.normalize, checks.normalize_list
local is_array = checks.is_array

-- ---- judging answers -----------------------------------------------------------------------

--- json_at(doc, path) -> true, value | false: the value at a dotted path ("items.0.title":
--- a number indexes an array from 0)
function M.json_at(doc, path)
  local v = doc
  for part in (path .. "."):gmatch("([^.]*)%.") do
    if type(v) ~= "table" then return false end
    local n = part:match("^%d+$") and tonumber(part)
    if n and is_array(v) then
      v = v[n + 1]
    else
      v = v[part]
    end
    if v == nil then return false end
  end
  return true, v
end

local same = jsonout.same

local function show(v)
  -- cjson writes / as \/: "/api/health" was said as "\/api\/health"
  local s = (cjson.encode(v) or tostring(v)):gsub("\\/", "/")
  return inert.clip(s, 200)
end

local function quote_body(body)
  body = body or ""
  if #body > M.DETAIL then body = body:sub(1, M.DETAIL) .. "[...]" end
  return inert.text(body)
end

--- judge_http(check, status, body) -> ok, detail: an answer against the check's
--- expectations (status: the check's, else any 2xx; json fields by path; contains)
function M.judge_http(c, status, body)
  if c.status and status ~= c.status then
    return false, string.format("%s %s: HTTP %d, expected %d; the answer: %s", c.method, c.path, status, c.status,
      quote_body(body))
  end
  if not c.status and (status < 200 or status > 299) then
    return false, string.format("%s %s: HTTP %d, expected a 2xx; the answer: %s", c.method, c.path, status,
      quote_body(body))
  end
  if c.json then
    local doc = cjson.decode(body or "")
    if doc == nil then
      return false, string.format("%s %s: the answer is not JSON: %s", c.method, c.path, quote_body(body))
    end
    local keys = {}
    for k in pairs(c.json) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local found, v = M.json_at(doc, k)
      if not found then
        return false, string.format("%s %s: the answer has no %s: %s", c.method, c.path, k, quote_body(body))
      end
      if not same(v, c.json[k]) then
        return false, string.format("%s %s: %s is %s, expected %s", c.method, c.path, k, show(v), show(c.json[k]))
      end
    end
  end
  if c.contains and not (body or ""):find(c.contains, 1, true) then
    return false, string.format("%s %s: the answer does not contain %q: %s", c.method, c.path, c.contains,
      quote_body(body))
  end
  return true, string.format("%s %s: HTTP %d", c.method, c.path, status)
end

-- ---- HTTP through the sandbox's socket --------------------------------------------------------

--- request(socket, {method=, path=, body=, headers={name=value}, json=bool, timeout_ms=,
--- max_bytes=, truncate=}) -> status, body, headers, truncated | nil, message, CODE: one
--- request to the app through the sandbox's unix socket (from inside its network), the
--- answer capped: ETOOBIG past max_bytes, or with truncate what was read up to the cap and
--- truncated = true. Runs in a task.
function M.request(socket, o)
  local hdrs = {}
  local has_type = false
  for k, v in pairs(o.headers or {}) do
    hdrs[#hdrs + 1] = k .. ": " .. v
    has_type = has_type or k:lower() == "content-type"
  end
  if o.body and o.json and not has_type then hdrs[#hdrs + 1] = "Content-Type: application/json" end
  table.sort(hdrs)
  local t = o.timeout_ms or M.TIMEOUT_MS
  local max = o.max_bytes or M.MAX_BODY
  local r <close>, err, code = http.request { url = "http://sandbox" .. o.path, method = o.method or "GET",
    headers = hdrs, body = o.body, unix_socket = socket, connect_timeout_ms = t, total_timeout_ms = t, max_bytes = max }
  if not r then return nil, tostring(err), code or "EUNAVAILABLE" end
  local status, h = r:headers()
  if not status then return nil, tostring(h), "EUNAVAILABLE" end
  local parts = {}
  while true do
    local ev, rerr = r:read()
    if ev == false then break end
    if ev == nil then
      -- received() counts every body byte so far (these parts included): only past the
      -- cap is it ETOOBIG; an answer broken off below it is the app's failure
      if r:received() > max or tostring(rerr):find("cap", 1, true) then
        if o.truncate then return status, table.concat(parts), h, true end
        return nil, string.format("the answer is larger than %d bytes", max), "ETOOBIG"
      end
      return nil, tostring(rerr), "EUNAVAILABLE"
    end
    for _, s in ipairs(ev) do parts[#parts + 1] = s end
  end
  return status, table.concat(parts), h
end

local function run_http(c, socket)
  local t0 = uv.now()
  local status, body = M.request(socket, { method = c.method, path = c.path, body = c.body, json = c.body_json,
    headers = c.headers, timeout_ms = c.timeout_ms })
  local ms = math.floor(uv.now() - t0)
  if not status then
    return { kind = "http", name = c.name, ok = false, ms = ms, detail = string.format("%s %s: %s", c.method, c.path, body) }
  end
  local ok, detail = M.judge_http(c, status, body)
  return { kind = "http", name = c.name, ok = ok, status = status, ms = ms, detail = detail }
end

-- ---- the browser -----------------------------------------------------------------------------

-- Where a package installs a program, looked in after PATH: a hardened runner's PATH may
-- leave out /usr/bin, and a browser check then said chromium was "not installed" when it was.
M.PROGRAM_DIRS = { "/usr/local/bin", "/usr/bin", "/bin" }

local function which(name)
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    local p = dir .. "/" .. name
    if uv.fs_access(p, "X") then return p end
  end
  for _, dir in ipairs(M.PROGRAM_DIRS) do
    local p = dir .. "/" .. name
    if uv.fs_access(p, "X") then return p end
  end
  return nil
end

-- Debian's `chromium` is a shell script that runs a dozen programs (uname, grep, expr,
-- findmnt...) and adds the flags of /etc/chromium.d before it execs this binary: started
-- directly, a browser costs a tenth less CPU, and takes only the flags given here.
M.DEBIAN_CHROMIUM = "/usr/lib/chromium/chromium"
-- Debian's chromium-headless-shell: the same engine (its version is chromium's) built
-- without the browser's user interface, only ever headless. Where it is installed it is
-- used: a session (start, a page, stop) took about a quarter of chromium's CPU (1.4 s
-- against 5.3 s on a small virtual machine).
M.DEBIAN_HEADLESS_SHELL = "/usr/lib/chromium/chromium-headless-shell"

--- browser_available() -> browser path, chromedriver path, WebDriver browserName | nil, why:
--- the headless shell when installed, else chromium. The driver is asked for the headless
--- shell by its own name: it then makes the session's first page, which the shell, unlike
--- chromium, does not open by itself.
function M.browser_available()
  local chromium = which("chromium") or which("chromium-browser")
  if chromium and uv.fs_access(M.DEBIAN_CHROMIUM, "X") then chromium = M.DEBIAN_CHROMIUM end
  if uv.fs_access(M.DEBIAN_HEADLESS_SHELL, "X") then chromium = M.DEBIAN_HEADLESS_SHELL end
  local driver = which("chromedriver")
  if not chromium or not driver then
    local missing = not chromium and not driver and "chromium and chromedriver are" or not chromium and "chromium is"
      or "chromedriver is"
    return nil, string.format("%s not found on PATH (%s) nor in %s (Debian: apt-get install "
      .. "chromium-headless-shell chromium-driver)", missing, os.getenv("PATH") or "unset",
      table.concat(M.PROGRAM_DIRS, ", "))
  end
  return chromium, driver, chromium == M.DEBIAN_HEADLESS_SHELL and "chrome-headless-shell" or "chrome"
end

local ELEMENT = "element-6066-11e4-a52e-4f735466cecf" -- the W3C name of an element reference

-- one WebDriver call through the driver's relay socket: value | nil, message
local function wd(d, method, path, body, timeout_ms)
  local r <close>, err = http.request { url = "http://127.0.0.1:" .. M.DRIVER_PORT .. path, method = method,
    unix_socket = d.sock, headers = { "Content-Type: application/json; charset=utf-8" },
    body = body ~= nil and jsonout.encode(body) or (method == "POST" and "{}" or nil),
    connect_timeout_ms = 5000, total_timeout_ms = timeout_ms or 30000, max_bytes = 32 * 1048576 }
  if not r then return nil, tostring(err) end
  local status, herr = r:headers()
  if not status then return nil, tostring(herr) end
  local parts = {}
  while true do
    local ev, rerr = r:read()
    if ev == false then break end
    if ev == nil then return nil, tostring(rerr) end
    for _, s in ipairs(ev) do parts[#parts + 1] = s end
  end
  local doc = cjson.decode(table.concat(parts))
  if status ~= 200 then
    local v = type(doc) == "table" and type(doc.value) == "table" and doc.value or {}
    return nil, string.format("%s: %s", tostring(v.error), tostring(v.message):match("^[^\n]*"))
  end
  return type(doc) == "table" and doc.value
end

-- The driver and its browser, started for one check: {pid=, sock=, profile=, session=} |
-- nil, why (with the half-started driver to stop as a first value when there is one).
-- Both run under the confinement helper, in a network namespace and a PID namespace of
-- their own: the loopback there holds chromedriver's port, which the helper relays to the
-- unix socket d.sock, and APP_PORT, joined to the sandbox's socket; no other address
-- reaches anything. The PID namespace ends whole with the helper, and the helper with this
-- process, even one killed at once.
local function start_driver(driver, chromium, name, socket, timeout_ms, unsandboxed)
  local root = uv.getuid() == 0
  local tmp = os.getenv("TMPDIR") or "/tmp"
  if root then
    -- nobody must reach its profile: a TMPDIR closed to others is not used
    local st = uv.fs_stat(tmp)
    if not st or st.mode & 1 == 0 then tmp = "/tmp" end
  end
  local profile, perr = uv.fs_mkdtemp(tmp .. "/orket-chromium-XXXXXX")
  if not profile then
    -- the directory, whether it came from TMPDIR, and the error: what the operator changes
    return nil, string.format("cannot make a temporary browser profile in %s: %s (set TMPDIR to a writable directory)",
      os.getenv("TMPDIR") == tmp and ("$TMPDIR=" .. tmp) or tmp, tostring(perr))
  end
  local sock = profile .. "/driver.sock"
  if #sock > 101 then
    tree.remove(profile)
    return nil, "the browser's profile path is too long for a unix socket: " .. profile .. " (set TMPDIR shorter)"
  end
  -- The page is the agents' code. As root, the driver and its browser run as nobody, in a
  -- profile of theirs (its HOME too): Chromium's own sandbox then works, and without it
  -- (unsandboxed, when the kernel refuses nobody the namespaces it needs) the browser
  -- still holds no root. The helper stays root, in namespaces it made without a user
  -- namespace, to relay to the sandbox's socket, which only Orket's user may reach.
  if root then uv.fs_chown(profile, M.NOBODY, M.NOBODY) end
  local layers = { landlock = false, seccomp = false, view = false }
  if root then layers.userns = false end
  local ok, hargv, henv = pcall(proc.helper_argv, {
    argv = { driver, "--port=" .. M.DRIVER_PORT, "--log-path=" .. profile .. "/driver.log" },
    cwd = profile, tmpdir = profile, limits = M.BROWSER_LIMITS, layers = layers, require = { "netns", "pidns" },
    env = { HOME = profile, TMPDIR = profile, PATH = os.getenv("PATH") or "/usr/bin:/bin" },
    loopback = true, run_as = root and M.NOBODY or nil,
    relay = { path = sock, port = M.DRIVER_PORT, inward = { path = socket, port = M.APP_PORT } } })
  if not ok then
    tree.remove(profile)
    return nil, "the browser's confinement: " .. tostring(hargv)
  end
  local out, err, rep = uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false)
  local d = { profile = profile, sock = sock, pipes = { out, err, rep }, unsandboxed = unsandboxed }
  local said = ""
  local handle, pid = uv.spawn(hargv[1], { args = { table.unpack(hargv, 2) }, stdio = { nil, out, err, rep },
    env = henv, detached = true }, function(code, sig)
      d.exited = { code = code, signal = sig }
      if d.handle and not d.handle:is_closing() then d.handle:close() end
    end)
  if not handle then
    for _, p in ipairs(d.pipes) do p:close() end
    tree.remove(profile)
    return nil, "cannot start chromedriver's confinement helper: " .. tostring(pid)
  end
  d.handle, d.pid = handle, pid
  local function keep(_, data)
    if data then said = (said .. data):sub(-4096) end
  end
  out:read_start(keep)
  err:read_start(keep)
  service.read_report(rep, d, "the browser's confinement refused", "")
  -- ready when the driver answers through the relay
  local t0 = uv.now()
  while true do
    if d.relay_ready then
      local v = wd(d, "GET", "/status", nil, 2000)
      if type(v) == "table" and v.ready then break end
    end
    if d.exited or d.failure then
      return d, d.failure or ("chromedriver ended: " .. said:sub(-300))
    end
    if uv.now() - t0 > 10000 then return d, "chromedriver did not start within 10 s: " .. said:sub(-300) end
    rt.sleep(20)
  end
  -- The page runs in a renderer process, under Chromium's sandbox where the kernel allows
  -- it. The GPU thread (software only: --disable-gpu) and the network service run inside
  -- the browser process instead of processes of their own: two fewer processes, and a
  -- session (start, a page, stop) takes about a sixth less CPU. Neither runs the page.
  local args = { "--headless=new", "--disable-gpu", "--in-process-gpu", "--enable-features=NetworkServiceInProcess2",
    "--disable-dev-shm-usage", "--no-first-run",
    "--disable-extensions", "--disable-background-networking", "--disable-sync", "--disable-default-apps",
    "--disable-breakpad", "--disable-crash-reporter", -- no crash handler outside the namespace
    "--window-size=1280,900", "--user-data-dir=" .. profile,
    -- names mean nothing in an empty network: none is looked up
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" }
  if unsandboxed then table.insert(args, 1, "--no-sandbox") end
  local v, err = wd(d, "POST", "/session", { capabilities = { alwaysMatch = {
    browserName = name, ["goog:loggingPrefs"] = { browser = "ALL" },
    ["goog:chromeOptions"] = { binary = chromium, args = args } } } }, math.max(timeout_ms, 30000))
  if not v then return d, "the browser did not start: " .. err end
  d.session = "/session/" .. tostring(v.sessionId)
  return d
end

local function stop_driver(d)
  if not d then return end
  if d.session then wd(d, "DELETE", d.session, nil, 5000) end
  if d.pid then
    -- the helper sweeps the namespace when asked; SIGKILL if it does not end in time (its
    -- PID namespace goes with it either way)
    uv.kill(d.pid, "sigterm")
    local t0 = uv.now()
    while not d.exited and uv.now() - t0 < 3000 do rt.sleep(10) end
    while not d.exited and uv.now() - t0 < 6000 do
      uv.kill(d.pid, "sigkill")
      rt.sleep(10)
    end
  end
  for _, p in ipairs(d.pipes or {}) do
    if not p:is_closing() then p:close() end
  end
  if d.profile then tree.remove(d.profile) end
end

local function slug(s)
  local out = s:gsub("[^%w]+", "-"):gsub("^-+", ""):gsub("-+$", "")
  return out:sub(1, 40)
end

-- What the page said as errors: the browser log's SEVERE entries (messages, capped).
local function console_errors(d)
  local entries = wd(d, "POST", d.session .. "/se/log", { type = "browser" }, 5000)
  if type(entries) ~= "table" then entries = wd(d, "POST", d.session .. "/log", { type = "browser" }, 5000) end
  local out = {}
  for _, e in ipairs(type(entries) == "table" and entries or {}) do
    -- the browser asks for /favicon.ico on its own: a page without one has no error
    if type(e) == "table" and e.level == "SEVERE" and #out < 20
        and not tostring(e.message):find("/favicon.ico - Failed to load resource", 1, true) then
      out[#out + 1] = tostring(e.message):sub(1, 500)
    end
  end
  return out
end

local function browse(c, d, url, shot_path)
  local res = { kind = "browser", name = c.name, ok = false }
  local deadline = uv.now() + c.timeout_ms
  wd(d, "POST", d.session .. "/timeouts", { pageLoad = c.timeout_ms, script = c.timeout_ms, implicit = 0 })
  local _, gerr = wd(d, "POST", d.session .. "/url", { url = url }, c.timeout_ms + 5000)
  if gerr then
    res.detail = string.format("browser %s: the page did not load: %s", c.path, gerr)
    return res
  end
  -- the element, then its text, within the check's time
  local el, text, bad
  while true do
    local v, verr = wd(d, "POST", d.session .. "/element", { using = "css selector", value = c.selector }, 5000)
    -- a selector the browser cannot read never matches: said as such at once, not retried
    -- to the check's end and then said as an element not found
    bad = verr and verr:match("^invalid selector: (.*)")
    if bad then break end
    el = type(v) == "table" and v[ELEMENT]
    if el then
      text = wd(d, "GET", d.session .. "/element/" .. el .. "/text", nil, 5000)
      if not c.text or (type(text) == "string" and text:find(c.text, 1, true)) then break end
    end
    if uv.now() >= deadline then break end
    rt.sleep(100)
  end
  if c.screenshot then
    local b64 = wd(d, "GET", d.session .. "/screenshot", nil, 15000)
    local png = type(b64) == "string" and crypto.base64_decode(b64)
    if png then
      local f = io.open(shot_path, "wb")
      if f then
        f:write(png)
        f:close()
        res.screenshot = shot_path
      end
    end
  end
  res.console = console_errors(d)
  if bad then
    res.detail = string.format("browser %s: %s is no CSS selector the browser can read (%s)", c.path, c.selector, bad)
  elseif not el then
    res.detail = string.format("browser %s: no element matches %s within %d ms", c.path, c.selector, c.timeout_ms)
  elseif c.text and not (type(text) == "string" and text:find(c.text, 1, true)) then
    res.detail = string.format("browser %s: %s shows %q, not %q", c.path, c.selector,
      (type(text) == "string" and text or ""):sub(1, 300), c.text)
  elseif not c.console_errors and #res.console > 0 then
    res.detail = string.format("browser %s: %d console error%s: %s", c.path, #res.console, #res.console == 1 and "" or "s",
      res.console[1])
  else
    res.ok = true
    res.detail = string.format("browser %s: %s shown%s", c.path, c.selector, c.text and (" with " .. string.format("%q", c.text)) or "")
  end
  return res
end

-- A browser started at a first browser check and shared by the others: {d=driver, close=}
-- | nil, why
local function open_browser(socket, timeout_ms)
  local chromium, driver, name = M.browser_available()
  if not chromium then return nil, driver end
  -- the browser runs only inside a network namespace of its own (the page is the agents' code)
  if not service.offered().netns then
    return nil, "the kernel offers no network namespace to this user, and the browser must run in one"
  end
  local d, why = start_driver(driver, chromium, name, socket, timeout_ms)
  if why and d and not d.session and not d.failure then
    -- Chromium's sandbox refused (no user namespaces for this user): once more without it,
    -- said in each browser check's result
    stop_driver(d)
    d, why = start_driver(driver, chromium, name, socket, timeout_ms, true)
  end
  local b = { d = d, close = function() stop_driver(d) end }
  if why then
    b.close()
    return nil, why
  end
  return b
end

-- A card's browser checks start with no cookies and no storage of the app's origin: a run's
-- cards share one browser (Chromium's start costs seconds), and what one card's check left
-- (a sign-in's cookie) changed another's result. Chrome's DevTools commands clear them all;
-- a driver without them gets WebDriver's own, on the page the last check left open.
local function fresh_state(d)
  local _, e1 = wd(d, "POST", d.session .. "/goog/cdp/execute", { cmd = "Network.clearBrowserCookies", params = {} })
  local _, e2 = wd(d, "POST", d.session .. "/goog/cdp/execute", { cmd = "Storage.clearDataForOrigin",
    params = { origin = "http://127.0.0.1:" .. M.APP_PORT, storageTypes = "all" } })
  if not (e1 or e2) then return end
  wd(d, "DELETE", d.session .. "/cookie")
  wd(d, "POST", d.session .. "/execute/sync", { args = {},
    script = "try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}" })
end

-- (card: in the screenshot's name, so that two cards' checks of one name and place do not
-- write one file, the first card's result then showing the second's page)
local function run_browser(c, b, home, n, card)
  local t0 = uv.now()
  uv.fs_mkdir(home .. "/checks", 448)
  local shot = string.format("%s/checks/%s%d-%s.png", home, card and (tostring(card):gsub("[^%w_.%-]", "-") .. "-") or "",
    n, slug(c.name))
  -- what an earlier check's page logged is read (and so dropped) before this one's
  console_errors(b.d)
  local ok, res = pcall(browse, c, b.d, "http://127.0.0.1:" .. M.APP_PORT .. c.path, shot)
  if not ok then res = { kind = "browser", name = c.name, ok = false, detail = "browser " .. c.path .. ": " .. tostring(res) } end
  res.ms = math.floor(uv.now() - t0)
  if b.d.unsandboxed then
    res.unsandboxed = true
    res.detail = res.detail .. " (the browser ran without Chromium's own sandbox: this user has no user namespaces)"
  end
  return res
end

--- browsers() -> the browser that runs of checks against one sandbox share (run's browsers):
--- {get(socket, timeout_ms) -> browser | nil, why, close()}. One per socket (a browser's one
--- way out is the socket it was started with: the sandbox's, or a service's), started at the
--- first browser check that socket's checks make; once one fails to start it fails the
--- others the same way. Chromium's start costs seconds of CPU, so a deploy's cards share
--- them; the holder's owner closes them once its last run is done.
function M.browsers()
  local h, open = {}, {}
  function h.get(socket, timeout_ms)
    if h.why then return nil, h.why end
    if not open[socket] then
      local b, why = open_browser(socket, timeout_ms)
      if not b then h.why = why; return nil, why end
      open[socket] = b
      h.browser = h.browser or b -- the first: the sandbox's, in the usual run
    end
    return open[socket]
  end
  function h.close()
    for _, b in pairs(open) do b.close() end
    open, h.browser, h.why = {}, nil, "closed"
  end
  return h
end

-- ---- running a card's checks -------------------------------------------------------------------

--- log_tail(path, lines [, max_bytes]) -> the last lines of a log (at most max_bytes read,
--- 64 KiB by default; a line cut by that is left out), inert text ("" without the file)
function M.log_tail(path, lines, max_bytes)
  local f = io.open(path, "rb")
  if not f then return "" end
  local max = max_bytes or 65536
  local size = f:seek("end")
  f:seek("set", size > max and size - max or 0)
  local text = f:read("a") or ""
  f:close()
  local all = {}
  for line in text:gmatch("[^\n]*") do all[#all + 1] = line end
  if size > max then table.remove(all, 1) end
  while all[#all] == "" do all[#all] = nil end
  local from = math.max(1, #all - (lines or M.LOG_LINES) + 1)
  return inert.text(table.concat(all, "\n", from))
end

-- the socket a check runs against: the sandbox's (its entry's), or that of the service the
-- check names (o.services: name -> socket, orket.sandboxes.service.sockets) | nil, why
-- naming the card, the check and the service
local function socket_of(o, c, i)
  if not c.service then return o.socket end
  local services = o.services or {}
  if services[c.service] then return services[c.service] end
  local names = {}
  for name in pairs(services) do names[#names + 1] = name end
  table.sort(names)
  return nil, string.format("%scheck %d (%s) names the service %q, which sandbox %s does not run (%s)",
    o.card and ("card " .. tostring(o.card) .. ": ") or "", i, tostring(c.name), c.service, tostring(o.sandbox or "?"),
    names[1] and ("its services: " .. table.concat(names, ", ")) or "it runs one service; leave `service` out")
end

--- run{socket=, home=, checks= [, browsers=, services=, card=, sandbox=]} -> {ok=bool,
--- results={{kind=, name=, ok=, detail=, ms=, status=, screenshot=, console=}...}, log=the
--- sandbox log's last lines}: each check (the normal form) against the live sandbox whose
--- unix socket and directory are given, one after another; a check naming a service
--- (`service`) against that service's socket in services (name -> socket), and one naming
--- a service not there fails, saying so with the card and the sandbox's id. Runs in a task. Its browser is browsers' (M.browsers, left
--- open for the next run) when given; else its own, and then it leaves no browser or
--- driver running.
function M.run(o)
  local results, ok = {}, true
  local own = not o.browsers and M.browsers() or nil
  local browsers = o.browsers or own
  local fresh = {} -- socket -> its browser's state cleared for this run (this card)
  local done, raised = pcall(function()
    for i, c in ipairs(o.checks or {}) do
      local r
      local socket, why = socket_of(o, c, i)
      if not socket then
        r = { kind = c.kind, name = c.name, ok = false, detail = why }
      elseif c.kind == "http" then
        r = run_http(c, socket)
      else
        local browser, berr = browsers.get(socket, c.timeout_ms)
        if browser then
          if not fresh[socket] then
            fresh_state(browser.d)
            fresh[socket] = true
          end
          r = run_browser(c, browser, o.home, i, o.card)
        else
          -- no browser could start here: the page was never asked for, so the app neither
          -- passed nor failed. Skipped with the reason, never a failure (docs/sandbox.md)
          r = { kind = "browser", name = c.name, ok = false, skipped = tostring(berr),
            detail = "skipped: " .. tostring(berr) }
        end
      end
      results[i] = r
      ok = ok and (r.ok or r.skipped ~= nil)
    end
  end)
  -- the browser and its driver end even when a check raised (misuse): none is left running
  if own then own.close() end
  if not done then error(raised, 0) end
  -- the app's output reaches its log through the owner's loop: what the checks made it
  -- write lands a moment after their answers, so the log is read once it has been quiet
  -- for LOG_SETTLE_MS (at most a second)
  local log_path, t0 = o.home .. "/app.log", uv.now()
  local last = -1
  while uv.now() - t0 < 1000 do
    local st = uv.fs_stat(log_path)
    local size = st and st.size or 0
    if size == last then break end
    last = size
    rt.sleep(M.LOG_SETTLE_MS)
  end
  return { ok = ok, results = results, log = M.log_tail(log_path, M.LOG_LINES) }
end

M.verdict = checks.verdict
M.skipped = checks.skipped

--- report(res) -> the result as text: one line per check, then the log's tail on a failure
function M.report(res)
  local out = {}
  for _, r in ipairs(res.results) do
    out[#out + 1] = string.format("%s %s: %s%s", M.verdict(r), r.name, r.detail,
      r.screenshot and (" (screenshot " .. r.screenshot .. ")") or "")
  end
  if not res.ok and res.log and res.log ~= "" then
    out[#out + 1] = "the sandbox's last log lines:"
    out[#out + 1] = res.log
  end
  return table.concat(out, "\n")
end

return M
