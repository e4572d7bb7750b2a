-- What agent code sees of the machine (docs/verify.md, "What agent code can see and do"):
-- the scripted coder runs an attacker's script through run_command. It reads the project's
-- store, pepper and secret store with its key, /etc/shadow, another project, a home directory and /run, connects to a
-- world-writable unix socket outside the workspace and plants a .git in its card's directory.
-- Each read and connect fails, the planted .git is only data (a card's directory holds no
-- .git of the engine's: docs/git.md), and the result names the layers that held. Under nsdeny (namespaces
-- refused, as in a default container) the view is refused, the result and `orket card` name
-- it, and Landlock alone still narrows the reads.
local H = require "tests.helpers"
local uv = require "luv"

local card = H.card_json
local NSDENY = H.BIN:gsub("orket$", "nsdeny")
local PY = "/usr/bin/python3"

-- The attacks, one line of output each: "<name> HELD" when refused, "<name> GOT <what>"
-- when the attacker reached it.
local function attack_script(o)
  local lines = {
    "try() { n=$1; shift; if out=$(\"$@\" 2>&1); then echo \"$n GOT $(printf %s \"$out\" | head -c 60 | tr '\\n' ' ')\"; else echo \"$n HELD\"; fi; }",
    "try db cat " .. H.quote(o.dir .. "/.orket/orket.db"),
    "try pepper cat " .. H.quote(o.dir .. "/.orket/keys.pepper"),
    "try secretkey cat " .. H.quote(o.dir .. "/.orket/secrets.key"),
    "try secretstore cat " .. H.quote(o.dir .. "/.orket/secrets.json"),
    "try worktrees cat " .. H.quote(o.dir .. "/.orket/worktrees/OTHER-9/secret.txt"),
    "try shadow cat /etc/shadow",
    "try other cat " .. H.quote(o.other .. "/secret.txt"),
    "try home ls /root",
    "try run ls /run",
    "try varrun ls /var/run/",
  }
  if o.git then
    lines[#lines + 1] = "try git sh -c 'echo \"gitdir: /tmp/elsewhere\" > .git'"
    lines[#lines + 1] = "try gitrm rm -f .git"
    lines[#lines + 1] = "try gitafter cat .git"
  end
  if o.py then
    lines[#lines + 1] = "try unix " .. PY .. " -c " .. H.quote(
      "import socket; s = socket.socket(socket.AF_UNIX); s.connect(" .. string.format("%q", o.sock) .. "); print('connected')")
    lines[#lines + 1] = "try socketpair " .. PY .. " -c " .. H.quote("import socket; a, b = socket.socketpair(); print('pair')")
  end
  lines[#lines + 1] = "try passwd grep -c '^root:x:' /etc/passwd"
  lines[#lines + 1] = "try usr ls /usr/bin/env"
  return table.concat(lines, "\n")
end

-- A project whose coder runs the attack once, then hands in; an issue with a check so a
-- verification row records its layers too.
local function project(attack_git)
  local dir, other = H.tmpdir(), H.tmpdir()
  H.write(other .. "/secret.txt", "another project's secret\n")
  local sockdir = H.tmpdir()
  local sock = sockdir .. "/open.sock"
  local server = uv.new_pipe(false)
  assert(server:bind(sock))
  assert(server:listen(8, function() end))
  os.execute("chmod 777 " .. H.quote(sockdir) .. " " .. H.quote(sock))
  local py = uv.fs_stat(PY) ~= nil
  H.write(dir .. "/orket.lua", [[
name = "t"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
verify = { commands = { "sh" } }
]])
  local script = attack_script { dir = dir, other = other, sock = sock, py = py, git = attack_git }
  H.write(dir .. "/script.lua", string.format([[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = { call("run_command", { argv = { "sh", "-c", %q } }) } } },
  { role = "coder", match = "HELD", reply = { tool_calls = { call("update_issue_status", { status = "ready_for_testing" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "done" } }
]], script))
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/epics/one.json", [[
{ "id": "ONE", "issues": [ { "id": "ONE-1", "summary": "attack", "seat": "dev",
  "verification": { "command": ["sh", "-c", "cat /etc/shadow; ls /run; true"] } } ] }
]])
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  -- a pepper to steal, should the project not have made one yet, and another card's work
  if not uv.fs_stat(dir .. "/.orket/keys.pepper") then H.write(dir .. "/.orket/keys.pepper", "pepper-secret\n") end
  -- and a secret of the project's store, with its key (docs/secrets.md)
  assert.equal(0, H.orket("secrets set BAIT", { cwd = dir, stdin = "bait-secret-value" }).status)
  os.execute("mkdir -p " .. H.quote(dir .. "/.orket/worktrees/OTHER-9"))
  H.write(dir .. "/.orket/worktrees/OTHER-9/secret.txt", "another card's work\n")
  return dir, server, py
end

-- The run_command result as the model got it (the journal's copy).
local function result_of(dir)
  local log = H.orket("log 1 --full", { cwd = dir })
  assert.equal(0, log.status, log.stderr)
  local out = log.stdout:match('"stdout":"(.-)","') or ""
  return log.stdout, out:gsub("\\n", "\n")
end

describe("agent code's view of the machine", function()
  after_each(H.cleanup)

  it("reaches nothing outside its workspace, and the result names the layers", function()
    local dir, server, py = project(true)
    local r = H.orket("run ONE", { cwd = dir })
    server:close()
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local log, out = result_of(dir)
    local layers = assert(log:match('"layers":"([^"]*)"'), "the result names the layers: " .. log)
    if not layers:find("%f[%w_]view%f[^%w_]") then
      -- the kernel refused the mounts here: the result must say why; the Landlock case is
      -- the nsdeny test's below
      assert.matches('"layers_missing":{[^}]*"view":"', log)
      print("\nagent_view_test: SKIPPED the view's checks: the kernel refused it here: " ..
        (log:match('"view":"([^"]*)"') or "?"))
      return
    end
    for _, name in ipairs { "db", "pepper", "secretkey", "secretstore", "worktrees", "shadow", "other", "home", "run",
        "varrun" } do
      assert.matches("\n?" .. name .. " HELD\n", "\n" .. out, nil, false)
    end
    assert.is_nil(out:find("pepper-secret", 1, true))
    assert.is_nil(out:find("another project's secret", 1, true))
    assert.is_nil(out:find("another card's work", 1, true))
    -- what a toolchain needs is there, and passwd holds no password
    assert.matches("passwd GOT %d", out)
    assert.matches("usr GOT /usr/bin/env", out)
    if py then
      if layers:find("%f[%w_]seccomp%f[^%w_]") then
        assert.matches("\nunix HELD\n", "\n" .. out)
      else
        print("\nagent_view_test: SKIPPED the unix socket check: seccomp did not apply")
      end
      assert.matches("socketpair GOT pair", out)
    else
      print("\nagent_view_test: SKIPPED the unix socket checks: no " .. PY .. " to connect with")
    end
    -- the .git the agent planted (then removed) was its own file: the engine opens the
    -- project's repository itself, so the card ended done and main's repository is intact
    assert.matches("git GOT", out)
    assert.equal("done", card(dir, "ONE-1").card.status)
    assert.equal("directory", uv.fs_stat(dir .. "/workspace/.git").type)
    -- the verification's row keeps the layers too, and `orket card` shows them
    local c = card(dir, "ONE-1")
    assert.matches("view", c.verifications[1].layers)
    local text = H.orket("card ONE-1", { cwd = dir }).stdout
    assert.matches("layers: [^\n]*view", text)
  end)

  it("where namespaces are refused, names the view as missing and Landlock still narrows reads", function()
    if not uv.fs_stat(NSDENY) then
      print("\nagent_view_test: SKIPPED the refused-view case: no nsdeny binary (make build/nsdeny)")
      return
    end
    -- without the view the .git file is the workspace's like any other: the engine's own
    -- checks before its git operations stand there, so it is not attacked here
    local dir, server = project(false)
    local r = H.orket("run ONE", { cwd = dir, wrap = H.quote(NSDENY) })
    server:close()
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local log, out = result_of(dir)
    local layers = assert(log:match('"layers":"([^"]*)"'), log)
    assert.is_nil(layers:find("%f[%w_]view%f[^%w_]"), layers)
    -- the refusal, with the kernel's reason, to the model...
    assert.matches('"layers_missing":{[^}]*"view":"unshare%(CLONE_NEWNS%): Operation not permitted"', log)
    -- ...and to the person: the verification row and `orket card`
    local text = H.orket("card ONE-1", { cwd = dir }).stdout
    assert.matches("layers: [^\n]*%(missing [^\n]*view: unshare%(CLONE_NEWNS%): Operation not permitted", text)
    if not layers:find("%f[%w_]landlock%f[^%w_]") then
      assert.matches('"landlock":"', log)
      print("\nagent_view_test: SKIPPED the Landlock-only reads: Landlock did not apply here either")
      return
    end
    for _, name in ipairs { "db", "pepper", "secretkey", "secretstore", "worktrees", "shadow", "other", "home", "run",
        "varrun" } do
      assert.matches("\n" .. name .. " HELD\n", "\n" .. out)
    end
    assert.matches("usr GOT /usr/bin/env", out)
  end)

  it("orket validate names the file and line of a bad extra path", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", 'name = "t"\nverify = {\n  read_only = { "/opt/jdk" },\n  read_write = { "/var/../etc" },\n}\n')
    local r = H.orket("validate", { cwd = dir })
    assert.is_true(r.status ~= 0)
    assert.matches('orket.lua:4: verify.read_write[1]: must be an absolute path', r.stdout, 1, true)
  end)
end)
