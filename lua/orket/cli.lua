-- orket.cli: the command line. Each command is a module under orket.cmd.<name> returning
-- { name = "...", summary = "...", args = DECLARATION, run = function(args, cli) -> exit
-- status }: its words are read by cli.parse against the declaration (orket.cmdline), which
-- also makes its usage line and option list. (A hand-written usage = "..." still works.)
-- Library code never prints or exits; this module and the commands decide what to show.
local uv = require "luv"
local nearest = require "orket.nearest"
local cstore = require "orket.c.store"
local backend = require "orket.store.backend"
local inert = require "orket.inert"
local errors = require "orket.errors"
local task = require "orket.task"
local handles = require "orket.handles"
local cmdline = require "orket.cmdline"
local sourcepos = require "orket.sourcepos"

local M = {}

-- Commands in the order `orket help` lists them.
M.COMMANDS = { "version", "help", "lua", "repl", "init", "validate", "import", "board", "card", "gate", "models", "run", "resume", "worker", "runs", "status", "log", "answer", "comment", "retry", "cancel", "serve", "keys", "backup", "restore", "sandbox", "bug", "bugfix", "mcp", "audit", "users", "experiments", "secrets", "projects" }

M.EXIT = { ok = 0, failed = 1, usage = 2, stalled = 3, internal = 70, busy = 75, interrupted = 130, sigpipe = 141 }

-- A failure of the database file (damaged, read-only, full, locked: orket.c.store's
-- file_error) is reported once, however many layers passed it on, and without what only
-- Orket's own code knows: the Lua positions ("import.lua:358: ") and a task's traceback.
-- The words a command put around it stay ("restore: ... (the store was not changed)"):
-- they say what was being done and what it left.
local reported

-- (the positions taken out: orket.sourcepos)
M.plain = sourcepos.plain
local plain = M.plain

function M.err(fmt, ...)
  -- an unknown field or setting, from whichever module, with the known one nearest to it
  local msg = nearest.hint(string.format(fmt, ...))
  local ferr = cstore.file_error()
  if ferr and msg:find(ferr, 1, true) then
    if reported == ferr then return end
    reported, msg = ferr, plain(msg)
  else
    -- a store's failure raised through assert() and caught on its way carries the position
    -- of Orket's module that raised it: a person reads what failed, not where in Orket (the
    -- first line only: a script's error keeps its traceback, `orket lua`'s)
    local first, rest = msg:match("^([^\n]*)(.*)$")
    msg = plain(first) .. rest
  end
  -- messages quote card ids, model text and servers' error bodies: inert on a terminal. One
  -- write: stderr is unbuffered, and workers share their server's, where a line written in
  -- three pieces was cut by another process's line
  io.stderr:write("orket: " .. inert.text(msg) .. "\n")
end

--- operator() -> the actor of a command's write (the local operator), orket.serve.localuse
function M.operator()
  local localuse = require "orket.serve.localuse" -- lazy: only writing commands need it
  return localuse.as_operator(), localuse
end

--- say_operator(): after a command's write, on stderr, whose name the journal and the
--- audit gave it (docs/teams.md)
function M.say_operator()
  io.stderr:write("orket: acting as the local operator (", M.operator().seat, ")\n")
end

--- fail(code, fmt, ...): err's message, then what to do about code on a line of its own
--- ("hint: ..."), from the vocabulary every surface shares (orket.errors), when the code
--- has a remedy and the message does not already say it. The hint is for a person: only
--- on a terminal, so that what scripts read of stderr stays the message alone. Returns the
--- exit status a busy project gives (BUSY's code: 75, the same command later may pass), else
--- nil, so that every command says busy alike: `return cli.fail(code, ...) or 1`.
-- The state machine's remedies are told to the model that made a tool call ("end your
-- turn", "file new work with create_issue"); a person at the CLI gets theirs instead.
M.PERSON_REMEDY = {
  ESAME = "nothing to do: the card has that status already",
  ETERMINAL = "the card is final: at most it may be archived; file new work as a new issue in epics/, then orket import",
}

--- BUSY: the codes of a project another process is working (its lock, a run of these cards,
--- the start of one): the same command later may pass (EX_TEMPFAIL)
M.BUSY = { ELOCKED = true, ERUNGOING = true, ESTARTING = true }

function M.fail(code, fmt, ...)
  M.err(fmt, ...)
  local remedy = M.PERSON_REMEDY[code] or errors.remedy(code, string.format(fmt, ...))
  if remedy and uv.guess_handle(2) == "tty" and not string.format(fmt, ...):find(remedy, 1, true) then
    -- the remedy as words: its links to the guides name the files (orket.errors.plain)
    io.stderr:write("hint: ", inert.text(errors.plain(remedy)), "\n")
  end
  if M.BUSY[code] then return M.EXIT.busy end
end

local function load_command(name)
  for _, c in ipairs(M.COMMANDS) do
    if c == name then return require("orket.cmd." .. name) end
  end
  return nil
end
M.load_command = load_command

--- unknown_command(name) -> exit status: the error, with the command nearest to name when
--- one is near ("borad": did you mean 'board'?), and the list of commands, on stderr
function M.unknown_command(name)
  local near = type(name) == "string" and nearest.nearest(name, M.COMMANDS)
  M.err("unknown command '%s'%s", name, near and ("; did you mean '" .. near .. "'?") or "")
  M.usage(io.stderr)
  return M.EXIT.usage
end

function M.usage(out)
  out = out or io.stdout
  out:write("usage: orket <command> [arguments]\n\ncommands:\n")
  local w = 0 -- the longest name's width, so every summary starts in one column
  for _, name in ipairs(M.COMMANDS) do w = math.max(w, #name) end
  for _, name in ipairs(M.COMMANDS) do
    local c = require("orket.cmd." .. name)
    out:write(string.format("  %-" .. w .. "s %s\n", name, c.summary))
  end
  out:write("\n'orket help COMMAND' shows a command's usage.\n")
end

--- open_store_or_why(dir, create, reading, broken_ok) -> db[, nil, nil, broken orket.lua's
--- message] | nil, message, CODE: open_store's, said by the caller (a refusal's JSON line
--- keeps the code).
function M.open_store_or_why(dir, create, reading, broken_ok)
  -- a project an init is making, or one a killed init left half made: said so, never read
  -- as an empty board (a command that only reads would take its half-made store)
  local unfinished = require("orket.config").unfinished(dir) -- lazy: as the store, below
  if unfinished then return nil, unfinished, "ENOENT" end
  -- lazy: the store, the settings and the engine load when a command opens them, so
  -- `orket version`, `orket help` and usage errors start without them (make bench: cold start)
  local db, err, code, broken = require("orket.project").open_store(dir, create, reading, nil, broken_ok)
  -- (a broken orket.lua under -C DIR is DIR/orket.lua, not the one where the command ran)
  if not db then return nil, M.in_dir(dir, err), code end
  return db, nil, nil, broken
end

--- open_store(dir, create [, reading [, broken_ok]]) -> db | nil: a project's store for a
--- command; on failure the message is printed and the command returns 1
--- (orket.project.open_store says why). broken_ok: the command only reads or copies the
--- store (board, card, log, runs, audit verify, backup): an orket.lua that does not load but
--- sets no store leaves the SQLite file, read with a warning naming orket.lua's error.
function M.open_store(dir, create, reading, broken_ok)
  local db, err, _, broken = M.open_store_or_why(dir, create, reading, broken_ok)
  if not db then M.err("%s", err) end
  if broken then
    M.err("warning: %s (the commands that need orket.lua refuse until it is fixed; it sets no store, so %s is read)",
      M.in_dir(dir, broken), require("orket.project").db_path(dir)) -- lazy: as above
  end
  return db
end

--- in_dir(dir, msg) -> msg with the project file it begins with ("orket.lua:3: ...",
--- "roles/coder.lua: ...", "roles: a file, not a folder") named from where the command ran:
--- under `-C DIR`, "DIR/orket.lua:3" is the path the person can open. A message naming no
--- file of the project is left as it is.
function M.in_dir(dir, msg)
  if type(msg) ~= "string" or not dir or dir == "" or dir == "." then return msg end
  local file = msg:match("^([^%s:]+%.lua):")
  if not file then
    local word = msg:match("^(%w+):")
    for _, name in ipairs(require("orket.config").SCRIPT_FOLDERS) do -- lazy: as open_store's
      if word == name then file = word end
    end
  end
  if not file or file:sub(1, 1) == "/" then return msg end
  local base = dir:gsub("/+$", "")
  if base == "" then base = "/" end
  local prefix = base == "/" and "/" or (base .. "/")
  if file:sub(1, #prefix) == prefix or not uv.fs_stat(prefix .. file) then return msg end
  return inert.line(prefix) .. msg -- (a newline in the folder's name would split the message)
end

--- project_settings(dir, defaults) -> cfg, settings | nil (the error printed): the project's
--- orket.lua (the built-in defaults when it has none, with defaults) and its settings resolved.
--- The defaults never stand for a folder inside a project's own folders (its workspace/,
--- epics/, .orket/...): the person meant that project, and is told to give it with -C.
function M.project_settings(dir, defaults)
  local config = require "orket.config" -- lazy: as open_store's
  -- (holding(dir) is dir itself for a project, whose orket.lua is then read as without defaults)
  if defaults and config.holding(dir or ".") then defaults = false end
  local cfg, s = config.settings(dir, defaults)
  if not cfg then M.err("%s", M.in_dir(dir, s)) return nil end
  return cfg, s
end

--- open_store_locked(dir [, say[, what]]) -> db, lock | nil, exit status (the error printed; 75
--- when another process holds the lock: fail's): the store of a
--- command that changes cards, with the run lock held; a run moves cards on its own, and
--- changing one under it would race its scheduler. The caller releases the lock. say
--- (optional): fn(message) -> the message as printed, with the command's own words around
--- it ("restore: FILE: ... (the store was not changed)"). what: the command's word, which
--- the lock's file keeps for another process's wait and message (orket.engine.setup's SHORT).
function M.open_store_locked(dir, say, what)
  say = say or function(m) return m end
  local db, err = require("orket.project").open_store(dir, false) -- lazy: as open_store's
  if not db then
    M.err("%s", say(err))
    return nil, M.EXIT.failed
  end
  local lock, lerr, lcode = require("orket.engine.setup").lock(dir, { db = db, what = what }) -- lazy: as open_store's
  if not lock then
    db:close()
    return nil, M.fail(lcode, "%s", say(lerr)) or M.EXIT.failed
  end
  return db, lock
end

--- usage_of(cmd) -> its usage line: the hand-written one, else made from its declaration.
function M.usage_of(cmd)
  if cmd.usage then return cmd.usage end
  if cmd.args and cmd.name then return cmdline.usage(cmd.name, cmd.args) end
  return nil
end

-- A usage error: the message, the command's usage, exit status 2.
function M.usage_error(cmd, fmt, ...)
  M.err(fmt, ...)
  local usage = cmd and M.usage_of(cmd)
  if usage then io.stderr:write("usage: ", usage, "\n") end
  return M.EXIT.usage
end

--- bad_text(cmd, text, what, max) -> nil | exit status (a usage error printed): a person's
--- text for a card (a comment, an answer, a reason, a note) as the API takes it: valid UTF-8
--- (the models read it, in a JSON request that a byte which is not would break, and the
--- PostgreSQL store refuses it) and at most max characters, as the API's schemas count them
--- (code points). what names it: "the comment".
function M.bad_text(cmd, text, what, max)
  local ok, at = utf8.len(text)
  if not ok then
    return M.usage_error(cmd, "%s is not valid UTF-8 text (byte %d of %d is not): give it as UTF-8", what, at, #text)
  end
  if ok > max then return M.usage_error(cmd, "%s is %d characters, over the %d it may have", what, ok, max) end
  return nil
end

--- parse(cmd, args [, decl]) -> opts | nil, exit status: args read against the command's
--- declaration (cmd.args, or decl for a subcommand's), as orket.cmdline.parse; a bad word
--- is a usage error naming it, with the command's usage.
function M.parse(cmd, args, decl)
  local o, msg = cmdline.parse(decl or cmd.args, args)
  if not o then
    -- -C after a command that takes none (`orket init x -C demo`) is said as before it
    -- (main's): "unknown option '-C'" read as if -C were misspelt (-C=DIR is split already)
    if msg:find("^unknown option '%-C'") and cmd.name and not M.help_text(cmd.name):find("-C DIR", 1, true) then
      msg = string.format("%s does not take -C DIR", cmd.name)
    end
    return nil, M.usage_error(cmd, "%s", msg)
  end
  return o
end

--- words(cmd, args, flags, text) -> dir, positional args | nil, exit status: the arguments
--- of a command that takes -C DIR, flags (name -> fn(name) called as it is met, returning
--- an exit status to stop with, or nil) and positional words, some of them free text:
--- after "--" every word is positional, even one that starts with '-'. text names that
--- text in the unknown-option error ("a note", say). values (optional): options that take
--- a value, name -> {what = "HOST:PORT", set = fn(value), once = as orket.cmdline's}; a
--- missing value is a usage error.
function M.words(cmd, args, flags, text, values)
  -- the older call form, kept: a declaration made of its arguments, read by the one parser
  local stop
  -- the words' entry is named as the empty-word error says it ("an argument is an empty
  -- word; give a file name"): its own name is no word of the command's usage
  local decl = { text = text, cmdline.DIR,
    { "an argument", many = true, key = "words", what = text and not text:find("^no ") and text or nil } }
  for name, fn in pairs(flags) do
    decl[#decl + 1] = { name, check = function(v)
      stop = fn(name)
      if stop then return nil end
      return v
    end }
  end
  for name, v in pairs(values or {}) do
    decl[#decl + 1] = { name, value = v.what, once = v.once, check = function(x)
      v.set(x)
      return x
    end }
  end
  local o, msg = cmdline.parse(decl, args)
  if not o then
    if stop then return nil, stop end
    return nil, M.usage_error(cmd, "%s", msg)
  end
  return o.dir, o.words or {}
end

-- Reports task failures that nobody joined (errors in callbacks, background tasks).
function M.flush_unhandled()
  for _, e in ipairs(task.collect()) do M.err("%s", e) end
  local n = #task.unhandled
  task.unhandled = {}
  return n
end

--- help_text(name) -> text: a command's usage, summary and help, as `orket help NAME` and
--- `orket NAME --help` print it.
function M.help_text(name)
  local cmd = load_command(name)
  local t = { "usage: ", M.usage_of(cmd), "\n\n", cmd.summary, "\n" }
  if cmd.help then t[#t + 1] = "\n" .. cmd.help .. "\n" end
  local opts = cmd.args and cmdline.options_help(cmd.args)
  if opts then t[#t + 1] = "\n" .. opts .. "\n" end
  return table.concat(t)
end

-- Whether a command's words ask for its help: --help or -h among its options, before any
-- "--" (after it every word is positional). A command whose later words belong to something
-- else (`orket lua FILE ARGS...` hands them to the script) sets words_after = 1: only its
-- first word is looked at.
local function asks_help(cmd, args)
  local last = cmd.words_after or #args
  for i = 1, math.min(last, #args) do
    local a = args[i]
    if a == "--" then return false end
    if a == "--help" or a == "-h" then return true end
  end
  return false
end

--- split_values(args [, upto [, decl]]) -> args with each "--name=value" or "-N=value"
--- among the first upto words (default all) before any "--" made the two words "--name"
--- "value": the one parser (orket.cmdline) then takes both spellings of every option with a
--- value, long or short (-C=DIR), and refuses an empty one ("--model="). A flag given a value
--- ("--json=1") is refused by the parser: attached, the second result, is the set of the
--- values' indexes (orket.cli.main gives it to the parser as args.attached). decl: the
--- command's arguments; the word after one of its options with a value is that value,
--- never split ("--body -E=1").
function M.split_values(args, upto, decl)
  local valued = {}
  for _, e in ipairs(decl or {}) do
    if e.value then
      for _, n in ipairs { e[1], e.alias } do valued[n] = true end
    end
  end
  -- attached: the indexes of the values split off, for the parser to refuse one given to a
  -- flag ("board --json=1" is not "board --json 1", the board of a card 1)
  local out, attached, last = {}, {}, upto or #args
  for i, a in ipairs(args) do
    local name, value = a:match("^(%-%a)=(.*)$")
    if not name then name, value = a:match("^(%-%-%a[%w-]*)=(.*)$") end
    if i <= last and name and not valued[args[i - 1]] then
      out[#out + 1] = name
      out[#out + 1] = value
      attached[#out] = true
    else
      out[#out + 1] = a
      if a == "--" then last = 0 end
    end
  end
  return out, attached
end

--- shell_quote(s) -> the shell word for s (orket.inert.shell_word: the one quoting every
--- suggested command uses)
M.shell_quote = inert.shell_word

-- Whether the file at path is the executable this process runs (the same file, once
-- symlinks are resolved).
local function same_file(path, exe)
  local a, b = uv.fs_realpath(path), exe and uv.fs_realpath(exe)
  return a ~= nil and a == b
end

--- program() -> the shell word that runs this orket from any directory, for the commands a
--- hint shows: "orket" when that name on PATH is this executable (or it was run by that
--- name, found on PATH), else the absolute path it was run by (build/orket ->
--- /src/orket/build/orket), so that `cd demo && WORD run START` works as printed.
function M.program()
  local a = M.argv0
  if not a or a == "" then return "orket" end
  if not a:find("/", 1, true) then return M.shell_quote(a) end
  local abs = a:sub(1, 1) == "/" and a or ((uv.cwd() or ".") .. "/" .. a:gsub("^%./", ""))
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    if same_file(dir .. "/orket", abs) then return "orket" end
  end
  return M.shell_quote(abs)
end

-- The first failed write to stdout (a buffer that filled up and could not be written out):
-- the commands do not look at each write's result, and the last flush may succeed after it.
-- {message, errno}. The errno tells a reader gone away, not strerror's words (a locale's).
local stdout_failed
local EPIPE = 32 -- the same number on every Linux architecture
local EFBIG = 27 -- (so is this)
local function watch_stdout()
  local methods = getmetatable(io.stdout).__index
  if methods.orket_watched then return end
  local function watched(method)
    return function(f, ...)
      local r, e, n = method(f, ...)
      if not r and f == io.stdout and not stdout_failed then stdout_failed = { e, n } end
      return r, e, n
    end
  end
  -- every file handle's write: all its results go back (a script's f:write reads the errno);
  -- and its flush: a line-by-line writer (orket run's JSON Lines) meets the error there
  methods.write, methods.flush = watched(methods.write), watched(methods.flush)
  methods.orket_watched = true
  -- print and io.write write past the handle's methods (print flushes and drops the result):
  -- a script's output to a full disk was lost with exit 0. Both go through the handle now.
  print = function(...)
    local n, parts = select("#", ...), {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    io.stdout:write(table.concat(parts, "\t"), "\n")
    io.stdout:flush()
  end
  io.write = function(...) return io.output():write(...) end
end

--- stdout_unwritable() -> true when fd 1 cannot be written: the caller closed it (`>&-`:
--- core/main.c puts a read-only /dev/null in its place) or opened it only for reading.
--- /proc's fdinfo says how it is open (O_ACCMODE 0: read only).
function M.stdout_unwritable()
  local f = io.open("/proc/self/fdinfo/1")
  local flags = f and f:read("a"):match("flags:%s*(%d+)")
  if f then f:close() end
  return flags ~= nil and tonumber(flags, 8) & 3 == 0
end

-- What was printed and could not be written (a full disk, /dev/full) is a failure, not
-- exit 0 with the output lost. A reader gone away (EPIPE: `orket board | head`) is said by
-- no message: with SIGPIPE's default action the kernel ended the process with 141 already;
-- where the parent left SIGPIPE ignored (systemd's units, Python's os.system) the write
-- failed instead, and the command's 0 becomes the same 141, so `set -o pipefail` sees the
-- output cut. A command whose module says outlives_reader (serve, worker, mcp: they go on
-- or stop cleanly, docs/guide/deploying.md) keeps its status.
-- (ok, status, cmd): how the command ended -> the status to exit with
local function output_checked(ok, status, cmd)
  local wok, werr, wn = io.stdout:flush()
  local failed = stdout_failed or (not wok and { werr, wn })
  if failed and failed[2] == EPIPE then
    if ok and (status or 0) == 0 and not (cmd and cmd.outlives_reader) then status = M.EXIT.sigpipe end
  elseif failed then
    -- (EFBIG: past the process's file-size limit, SIGXFSZ being caught, core/main.c)
    M.err("cannot write the output: %s%s", failed[1], failed[2] == EFBIG
      and " (the process's file-size limit: ulimit -f, systemd LimitFSIZE=)" or "")
    -- a run stops as on SIGINT when its output cannot be written (orket.cmd.run): the
    -- failure is the output's, not a person's interrupt
    if ok and ((status or 0) == 0 or status == M.EXIT.interrupted) then status = M.EXIT.failed end
  end
  return status
end

-- A word ending in a carriage return is a line of a script saved with Windows (CRLF) endings:
-- said once, here, for what it is, rather than as each command's own misreading of it (no card
-- "START\r", an integer "1\r", a comment stored with a CR) -> its index in argv[1..last] | nil.
-- (orket lua's script takes its words as they are.)
local function crlf_word(argv, last)
  for i = 1, last do
    if type(argv[i]) == "string" and argv[i]:sub(-1) == "\r" then return i end
  end
  return nil
end

function M.main(argv)
  handles.track() -- a luv handle left open at exit is closed, not a crash
  watch_stdout()
  stdout_failed = nil
  local name = argv[1]
  if name == nil then
    M.usage(io.stderr)
    return M.EXIT.usage
  end
  -- `orket -C DIR CMD ...`, as git takes it: the same as `orket CMD -C DIR ...`; given
  -- twice (`orket -C a -C b CMD`), both go to the command's parser, which takes the same
  -- directory twice as one and refuses two different ones, naming both
  local lead_dirs, first = {}, 2
  while name == "-C" or (type(name) == "string" and name:match("^%-C=")) do
    local lead_dir = name:match("^%-C=(.*)$")
    if lead_dir then first = first + 1 else lead_dir, first = argv[first], first + 2 end
    name = argv[first - 1]
    if lead_dir == nil or lead_dir == "" then
      M.err("-C needs a directory: orket -C DIR COMMAND ...")
      return M.EXIT.usage
    end
    if name == nil then
      M.err("-C %s needs a command after it: orket -C DIR COMMAND ...", inert.line(lead_dir))
      return M.EXIT.usage
    end
    lead_dirs[#lead_dirs + 1] = lead_dir
  end
  if name == "--version" or name == "-v" then name = "version" end
  if name == "--help" or name == "-h" then name = "help" end
  local cr = crlf_word(argv, name == "lua" and first - 1 or #argv)
  if cr then
    M.err("argument %d (%s) ends in a carriage return: was the script that ran orket saved with Windows (CRLF) "
      .. "line endings? Save it with LF endings (dos2unix FILE)", cr, inert.named(argv[cr]))
    return M.EXIT.usage
  end
  local cmd = load_command(name)
  if not cmd then return M.unknown_command(name) end
  local args = {}
  for i = first, #argv do args[#args + 1] = argv[i] end
  local attached
  args, attached = M.split_values(args, cmd.words_after, cmd.args)
  args.attached = attached
  if #lead_dirs > 0 then
    -- the command's own -C, first (before a subcommand's words and any free text); a
    -- command without one (init, lua, help) says so rather than taking DIR for something else
    if not M.help_text(name):find("-C DIR", 1, true) then
      M.err("%s does not take -C DIR", name)
      return M.EXIT.usage
    end
    -- read by the one parser as the command's own: a second, different -C is refused there
    -- (orket.cmdline.one_dir)
    for i = #lead_dirs, 1, -1 do
      table.insert(args, 1, lead_dirs[i])
      table.insert(args, 1, "-C")
    end
    local moved = {}
    for i in pairs(args.attached) do moved[i + 2 * #lead_dirs] = true end
    args.attached = moved
  end
  args[0] = argv[0]
  M.argv0 = argv[0]
  if asks_help(cmd, args) then
    io.stdout:write(M.help_text(name))
    return output_checked(true, M.EXIT.ok, cmd) -- checked as a command's output is
  end
  cstore.clear_file_error()
  backend.last_failure = nil
  reported = nil
  -- A damaged, read-only or full database file is the user's to fix, not a bug: where a
  -- command raised a store error (assert(db:rows(...))), say which file and what is wrong,
  -- without a traceback. Anything else stays an internal error with its traceback.
  local ok, status = xpcall(cmd.run, function(e)
    local msg = cstore.file_error()
    if msg and type(e) == "string" and e:find(msg, 1, true) then return { store = plain(e) } end
    -- a read that the store could not answer (PostgreSQL gone, SQLite busy): said as such
    msg = backend.last_failure
    if msg and type(e) == "string" and e:find(msg, 1, true) then return { store = plain(e) } end
    return { internal = debug.traceback(tostring(e), 2) }
  end, args, M)
  status = output_checked(ok, status, cmd)
  if not ok then
    if status.store then
      M.err("%s", status.store)
      return M.EXIT.failed
    end
    -- as core/main.c reports an error that escapes: a bug in Orket (EX_SOFTWARE)
    io.stderr:write("orket: internal error: ", inert.text(status.internal), "\n")
    return M.EXIT.internal
  end
  return status or 0
end

return M
