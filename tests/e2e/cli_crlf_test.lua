-- A shell script saved with Windows (CRLF) line endings hands each line's last word to orket
-- with a carriage return at its end. Each command misread it its own way (no card "START\13",
-- an integer "1\r", a comment stored with its CR): said once, for what it is, before any
-- command runs; and a control in a name a message quotes is shown one way (\r, not Lua's \13).
local H = require "tests.helpers"

-- words -> one shell string of them, each quoted (a quoted word keeps its CR and newline)
local function words(list)
  local out = {}
  for i, w in ipairs(list) do out[i] = H.quote(w) end
  return table.concat(out, " ")
end

describe("a word ending in a carriage return", function()
  after_each(function() H.cleanup() end)

  it("is refused before the command runs, naming the word and the CRLF script", function()
    local dir = H.example("notes")
    H.write(dir .. "/win.sh", 'orket comment NOTES-1 "look first"\r\norket board NOTES\r\n')
    local st, out = H.sh(string.format("cd %s && PATH=%s:$PATH sh win.sh 2>&1", H.quote(dir),
      H.quote((H.BIN:gsub("/[^/]*$", "")))))
    assert.is_not.equal(0, st, out)
    assert.matches('argument 3 ("look first\\r") ends in a carriage return: was the script that ran orket saved '
      .. "with Windows (CRLF) line endings? Save it with LF endings (dos2unix FILE)", out, 1, true)
    assert.matches('argument 2 ("NOTES\\r") ends in a carriage return', out, 1, true)
    -- nothing was written: the comment is not stored with its CR
    local card = H.orket("card NOTES-1 --json", { cwd = dir })
    assert.equal(0, card.status, card.stderr)
    assert.is_nil(card.stdout:find("look first", 1, true), card.stdout)
    for _, list in ipairs { { "run", "NOTES-1", "--concurrency", "1\r" }, { "board\r" } } do
      local r = H.orket(words(list), { cwd = dir })
      assert.equal(2, r.status, r.stderr)
      assert.matches("ends in a carriage return", r.stderr, 1, true)
    end
    -- orket lua's script takes its words as given
    local r = H.orket(words { "lua", "-e", "io.write(#arg[1])", "x\r" }, { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("2", r.stdout)
  end)

  it("inside a name a message quotes is shown as \\r, never Lua's decimal \\13", function()
    local dir = H.example("notes")
    local r = H.orket(words { "board", "NO\rTES" }, { cwd = dir })
    assert.equal('orket: board: no card "NO\\rTES"\n', r.stderr)
    r = H.orket(words { "run", 'A"B\nC' }, { cwd = dir })
    assert.matches('no card "A\\"B\\nC" (see \'orket board\')', r.stderr, 1, true)
  end)
end)
