-- --concurrency of orket run, resume and worker: an integer from 1 to the cap POST /v1/runs
-- has, one constant for both (orket.settings.CONCURRENCY_MAX).
local cmdline = require "orket.cmdline"
local settings = require "orket.settings"

describe("--concurrency", function()
  local max = settings.CONCURRENCY_MAX

  it("is the API's cap too", function()
    assert.equal(64, max)
    assert.equal(max, require("orket.serve.runs").SCHEMAS.run.properties.concurrency.maximum)
  end)

  for _, c in ipairs {
    { "run", { "E" } }, { "resume", { "1" } }, { "worker", {} },
  } do
    local name, pos = c[1], c[2]
    it("of orket " .. name .. " takes 1 to the cap and refuses above it, naming both", function()
      local decl = require("orket.cmd." .. name).args
      local function parse(v)
        local words = { table.unpack(pos) }
        words[#words + 1] = "--concurrency"
        words[#words + 1] = v
        return cmdline.parse(decl, words)
      end
      assert.equal(1, parse("1").concurrency)
      assert.equal(max, parse(tostring(max)).concurrency)
      for _, bad in ipairs { tostring(max + 1), "1000000", "0", "-3", "2.5" } do
        local o, err = parse(bad)
        assert.is_nil(o, bad)
        assert.equal(string.format("--concurrency needs an integer from 1 to %d (got %s)", max, bad), err)
      end
    end)
  end
end)
