-- orket.errors: the one vocabulary of what can go wrong, for every surface. Each code says
-- what it means and what to do about it (its remedy); an HTTP code, and an E-code the HTTP
-- API passes on, the status it answers with. The CLI prints a failure's remedy under its
-- message (orket.cli.fail), the HTTP API puts it in the error's JSON (orket.serve.routes.err),
-- a tool's failed result carries it to the model (orket.engine.turn), and
-- docs/guide/troubleshooting.md's tables are written from here (scripts/errors-doc.lua;
-- a spec checks they are current). The state machine's remedies are its own
-- (core/statemachine.c): the agents read them in the gate's denials, so they live there.
local sm = require "orket.c.statemachine"
local rt = require "orket.c.runtime"

local M = {}

-- The groups, in the guide's order: its section for each and the codes in it.
M.GROUPS = {
  { name = "gate", title = "The gate's codes (a tool call)", codes = {
    "ALLOWED", "APPROVED", "POLICY_ALLOW", "TOOL_UNKNOWN", "ROLE_FORBIDDEN", "ARGS_MALFORMED", "ARGS_INVALID",
    "PATH_ESCAPE", "PATH_PROTECTED", "LIMIT_EXCEEDED", "POLICY_DENY", "POLICY_ERROR", "POLICY_ASK",
    "COMMAND_ASK", "TRANSITION_ILLEGAL", "INTERNAL",
  } },
  { name = "statemachine", title = "The state machine's codes (a status change)", codes = {
    "ETYPE", "ESTATUS", "ESAME", "ETERMINAL", "ETRANSITION", "EREASON_REQUIRED", "EREASON_INVALID",
    "EREASON_UNEXPECTED", "EPERSON", "EREVIEW_DECISION", "EDEPENDENCY", "EREVIEWER", "ESELF_REVIEW",
  } },
  { name = "tool", title = "Tool results (the workspace and the process runner)", codes = {
    "ENOENT", "EEXIST", "EISDIR", "ENOTDIR", "ENOTEMPTY", "EPERM", "EACCES", "EINVAL", "E2BIG", "ENOSPC",
    "EIO", "EAGAIN", "ENOMEM", "ENOSYS", "ESCHEMA", "EINTERRUPTED", "ETOOL", "ESPAWN", "ENOEXEC", "EEXEC", "ELAYER",
    "ENOSANDBOX", "EUNAVAILABLE",
    "ELOOP", "ENAMETOOLONG", "EFBIG", "EBUDGET", "ETIMEOUT", "ETOOLARGE", "EMCP_TOOL", "EMFILE", "ENFILE", "EROFS",
  } },
  { name = "store", title = "The store (the board's database)", codes = {
    "EBUSY", "ECONSTRAINT", "ECORRUPT", "ECANTOPEN", "EREADONLY", "ENOSPC", "ESQL", "EVERSION", "EFOREIGNDB", "ENOTSTORE",
    "ETX", "ENOTCONN", "ENOTSEALED", "EKEY", "ETAMPERED", "ETRUNCATED", "EPARAMS", "ENOTTY", "EINTR", "ESECRET",
  } },
  { name = "commands", title = "Commands (`orket ...`)", codes = {
    "EUSAGE", "ENOREVIEWER", "EROLE", "ESEAT", "EUNFINISHED", "ECYCLE", "EGIT", "EUNSAFE", "ECONFLICT", "EUNRESOLVED",
    "EMOVED",
    "EFORGE", "EAUTH", "ENOTFOUND", "ERATELIMIT", "EREJECTED", "EALREADY", "EBADPEPPER", "ETIMEDOUT", "EEXIT",
    "ENOTSUP", "ESYNTAX", "ERUNTIME", "EMCP", "EDOWN", "EPROTO", "EHTTP", "ESESSION", "EENGINE", "EFAIL",
    "ELOCKED", "ERUNGOING", "ELEASELOST", "ESTARTING", "ELASTADMIN", "ESERVERADMIN", "EFOLLOWS", "EAUDITKEY", "EAUDITUNVERIFIED", "EAUDITOLDER",
    "EAUDITUNDONE", "ESANDBOXRUNNING", "ENOPROG",
    "ENOTURN", "ECLOSED", "ECANCELED", "ETOOBIG", "ESTATE", "EDIRTY", "EINCONSISTENT", "EREMOTE", "ELISTEN", "EPIPE", "ESLOW",
    "ESHUTDOWN",
  } },
  { name = "http", title = "The HTTP API (`orket serve`)", codes = {
    "bad_request", "bad_json", "bad_path", "bad_query", "unauthorized", "bad_signature", "no_secret",
    "forbidden", "not_found", "method_not_allowed", "timeout", "conflict", "project_error", "not_running",
    "too_large", "unsupported_media_type", "bad_config", "not_started", "stale", "rate_limited", "internal",
    "unhealthy", "not_stopped", "bad_gateway", "gateway_timeout", "app_busy", "busy", "stopping", "starting", "unavailable",
    "provider_unavailable", "project_unavailable", "project_changed",
  } },
}

-- code -> {means=, remedy=, verdict= (the gate's), status= (an HTTP answer's)}. An empty
-- remedy: nothing to do but what the message says.
local CODES = {}
M.CODES = CODES

-- The gate's codes (a tool call)
CODES.ALLOWED = { verdict = "allow", means = "nothing refused the call", remedy = "" }
CODES.APPROVED = {
  verdict = "allow",
  means = "a person approved this held call (`orket answer`, the web board)",
  remedy = "",
}
CODES.POLICY_ALLOW = { verdict = "allow", means = "an `allow{}` rule let it through", remedy = "" }
CODES.TOOL_UNKNOWN = {
  verdict = "deny",
  means = "the model called a tool that does not exist",
  remedy = "a stronger model, or a role prompt that lists the tools (`prompt.tool_dialect`)",
}
CODES.ROLE_FORBIDDEN = {
  verdict = "deny",
  means = "the role may not use that tool",
  remedy = "add it to the role's `tools` if it should",
}
CODES.ARGS_MALFORMED = {
  verdict = "deny",
  means = "the arguments were not a JSON object",
  remedy = "usually a small model: try `dialect = \"json\"` or another model",
}
CODES.ARGS_INVALID = {
  verdict = "deny",
  means = "the arguments do not match the tool's schema, or a path in them is malformed (empty, a NUL byte, "
    .. "a name or path too long)",
  remedy = "the reason names the field and what to fix; the model usually corrects itself",
}
CODES.PATH_ESCAPE = {
  verdict = "deny",
  means = "a path leaves the workspace (`../`, an absolute path, a link out)",
  remedy = "nothing: it is refused by design",
}
CODES.PATH_PROTECTED = {
  verdict = "deny",
  means = "a write to a `.git` in any folder or to `.orket/` at the workspace's root (git's and Orket's; a "
    .. "team's own `tools/`, `roles/`, `policies/`, `orket.lua` are writable)",
  remedy = "nothing: agents never write those; keep a folder of the team's from agents with a policy "
    .. "(docs/guide/security.md)",
}
CODES.LIMIT_EXCEEDED = {
  verdict = "deny",
  means = "too many calls, bytes or files this turn or run",
  remedy = "raise `limits` in orket.lua if the work is legitimately big (docs/policies.md)",
}
CODES.POLICY_DENY = {
  verdict = "deny",
  means = "a `deny{}` rule matched; the decision names it (`policy FILE:LINE`)",
  remedy = "change the rule, or accept it",
}
CODES.POLICY_ERROR = {
  verdict = "deny",
  means = "a rule's `when` function failed or ran out of budget",
  remedy = "fix the rule; `orket validate` loads it",
}
CODES.POLICY_ASK = {
  verdict = "ask",
  means = "an `ask{}` rule matched: a person decides",
  -- plain text answers a question, not a held call (docs/policies.md)
  remedy = "`orket answer CARD --request N --approve` / `orket answer CARD --request N --deny \"reason\"` (N: the "
    .. "request's number), or the web board",
}
CODES.COMMAND_ASK = {
  verdict = "ask",
  means = "`run_command` of a program not in `verify.commands`",
  remedy = "approve it, or add the program to `verify.commands`",
}
CODES.TRANSITION_ILLEGAL = {
  verdict = "deny",
  means = "a status change the state machine refused without a code of its own",
  remedy = "see the state machine's codes below",
}
CODES.INTERNAL = { verdict = "deny", means = "the gate ran out of memory", remedy = "retry; report it if it repeats" }
-- The state machine's codes (a status change)
CODES.ETYPE = { status = 400, means = "unknown card type" }
CODES.ESTATUS = { status = 400, means = "unknown status" }
CODES.ESAME = { means = "the card already has that status" }
CODES.ETERMINAL = { means = "`done`, `canceled` and `archived` are final" }
CODES.ETRANSITION = { means = "that move is not in the table" }
CODES.EREASON_REQUIRED = { means = "`blocked` / `waiting_for_developer` need a wait reason" }
CODES.EREASON_INVALID = { status = 400, means = "an unknown wait reason" }
CODES.EREASON_UNEXPECTED = { means = "a wait reason for a status that takes none" }
CODES.EPERSON = { means = "only a person cancels or archives" }
CODES.EREVIEW_DECISION = { means = "a reviewer moves an issue out of `code_review` only to `done` or `in_progress`" }
CODES.EDEPENDENCY = { means = "a card it depends on is not done" }
CODES.EREVIEWER = { means = "only an `integrity_guard` seat approves" }
CODES.ESELF_REVIEW = { means = "the seat that did the work cannot approve it" }
-- Tool results (the workspace and the process runner)
CODES.ENOENT = { status = 404, means = "no such file or directory (or card)", remedy = "" }
CODES.EEXIST = { means = "it exists already", remedy = "" }
CODES.EISDIR = { means = "a directory where a file was expected", remedy = "" }
CODES.ENOTDIR = { means = "a file where a directory was expected", remedy = "" }
CODES.ENOTEMPTY = { means = "a directory to delete is not empty", remedy = "" }
CODES.EPERM = {
  means = "refused: outside the workspace, a protected path, a policy on reads, another card",
  remedy = "nothing: it is refused by design; work inside the workspace, on the card being worked",
}
CODES.EACCES = { means = "the operating system refused access", remedy = "check the workspace's owner and modes" }
CODES.EINVAL = { status = 400, means = "an invalid argument (the message names it)", remedy = "" }
CODES.E2BIG = {
  means = "too large (a file, an output, a request body)",
  remedy = "caps are in docs/workspace.md and docs/tools.md",
}
-- (507 Insufficient Storage over HTTP: the server failed the write, no conflict of the
-- request's; the same request succeeds once space is freed)
CODES.ENOSPC = { status = 507,
  means = "the disk is full, a disk quota is used up, or a file reached the process's file-size limit",
  remedy = "free space (or raise the quota, or the file-size limit: ulimit -f, systemd LimitFSIZE=)" }
CODES.EIO = { means = "an I/O error", remedy = "check the disk" }
-- the host's faults a project tool may name (orket.engine.gitwork.host_fault: they stop the
-- run, as ENOSPC does, rather than reach the model)
CODES.EMFILE = { means = "this process may open no more files",
  remedy = "raise its limit: ulimit -n, systemd LimitNOFILE=; the run stops, and orket resume carries on" }
CODES.ENFILE = { means = "the system may open no more files",
  remedy = "raise sysctl fs.file-max, or end what holds them; the run stops, and orket resume carries on" }
CODES.EROFS = { means = "the file system is mounted read-only",
  remedy = "remount it read-write; the run stops, and orket resume carries on" }
CODES.EAGAIN = { means = "a directory changed during a lookup", remedy = "retried by the model; harmless" }
CODES.ENOMEM = { means = "out of memory (a tool's or a script's memory cap)", remedy = "" }
CODES.ENOSYS = {
  means = "the kernel lacks `openat2` or mount ids (Linux older than 5.6 or a restricted sandbox)",
  remedy = "a newer kernel: Orket's file confinement needs them",
}
CODES.ESCHEMA = {
  status = 400,
  means = "a value does not match its schema: a tool's arguments, a request's body (the message names the field)",
  remedy = "",
}
CODES.EINTERRUPTED = {
  means = "Orket stopped while a tool that changes files ran, and the tool cannot tell whether its effect happened; on `orket resume` the model gets this instead of a blind re-run",
  remedy = "the model is told to check the workspace first; give your write tools `idempotent` or `recover` ([writing-tools.md](writing-tools.md))",
}
CODES.ETOOL = {
  means = "a tool's handler crashed or ran out of its budget",
  remedy = "fix the tool (`orket validate`), see [writing-tools.md](writing-tools.md)",
}
CODES.ESPAWN = {
  means = "a program could not be started (no workspace, not found, the runner failed)",
  remedy = "check `verify.commands` and that the program is installed",
}
CODES.ENOEXEC = { means = "the file is not an executable the kernel can run", remedy = "" }
CODES.EEXEC = { means = "the program could not be executed for another reason (the message says)", remedy = "" }
CODES.ELAYER = {
  means = "a confinement layer the project requires (`verify.require = {\"netns\"}`) was refused by the kernel",
  remedy = "run where user namespaces are allowed, or stop requiring that layer (docs/verify.md)",
}
CODES.ENOSANDBOX = {
  means = "`sandbox_status` or `http_request`: no sandbox of main of the project's folder is live (another "
    .. "folder's sharing the store is named, never reached)",
  remedy = "set `sandbox.deploy` in orket.lua (a sandbox starts after merges) or run `orket sandbox up --detach` ([sandbox.md](../sandbox.md))",
}
CODES.EUNAVAILABLE = {
  -- an MCP tool's failure carries a remedy of its own (orket.mcp.manager.remedy)
  means = "`http_request`: the sandbox's app did not answer (closed, or not within 10 s); or an MCP server's tool "
    .. "while the server is down (its failure names the server and `orket mcp list`)",
  remedy = "`orket sandbox logs ID` shows what the app said",
}
-- The store (the board's database)
CODES.EBUSY = {
  -- a wait that ran out, not a conflict: worth the same request again a moment later
  -- (orket serve adds Retry-After)
  status = 503,
  means = "the database stayed locked for 5 s (PostgreSQL: 30 s), or the secret store's lock for 10 s",
  -- SQLite's message is its bare "database is locked": the remedy names the way to the holder
  remedy = "another process holds a long transaction; retry once it ends. SQLite: `fuser FILE` (FILE the store "
    .. "the message names, by default .orket/orket.db) lists the processes that have it open, `ps -p PID` which "
    .. "command each is; PostgreSQL: the view pg_stat_activity shows the holder (the message names it)",
  -- the secret store's lock is a file of its own (.orket/secrets.lock), which its message
  -- names: a store's lock said "changing the secrets", which had nothing to do with it
  remedy_for = function(message)
    if type(message) == "string" and message:find("secrets.lock", 1, true) then
      return "another process is changing the secrets; retry"
    end
  end,
}
CODES.ECONSTRAINT = {
  means = "a write broke a rule of the schema (a duplicate id, a missing parent)",
  remedy = "the message names it; often a duplicate card id in `epics/`",
}
CODES.ECORRUPT = {
  means = "the file is damaged (or a backup is: truncated, not whole, a JSON value in it no longer JSON)",
  remedy = "`orket restore` a backup ([deploying.md](deploying.md)); a damaged backup given to `orket restore`: "
    .. "take another copy of it",
  -- restore's own failure is of the backup it was given: "restore a backup" would be circular
  remedy_for = function(message)
    if type(message) == "string" and message:find("^restore: ") then
      return "take another copy of the backup (this one is damaged: cut short, not whole or changed inside), and "
        .. "restore that; when FILE is the project's own store (.orket/orket.db), restore a good backup over it"
    end
  end,
}
CODES.ECANTOPEN = {
  means = "the file cannot be opened (no directory, no permission)",
  remedy = "check `.orket/` exists and is yours",
}
CODES.EREADONLY = {
  means = "the file or its directory cannot be written",
  remedy = "reading commands (`board`, `card`, `runs`, `log`) still work",
}
CODES.ESQL = { means = "any other database error", remedy = "report it, with the message" }
CODES.EVERSION = {
  means = "the store's schema is newer than this orket (or a backup's is)",
  remedy = "use a newer orket",
}
CODES.EFOREIGNDB = {
  means = "the PostgreSQL database `store.url` (or ORKET_DATABASE_URL) names holds another application's tables or views (in any schema) and no Orket schema",
  remedy = "check the database's name in the URL; give Orket a database of its own, empty but for extensions (`CREATE DATABASE orket OWNER orket`): Orket shares a database with no other application",
}
CODES.ENOTSTORE = {
  means = "a file given to `orket restore` is not an orket store",
  remedy = "give the file `orket backup` wrote",
}
CODES.ENOTSEALED = {
  means = "a file is not an encrypted orket backup (it has no ORKTSEAL header)",
  remedy = "give the file `orket backup --encrypt` wrote",
}
CODES.EKEY = {
  means = "an encrypted backup or a secret does not open: a wrong key file or passphrase, the other kind of key, or a changed start",
  remedy = "give the key file or passphrase it was made with ([deploying.md](deploying.md#encrypted-backups)); "
    .. "for a secret, the key file it was sealed under ([secrets.md](../secrets.md))",
}
CODES.ESECRET = {
  means = "a secret a setting names cannot be opened: the secret store's key file is missing, wrong or damaged "
    .. "(`orket serve` answers the caller 503 and logs this)",
  remedy = "the message names the setting, the secret and what to do: restore the key file from where it was kept "
    .. "([secrets.md](../secrets.md))",
}
CODES.ETAMPERED = {
  means = "an encrypted backup or a secret was changed after it was written: a chunk does not authenticate, "
    .. "bytes follow its end, or a secret's value was moved to another name; or the audit's chain no longer holds "
    .. "the checkpoint .orket/audit.head names (the store rolled back), so nothing is signed over it",
  remedy = "restore another copy of the backup, or set the secret again; this one cannot be trusted",
}
CODES.ETRUNCATED = {
  means = "an encrypted backup ends before its final tag: it was cut short",
  remedy = "restore a whole copy of the backup",
}
CODES.EPARAMS = {
  means = "an encrypted backup's header names an unknown format or Argon2id limits out of bounds",
  remedy = "give a file `orket backup --encrypt` wrote, with an orket as new as the one that wrote it",
}
CODES.ENOTTY = {
  means = "a passphrase was to be asked on the terminal, and there is none",
  remedy = "give --key-file FILE or --passphrase-env NAME",
}
CODES.EINTR = {
  means = "a password or passphrase prompt was interrupted (SIGINT, SIGTERM or SIGHUP) and the command "
    .. "handles that signal itself; the terminal's echo was turned back on (by default the signal ends the command)",
  remedy = "run the command again and answer the prompt",
}
-- Commands (`orket ...`)
CODES.EUSAGE = {
  means = "a command was called wrongly (an unknown flag, a missing or malformed argument: exit status 2, "
    .. "with the command's usage), or an action that does not apply, the message saying which does",
  remedy = "",
}
CODES.ENOREVIEWER = {
  means = "no seat of the team holds the `integrity_guard` role, so nothing could be reviewed",
  remedy = "add one to orket.lua's `team`, e.g. `integrity_guard = { roles = { \"integrity_guard\" } }`",
}
CODES.EROLE = {
  means = "a seat names a role that is not in `roles/`, or has none for the phase",
  remedy = "fix `team` in orket.lua; `orket validate` names the seat",
}
CODES.ESEAT = {
  means = "no seat of the team can take the card's turn",
  remedy = "give the card a `seat` the team has, or add the seat",
}
CODES.EUNFINISHED = {
  means = "a killed run left a turn of these cards half done",
  remedy = "`orket resume` finishes it first",
}
CODES.ECYCLE = {
  means = "the epics' `depends_on` make a cycle",
  remedy = "the message shows the cycle; drop one dependency",
}
CODES.EGIT = {
  means = "the workspace's repository refused an operation (the message says which)",
  remedy = "`git -C workspace status`; `orket retry CARD` once it is fixed",
}
CODES.EUNSAFE = {
  means = "the repository holds something Orket will not touch (a link out, a file it cannot confine)",
  remedy = "remove it from the repository",
}
CODES.ECONFLICT = {
  status = 409,
  means = "merging a card's branch into main conflicted; the card went back to `in_progress`",
  remedy = "nothing: its next turn resolves the conflict markers",
}
CODES.EUNRESOLVED = {
  means = "a card's head is a merge of a person's commits whose conflict was never resolved (it holds conflict "
    .. "markers): it is not verified, pushed or merged",
  remedy = "nothing: the card goes back to `in_progress`, and its next turn resolves the markers",
}
CODES.EMOVED = {
  means = "a card's hand-in found the card moved on (a review or a person's command) while it fetched the pull "
    .. "request's branch: nothing was taken in or pushed",
  remedy = "nothing: the card's new status has its own way on; back in review, its next hand-in takes the branch in again",
}
CODES.EFORGE = {
  means = "the forge (Gitea, GitHub) answered with an error",
  remedy = "the message has its answer; check `git.forge` in orket.lua (docs/git.md)",
}
CODES.EAUTH = {
  means = "the forge or the remote refused the credentials",
  remedy = "check the token the variable in `git.token_env` names",
}
CODES.ENOTFOUND = {
  means = "the forge has no such repository or pull request",
  remedy = "check `git.forge.repo` in orket.lua",
}
CODES.ERATELIMIT = {
  means = "the forge's rate limit is spent",
  remedy = "wait; Orket retries the push or the pull request later",
}
CODES.EREJECTED = {
  means = "the remote refused the push (main diverged, a protected branch)",
  remedy = "merge the remote's main by hand, or allow the push",
}
CODES.EALREADY = { means = "the thing asked for is done already (a key revoked twice)", remedy = "nothing to do" }
CODES.EBADPEPPER = {
  means = "the server's key pepper file (`.orket/keys.pepper`) is damaged",
  remedy = "restore `.orket/keys.pepper` (mode 0600) from a backup; else revoke every key, delete the file and create keys again",
}
CODES.ETIMEDOUT = {
  means = "something did not answer in time (a sandbox's health check, a server)",
  remedy = "the message names what; raise its timeout if it is legitimately slow",
}
CODES.EEXIT = {
  means = "a sandbox's app exited before it was healthy",
  remedy = "`orket sandbox logs ID` shows its last output",
}
CODES.ENOTSUP = {
  means = "what was asked is not possible here (a sandbox with `network = true` without a network namespace)",
  remedy = "`orket sandbox plan` says what this machine offers",
}
CODES.ESYNTAX = {
  means = "a script (role, tool, policy, routing) does not compile",
  remedy = "fix the line the message names; `orket validate`",
}
CODES.ERUNTIME = {
  means = "a script failed while it loaded",
  remedy = "fix the line the message names; `orket validate`",
}
CODES.EMCP = {
  means = "an MCP server's tool call failed",
  remedy = "the message has the server's answer (docs/mcp.md)",
}
CODES.EDOWN = {
  means = "an MCP server is not connected",
  remedy = "`orket mcp list` shows each server's state; Orket restarts it with a backoff",
}
CODES.EPROTO = {
  means = "an MCP server broke the protocol",
  remedy = "the message says how; check the server's version",
}
CODES.EHTTP = {
  means = "an MCP server over HTTP did not answer as HTTP should",
  remedy = "check its URL in orket.lua's `mcp`",
}
CODES.ESESSION = { means = "an MCP server over HTTP forgot the session", remedy = "the server did not take this call, "
  .. "though calls already sent in that session may have run; Orket opens a new session by itself. Before calling a tool "
  .. "that changes something again, check whether its effect is there already" }
CODES.EENGINE = { means = "a turn's tool call failed inside the engine", remedy = "report it, with `orket log RUN`" }
CODES.EFAIL = {
  means = "a tool's handler returned a failure without a code",
  remedy = "fix the tool to return a code ([writing-tools.md](writing-tools.md))",
}
-- The refusal itself says to wait or stop; the remedy says how to see the holder, which
-- may be a run (orket run, orket serve's) or a command changing cards (retry, cancel, restore).
CODES.ELOCKED = {
  means = "another process holds the project's run lock",
  remedy = "the message names the holder: a run (`orket runs` lists the runs going, orket serve's included) or a "
    .. "command changing cards (retry, cancel, restore, resume bringing workspace/ up to date, a server's card "
    .. "write), waited for 2.5 s first; `ps -p PID`, PID the process the message names, shows it",
}
-- A REPL turn refused beside a run of its cards: no lock of this folder, so no pid to look up.
CODES.ERUNGOING = {
  means = "a run of these cards goes (in this or another folder of the store) or is left to the workers and not "
    .. "finished; the message names it",
  remedy = "`orket runs` lists the runs going and those left to the workers; wait for it to end, or `orket runs "
    .. "stop N` (N the run the message names) ends one left to the workers",
}
CODES.ELEASELOST = {
  means = "the run's lease in the store became another process's while it went (the store was away longer than "
    .. "the lease lives and the run was taken elsewhere): this process wrote no more of it",
  remedy = "`orket runs` shows where the run goes now; nothing is lost",
}
-- The claim section (orket.engine.claims.enter) is held for milliseconds; one held past
-- its wait is a start that hangs (its store not answering, say), whose process is named.
CODES.ESTARTING = {
  means = "another process held the project's start of a run (`.orket/claim.lock`, where a run is checked "
    .. "against the runs going and recorded) longer than the 3 s a start waits for it",
  remedy = "try again in a moment (orket serve answers 503 `starting` with Retry-After); if it keeps failing and "
    .. "the message names a process, `ps -p PID`, PID that process, shows which command is stuck starting a run "
    .. "(orket run, resume, serve or worker; often one whose store does not answer): stop it",
}
CODES.ELASTADMIN = {
  status = 409,
  means = "the change would leave the server with no enabled admin to manage people and keys",
  remedy = "make another person a server admin first: a local account with `orket users role NAME admin`; where "
    .. "people sign in through a provider or directory, one of theirs by a group that `sign_in.roles` maps to "
    .. "`admin` (their role follows their groups, and `orket users role` refuses it), at their next sign-in; or a new "
    .. "local account, `orket users add NAME --role admin` (over the API: `POST /v1/users` with role `admin`). The "
    .. "message names the ways that fit the people there are",
}
CODES.ESERVERADMIN = {
  status = 409,
  means = "the person is a server admin, an admin of every project whatever their memberships",
  remedy = "take the server's admin role away first (`orket users role NAME operator`), then their projects",
}
CODES.EFOLLOWS = {
  status = 409,
  means = "the person signs in through a provider or a directory, and their role in that project follows their groups at each sign-in",
  remedy = "change their groups at the provider or in the directory (or `sign_in.roles`, `sign_in.project_roles`)",
}
CODES.EAUDITKEY = {
  means = "the audit in the store is signed with another key than this host's `.orket/audit.key` (or it has none)",
  remedy = "copy `.orket/audit.key`, `.orket/audit.pub` and `.orket/audit.head` from the server that signed it, "
    .. "to every server of the store ([audit.md](../audit.md#several-servers))",
}
-- `orket restore`'s refusals of a backup's audit (orket.audit.restore); each finding is
-- named above the refusal. The remedies are the refusals' own words (orket.cmd.restore).
CODES.EAUDITUNVERIFIED = {
  means = "a backup given to `orket restore` has an audit that does not verify under this project's key (an entry "
    .. "changed or missing, a checkpoint signed with another key, or none while this project signs its audit)",
  remedy = "restore another copy, or restore this one as it is with --accept-unverified-audit",
}
CODES.EAUDITOLDER = {
  means = "a backup given to `orket restore` is older than this project's audit (a checkpoint it signed, or "
    .. "entries of the store's, signed or not, that it lacks): restoring it drops the audit's entries after it, and "
    .. "counts them",
  remedy = "restore it all the same with --accept-older-audit",
}
CODES.EAUDITUNDONE = {
  means = "a backup given to `orket restore` lacks the store's entries of acts that took a power away (a key "
    .. "revoked, a person disabled, a password, role or membership changed, a project removed, a session signed "
    .. "out): restoring it would undo them",
  remedy = "restore a newer backup, or this one with --accept-undone-revocations, then revoke, disable, remove and "
    .. "sign out again what must stay so",
}
-- `orket restore` while a sandbox of the project runs: its row would vanish with the old
-- content, the sandbox running on, owned by nothing the board shows
CODES.ESANDBOXRUNNING = {
  means = "`orket restore` was refused: a sandbox of the project is running",
  remedy = "`orket sandbox list` shows the project's sandboxes; stop each with `orket sandbox stop ID` (another "
    .. "machine's on that machine, or, that machine gone for good, `orket sandbox stop --force ID`), then restore",
}
-- The HTTP API (`orket serve`)
CODES.bad_request = { status = 400, means = "a field of the request is wrong (the message names it)", remedy = "" }
CODES.bad_json = { status = 400, means = "the body is not JSON", remedy = "" }
CODES.bad_path = { status = 400, means = "a path segment (a card id, a run id) is malformed", remedy = "" }
CODES.bad_query = { status = 400, means = "a query parameter is malformed, or one the route does not take", remedy = "" }
CODES.unauthorized = {
  status = 401,
  means = "no key, a malformed, unknown, wrong or revoked key; before the first key, a write without the local token; "
    .. "a person refused (disabled, by an admin or by the directory's look; a provider's token whose name or subject "
    .. "is refused here)",
  -- the refusals about a person carry their own remedy (who sets it right): this one is the
  -- credential's
  remedy = "send `Authorization: Bearer ork_...` (`orket keys list`), or sign in as a person; only before any key or person exists (and without `sign_in.oidc`), write over `.orket/serve.sock` or send the token in `.orket/serve.token` (docs/serve.md); a refusal about the person says in its own remedy who sets it right (a server admin, the directory or the provider)",
}
CODES.bad_signature = {
  status = 401,
  means = "a webhook's signature does not match",
  -- (the same for every project: an unsigned caller learns nothing of which setting it uses)
  remedy = "the secret set in the forge's webhook must be the project's webhook secret: the stored secret "
    .. "`git.webhook_secret = secret \"NAME\"` names (`orket secrets set NAME`), or the variable "
    .. "`git.webhook_secret_env` names (docs/git.md)",
  -- no signature at all: most likely the forge's webhook has no secret set
  remedy_for = function(message)
    if type(message) == "string" and message:find("has no signature header", 1, true) then
      return "set a secret in the forge's webhook settings (a webhook without one sends no signature): the "
        .. "project's webhook secret, `git.webhook_secret` or `git.webhook_secret_env` (docs/git.md)"
    end
  end,
}
CODES.no_secret = {
  status = 401,
  means = "a webhook arrived but no secret is set",
  remedy = "set the variable `git.webhook_secret_env` names (docs/git.md)",
}
CODES.forbidden = {
  status = 403,
  means = "the key's role may not do this, a write with the board's session came without its CSRF token, a "
    .. "keyless server or `/mcp` saw a foreign host or origin, or a page of another origin (a sandbox's app) used "
    .. "the board's session (the message says which)",
  -- one text for every 403 (auth.lua, session.lua, mcp_http.lua ...): each clause is
  -- true for the messages it names, and none promises what another case refuses
  remedy = "by the message: for a role, a key of that role or higher (`orket keys create`); for a session's "
    .. "write, send `X-CSRF-Token` as signing in gave it, from the board's own page; for a host name a server "
    .. "without keys does not serve, reach it by a loopback name, or create a key to serve other names (`/mcp` "
    .. "on a loopback server takes only loopback names and the hosts of `serve.cors`'s origins, key or not); "
    .. "for another web origin, send from the board's own page or from outside a browser (only a page's reads "
    .. "and `/mcp` also take the origins `serve.cors` lists)",
}
CODES.not_found = { status = 404, means = "no such route, card or run", remedy = "" }
CODES.method_not_allowed = { status = 405, means = "the route exists with another method", remedy = "" }
CODES.timeout = { status = 408, means = "the request body stopped arriving, or came slower than the minimum rate",
  remedy = "" }
CODES.conflict = {
  status = 409,
  means = "the card or run changed meanwhile, or a run is already going",
  remedy = "read it again and retry",
}
CODES.project_error = {
  status = 409,
  means = "the project does not load (a broken orket.lua, role or epic)",
  remedy = "`orket validate`",
}
CODES.not_running = {
  status = 409,
  means = "the sandbox's app was asked for, but the sandbox is starting, stopped or exited",
  remedy = "`GET /v1/sandboxes/{id}`; start one (`POST /v1/sandboxes`)",
}
CODES.too_large = { status = 413, means = "the request body is over the cap", remedy = "" }
CODES.unsupported_media_type = {
  status = 415,
  means = "a write without `Content-Type: application/json`",
  remedy = "",
}
CODES.bad_config = {
  status = 422,
  means = "orket.lua does not load, so no sandbox can be started",
  remedy = "`orket validate`",
}
CODES.not_started = {
  status = 422,
  means = "a sandbox cannot run with these settings (`sandbox.network = true`, no network namespace offered), or it did not start (`502`: the command does not exist, the app exited; `error.log` holds its last output)",
  remedy = "`orket sandbox plan`; the message and the log say which (docs/sandbox.md)",
}
CODES.stale = {
  status = 422,
  means = "a webhook whose event is older than the server takes (`webhook_max_age_s`, 3 days by default)",
  remedy = "redeliver a recent event, or raise the limit in `ORKET_SERVE_LIMITS` (docs/serve.md)",
}
CODES.rate_limited = {
  status = 429,
  means = "too many requests, or failed sign-ins, from one key or address, or for one name",
  remedy = "wait `Retry-After` seconds",
}
CODES.internal = {
  status = 500,
  means = "a bug; the server's log has the details, never the client",
  remedy = "report it",
}
CODES.unhealthy = {
  status = 502,
  means = "the sandbox's app did not answer its health check within `health.start_timeout_ms`; it was stopped",
  remedy = "`error.log` is its last output; check `sandbox.health` and the port it listens on (`$PORT`)",
}
CODES.not_stopped = {
  status = 502,
  means = "the owner of a sandbox did not stop it (it is gone, or did not answer within 5 s)",
  remedy = "`orket sandbox list` marks a sandbox whose owner is gone",
}
CODES.bad_gateway = {
  status = 502,
  means = "the sandbox's app did not answer the proxied request",
  remedy = "`orket sandbox logs ID`",
}
CODES.gateway_timeout = {
  status = 504,
  means = "the sandbox's app gave no answer to the proxied request within two minutes, or did not take its "
    .. "connection within 5 s; or it began an answer and did not complete its headers within two minutes "
    .. "(or fell silent for two minutes)",
  remedy = "`orket sandbox logs ID`; an answer that takes long can be streamed as it is made",
}
CODES.app_busy = {
  status = 503,
  means = "the sandbox's app already has as many proxied requests in progress as it may (32, on all its routes: "
    .. "streams and slow answers hold theirs as long as they last), or 16 of them are from your address (a client "
    .. "on loopback, such as a reverse proxy in front, is held to no such share; behind a proxy listed in "
    .. "`serve.trusted_proxies`, your address is the one it forwards for)",
  remedy = "retry after its Retry-After; close the app's streams not in use",
}
CODES.provider_unavailable = {
  status = 502,
  means = "the identity provider (OpenID Connect or LDAP) is down, too slow, or answered something unusable",
  remedy = "check `sign_in.oidc.issuer` or `sign_in.ldap.url` in orket.lua; the server's log says what failed (docs/teams.md)",
}
CODES.busy = { status = 503, means = "the store stayed locked", remedy = "retry" }
CODES.stopping = { status = 503, means = "the server is shutting down", remedy = "retry against the next one" }
-- ESTARTING as orket serve answers it: passing, where 409 conflict (an overlap) lasts
CODES.starting = { status = 503,
  means = "another process held the project's start of a run (`.orket/claim.lock`) past the 3 s a start waits",
  remedy = "retry after its Retry-After; if it keeps failing, see ESTARTING (the message names the process when known)" }
CODES.unavailable = { status = 503, means = "the store cannot be reached just now (PostgreSQL's primary lost, a standby not yet promoted)",
  remedy = "retry; servers and workers reconnect by themselves once a primary answers (docs/workers.md)" }
CODES.project_unavailable = { status = 503,
  means = "a project this server hosts could not be opened at its start (its folder or its database gone); the others are served",
  remedy = "bring its folder or database back and restart the server, or stop hosting it: `orket projects remove NAME` (docs/teams.md)" }
CODES.project_changed = { status = 409,
  means = "a project this server hosts was removed, or removed and added again from another folder or store, since the server started: the server still has the old one open, so it serves it no more and grants no roles in it",
  remedy = "restart the server (orket serve), which then serves what the name names now; grant its people again there (docs/teams.md)" }

CODES.ELOOP = { means = "a path has too many symbolic links, or one where none may be", remedy = "" }
CODES.ENOPROG = { means = "a sandbox's program is not installed on this host (a limit of the host, not a fault of "
  .. "the app: a deploy skips the cards' checks with why, no bug filed)",
  remedy = "install it where the sandbox looks (PATH: /usr/local/bin, /usr/bin, /bin), or set sandbox.command "
    .. "(docs/sandbox.md)" }
CODES.ENAMETOOLONG = { means = "a path or a name is too long",
  remedy = "use a shorter path (a sandbox's socket: move the project to a shorter folder, docs/sandbox.md)" }
CODES.EFBIG = {
  means = "a file would grow past the size the workspace allows",
  remedy = "write less, or in several files",
}
CODES.EBUDGET = {
  means = "a script used up its instruction budget as it loaded (a role, tool or policy file, `orket.lua`); a tool's handler that does fails its call with `ETOOL`, a rule's `when` with `POLICY_ERROR`",
  remedy = "make its top level do less: it only defines the role, the tool or the rules ([writing-tools.md](writing-tools.md))",
}
CODES.ETIMEOUT = {
  means = "a script ran past its time budget",
  remedy = "make it do less per call ([writing-tools.md](writing-tools.md))",
}
CODES.ETOOLARGE = {
  means = "too much for one call: a tree of files, or an MCP server's message, over its cap",
  remedy = "ask for less at a time",
}
CODES.EMCP_TOOL = { means = "an MCP server's tool ran and reported an error (its text is the message)", remedy = "" }
CODES.ETX = {
  means = "a PostgreSQL transaction was rolled back (a statement in it failed, or the connection broke)",
  remedy = "retry; the message says which statement",
}
CODES.ENOTCONN = {
  means = "the connection to PostgreSQL is closed",
  remedy = "check the server; Orket reconnects on the next statement",
}
CODES.ENOTURN = {
  means = "the REPL's `project:turn` ran, but the card got no turn",
  remedy = "the run's events (`project.events`) say why",
}
CODES.ECLOSED = {
  means = "the REPL's `project` was closed (`project:close()`)",
  remedy = "`project:reopen()` opens it again",
}
CODES.ECANCELED = { means = "a sandbox was stopped before it was healthy", remedy = "start it again when wanted" }
CODES.ETOOBIG = {
  means = "an answer in an acceptance check is over its cap",
  remedy = "check a smaller page, or raise the check's cap (docs/sandbox.md)",
}
CODES.ESTATE = {
  means = "an approval or a question is not in a state for that (used, decided, or no longer asked)",
  remedy = "`orket card ID` shows where it stands",
}
CODES.EDIRTY = {
  means = "a file in the workspace was changed by hand while Orket updated it",
  remedy = "keep or revert the change by hand (`git -C workspace status`), then `orket resume`",
}
CODES.EINCONSISTENT = {
  means = "the repository lacks a commit or a tree a branch names",
  remedy = "restore the workspace's `.git` from a backup; report it",
}
CODES.EREMOTE = {
  means = "the remote (`git.remote`) could not be reached or refused",
  remedy = "check the remote and its credentials; the push is tried again after the next merge",
}
CODES.ELISTEN = {
  means = "`orket serve` could not listen on its address (taken, or not this machine's)",
  remedy = "choose another `--listen` address or port",
}
CODES.EPIPE = {
  means = "an HTTP client went away before its answer was written (logged, never answered)",
  remedy = "",
}
CODES.ESLOW = { means = "an HTTP client read its event stream too slowly and was dropped (logged)", remedy = "" }
CODES.ESHUTDOWN = {
  means = "orket serve stopped while a request's body was still arriving: the client was answered 503 unavailable (logged so)",
  remedy = "",
}
-- the state machine's remedies, from its own table
for _, code in ipairs(sm.codes()) do
  local e = CODES[code]
  if e then e.remedy = sm.remedy(code) end
end

--- get(code) -> the code's entry | nil
function M.get(code) return CODES[code] end

--- remedy(code[, message]) -> what to do about code | nil (unknown, or nothing to do);
--- message, the failure's own: a code whose remedy depends on what failed (EBUSY: the
--- store's lock or the secret store's) picks it from there
function M.remedy(code, message)
  local e = CODES[code]
  local own = e and e.remedy_for and e.remedy_for(message)
  if own then return own end
  if e and e.remedy ~= "" then return e.remedy end
  return nil
end

--- plain(text) -> a remedy as a person or a model reads it, off the troubleshooting table:
--- its Markdown links ([x.md](x.md#a-part), written relative to docs/guide/) as words that
--- name the repository's file ("docs/guide/x.md, "A part""), which lead somewhere from a shell
function M.plain(text)
  if type(text) ~= "string" then return text end
  return (text:gsub("%[([^%]]*)%]%(([^%)%s#]+%.md)#?([%w%-]*)%)", function(label, file, anchor)
    local path = file:find("^%.%./") and ("docs/" .. file:sub(4)) or ("docs/guide/" .. file)
    local part = anchor ~= "" and (', "' .. anchor:gsub("%-", " "):gsub("^%l", string.upper) .. '"') or ""
    local named = path .. part
    local base = file:match("([^/]+)$")
    if label == file or label == base then return named end
    return label .. " (" .. named .. ")"
  end))
end

--- status(code) -> the HTTP status an answer with code carries: the code's own, else 409 for
--- an E-code (a refusal of the board or the store: the request met a state that does not
--- allow it), else 500
function M.status(code)
  local e = CODES[code]
  if e and e.status then return e.status end
  if type(code) == "string" and code:match("^E[%u%d_]+$") then return 409 end
  return 500
end

--- answer(status, code, message[, remedy]) -> status, {error = {code=, message=, remedy=}}:
--- an HTTP API's error document; remedy: this failure's own, else the code's (none when
--- there is nothing to do but what the message says)
function M.answer(status, code, message, remedy)
  return status, { error = { code = code, message = message, remedy = remedy or M.remedy(code, message) } }
end

--- exec_failure(errno, prog) -> "cannot run PROG: no such file or directory (ENOENT)": a
--- confinement helper's failed exec (its "E errno program" report) in the system's words,
--- as proc.run says them; "(errno N)" when the system has none
function M.exec_failure(errno, prog)
  local name, words = rt.errno_text(math.tointeger(tonumber(errno)) or 0)
  if not name then return string.format("cannot run %s (errno %s)", prog, errno) end
  return string.format("cannot run %s: %s (%s)", prog, (words:gsub("^%u%l", string.lower)), name)
end

return M
