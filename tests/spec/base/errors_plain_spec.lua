-- The remedies a person reads under "hint:" and a model reads in a tool's result: the
-- troubleshooting table's Markdown links (relative to docs/guide/) as words naming the
-- repository's files, which lead somewhere from a shell or a workspace.
local errors = require "orket.errors"
local turn = require "orket.engine.turn"
local cjson = require "cjson"

describe("remedies in words", function()
  it("name docs/guide/FILE (or docs/FILE) and the part, for every code's remedy", function()
    assert.equal('give the key file or passphrase it was made with (docs/guide/deploying.md, "Encrypted backups"); '
      .. "for a secret, the key file it was sealed under (docs/secrets.md)", errors.plain(errors.remedy("EKEY")))
    assert.equal("fix the tool (`orket validate`), see docs/guide/writing-tools.md", errors.plain(errors.remedy("ETOOL")))
    assert.equal("see the guide (docs/guide/x.md)", errors.plain("see [the guide](x.md)"))
    assert.equal("no link here", errors.plain("no link here"))
    for _, g in ipairs(errors.GROUPS) do
      for _, code in ipairs(g.codes) do
        local r = errors.remedy(code)
        if r then assert.is_nil(errors.plain(r):find("](", 1, true), code .. ": " .. errors.plain(r)) end
      end
    end
  end)

  it("reach the model in a failed tool's result as words", function()
    local msg = turn.result_message({ role = {} }, { id = "c1", name = "sandbox_up" },
      { ok = false, code = "ENOSANDBOX", error = "no sandbox" })
    local doc = cjson.decode(msg.content)
    assert.matches("(docs/sandbox.md)", doc.remedy, 1, true)
    assert.is_nil(doc.remedy:find("](", 1, true))
  end)

  it("keep a restore's damaged backup from being told to restore a backup", function()
    assert.matches("^take another copy of the backup",
      errors.remedy("ECORRUPT", "restore: store: cannot open ../t.backup: database disk image is malformed"))
    assert.matches("`orket restore` a backup", errors.remedy("ECORRUPT", "store: database disk image is malformed"), 1, true)
  end)
end)
