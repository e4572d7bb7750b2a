-- deploy/compose.yaml and deploy/orket.service are valid for the tools that read them:
-- docker-compose (or podman-compose) config and systemd-analyze verify, which must say
-- nothing; and they hold what the deploying guide promises (PostgreSQL 15, serve with a
-- key file, workers, no password in the file; the unit's hardening).
local H = require "tests.helpers"

local sh = H.sh

local function have(tool) return os.execute("command -v " .. tool .. " >/dev/null 2>&1") == true end

-- the compose program installed, and deploy/compose.yaml quoted for the shell
local function compose()
  local tool = have("docker-compose") and "docker-compose" or have("podman-compose") and "podman-compose"
  assert(tool, "neither docker-compose nor podman-compose is installed (sh scripts/deps.sh installs docker-compose)")
  return tool, H.quote(H.ROOT .. "/deploy/compose.yaml")
end

describe("deploy/", function()
  after_each(H.cleanup)

  it("compose.yaml: a valid file with PostgreSQL 15, serve with its key file and workers", function()
    local tool, file = compose()
    local rc, out = sh("ORKET_PG_PASSWORD=secret-for-test " .. tool .. " -f " .. file .. " config")
    assert.equal(0, rc, out)
    assert.matches("image: postgres:15", out, 1, true)
    assert.matches("ORKET_KEY_FILE: /run/secrets/orket_key", out, 1, true)
    assert.matches("ORKET_DATABASE_URL: postgresql://orket@postgres:5432/orket", out, 1, true)
    assert.matches("%- serve\n", out)
    assert.matches("%- worker\n", out)
    -- without the password it refuses to start at all
    rc, out = sh("env -u ORKET_PG_PASSWORD " .. tool .. " -f " .. file .. " config")
    assert.is_not.equal(0, rc)
    assert.matches("ORKET_PG_PASSWORD", out, 1, true)
    -- and no secret is written in the file itself
    local text = H.read(H.ROOT .. "/deploy/compose.yaml")
    assert.is_nil(text:find("PASSWORD: [^$]"), "a literal password in compose.yaml")
    assert.is_nil(text:find("ork_%x"), "a literal key in compose.yaml")
  end)

  it("compose.yaml: Gitea only with the profile gitea, beside serve, workers and PostgreSQL", function()
    local tool, file = compose()
    local rc, out = sh("ORKET_PG_PASSWORD=secret-for-test " .. tool .. " -f " .. file .. " --profile gitea config")
    assert.equal(0, rc, out)
    local gitea = out:match("\n  gitea:\n(.-)\n  %w+:\n")
    assert(gitea, out)
    assert.matches("image: gitea/gitea:1.22", gitea, 1, true)
    assert.matches("profiles:\n    %- gitea\n", gitea)
    assert.matches("127.0.0.1:3000:3000", gitea, 1, true) -- loopback only, as serve's port
    assert.matches("GITEA__webhook__ALLOWED_HOST_LIST: serve", gitea, 1, true)
    -- the forge's token and webhook secret reach Orket from the environment, never the file
    assert.matches("FORGE_TOKEN: ''", out, 1, true)
    assert.matches("FORGE_HOOK_SECRET: ''", out, 1, true)
    rc, out = sh("ORKET_PG_PASSWORD=secret-for-test FORGE_TOKEN=tok-for-test " .. tool .. " -f " .. file .. " config")
    assert.equal(0, rc, out)
    assert.matches("FORGE_TOKEN: tok%-for%-test", out)
    -- each service the guide names, and no other
    rc, out = sh("ORKET_PG_PASSWORD=secret-for-test " .. tool .. " -f " .. file .. " --profile gitea config --services")
    assert.equal(0, rc, out)
    local services = {}
    for name in out:gmatch("[^\n]+") do services[#services + 1] = name end
    table.sort(services)
    assert.same({ "gitea", "postgres", "serve", "worker" }, services)
    -- the stack itself is started only where its images can be had
    if have("podman") then
      local missing = {}
      for _, image in ipairs { "docker.io/library/postgres:15", "docker.io/gitea/gitea:1.22" } do
        if sh("podman image exists " .. image) ~= 0 then
          local prc, pout = sh("timeout 60 podman pull -q " .. image)
          if prc ~= 0 then missing[#missing + 1] = image .. ": " .. pout:gsub("%s+$", "") end
        end
      end
      if #missing > 0 then
        print("\nSKIPPED (compose up of the full stack): its images cannot be pulled here:\n  "
          .. table.concat(missing, "\n  "))
      else
        print("\nSKIPPED (compose up of the full stack): the images are here, but starting the stack is not automated")
      end
    end
  end)

  it("orket.service: systemd-analyze verify says nothing, and the hardening leaves the runner its namespaces", function()
    assert(have("systemd-analyze"), "systemd-analyze is not installed (sh scripts/deps.sh installs systemd)")
    local text = H.read(H.ROOT .. "/deploy/orket.service")
    -- verify checks that ExecStart's program exists: the one built here stands in for the installed one
    local dir = H.tmpdir()
    local unit = text:gsub("/usr/local/bin/orket", H.BIN)
    H.write(dir .. "/orket.service", unit)
    local rc, out = sh("systemd-analyze verify " .. H.quote(dir .. "/orket.service"))
    assert.equal(0, rc, out)
    assert.equal("", out)
    for _, line in ipairs { "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
      "CapabilityBoundingSet=\n", "LoadCredential=orket_key:", "Environment=ORKET_KEY_FILE=%d/orket_key" } do
      assert.is_truthy(text:find("\n" .. line, 1, true), line)
    end
    for _, key in ipairs { "RestrictNamespaces", "ProtectKernelTunables", "ProtectProc", "SystemCallFilter",
      "MemoryDenyWriteExecute" } do
      assert.is_nil(text:find("\n" .. key .. "="), key .. " would refuse what the process runner needs")
    end
    -- a mistake is seen: the check can fail
    H.write(dir .. "/bad.service", (unit:gsub("NoNewPrivileges=yes", "NoNewPrivilegez=yes")))
    rc, out = sh("systemd-analyze verify " .. H.quote(dir .. "/bad.service"))
    assert.matches("Unknown key", out, 1, true)
  end)

  it("orket-podman.service: a valid unit whose container carries podman auto-update's label, and serves", function()
    assert(have("systemd-analyze"), "systemd-analyze is not installed (sh scripts/deps.sh installs systemd)")
    local text = H.read(H.ROOT .. "/deploy/orket-podman.service")
    local dir = H.tmpdir()
    -- verify checks that ExecStart's program exists: podman, where it is not installed, is stood in for
    local unit = have("podman") and text or text:gsub("/usr/bin/podman", "/bin/true")
    H.write(dir .. "/orket-podman.service", unit)
    local rc, out = sh("systemd-analyze verify " .. H.quote(dir .. "/orket-podman.service"))
    assert.equal(0, rc, out)
    assert.equal("", out)
    local run = text:match("\nExecStart=(.-[^\\])\n"):gsub("\\\n%s*", "")
    assert.matches("--label io.containers.autoupdate=local ", run, 1, true)
    assert.is_truthy(text:find("\nEnvironment=PODMAN_SYSTEMD_UNIT=%n\n", 1, true))
    assert.is_truthy(text:find("\nType=notify\n", 1, true))
    -- its podman command, run as systemd would run it (with this test's names, port and
    -- image), starts a server that answers; the image is the one `make image-test` builds
    local image = os.getenv("ORKET_IMAGE") or "localhost/orket:test"
    if not have("podman") or sh("podman image exists " .. image) ~= 0 then
      print("\nSKIPPED (running orket-podman.service's container): no podman or no image " .. image
        .. " (make image-test builds it)")
      return
    end
    local uv = require "luv"
    local id = string.format("orket-unit-test-%d-%d", uv.os_getpid(), math.random(1e6))
    local conf = dir .. "/containers.conf"
    H.write(conf, '[containers]\ndefault_ulimits = ["nofile=1024:4096", "nproc=4096:4096"]\n')
    local podman = "CONTAINERS_CONF=" .. H.quote(conf) .. " podman "
    if sh(podman .. "run --rm --network none " .. image .. " version") ~= 0 then podman = podman .. "--runtime runc " end
    local t = uv.new_tcp()
    t:bind("127.0.0.1", 0)
    local port = t:getsockname().port
    t:close()
    local function cleanup()
      sh(podman .. "rm -f -t 0 " .. id)
      sh("podman volume rm -f " .. id)
      sh("podman secret rm " .. id)
    end
    local ok, err = pcall(function()
      local key = dir .. "/key"
      H.write(key, "ork_" .. string.rep("ab", 8) .. "_" .. string.rep("cd", 32) .. "\n")
      assert.equal(0, (sh("podman secret create " .. id .. " " .. H.quote(key))))
      assert.equal(0, (sh("podman volume create " .. id)))
      rc, out = sh(podman .. "run --rm -v " .. id .. ":/work " .. image .. " init project")
      assert.equal(0, rc, out)
      local cmd = run:gsub("^/usr/bin/podman ", podman):gsub("%%t", dir):gsub("%%n", id .. ".service")
        :gsub("%-%-name orket ", "--name " .. id .. " "):gsub("127%.0%.0%.1:8765:", "127.0.0.1:" .. port .. ":")
        :gsub("orket%-project:/work", id .. ":/work"):gsub("%-%-secret orket_key,", "--secret " .. id .. ",target=orket_key,")
        :gsub("localhost/orket:latest", image)
      rc, out = sh("NOTIFY_SOCKET= " .. cmd)
      assert.equal(0, rc, cmd .. "\n" .. out)
      local up = pcall(H.wait_for, function()
        return H.fetch { url = "http://127.0.0.1:" .. port .. "/health", total_timeout_ms = 2000 } == 200
      end, "the unit's server", 2000)
      assert(up, select(2, sh("podman logs " .. id)))
      local _, label = sh("podman inspect --format '{{index .Config.Labels \"io.containers.autoupdate\"}}' " .. id)
      assert.equal("local", label:gsub("%s+$", ""))
      local stop = text:match("\nExecStop=/usr/bin/podman (.-)\n"):gsub("%%t", dir):gsub("%%n", id .. ".service")
      rc, out = sh(podman .. stop)
      assert.equal(0, rc, out)
    end)
    cleanup()
    assert(ok, err)
    if not uv.fs_stat("/run/systemd/system") then
      print("\nSKIPPED (podman auto-update itself): it restarts units through systemd, which does not run here")
    end
  end)

  it("leaves out ProtectKernelTunables= for a reason: a read-only /proc/sys refuses the runner's fresh /proc", function()
    -- what the unit's comment says, shown on this kernel: a user and PID namespace may
    -- mount its own /proc, but not once part of the existing one is overmounted (as
    -- ProtectKernelTunables= and ProtectKernelLogs= do)
    local fresh = "unshare --user --map-root-user --pid --fork --mount sh -c 'mount -t proc proc /proc && echo mounted'"
    local rc, out = sh(fresh)
    if rc ~= 0 or not out:find("mounted", 1, true) then
      pending("this kernel refuses the runner's namespaces here, so the check cannot be made: " .. out)
      return
    end
    rc, out = sh("unshare --mount --propagation private sh -c " .. H.quote(
      "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && " .. fresh))
    if out:find("mount: /proc/sys", 1, true) or out:find("unshare: unshare failed", 1, true) then
      pending("no mount namespace to try it in: " .. out)
      return
    end
    assert.is_nil(out:find("mounted", 1, true), out)
  end)
end)
