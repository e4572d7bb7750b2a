-- What a deploy and a plan say of a sandbox's limits (orket.sandboxes.plan, deploy): the
-- plan's install line named `sandbox.network = false`, as if true were the way out, but
-- that setting is refused (a sandbox has no outbound network); a program the host lacks is
-- the host's limit (code ENOPROG), as a socket path too long is; a plan's refusal of the
-- tree goes back to the cards unless it names orket.lua or nothing ever ran here.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local deploy = require "orket.sandboxes.deploy"
local service = require "orket.sandboxes.service"

describe("a deploy's and a plan's words of a sandbox's limits", function()
  after_each(H.cleanup)

  it("the install line names no sandbox.network setting, and says Orket runs no install", function()
    local p = assert(F.sandbox_detect {
      ["package.json"] = '{"name": "a", "scripts": {"start": "node server.js"}, "dependencies": {"express": "4"}}',
      ["server.js"] = "",
    })
    local text = table.concat(p.reasons, "\n")
    assert.matches("its dependencies install with `npm install --omit=dev`: a sandbox has no outbound network and "
      .. "Orket runs no install, so carry them in the tree", text, 1, true)
    assert.not_matches("sandbox.network", text, 1, true)
  end)

  it("the plan says a program that is in none of the sandbox's PATH on this host", function()
    local bin = H.tmpdir()
    local p = assert(F.sandbox_detect({ ["go.mod"] = "module x\n" }, { env = { PATH = bin } }))
    assert.matches("go is in none of PATH=" .. bin .. " on this host (a sandbox sees only the host's programs under "
      .. "/usr): its start fails until it is installed there", table.concat(p.reasons, "\n"), 1, true)
    H.write(bin .. "/go", "#!/bin/sh\n")
    assert(os.execute("chmod +x " .. H.quote(bin .. "/go")))
    p = assert(F.sandbox_detect({ ["go.mod"] = "module x\n" }, { env = { PATH = bin } }))
    assert.not_matches("is in none of PATH", table.concat(p.reasons, "\n"), 1, true)
    -- a program named by its path is the tree's: not looked for on the host
    p = assert(F.sandbox_detect({ ["go.mod"] = "module x\n" }, { env = { PATH = bin }, command = { "./server" } }))
    assert.not_matches("is in none of PATH", table.concat(p.reasons, "\n"), 1, true)
  end)

  it("a program the host lacks is a limit of the host, by its code or its message", function()
    assert.is_true(deploy.host_limit("ENOPROG", "x"))
    assert.is_true(deploy.host_limit("ENAMETOOLONG", "x"))
    assert.is_false(deploy.host_limit("EEXIT", "sandbox 1: the app exited"))
    assert.is_true(deploy.host_limit(nil, service.HOST_LIMIT .. "go is not installed here: ..."))
    assert.is_false(deploy.host_limit(nil, "sandbox: cannot run ./server: no such file or directory (ENOENT)"))
  end)

  it("a plan's refusal is the cards' unless it names orket.lua, or nothing ran here yet", function()
    local db = setmetatable({}, { __index = function() error("no store here") end })
    local ops = require "orket.store.sandboxes"
    local list = ops.list
    local rows = {}
    ops.list = function() return rows end
    local ok, err = pcall(function()
      assert.is_true(deploy.refusal_is_cards(db, "sandbox: compose.yaml:5: services.cache: image redis only"))
      assert.is_false(deploy.refusal_is_cards(db, "orket.lua: sandbox.env.API_URL: is set by Orket"))
      assert.is_false(deploy.refusal_is_cards(db, "sandbox: nothing to run in main's tree (...)"))
      rows = { { id = 1 } }
      assert.is_true(deploy.refusal_is_cards(db, "sandbox: nothing to run in main's tree (...)"))
    end)
    ops.list = list
    assert(ok, err)
  end)
end)
