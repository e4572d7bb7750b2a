-- A provider that sends no token counts, end to end against the fake model server: the
-- estimated prompt counts the tools' definitions that went with it (the estimate without
-- them let a card pass tokens_per_card 3.5 times over), and `orket log` says the counts are
-- estimates and that the cost was charged at the estimate before the call (docs/cost.md).
local H = require "tests.helpers"

local DEV = "fake:tool=update_issue_status,arg_status=code_review,no_usage"
local REV = "fake:tool=update_issue_status,arg_status=done,no_usage"

describe("a call without the provider's usage", function()
  after_each(H.cleanup)

  it("counts the tools in its estimated prompt, and orket log says the counts and the charge are estimates", function()
    local fake = require("tests.fake_server").start()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    H.write(dir .. "/orket.lua", string.format([[
name = "usage"
models = { default = %q, providers = { fake = { kind = "openai", base_url = %q } },
  prices = { [%q] = { input = "2.50", cached_input = "1.25", output = "10", currency = "USD" },
    [%q] = { input = "2.50", cached_input = "1.25", output = "10", currency = "USD" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" }, model = %q } }
]], DEV, fake.url .. "/v1", DEV, REV, REV))
    H.write(dir .. "/epics/u.json", [[
{ "id": "U", "name": "Usage", "issues": [ { "id": "U-1", "summary": "Do it", "seat": "senior_developer" } ] }
]])
    require("tests.backends").project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("run U --json", { cwd = dir })
    local log = fake.log()
    fake.stop()
    assert.equal(0, r.status, r.stdout .. r.stderr)
    -- what was sent, at Orket's 4 characters a token: the messages and the tools
    local json = require "cjson"
    local sent = 0
    for _, entry in ipairs(log) do
      local chars = #json.encode(entry.request.tools or {})
      for _, m in ipairs(entry.request.messages) do chars = chars + #(m.content or "") end
      sent = sent + chars // 4
    end
    local run
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = json.decode(line)
      if ev.run_id and ev.status then run = ev end
    end
    assert.is_table(run, r.stdout)
    -- the tools are most of a request: counted, the run's tokens come near what was sent
    -- (the answers' few tokens on top), where the messages alone were a fifth of it
    assert.is_true(run.tokens >= sent * 0.9, string.format("%d tokens counted, about %d sent", run.tokens, sent))
    r = H.orket("log", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("%-%- step 1, model [^\n]*, %d+%+%d+ tokens %(estimated%), [%d.]+ USD\n", r.stdout)
    assert.matches("\n   %[usage%] the provider reported no usage or only part of it: charged at the estimate before "
      .. "the call %(%d+ prompt tokens uncached, %d+ output tokens%)", r.stdout)
  end)
end)
