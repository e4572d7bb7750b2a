-- A project named relative to the job's working directory (`-C ../proj`, as a CI step run
-- from a scratch folder names it) is fixed as the command starts (orket.config.fixed_dir):
-- removing that working directory while the command goes leaves run, worker and serve
-- working. Before, the path kept its "..", every later use went through the removed folder,
-- and a run failed as "the project's folder was moved or removed", a worker the same, and a
-- server refused every new run ("cannot read the current directory") while /ready said ready.
local H = require "tests.helpers"
local uv = require "luv"

-- a copy of the notes example whose every answer takes ms: slow enough to remove the job's
-- folder while a run goes -> the project's folder
local function slow_project(ms)
  local dir = H.example("notes")
  local script = H.read(dir .. "/script.lua")
  H.write(dir .. "/script.lua", (script:gsub("return { rules",
    "for _, r in ipairs(rules) do r.reply.delay_ms = " .. ms .. " end\nreturn { rules", 1)))
  return dir
end

-- the job's folder (removed by the test) and the project as named from it ("../../NAME")
local function job_for(dir)
  local top = H.tmpdir()
  local job = top .. "/job"
  assert(uv.fs_mkdir(job, 448))
  return top, job, "../../" .. dir:match("([^/]+)$")
end

-- `orket ARGS` started in job, its out, err, pid and rc in top -> rc()
local function start(top, job, args)
  os.execute(string.format("cd %s && { %s %s >%s/out 2>%s/err & echo $! >%s/pid; wait $!; echo $? >%s/rc; } "
    .. ">/dev/null 2>&1 &", H.quote(job), H.quote(H.BIN), args, H.quote(top), H.quote(top), H.quote(top), H.quote(top)))
  finally(function() H.end_started(top, "pid", "rc", true) end)
  return function() return (H.read(top .. "/rc") or ""):match("^%d+") end
end

local function out_has(top, text)
  return function() return (H.read(top .. "/out") or ""):find(text, 1, true) end
end

describe("a project given relative to the working directory", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("keeps orket run going when that directory is removed mid-run", function()
    local dir = slow_project(400)
    local top, job, rel = job_for(dir)
    local rc = start(top, job, "run NOTES --json -C " .. rel)
    H.wait_for(out_has(top, '"turn_start"'), "the first turn")
    assert(uv.fs_rmdir(job))
    assert.equal("0", H.wait_for(rc, "the run's end", 3000), H.read(top .. "/err"))
    local out = H.read(top .. "/out")
    assert.is_nil(out:find("project_moved", 1, true), out)
    assert.matches('"status":"done"', out)
  end)

  it("keeps orket worker going when that directory is removed mid-run", function()
    local dir = slow_project(400)
    local top, job, rel = job_for(dir)
    local rc = start(top, job, "worker --start NOTES --drain -C " .. rel)
    H.wait_for(out_has(top, '"turn_start"'), "the first turn")
    assert(uv.fs_rmdir(job))
    assert.equal("0", H.wait_for(rc, "the worker's end", 3000), H.read(top .. "/err"))
    local out = H.read(top .. "/out")
    assert.is_nil(out:find("project_moved", 1, true), out)
    assert.matches('"status":"done"', out)
  end)

  it("keeps orket serve starting runs when that directory is removed", function()
    local dir = slow_project(300)
    local top, job, rel = job_for(dir)
    start(top, job, "serve --listen 127.0.0.1:0 -C " .. rel)
    local port = H.wait_for(function() return (H.read(top .. "/out") or ""):match("listening on http://127%.0%.0%.1:(%d+)") end,
      "the server to listen", 3000)
    local s = { url = "http://127.0.0.1:" .. port }
    local token = H.wait_for(function() return (H.read(top .. "/out") or ""):match("/%?token=(ort_%x+)") end, "its token")
    -- a run going when the folder goes, and one started after it
    local st, body = H.api(s, "POST", "/v1/runs", token, { target = "NOTES-1" })
    assert.equal(201, st, require("cjson").encode(body))
    H.wait_for(function() return (H.read(top .. "/err") or ""):find('"event":"run_start"', 1, true) end, "the run's start")
    assert(uv.fs_rmdir(job))
    local function state(id)
      local _, r = H.api(s, "GET", "/v1/runs/" .. id, token)
      return r and r.run and r.run.state ~= "running" and r.run.state
    end
    assert.equal("done", H.wait_for(function() return state(1) end, "run 1's end", 3000))
    st, body = H.api(s, "GET", "/ready", token)
    assert.equal(200, st, require("cjson").encode(body))
    st, body = H.api(s, "POST", "/v1/runs", token, { target = "NOTES" })
    assert.equal(201, st, require("cjson").encode(body))
    local id = math.tointeger(body.run.id)
    assert.equal("done", H.wait_for(function() return state(id) end, "the second run's end", 3000))
  end)
end)
