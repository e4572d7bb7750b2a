-- The tools that run programs: run_command's and run_tests' handlers build a request (and
-- refuse hostile argv), orket.engine.proctool runs it confined in the card's workspace with
-- the project's verify settings, and shapes the result the model reads.
local tools = require "orket.tools"
local proctool = require "orket.engine.proctool"
local proc = require "orket.c.proc"
local H = require "tests.helpers"

local reg = assert(tools.load_dirs { H.ROOT .. "/tools" })

-- No run is left once the loop has closed their handles.
local function drained()
  for _ = 1, 2000 do
    if proc.live() == 0 then break end
    orket.sleep(5)
  end
  return proc.live()
end

-- The engine as proctool sees it: settings and the workspace it runs in.
local function engine(verify)
  local dir = H.tmpdir()
  return { settings = { verify = verify or { timeout_ms = 20000 } }, workspace_dir = dir }, dir
end

describe("run_command and run_tests", function()
  after_each(H.cleanup)

  it("are process tools whose handlers only build the request", function()
    assert.equal("process", reg:get("run_command").effect)
    assert.equal("process", reg:get("run_tests").effect)
    assert.is_true(reg:get("run_tests").idempotent)
    assert.is_nil(reg:get("run_command").idempotent) -- may have changed files: never re-run blindly
    assert.same({ ok = true, result = { steps = { { command = { "make", "test" } } }, timeout_ms = 5 } },
      reg:run("run_command", { argv = { "make", "test" }, timeout_ms = 5 }, {}))
    local r = reg:run("run_command", { argv = { "sh", "-c", "a\0b" } }, {})
    assert.same({ ok = false, code = "EINVAL",
      error = "run_command: argv[3] contains a NUL byte; each argument must be plain text" }, r)
    r = reg:run("run_tests", {}, {})
    assert.equal("ENOENT", r.code)
    assert.matches("no test command", r.error)
    local tests = { { name = "command", command = { "true" }, expect_exit = 0 } }
    assert.same({ ok = true, result = { steps = tests } }, reg:run("run_tests", {}, { tests = tests }))
  end)
end)

describe("orket.engine.proctool.run", function()
  after_each(H.cleanup)

  it("runs one command in the workspace, confined, and returns its exit and output", function()
    local e, dir = engine()
    local r = proctool.run(e, "C-1", "run_command",
      { steps = { { command = { "sh", "-c", "pwd; echo oops >&2; grep NoNewPrivs /proc/self/status; exit 3" } } } })
    assert.is_true(r.ok, r.error)
    assert.equal(3, r.result.exit)
    assert.equal("exit", r.result.reason)
    assert.equal(require("luv").fs_realpath(dir) .. "\nNoNewPrivs:\t1\n", r.result.stdout)
    assert.equal("oops\n", r.result.stderr)
    assert.matches("^sh %-c ", r.result.command)
    assert.equal(0, drained())
  end)

  it("keeps the head and the tail of long output, within the cap", function()
    local e = engine()
    local r = proctool.run(e, "C-1", "run_command",
      { steps = { { command = { "sh", "-c", "echo first; yes middle | head -c 1000000; echo; echo last" } } } })
    assert.is_true(r.ok, r.error)
    assert.is_true(r.result.truncated)
    assert.matches("^first\n", r.result.stdout)
    assert.matches("last\n$", r.result.stdout)
    assert.matches("bytes omitted", r.result.stdout)
    assert.truthy(#r.result.stdout < proctool.OUTPUT_CAP + 200)
    assert.truthy(r.result.stdout_bytes > 1000000)
  end)

  it("runs the tests' steps in order and stops at the first that fails", function()
    local e = engine()
    local r = proctool.run(e, "C-1", "run_tests", { steps = {
      { name = "one", command = { "true" }, expect_exit = 0 },
      { name = "two", command = { "sh", "-c", "echo broken; exit 2" }, expect_exit = 0 },
      { name = "three", command = { "true" }, expect_exit = 0 } } })
    assert.is_true(r.ok, r.error)
    assert.is_false(r.result.passed)
    assert.equal(2, #r.result.runs)
    assert.equal("two", r.result.runs[2].failed)
    assert.equal("broken\n", r.result.runs[2].stdout)
    r = proctool.run(e, "C-1", "run_tests", { steps = { { command = { "true" }, expect_exit = 0 } } })
    assert.is_true(r.result.passed)
  end)

  it("fails, naming why, when the program cannot run or a layer is missing, or the request is bad", function()
    local e = engine { require = { "netns" }, layers = { netns = false } }
    local r = proctool.run(e, "C-1", "run_command", { steps = { { command = { "true" } } } })
    assert.equal("ELAYER", r.code)
    assert.matches("run_command: true could not run: proc: required layer 'netns'", r.error)
    e = engine()
    r = proctool.run(e, "C-1", "run_command", { steps = { { command = { "no-such-program-here" } } } })
    assert.equal("ENOENT", r.code)
    for _, bad in ipairs { "x", { steps = {} }, { steps = { { command = "ls" } } },
      { steps = { { command = { "a\0b" } } } }, { steps = { { command = { "true" }, expect_exit = "0" } } } } do
      r = proctool.run(e, "C-1", "run_command", bad)
      assert.equal("ETOOL", r.code)
    end
    assert.equal(0, drained())
  end)

  it("runs under the project's verify.limits, and a tool's own from verify.tool_limits", function()
    -- a 4 KiB file under a 1 KiB file size limit: SIGXFSZ; the tool's own limit lets it through
    local write = { steps = { { command = { "sh", "-c", "head -c 4096 /dev/zero > big; wc -c < big" } } } }
    local e = engine { timeout_ms = 20000, limits = { file_size = 1024 }, tool_limits = { run_tests = { file_size = 8192 } } }
    local r = proctool.run(e, "C-1", "run_command", write)
    assert.is_true(r.ok, r.error)
    assert.is_not.equal("4096\n", r.result.stdout)
    assert.matches("File size limit exceeded", r.result.stderr)
    r = proctool.run(e, "C-1", "run_tests", write)
    assert.is_true(r.ok, r.error)
    assert.equal("4096\n", r.result.stdout)
    assert.equal(0, drained())
  end)

  it("cuts the timeout to what is left of the wall budgets", function()
    local e = engine()
    local r = proctool.run(e, "C-1", "run_command", { steps = { { command = { "sleep", "30" } } }, timeout_ms = 60000 }, 50)
    assert.is_true(r.ok, r.error)
    assert.equal("timeout", r.result.reason)
    -- the request's own, a float as JSON gives it (an issue's verification timeout_ms)
    e = engine { timeout_ms = 600000 }
    r = proctool.run(e, "C-1", "run_tests", { steps = { { command = { "sleep", "30" } } }, timeout_ms = 50.0 })
    assert.equal("timeout", r.result.reason)
    assert.equal(0, drained())
  end)

  it("run_command's result names the layers; extra paths that would show .orket are refused", function()
    local e, dir = engine { timeout_ms = 20000, read_only = { "/usr/share" } }
    local r = proctool.run(e, "C-1", "run_command", { steps = { { command = { "true" } } } })
    assert.is_true(r.ok)
    for _, name in ipairs(proc.layers().always) do assert.matches("%f[%w_]" .. name .. "%f[^%w_]", r.result.layers) end
    -- every optional layer either held or is named with why
    for _, name in ipairs(proc.layers().optional) do
      local held = r.result.layers:find("%f[%w_]" .. name .. "%f[^%w_]")
      assert.is_true(held ~= nil or type((r.result.layers_missing or {})[name]) == "string", name)
    end
    e.dir = dir
    for _, p in ipairs { dir, dir .. "/.orket", dir .. "/.orket/worktrees/X-1", "/" .. dir:match("^/([^/]+)") } do
      local v = { read_only = { p } }
      e.settings.verify = v
      r = proctool.run(e, "C-1", "run_command", { steps = { { command = { "true" } } } })
      assert.is_false(r.ok, p)
      assert.matches("verify.read_only%[1%]: .* would show the project's .orket", r.error)
    end
    e.settings.verify = { read_write = { "/" .. dir:match("^/([^/]+)") } }
    r = proctool.run(e, "C-1", "run_command", { steps = { { command = { "true" } } } })
    assert.is_false(r.ok)
    assert.equal(0, drained())
  end)

  it("refuses a path showing .orket when the project's dir is relative (run from inside it) or a link", function()
    local uv = require "luv"
    local e, dir = engine { timeout_ms = 20000 }
    local real = uv.fs_realpath(dir)
    assert(uv.fs_mkdir(dir .. "/.orket", 448))
    local link = H.tmpdir() .. "/proj"
    assert(uv.fs_symlink(real, link))
    local here = uv.cwd()
    -- `cd proj && orket run`: the engine's dir is "."; -C through a link: the link
    for _, d in ipairs { ".", link } do
      e.dir = d
      for _, p in ipairs { real, real .. "/.orket", link .. "/.orket", real .. "/.orket/not-made-yet" } do
        e.settings.verify = { read_only = { p } }
        assert(uv.chdir(real))
        local ok, r = pcall(proctool.run, e, "C-1", "run_command", { steps = { { command = { "true" } } } })
        assert(uv.chdir(here))
        assert(ok, r)
        assert.is_false(r.ok, d .. " " .. p)
        assert.matches("verify.read_only%[1%]: .* would show the project's .orket", r.error)
      end
    end
    assert.equal(0, drained())
  end)

  it("refuses a path showing .orket when .orket itself is a link, by the link and by its target", function()
    local uv = require "luv"
    local e, dir = engine { timeout_ms = 20000 }
    local real = uv.fs_realpath(dir)
    local target = H.tmpdir() .. "/store-disk"
    assert(uv.fs_mkdir(target, 448))
    assert(uv.fs_symlink(target, real .. "/.orket"))
    e.dir = real
    for _, p in ipairs { real .. "/.orket", target, target .. "/orket.db" } do
      e.settings.verify = { read_only = { p } }
      local ok, r = pcall(proctool.run, e, "C-1", "run_command", { steps = { { command = { "true" } } } })
      assert(ok, r)
      assert.is_false(r.ok, p)
      assert.matches("verify.read_only%[1%]: .* would show the project's .orket", r.error)
    end
    assert.equal(0, drained())
  end)
end)
