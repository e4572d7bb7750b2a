-- End-to-end: the orket binary's basic commands, usage errors and `orket lua`.
local H = require "tests.helpers"

describe("orket CLI", function()
  after_each(H.cleanup)

  it("prints its version", function()
    local r = H.orket("version")
    assert.equal(0, r.status)
    assert.matches("^orket %d+%.%d+%.%d+ %(Lua 5%.4; store schema %d+, PostgreSQL schema %d+%)\n$", r.stdout)
    assert.equal(r.stdout, H.orket("--version").stdout)
  end)

  it("lists commands in help, and shows one command's usage", function()
    local r = H.orket("help")
    assert.equal(0, r.status)
    for _, c in ipairs { "version", "help", "lua", "repl" } do assert.matches("\n  " .. c .. " ", r.stdout) end
    -- every summary starts in one column, the longest name's included
    local cols = {}
    for name, gap in r.stdout:gmatch("\n  ([%a_]+)( +)%S") do cols[#name + #gap] = (cols[#name + #gap] or 0) + 1 end
    assert.equal(1, #(function() local t = {} for k in pairs(cols) do t[#t + 1] = k end return t end)(), r.stdout)
    r = H.orket("help lua")
    assert.equal(0, r.status)
    assert.matches("usage: orket lua", r.stdout)
  end)

  it("shows every command's help for --help and -h, as `orket help COMMAND` does", function()
    local cli = H.orket("help").stdout
    local n = 0
    for name in cli:gmatch("\n  (%l+) ") do
      n = n + 1
      local want = H.orket("help " .. name)
      assert.equal(0, want.status)
      assert.matches("^usage: orket " .. name, want.stdout)
      for _, flag in ipairs { "--help", "-h" } do
        local r = H.orket(name .. " " .. flag)
        assert.equal(0, r.status, name .. " " .. flag .. ": " .. r.stderr)
        assert.equal(want.stdout, r.stdout)
        assert.equal("", r.stderr)
      end
    end
    assert.is_true(n >= 20, "commands listed: " .. n)
    -- among other options too, but not after -- (a word then) nor among a script's arguments
    assert.equal(0, H.orket("log 3 --json -h").status)
    local r = H.orket("answer X-1 -- -h")
    assert.not_equal(0, r.status)
    assert.not_matches("usage: orket answer", r.stdout)
    local dir = H.tmpdir()
    H.write(dir .. "/args.lua", "print(select('#', ...), ...)")
    r = H.orket("lua " .. dir .. "/args.lua -h")
    assert.equal(0, r.status)
    assert.equal("1\t-h\n", r.stdout)
  end)

  it("prints usage and exits 2 on no command, an unknown command or bad flags", function()
    local r = H.orket("")
    assert.equal(2, r.status)
    assert.matches("usage: orket <command>", r.stderr)
    r = H.orket("frobnicate")
    assert.equal(2, r.status)
    assert.matches("orket: unknown command 'frobnicate'", r.stderr)
    assert.matches("orket: unknown command 'frobnicate'\n", r.stderr, 1, true) -- nothing near it
    -- a typo is named with the command nearest to it
    r = H.orket("borad")
    assert.equal(2, r.status)
    assert.matches("^orket: unknown command 'borad'; did you mean 'board'%?\nusage: orket <command>", r.stderr)
    r = H.orket("help stauts")
    assert.equal(2, r.status)
    assert.matches("^orket: unknown command 'stauts'; did you mean 'status'%?\n", r.stderr)
    assert.matches("usage: orket <command>", r.stderr)
    r = H.orket("version --bogus")
    assert.equal(2, r.status)
    assert.matches("unknown option '%-%-bogus'", r.stderr)
    r = H.orket("version extra")
    assert.equal(2, r.status)
    assert.matches("version takes no arguments but --check and -C DIR", r.stderr, 1, true)
    r = H.orket("lua --bogus x.lua")
    assert.equal(2, r.status)
    assert.matches("unknown option '%-%-bogus'", r.stderr)
    assert.matches("usage: orket lua", r.stderr)
    r = H.orket("lua")
    assert.equal(2, r.status)
    r = H.orket("help nosuch")
    assert.equal(2, r.status)
  end)

  it("refuses an empty directory argument as a usage error naming it, never taking it for /", function()
    -- (`init ""` is refused by the same parser entry, checked in cmdline_spec: run here on a
    -- parser that took it, it would write a project into /)
    local dir = H.tmpdir()
    for _, c in ipairs {
      { "validate ''", "orket: DIR is an empty word; give a directory\nusage: orket validate [DIR] [-C DIR]\n" },
      { "import ''", "orket: DIR is an empty word; give a directory\nusage: orket import [DIR] [-C DIR]\n" },
      { "board -C ''", "orket: -C needs a directory, not an empty word\nusage: orket board " },
      { "runs -C ''", "orket: -C needs a directory, not an empty word\nusage: orket runs " },
      -- said as the command's argument, not as the parser's name for it (WORDS)
      { "backup ''", "orket: an argument is an empty word; give a file name\nusage: orket backup FILE " },
      { "restore ''", "orket: an argument is an empty word; give a file name\nusage: orket restore FILE " },
    } do
      local r = H.orket(c[1], { cwd = dir })
      assert.equal(2, r.status, c[1] .. ": " .. r.stderr)
      assert.equal(c[2], r.stderr:sub(1, #c[2]), c[1])
    end
  end)

  it("takes the project's directory as -C DIR in validate and import too, as every command does", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    local r = H.orket("validate -C p", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^ok: orket.lua, 1 epic", r.stdout)
    r = H.orket("import -C p", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("validate -C nowhere", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: no project in nowhere (no such directory); 'orket init nowhere' creates one\n", r.stderr)
  end)

  it("takes -C DIR before the command too, as git does, for every command that takes -C", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    local function same(words)
      local before, after = H.orket("-C p " .. words, { cwd = dir }), H.orket(words .. " -C p", { cwd = dir })
      assert.equal(after.status, before.status, words .. ": " .. before.stderr)
      assert.equal(after.stdout, before.stdout, words)
      assert.equal(after.stderr, before.stderr, words)
      return before
    end
    assert.matches("START%-1", same("board").stdout)
    assert.matches("^ok: orket.lua", same("validate").stdout)
    same("card START-1")
    same("secrets list")
    same("sandbox list")
    -- and between a command and its subcommand, as gate check and secrets list take it
    local r = H.orket("sandbox -C p list", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal(H.orket("sandbox list -C p", { cwd = dir }).stdout, r.stdout)
    r = H.orket("-C p sandbox", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("^orket: sandbox needs a subcommand", r.stderr)
    assert.matches("^allow", same([[gate check --role coder --tool read_file --args '{"path":"a"}']]).stdout)
    assert.matches("START%-1", H.orket("-C=p board", { cwd = dir }).stdout)
    -- a command without -C, and -C without its words, are usage errors that say so
    r = H.orket("-C p init q", { cwd = dir })
    assert.equal(2, r.status)
    assert.equal("orket: init does not take -C DIR\n", r.stderr)
    r = H.orket("-C", { cwd = dir })
    assert.equal(2, r.status)
    assert.equal("orket: -C needs a directory: orket -C DIR COMMAND ...\n", r.stderr)
    r = H.orket("-C p", { cwd = dir })
    assert.equal(2, r.status)
    assert.equal("orket: -C p needs a command after it: orket -C DIR COMMAND ...\n", r.stderr)
  end)

  it("refuses two different -C directories for one command, naming both; one twice is one", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    assert.equal(0, H.orket("init q", { cwd = dir }).status)
    local two = "orket: two different directories given, 'p' and 'q': a command works in one; give one -C DIR\n"
    for _, words in ipairs { "-C p board -C q", "board -C p -C q", "-C p sandbox list -C q", "sandbox -C p list -C q",
      "-C p sandbox -C q list", "-C p import q", "import p -C q", "-C p status -C q", "restore -C p -C q b.db",
      "gate check --role coder --tool read_file -C p --workspace q", "-C p -C q board", "-C=p -C q sandbox list" } do
      local r = H.orket(words, { cwd = dir })
      assert.equal(2, r.status, words)
      assert.equal(two, r.stderr:sub(1, #two), words)
      assert.matches("\nusage: orket ", r.stderr, 1, true)
    end
    -- the same directory, however spelled, is one
    local board = H.orket("board -C p", { cwd = dir }).stdout
    assert.matches("START%-1", board)
    for _, words in ipairs { "-C p board -C p", "-C p board -C ./p/", "board -C p -C " .. H.quote(dir .. "/p"),
      "-C p -C ./p board", "-C=p -C p/ -C p board" } do
      local r = H.orket(words, { cwd = dir })
      assert.equal(0, r.status, words .. ": " .. r.stderr)
      assert.equal(board, r.stdout, words)
    end
    assert.equal(0, H.orket("-C p sandbox -C p/ list", { cwd = dir }).status)
  end)

  it("says what to do under a refusal on a terminal: the code's remedy, from orket.errors", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init .", { cwd = dir }).status)
    H.write(dir .. "/steps", "expect hint: \n")
    local p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s answer START-1 -- sure <steps 2>&1",
      H.quote(dir), H.quote((H.BIN:gsub("orket$", "ptydrive"))), H.quote(H.BIN)))
    local out = p:read("a")
    p:close()
    assert.matches("orket: START-1 is ready, not waiting for input", out, 1, true)
    assert.matches("hint: " .. require("orket.errors").remedy("ESTATE"), out, 1, true)
    assert.matches("%[ptydrive: FAILED, exit 1%]", out) -- every step seen; the command exits 1
    -- not on a pipe: what scripts read of stderr is the message alone (the test below)
    -- a state machine's refusal: a person's remedy, not the one told to a model ("end your
    -- turn", "create_issue")
    assert.equal(0, H.orket("cancel START-2 done-with-it", { cwd = dir }).status)
    p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s cancel START-2 again <steps 2>&1",
      H.quote(dir), H.quote((H.BIN:gsub("orket$", "ptydrive"))), H.quote(H.BIN)))
    out = p:read("a")
    p:close()
    assert.matches("orket: START-2: the issue is already canceled; nothing to change", out, 1, true)
    assert.matches("\nhint: nothing to do: the card has that status already", out, 1, true)
    assert.not_matches("your turn", out, 1, true)
  end)

  -- a hint printed a remedy of the troubleshooting table as it is written there: Markdown
  -- links relative to docs/guide/, and "`orket restore` a backup" to someone restoring one
  it("gives hints in words, naming the guides' files, and a damaged backup's restore its own", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    local p = dir .. "/p"
    assert.equal(0, H.orket("backup ../good.backup", { cwd = p }).status)
    assert(os.execute("head -c 8192 " .. H.quote(dir .. "/good.backup") .. " > " .. H.quote(dir .. "/trunc.backup")))
    assert.equal(0, H.orket("backup ../b.enc --encrypt --passphrase-env BP", { cwd = p,
      env = { BP = "correct horse battery staple" } }).status)
    H.write(dir .. "/steps", "expect hint: \n")
    local function on_tty(words, env)
      local f = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s %s -t 30 -- %s %s <%s 2>&1",
        H.quote(p), env or "", H.quote((H.BIN:gsub("orket$", "ptydrive"))), H.quote(H.BIN), words,
        H.quote(dir .. "/steps")))
      local out = f:read("a")
      f:close()
      return out
    end
    local out = on_tty("restore --check ../trunc.backup")
    assert.matches("\nhint: take another copy of the backup (this one is damaged: cut short, not whole or changed inside)", out, 1, true)
    assert.not_matches("`orket restore` a backup", out, 1, true)
    out = on_tty("restore --check ../b.enc --passphrase-env BP", "BP=wrong-passphrase")
    assert.matches("\nhint: give the key file or passphrase it was made with (docs/guide/deploying.md, "
      .. "\"Encrypted backups\"); for a secret, the key file it was sealed under (docs/secrets.md)", out, 1, true)
    assert.not_matches("](", out, 1, true)
  end)

  -- a backup's clear header says a key file sealed it: a terminal was asked for a passphrase
  -- anyway, and whatever was typed was then refused as the wrong kind of key
  it("says at once on a terminal that a key file's backup needs --key-file, asking no passphrase", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    local p = dir .. "/p"
    assert(os.execute("head -c 32 /dev/urandom > " .. H.quote(dir .. "/k") .. " && chmod 600 " .. H.quote(dir .. "/k")))
    assert.equal(0, H.orket("backup ../b.enc --encrypt --key-file ../k", { cwd = p }).status)
    H.write(dir .. "/steps", "expect --key-file FILE\n")
    local f = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 10 -- %s restore --check ../b.enc <%s 2>&1",
      H.quote(p), H.quote((H.BIN:gsub("orket$", "ptydrive"))), H.quote(H.BIN), H.quote(dir .. "/steps")))
    local out = f:read("a")
    f:close()
    assert.matches("orket: restore: ../b.enc is encrypted with a key file, not a passphrase: give --key-file FILE, "
      .. "the file it was sealed with (the store was not changed)", out, 1, true)
    assert.matches("^orket: restore: ", out) -- nothing asked before it ("passphrase: ")
    assert.matches("%[ptydrive: FAILED, exit 1%]", out) -- every step seen; the command exits 1
  end)

  it("refuses extra runs, unknown answer options, and says when nothing has run yet", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init .", { cwd = dir }).status)
    local r = H.orket("log 1 2", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("give one run number, not '2' as well", r.stderr)
    assert.matches("usage: orket log", r.stderr)
    r = H.orket("answer START-1 -x", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("unknown option '%-x'", r.stderr)
    -- an extra word is said as such, not blamed as a missing one
    r = H.orket("answer START-1 a b", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("^orket: give the answer text as one argument %(quote it%)\n", r.stderr)
    r = H.orket("answer START-1", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("^orket: answer needs a card id and the answer text\n", r.stderr)
    -- after --, text that starts with '-' is the answer (START-1 is not waiting: refused as such)
    r = H.orket("answer START-1 -- -x", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: START-1 is ready, not waiting for input\n", r.stderr)
    r = H.orket("resume", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: no run to resume: nothing has run yet; start one with 'orket run EPIC'\n", r.stderr)
    -- resume takes a run, not a target
    r = H.orket("resume 1 2", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("^orket: give one run\n", r.stderr)
    assert.equal(0, H.orket("run START", { cwd = dir }).status)
    r = H.orket("resume", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: no run to resume (every run is done); workspace/ caught up with main\n", r.stderr)
  end)

  -- `sandbox list --json` wrote an empty list as {} (cjson's guess for an empty table): a
  -- program reading it found an object where the documented output is an array
  it("writes every empty --json list as a list, and nothing else, in a fresh project", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    for _, c in ipairs {
      { "sandbox list --json", "[]\n" },
      { "sandbox list --all --json", "[]\n" },
      { "runs --json", '{"format":"orket.runs/1","runs":[]}\n' },
      { "keys list --json", '{"format":"orket.keys/1","keys":[]}\n' },
      { "mcp list --json", '{"format":"orket.mcp_list/1","servers":[]}\n' },
    } do
      local r = H.orket(c[1], { cwd = dir .. "/p" })
      assert.equal(0, r.status, c[1] .. ": " .. r.stderr)
      assert.equal(c[2], r.stdout, c[1])
    end
  end)

  -- `bug --json` went through cjson alone: its keys came in the table's order, not sorted
  it("writes bug --json with its keys sorted, as every --json output", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    dir = dir .. "/p"
    H.write(dir .. "/epics/r.json", '{ "id": "R", "type": "rock", "name": "Notes", "epics": [ "START" ] }\n')
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("bug R 'Saving fails' --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal('{"card":"R-bugs-1","duplicate":false,"rock":"R"}\n', r.stdout)
  end)

  -- a write whose transaction could not begin said "orket: nil": the audited write's
  -- results, which never were, in place of the store's message
  it("says a locked store's failure in a write command, not nil, and changes nothing", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    dir = dir .. "/p"
    -- another connection holds the store's write lock longer than a writer waits for it
    local p = io.popen(string.format("cd %s && { %s lua -e %s & echo $!; }", H.quote(dir), H.quote(H.BIN),
      H.quote("local db = assert(require('orket.project').open_store('.', false)); assert(db:exec('BEGIN EXCLUSIVE')); "
        .. "io.stdout:write('held\\n'); io.stdout:flush(); orket.sleep(60000)")))
    local first, second = p:read("l"), p:read("l")
    local pid = math.tointeger(tonumber(first) or tonumber(second))
    finally(function()
      os.execute("kill -9 " .. pid)
      p:close()
    end)
    assert.equal("held", tonumber(first) and second or first)
    for _, c in ipairs { "cancel START-1 'not needed'", "keys create ci --role viewer" } do
      local r = H.orket(c, { cwd = dir })
      assert.equal(1, r.status, c)
      assert.equal("", r.stdout, c)
      assert.equal("orket: .orket/orket.db: database is locked\n", r.stderr, c)
    end
    os.execute("kill -9 " .. pid)
    H.wait_for(function() return not H.alive(pid) end, "the holder to end")
    assert.matches('"status":"ready"', H.orket("card START-1 --json", { cwd = dir }).stdout, 1, true)
    assert.matches('"keys":[]', H.orket("keys list --json", { cwd = dir }).stdout, 1, true)
  end)

  -- status said "git: no git repository at DIR/./workspace (run orket init)"
  it("says there is no project where status is asked outside one", function()
    local dir = H.tmpdir()
    local r = H.orket("status", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: no project in . (orket.lua not found); 'orket init' creates one\n", r.stderr)
    r = H.orket("status --json -C " .. H.quote(dir .. "/nowhere"), { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("", r.stdout)
    assert.equal("orket: no project in " .. dir .. "/nowhere (orket.lua not found); 'orket init " .. dir
      .. "/nowhere' creates one\n", r.stderr)
  end)

  -- run, worker, bugfix, mcp and experiments said "orket.lua: cannot read: Not a directory",
  -- naming neither the file nor the option
  it("refuses a file given as the project's directory, naming it, in every command", function()
    local dir = H.tmpdir()
    local file = dir .. "/f"
    H.write(file, "x\n")
    for _, c in ipairs { "run X", "worker --drain", "bugfix status", "mcp list", "experiments report x", "board",
      "sandbox list", "restore b.db", "runs" } do
      local r = H.orket(c .. " -C " .. H.quote(file), { cwd = dir })
      assert.equal(2, r.status, c .. ": " .. r.stderr)
      assert.equal("orket: -C " .. file .. ": not a directory\n", r.stderr:match("^[^\n]*\n"), c)
    end
    for _, c in ipairs { "worker", "serve", "validate", "import" } do
      local r = H.orket(c .. " " .. H.quote(file), { cwd = dir })
      assert.equal(2, r.status, c .. ": " .. r.stderr)
      assert.equal("orket: " .. file .. ": not a directory\n", r.stderr:match("^[^\n]*\n"), c)
    end
  end)

  -- a closed stdout or stderr: the next file opened took its number, and libuv aborted
  -- closing it (exit 134, "Assertion `fd > STDERR_FILENO' failed"). A closed stdout is
  -- output that cannot be written: 1 (tests/e2e/stdout_closed_test.lua)
  it("runs with standard output or error closed by the caller, without aborting", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    for _, c in ipairs { "version >&-", "board >&-", "board --json >&- 2>&-", "bogus 2>&-", "board <&-" } do
      local p = io.popen(string.format("cd %s/p && %s %s; echo rc=$?", H.quote(dir), H.quote(H.BIN), c))
      local out = p:read("a")
      p:close()
      local want = c:find("^bogus") and "2" or c:find(">&-", 1, true) and "1" or "0"
      assert.equal(want, out:match("rc=(%d+)\n$"), c .. ": " .. out)
    end
  end)

  -- where /dev/null cannot be opened (a bare chroot) a closed fd stayed closed, silently,
  -- and the store could take its number; a shim refuses /dev/null to see it said and refused
  it("refuses to run with a standard fd closed when /dev/null cannot be opened", function()
    local dir = H.tmpdir()
    H.write(dir .. "/shim.c", [[
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
static int deny(const char *p, int f, va_list ap, const char *name) {
  if (strcmp(p, "/dev/null") == 0) { errno = ENOENT; return -1; }
  int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, name);
  return real(p, f, va_arg(ap, int));
}
int open(const char *p, int f, ...) { va_list ap; va_start(ap, f); int r = deny(p, f, ap, "open"); va_end(ap); return r; }
int open64(const char *p, int f, ...) { va_list ap; va_start(ap, f); int r = deny(p, f, ap, "open64"); va_end(ap); return r; }
]])
    if not os.execute(string.format("cc -shared -fPIC -o %s/shim.so %s/shim.c -ldl 2>/dev/null", H.quote(dir), H.quote(dir))) then
      return pending("no C compiler here")
    end
    -- a sanitizer build's runtime must come first among preloaded libraries
    local preload = dir .. "/shim.so"
    if H.sanitized() then
      local l = io.popen("ldd " .. H.quote(H.BIN) .. " 2>/dev/null")
      local asan = l:read("a"):match("=> (%S*libasan%S*)")
      l:close()
      if not asan then return pending("a sanitizer build whose runtime ldd does not name") end
      preload = asan .. ":" .. preload
    end
    for c, want in pairs {
      ["version <&- 2>&1"] = "orket: standard input is closed and /dev/null cannot be opened in its place: "
        .. "No such file or directory\nrc=1\n",
      ["version 2>&1 >&-"] = "orket: standard output is closed and /dev/null cannot be opened in its place: "
        .. "No such file or directory\nrc=1\n",
      ["version 2>&-"] = "rc=1\n", -- stderr is the closed one: the status alone says it
      ["version"] = H.orket("version").stdout .. "rc=0\n", -- nothing closed: /dev/null not needed
    } do
      local p = io.popen(string.format("LD_PRELOAD=%s %s %s; echo rc=$?", H.quote(preload), H.quote(H.BIN), c))
      local out = p:read("a")
      p:close()
      assert.equal(want, out, c)
    end
  end)

  -- output that could not be written was lost with exit 0: a script saving `orket board
  -- --json > file` on a full disk kept an empty file and went on
  it("fails when its output cannot be written, small or large", function()
    if not io.open("/dev/full", "w") then return pending("no /dev/full here") end
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    dir = dir .. "/p"
    local issues = {}
    for i = 1, 300 do issues[i] = string.format('{"id": "BIG-%d", "summary": "%s"}', i, string.rep("x", 80)) end
    H.write(dir .. "/epics/big.json", '{"id": "BIG", "name": "big", "issues": [' .. table.concat(issues, ",") .. "]}")
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    -- a command's --help too: it went out before the check, exit 0
    -- and a run's JSON Lines, flushed line by line: it stopped as when its reader went away,
    -- with exit 0 (or 130 while a model call waited) and not a word
    for _, c in ipairs { "version", "runs --json", "board START", "board", "board --json", "board --help", "help board",
      "run START --json" } do
      local p = io.popen(string.format("cd %s && %s %s 2>&1 >/dev/full; echo rc=$?", H.quote(dir), H.quote(H.BIN), c))
      local out = p:read("a")
      p:close()
      assert.equal("orket: cannot write the output: No space left on device\nrc=1\n", out, c)
    end
    -- a script's print and io.write, which write past the handle's own methods: lost with exit 0
    for _, c in ipairs { "lua -e 'print(\"hello\")'", "lua -e 'print((\"x\"):rep(1e6))'", "lua -e 'io.write((\"x\"):rep(1e6))'" } do
      local p = io.popen(string.format("cd %s && %s %s 2>&1 >/dev/full; echo rc=$?", H.quote(dir), H.quote(H.BIN), c))
      local out = p:read("a")
      p:close()
      assert.equal("orket: cannot write the output: No space left on device\nrc=1\n", out, c)
    end
  end)

  -- the watch on stdout's writes wraps every file handle's write: it dropped the errno, a
  -- script's third result, and told EPIPE by strerror's English words
  it("keeps a failed write's errno for a script's file handles", function()
    if not io.open("/dev/full", "w") then return pending("no /dev/full here") end
    local dir = H.tmpdir()
    H.write(dir .. "/w.lua", [[
local f = assert(io.open("/dev/full", "w"))
f:setvbuf("no")
io.stdout:write(select("#", f:write("x")), " ", tostring(select(3, f:write("x"))), "\n")
]])
    local r = H.orket("lua " .. H.quote(dir .. "/w.lua"))
    assert.equal(0, r.status, r.stderr)
    assert.equal("3 28\n", r.stdout) -- ENOSPC
    -- a reader gone away with SIGPIPE ignored by the parent (systemd's units, Python's
    -- os.system): nothing said, and 141 as SIGPIPE's own end gives, not 0 on output cut
    -- (set -o pipefail must see it)
    H.write(dir .. "/big.lua", 'for _ = 1, 20000 do io.stdout:write(string.rep("x", 100), "\\n") end')
    local script = string.format("trap '' PIPE; %s lua %s 2>%s; echo $? >%s", H.quote(H.BIN), H.quote(dir .. "/big.lua"),
      H.quote(dir .. "/err"), H.quote(dir .. "/rc"))
    os.execute("sh -c " .. H.quote(script) .. " | head -c1 >/dev/null")
    assert.equal("141\n", H.read(dir .. "/rc"))
    assert.equal("", H.read(dir .. "/err"))
    -- the same for a command's own output (orket help --json is small: the board of a
    -- project of many cards is not)
    local p = dir .. "/p"
    assert.equal(0, H.orket("init p --yes", { cwd = dir }).status)
    local epic = { '{"id":"BIG","name":"big","issues":[' }
    for i = 1, 400 do epic[#epic + 1] = string.format('%s{"id":"BIG-%d","summary":"%s"}', i > 1 and "," or "", i,
      string.rep("s", 150)) end
    epic[#epic + 1] = "]}"
    H.write(p .. "/epics/big.json", table.concat(epic))
    assert.equal(0, H.orket("import", { cwd = p }).status)
    script = string.format("trap '' PIPE; %s board --json 2>%s; echo $? >%s", H.quote(H.BIN), H.quote(dir .. "/err"),
      H.quote(dir .. "/rc"))
    os.execute("cd " .. H.quote(p) .. " && sh -c " .. H.quote(script) .. " | head -c1 >/dev/null")
    assert.equal("141\n", H.read(dir .. "/rc"))
    assert.equal("", H.read(dir .. "/err"))
  end)

  it("takes --opt=value wherever it takes --opt value, a command's own parser or the shared one", function()
    local dir = H.tmpdir()
    -- init's own parser
    local r = H.orket("init p --forge=gitea --repo=acme/notes --forge-url=https://git.example.org", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local p = dir .. "/p"
    assert.matches("https://git.example.org/acme/notes/", H.read(p .. "/workspace/README.md"), 1, true)
    -- run's own parser
    r = H.orket("run START --concurrency=1 --model=scripted:team --json", { cwd = p })
    assert.equal(0, r.status, r.stderr)
    -- the shared one (cli.words): sandbox compose --out=DIR, a value holding '='
    H.write(p .. "/workspace/app.py", "print(1)\n")
    H.commit_main(p, "an app") -- a sandbox's plan reads main's commit, not the view
    r = H.orket("sandbox compose --out=" .. H.quote(dir .. "/a=b"), { cwd = p })
    assert.equal(0, r.status, r.stderr)
    assert.is_truthy(H.read(dir .. "/a=b/compose.yaml"))
    -- a short option too (every usage line says [-C DIR]), and an empty value is refused
    r = H.orket("runs --json -C=" .. H.quote(p), { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches('"target":"START"', r.stdout, 1, true)
    r = H.orket("run START --model=", { cwd = p })
    assert.equal(2, r.status, r.stderr)
    assert.matches("orket: --model needs a value, not an empty word\nusage: orket run ", r.stderr, 1, true)
    r = H.orket("board -C=", { cwd = p })
    assert.equal(2, r.status, r.stderr)
    assert.matches("orket: -C needs a directory, not an empty word\n", r.stderr, 1, true)
    -- a flag given a value is refused, not taken for the flag
    r = H.orket("runs --json=yes", { cwd = p })
    assert.equal(2, r.status)
    assert.matches("unknown argument 'yes'", r.stderr, 1, true)
    -- nor for the flag and a word of its own: board's 1 was taken for a card to show
    for _, c in ipairs { "board --json=1", "-C . board --json=1", "log --full=1", "restore --check=1 b.db" } do
      r = H.orket(c, { cwd = p })
      assert.equal(2, r.status, c .. ": " .. r.stderr)
      assert.matches("^orket: unknown argument '1': %-%-%a+ takes no value\nusage: ", r.stderr, c)
    end
    -- a script's own arguments are its own
    H.write(dir .. "/args.lua", "print(table.concat({...}, ' '))\n")
    r = H.orket("lua " .. H.quote(dir .. "/args.lua") .. " --a=b -- --c=d")
    assert.equal("--a=b -- --c=d\n", r.stdout)
  end)

  it("runs a script with arguments, like lua", function()
    local dir = H.tmpdir()
    H.write(dir .. "/s.lua", "#!/usr/bin/env orket\nprint(arg[0] == ..., select('#', ...), arg[1], arg[2], orket.version ~= nil)")
    local r = H.orket("lua " .. H.quote(dir .. "/s.lua") .. " a 'b c'")
    assert.equal(0, r.status, r.stderr)
    assert.equal("false\t2\ta\tb c\ttrue\n", r.stdout)
  end)

  it("lets a script wait at top level and finishes what it started", function()
    local r = H.orket([[lua -e "orket.spawn(function() orket.sleep(20) print('late') end) orket.sleep(5) print('early')"]])
    assert.equal(0, r.status, r.stderr)
    assert.equal("early\nlate\n", r.stdout)
  end)

  -- as lua(1): FILE was taken for the chunk's arg[1] and never run, without a word
  it("runs -e CODE as the script, the words after it its arguments, as its usage says", function()
    local dir = H.tmpdir()
    H.write(dir .. "/s.lua", 'print("file ran")\n')
    local r = H.orket("lua -e " .. H.quote('print("code ran", arg[0], arg[1], ...)') .. " s.lua z", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("code ran\t-e\ts.lua\ts.lua\tz\n", r.stdout)
    r = H.orket("lua --help", { cwd = dir })
    assert.matches("orket lua -e CODE [ARGS...]", r.stdout .. r.stderr, 1, true)
  end)

  it("reports a script error with a traceback and exits 1", function()
    local dir = H.tmpdir()
    H.write(dir .. "/bad.lua", "local function f() error('kaput') end\nf()\n")
    local r = H.orket("lua " .. H.quote(dir .. "/bad.lua"))
    assert.equal(1, r.status)
    assert.matches("bad%.lua:1: kaput", r.stderr)
    assert.matches("stack traceback:", r.stderr)
    assert.equal(1, select(2, r.stderr:gsub("kaput", ""))) -- once, not as unhandled too
    -- a task that failed before it was joined is the joiner's to report
    r = H.orket([[lua -e "local ok = orket.spawn(function() error('handled') end):join() print(ok)"]])
    assert.equal(0, r.status, r.stderr)
    assert.equal("false\n", r.stdout)
    assert.equal("", r.stderr)
  end)

  it("names the file and line of a syntax error", function()
    local dir = H.tmpdir()
    H.write(dir .. "/syn.lua", "x = 1\nif then\n")
    local r = H.orket("lua " .. H.quote(dir .. "/syn.lua"))
    assert.equal(1, r.status)
    assert.matches("syn%.lua:2:", r.stderr)
  end)

  it("reports a missing script", function()
    local r = H.orket("lua /nonexistent/x.lua")
    assert.equal(1, r.status)
    assert.matches("cannot open /nonexistent/x.lua", r.stderr)
  end)

  -- a directory opens, and its read failed: an internal error with a traceback
  it("reports a directory given as the script", function()
    local dir = H.tmpdir()
    local r = H.orket("lua " .. H.quote(dir))
    assert.equal(1, r.status, r.stderr)
    assert.equal("orket: cannot read " .. dir .. ": Is a directory\n", r.stderr)
  end)

  it("refuses precompiled chunks", function()
    local dir = H.tmpdir()
    H.write(dir .. "/b.luac", string.dump(function() return 1 end))
    local r = H.orket("lua " .. H.quote(dir .. "/b.luac"))
    assert.equal(1, r.status)
    assert.matches("precompiled chunks are not run", r.stderr)
  end)

  it("reports failures of tasks nobody joined and exits 1", function()
    local r = H.orket([[lua -e "orket.spawn(function() orket.sleep(1) error('lost') end)"]])
    assert.equal(1, r.status)
    assert.matches("lost", r.stderr)
  end)

  it("reads a script from standard input", function()
    local r = H.orket("lua -", { stdin = "print(6 * 7)" })
    assert.equal(0, r.status)
    assert.equal("42\n", r.stdout)
  end)

  it("finds its library from an install prefix", function()
    local dir = H.tmpdir()
    local ok = os.execute(string.format("make -s -C %s install PREFIX=%s >/dev/null 2>&1 BUILD=%s",
      H.quote(H.ROOT), H.quote(dir), H.quote(H.BIN:match("^(.*)/orket$"))))
    assert.is_true(ok)
    local p = io.popen(H.quote(dir .. "/bin/orket") .. " lua -e 'print(package.orket_home)' 2>&1")
    local out = p:read("a")
    p:close()
    assert.matches("/share/orket\n$", out)
    -- the web board's files are installed beside the library, where orket serve looks
    assert.equal(H.read(H.ROOT .. "/web/app.js"), H.read(dir .. "/share/orket/web/app.js"))
  end)

  it("installs under a prefix holding a space, readable whatever the umask, replaces the library whole, "
    .. "and uninstalls", function()
    local prefix = H.tmpdir() .. "/a prefix/usr"
    local function make(target)
      return os.execute(string.format("umask 077; make -s -C %s %s PREFIX=%s BUILD=%s >/dev/null 2>&1",
        H.quote(H.ROOT), target, H.quote(prefix), H.quote(H.BIN:match("^(.*)/orket$"))))
    end
    assert.is_true(make("install"))
    local share = prefix .. "/share/orket"
    assert.equal(H.read(H.ROOT .. "/web/app.js"), H.read(share .. "/web/app.js"))
    -- other users read it: files 644, folders 755, not the umask's 600 and 700
    local p = io.popen("stat -c '%a' " .. H.quote(share .. "/lua/orket/cli.lua") .. " " .. H.quote(share .. "/tools") .. " "
      .. H.quote(prefix .. "/bin/orket"))
    assert.equal("644\n755\n755\n", p:read("a"))
    p:close()
    -- a tool an older release had stays not live after an install over it
    H.write(share .. "/tools/legacy_read.lua", "return {}")
    assert.is_true(make("install"))
    assert.is_nil(io.open(share .. "/tools/legacy_read.lua"))
    p = io.popen(H.quote(prefix .. "/bin/orket") .. " version 2>&1")
    assert.matches("^orket ", p:read("a"))
    p:close()
    assert.is_true(make("uninstall"))
    assert.is_nil(io.open(prefix .. "/bin/orket"))
    assert.is_nil(io.open(share .. "/lua/orket/cli.lua"))
    -- nothing of it landed in the source tree (the prefix's second word, "prefix/usr")
    assert.is_nil(io.open(H.ROOT .. "/prefix"))
  end)

  it("runs no module file of the directory it is started in (a workspace an agent wrote)", function()
    local dir = H.tmpdir()
    local mark = dir .. "/ran"
    -- what an agent's merged files could hold: modules Orket loads by name, at the current
    -- directory's ./?.lua, ./?/init.lua and ./?.so of Lua's default paths
    local body = string.format('io.open(%q, "a"):write(...) return {}', mark)
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/cjson") .. " " .. H.quote(dir .. "/yaml")))
    H.write(dir .. "/cjson/safe.lua", body)
    H.write(dir .. "/yaml/init.lua", body)
    H.write(dir .. "/lpeg.lua", body)
    H.write(dir .. "/luv.so", "not a library")
    local r = H.orket("status", { cwd = dir })
    assert.matches("orket.lua not found", r.stderr, 1, true)
    r = H.orket([[lua -e "require 'cjson.safe'; require 'yaml'; print(pcall(require, 'lpeg'))"]], { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.is_nil(io.open(mark), "a module of the current directory was run")
    r = H.orket([[lua -e "print(package.path, package.cpath)"]], { cwd = dir })
    assert.is_nil(r.stdout:find("./?", 1, true), r.stdout)
  end)
end)
