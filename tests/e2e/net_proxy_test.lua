-- Orket on a corporate network: proxy variables, a private CA, Basic credentials echoed.
-- Each case runs a child `orket lua` script under an environment of its own (the proxy and
-- CA variables are read by the child's HTTP client), against a recording proxy (a child
-- process that logs each request's first line and answers 502), the fake model server and,
-- where openssl is installed, a TLS server whose certificate a private CA signed.
local H = require "tests.helpers"

local fake = require("tests.fake_server").start()
local dir = H.tmpdir()

-- every variable that picks a proxy or a CA: unset in the child unless the case sets it
local NET_VARS = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy",
  "NO_PROXY", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR" }

local function run(script, env)
  local path = dir .. "/case.lua"
  H.write(path, script)
  local unset = {}
  for _, v in ipairs(NET_VARS) do
    if not (env or {})[v] then unset[#unset + 1] = "-u " .. v end
  end
  local r = H.orket("lua " .. H.quote(path), { env = env, wrap = "env " .. table.concat(unset, " ") })
  assert.equal(0, r.status, r.stderr)
  return r.stdout
end

-- A recording proxy: -> its URL and a function that reads (and empties) its log
local function recording_proxy()
  local log, out = dir .. "/proxy.log", dir .. "/proxy.out"
  H.write(dir .. "/rec.lua", [[
local logf = arg[1]
require("tests.loopback_listen")(0, function(c)
  local buf = ""
  c:read_start(function(err, d)
    if err or not d then if not c:is_closing() then c:close() end return end
    buf = buf .. d
    local line = buf:match("^([^\r\n]*)\r?\n")
    if line then
      local f = io.open(logf, "a") f:write(line, "\n") f:close()
      c:read_stop()
      c:write("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", function() c:close() end)
    end
  end)
end)
]])
  local p = io.popen(string.format("cd %s && exec %s lua %s %s >%s 2>&1 & echo $!", H.quote(H.ROOT), H.quote(H.BIN),
    H.quote(dir .. "/rec.lua"), H.quote(log), H.quote(out)))
  local pid = tonumber(p:read("l"))
  p:close()
  local port = H.wait_for(function() return (H.read(out) or ""):match("listening http://127%.0%.0%.1:(%d+)") end,
    "the recording proxy")
  return "http://127.0.0.1:" .. port .. "/", function()
    local t = H.read(log) or ""
    os.remove(log)
    return t
  end, pid
end

local PROXY, proxied, proxy_pid = recording_proxy()
teardown(function()
  fake.stop()
  os.execute("kill " .. proxy_pid)
  H.cleanup()
end)

-- one model call through orket.llm: prints the result's content, or the failure's class,
-- attempts and message
local function chat_script(base_url, model, keyless)
  return string.format([[
local llm = require "orket.llm"
local c = assert(llm.open({ default = "p:fake-model", providers = { p = { kind = "openai", base_url = %q,
  api_key_env = %s, retry = { max_attempts = 3, base_ms = 5, max_ms = 10 },
  timeouts = { connect_ms = 3000, first_byte_ms = 5000, idle_ms = 5000, total_ms = 10000 } } } },
  { getenv = function() return "sk-net-test-0123456789" end }))
local r, msg, class, f = c:chat { model = "p:" .. %q, messages = { { role = "user", content = "hi" } } }
if r then print("ok", r.content) else print("failed", class, f and f.attempts, msg) end
]], base_url, keyless and "nil" or '"NET_TEST_KEY"', model)
end

describe("a proxy variable holding a password", function()
  local BAD = {
    { "http_proxy", "htp://alice:S3cretPW@proxy.corp.example:3128/", "http://models.corp.invalid/v1" },
    { "https_proxy", "http://alice:S3cretPW@[::1:3128/", "https://models.corp.invalid/v1" },
    { "ALL_PROXY", "http://alice:S3cretPW@proxy.corp.example:99999/", "https://models.corp.invalid/v1" },
  }
  for _, case in ipairs(BAD) do
    it("is masked in the failure, which is final, when " .. case[1] .. " is no proxy URL", function()
      local out = run(chat_script(case[3], "fake-model"), { [case[1]] = case[2] })
      assert.not_matches("S3cretPW", out, 1, true)
      assert.not_matches("alice", out, 1, true)
      assert.matches("failed\tbad_request\t1\t", out, 1, true)
      assert.matches("[redacted]@", out, 1, true)
      assert.matches(case[1] .. " is no proxy URL libcurl can use", out, 1, true)
    end)
  end
end)

describe("a model server on this machine", function()
  it("is reached directly whatever the proxy variables say", function()
    local out = run(chat_script(fake.url .. "/v1", "fake-model"),
      { http_proxy = "http://127.0.0.1:9/", ALL_PROXY = "http://127.0.0.1:9/" })
    assert.matches("^ok\t", out)
    assert.equal("", proxied())
  end)
end)

describe("a model server elsewhere", function()
  it("goes through http_proxy, and a failure there names the proxy, not the server", function()
    local out = run(chat_script("http://models.corp.invalid/v1", "fake-model"), { http_proxy = PROXY })
    assert.matches("POST http://models.corp.invalid/v1/chat/completions HTTP/1.1", proxied(), 1, true)
    assert.matches("^failed\ttransient", out) -- the proxy's 502
    local dead = run(chat_script("http://models.corp.invalid/v1", "fake-model"),
      { http_proxy = "http://u:DeadPW99@127.0.0.1:9/" })
    assert.matches("(through the proxy http://127.0.0.1:9, from http_proxy: to reach models.corp.invalid directly, "
      .. "add it to NO_PROXY", dead, 1, true)
    assert.not_matches("nothing is listening", dead, 1, true)
    assert.not_matches("DeadPW99", dead, 1, true)
  end)

  it("goes direct when NO_PROXY names its host as written", function()
    run(chat_script("http://models.corp.invalid/v1", "fake-model"), { http_proxy = PROXY, NO_PROXY = ".corp.invalid" })
    run(chat_script("http://models.corp.invalid/v1", "fake-model"), { http_proxy = PROXY, no_proxy = "x.example, models.corp.invalid" })
    assert.equal("", proxied())
  end)

  -- as libcurl 7.88 reads no_proxy: "*" is every host only as the whole value, and a /0
  -- range is the one address (neither names every host)
  it("goes through the proxy when no_proxy holds '*' in a list, or a /0 range", function()
    run(chat_script("http://models.corp.invalid/v1", "fake-model"), { http_proxy = PROXY, no_proxy = "x.example,*" })
    local _, n = proxied():gsub("POST http://models.corp.invalid/v1/chat/completions", "")
    assert.is_true(n >= 1)
    run(chat_script("http://192.0.2.7/v1", "fake-model"), { http_proxy = PROXY, no_proxy = "0.0.0.0/0" })
    assert.matches("POST http://192.0.2.7/v1/chat/completions", proxied(), 1, true)
  end)
end)

describe("git", function()
  local function git_script(url)
    return string.format([[
local G = require "orket.c.gitrepo"
local task = require "orket.task"
print("ls_remote", G.ls_remote(%q))
local repo = assert(G.init(%q, { name = "t", email = "t@example.com" }))
task.spawn(function() print("push", repo:push(%q, "main", {})) end)
]], url, H.tmpdir() .. "/r", url)
  end

  it("pushes and lists an https remote through https_proxy", function()
    local out = run(git_script("https://forge.corp.invalid/acme/r.git"), { https_proxy = PROXY })
    local log = proxied()
    local _, n = log:gsub("CONNECT forge.corp.invalid:443 HTTP/1.1", "")
    assert.equal(2, n, log .. out)
    assert.matches("proxy returned unexpected status: 502", out, 1, true)
  end)

  -- direct wherever model calls go direct: libgit2's own no_proxy matched only the exact
  -- host, so a subdomain went through the proxy
  it("goes direct to a remote no_proxy names by its domain", function()
    run(git_script("https://forge.corp.invalid/acme/r.git"), { https_proxy = PROXY, no_proxy = "corp.invalid" })
    assert.is_nil(proxied():find("CONNECT forge.corp.invalid", 1, true))
  end)

  it("masks a proxy password in libgit2's message", function()
    local out = run(git_script("https://forge.corp.invalid/acme/r.git"),
      { https_proxy = "htp://alice:S3cretPW@proxy.corp.example:3128/" })
    assert.not_matches("S3cretPW", out, 1, true)
  end)

  it("reaches a remote on this machine directly", function()
    local out = run(git_script(PROXY .. "acme/r.git"), { http_proxy = "http://127.0.0.1:9/", https_proxy = "http://127.0.0.1:9/" })
    -- the recording proxy stands in for the forge here: asked directly, in origin form
    assert.matches("GET /acme/r.git/info/refs?service=git-upload-pack", proxied(), 1, true)
    assert.matches("unexpected http status code: 502", out, 1, true)
  end)
end)

describe("a Basic credential in base_url", function()
  it("is masked when a server echoes its Authorization header", function()
    local base = fake.url:gsub("^http://", "http://bob:BasePW99@") .. "/v1"
    local out = run(chat_script(base, "echo_key,tool_times=0", true), {})
    assert.matches("^ok\t", out)
    assert.not_matches("Ym9iOkJhc2VQVzk5", out, 1, true)
    assert.matches("Basic [redacted]", out, 1, true)
  end)
end)

describe("a server whose certificate a private CA signed", function()
  local has_openssl = H.sh("command -v openssl") == 0
  local cit = has_openssl and it or function(name) pending(name .. " [needs openssl]") end
  local tls, ca, pid
  setup(function()
    if not has_openssl then return end
    tls = H.tmpdir()
    local q = H.quote(tls)
    local status, out = H.sh(string.format([[(cd %s &&
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=net-test-ca &&
      openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 &&
      printf 'subjectAltName=IP:127.0.0.1\n' > ext &&
      openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext &&
      mkdir cadir && cp ca.pem cadir/ && openssl rehash cadir)]], q))
    assert.equal(0, status, out)
    local port = H.free_port()
    local p = io.popen(string.format("cd %s && exec openssl s_server -accept 127.0.0.1:%d -cert srv.pem -key srv.key "
      .. "-www -quiet >/dev/null 2>&1 & echo $!", q, port))
    pid = tonumber(p:read("l"))
    p:close()
    ca = "https://127.0.0.1:" .. port .. "/"
    H.wait_for(function() return H.sh("openssl s_client -connect 127.0.0.1:" .. port .. " </dev/null") == 0 end,
      "openssl s_server")
  end)
  teardown(function() if pid then os.execute("kill " .. pid) end end)

  local REQ = [[
local http = require "orket.c.http"
local r = assert(http.request { url = %q, connect_timeout_ms = 3000, total_timeout_ms = 5000 })
local status, h, code = r:headers()
print(status or "failed", status and "" or code, status and "" or h)
]]

  cit("is refused for good, with how to trust the CA, when no variable names it", function()
    local out = run(string.format(REQ, ca), {})
    assert.matches("^failed\tbad_request\t", out)
    assert.matches("SSL certificate problem", out, 1, true)
    assert.matches("set SSL_CERT_FILE or CURL_CA_BUNDLE to its PEM file", out, 1, true)
    assert.matches("update-ca-certificates", out, 1, true)
  end)

  for _, v in ipairs { "SSL_CERT_FILE", "CURL_CA_BUNDLE", "SSL_CERT_DIR" } do
    cit("is trusted when " .. v .. " names the CA, as curl(1) takes it", function()
      local out = run(string.format(REQ, ca), { [v] = tls .. (v == "SSL_CERT_DIR" and "/cadir" or "/ca.pem") })
      assert.matches("^200\t", out)
    end)
  end

  cit("a model call is not retried", function()
    local out = run(chat_script(ca .. "v1", "fake-model"), {})
    assert.matches("^failed\tbad_request\t1\t", out)
  end)
end)
