-- orket.store.migrations: the schema, as forward-only numbered migrations. store.open
-- applies every migration newer than the file's PRAGMA user_version, all in one transaction
-- (a failing one keeps none of them). Never edit a released migration: append a new one (version = #list + 1).
-- Timestamps are ISO 8601 UTC text with milliseconds; `data` columns hold JSON objects.
-- A migration is `sql`, or `apply(conn)` for what SQL alone cannot say.

-- Rewrites CHECK constraints of `tbl` in place: each edit's `old` becomes its `new` in the
-- CREATE text. SQLite cannot alter a constraint, and rebuilding `cards` would need foreign
-- keys off (which a transaction cannot do) or fire its children's ON DELETE CASCADE. A
-- constraint that accepts at least every value it accepted before changes no stored row,
-- which is the case SQLite documents editing sqlite_schema for; the schema cookie is
-- bumped so this connection and every other reads the new text.
local function edit_checks(conn, tbl, edits)
  local row = assert(conn:row("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", tbl))
  local sql = row.sql
  for _, e in ipairs(edits) do
    local at = assert(sql:find(e[1], 1, true), "migration: the CHECK to edit is not in " .. tbl)
    sql = sql:sub(1, at - 1) .. e[2] .. sql:sub(at + #e[1])
  end
  local cookie = assert(conn:row("PRAGMA schema_version")).schema_version
  assert(conn:exec("PRAGMA writable_schema = ON"))
  assert(conn:run("UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?", sql, tbl))
  assert(conn:exec(string.format("PRAGMA schema_version = %d", cookie + 1)))
  assert(conn:exec("PRAGMA writable_schema = OFF"))
end

-- The edit of `tbl`'s CHECK that `lead .. col IN (values)` becomes `lead .. col = v1 OR
-- col = v2 ...`: the same values accepted, and no temporary b-tree built for the list at
-- every write of col (SQLite compiles a constant IN list of three values or more into
-- one). The list found must be `values` exactly, in any layout, or the migration fails.
local function in_as_or(conn, tbl, lead, col, values)
  local row = assert(conn:row("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", tbl))
  local pat = "CHECK %(" .. (lead .. col):gsub("%p", "%%%0") .. " IN %(([^)]*)%)%)"
  local s, e, list = row.sql:find(pat)
  assert(s, "migration: no CHECK (" .. lead .. col .. " IN (...)) in " .. tbl)
  local found = {}
  for v in list:gmatch("'([^']*)'") do found[#found + 1] = v end
  assert(table.concat(found, ",") == table.concat(values, ","),
    "migration: " .. tbl .. "." .. col .. "'s CHECK lists " .. table.concat(found, ", "))
  local alts = {}
  for i, v in ipairs(values) do alts[i] = col .. " = '" .. v .. "'" end
  return { row.sql:sub(s, e), "CHECK (" .. lead .. table.concat(alts, " OR ") .. ")" }
end

return {
  {
    version = 1,
    name = "board",
    sql = [[
CREATE TABLE cards (
  id           TEXT PRIMARY KEY,
  type         TEXT NOT NULL CHECK (type IN ('rock', 'epic', 'issue')),
  parent       TEXT REFERENCES cards(id),
  name         TEXT,
  summary      TEXT,
  description  TEXT,
  note         TEXT,
  requirements TEXT,
  acceptance   TEXT,
  priority     REAL NOT NULL DEFAULT 2,
  seat         TEXT,
  department   TEXT,
  status       TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'in_progress',
                 'blocked', 'waiting_for_developer', 'ready_for_testing', 'code_review',
                 'done', 'canceled', 'archived')),
  wait_reason  TEXT CHECK (wait_reason IS NULL OR wait_reason IN ('resource', 'dependency',
                 'review', 'input', 'system')),
  retries      INTEGER NOT NULL DEFAULT 0,
  worked_by    TEXT,
  source       TEXT,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);
CREATE INDEX cards_parent ON cards(parent);
CREATE INDEX cards_status ON cards(status);

CREATE TABLE dependencies (
  card_id    TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
  depends_on TEXT NOT NULL REFERENCES cards(id),
  position   INTEGER NOT NULL,
  PRIMARY KEY (card_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX dependencies_target ON dependencies(depends_on);

CREATE TABLE comments (
  id         INTEGER PRIMARY KEY,
  card_id    TEXT NOT NULL REFERENCES cards(id),
  author     TEXT NOT NULL,
  body       TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX comments_card ON comments(card_id, id);

CREATE TABLE events (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      TEXT NOT NULL,
  kind    TEXT NOT NULL,
  card_id TEXT,
  run_id  INTEGER,
  actor   TEXT,
  data    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_card ON events(card_id, id);
CREATE INDEX events_run ON events(run_id, id);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
]],
  },
  {
    version = 2,
    name = "runs",
    sql = [[
CREATE TABLE runs (
  id         INTEGER PRIMARY KEY,
  target     TEXT NOT NULL,
  kind       TEXT NOT NULL,
  status     TEXT NOT NULL DEFAULT 'running',
  started_at TEXT NOT NULL,
  ended_at   TEXT,
  data       TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE turns (
  id                INTEGER PRIMARY KEY,
  run_id            INTEGER NOT NULL REFERENCES runs(id),
  card_id           TEXT REFERENCES cards(id),
  seat              TEXT NOT NULL,
  role              TEXT,
  turn              INTEGER NOT NULL,
  model             TEXT,
  request           TEXT,
  response          TEXT,
  prompt_tokens     INTEGER,
  completion_tokens INTEGER,
  created_at        TEXT NOT NULL,
  data              TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX turns_run ON turns(run_id, id);
CREATE TABLE tool_calls (
  id         INTEGER PRIMARY KEY,
  turn_id    INTEGER NOT NULL REFERENCES turns(id),
  call_id    TEXT,
  tool       TEXT NOT NULL,
  arguments  TEXT NOT NULL,
  result     TEXT,
  ok         INTEGER,
  error_code TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX tool_calls_turn ON tool_calls(turn_id, id);
CREATE TABLE gate_decisions (
  id           INTEGER PRIMARY KEY,
  turn_id      INTEGER REFERENCES turns(id),
  tool_call_id INTEGER REFERENCES tool_calls(id),
  tool         TEXT,
  verdict      TEXT NOT NULL CHECK (verdict IN ('allow', 'deny', 'ask')),
  code         TEXT,
  reason       TEXT,
  remedy       TEXT,
  created_at   TEXT NOT NULL
);
CREATE TABLE violations (
  id         INTEGER PRIMARY KEY,
  turn_id    INTEGER REFERENCES turns(id),
  card_id    TEXT REFERENCES cards(id),
  seat       TEXT,
  rule       TEXT NOT NULL,
  detail     TEXT,
  created_at TEXT NOT NULL
);
]],
  },
  {
    version = 3,
    name = "memory",
    sql = [[
CREATE TABLE memory (
  id         INTEGER PRIMARY KEY,
  card_id    TEXT REFERENCES cards(id),
  text       TEXT NOT NULL,
  tags       TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE INDEX memory_card ON memory(card_id);
CREATE VIRTUAL TABLE memory_fts USING fts5(text, tags, content='memory', content_rowid='id',
  tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER memory_fts_insert AFTER INSERT ON memory BEGIN
  INSERT INTO memory_fts(rowid, text, tags) VALUES (new.id, new.text, new.tags);
END;
CREATE TRIGGER memory_fts_delete AFTER DELETE ON memory BEGIN
  INSERT INTO memory_fts(memory_fts, rowid, text, tags) VALUES ('delete', old.id, old.text, old.tags);
END;
CREATE TRIGGER memory_fts_update AFTER UPDATE ON memory BEGIN
  INSERT INTO memory_fts(memory_fts, rowid, text, tags) VALUES ('delete', old.id, old.text, old.tags);
  INSERT INTO memory_fts(rowid, text, tags) VALUES (new.id, new.text, new.tags);
END;
]],
  },
  {
    version = 4,
    name = "violations: what was attempted and how to fix it",
    sql = [[
ALTER TABLE violations ADD COLUMN attempt TEXT;
ALTER TABLE violations ADD COLUMN remedy TEXT;
]],
  },
  {
    version = 5,
    name = "approvals: tool calls the gate asked a developer about",
    -- One row per held call. decision/decided_at are set together by `orket answer`;
    -- used_at once an approved call has run. At most one request per card is undecided.
    sql = [[
CREATE TABLE approvals (
  id           INTEGER PRIMARY KEY,
  run_id       INTEGER REFERENCES runs(id),
  card_id      TEXT NOT NULL REFERENCES cards(id),
  seat         TEXT,
  turn         INTEGER,
  turn_id      INTEGER REFERENCES turns(id),
  tool         TEXT NOT NULL,
  arguments    TEXT NOT NULL,
  digest       TEXT NOT NULL,
  rule         TEXT,
  reason       TEXT,
  requested_at TEXT NOT NULL,
  decision     TEXT CHECK (decision IS NULL OR decision IN ('approve', 'deny')),
  decided_at   TEXT,
  decided_by   TEXT,
  note         TEXT,
  used_at      TEXT,
  used_turn_id INTEGER REFERENCES turns(id),
  CHECK ((decision IS NULL) = (decided_at IS NULL)),
  CHECK (used_at IS NULL OR decision = 'approve')
);
CREATE INDEX approvals_card ON approvals(card_id, id);
CREATE UNIQUE INDEX approvals_pending ON approvals(card_id) WHERE decision IS NULL;
]],
  },
  {
    version = 6,
    name = "tool calls: the gate decision that allowed the call",
    -- An allowed call's decision is its tool_calls row (gate_code: ALLOWED, POLICY_ALLOW)
    -- instead of a gate_decisions row and event of its own; denials, held calls and
    -- approvals keep their gate_decisions rows. NULL on rows written before.
    sql = [[
ALTER TABLE tool_calls ADD COLUMN gate_code TEXT;
]],
  },
  {
    version = 7,
    name = "events: no AUTOINCREMENT, no unused run index",
    -- Each commit that wrote an event also rewrote sqlite_sequence (AUTOINCREMENT) and an
    -- events_run leaf that no query reads (lookups by run go through events_card with
    -- "+run_id", and db:events scans by id): two B-tree pages fewer per commit. Ids stay
    -- unique and increasing without AUTOINCREMENT because rows are never deleted (the
    -- triggers refuse it), so max(id) + 1 never reuses one. Same columns, rows and ids.
    sql = [[
CREATE TABLE events_v7 (
  id      INTEGER PRIMARY KEY,
  at      TEXT NOT NULL,
  kind    TEXT NOT NULL,
  card_id TEXT,
  run_id  INTEGER,
  actor   TEXT,
  data    TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO events_v7 (id, at, kind, card_id, run_id, actor, data)
  SELECT id, at, kind, card_id, run_id, actor, data FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_v7 RENAME TO events;
DELETE FROM sqlite_sequence WHERE name = 'events';
CREATE INDEX events_card ON events(card_id, id);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
]],
  },
  {
    version = 8,
    name = "runs: where the journal's untagged board moves end",
    -- From this version the board's events (transition, comment, create, retry) and
    -- memory's written during a run carry its run_id. Before, they had none, and `orket log`
    -- found a run's moves by its time window. untagged_upto is the last event id written
    -- before the upgrade, set on the runs that existed then (NULL on later runs): only those
    -- runs, and only events up to that id without a run_id, still use the window.
    sql = [[
ALTER TABLE runs ADD COLUMN untagged_upto INTEGER;
UPDATE runs SET untagged_upto = (SELECT max(id) FROM events);
]],
  },
  {
    version = 9,
    name = "imported_files: what the last import read",
    -- One row per epics/ file the last successful import read (path relative to the
    -- project, "epics/x.json"), with the BLAKE2b of its text; each import replaces the rows
    -- in its transaction. `orket run` compares the files with it to warn about edits not
    -- imported yet.
    sql = [[
CREATE TABLE imported_files (
  path        TEXT PRIMARY KEY,
  digest      TEXT NOT NULL,
  imported_at TEXT NOT NULL
) WITHOUT ROWID;
]],
  },
  {
    version = 10,
    name = "api_keys: keys for orket serve",
    -- One row per key made by `orket keys create`. The key itself (ork_<id>_<secret>) is
    -- shown once and never stored: hash is the BLAKE2b of the secret keyed with the
    -- project's pepper (.orket/keys.pepper, outside this file), so a copy of the database
    -- alone cannot check a guess. A revoked key keeps its row; its name may be reused.
    sql = [[
CREATE TABLE api_keys (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  role       TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  hash       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  revoked_at TEXT
) WITHOUT ROWID;
CREATE UNIQUE INDEX api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL;
]],
  },
  {
    version = 11,
    name = "verifications: acceptance checks and their results",
    -- cards.verification: an issue's checks from its epic file (JSON: command, expect_exit,
    -- timeout_ms, scenarios), NULL for none. One verifications row per hand-in checked
    -- (handin: the id of the transition event that took the card out of in_progress),
    -- written in the same transaction as the move it decides, so a run killed while the
    -- checks ran runs them again and a result is never counted twice.
    sql = [[
ALTER TABLE cards ADD COLUMN verification TEXT;
CREATE TABLE verifications (
  id         INTEGER PRIMARY KEY,
  card_id    TEXT NOT NULL REFERENCES cards(id),
  run_id     INTEGER,
  handin     INTEGER NOT NULL,
  passed     INTEGER NOT NULL,
  command    TEXT NOT NULL,
  reason     TEXT NOT NULL,
  code       INTEGER,
  signal     TEXT,
  wall_ms    INTEGER,
  output     TEXT NOT NULL,
  layers     TEXT NOT NULL,
  at         TEXT NOT NULL
);
CREATE UNIQUE INDEX verifications_handin ON verifications(card_id, handin);
]],
  },
  {
    version = 12,
    name = "sessions: the web board's sign-ins",
    -- One row per browser session: the BLAKE2b of its random token (never the token), the
    -- key it signed in with, and when it ends (Unix seconds). Revoking the key ends them.
    sql = [[
CREATE TABLE sessions (
  hash       TEXT PRIMARY KEY,
  key_id     TEXT NOT NULL REFERENCES api_keys(id),
  created_at TEXT NOT NULL,
  expires    INTEGER NOT NULL
);
CREATE INDEX sessions_key ON sessions(key_id);
]],
  },
  {
    version = 13,
    name = "forge: pull requests, review cycles, webhook deliveries",
    -- pull_requests: a card's branch on the remote and its pull request on the forge (one
    -- per card; number NULL with a remote but no forge; head: the commit last pushed). review_cycles: one row per time a card was handed to people for review
    -- (cycle 1, 2, ...), decided by a webhook (approved, changes_requested, merged, closed).
    -- webhook_deliveries: every delivery acted on or ignored, by the forge's delivery id,
    -- written in the transaction of the board change it caused, so a redelivery finds it
    -- and changes nothing.
    sql = [[
CREATE TABLE pull_requests (
  card_id    TEXT PRIMARY KEY REFERENCES cards(id),
  forge      TEXT,
  repo       TEXT,
  number     INTEGER,
  url        TEXT,
  head       TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE review_cycles (
  id         INTEGER PRIMARY KEY,
  card_id    TEXT NOT NULL REFERENCES cards(id),
  cycle      INTEGER NOT NULL,
  pr_number  INTEGER,
  head       TEXT,
  opened_at  TEXT NOT NULL,
  decision   TEXT CHECK (decision IN ('approved', 'changes_requested', 'merged', 'closed')),
  reviewer   TEXT,
  body       TEXT,
  delivery   TEXT,
  decided_at TEXT
);
CREATE UNIQUE INDEX review_cycles_card ON review_cycles(card_id, cycle);
CREATE TABLE webhook_deliveries (
  forge    TEXT NOT NULL,
  delivery TEXT NOT NULL,
  event    TEXT NOT NULL,
  card_id  TEXT,
  outcome  TEXT NOT NULL,
  at       TEXT NOT NULL,
  PRIMARY KEY (forge, delivery)
);
]],
  },
  {
    version = 14,
    name = "leases: which worker works which card",
    -- One row per card a worker (`orket worker`) holds: which worker, for which run, and
    -- until when. A worker renews its leases while it works and checks its lease in each
    -- step's transaction; a lease past expires_at may be taken over by another worker,
    -- which resumes the card from the journal. Rows go when the card leaves the states a
    -- turn works (or the worker stops); a card's row goes with it.
    sql = [[
CREATE TABLE leases (
  card_id     TEXT PRIMARY KEY REFERENCES cards(id) ON DELETE CASCADE,
  worker      TEXT NOT NULL,
  run_id      INTEGER NOT NULL REFERENCES runs(id),
  acquired_at TEXT NOT NULL,
  expires_at  TEXT NOT NULL
);
CREATE INDEX leases_worker ON leases(worker);
CREATE INDEX leases_run ON leases(run_id);
]],
  },
  {
    version = 15,
    name = "webhook deliveries by content",
    -- The event's own identity (a review's id; a pull request's number, action and head
    -- commit; a push's ref and commit: orket.forge.identity), read from the signed body: a
    -- body resent under a new delivery id, which no signature covers, is a duplicate too.
    sql = [[
ALTER TABLE webhook_deliveries ADD COLUMN identity TEXT;
CREATE UNIQUE INDEX webhook_deliveries_identity ON webhook_deliveries(forge, identity);
]],
  },
  {
    version = 16,
    name = "sandboxes: main's tree running as a service",
    -- One row per sandbox started (orket.sandboxes.service, docs/sandbox.md): what runs,
    -- where it is reached (a unix socket relayed into its own network namespace), its
    -- state, and who owns it (the process, named by pid and start time, that started it
    -- and probes it; the sandbox ends with its owner, and the next look finds the row of a
    -- dead owner and marks it exited).
    sql = [[
CREATE TABLE sandboxes (
  id          INTEGER PRIMARY KEY,
  target      TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('starting', 'healthy', 'unhealthy', 'stopped', 'exited')),
  port        INTEGER NOT NULL,
  socket      TEXT NOT NULL,
  command     TEXT NOT NULL,
  commit_id   TEXT,
  owner_pid   INTEGER,
  owner_start TEXT,
  detail      TEXT,
  exit_code   INTEGER,
  exit_signal INTEGER,
  started_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  healthy_at  TEXT,
  ended_at    TEXT
);
CREATE INDEX sandboxes_status ON sandboxes(status);
]],
  },
  {
    version = 17,
    name = "bug-fix phases and the bugs filed in them",
    -- A rock's bug-fix phase (orket.sandboxes.phase, docs/sandbox.md): one row per rock,
    -- opened when the rock is done. Its times are orket.clock's seconds (a clock tests
    -- move), not the store's. epic_id: the epic bugs are filed under now; seen_event: the
    -- journal's sandbox events already turned into bugs; next_rock: where the open bugs
    -- went when it ended. A bug is an issue card; its row says where it came from and
    -- its fingerprint (an open bug with the same one is not filed again).
    sql = [[
CREATE TABLE bugfix_phases (
  id         INTEGER PRIMARY KEY,
  rock_id    TEXT NOT NULL UNIQUE REFERENCES cards(id) ON DELETE CASCADE,
  status     TEXT NOT NULL CHECK (status IN ('open', 'ended')),
  started_at REAL NOT NULL,
  ended_at   REAL,
  reason     TEXT,
  epic_id    TEXT,
  next_rock  TEXT,
  seen_event INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE bugs (
  card_id     TEXT PRIMARY KEY REFERENCES cards(id) ON DELETE CASCADE,
  rock_id     TEXT NOT NULL,
  phase_id    INTEGER REFERENCES bugfix_phases(id),
  source      TEXT NOT NULL,
  fingerprint TEXT,
  filed_at    REAL NOT NULL,
  seen        INTEGER NOT NULL DEFAULT 1,
  seen_at     REAL NOT NULL
);
CREATE INDEX bugs_phase ON bugs(phase_id);
CREATE INDEX bugs_fingerprint ON bugs(fingerprint);
]],
  },
  {
    version = 18,
    name = "the audit's hash chain",
    -- One row per audited write, checkpoint and retention removal (orket.audit,
    -- docs/audit.md). Every column but prev, hash and sig is text as hashed, so the bytes
    -- read back are the bytes hashed on either backend. Rows are never changed; whole
    -- rows leave only by retention, which appends a signed record of what left.
    sql = [[
CREATE TABLE audit_log (
  seq     INTEGER PRIMARY KEY,
  at      TEXT NOT NULL,
  kind    TEXT NOT NULL,
  actor   TEXT,
  action  TEXT,
  card_id TEXT,
  route   TEXT,
  detail  TEXT,
  prev    TEXT NOT NULL,
  hash    TEXT NOT NULL,
  sig     TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_signed ON audit_log(seq) WHERE sig IS NOT NULL;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
]],
  },
  {
    version = 19,
    name = "local accounts and their sessions",
    -- A person who signs in to the web board with a name and a password (orket.serve.
    -- accounts, docs/serve.md): only the password's Argon2id hash is kept. A disabled
    -- person's row stays (the audit names them); their sessions end at once. A person's
    -- sessions are apart from keys' (sessions.key_id refers to a key).
    sql = [[
CREATE TABLE users (
  name        TEXT PRIMARY KEY,
  role        TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  hash        TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  disabled_at TEXT
);
CREATE TABLE user_sessions (
  hash       TEXT PRIMARY KEY,
  user_name  TEXT NOT NULL REFERENCES users(name),
  created_at TEXT NOT NULL,
  expires    INTEGER NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions(user_name);
]],
  },
  {
    version = 20,
    name = "app grants: sandbox apps' tickets and sessions",
    -- orket.store.app_grants: in the store, not one server's memory, so that a ticket
    -- made by one `orket serve` is redeemed by another on the same database
    sql = [[
CREATE TABLE app_grants (
  hash          TEXT PRIMARY KEY,
  kind          TEXT NOT NULL CHECK (kind IN ('ticket', 'session')),
  sandbox_id    INTEGER NOT NULL,
  key_id        TEXT,
  local_use     INTEGER NOT NULL DEFAULT 0,
  board         TEXT,
  board_expires INTEGER,
  role          TEXT NOT NULL,
  start         TEXT,
  expires       INTEGER NOT NULL
);
CREATE INDEX app_grants_expires ON app_grants(expires);
]],
  },
  {
    version = 21,
    name = "rate buckets: limits shared by every server",
    -- orket.store.rate_buckets: failed authentications per address, counted over every
    -- `orket serve` on the database
    sql = [[
CREATE TABLE rate_buckets (
  scope  TEXT NOT NULL,
  name   TEXT NOT NULL,
  tokens REAL NOT NULL,
  at_ms  INTEGER NOT NULL,
  PRIMARY KEY (scope, name)
);
]],
  },
  {
    version = 22,
    name = "wait reason budget",
    -- A card a money budget stopped waits with the reason `budget` (docs/cost.md), told
    -- apart from a question's `input` by the store itself.
    apply = function(conn)
      edit_checks(conn, "cards", { { "'review', 'input', 'system'))", "'review', 'input', 'system', 'budget'))" } })
    end,
  },
  {
    version = 23,
    name = "experiments: each card's variant",
    -- orket.store.experiments (docs/cost.md, "Experiments"): the arm a card runs in for
    -- each experiment, written with its first work turn and never changed after, so a
    -- share or an experiment changed in orket.lua moves only cards not started yet. A card
    -- in one experiment's variant has that row alone; a card in none is every
    -- experiment's control.
    sql = [[
CREATE TABLE experiment_cards (
  experiment  TEXT NOT NULL,
  card_id     TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
  arm         TEXT NOT NULL CHECK (arm IN ('control', 'variant')),
  model       TEXT,
  role        TEXT,
  assigned_at TEXT NOT NULL,
  PRIMARY KEY (experiment, card_id)
);
CREATE INDEX experiment_cards_card ON experiment_cards(card_id);
]],
  },
  {
    version = 24,
    name = "projects and their members; personal API keys",
    -- One server, many projects (docs/teams.md). The default project's store holds the
    -- server's people: the projects added with `orket projects add`, each person's role
    -- in each project (viewer, developer, admin), and the person a key belongs to. Each
    -- person keeps their role in the one project a server served so far (operator is
    -- developer now).
    sql = [[
CREATE TABLE projects (
  name     TEXT PRIMARY KEY,
  dir      TEXT NOT NULL UNIQUE,
  added_at TEXT NOT NULL
);
CREATE TABLE project_members (
  project   TEXT NOT NULL,
  user_name TEXT NOT NULL REFERENCES users(name),
  role      TEXT NOT NULL CHECK (role IN ('viewer', 'developer', 'admin')),
  PRIMARY KEY (project, user_name)
);
CREATE INDEX project_members_user ON project_members(user_name);
INSERT INTO project_members (project, user_name, role)
  SELECT 'default', name, CASE role WHEN 'operator' THEN 'developer' ELSE role END FROM users;
ALTER TABLE api_keys ADD COLUMN user_name TEXT REFERENCES users(name);
]],
  },
  {
    version = 25,
    name = "CHECK lists without a temporary b-tree",
    -- SQLite built each CHECK (x IN (...)) list of cards and gate_decisions (the tables a
    -- turn writes with one) into a temporary b-tree at every statement that wrote the
    -- column: a board move's UPDATE cost 57.0k machine instructions, 18.6k with the same
    -- values compared one by one (an issue's INSERT 98.0k, 26.8k). The same values are
    -- accepted (the edit checks each list it replaces), no stored row changes, and every
    -- row is checked against the new text.
    apply = function(conn)
      edit_checks(conn, "cards", {
        in_as_or(conn, "cards", "", "type", { "rock", "epic", "issue" }),
        in_as_or(conn, "cards", "", "status", { "ready", "in_progress", "blocked", "waiting_for_developer",
          "ready_for_testing", "code_review", "done", "canceled", "archived" }),
        in_as_or(conn, "cards", "wait_reason IS NULL OR ", "wait_reason",
          { "resource", "dependency", "review", "input", "system", "budget" }),
      })
      edit_checks(conn, "gate_decisions", {
        in_as_or(conn, "gate_decisions", "", "verdict", { "allow", "deny", "ask" }),
      })
      for _, t in ipairs { "cards", "gate_decisions" } do
        local check = assert(conn:row("PRAGMA quick_check(" .. t .. ")")).quick_check
        assert(check == "ok", "migration: " .. t .. " after its CHECKs' edit: " .. tostring(check))
      end
    end,
  },
  {
    version = 26,
    name = "a key's name is unique among its person's keys",
    -- An active key's name was unique across every person, so a person making a key
    -- learnt from the refusal that someone else held one of that name. Names are now
    -- unique per person (the server's own keys, of no person, among themselves).
    sql = [[
DROP INDEX api_keys_active_name;
CREATE UNIQUE INDEX api_keys_active_name ON api_keys(coalesce(user_name, ''), name) WHERE revoked_at IS NULL;
]],
  },
  {
    version = 27,
    name = "run leases: which process executes which run; the store's identity; which store a project name names",
    -- A run executed inside `orket serve` was live only by a lock file in its project folder,
    -- so a server of the same PostgreSQL store in another folder read it as killed and could
    -- resume it: the run went twice at once. The executing process now keeps a lease row here,
    -- renewed while it works and dropped when the run ends; a run is killed (resumable) only
    -- once its lease has lapsed, wherever the asking process runs. owner: host/pid/nonce.
    -- store_identity: one random id made with the store (a copy of the store keeps it), and
    -- a probe a server writes at its start and reads back through each of its projects: a
    -- project that reads another's probe is the same store (one PostgreSQL database named
    -- twice, whatever the URL), which a copy never is. project_stores (in the server's own
    -- store): the store id each hosted project's name was last served with, so memberships
    -- granted in one project do not pass to another store given the same name.
    sql = [[
CREATE TABLE run_leases (
  run_id      INTEGER PRIMARY KEY REFERENCES runs(id),
  owner       TEXT NOT NULL,
  acquired_at TEXT NOT NULL,
  expires_at  TEXT NOT NULL
);
CREATE TABLE store_identity (
  id         TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  probe      TEXT
);
CREATE TABLE project_stores (
  project  TEXT PRIMARY KEY,
  store_id TEXT NOT NULL,
  bound_at TEXT NOT NULL
);
INSERT INTO store_identity (id, created_at) VALUES (lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
]],
  },
  {
    version = 28,
    name = "money budgets' sums read by index",
    -- A money budget's total is read before every model call: the day's by the calls'
    -- times, a card's (its epic's, its rock's) by card, a run's by run, over the turns and
    -- the charged model failures. Only a run's turns had an index, so each check read
    -- every turn or every event of the journal and a long-lived project's calls slowed.
    -- The failures' indexes hold model_failure events alone: no other event's insert
    -- writes them.
    sql = [[
CREATE INDEX turns_at ON turns(created_at);
CREATE INDEX turns_card ON turns(card_id, id);
CREATE INDEX events_model_failure_at ON events(at) WHERE kind = 'model_failure';
CREATE INDEX events_model_failure_run ON events(run_id, id) WHERE kind = 'model_failure';
]],
  },
  {
    version = 29,
    name = "a person's own sign-ins read by index",
    -- GET /v1/session/audit, open to anyone signed in, read a caller's sign-ins and
    -- sign-outs by walking the whole journal from ?after= (no index on actor): one caller
    -- with none kept the server's loop busy. The index holds those rows alone, so no other
    -- event's insert writes it; its WHERE is the read's (orket.store.journal_reads.sign_ins).
    sql = [[
CREATE INDEX events_signs ON events(actor, id)
  WHERE kind = 'api_write' AND json_extract(data, '$.action') IN ('sign_in', 'sign_out');
]],
  },
  {
    version = 30,
    name = "a sandbox's owner names its machine",
    -- A sandbox's liveness was judged by its owner's pid and start time alone, which mean
    -- something only on the owner's machine: on a store several machines share, any
    -- command of one marked another's live sandboxes exited. owner_machine is
    -- "<host>/<boot id>.<pid ns>[.<time ns>]" (orket.sandboxes.pidstart.machine); a row
    -- without one (written before) is judged by its pid as before.
    sql = [[
ALTER TABLE sandboxes ADD COLUMN owner_machine TEXT;
]],
  },
  {
    version = 31,
    name = "webhook deliveries kept while they can come again",
    -- A delivery's row was kept for ever, one per delivery. event_at is the event's own time
    -- (orket.forge.event_time, Unix seconds; NULL: the body has none): once the event is
    -- older than the server takes (webhook_max_age_s) it is refused as stale whatever its
    -- id, so its row is no longer what refuses it, and it is deleted (orket.serve.webhooks).
    -- A row without one stays: it is such a body's only protection.
    sql = [[
ALTER TABLE webhook_deliveries ADD COLUMN event_at INTEGER;
CREATE INDEX webhook_deliveries_event_at ON webhook_deliveries(event_at) WHERE event_at IS NOT NULL;
]],
  },
}
