-- orket init --forge gitea|github: the workflow it writes passes the real GitHub Actions
-- validator (@action-validator/cli from npm, tests.npm; skipped with the reason only
-- when npm cannot install it), its report step posts the checks' outcome to a running
-- orket serve and refuses a hostile branch name, README.md carries the badge through the
-- first run, checks.sh is what verify.command runs, and bad arguments are named.
local H = require "tests.helpers"
local npm = require "tests.npm"
local cjson = require "cjson"

local function init(args)
  local dir = H.tmpdir()
  local r = H.orket("init " .. args, { cwd = dir })
  return r, dir
end

-- the shell script of a workflow's step (its `run: |` block; the "Report to Orket" one by default)
local function report_script(yml, step)
  local at = assert(yml:find("- name: " .. (step or "Report to Orket"), 1, true))
  local body = assert(yml:match("\n        run: |\n(.-)$", at))
  local lines = {}
  for line in (body .. "\n"):gmatch("([^\n]*)\n") do
    if line ~= "" and not line:match("^          ") then break end
    lines[#lines + 1] = line:sub(11)
  end
  return table.concat(lines, "\n") .. "\n"
end

local function sh(script, env, cwd)
  local dir = H.tmpdir()
  H.write(dir .. "/step.sh", script)
  local vars = ""
  for k, v in pairs(env) do vars = vars .. k .. "=" .. H.quote(v) .. " " end
  local p = io.popen(string.format("cd %s && env -i PATH=%s %s sh %s/step.sh >%s/out 2>&1; echo $?",
    H.quote(cwd or dir), H.quote(os.getenv("PATH")), vars, H.quote(dir), H.quote(dir)))
  local rc = tonumber(p:read("a"))
  p:close()
  return rc, H.read(dir .. "/out") or ""
end

describe("orket init --forge", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  for _, case in ipairs {
    { forge = "github", path = ".github/workflows/orket.yml", args = " --repo acme/notes", run = "github.run_id",
      badge = "https://github.com/acme/notes/actions/workflows/orket.yml/badge.svg" },
    { forge = "gitea", path = ".gitea/workflows/orket.yml", args = " --repo acme/notes --forge-url https://git.example.org/",
      run = "github.run_number", -- Forgejo's and Gitea's (to 1.25) run pages; their run_id is a 404
      badge = "https://git.example.org/acme/notes/actions/workflows/orket.yml/badge.svg" },
  } do
    it("writes a " .. case.forge .. " workflow the validator accepts", function()
      local validator, why = npm.bin("action-validator")
      if not validator then return pending("the workflow validator from npm: " .. why) end
      local r, dir = init("x --forge " .. case.forge .. case.args)
      assert.equal(0, r.status, r.stderr)
      local path = dir .. "/x/workspace/" .. case.path
      local rc, out = sh("exec " .. H.quote(validator) .. " " .. H.quote(path) .. "\n", {})
      assert.equal(0, rc, out)
      -- and the deploy workflow beside it
      local deploy = path:gsub("orket%.yml$", "deploy.yml")
      rc, out = sh("exec " .. H.quote(validator) .. " " .. H.quote(deploy) .. "\n", {})
      assert.equal(0, rc, out)
      -- the validator can say no: the same workflow without its runner is refused
      local broken = H.tmpdir() .. "/orket.yml"
      H.write(broken, (assert(H.read(path)):gsub("    runs%-on: ubuntu%-latest\n", "    runs-of: ubuntu-latest\n")))
      rc, out = sh("exec " .. H.quote(validator) .. " " .. H.quote(broken) .. "\n", {})
      assert.is_not.equal(0, rc)
      assert.matches("runs%-of", out)
    end)

    it("writes a " .. case.forge .. " workflow, checks.sh and a README with its badge", function()
      local r, dir = init("x --forge " .. case.forge .. case.args)
      assert.equal(0, r.status, r.stderr)
      assert.matches(case.path, r.stdout, 1, true)
      dir = dir .. "/x"
      local ws = dir .. "/workspace"
      local yml = assert(H.read(ws .. "/" .. case.path))
      assert.matches("sh checks.sh", yml, 1, true)
      assert.matches("secrets.ORKET_URL", yml, 1, true)
      assert.matches("secrets.ORKET_API_KEY", yml, 1, true)
      -- the link to the run in the comment on the card is the forge's own form
      local _, links = yml:gsub("%$%{%{ github%.server_url %}%}/%$%{%{ github%.repository %}%}/actions/runs/%$%{%{ "
        .. case.run:gsub("%p", "%%%0") .. " %}%}\n", "")
      assert.equal(1, links, yml)
      assert.matches("[![orket](" .. case.badge .. ")", H.read(ws .. "/README.md"), 1, true)
      -- in main's first commit, so the first pull request already runs them
      local files = io.popen("git -C " .. H.quote(ws) .. " ls-tree -r --name-only main"):read("a")
      for _, f in ipairs { case.path, "checks.sh", "README.md" } do assert.matches(f, files, 1, true) end
      assert.equal(0, H.orket("validate", { cwd = dir }).status)

      -- the deploy workflow beside it, and for Gitea a runner's config that is YAML with the
      -- label the workflows ask for
      local deploy_path = case.path:gsub("orket%.yml$", "deploy.yml")
      local deploy_yml = assert(H.read(ws .. "/" .. deploy_path))
      assert.matches("branches: [main]", deploy_yml, 1, true)
      assert.matches("/v1/sandboxes", deploy_yml, 1, true)
      assert.matches(deploy_path, files, 1, true)
      if case.forge == "gitea" then
        local runner = assert(require("orket.sandboxes.yamldoc").parse(assert(H.read(dir .. "/act_runner.yaml")), "act_runner.yaml"))
        assert.matches("^ubuntu%-latest:docker://", runner.runner.labels[1])
      else
        assert.is_nil(H.read(dir .. "/act_runner.yaml"))
      end

      -- the scaffold still runs to done offline, its checks passing, the badge kept
      r = H.orket("run START --json", { cwd = dir })
      assert.equal(0, r.status, r.stderr .. r.stdout)
      assert.matches("[![orket](" .. case.badge .. ")", H.read(ws .. "/README.md"), 1, true)
      local c = cjson.decode(H.orket("card START-2 --json", { cwd = dir }).stdout)
      assert.equal("sh checks.sh", c.verifications[#c.verifications].command)
      assert.is_true(c.verifications[#c.verifications].passed)
      -- and checks.sh fails, saying why, when the README loses the badge
      H.write(ws .. "/README.md", "# x\n")
      local rc, out = sh("exec sh checks.sh\n", {}, ws)
      assert.equal(1, rc)
      assert.matches("README.md lost the workflow's status badge", out, 1, true)
    end)
  end

  it("the workflow's report step posts the outcome on the card through orket serve", function()
    local r, dir = init("x --forge github")
    assert.equal(0, r.status, r.stderr)
    dir = dir .. "/x"
    assert.matches("OWNER/NAME", H.read(dir .. "/workspace/README.md"), 1, true)
    local script = report_script(H.read(dir .. "/workspace/.github/workflows/orket.yml"))
    local s = H.serve(dir)
    local key = H.api_key(dir, "ci", "operator")
    local env = { ORKET_URL = s.url .. "/", ORKET_API_KEY = key, HEAD_REF = "orket/START-1", OUTCOME = "failure",
      RUN_URL = "https://github.com/acme/notes/actions/runs/7" }
    local rc, out = sh(script, env)
    assert.equal(0, rc, out)
    local function comments()
      return cjson.decode(H.orket("card START-1 --json", { cwd = dir }).stdout).comments
    end
    local cs = comments()
    assert.equal(1, #cs)
    assert.equal("Checks on the forge: failure (https://github.com/acme/notes/actions/runs/7)", cs[1].body)
    -- a branch name that is not a card id is never put in a request
    env.HEAD_REF = "orket/START-1;touch pwned"
    rc, out = sh(script, env)
    assert.equal(0, rc, out)
    assert.matches("not an Orket card branch", out, 1, true)
    assert.equal(1, #comments())
    -- without the secrets the step says so and succeeds
    env.HEAD_REF, env.ORKET_API_KEY = "orket/START-1", ""
    rc, out = sh(script, env)
    assert.equal(0, rc, out)
    assert.matches("ORKET_URL or ORKET_API_KEY is not set", out, 1, true)
    assert.equal(1, #comments())
    -- a wrong key fails the step (the forge shows it), and posts nothing
    env.ORKET_API_KEY = "ork_wrong"
    rc = sh(script, env)
    assert.is_not.equal(0, rc)
    assert.equal(1, #comments())
    assert.equal(0, s.stop())
  end)

  -- the deploy workflow's step, a running orket serve and a fake forge: {dir, script, env,
  -- statuses(), stop()}
  local function deploy_rig()
    local r, dir = init("x --forge gitea")
    assert.equal(0, r.status, r.stderr)
    dir = dir .. "/x"
    local script = report_script(H.read(dir .. "/workspace/.gitea/workflows/deploy.yml"), "Deploy the sandbox")
    local forge = H.fake_forge()
    local s = H.serve(dir)
    local key = H.api_key(dir, "ci", "operator")
    local env = { ORKET_URL = s.url .. "/", ORKET_API_KEY = key, STATUS_TOKEN = "t0ken", STATUS_API = forge.url .. "/api/v1",
      REPO = "acme/notes", SHA = string.rep("ab", 20), RUN_URL = "https://git.example.org/acme/notes/actions/runs/3" }
    local function statuses()
      local status, text = H.fetch { url = forge.url .. "/__statuses", total_timeout_ms = 5000 }
      assert.equal(200, status)
      return cjson.decode(text)
    end
    local function stop()
      assert.equal(0, s.stop())
      forge.stop()
    end
    return { dir = dir, script = script, env = env, statuses = statuses, stop = stop }
  end

  it("the deploy workflow asks orket serve to deploy and posts the outcome as a commit status", function()
    local rig = deploy_rig()
    local env = rig.env
    -- the scaffold's tree runs nothing yet: Orket refuses it, the status says so and the job fails
    local rc, out = sh(rig.script, env)
    assert.is_not.equal(0, rc)
    assert.matches("nothing to run", out, 1, true)
    local st = rig.statuses()
    assert.equal(1, #st)
    assert.same({ "acme/notes", env.SHA, "failure", "orket/deploy", "Orket cannot run this tree (HTTP 422)" },
      { st[1].repo, st[1].sha, st[1].state, st[1].context, st[1].description })
    assert.equal(env.RUN_URL, st[1].target_url)
    -- without the secrets: nothing deployed, nothing posted
    env.ORKET_API_KEY = ""
    rc, out = sh(rig.script, env)
    assert.equal(0, rc, out)
    assert.matches("nothing is deployed", out, 1, true)
    assert.equal(1, #rig.statuses())
    rig.stop()
  end)

  it("the deploy workflow deploys a tree that runs and posts success", function()
    local proc = require "orket.c.proc"
    if not proc.probe().netns then return pending("a deploy that starts: the kernel offers no network namespace here") end
    if os.execute("command -v python3 >/dev/null 2>&1") ~= true then
      return pending("a deploy that starts: python3 is missing (the app is a Python server)")
    end
    local rig = deploy_rig()
    H.write(rig.dir .. "/workspace/app.py", "import http.server, os\n"
      .. "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n")
    H.commit_main(rig.dir, "an app")
    local rc, out = sh(rig.script, rig.env)
    assert.equal(0, rc, out)
    local st = rig.statuses()
    assert.equal(1, #st)
    assert.same({ "acme/notes", rig.env.SHA, "success", "orket/deploy", "the sandbox of main is healthy" },
      { st[1].repo, st[1].sha, st[1].state, st[1].context, st[1].description })
    local rows = cjson.decode(H.orket("sandbox list --json", { cwd = rig.dir }).stdout)
    assert.equal(1, #rows)
    rig.stop()
  end)

  it("names a bad argument and creates nothing", function()
    for _, case in ipairs {
      { "x --forge gitlab", "--forge: unknown forge 'gitlab' (gitea or github)" },
      { "x --forge", "--forge needs gitea or github" },
      { "x --repo acme/notes", "--repo needs --forge gitea|github" },
      { "x --forge github --repo notes", "--repo: 'notes' is not OWNER/NAME" },
      { "x --forge gitea --forge-url ftp://x", "--forge-url: 'ftp://x' is not an http(s) URL" },
      { "x --forgery github", "unknown option '--forgery'" },
    } do
      local r, dir = init(case[1])
      assert.equal(2, r.status, case[1])
      assert.matches(case[2], r.stderr, 1, true)
      assert.is_nil(io.open(dir .. "/x"), case[1])
    end
    -- a file already in workspace/ is not overwritten
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/x/workspace"))
    H.write(dir .. "/x/workspace/README.md", "mine\n")
    local r = H.orket("init x --forge github", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("workspace/README.md already exists", r.stderr, 1, true)
    assert.equal("mine\n", H.read(dir .. "/x/workspace/README.md"))
    assert.is_nil(io.open(dir .. "/x/orket.lua"))
  end)
end)
