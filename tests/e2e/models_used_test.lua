-- `orket models` counts as used every provider the project names a model of: a role's
-- `model` and an experiment variant's too, not only the default's and the seats'.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local uv = require "luv"

local fake = F.model_server(teardown)

local function project(extra)
  local dir = H.tmpdir()
  H.write(dir .. "/orket.lua", string.format([[
models = {
  default = "fake:fake-model",
  providers = {
    fake = { kind = "openai", base_url = %q },
    dead = { kind = "openai", base_url = "http://127.0.0.1:1/v1", retry = { max_attempts = 1 } },
  },
}
%s
]], fake.url .. "/v1", extra or ""))
  return dir
end

describe("orket models", function()
  it("fails for a provider only a role's model names", function()
    local dir = project()
    assert(uv.fs_mkdir(dir .. "/roles", 493))
    H.write(dir .. "/roles/integrity_guard.lua",
      'return { intent = "review", tools = { "update_issue_status" }, model = "dead:z", system = "Review." }\n')
    local r = H.orket("models", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("dead%s+openai.-FAILED transient", r.stdout)
    assert.is_nil(r.stdout:find("dead[^\n]*not used here"))
  end)

  it("fails for a provider only an experiment's model names", function()
    local r = H.orket("models", { cwd = project('experiments = { e = { share = 0.5, model = "dead:y" } }') })
    assert.equal(1, r.status, r.stdout)
    assert.matches("dead%s+openai.-FAILED transient", r.stdout)
  end)

  it("still passes when nothing names it", function()
    local r = H.orket("models", { cwd = project() })
    assert.equal(0, r.status, r.stdout)
    assert.matches("dead%s+openai.-unavailable %(not used here%)", r.stdout)
  end)
end)
