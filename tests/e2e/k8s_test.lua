-- deploy/k8s/: every manifest valid against the Kubernetes API's published schema (the npm
-- package kubernetes-models carries it, tests/k8s/validate.mjs reads the files with it), and
-- the manifests run for real with `podman kube play` on the image `make image-test` builds:
-- serve and two workers as their Deployments over the project's PVC, an epic started with
-- POST /v1/runs worked by the worker pods to done, then `podman kube down` and everything
-- the test made removed.
--
-- What podman 4.3 (Debian 12) plays: Pods, Deployments, PersistentVolumeClaims (a named
-- volume each) and ConfigMaps; a Service is passed over. So, here:
-- - PostgreSQL is the external-service set-up (postgres-external.yaml's way): a server the
--   test starts on loopback (tests/pg.lua), whose address goes into orket-config's
--   database_url. postgres.yaml's StatefulSet is validated, not run: kube play has no
--   StatefulSet, and no registry here serves the postgres image.
-- - The Secret is made with `podman secret create` (kube play 4.3 has no kind Secret, and
--   reads a secretKeyRef from a podman secret holding {"KEY": base64}), with secret.yaml's keys.
-- - The pods share the host's network (kube play --network host), so that they reach that
--   server and the test reaches serve; serve's port 8765 becomes a free one, the image the
--   one `make image-test` tagged, and each object's name gets the test's own suffix. These
--   are the only changes made to the files.
local H = require "tests.helpers"
local npm = require "tests.npm"
local pg = require "tests.pg"
local cjson = require "cjson"
local uv = require "luv"

local K8S = H.ROOT .. "/deploy/k8s"
local FILES = { "config.yaml", "secret.yaml", "pvc.yaml", "serve.yaml", "workers.yaml", "postgres.yaml",
  "postgres-external.yaml" }
local IMAGE = os.getenv("ORKET_IMAGE") or "localhost/orket:test"
local q = H.quote

local function free_port()
  local t = uv.new_tcp()
  t:bind("127.0.0.1", 0)
  local port = t:getsockname().port
  t:close()
  return port
end

local function validate(files)
  local node, why = npm.node_at_least(22, 0) -- kubernetes-models 5 wants Node 22
  if not node then return nil, why end
  return npm.node("validate.mjs", files, { from = "tests/k8s", node = node })
end

describe("deploy/k8s/", function()
  after_each(H.cleanup)

  it("each manifest is valid against the Kubernetes API's schema", function()
    local paths = {}
    for i, f in ipairs(FILES) do paths[i] = K8S .. "/" .. f end
    local r, why = validate(paths)
    if not r then return pending("the Kubernetes schema from npm: " .. why) end
    assert.equal(0, r.status, r.stdout .. r.stderr)
    for _, doc in ipairs { "config.yaml: ConfigMap/orket-config ok", "config.yaml: ConfigMap/orket-roles ok",
      "config.yaml: ConfigMap/orket-policies ok", "secret.yaml: Secret/orket ok",
      "pvc.yaml: PersistentVolumeClaim/orket-project ok", "serve.yaml: Deployment/orket-serve ok",
      "serve.yaml: Service/orket-serve ok", "workers.yaml: Deployment/orket-worker ok",
      "postgres.yaml: StatefulSet/postgres ok", "postgres.yaml: Service/postgres ok",
      "postgres-external.yaml: Service/postgres ok" } do
      assert.matches("/deploy/k8s/" .. doc, r.stdout, 1, true)
    end
    -- the check can fail: a value of the wrong type, a missing required field, a kind
    -- the API has not, each named with its file and line
    local dir = H.tmpdir()
    H.write(dir .. "/bad.yaml", (H.read(K8S .. "/workers.yaml"):gsub("replicas: 2", "replicas: two"))
      .. "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: x\nspec:\n  resources:\n"
      .. "    requests: {storage: 1Gi}\n  accessModes: ReadWriteOnce\n"
      .. "---\napiVersion: v1\nkind: Sekret\nmetadata:\n  name: y\n")
    r = validate { dir .. "/bad.yaml" }
    assert.equal(1, r.status, r.stdout)
    assert.matches("bad.yaml:5: Deployment/orket-worker: data/spec/replicas must be integer", r.stdout, 1, true)
    assert.matches("PersistentVolumeClaim/x: data/spec/accessModes must be array", r.stdout, 1, true)
    assert.matches("Sekret/y: no schema for apiVersion v1 kind Sekret", r.stdout, 1, true)
    -- and no secret is written in the files
    for _, f in ipairs(FILES) do
      local text = H.read(K8S .. "/" .. f)
      assert.is_nil(text:find("ork_%x"), "a literal key in " .. f)
      assert.is_nil(text:find("orket_key: \"[^\"]"), "a key's value in " .. f)
      assert.is_nil(text:find("pg_password: \"[^\"]"), "a password's value in " .. f)
    end
  end)

  -- serve's start copied a ConfigMap's orket.lua over the project's before it checked it:
  -- a bad one stopped serve and took the good file from every worker that restarted; and
  -- the workers waited only for a marker that stayed on the volume from the first start.
  -- The containers' own scripts, run here as they are but for their folders (the volume's
  -- /work, the ConfigMaps' /etc/orket, the binary) and their last exec (echoed).
  it("serve's start checks the ConfigMaps' files before they replace the project's; workers wait for that check", function()
    if H.sh("command -v sha256sum mktemp >/dev/null") ~= 0 then return pending("no sha256sum or mktemp here") end
    local root = H.tmpdir()
    local function script(file)
      local text = H.read(K8S .. "/" .. file)
      local lines, indent = {}, nil
      for line in (text:match("\n%s*%- |\n(.-)\n%s*env:\n") .. "\n"):gmatch("([^\n]*)\n") do
        indent = indent or #line:match("^ *")
        lines[#lines + 1] = line:sub(indent + 1)
      end
      local sh = table.concat(lines, "\n")
      sh = sh:gsub("exec /usr/local/bin/orket (%w+)", "exec echo %1")
      sh = sh:gsub("/work", root .. "/work"):gsub("/etc/orket", root .. "/etc/orket")
      sh = sh:gsub("/usr/local/bin/orket", (q(H.BIN):gsub("%%", "%%%%")))
      H.write(root .. "/" .. file .. ".sh", sh)
      return root .. "/" .. file .. ".sh"
    end
    local serve_sh, worker_sh = script("serve.yaml"), script("workers.yaml")
    assert(os.execute("mkdir -p " .. q(root .. "/work") .. " " .. q(root .. "/etc/orket/config") .. " "
      .. q(root .. "/etc/orket/roles") .. " " .. q(root .. "/etc/orket/policies")))
    -- the ConfigMaps' files, from config.yaml
    local config = H.read(K8S .. "/config.yaml")
    local function block(key)
      local body = assert(config:match("\n  " .. key:gsub("%p", "%%%0") .. ": |\n(.-)\n%-%-%-"), key)
      return (body:gsub("\n    ", "\n"):gsub("^    ", "")) .. "\n"
    end
    local good = block("orket.lua")
    H.write(root .. "/etc/orket/config/orket.lua", good)
    H.write(root .. "/etc/orket/roles/tester.lua", block("tester.lua"))
    H.write(root .. "/etc/orket/policies/deployment.lua", config:match("\n  deployment%.lua: |\n(.*)$"):gsub("\n    ", "\n")
      :gsub("^    ", ""))
    local function run(sh, secs)
      local rc, out = H.sh(string.format("timeout %d sh -ec \"$(cat %s)\" 2>&1", secs or 60, q(sh)))
      return rc, out
    end
    -- the first start: the project made, the files checked and in place, the marker written
    local rc, out = run(serve_sh)
    assert.equal(0, rc, out)
    assert.matches("ok: orket.lua, 1 epic %(2 issues%), 4 roles, %d+ tools, 2 policies", out)
    assert.matches("exec echo serve", H.read(serve_sh), 1, true)
    assert.matches("serve " .. root .. "/work/project --listen", out, 1, true)
    local project = root .. "/work/project"
    assert.equal(good, H.read(project .. "/orket.lua"))
    assert.is_truthy(H.read(project .. "/roles/tester.lua"))
    assert.is_truthy(H.read(project .. "/policies/deployment.lua"))
    local marker = H.read(root .. "/work/project.ready")
    assert.matches("^%x+  %-\n$", marker)
    local _, left = H.sh("ls -A " .. q(root .. "/work"))
    assert.equal("project\nproject.ready\n", left) -- no copy left behind
    -- a worker that sees the same ConfigMaps starts
    rc, out = run(worker_sh, 10)
    assert.equal(0, rc, out)
    assert.matches("worker " .. project .. " --name", out, 1, true)
    -- a bad orket.lua: serve stops, the project's file stays the good one, the marker is gone
    H.write(root .. "/etc/orket/config/orket.lua", (good:gsub("concurrency = 3", 'concurrency = "three"')))
    rc, out = run(serve_sh)
    assert.equal(1, rc, out)
    assert.matches('concurrency: must be an integer, not string', out, 1, true)
    assert.matches("the project's files are left as they were", out, 1, true)
    assert.equal(good, H.read(project .. "/orket.lua"))
    assert.is_nil(H.read(root .. "/work/project.ready"))
    _, left = H.sh("ls -A " .. q(root .. "/work"))
    assert.equal("project\n", left)
    -- a worker (re)starting meanwhile waits for a check of the files it sees, whichever
    rc, out = run(worker_sh, 3)
    assert.equal(124, rc, out)
    assert.matches("waiting for serve to check the project with these ConfigMaps", out, 1, true)
    -- a marker left from an earlier start, of other files, is not that check either
    H.write(root .. "/work/project.ready", marker)
    rc = run(worker_sh, 3)
    assert.equal(124, rc)
    -- fixed (another good edit) and serve started again: a worker already waiting since the
    -- bad ConfigMap goes on (it hashed the files once, and waited for good: the kubelet
    -- updates a mounted ConfigMap in place), and so does one started now
    local bg = root .. "/waiting"
    -- (the subshell's own output away from H.sh's pipe, which would wait for its end)
    H.sh(string.format("(timeout 30 sh -ec \"$(cat %s)\" >%s.out 2>&1; echo $? >%s.rc) >/dev/null 2>&1 &", q(worker_sh),
      q(bg), q(bg)))
    H.wait_for(function() return (H.read(bg .. ".out") or ""):find("waiting for serve", 1, true) end,
      "the worker to wait")
    H.write(root .. "/etc/orket/config/orket.lua", (good:gsub("concurrency = 3", "concurrency = 2")))
    rc, out = run(serve_sh)
    assert.equal(0, rc, out)
    assert.matches("concurrency = 2", H.read(project .. "/orket.lua"), 1, true)
    assert.is_not.equal(marker, H.read(root .. "/work/project.ready"))
    H.wait_for(function() return H.read(bg .. ".rc") end, "the waiting worker to go on", 3000)
    assert.equal("0\n", H.read(bg .. ".rc"), H.read(bg .. ".out"))
    assert.matches("worker " .. project .. " --name", H.read(bg .. ".out"), 1, true)
    rc, out = run(worker_sh, 10)
    assert.equal(0, rc, out)
  end)

  -- The guide's command made the Secret from the key's file, its line end included
  -- (--from-file keeps every byte): ORKET_KEY then held 86 bytes, and serve refused to
  -- start ("ORKET_KEY: a key is ork_..."). The kube play test below makes its Secret apart.
  it("the Secret the guide's and secret.yaml's commands make holds a key orket serve takes", function()
    if H.sh("command -v kubectl") ~= 0 then return pending("kubectl is not installed (its --dry-run=client runs the command)") end
    local keys = require "orket.serve.keys"
    local dir = H.tmpdir()
    local hex = function(k) local _, o = H.sh("od -An -N" .. k .. " -tx1 /dev/urandom | tr -d ' \\n'") return o end
    local key = "ork_" .. hex(8) .. "_" .. hex(32)
    H.sh("mkdir -p " .. q(dir .. "/secrets"))
    -- the key file as the guide's printf writes it, and as an editor on Windows saves it
    -- (the command left the CR in)
    local runs = {}
    for _, ending in ipairs { "\n", "\r\n" } do
      for _, src in ipairs { { H.ROOT .. "/docs/guide/deploying.md", "" }, { K8S .. "/secret.yaml", "#%s*" } } do
        runs[#runs + 1] = { src, ending }
      end
    end
    for _, r in ipairs(runs) do
      local src, ending = r[1], r[2]
      H.write(dir .. "/secrets/orket_key", key .. ending)
      local text = H.read(src[1])
      -- the command: its line, and the lines its backslashes continue
      local lines, on = {}, false
      for line in text:gmatch("[^\n]+") do
        line = line:gsub("^" .. src[2], "")
        if not on and line:find("kubectl create secret generic orket", 1, true) then on = true end
        if on then
          lines[#lines + 1] = line:gsub("\\$", "")
          if not line:find("\\$") then break end
        end
      end
      assert(#lines > 0, "no kubectl create secret in " .. src[1])
      local cmd = table.concat(lines, " ") .. " --dry-run=client -o json"
      local rc, out = H.sh("cd " .. q(dir) .. " && " .. cmd)
      assert.equal(0, rc, src[1] .. ": " .. cmd .. "\n" .. out)
      local _, given = H.sh("printf %s " .. q(cjson.decode(out).data.orket_key) .. " | base64 -d")
      local what = src[1] .. (ending == "\n" and " (LF)" or " (CRLF)")
      assert.equal(key, given, what)
      assert(keys.parse(given), what)
    end
  end)

  it("runs an epic to done through the serve and worker pods under podman kube play", function()
    local function skip(why) return pending("podman kube play: " .. why) end
    if H.sh("command -v podman") ~= 0 then return skip("podman is not installed (sh scripts/deps.sh --image)") end
    if H.sh("podman image exists " .. q(IMAGE)) ~= 0 then
      return skip("the image " .. IMAGE .. " is not here: `make image-test` builds it")
    end
    local ok, why = pg.available()
    if not ok then return skip(why) end
    local tmp = H.tmpdir()
    -- some hosts refuse podman's default open-files and process limits for root: at most
    -- the hard limits here (docs/guide/deploying.md)
    local _, hard = H.sh("ulimit -Hn; ulimit -Hu")
    local n, u = hard:match("(%d+)%s+(%d+)")
    n, u = math.min(tonumber(n) or 4096, 4096), math.min(tonumber(u) or 4096, 4096)
    H.write(tmp .. "/containers.conf", string.format('[containers]\ndefault_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]\n',
      n, n, u, u))
    local env = "CONTAINERS_CONF=" .. q(tmp .. "/containers.conf") .. " "
    -- the OCI runtime podman's own default (crun), else runc, as make image-test chooses
    local podman
    for _, rt in ipairs { "", "--runtime runc " } do
      if H.sh(env .. "podman " .. rt .. "run --rm --network none " .. q(IMAGE) .. " version") == 0 then
        podman = env .. "podman " .. rt
        break
      end
    end
    if not podman then return skip("podman cannot start a container on this kernel (namespaces or cgroups refused)") end

    -- the objects' names, each with this test's own suffix: test runs of other checkouts may
    -- play the same files on this machine at the same time
    local tag = string.format("-t%d", uv.os_getpid())
    local names = { pods = { "orket-serve" .. tag .. "-pod-0", "orket-worker" .. tag .. "-pod-0",
      "orket-worker" .. tag .. "-pod-1" }, secret = "orket" .. tag,
      volumes = { "orket-project" .. tag, "orket-config" .. tag, "orket-roles" .. tag, "orket-policies" .. tag } }
    local serve_ctr, worker_ctrs = names.pods[1] .. "-serve", { names.pods[2] .. "-worker", names.pods[3] .. "-worker" }
    for _, v in ipairs(names.volumes) do
      assert.is_not.equal(0, (H.sh("podman volume exists " .. v)), "a volume " .. v .. " is here already: whose?")
    end
    local server = pg.start { tcp_port = free_port() }
    local all = tmp .. "/all.yaml"
    local function cleanup()
      H.sh(podman .. "kube down " .. q(all))
      for _, p in ipairs(names.pods) do H.sh("podman pod rm -f " .. p) end
      for _, v in ipairs(names.volumes) do H.sh("podman volume rm -f " .. v) end
      H.sh("podman secret rm " .. names.secret)
      server.stop()
    end
    local done, err = pcall(function()
      local port = server.url:match("port=(%d+)")
      assert.equal(0, (H.sh(string.format("PGPASSWORD=%s psql -q %s -c 'CREATE DATABASE orket'", q(server.password),
        q("postgresql://orket@127.0.0.1:" .. port .. "/postgres")))))
      -- the Secret: secret.yaml's keys, with a key and the database's password
      local hex = function(k) local _, o = H.sh("od -An -N" .. k .. " -tx1 /dev/urandom | tr -d ' \\n'") return o end
      local key = "ork_" .. hex(8) .. "_" .. hex(32)
      local secret = H.read(K8S .. "/secret.yaml")
      local data = {}
      for k, v in pairs { orket_key = key, pg_password = server.password } do
        assert.matches("\n  " .. k .. ": \"\"", secret, 1, true)
        local _, b64 = H.sh("printf %s " .. q(v) .. " | base64 -w0")
        data[k] = b64
      end
      H.write(tmp .. "/secret.json", cjson.encode(data))
      local rc, out = H.sh("podman secret create " .. names.secret .. " " .. q(tmp .. "/secret.json"))
      assert.equal(0, rc, out)
      -- the manifests, as they are but for the image, the database's address and serve's port
      local http = free_port()
      local text = {}
      for _, f in ipairs { "config.yaml", "pvc.yaml", "serve.yaml", "workers.yaml" } do
        text[#text + 1] = H.read(K8S .. "/" .. f)
      end
      local yaml, subs = table.concat(text, "\n---\n"), 0
      local function sub(from, to)
        local c
        yaml, c = yaml:gsub(from:gsub("%p", "%%%0"), (to:gsub("%%", "%%%%")))
        assert(c > 0, from)
        subs = subs + c
      end
      sub("image: orket:latest", "image: " .. IMAGE)
      sub("database_url: postgresql://orket@postgres:5432/orket", "database_url: postgresql://orket@127.0.0.1:" .. port .. "/orket")
      sub("8765", tostring(http))
      for _, obj in ipairs { "orket-serve", "orket-worker", "orket-project", "orket-config", "orket-roles", "orket-policies" } do
        sub("name: " .. obj .. "\n", "name: " .. obj .. tag .. "\n")
        yaml = yaml:gsub("claimName: " .. obj:gsub("%p", "%%%0") .. "\n", "claimName: " .. obj .. tag .. "\n")
      end
      sub("name: orket\n", "name: orket" .. tag .. "\n") -- the Secret, in each secretKeyRef
      H.write(all, yaml)
      rc, out = H.sh(podman .. "kube play --network host " .. q(all))
      assert.equal(0, rc, out)
      local _, ps = H.sh("podman pod ps --format '{{.Name}} {{.Status}}'")
      for _, p in ipairs(names.pods) do assert.is_truthy(ps:find(p .. " Running", 1, true), ps) end
      local s = { url = "http://127.0.0.1:" .. http }
      local ready, why_not = pcall(H.wait_for, function()
        return H.fetch { url = s.url .. "/health", total_timeout_ms = 2000 } == 200
      end, "serve's /health", 3000)
      assert(ready, tostring(why_not) .. ": " .. select(2, H.sh("podman logs " .. serve_ctr)))
      -- the config from the ConfigMaps is the project's: orket validate counted its files
      assert.matches("ok: orket.lua, 1 epic %(2 issues%), 4 roles, %d+ tools, 2 policies",
        select(2, H.sh("podman logs " .. serve_ctr)))
      local st, doc = H.api(s, "POST", "/v1/runs", key, { target = "START" })
      assert.equal(201, st)
      assert.is_false(doc.run.live) -- left to the workers' pods
      local id, state = math.tointeger(doc.run.id), nil
      local fin, ferr = pcall(H.wait_for, function()
        local _, d = H.api(s, "GET", "/v1/runs/" .. id, key)
        state = d and d.run and d.run.state
        return state == "done" or state == "failed"
      end, "the workers to finish the run", 3000)
      local logs = select(2, H.sh("podman logs " .. worker_ctrs[1] .. "; podman logs " .. worker_ctrs[2]))
      assert(fin and state == "done", tostring(ferr) .. " (state " .. tostring(state) .. "): " .. logs:sub(-3000))
      local _, board = H.api(s, "GET", "/v1/board", key)
      local status = {}
      for _, c in ipairs(board.cards) do status[c.id] = c.status end
      assert.same({ START = "done", ["START-1"] = "done", ["START-2"] = "done" }, status)
      -- the worker pods did the work, each worker named by its pod
      local worked = {}
      for line in logs:gmatch("[^\n]+") do
        local ev = cjson.decode(line:match("^{.*}$") or "null")
        if type(ev) == "table" and ev.card then
          assert.matches("^orket%-worker%-t%d+%-pod%-[01]$", ev.worker)
          worked[ev.card] = true
        end
      end
      assert.is_true(worked["START-1"] and worked["START-2"], logs:sub(-2000))
      local _, slog = H.sh("podman logs " .. serve_ctr)
      assert.is_nil(slog:find(key:sub(22), 1, true), "the key's secret is in serve's log")
      rc, out = H.sh(podman .. "kube down " .. q(all))
      assert.equal(0, rc, out)
      local _, left = H.sh("podman pod ps --format '{{.Name}}'")
      for _, p in ipairs(names.pods) do assert.is_nil(left:find(p, 1, true), p .. " is left after kube down") end
    end)
    cleanup()
    for _, v in ipairs(names.volumes) do assert.is_not.equal(0, (H.sh("podman volume exists " .. v)), v .. " is left") end
    assert.is_not.equal(0, (H.sh("podman secret inspect " .. names.secret .. " >/dev/null")), "the secret is left")
    assert(done, err)
  end)
end)
