-- `orket secrets set NAME < token.txt` of a file a Windows editor saved: a UTF-8 byte order
-- mark first (Notepad's "UTF-8 with BOM") is taken off as the CRLF is, not sent in the
-- Authorization header; a file saved as UTF-16 (Notepad's "Unicode") is said as such, not
-- as a pasted line break.
local H = require "tests.helpers"
local secrets = require "orket.store.secrets"

local function project()
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/orket.lua", 'name = "win"\nmodels = { default = "scripted:x", providers = { scripted = { kind = '
    .. '"scripted", file = "script.lua" } } }\n')
  H.write(dir .. "/script.lua", 'return { rules = {}, default = { content = "done" } }\n')
  assert(H.orket("import", { cwd = dir }).status == 0, "the project did not import")
  return dir
end

describe("orket secrets set of a Windows editor's file", function()
  after_each(H.cleanup)

  it("takes a UTF-8 byte order mark off, as the CRLF", function()
    local dir = project()
    local r = H.orket("secrets set FORGE_TOKEN", { cwd = dir, stdin = "\239\187\191ghp_abc123\r\n" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("ghp_abc123", secrets.reveal(dir, "FORGE_TOKEN"))
  end)

  it("says a UTF-16 file is UTF-16, and changes nothing", function()
    local dir = project()
    local r = H.orket("secrets set FORGE_TOKEN", { cwd = dir, stdin = "\255\254g\0h\0p\0_\0a\0\r\0\n\0" })
    assert.equal(1, r.status, r.stderr)
    assert.matches("secrets set: the value on stdin is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8",
      r.stderr, 1, true)
    assert.equal("", H.orket("secrets list", { cwd = dir }).stdout:match("FORGE_TOKEN") or "")
    assert.not_matches("line break", r.stderr, 1, true)
  end)
end)
