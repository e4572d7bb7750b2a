-- orket.cmdline: a command's words read against its declaration, and the usage line and
-- option list made from it.
local cmdline = require "orket.cmdline"

local DECL = {
  extra = "give one target",
  { "TARGET", missing = "run needs a target" },
  { "--json", help = "print JSON" },
  { "--model", value = "M", what = "a model" },
  { "--role", value = "ROLE", many = true },
  { "--lease-ms", value = "MS", default = 30000, check = cmdline.at_least(30, "--lease-ms needs at least 30") },
  cmdline.DIR,
}

describe("cmdline.parse", function()
  it("reads flags, values, repeats, defaults and a positional in any order", function()
    local o = assert(cmdline.parse(DECL, { "--role", "a", "X-1", "--json", "--role", "b", "-C", "d", "--lease-ms", "40" }))
    assert.same({ target = "X-1", json = true, role = { "a", "b" }, dir = "d", lease_ms = 40 }, o)
    o = assert(cmdline.parse(DECL, { "X-1" }))
    assert.same({ target = "X-1", dir = ".", lease_ms = 30000 }, o)
  end)

  it("takes every word after -- as positional, and a value however it looks", function()
    local o = assert(cmdline.parse(DECL, { "--model", "--json", "--", "-X" }))
    assert.equal("--json", o.model)
    assert.equal("-X", o.target)
    assert.is_nil(o.json)
  end)

  it("refuses a second, different -C (or a DIR and a -C), naming both; the same directory twice is one", function()
    local o, msg = cmdline.parse(DECL, { "X", "-C", "a", "-C", "b" })
    assert.is_nil(o)
    assert.equal("two different directories given, 'a' and 'b': a command works in one; give one -C DIR", msg)
    o, msg = cmdline.parse(cmdline.dir_args("import"), { "a", "-C", "b" })
    assert.is_nil(o)
    assert.matches("'a' and 'b'", msg, 1, true)
    assert.equal("./", assert(cmdline.parse(DECL, { "X", "-C", ".", "-C", "./" })).dir)
    assert.equal("a", assert(cmdline.parse(DECL, { "X", "-C", "a", "-C", "a" })).dir)
    -- `orket -C a worker b` (the leading -C comes first): worker's DIR refuses it too
    o, msg = cmdline.parse(require("orket.cmd.worker").args, { "-C", "a", "b" })
    assert.is_nil(o)
    assert.matches("'a' and 'b'", msg, 1, true)
    -- a folder that does not exist, spelt two ways, is one (the command says it is missing)
    assert.equal("./no-such-dir/", assert(cmdline.parse(DECL, { "X", "-C", "no-such-dir", "-C", "./no-such-dir/" })).dir)
    -- an option that takes one value takes it once (cmdline_repeat_spec.lua)
    assert.same({ nil, "--model given twice, 'm' and 'n': give it once" },
      { cmdline.parse(DECL, { "X", "--model", "m", "--model", "n" }) })
  end)

  -- a key's role given twice: the later word silently won, an admin key where a viewer's
  -- may have been meant
  it("refuses a key's --role or --for given twice with two values, naming both", function()
    local keys = require("orket.cmd.keys").args
    local o, msg = cmdline.parse(keys, { "create", "x", "--role", "viewer", "--role", "admin" })
    assert.is_nil(o)
    assert.equal("--role given twice, 'viewer' and 'admin': give it once", msg)
    o, msg = cmdline.parse(keys, { "create", "x", "--for", "bob", "--role", "viewer", "--for", "root" })
    assert.is_nil(o)
    assert.equal("--for given twice, 'bob' and 'root': give it once", msg)
    assert.equal("viewer", assert(cmdline.parse(keys, { "create", "x", "--role", "viewer", "--role", "viewer" })).role)
  end)

  it("names the argument in each error", function()
    local cases = {
      { {}, "run needs a target" },
      { { "X", "Y" }, "give one target" },
      { { "X", "--bogus" }, "unknown option '--bogus'" },
      { { "X", "--model" }, "--model needs a model" },
      { { "X", "-C" }, "-C needs a directory" },
      { { "X", "--lease-ms", "3" }, "--lease-ms needs at least 30" },
      -- a number is decimal digits: not what Lua's tonumber also reads
      { { "X", "--lease-ms", "1e3" }, "--lease-ms needs at least 30" },
      { { "X", "--lease-ms", "0x40" }, "--lease-ms needs at least 30" },
      { { "X", "--lease-ms", " 50" }, "--lease-ms needs at least 30" },
      { { "X", "--lease-ms", "50 " }, "--lease-ms needs at least 30" },
      { { "X", "--lease-ms", "40.0" }, "--lease-ms needs at least 30" },
      { { "X", "--role" }, "--role needs ROLE" },
      -- an empty word is no value: "" for a directory would be the filesystem's root
      { { "X", "--model", "" }, "--model needs a model, not an empty word" },
      { { "X", "-C", "" }, "-C needs a directory, not an empty word" },
      { { "X", "--role", "" }, "--role needs ROLE, not an empty word" },
      { { "" }, "TARGET is an empty word" },
    }
    for _, c in ipairs(cases) do
      local o, msg = cmdline.parse(DECL, c[1])
      assert.is_nil(o)
      assert.equal(c[2], msg)
    end
  end)

  -- check = fn(value[, name]): name is the option as the person gave it, for its message
  it("hands a check the option's name as given: its alias, the name before =, none for a positional", function()
    local cli, H = require "orket.cli", require "tests.helpers"
    local seen = {}
    local function check(v, name)
      seen[#seen + 1] = { v, name or false }
      return v
    end
    local decl = { { "WORD", optional = true, check = check },
      { "-C", alias = "--workspace", value = "DIR", check = check } }
    assert(cmdline.parse(decl, { "w", "-C", "a" }))
    local args, attached = cli.split_values({ "--workspace=b" }, nil, decl)
    args.attached = attached
    assert(cmdline.parse(decl, args))
    assert(cmdline.parse(decl, { "--workspace", "c" }))
    assert.same({ { "w", false }, { "a", "-C" }, { "b", "--workspace" }, { "c", "--workspace" } }, seen)
    -- a_dir names the option so; must_exist refuses a missing directory as well as a file
    local dir = H.tmpdir()
    H.write(dir .. "/f", "")
    local must = { { "-C", alias = "--workspace", value = "DIR", check = cmdline.a_dir("-C", true) } }
    assert.same({ c = dir }, cmdline.parse(must, { "--workspace", dir }))
    local cases = {
      { { "--workspace", dir .. "/nope" }, "--workspace " .. dir .. "/nope: no such directory" },
      { { "-C", dir .. "/f" }, "-C " .. dir .. "/f: not a directory" },
    }
    for _, c in ipairs(cases) do
      local o, msg = cmdline.parse(must, c[1])
      assert.is_nil(o)
      assert.equal(c[2], msg)
    end
    assert.same({ dir = dir .. "/nope" }, cmdline.parse({ cmdline.DIR }, { "-C", dir .. "/nope" })) -- missing: the command says so
    H.cleanup()
  end)

  it("takes an empty word where the entry says it may be empty, and in a script's words", function()
    local decl = { { "CARD" }, { "NOTE", optional = true, empty = true }, { "--why", value = "W", empty = true } }
    assert.same({ card = "X", note = "", why = "" }, cmdline.parse(decl, { "X", "", "--why", "" }))
    decl = { { "ARGS", many = true, rest = true, key = "words" } }
    assert.same({ words = { "f.lua", "" } }, cmdline.parse(decl, { "f.lua", "" }))
    -- the commands' own: free text, and a list where empty means none
    local cli = require "orket.cli"
    local bug = cmdline.parse(cli.load_command("bug").args, { "R", "title", "--body", "" })
    assert.same({ "R", "title", "" }, { bug.rock, bug.text, bug.body })
    local gate = cmdline.parse(cli.load_command("gate").args, { "check", "--role", "coder", "--tool", "read_file",
      "--allow-tools", "" })
    assert.equal("", gate.allow)
  end)

  it("splits name=value words, but never an option's value that looks like one", function()
    local cli = require "orket.cli"
    local decl = cli.load_command("bug").args
    assert.same({ "R", "s", "--body", "-E=1 fails" }, cli.split_values({ "R", "s", "--body", "-E=1 fails" }, nil, decl))
    assert.same({ "R", "s", "--body", "x", "-C", "d" }, cli.split_values({ "R", "s", "--body=x", "-C=d" }, nil, decl))
  end)

  it("refuses an empty directory for every command that takes one, naming the argument", function()
    local cli, H = require "orket.cli", require "tests.helpers"
    local seen = {}
    for _, name in ipairs(cli.COMMANDS) do
      local decl = cli.load_command(name).args or {}
      local first
      for _, e in ipairs(decl) do
        if e[1] == "-C" then
          local o, msg = cmdline.parse(decl, { "-C", "" })
          assert.is_nil(o, name)
          assert.equal("-C needs a directory, not an empty word", msg, name)
          seen["-C"] = true
        elseif e[1]:sub(1, 1) ~= "-" then
          first = first or e
        end
      end
      if first and first[1] == "DIR" then
        local o, msg = cmdline.parse(decl, { "" })
        assert.is_nil(o, name)
        assert.equal("DIR is an empty word; give a directory", msg, name)
        seen[name] = true
      end
    end
    for _, name in ipairs { "-C", "init", "validate", "import", "serve", "worker" } do assert.is_true(seen[name], name) end
  end)

  it("names the option nearest to an unknown one, when one is near", function()
    local _, msg = cmdline.parse(DECL, { "X", "--jsn" })
    assert.equal("unknown option '--jsn'; did you mean '--json'?", msg)
    _, msg = cmdline.parse(DECL, { "X", "--lease-sm", "40" })
    assert.equal("unknown option '--lease-sm'; did you mean '--lease-ms'?", msg)
    _, msg = cmdline.parse({ text = "a note", { "NOTE", optional = true }, { "--json" } }, { "--jsno" })
    assert.equal("unknown option '--jsno' (a note, put -- before it); did you mean '--json'?", msg)
    _, msg = cmdline.parse(DECL, { "X", "--frobnicate" })
    assert.equal("unknown option '--frobnicate'", msg)
  end)

  it("names the choice nearest to an unknown subcommand, when one is near", function()
    local sub = cmdline.one_of({ "set", "list", "rotate", "rm" }, "unknown secrets command '%s'")
    assert.same({ nil, "unknown secrets command 'lst'; did you mean 'list'?" }, { sub("lst") })
    assert.same({ nil, "unknown secrets command 'frobnicate'" }, { sub("frobnicate") })
    assert.equal("list", sub("list"))
  end)

  it("says how to pass text that starts with '-', refuses words where nothing is declared", function()
    local _, msg = cmdline.parse({ text = "a note", { "NOTE", optional = true } }, { "-x" })
    assert.equal("unknown option '-x' (a note, put -- before it)", msg)
    _, msg = cmdline.parse({ none = "version takes no arguments" }, { "--bogus" })
    assert.equal("version takes no arguments", msg)
    _, msg = cmdline.parse({}, { "yes" })
    assert.equal("unknown argument 'yes'", msg)
    _, msg = cmdline.parse({ { "--tool", value = "T", required = true } }, {})
    assert.equal("--tool is required", msg)
  end)

  it("hands a script its words as they are after the first positional, or after an option marked last", function()
    local decl = { { "-e", value = "CODE", key = "code", last = true }, { "ARGS", many = true, rest = true, key = "words" } }
    assert.same({ words = { "f.lua", "-h", "--x", "--", "y" } }, cmdline.parse(decl, { "f.lua", "-h", "--x", "--", "y" }))
    assert.same({ code = "print(1)", words = { "-x", "y" } }, cmdline.parse(decl, { "-e", "print(1)", "-x", "y" }))
  end)

  it("hands a subcommand its words, options included, after a positional marked last", function()
    local decl = { { "SUB", key = "sub", last = true }, { "ARGS", many = true, rest = true, key = "words" },
      { "--json" } }
    assert.same({ sub = "up", words = { "--detach", "-C", "d" } }, cmdline.parse(decl, { "up", "--detach", "-C", "d" }))
    assert.same({ sub = "list", json = true }, cmdline.parse(decl, { "--json", "list" }))
    assert.same({ sub = "plan" }, cmdline.parse(decl, { "plan" }))
  end)
end)

describe("cmdline.usage and options_help", function()
  it("make the usage line and the option list from the declaration", function()
    assert.equal("orket run TARGET [--json] [--model M] [--role ROLE...] [--lease-ms MS] [-C DIR]", cmdline.usage("run", DECL))
    assert.equal("orket x [N]", cmdline.usage("x", { { "N", optional = true } }))
    assert.equal("given", cmdline.usage("x", { usage = "given" }))
    assert.equal("  --json  print JSON\n  -C DIR  the project's directory (default: the current one)", cmdline.options_help(DECL))
    assert.equal("  --a X  one\n         two", cmdline.options_help { { "--a", value = "X", help = "one\ntwo" } })
    assert.is_nil(cmdline.options_help { { "--a" } })
  end)

  -- a store failure as the user sees it: Orket's own positions cut, under an install path
  -- with a space too ("/opt/My " was left), and a user's own file:line kept, in a folder
  -- named orket too (it was cut)
  it("cuts only the positions of Orket's own library from a store failure", function()
    local H = require "tests.helpers"
    local plain = require("orket.cli").plain
    local F = ".orket/orket.db: database is locked"
    local lib = H.tmpdir() .. "/My Tools/orket/lua/orket/"
    assert(os.execute("mkdir -p " .. H.quote(lib .. "store") .. " && touch " .. H.quote(lib .. "store/cards.lua")))
    assert.equal(F, plain(lib .. "store/cards.lua:34: " .. F, lib))
    assert.equal("restore: " .. F .. " (the store was not changed)",
      plain("restore: " .. lib .. "store/cards.lua:34: " .. F .. " (the store was not changed)", lib))
    -- Lua's shortened form of a long chunk name
    assert.equal(F, plain("... Tools/orket/lua/orket/store/cards.lua:34: " .. F, lib))
    assert.equal(F, plain(F .. "\nstack traceback:\n\t[C]: in ?", lib))
    for _, user in ipairs { "/home/u/src/orket/proj/policies/p.lua:3: ", "...src/orket/proj/policies/p.lua:3: ",
      "orket.lua:3: ", "...Tools/orket/lua/orket/store/gone.lua:3: " } do
      assert.equal(user .. F, plain(user .. F, lib))
    end
    -- the library this runs from is the default
    assert.equal(F, plain(package.orket_home .. "/lua/orket/store/cards.lua:34: " .. F))
    -- and every message said, not only a file's failure: a PostgreSQL standby's refusal,
    -- raised through assert() and caught on its way, was printed with its position
    local cli = require "orket.cli"
    local path = H.tmpdir() .. "/stderr"
    local real = io.stderr
    io.stderr = assert(io.open(path, "w"))
    cli.err("%s", package.orket_home .. "/lua/orket/store/comments.lua:17: pg: cannot execute INSERT in a "
      .. "read-only transaction (SQLSTATE 25006)")
    io.stderr:close()
    io.stderr = real
    assert.equal("orket: pg: cannot execute INSERT in a read-only transaction (SQLSTATE 25006)\n", H.read(path))
    H.cleanup()
  end)
end)
