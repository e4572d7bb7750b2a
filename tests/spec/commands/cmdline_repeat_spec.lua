-- orket.cmdline: an option that takes one value, given twice with two values, is refused
-- naming it (the last used to win silently: `gate check --tool read_file --tool
-- write_file` checked write_file), and a negative number where a numeric positional is next
-- (`orket log -1`) is refused as that positional's bad value, not as an unknown option.
local cmdline = require "orket.cmdline"

describe("cmdline.parse, a repeated option", function()
  local gate_check = require("orket.cmd.gate").args

  it("refuses a second, different value of an option that takes one, naming it", function()
    local decl = { { "--tool", value = "TOOL" }, { "--args", value = "JSON", alias = "-a" }, { "--role", value = "ROLE", many = true } }
    assert.same({ nil, "--tool given twice, 'read_file' and 'write_file': give it once" },
      { cmdline.parse(decl, { "--tool", "read_file", "--tool", "write_file" }) })
    -- named as given: the alias
    assert.same({ nil, "-a given twice, '{}' and '[]': give it once" }, { cmdline.parse(decl, { "--args", "{}", "-a", "[]" }) })
    -- the same value twice is one; a many option repeats
    assert.same({ tool = "x", role = { "a", "b" } }, assert(cmdline.parse(decl, { "--tool", "x", "--role", "a", "--tool", "x", "--role", "b" })))
  end)

  it("holds for gate check's --tool and --args", function()
    assert.same({ nil, "--tool given twice, 'read_file' and 'write_file': give it once" },
      { cmdline.parse(gate_check, { "check", "--role", "coder", "--tool", "read_file", "--tool", "write_file" }) })
    assert.same({ nil, "--args given twice, '{}' and '{\"path\":\"a\"}': give it once" },
      { cmdline.parse(gate_check, { "check", "--role", "coder", "--tool", "t", "--args", "{}", "--args", '{"path":"a"}' }) })
  end)
end)

describe("cmdline.parse, a negative number", function()
  it("is a bad RUN where a run number is next, not an unknown option", function()
    local log = require("orket.cmd.log").args
    assert.same({ nil, "RUN must be a run number as 'orket runs' lists them, not -1" }, { cmdline.parse(log, { "-1" }) })
    local resume = require("orket.cmd.resume").args
    assert.same({ nil, "RUN must be a run number as 'orket runs' lists them, not -12" }, { cmdline.parse(resume, { "-12" }) })
  end)

  it("stays an unknown option where free text or nothing is next", function()
    local decl = { text = "for a note that starts with '-'", { "NOTE" } }
    assert.same({ nil, "unknown option '-1' (for a note that starts with '-', put -- before it)" }, { cmdline.parse(decl, { "-1" }) })
    assert.same({ nil, "unknown option '-1'" }, { cmdline.parse({ { "--json" } }, { "-1" }) })
    -- a positional's own refusal, when its check refuses the word
    local card = { { "CARD", check = function(v) return v:match("^%u+%-%d+$") and v, "CARD must be a card id such as T-1, not " .. v end } }
    assert.same({ nil, "CARD must be a card id such as T-1, not -3" }, { cmdline.parse(card, { "-3" }) })
  end)
end)
