-- Script and project files (roles, tools, policies, routing.lua, orket.lua, the scripted
-- model's file, Lua and JSON epics) that are not regular files (a FIFO, a link to one, a link to
-- /dev/zero, a directory) or are too large: validate, import, run and a run's hot reload
-- refuse each by name and never block. Every command runs under `timeout`, so a read that
-- blocks fails the test (status 124) instead of hanging the suite.
local H = require "tests.helpers"
local F = require "tests.fixtures"

local function project() return F.initialized { "roles", "tools", "policies" } end

local function sh(cmd) assert(os.execute(cmd), cmd) end

-- Each kind of bad file: how to make it at path, and what the refusal says.
local KINDS = {
  { "a FIFO", function(path) sh("mkfifo " .. H.quote(path)) end, "is a FIFO %(named pipe%), not a regular file" },
  { "a link to a FIFO", function(path)
    sh("mkfifo " .. H.quote(path .. ".fifo") .. " && ln -s " .. H.quote(path:match("[^/]+$") .. ".fifo") .. " " .. H.quote(path))
  end, "is a FIFO %(named pipe%), not a regular file" },
  { "a link to /dev/zero", function(path) sh("ln -s /dev/zero " .. H.quote(path)) end,
    "is a character device, not a regular file" },
  { "a directory", function(path) sh("mkdir " .. H.quote(path)) end, "is a directory, not a regular file" },
  { "a file too large", function(path, mib)
    H.write(path, "return {}\n" .. ("-- " .. ("x"):rep(1021) .. "\n"):rep(1024 * (mib or 2)))
  end, "larger than %d+ bytes" },
}

local function clear(path) sh("rm -rf " .. H.quote(path) .. " " .. H.quote(path .. ".fifo")) end

local SCRIPTS = { "roles/coder.lua", "tools/extra.lua", "policies/extra.lua", "routing.lua" }

describe("a script file that is not a regular file, or too large", function()
  after_each(H.cleanup)

  it("is reported by validate and refused by run, naming the file, for every kind of script", function()
    local p = project()
    local targets = { "orket.lua", "script.lua", "epics/extra.lua", "epics/extra.json" }
    for _, t in ipairs(SCRIPTS) do targets[#targets + 1] = t end
    local orig = { ["orket.lua"] = H.read(p .. "/orket.lua"), ["script.lua"] = H.read(p .. "/script.lua") }
    for _, target in ipairs(targets) do
      local epic = target:match("^epics/") ~= nil
      for _, k in ipairs(KINDS) do
        -- a folder in epics/ is a department, read as such
        if not (epic and k[1] == "a directory") then
          local path = p .. "/" .. target
          clear(path)
          k[2](path, epic and 17 or 2) -- epics may be up to 16 MiB
          local what = target .. " as " .. k[1]
          local v = H.orket("validate", { cwd = p, wrap = "timeout 60" })
          assert.equal(1, v.status, what .. ": " .. v.stdout .. v.stderr)
          assert.matches("\n?" .. target:gsub("%p", "%%%0") .. ": " .. k[3], v.stdout, nil, what)
          local r = H.orket(epic and "import" or "run START", { cwd = p, wrap = "timeout 60" })
          assert.equal(1, r.status, what .. ": " .. r.stderr)
          -- (the scripted model's file is named in orket.lua's setting that names it)
          assert.matches("^orket: [^\n]-%f[%w.]" .. target:gsub("%p", "%%%0") .. ": " .. k[3], r.stderr, nil, what)
          clear(path)
          if orig[target] then H.write(path, orig[target]) end
        end
      end
    end
    -- a reading command reads orket.lua (it may name the store) as every command does: a
    -- FIFO is named, never waited on
    local bare = H.tmpdir()
    sh("mkfifo " .. H.quote(bare .. "/orket.lua"))
    local b = H.orket("board", { cwd = bare, wrap = "timeout 60" })
    assert.equal(1, b.status)
    assert.matches("orket.lua: is a FIFO (named pipe), not a regular file", b.stderr, 1, true)
    -- and the project is whole again
    assert.equal(0, H.orket("validate", { cwd = p, wrap = "timeout 60" }).status)
  end)

  it("is refused by a run's hot reload, which keeps the old set while the run goes on", function()
    local p = project()
    assert.equal(0, H.orket("import", { cwd = p }).status)
    -- A trusted script drives the engine as `orket run` does: at the first model call, each
    -- bad file in turn is put in place and a reload asked for; then the run finishes.
    local cases = {}
    for _, target in ipairs(SCRIPTS) do
      for i, k in ipairs(KINDS) do cases[#cases + 1] = { target = target, kind = i } end
    end
    H.write(p .. "/drive.lua", [[
local setup = require "orket.engine.setup"
local reload = require "orket.engine.reload"
local KINDS, CASES = ...
local e = assert(setup.open(".", {}))
local done = false
local chat = e.llm.chat
e.llm.chat = function(client, req)
  if not done then
    done = true
    for _, c in ipairs(CASES) do
      local before = e.roles
      KINDS[c.kind](c.target)
      local ok, err = reload.apply(e, { [c.target] = true })
      print(string.format("CASE %s %d %s %s %s", c.target, c.kind, tostring(ok), tostring(err), tostring(before == e.roles)))
      os.execute("rm -rf " .. c.target .. " " .. c.target .. ".fifo")
    end
  end
  return chat(client, req)
end
print("STATUS", e:execute(assert(e:start("START"))))
e.close_all()
]])
    -- the makers, as shell commands the script runs (it has no H)
    local makers = [[
local function sh(c) assert(os.execute(c), c) end
return {
  function(p) sh("mkfifo " .. p) end,
  function(p) sh("mkfifo " .. p .. ".fifo && ln -s " .. p:match("[^/]+$") .. ".fifo " .. p) end,
  function(p) sh("ln -s /dev/zero " .. p) end,
  function(p) sh("mkdir " .. p) end,
  function(p)
    local f = assert(io.open(p, "wb"))
    f:write("return {}\n", ("-- " .. ("x"):rep(1021) .. "\n"):rep(2048))
    f:close()
  end,
}
]]
    local list = {}
    for _, c in ipairs(cases) do list[#list + 1] = string.format("{ target = %q, kind = %d }", c.target, c.kind) end
    H.write(p .. "/run.lua", makers:gsub("^", "local KINDS = (function()\n", 1) .. "end)()\n"
      .. "local CASES = { " .. table.concat(list, ", ") .. " }\n"
      .. "assert(loadfile('drive.lua'))(KINDS, CASES)\n")
    local r = H.orket("lua run.lua", { cwd = p, wrap = "timeout 120" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local seen = 0
    for target, kind, ok, err, kept in r.stdout:gmatch("CASE (%S+) (%d) (%S+) (.-) (%a+)\n") do
      seen = seen + 1
      local k = KINDS[tonumber(kind)]
      local what = target .. " as " .. k[1]
      assert.equal("nil", ok, what)
      assert.matches("^" .. target:gsub("%p", "%%%0") .. ": " .. k[3], err, nil, what)
      assert.equal("true", kept, what)
    end
    assert.equal(#cases, seen)
    assert.matches("STATUS\tdone", r.stdout)
  end)
end)
