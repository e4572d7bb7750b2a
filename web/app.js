// The Orket web board: signs in with a name and password or an API key (POST /v1/session sets an HttpOnly cookie
// and returns the CSRF token), shows the rock > epic > issue tree, follows the journal over
// Server-Sent Events (/v1/events) and fetches again only the cards an event names (the whole
// board for new cards, a stream's reset, or more than CATCH_UP changed cards, as after a long
// outage); a 429 pauses it for the Retry-After. Operators get every card action the API has
// (move, comment, answer, approve or deny a held tool call, retry, cancel) and start, stop
// and resume runs. Each sandbox shows its health and a link to
// its app through the server's proxy, fetched again on the journal's sandbox events. Each
// rock shows its bug-fix phase (fetched again on the journal's bug events), and operators
// file bugs under it. The board shows as a tree or as status columns (both live); operators
// create cards under an epic or rock. A card's pane shows its change (the files its branch
// changed against main, a unified diff, the commit of each turn); a panel lists the gate's
// policy violations. Plain DOM, no framework; text set as text.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { csrf: null, role: null, project: "default", projects: [], selected: null, events: null, cards: new Map(), held: new Set(),
    dirty: new Set(), needBoard: false, timer: null, busy: false, pauseUntil: 0, streams: 0, phases: new Map(),
    violationCounts: new Map(), gen: 0, after: null, store: null, streamStore: null, wantEvents: false, said: new Map(),
    allKeys: new Map(), runStates: new Map(), statusRun: null }; // allKeys: the people whose every key the people page shows -> those keys as read (null: not yet)
  // changed cards past which the board is read whole rather than a card each (about a second of
  // the key's rate; a live burst of 150 ms rarely names so many)
  const CATCH_UP = 50;
  // what the page asked for, read by the tests (a run must not cost a board per event)
  const stats = window.orketBoardStats = { board: 0, card: 0, runs: 0, sandboxes: 0, view: 0, bugfix: 0, limited: 0,
    early: 0, violations: 0, diff: 0, events: 0, resets: 0, keys: 0, users: 0 };
  const STATUSES = ["ready", "in_progress", "blocked", "waiting_for_developer", "ready_for_testing", "code_review",
    "done", "canceled", "archived"];
  // Events that change what the tree shows of the card they name
  const TREE_KINDS = new Set(["transition", "retry", "approval_requested", "approval_decided", "approval_used", "api_write"]);
  // The journal's kinds (docs/store.md): EventSource delivers named events only to listeners
  // for that name, so each is listened for; any of them may change what the page shows.
  const KINDS = ["transition", "create", "import", "comment", "approval_requested", "approval_decided",
    "approval_used", "retry", "run_start", "run_end", "run_resumed", "turn", "turn_begin", "turn_end", "tool_call",
    "gate_decision", "violation", "escalated", "requirements_review", "verification", "api_write",
    "merge", "merge_conflict", "work_lost", "merge_remote", "commit", "reload", "reload_error", "reload_held", "model_failure", "memory", "message",
    "sandbox_start", "sandbox_healthy", "sandbox_unhealthy", "sandbox_stop", "sandbox_exit",
    "bugfix_start", "bugfix_end", "bug_filed", "bug_moved",
    // the rest of docs/store.md's (tests/spec/tree/event_kinds_spec.lua keeps this whole)
    "tool_call_started", "budget_warning", "budget_reached", "budget_unpriced", "budget_approved", "requirements_review_of",
    "key_create", "key_revoke", "session_start", "session_end", "watch_error", "merge_main", "push", "push_failed",
    "pull_request", "pull_request_end", "take_in", "take_in_failed", "remote_branch", "webhook", "forge_comment", "sandbox_check",
    "bugfix_recheck",
    "user_add", "user_role", "user_password", "user_disable", "user_enable", "user_unlock", "member_grant", "member_revoke",
    "secret_set", "secret_rm", "restore", "audit_key"];

  // Bidirectional controls (U+202A-202E embeddings and overrides, U+2066-2069 isolates, the
  // marks U+200E, U+200F, U+061C) in stored text would be obeyed: a file an agent named
  // "docs/invoice\u202efdp.sh" read "docs/invoicehs.pdf", and an override in a comment turned
  // the rest of it around ("Trojan Source"). Isolating the text does not stop the reversal
  // inside it, so they are shown, never obeyed.
  const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
  const BIDI_NAMES = { "061C": "ARABIC LETTER MARK", "200E": "LEFT-TO-RIGHT MARK", "200F": "RIGHT-TO-LEFT MARK",
    "202A": "LEFT-TO-RIGHT EMBEDDING", "202B": "RIGHT-TO-LEFT EMBEDDING", "202C": "POP DIRECTIONAL FORMATTING",
    "202D": "LEFT-TO-RIGHT OVERRIDE", "202E": "RIGHT-TO-LEFT OVERRIDE", "2066": "LEFT-TO-RIGHT ISOLATE",
    "2067": "RIGHT-TO-LEFT ISOLATE", "2068": "FIRST STRONG ISOLATE", "2069": "POP DIRECTIONAL ISOLATE" };
  // shown(text) -> a node for text as the page shows stored text (what models and people
  // wrote: titles, file names, comments, history, a held call's arguments, transcripts):
  // each bidi control a mark, "⟨U+202E⟩" (its name in its title), every place through here
  function shown(text) {
    text = String(text ?? "");
    if (!BIDI.test(text)) return document.createTextNode(text);
    const out = document.createDocumentFragment();
    for (const part of text.split(/([\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069])/)) {
      if (part.length === 1 && BIDI.test(part)) {
        const hex = part.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
        const m = document.createElement("span");
        m.className = "bidi-mark";
        m.title = "U+" + hex + " " + BIDI_NAMES[hex] + ": a control that reorders text, shown here, not obeyed";
        m.textContent = "⟨U+" + hex + "⟩";
        out.append(m);
      } else if (part) out.append(part);
    }
    return out;
  }
  // hasBidi(text) -> whether shown(text) marks something (a file name is then said to hold it)
  const hasBidi = (text) => BIDI.test(String(text ?? ""));
  // showIn(e, text): e's content, stored text shown (replaces e.textContent = text)
  const showIn = (e, text) => { e.replaceChildren(shown(text)); };

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.append(shown(v));
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k) e.append(k);
    return e;
  }

  // keyOf(e) -> a selector that finds e again once its part of the page is drawn anew: its
  // id, else its data-key (a card's button, an approval's, a run's) | null
  function keyOf(e) {
    if (e.id) return "#" + CSS.escape(e.id);
    if (e.dataset && e.dataset.key) return '[data-key="' + CSS.escape(e.dataset.key) + '"]';
    return null;
  }

  // rebuild(box, draw[, fallback]): box's content drawn anew by draw() (an event's redraw)
  // keeping what a person is doing in it: the text typed in each of its fields and their
  // error marks (by id), and the focused control with its selection, found again by its id
  // or data-key; when that control is gone, focus goes to fallback (a heading), not <body>.
  // (A redraw that dropped them wiped a deny reason being typed and left a keyboard or
  // screen-reader user at the top of the page: WCAG 2.4.3, 3.2.2.)
  function rebuild(box, draw, fallback) {
    const kept = [];
    for (const f of box.querySelectorAll("input[id], textarea[id], .error[id]")) {
      kept.push([f.id, f.matches(".error") ? f.textContent : f.value,
        f.getAttribute("aria-invalid"), f.getAttribute("aria-describedby")]);
    }
    const a = document.activeElement;
    const was = a && a !== box && box.contains(a) ? a : null;
    const key = was && keyOf(was);
    const sel = was && typeof was.selectionStart === "number" ? [was.selectionStart, was.selectionEnd, was.selectionDirection] : null;
    draw();
    for (const [id, v, invalid, by] of kept) {
      const f = document.getElementById(id);
      if (!f || !box.contains(f)) continue;
      if (f.matches(".error")) { if (!f.textContent) f.textContent = v; continue; }
      f.value = v;
      if (invalid) f.setAttribute("aria-invalid", invalid);
      if (by) f.setAttribute("aria-describedby", by);
    }
    if (!was || (was.isConnected && box.contains(was))) return;
    const again = key && box.querySelector(key);
    if (again) {
      again.focus({ preventScroll: true });
      if (sel) try { again.setSelectionRange(...sel); } catch (e) { /* a field with no selection */ }
    } else if (fallback) fallback.focus();
  }

  // settle(had, fallback): focus was on had before a redraw; had is gone or hidden now (a
  // form hidden once its action was done: Retry, Cancel, Send answer) and nothing else took
  // focus: it goes to fallback rather than to <body>
  function settle(had, fallback) {
    if (!had) return;
    const now = document.activeElement;
    if (now && now !== document.body && now !== had) return;
    if (had.isConnected && had.getClientRects().length > 0) return;
    fallback.focus();
  }

  // invalid(fields, line) / valid(fields): fields marked as the ones the error in line is
  // about (aria-invalid, aria-describedby), so a screen reader going back to them hears it
  function invalid(fields, line) {
    for (const f of fields) {
      f.setAttribute("aria-invalid", "true");
      f.setAttribute("aria-describedby", line.id);
    }
  }
  function valid(fields) {
    for (const f of fields) {
      f.removeAttribute("aria-invalid");
      f.removeAttribute("aria-describedby");
    }
  }

  class ApiError extends Error {
    constructor(status, code, message, remedy) {
      super(message); this.status = status; this.code = code; this.remedy = remedy;
    }
  }

  const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

  // The page's timers (a panel's fetch a moment later, a retry, the stream's reconnect), by
  // key: one of each at a time, and clearBoard stops them all, so none runs for the session
  // or project the page has left.
  const timers = new Map();
  function later(key, fn, ms) {
    if (timers.has(key)) return;
    timers.set(key, setTimeout(() => { timers.delete(key); fn(); }, ms));
  }
  function stopTimers() {
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
  }

  // api(method, path[, body]) -> the answer's JSON; throws ApiError with the server's message.
  // A 429 pauses every request for its Retry-After; a GET is then asked again (3 times at most).
  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    // an answer for a page since cleared (signed out, another project) is never given to
    // the code that asked: it would draw the last session's project into the new one
    // (the server's branding is no session's: asked at load, its answer may come after the
    // sign-in page has cleared the page, and it is still the page's)
    const gen = path === "/v1/branding" ? null : state.gen;
    const gone = () => new Promise(() => {});
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    let r;
    for (let attempt = 0; ; attempt++) {
      // (again after each sleep: a request answered meanwhile may have pushed the pause on)
      for (let wait; (wait = state.pauseUntil - Date.now()) > 0;) await sleep(wait + 5);
      if (Date.now() < state.pauseUntil) stats.early++; // (the tests check it stays 0)
      if (gen !== null && gen !== state.gen) return gone();
      if (method === "GET" && path === "/v1/board") stats.board++;
      else if (method === "GET" && path.startsWith("/v1/cards/") && path.endsWith("/diff")) stats.diff++;
      else if (method === "GET" && path.startsWith("/v1/cards/")) stats.card++;
      else if (method === "GET" && path.startsWith("/v1/violations")) stats.violations++;
      else if (method === "GET" && path.startsWith("/v1/runs?")) stats.runs++;
      else if (method === "GET" && path.startsWith("/v1/sandboxes?")) stats.sandboxes++;
      else if (method === "GET" && path === "/v1/status") stats.view++;
      else if (method === "GET" && path === "/v1/bugfix") stats.bugfix++;
      else if (method === "GET" && /^\/v1\/users\/[^/]+\/keys/.test(path)) stats.keys++;
      else if (method === "GET" && path.startsWith("/v1/users?")) stats.users++;
      try {
        r = await fetch(scoped(path), { method, headers, credentials: "same-origin",
          body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (e) {
        // no answer at all (the server stopped, the network down): the browser says only
        // "Failed to fetch", which tells a person neither what happened nor what became of
        // what they sent
        if (gen !== null && gen !== state.gen) return gone();
        throw new ApiError(0, "unreachable", unreachable(method, path));
      }
      if (r.status !== 429) break;
      stats.limited++;
      const after = Number(r.headers.get("Retry-After"));
      state.pauseUntil = Date.now() + 1000 * (after > 0 ? Math.min(after, 60) : 1);
      if (method !== "GET" || attempt >= 2) break;
    }
    let doc = null;
    try { doc = await r.json(); } catch (e) { doc = null; }
    if (gen !== null && gen !== state.gen) return gone();
    if (!r.ok) {
      const err = (doc && doc.error) || {};
      throw new ApiError(r.status, err.code || "error",
        err.message ? boardWords(err.message) : ("the server answered " + r.status), err.remedy);
    }
    return doc;
  }

  // boardWords(message) -> the server's words for a person at this page: a remedy given as a
  // route or a command (POST /v1/runs/N/stop, orket resume N) is named by the buttons under
  // Runs that do the same, for someone who has no terminal
  function boardWords(message) {
    return String(message)
      .replace(/stop it \(POST \/v1\/runs\/(\d+)\/stop\)/g, "stop it (Stop on run $1, under Runs)")
      .replace(/continue it with 'orket resume (\d+)'/g, "continue it with Resume on run $1, under Runs");
  }

  // unreachable(method, path) -> what a request that got no answer says: the server cannot be
  // reached, and, for a write, that nothing was saved (a sign-in: that it did not sign in)
  function unreachable(method, path) {
    const why = "The server cannot be reached (is orket serve running?)";
    if (method === "GET") return why + ". Try again once it is back.";
    if (path === "/v1/session") return why + ": you are not signed in. Try again once it is back.";
    return why + ": nothing was saved. Try again once it is back.";
  }

  const isOperator = () => state.role === "operator" || state.role === "developer" || state.role === "admin";

  // The server's own routes (people, keys, sign-in, the projects) are not a project's.
  const SERVER_PATHS = ["/v1/session", "/v1/projects", "/v1/users", "/v1/me", "/v1/keys", "/v1/branding"];
  // scoped(path) -> the path in the chosen project (docs/teams.md): /v1/X is /v1/projects/P/X
  function scoped(path) {
    if (state.project === "default" || !path.startsWith("/v1/")) return path;
    if (SERVER_PATHS.some((p) => path === p || path.startsWith(p + "/") || path.startsWith(p + "?"))) return path;
    return "/v1/projects/" + encodeURIComponent(state.project) + path.slice(3);
  }

  // hashProject() -> the project the address names (#project=NAME), or undefined
  const hashProject = () => (location.hash.match(/^#project=([a-z][a-z0-9_-]*)$/) || [])[1];

  // The projects this person is a member of, in the switcher; the board shows the chosen
  // one (kept in the address's #project=NAME) with the person's role in it.
  async function loadProjects(doc) {
    let list = [];
    try { list = (await api("GET", "/v1/projects")).projects || []; } catch (e) { list = []; }
    // one the server serves only from its next start (changed) is no board to show yet
    list = list.filter((p) => !p.changed);
    if (list.length === 0 && doc.local) list = [{ name: "default", role: doc.role, default: true }];
    state.projects = list;
    const wanted = hashProject();
    const chosen = list.find((p) => p.name === wanted) || list[0];
    state.project = chosen ? chosen.name : "default";
    // a project the person is not a member of (or none) named: the address names the one shown
    if (chosen && wanted && wanted !== chosen.name) history.replaceState(null, "", "#project=" + chosen.name);
    state.role = chosen ? chosen.role : null;
    $("project").replaceChildren(...list.map((p) => el("option", { value: p.name, text: p.name + " · " + p.role })));
    $("project").value = state.project;
    $("project-box").hidden = list.length < 2;
    $("no-project").hidden = list.length > 0;
  }

  // clearBoard(): nothing of the project shown so far stays on the page, hidden or not: the
  // next person signing in at this browser, or another project, is shown only their own
  // (the pane kept the last card open, the panels their lists, until each was loaded again)
  function clearBoard() {
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
    stopTimers();
    state.gen++; // answers in flight are dropped (api)
    state.busy = false; // (a flush in flight never ends: its answer is dropped)
    state.wantEvents = false;
    state.after = state.store = null;
    // what was typed (a comment, an answer, a note) is not the next person's or project's to post
    for (const f of document.querySelectorAll("#app form, #people form")) f.reset();
    valid(document.querySelectorAll("#app [aria-invalid], #people [aria-invalid]"));
    $("grant-user").replaceChildren();
    $("grant-project").replaceChildren();
    state.selected = state.boardSig = state.cardSig = state.changeFor = null;
    state.cards = new Map();
    state.held = new Set();
    state.dirty.clear();
    state.said.clear();
    state.allKeys.clear();
    state.runStates.clear(); // (a run's id is its project's)
    state.statusRun = null;
    state.violationCounts = new Map();
    for (const id of ["tree", "columns", "create-parent", "fields", "approvals", "comments", "history", "change-commits",
      "change-files", "violation-list", "violation-rules", "sandbox-list", "view-notes", "view-list", "runs", "people-list"]) $(id).replaceChildren();
    for (const id of ["transcript", "change-diff", "change-summary", "detail-error", "move-error", "bug-status", "phase",
      "create-status", "run-status", "people-status", "announce"]) $(id).textContent = "";
    $("detail-title").textContent = "Card";
    delete $("detail").dataset.card;
    $("detail-body").hidden = $("transcript-box").hidden = $("change-box").hidden = true;
    $("detail-none").hidden = false;
    $("detail-none").textContent = "Choose a card on the board.";
    $("detail-none").classList.remove("error");
  }

  function showSignin(message, ok) {
    stopEvents();
    clearBoard();
    state.account = null;
    state.boardSig = state.cardSig = null;
    state.csrf = state.role = null;
    state.sandboxesShown = state.bugfixShown = state.violationsShown = state.viewShown = false;
    state.phases = new Map();
    state.pauseUntil = 0;
    state.projects = [];
    $("project").replaceChildren();
    $("app").hidden = true;
    $("who").hidden = $("signout").hidden = true;
    $("project-box").hidden = $("no-project").hidden = true;
    $("people").hidden = true;
    $("signin").hidden = false;
    // an error (the session ended) is said as one; signing out is no error: said politely
    showIn($("signin-error"), ok ? "" : message || "");
    showIn($("signin-status"), ok ? message : "");
    valid([$("user"), $("password"), $("key")]);
    // the form's first field, as it reads: name, password, then a key
    $("user").focus();
    // the provider's link, when the server has one (sign_in.oidc: docs/teams.md)
    api("GET", "/v1/sign-in").then((doc) => { $("signin-provider").hidden = !doc.oidc; }, () => {});
  }

  async function signedIn(doc) {
    // focus in the sign-in form (or nowhere, on load) goes to the board's heading once that
    // form is hidden: left there it fell to <body>; a switch of project keeps it where it is
    const from = document.activeElement;
    const arriving = !from || from === document.body || $("signin").contains(from);
    state.csrf = doc.csrf || null;
    state.account = doc;
    await loadProjects(doc);
    $("signin").hidden = true;
    $("app").hidden = !state.role;
    $("who").hidden = false;
    showIn($("who"), (doc.local ? "local use" : doc.user ? doc.user.name : (doc.key ? doc.key.name : "key")) + " · " + state.role);
    $("signout").hidden = !doc.csrf;
    // the people are a server admin's to see: another's ask was a 403 in the console each time
    if (doc.local || doc.role === "admin") loadPeople(); else $("people").hidden = true;
    if (arriving) (state.role ? $("board-title") : $("no-project")).focus();
    if (!state.role) return;
    for (const e of document.querySelectorAll(".operator")) e.hidden = !isOperator();
    $("answer-form").hidden = true;
    $("budget-form").hidden = true;
    state.streams = 0;
    // the stream is opened once the board is read, after the board's journal id (loadBoard)
    state.wantEvents = true;
    refresh();
    if (isOperator()) loadRuns();
  }

  // ---- the live journal ----------------------------------------------------------------

  function setLive(text, ok) {
    $("live").textContent = text;
    $("live").className = "live" + (ok ? " on" : "");
  }

  // startEvents(): the journal followed after the last id the page knows of (the board's
  // journal_id, or the last event's), so nothing written since the board was read is missed.
  // The EventSource reconnects to the same address, sending Last-Event-ID once it has been
  // given an event (which the server prefers to ?after=): every engine does both.
  function startEvents() {
    stopEvents();
    // ?store=: the store the id is of (the board's), kept in the address a reconnect uses:
    // a server now on another store (the project added again from another folder, or its
    // store restored from a backup, which gets a new id with its new journal) answers
    // with a reset, whatever its journal's length, rather than replay it from our id
    const q = [];
    if (state.after !== null) q.push("after=" + encodeURIComponent(state.after));
    if (state.store !== null) q.push("store=" + encodeURIComponent(state.store));
    const es = new EventSource(scoped("/v1/events") + (q.length ? "?" + q.join("&") : ""), { withCredentials: true });
    state.events = es;
    state.streamStore = state.store;
    // A reconnecting EventSource sends Last-Event-ID and the server replays what was missed;
    // a stream made anew (the page's own, after one closed) opens with ?after= the last id the
    // page holds, so the server replays what changed since and onEvent fetches just those
    // cards. Only a page with no id yet reads the whole board again; an id the server does
    // not know (another journal's) is answered with a reset, which reads it (below).
    // (anew: a safety net; the board is read before the first stream, so a later stream always
    // has an id until clearBoard, which starts the count again)
    const anew = state.streams++ > 0 && state.after === null;
    let first = true;
    es.onopen = () => {
      setLive("live", true);
      if (anew && first) { state.needBoard = true; schedule(); }
      first = false;
    };
    es.onerror = () => {
      setLive("reconnecting…", false);
      if (es.readyState === EventSource.CLOSED) {
        // refused outright (the session ended?): ask who we are, then try again
        stopEvents();
        api("GET", "/v1/session").then(() => later("events", startEvents, 2000),
          (e) => { if (e.status === 401) showSignin("Your session ended; sign in again."); else later("events", startEvents, 5000); });
      }
    };
    for (const k of KINDS) es.addEventListener(k, onEvent);
    // the id the page had is another journal's (the server restarted onto a restored store, or
    // the project was added again from another folder): the stream follows this one from its
    // end, and the board is read again
    es.addEventListener("reset", (ev) => {
      stats.resets++;
      noteId(ev);
      state.needBoard = true;
      schedule();
    });
  }

  // announce(key, text): a short line for screen readers (#announce, a polite status) of a card
  // moved (key: its id) or a run ended (key: "run:" + its id): the card pane and the runs list
  // are no live regions, so what changes in them is not read out again and again
  // (a replay or a busy run brings many moves at once: they are said once, a second later, as
  // one line, "N cards moved", after the runs that ended; clearBoard stops the timer and empties the line)
  function announce(key, text) {
    state.said.set(key, text);
    later("announce", () => {
      const runs = [], moves = [];
      for (const [k, v] of state.said) (k.startsWith("run:") ? runs : moves).push(v);
      state.said.clear();
      if (moves.length > 1) moves.splice(0, moves.length, moves.length + " cards moved");
      showIn($("announce"), [...runs, ...moves].join(" "));
    }, 1000);
  }

  // noteId(ev): the last journal id the page was given (a stream the page makes anew starts after it)
  function noteId(ev) {
    const n = Number(ev.lastEventId);
    if (ev.lastEventId !== "" && Number.isSafeInteger(n) && n >= 0) state.after = n;
  }

  // onEvent(ev): note what the journal's event changes; schedule() fetches it a moment later,
  // so a burst of events for one card costs one fetch of that card
  function onEvent(ev) {
    stats.events++;
    noteId(ev);
    let e;
    try { e = JSON.parse(ev.data); } catch (x) { return; }
    if (e.kind === "run_start" || e.kind === "run_end" || e.kind === "run_resumed") loadRuns();
    if (e.kind.startsWith("sandbox_")) loadSandboxes();
    if (VIEW_KINDS.has(e.kind)) loadView();
    if (e.kind.startsWith("bugfix_") || e.kind.startsWith("bug_")) loadBugfix();
    if (e.kind === "violation") loadViolations();
    // (a moment later: a replay may bring many commits of the open card, one diff fetch for them)
    if ((e.kind === "commit" || e.kind === "merge") && e.card && e.card === state.selected) {
      const id = e.card;
      later("change:" + id, () => loadChange(id), 200);
    }
    // (restore: the store was put back from a backup; no event says which cards changed)
    if (e.kind === "create" || e.kind === "import" || e.kind === "restore") state.needBoard = true;
    if (e.kind === "approval_requested" && e.card) state.held.add(e.card);
    if (e.kind === "transition" && e.card && e.data && typeof e.data.to === "string") announce(e.card, e.card + " moved to " + e.data.to.replace(/_/g, " "));
    if (e.card) {
      if (!state.cards.has(e.card)) state.needBoard = true;
      else if (TREE_KINDS.has(e.kind) || e.card === state.selected) state.dirty.add(e.card);
    }
    schedule();
  }

  function schedule() {
    if (state.timer || state.busy) return;
    if (!state.needBoard && state.dirty.size === 0) return;
    state.timer = setTimeout(flush, Math.max(150, state.pauseUntil - Date.now()));
  }

  // flush(): the board (when needed) or each changed card, once; then what came meanwhile
  async function flush() {
    state.timer = null;
    state.busy = true;
    // past CATCH_UP changed cards (a long outage's replay, or a burst) one board read costs
    // less than a card each, which at the key's rate (50/s) would take seconds and meet 429s
    if (!state.needBoard && state.dirty.size > CATCH_UP) state.needBoard = true;
    try {
      if (state.needBoard) {
        state.needBoard = false;
        state.dirty.clear();
        await loadBoard();
        if (state.selected) await showCard(state.selected, true);
      } else {
        const ids = [...state.dirty];
        state.dirty.clear();
        for (let i = 0; i < ids.length; i++) {
          try { await refreshCard(ids[i]); } catch (e) {
            for (const id of ids.slice(i)) state.dirty.add(id); // asked again after the pause
            throw e;
          }
        }
      }
    } catch (e) {
      if (e.status === 401) { showSignin("Your session ended; sign in again."); return; }
      // a failed fetch (still limited, or the server failing) is asked again, 2 s on at least
      if (state.dirty.size === 0) state.needBoard = true;
      state.pauseUntil = Math.max(state.pauseUntil, Date.now() + 2000);
    } finally {
      state.busy = false;
    }
    schedule();
  }

  function stopEvents() {
    if (state.events) state.events.close();
    state.events = null;
    setLive("offline", false);
  }

  // refresh(): the whole board again (on sign-in)
  function refresh() {
    state.needBoard = true;
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
    if (!state.busy) flush();
  }

  // loadBoard(): the tree, with the cards that wait on a held tool call as the board says
  // them (held: fetched a card at a time, 400 waiting cards took 5.7 s at each sign-in,
  // with live events held back behind them); the stream's events keep it right after
  async function loadBoard() {
    const board = await api("GET", "/v1/board");
    if (Number.isSafeInteger(board.journal_id)) state.after = board.journal_id;
    state.store = typeof board.store === "string" ? board.store : null;
    // (not while the stream's reopen waits: that timer opens it, and the replay is made once)
    if (state.wantEvents && !state.events && !timers.has("events")) startEvents();
    // a stream opened for another store (the board read on its reset): opened again for this
    // one, after the board's id, or each of its reconnects would be answered with a reset
    else if (state.events && state.streamStore !== state.store) startEvents();
    const cards = board.cards || [];
    state.cards = new Map(cards.map((c) => [c.id, c]));
    state.held = new Set((Array.isArray(board.held) ? board.held : [])
      .filter((id) => (state.cards.get(id) || {}).status === "waiting_for_developer"));
    renderBoard(cards);
    // the sandboxes once the board is shown (one request after another, not a burst at sign-in)
    if (!state.sandboxesShown) loadSandboxes();
    if (!state.viewShown) loadView();
    if (!state.bugfixShown) loadBugfix();
    if (!state.violationsShown) loadViolations();
  }

  // refreshCard(id): one card fetched again: its place in the tree, and the detail if open
  async function refreshCard(id) {
    let doc;
    try { doc = await api("GET", "/v1/cards/" + encodeURIComponent(id)); } catch (e) {
      if (e.status === 404) { state.needBoard = true; return; }
      throw e;
    }
    noteHeld(doc);
    const old = state.cards.get(id) || {};
    const c = Object.assign({}, old, doc.card);
    state.cards.set(id, c);
    const li = document.querySelector('#tree li[data-card="' + CSS.escape(id) + '"]');
    // moved under another parent (a move, an import): the tree drawn again from the cards
    // the page holds, the card in its new place (under a parent the page does not know
    // yet: the board read)
    if (li && (old.parent || null) !== (c.parent || null)) {
      if (c.parent && !state.cards.has(c.parent)) state.needBoard = true;
      else {
        state.cards = new Map(inCreationOrder([...state.cards.values()]).map((x) => [x.id, x]));
        renderBoard([...state.cards.values()]);
      }
    } else if (li) {
      const badge = li.querySelector(":scope > .status");
      if (badge) badge.replaceWith(statusBadge(c));
      const title = li.querySelector(":scope > .card-link > .card-title");
      if (title) showIn(title, c.summary || c.name || "");
      state.boardSig = null;
    } else state.needBoard = true;
    if (state.view === "columns") renderColumns();
    if (id === state.selected) renderCard(doc, true);
  }

  // noteHeld(doc): whether a card doc shows a tool call held for approval
  function noteHeld(doc) {
    const id = doc.card.id;
    if (pendingOf(doc).length > 0 && doc.card.status === "waiting_for_developer") state.held.add(id);
    else state.held.delete(id);
  }

  const pendingOf = (doc) => (doc.approvals || []).filter((a) => a.decision === null || a.decision === undefined);

  // ---- the tree -----------------------------------------------------------------------

  // A card waiting on a held tool call reads "waiting for approval", not its wait reason
  function statusBadge(card) {
    const held = card.status === "waiting_for_developer" && state.held.has(card.id);
    const b = el("span", { class: "status st-" + card.status, "data-status": card.status,
      text: held ? "waiting for approval" : card.status.replace(/_/g, " ") + (card.wait_reason ? " (" + card.wait_reason + ")" : "") });
    if (held) b.dataset.waiting = "approval";
    return b;
  }

  // inCreationOrder(cards): as the server orders siblings (by creation; ties as they were)
  function inCreationOrder(cards) {
    const at = (c) => c.created_at || "";
    return cards.slice().sort((a, b) => (at(a) < at(b) ? -1 : at(a) > at(b) ? 1 : 0));
  }

  // the roots' order on the server's board: rocks, then epics, then issues
  const ROOT_RANK = { rock: 0, epic: 1, issue: 2 };
  // a card's priority as the board and the new-card form name it
  const PRIORITY = { 3: "high", 2: "medium", 1: "low" };
  // chars(text) -> its characters as the server counts a limit (code points, not UTF-16 units)
  const chars = (text) => Array.from(text).length;

  // describe(li, where) -> li: its card's button described by the badges beside it (status,
  // violations, bug-fix phase) that are shown, so that a screen reader Tabbing down the board
  // hears "blocked (resource)" with the card, not only its id and title (each badge gets an
  // id of its view's, where: "tree" or "col"; the tree and the columns may both be in the page)
  function describe(li, where) {
    const open = li.querySelector(":scope > .card-link");
    if (!open) return li;
    const ids = [];
    for (const b of li.querySelectorAll(":scope > .status")) {
      if (b.hidden) continue;
      b.id = where + "-" + (b.classList.contains("violation-label") ? "rules" : b.classList.contains("phase-badge")
        ? "phase" : "status") + "-" + li.dataset.card;
      ids.push(b.id);
    }
    if (ids.length) open.setAttribute("aria-describedby", ids.join(" "));
    else open.removeAttribute("aria-describedby");
    return li;
  }

  // chosen(button, id): a card's button marked as the one the pane shows (aria-current: it
  // is not a toggle, pressing it again keeps it shown), and after it, for that card only,
  // a "Go to the card" button that takes focus to the pane: past the rest of the board in
  // one key, not a Tab per card (WCAG 2.4.1); on a phone the pane is under the board
  function chosen(open, id) {
    const next = open.nextElementSibling;
    if (next && next.classList.contains("to-pane")) next.remove();
    if (id !== state.selected) { open.removeAttribute("aria-current"); return; }
    open.setAttribute("aria-current", "true");
    open.after(el("button", { type: "button", class: "small skip to-pane", "data-key": "to-pane:" + id,
      text: "Go to " + id + "'s pane", onclick: () => toPane() }));
  }

  // toPane() / toBoard(): focus to the card pane's heading / back to the chosen card's button
  function toPane() {
    const h = $("detail-title");
    h.focus();
    h.scrollIntoView({ block: "nearest" });
  }
  function toBoard() {
    const view = state.view === "columns" ? "#columns" : "#tree";
    const b = state.selected && document.querySelector(view + ' [data-key="card:' + CSS.escape(state.selected) + '"]');
    (b || $("board-title")).focus();
  }

  function renderBoard(cards) {
    // drawn again only when it changed: focus and what is pressed stay put between events
    // (and which of them wait on a held call: the board read again may say so of another)
    const sig = JSON.stringify(cards) + [...state.held].sort().join(" ");
    if (sig === state.boardSig) return;
    state.boardSig = sig;
    const kids = new Map(), ids = new Set(cards.map((c) => c.id));
    const roots = [];
    for (const c of cards) {
      if (c.parent && ids.has(c.parent)) {
        if (!kids.has(c.parent)) kids.set(c.parent, []);
        kids.get(c.parent).push(c);
      } else roots.push(c);
    }
    // (as the board gave them, unless a card's refresh re-placed one: stable)
    roots.sort((a, b) => (ROOT_RANK[a.type] ?? 3) - (ROOT_RANK[b.type] ?? 3));
    function item(c) {
      const open = el("button", { type: "button", class: "card-link", "data-key": "card:" + c.id, onclick: () => select(c.id) },
        el("span", { class: "card-type", text: c.type }), el("span", { class: "card-id", text: c.id }),
        el("span", { class: "card-title", text: c.summary || c.name || "" }));
      const li = el("li", { "data-card": c.id, class: "card " + c.type }, open, statusBadge(c), violationLabel(c.id));
      chosen(open, c.id);
      if (c.type === "rock") {
        li.append(phaseBadge(c.id));
        if (isOperator()) li.append(el("button", { type: "button", class: "small file-bug", text: "File a bug",
          "aria-label": "File a bug under " + c.id, "data-key": "bug:" + c.id,
          onclick: () => Promise.resolve(state.selected !== c.id && select(c.id)).then(() => $("bug-title").focus()) }));
      }
      describe(li, "tree");
      const sub = kids.get(c.id);
      if (sub) li.append(el("ul", {}, ...sub.map(item)));
      return li;
    }
    // (a focused card's button is focused again in the new tree: a new card elsewhere threw it away)
    rebuild($("tree"), () => $("tree").replaceChildren(...roots.map(item)), $("board-title"));
    $("board-empty").hidden = cards.length > 0;
    renderColumns();
    fillParents(cards);
  }

  // ---- the board by status ------------------------------------------------------------

  // The columns every tracker has; a card's status picks its column (canceled and archived
  // cards are in none). Issues only: epics and rocks are the tree's.
  const COLUMNS = [["ready", "Ready", ["ready"]], ["in_progress", "In progress", ["in_progress"]],
    ["review", "Review", ["code_review", "ready_for_testing"]],
    ["waiting", "Blocked or waiting", ["blocked", "waiting_for_developer"]], ["done", "Done", ["done"]]];

  // renderColumns(): the issues of state.cards in their columns, when that view is shown
  // (called on every change the tree sees, so it is as live as the tree)
  function renderColumns() {
    if (state.view !== "columns") return;
    const issues = [...state.cards.values()].filter((c) => c.type === "issue");
    // (drawn again on every card's change: the focused card's button is focused again, in
    // its new column if it moved; a card that left the columns leaves focus on the heading)
    rebuild($("columns"), () => $("columns").replaceChildren(...COLUMNS.map(([key, title, statuses]) => {
      const mine = issues.filter((c) => statuses.includes(c.status));
      const list = el("ul", { class: "column-cards" }, ...mine.map((c) => {
        const open = el("button", { type: "button", class: "card-link", "data-key": "card:" + c.id, onclick: () => select(c.id) },
          el("span", { class: "card-id", text: c.id }), el("span", { class: "card-title", text: c.summary || c.name || "" }));
        const li = el("li", { "data-card": c.id, class: "card issue" }, open, statusBadge(c), violationLabel(c.id));
        chosen(open, c.id);
        return describe(li, "col");
      }));
      return el("section", { class: "column", "data-column": key, "aria-label": title },
        el("h3", {}, document.createTextNode(title + " "), el("span", { class: "count", text: String(mine.length) })), list);
    })), $("board-title"));
  }

  function setView(view) {
    state.view = view === "columns" ? "columns" : "tree";
    try { localStorage.setItem("orket.view", state.view); } catch (e) { /* private mode: not kept */ }
    $("view-tree").setAttribute("aria-pressed", String(state.view === "tree"));
    $("view-columns").setAttribute("aria-pressed", String(state.view === "columns"));
    $("tree").hidden = state.view !== "tree";
    $("columns").hidden = state.view !== "columns";
    renderColumns();
  }

  // ---- creating a card ----------------------------------------------------------------

  // retryable(card) -> whether POST /v1/cards/{id}/retry takes the card (orket.board's retry:
  // blocked, waiting, and handed in for testing, which the button left out)
  function retryable(c) {
    return c.status === "blocked" || c.status === "waiting_for_developer" || c.status === "ready_for_testing";
  }

  // createParents(cards) -> the cards a new card may go under: POST /v1/cards files an issue
  // under an epic that is not finished (orket.board's create); a rock or a finished epic,
  // offered before, was refused every time
  function createParents(cards) {
    return cards.filter((c) => c.type === "epic" && c.status !== "done" && c.status !== "canceled"
      && c.status !== "archived");
  }

  // fillParents(cards): what a new card may go under, keeping the choice
  function fillParents(cards) {
    const sel = $("create-parent"), keep = sel.value;
    const parents = createParents(cards);
    sel.replaceChildren(...parents.map((c) => el("option", { value: c.id,
      text: c.id + " (" + c.type + ")" + (c.summary || c.name ? ": " + (c.summary || c.name) : "") })));
    if (keep && parents.some((c) => c.id === keep)) sel.value = keep;
    $("create-box").hidden = !isOperator() || parents.length === 0;
  }

  // ---- policy violations -------------------------------------------------------------

  // loadViolations(): the newest violations again, a moment later (a turn's burst of
  // refusals costs one fetch); a failure other than the session's end asks again 2 s on
  function loadViolations() {
    later("violations", async () => {
      try {
        const doc = await api("GET", "/v1/violations?limit=50");
        state.violationsShown = true;
        renderViolations(doc);
      } catch (e) {
        if (e.status === 401) return;
        later("violations-again", loadViolations, Math.max(2000, state.pauseUntil - Date.now()));
      }
    }, 200);
  }

  // violationLabel(id): "N violations" beside a card the gate refused something for
  function violationLabel(id) {
    const n = state.violationCounts.get(id) || 0;
    const b = el("span", { class: "status rule violation-label", "data-violations": String(n),
      text: n + (n === 1 ? " violation" : " violations") });
    b.hidden = n === 0;
    return b;
  }

  function renderViolations(doc) {
    const list = doc.violations || [];
    state.violationCounts = new Map((doc.by_card || []).map((x) => [x.card, x.n]));
    for (const li of document.querySelectorAll("#tree li.card, #columns li.card")) {
      const old = li.querySelector(":scope > .violation-label");
      if (old) old.replaceWith(violationLabel(li.dataset.card));
      describe(li, li.closest("#columns") ? "col" : "tree");
    }
    $("violation-rules").replaceChildren(...(doc.by_rule || []).map((r) =>
      el("span", { class: "status rule", "data-rule": r.rule, text: r.rule + " · " + r.n })));
    rebuild($("violation-list"), () => $("violation-list").replaceChildren(...list.map((v) => {
      const li = el("li", { "data-violation": String(v.id), class: "violation" },
        el("span", { class: "status rule", text: v.rule }));
      if (v.card) li.append(el("button", { type: "button", class: "small violation-card", text: v.card,
        "data-key": "violation:" + v.id, onclick: () => select(v.card) }));
      li.append(el("span", { class: "meta", text: [v.seat, v.run ? "run " + v.run : null, v.turn ? "turn " + v.turn : null,
        v.created_at].filter(Boolean).join(" · ") }));
      if (v.reason) li.append(el("p", { class: "violation-reason", text: v.reason }));
      if (v.attempt) li.append(el("p", { class: "meta violation-attempt", text: "tried: " + clip(v.attempt, 300) }));
      if (v.remedy) li.append(el("p", { class: "meta", text: "fix: " + v.remedy }));
      return li;
    })), $("violations-title"));
    $("violations-empty").hidden = list.length > 0;
  }

  const clip = (t, n) => (t.length > n ? t.slice(0, n) + "…" : t);

  // ---- one card ---------------------------------------------------------------------

  function select(id) {
    state.selected = id;
    state.cardSig = null;
    for (const b of document.querySelectorAll(".card-link")) chosen(b, b.parentElement.dataset.card);
    $("transcript-box").hidden = true;
    $("bug-status").textContent = "";
    $("detail-error").textContent = $("move-error").textContent = ""; // the last card's error is not this one's
    $("change-box").hidden = true;
    state.changeFor = null;
    return showCard(id, false);
  }

  async function showCard(id, quiet) {
    let doc;
    try { doc = await api("GET", "/v1/cards/" + encodeURIComponent(id)); } catch (e) {
      // with no card shown yet the card's own error line is hidden with its body: said
      // where "Choose a card" stands
      if (!quiet && $("detail-body").hidden) {
        showIn($("detail-none"), "Card " + id + " could not be shown: " + e.message);
        $("detail-none").classList.add("error");
      } else if (!quiet) showIn($("detail-error"), e.message);
      return;
    }
    noteHeld(doc);
    renderCard(doc, quiet);
  }

  // an amount in micro-units of its currency (docs/cost.md), exact: integers, no floats;
  // as orket.cost.format writes it: no decimals for a whole amount in a currency with no
  // minor unit (its NO_MINOR: "12 JPY", not "12.00 JPY")
  function money(micros, currency) {
    const NO_MINOR = ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF",
      "XOF", "XPF"];
    const THOUSANDTHS = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let frac = String(micros % 1000000).padStart(6, "0").replace(/0+$/, "");
    // (orket.cost's NO_MINOR and THOUSANDTHS: ISO 4217's exponents 0 and 3)
    const least = NO_MINOR.includes(currency) ? 0 : THOUSANDTHS.includes(currency) ? 3 : 2;
    while (frac.length < least) frac += "0";
    return Math.floor(micros / 1000000) + (frac ? "." + frac : "") + " " + currency;
  }

  // the card's model calls (an epic's or a rock's: its cards' too): tokens by kind and,
  // when known, the cost
  function usageText(u) {
    if (!u || !u.calls) return null;
    let s = u.calls + (u.calls === 1 ? " call, " : " calls, ") + u.input + " prompt tokens" +
      (u.cached ? " (" + u.cached + " cached)" : "") + ", " + u.output + " output tokens";
    // counts taken from the text, not the provider's, as orket card marks them
    const est = u.estimated || 0;
    if (est > 0) s += est === u.calls ? " (estimated)" : " (" + est + (est === 1 ? " call's" : " calls'") + " estimated)";
    const cs = Object.keys(u.cost || {}).sort().map((c) => money(u.cost[c], c));
    if (cs.length) {
      s += ", cost " + cs.join(" + ");
      // as orket card says it (orket.cost usage_text): the cost leaves these calls out
      const unknown = u.calls - (u.priced || 0);
      if (unknown > 0) s += " (" + unknown + (unknown === 1 ? " call" : " calls") + " of unknown cost)";
    }
    return s;
  }

  // the same by the seat that made the calls, one line each, when more than one seat did
  // (orket card's lines under its model line: what review cost beside the work)
  function seatsNode(list) {
    if (!Array.isArray(list) || list.length < 2) return null;
    return el("ul", { class: "by-seat" }, ...list.map((t) => el("li", { text: t.seat + ": " + usageText(t) })));
  }

  function renderCard(doc, quiet) {
    const id = doc.card.id;
    if (state.selected !== id) return;
    const sig = JSON.stringify(doc);
    if (quiet && sig === state.cardSig) return; // unchanged: keep what is being typed
    state.cardSig = sig;
    // the control in use in the pane, which this redraw may hide (settle, at the end)
    const had = $("detail").contains(document.activeElement) ? document.activeElement : null;
    const c = doc.card;
    $("detail-none").hidden = true;
    $("detail-body").hidden = false;
    $("detail").dataset.card = c.id;
    showIn($("detail-title"), c.id + (c.summary || c.name ? ": " + (c.summary || c.name) : ""));
    const rows = [["Status", statusBadge(c)], ["Type", c.type], ["Parent", c.parent], ["Seat", c.seat],
      ["Worked by", c.worked_by], ["Model use", usageText(doc.usage)], ["By seat", seatsNode(doc.usage_by_seat)],
      ["Priority", PRIORITY[c.priority] || c.priority], ["Description", c.description],
      ["Requirements", c.requirements], ["Acceptance", c.acceptance], ["Note", c.note]];
    const dl = [];
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === "") continue;
      dl.push(el("dt", { text: k }), el("dd", {}, typeof v === "object" ? v : shown(String(v))));
    }
    $("fields").replaceChildren(...dl);
    $("rock-bugs").hidden = c.type !== "rock";
    $("bug-form").hidden = !(c.type === "rock" && isOperator());
    if (c.type === "rock") showIn($("phase"), phaseText(state.phases.get(c.id)));
    const li = document.querySelector('#tree li[data-card="' + CSS.escape(id) + '"] > .status');
    if (li) li.replaceWith(statusBadge(c));
    renderApprovals(c, doc.approvals || []);
    if (state.changeFor !== c.id) {
      state.changeFor = c.id;
      if (c.type === "issue" && doc.git && doc.git.branch) loadChange(c.id);
      else $("change-box").hidden = true;
    }
    // a card held on a tool call is decided (approve or deny), never answered or retried
    const held = pendingOf(doc).length > 0;
    const waiting = c.status === "waiting_for_developer";
    const closed = c.status === "done" || c.status === "canceled" || c.status === "archived";
    // a question is answered; a money budget's wait is approved, never answered with text
    // (docs/cost.md): any text approved it before, a "no" too
    $("answer-form").hidden = !(isOperator() && waiting && c.wait_reason === "input" && !held);
    $("budget-form").hidden = !(isOperator() && waiting && c.wait_reason === "budget" && !held);
    $("retry-button").parentElement.hidden = !(isOperator() && retryable(c) && !held);
    $("actions").hidden = !isOperator();
    $("cancel-form").hidden = closed;
    const to = $("move-to"), keep = to.value;
    to.replaceChildren(...STATUSES.filter((st) => st !== c.status).map((st) =>
      el("option", { value: st, text: st.replace(/_/g, " ") })));
    if (keep && keep !== c.status) to.value = keep;
    reasonFits();
    $("comments").replaceChildren(...(doc.comments || []).map((m) =>
      el("li", {}, el("span", { class: "meta", text: (m.author || "?") + " · " + (m.created_at || "") }),
        el("p", { text: m.body || "" }))));
    const runs = new Set();
    const items = (doc.history || []).map((h) => {
      if (h.run) runs.add(h.run);
      const d = h.data || {};
      const what = h.kind === "transition" ? (d.from + " → " + d.to) : h.kind;
      return el("li", {}, el("span", { class: "meta", text: (h.at || "") + " · " + (h.actor || "") }),
        shown(" " + what + (d.note ? ": " + d.note : "")));
    });
    const tr = [...runs].map((r) => el("button", { type: "button", class: "small", onclick: () => transcript(r),
      "data-key": "transcript:" + r, text: "Transcript of run " + r }));
    rebuild($("history"), () => $("history").replaceChildren(...items, ...tr.map((b) => el("li", { class: "runs" }, b))));
    settle(had, $("detail-title"));
  }

  // renderApprovals(card, list): the held calls, drawn again keeping a deny reason being
  // typed, its error and the focused button (rebuild); a refusal is said under its reason
  function renderApprovals(card, list) {
    const box = $("approvals");
    const pending = list.filter((a) => a.decision === null || a.decision === undefined);
    rebuild(box, () => box.replaceChildren(...(pending.length === 0 ? [] : [el("h3", { text: "Waiting for approval" }),
      ...pending.map((a) => approvalBox(card, a))])));
  }

  // clippedNote(a) -> the line saying a held call's arguments are cut here, its whole size
  // and where to read it whole | null. Arguments over 16 KiB are kept cut, as text ending
  // "...(clipped: N bytes in all; 'orket log RUN --full' shows the call whole)": what is
  // approved is the whole call, its tail too (docs/store.md).
  function clippedNote(a) {
    if (typeof a.arguments !== "string") return null;
    const m = /\.\.\.\(clipped: (\d+) bytes in all; '([^']+)' shows the call whole\)$/.exec(a.arguments);
    const size = m ? Number(m[1]).toLocaleString("en") + " bytes" : "over 16 KiB";
    const where = m ? m[2] : "orket log RUN --full";
    return el("p", { class: "clipped" }, el("strong", { text: "Only part of this call is shown. " }),
      shown("Its arguments are " + size + "; read them whole before approving: " + where +
        " (or the run's transcript)."));
  }

  function approvalBox(card, a) {
    const reasonId = "deny-reason-" + a.id, errorId = "deny-error-" + a.id;
    // a string is the stored text of arguments cut short: shown as it is, not quoted again
    const args = typeof a.arguments === "string" ? a.arguments : JSON.stringify(a.arguments);
    const div = el("div", { class: "approval", "data-approval": String(a.id) },
      el("p", {}, el("strong", { text: "#" + a.id + " " + a.tool }), shown(" " + args)));
    const cut = clippedNote(a);
    if (cut) div.append(cut);
    if (a.reason) div.append(el("p", { class: "meta", text: a.reason }));
    if (!isOperator()) return div;
    // each decision names the request drawn here: one asked for after the page was drawn
    // (another person decided this one, the model asked again) is never decided by it
    div.append(
      // (each box's buttons named by its request: two held calls' "Approve" are told apart, WCAG 2.4.6)
      el("button", { type: "button", class: "approve", text: "Approve", "aria-label": "Approve request #" + a.id + " (" + a.tool + ")",
        "data-key": "approve:" + a.id,
        onclick: () => act(card.id, "approve", { approval: a.id }, $(errorId)) }),
      el("label", { for: reasonId, text: "Reason to deny #" + a.id }),
      el("input", { id: reasonId, type: "text" }),
      el("button", { type: "button", class: "deny", text: "Deny", "aria-label": "Deny request #" + a.id + " (" + a.tool + ")",
        "data-key": "deny:" + a.id, onclick: () => {
        const input = $(reasonId), line = $(errorId);
        const reason = input.value.trim();
        if (!reason) {
          line.textContent = "Say why to deny it.";
          invalid([input], line);
          return;
        }
        act(card.id, "deny", { reason, approval: a.id }, line, [input]);
      } }),
      el("p", { id: errorId, class: "error", role: "alert" }));
    return div;
  }

  // act(id, action, body) -> whether it was done: a write to a card; the answer is the card
  // now, shown at once (the journal's events update the rest)
  // A refusal shows next to what was pressed (where: the form's own error line, else the
  // pane's), scrolled into view: a phone shows little of the pane at once.
  // fields: the ones a refusal is about, marked so (invalid) until the next try
  async function act(id, action, body, where, fields) {
    const line = where || $("detail-error");
    line.textContent = "";
    valid(fields || []);
    try {
      await api("POST", "/v1/cards/" + encodeURIComponent(id) + "/" + action, body);
      state.dirty.add(id);
      schedule();
      return true;
    } catch (e) {
      showIn(line, e.status === 429 ? "Too many requests; try again in a moment." : e.message);
      invalid(fields || [], line);
      line.scrollIntoView({ block: "nearest" });
      return false;
    }
  }

  // ---- a card's change ----------------------------------------------------------------

  // loadChange(id): what the card's branch changed against main, shown under its fields
  async function loadChange(id) {
    let doc;
    try { doc = await api("GET", "/v1/cards/" + encodeURIComponent(id) + "/diff"); } catch (e) {
      if (id === state.selected) $("change-box").hidden = true;
      return;
    }
    if (id !== state.selected) return;
    renderChange(doc);
  }

  const STATUS_WORD = { A: "added", D: "deleted", M: "modified", R: "renamed", T: "type changed" };
  const short = (x) => String(x || "").slice(0, 12);

  // a changed file's name as the workspace panel shows one: a newline, a tab, a control or an
  // invisible character written as $'...' with \xHH, not folded into a space by the list's CSS
  const changePath = (p) => (UNSHOWN.test(p) && !hasBidi(p) ? shellWord(p) : p);

  function renderChange(doc) {
    const files = doc.files || [];
    let adds = 0, dels = 0;
    for (const f of files) { adds += f.additions || 0; dels += f.deletions || 0; }
    $("change-summary").textContent = (doc.changed ?? files.length) + (doc.changed === 1 ? " file" : " files") +
      " changed against main (since " + short(doc.base) + ") · +" + adds + " −" + dels +
      (doc.merged ? " · merged into main" : "") + (doc.truncated ? " · cut short: not every file or diff is shown" : "");
    $("change-commits").replaceChildren(...(doc.commits || []).map((c) => el("li", { class: "meta", "data-commit": c.id },
      el("code", { text: short(c.id) }), shown(" turn " + c.turn + (c.run ? " · run " + c.run : "") +
        (c.seat ? " · " + c.seat : "")))));
    $("change-files").replaceChildren(...files.map((f) => {
      const li = el("li", { "data-path": f.path, "data-status": f.status },
        el("span", { class: "file-status", text: STATUS_WORD[f.status] || f.status }),
        el("code", { text: (f.old_path ? changePath(f.old_path) + " → " : "") + changePath(f.path) }));
      // a name that holds bidi controls is not what it would look like: said, beside the marks
      if (hasBidi(f.path) || hasBidi(f.old_path)) li.append(el("span", { class: "bidi-warning",
        text: "its name holds characters that reorder text (marked ⟨U+…⟩): it is not what it would look like" }));
      // two names written apart (é as one character, or e and a combining accent) look the same
      else if (f.path !== f.path.normalize("NFC") || (f.old_path && f.old_path !== f.old_path.normalize("NFC")))
        li.append(el("span", { class: "bidi-warning",
          text: "its name is written with combining characters (not NFC): a file whose name looks the same may be another" }));
      if (f.binary) li.append(el("span", { class: "meta", text: "binary: not shown" }));
      else if (f.omitted) li.append(el("span", { class: "meta", text: "+" + f.additions + " −" + f.deletions + " · too large to show" }));
      else li.append(el("span", { class: "meta", text: "+" + f.additions + " −" + f.deletions }));
      return li;
    }));
    const text = files.filter((f) => f.patch).map((f) => f.patch).join("");
    showIn($("change-diff"), text);
    $("change-diff").hidden = text === "";
    $("change-box").hidden = false;
  }

  // panelLoader(path, flag, render[, again]) -> load(): a panel's fetch of path, a moment
  // after it is asked for, so a burst of events costs one fetch; state[flag] is set once it
  // was shown. A failure other than the session's end is asked again 2 s on (or after a
  // 429's pause), when again(error) says so (by default, always).
  function panelLoader(path, flag, render, again) {
    const key = Symbol(path);
    const load = () => {
      later(key, async () => {
        try {
          const doc = await api("GET", path);
          state[flag] = true;
          render(doc);
        } catch (e) {
          if (e.status === 401 || (again && !again(e))) return;
          later(Symbol(path), load, Math.max(2000, state.pauseUntil - Date.now()));
        }
      }, 200);
    };
    return load;
  }

  // ---- sandboxes ----------------------------------------------------------------------

  const LIVE_SANDBOX = new Set(["starting", "healthy", "unhealthy"]);
  const ENDED_SHOWN = 3;
  // the list again on the journal's sandbox events (a deploy's burst of events costs one fetch)
  const loadSandboxes = panelLoader("/v1/sandboxes?all=1", "sandboxesShown", (doc) => renderSandboxes(doc.sandboxes || []));

  // renderSandboxes(list): the live ones with their health and a link that opens the app on
  // its own origin (the server hands it a single-use ticket), then the last few that ended
  function renderSandboxes(list) {
    const live = list.filter((x) => LIVE_SANDBOX.has(x.status));
    const ended = list.filter((x) => !LIVE_SANDBOX.has(x.status)).slice(0, ENDED_SHOWN);
    rebuild($("sandbox-list"), () => $("sandbox-list").replaceChildren(...live.concat(ended).map((x) => {
      const id = String(x.id);
      const since = x.status === "healthy" || x.status === "unhealthy" ? x.healthy_at || x.started_at
        : LIVE_SANDBOX.has(x.status) ? x.started_at : x.ended_at;
      const li = el("li", { "data-sandbox": id, class: "sandbox" },
        el("span", { class: "status sb-" + x.status, "data-status": x.status, text: x.status }),
        el("span", { class: "sandbox-name", text: "Sandbox " + id + (x.target ? " · " + x.target : "") }),
        el("span", { class: "meta", text: "port " + x.port + (since ? " · since " + since : "") }));
      if (x.status === "healthy" || x.status === "unhealthy") {
        // an app on its own origin is the default project's; another project's goes through its proxy
        const app = state.project === "default" ? "/open" : "/app/";
        li.append(el("a", { class: "sandbox-app", href: scoped("/v1/sandboxes/" + encodeURIComponent(id) + app),
          target: "_blank", rel: "noopener noreferrer", text: "Open the app", "data-key": "app:" + id }));
      }
      if (x.detail) li.append(el("span", { class: "sandbox-detail meta", text: x.detail }));
      return li;
    })), $("sandboxes-title"));
    $("sandboxes-empty").hidden = list.length > 0;
  }

  // ---- main's view: a person's files in workspace/ (docs/git.md, *main's view*) ---------

  // Only a merge moves main, so only a merge changes what the view diverges in
  const VIEW_KINDS = new Set(["merge", "merge_remote"]);
  // a project whose workspace is not a repository (404) has no view: the hint stays
  const loadView = panelLoader("/v1/status", "viewShown", (doc) => renderView(doc),
    (e) => e.status >= 500 || e.status === 429);

  // shellWord(w): one argument as a person's shell reads it
  // A control, a C1 control or an invisible format character in a word (an agent chose the
  // name) is written in bash's $'...' as the bytes of its UTF-8, \xHH: shown as it is, the
  // pasted command would name another file, or none.
  const UNSHOWN = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\u{e0000}-\u{e007f}]/u;
  function shellWord(w) {
    if (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(w)) return w;
    if (!UNSHOWN.test(w)) return "'" + w.replace(/'/g, "'\\''") + "'";
    const enc = new TextEncoder();
    let out = "$'";
    for (const ch of w) {
      if (ch === "\\" || ch === "'") out += "\\" + ch;
      else if (UNSHOWN.test(ch)) for (const b of enc.encode(ch)) out += "\\x" + b.toString(16).padStart(2, "0");
      else out += ch;
    }
    return out + "'";
  }

  function sideText(x) {
    if (!x || x.kind === "none") return "nothing";
    return x.kind + (x.id ? " " + x.id.slice(0, 12) : "") + (x.size !== undefined ? " (" + x.size + " bytes)" : "");
  }

  function commandsBlock(label, cls, list, none) {
    const cmds = (list || []).map((argv) => el("code", { text: argv.map(shellWord).join(" ") }));
    return el("div", { class: "view-cmds " + cls }, el("span", { class: "meta", text: label }),
      ...(cmds.length ? cmds : [el("span", { class: "meta", text: none })]));
  }

  // renderView(list): each path where workspace/ holds the person's version, both versions,
  // and the commands that take main's or keep theirs (run from the project's directory)
  // A name the JSON could not carry as it is (bytes that are not UTF-8 come as U+FFFD) has no
  // commands here: pasted, they would name another file.
  const NOT_UTF8 = "its name is not valid UTF-8 here: 'orket status' in a terminal prints its commands";
  // viewNotes(doc): what `orket status` says above the paths (lua/orket/cmd/status.lua):
  // the view behind main or waiting on a person's branch, a git merge of theirs under way,
  // a move of main by someone else. Without them the hint said nothing differs while it did.
  function viewNotes(doc) {
    const notes = [], b = doc.behind;
    if (b && b.waits) notes.push(b.reason + "; " + b.catch_up);
    else if (b && b.unfollowed) notes.push("workspace/ is behind main: " + b.reason + "; " + b.catch_up);
    else if (b) notes.push("workspace/ is behind main: its refresh failed (" + b.reason + "); " + b.catch_up);
    if (b && !b.waits && !(doc.diverged || []).length) notes.push("Nothing of yours is recorded where main changed before that.");
    if (doc.merging) notes.push(doc.merging);
    const out = notes.map((t) => el("p", { class: "view-note", text: t }));
    const m = doc.moved;
    if (m) out.push(el("div", { class: "view-note view-moved" },
      el("p", { text: "main was moved by someone other than Orket (a reset, amend, rebase or commit on another base) from "
        + (m.from || "").slice(0, 12) + " to " + (m.to || "").slice(0, 12) + ": where Orket's merges since changed what that "
        + "move changed, workspace/ keeps what it had; those paths are among the ones listed below" }),
      commandsBlock("Take main's for every listed path:", "take-main", m.take_main),
      commandsBlock("Keep yours for every listed path:", "keep-view", m.keep_view)));
    return out;
  }

  // yoursText(d): the person's side, and where it sits when that is on the way to the path
  function yoursText(d) {
    const at = d.view && d.view.at;
    return "yours: " + sideText(d.view) + (at ? " at " + (UNSHOWN.test(at) ? shellWord(at) : at) + ", in the way" : "");
  }

  function renderView(doc) {
    const list = doc.diverged || [];
    $("view-notes").replaceChildren(...viewNotes(doc));
    $("view-list").replaceChildren(...list.map((d) => el("li", { class: "view-path", "data-path": d.path },
      el("div", { class: "view-name", text: "workspace/" + (UNSHOWN.test(d.path) ? shellWord(d.path) : d.path) }),
      el("div", { class: "view-side view-main", text: "main has: " + sideText(d.main) }),
      el("div", { class: "view-side view-yours", text: yoursText(d) }),
      ...(d.path.includes("\ufffd") ? [el("div", { class: "view-cmds meta", text: NOT_UTF8 })] : [
        commandsBlock("Take main's version:", "take-main", d.take_main),
        commandsBlock("Keep yours (commits it to main):", "keep-view", d.keep_view,
          "none: git commits no FIFO, socket or device"),
        ...(d.keep_warning ? [el("div", { class: "view-warning", text: "Keeping yours: " + d.keep_warning })] : [])]))));
    // "nothing differs" only when that is so: not while the view is behind or waits
    $("view-empty").hidden = list.length > 0 || !!doc.behind;
  }

  // ---- bug-fix phases ----------------------------------------------------------------

  // the phases again on the bug-fix events (a tick's burst of events costs one fetch)
  const loadBugfix = panelLoader("/v1/bugfix", "bugfixShown", (doc) => renderPhases(doc.phases || []));

  // phaseText(p): a rock's phase in a line
  function phaseText(p) {
    if (!p) return "No bug-fix phase: it opens when the rock is done.";
    const bugs = (p.bugs ?? 0) + (p.bugs === 1 ? " bug" : " bugs") + (p.open_bugs !== undefined ? " (" + p.open_bugs + " open)" : "");
    if (p.status === "ended") {
      return "Bug-fix phase ended " + (p.ended_at || "") + (p.reason ? " (" + p.reason + ")" : "") + " · " + bugs +
        (p.next_rock ? " · open bugs moved to " + p.next_rock : "");
    }
    const num = (x) => String(Math.round((Number(x) || 0) * 100) / 100);
    // an end that has passed is said so, as orket bugfix status says it (the next tick closes
    // the phase): "ends" and a time gone by read as a phase still running
    const end = p.ends_at ? (p.end_passed ? " · ended " + p.ends_at + (p.end_reason ? " (" + p.end_reason + ")" : "") +
      "; the next tick closes the phase" : " · ends " + p.ends_at) : "";
    return "Bug-fix phase open · day " + (p.day ?? "?") + " · " + bugs + " · " + num(p.rate) +
      " in the last 24 h · " + num(p.bugs_per_day) + " a day" + end + (p.extended ? " (extended)" : "");
  }

  function phaseBadge(rock) {
    const p = state.phases.get(rock);
    const b = el("span", { class: "phase-badge status", "data-phase": p ? p.status : "none",
      text: p ? (p.status === "open" ? "bug-fix day " + (p.day ?? "?") + " · " + (p.bugs ?? 0) + (p.bugs === 1 ? " bug" : " bugs") : "bug-fix ended") : "" });
    b.hidden = !p;
    return b;
  }

  // renderPhases(list): each rock's phase in the tree and, for the open rock, in its pane
  function renderPhases(list) {
    state.phases = new Map(list.map((p) => [p.rock, p]));
    for (const li of document.querySelectorAll("#tree li.card.rock")) {
      const old = li.querySelector(":scope > .phase-badge");
      if (old) old.replaceWith(phaseBadge(li.dataset.card));
      describe(li, "tree");
    }
    const open = state.cards.get(state.selected);
    if (open && open.type === "rock") showIn($("phase"), phaseText(state.phases.get(open.id)));
  }

  // ---- runs ---------------------------------------------------------------------------

  function loadRuns() {
    if (!isOperator()) return;
    later("runs", async () => {
      try {
        const doc = await api("GET", "/v1/runs?limit=10");
        renderRuns(doc.runs || []);
      } catch (e) { /* the next run event asks again */ }
    }, 200);
  }

  // runSaid(text, error): the runs' status line, its text and its look set together, so
  // that no refusal's red outlives it ("starting…" after a refused start)
  function runSaid(text, error) {
    showIn($("run-status"), text);
    $("run-status").className = error ? "error" : "";
  }

  // startRun(ev): the run form's submit, POST /v1/runs
  async function startRun(ev) {
    ev.preventDefault();
    const body = { concurrency: Number($("run-concurrency").value) || 1 };
    if ($("run-target").value.trim()) body.target = $("run-target").value.trim();
    if ($("run-model").value.trim()) body.model = $("run-model").value.trim();
    runSaid("starting…");
    try {
      const doc = await api("POST", "/v1/runs", body);
      const run = doc.run || {};
      runSaid("Run " + (run.id ?? "") + " started" + (run.state ? " (" + run.state + ")" : "") + ".");
      loadRuns();
      return run;
    } catch (e) {
      // shown as the other forms show their errors (the message names the field)
      runSaid(e.status === 429 ? "Too many requests; try again in a moment." : e.message, true);
      return e;
    }
  }

  // The run form's fields an error may be about: marked so (aria-invalid, tied to the status
  // line), as the other forms mark theirs. The server names its field ("body.model: ..."),
  // or it is the target no card has
  const RUN_FIELDS = { target: "run-target", model: "run-model", concurrency: "run-concurrency" };
  async function submitRun(ev) {
    const fields = Object.values(RUN_FIELDS).map($);
    valid(fields);
    const r = await startRun(ev);
    if (r instanceof Error) {
      const named = /^body\.(\w+)/.exec(r.message || "");
      const id = named ? RUN_FIELDS[named[1]] : r.code === "not_found" && /^no card /.test(r.message || "") ? "run-target" : null;
      if (id) invalid([$(id)], $("run-status"));
    } else if (r && r.id !== undefined) state.statusRun = r.id;
  }

  // runEnded(runs): a run that has ended is said with how it ended: the one the status line
  // said started (or resumed), there, not "(running)" beside a list that says "failed"; any
  // other seen going, in #announce (the runs list is no live region; WCAG 4.1.3)
  function runEnded(runs) {
    const going = (st) => st === "running" || st === "queued";
    for (const r of runs) {
      const was = state.runStates.get(r.id);
      state.runStates.set(r.id, r.state);
      if (going(r.state)) continue;
      const line = "Run " + r.id + (r.target ? " (" + r.target + ")" : "") + " ended: " + r.state + ".";
      // (the status line is a polite live region itself: the run started here is said there once)
      if (r.id === state.statusRun) {
        state.statusRun = null;
        runSaid(line);
      } else if (was !== undefined && going(was)) announce("run:" + r.id, line);
    }
  }

  function renderRuns(runs) {
    runEnded(runs);
    rebuild($("runs"), () => $("runs").replaceChildren(...runs.map((r) => {
      const li = el("li", { "data-run": String(r.id) },
        el("span", { text: "Run " + r.id + (r.target ? " · " + r.target : "") + " · " }),
        el("span", { class: "run-state", text: r.state }));
      const runAct = (what) => async () => {
        runSaid("");
        try {
          await api("POST", "/v1/runs/" + r.id + "/" + what);
          runSaid("Run " + r.id + (what === "stop" ? " stopping." : " resumed."));
          state.statusRun = r.id; // (its end is said on that line)
          state.runStates.set(r.id, "running");
        } catch (e) { runSaid(e.message, true); }
        loadRuns();
      };
      if (r.state === "running" && r.live) li.append(el("button", { type: "button", class: "small run-stop", text: "Stop",
        "aria-label": "Stop run " + r.id, "data-key": "stop:" + r.id, onclick: runAct("stop") }));
      if (r.state !== "running" && r.state !== "done") li.append(el("button", { type: "button", class: "small run-resume",
        text: "Resume", "aria-label": "Resume run " + r.id, "data-key": "resume:" + r.id, onclick: runAct("resume") }));
      return li;
    })), $("run-title"));
  }

  // The orket.log/1 document (what `orket log RUN --json` prints) as text: one line per
  // journal event, a turn's answer and a tool call's result under it. Set as text, never HTML.
  function transcriptText(doc) {
    if (!doc || !Array.isArray(doc.events)) return JSON.stringify(doc, null, 2);
    const clip = (v, n) => { const t = typeof v === "string" ? v : JSON.stringify(v); return t.length > n ? t.slice(0, n) + "…" : t; };
    const out = [];
    for (const ev of doc.events) {
      out.push("#" + ev.id + " " + (ev.at || "") + " " + ev.kind + (ev.card ? " " + ev.card : "") + (ev.actor ? " (" + ev.actor + ")" : ""));
      if (ev.turn) {
        const msg = ev.turn.response;
        out.push("    " + (ev.turn.model || "") + " step " + (ev.turn.step ?? "") + ", tokens " +
          (ev.turn.prompt_tokens ?? "?") + "/" + (ev.turn.completion_tokens ?? "?"));
        if (msg && msg.content) out.push("    " + clip(msg.content, 2000).replace(/\n/g, "\n    "));
        if (msg && Array.isArray(msg.tool_calls)) for (const c of msg.tool_calls) out.push("    → " + c.name + " " + clip(c.arguments || c.raw_arguments || {}, 500));
      } else if (ev.result !== undefined && ev.result !== null) {
        out.push("    = " + clip(ev.result, 1000));
      } else if (ev.data && typeof ev.data === "object" && Object.keys(ev.data).length) {
        out.push("    " + clip(ev.data, 500));
      }
    }
    return out.join("\n") || "(no events)";
  }

  const TRANSCRIPT_PAGES = 8;

  async function transcript(run) {
    $("transcript-box").hidden = false;
    $("transcript-title").textContent = "Transcript of run " + run;
    $("transcript").textContent = "loading…";
    try {
      // a page of the run's events at a time (each text cut past the server's field_max):
      // the pages followed up to TRANSCRIPT_PAGES, the rest said to be there
      const base = "/v1/runs/" + encodeURIComponent(run) + "/transcript";
      let doc = await api("GET", base);
      const events = Array.isArray(doc && doc.events) ? [...doc.events] : null;
      for (let pages = 1; events && doc.next != null && pages < TRANSCRIPT_PAGES; pages++) {
        doc = await api("GET", base + "?after=" + encodeURIComponent(doc.next));
        if (Array.isArray(doc.events)) events.push(...doc.events);
      }
      let text = transcriptText(events ? { ...doc, events } : doc);
      if (events && doc.next != null) text += "\n… more events after #" + doc.next + ": orket log " + run + " on the server shows them";
      showIn($("transcript"), text);
    } catch (e) {
      showIn($("transcript"), e.message);
    }
  }

  // ---- forms --------------------------------------------------------------------------

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("signin-error").textContent = $("signin-status").textContent = "";
    const fields = [$("user"), $("password"), $("key")];
    valid(fields);
    // a person's name and password, else an API key
    const user = $("user").value.trim();
    const body = user ? { user, password: $("password").value } : { key: $("key").value.trim() };
    // what is missing said in people's words before asking (the server's schema check said
    // "body.key: string of 0 characters is shorter than the minimum of 1 character")
    const missing = user ? (body.password ? null : [$("password"), "Enter your password."])
      : body.key ? null : [$("user"), "Enter your name and password, or an API key."];
    if (missing) {
      showIn($("signin-error"), missing[1]);
      invalid([missing[0]], $("signin-error"));
      missing[0].focus();
      return;
    }
    try {
      const doc = await api("POST", "/v1/session", body);
      $("key").value = "";
      $("password").value = "";
      signedIn(doc);
    } catch (e) {
      // what happened, then what to do (a refused sign-in's remedy is written for the person)
      showIn($("signin-error"), e.message + (e.remedy ? ". " + e.remedy : ""));
      if (e.status === 401 || e.status === 400) invalid(user ? fields.slice(0, 2) : [fields[2]], $("signin-error"));
    }
  });

  // ---- people (the server's admins: docs/teams.md) -------------------------------------

  // loadPeople(): the people with their projects, roles and keys, when this is an admin
  // (anyone else is refused, and the panel stays hidden)
  async function loadPeople() {
    let doc;
    const users = [];
    // a page at a time (next: the ?after= of the one that follows), every page shown
    for (let after = null; ;) {
      const path = "/v1/users?limit=200" + (after === null ? "" : "&after=" + encodeURIComponent(after));
      try { doc = await api("GET", path); } catch (e) { $("people").hidden = true; return; }
      users.push(...(doc.users || []));
      if (typeof doc.next !== "string" || doc.next === after) break;
      after = doc.next;
    }
    $("people").hidden = false;
    // (drawn again after each change made in it: the button pressed stays focused when it
    // is still there, Disable become Enable; else the panel's heading)
    rebuild($("people-list"), () => $("people-list").replaceChildren(...users.map(personRow)), $("people-title"));
    $("grant-user").replaceChildren(...users.map((u) => el("option", { value: u.name, text: u.name })));
    $("grant-project").replaceChildren(...(doc.projects || []).map((p) => el("option", { value: p, text: p })));
  }

  // peopleSaid(text, error): the people panel's status line, its text and its look set
  // together, as the other panels show a refusal (red, the error style) and no red outlives it
  function peopleSaid(text, error) {
    showIn($("people-status"), text);
    $("people-status").className = error ? "error" : "hint";
  }

  // peopleRefused(e): a refusal (403, 409, ...) said in the people panel as the other forms say theirs
  function peopleRefused(e) {
    peopleSaid(e.status === 429 ? "Too many requests; try again in a moment." : e.message, true);
  }

  // one change, then the list again; its refusal said in the panel (returned: null if done). then(doc):
  // what the change's answer says of state the list does not hold (a shown person's every key)
  async function peopleChange(method, path, body, done, then) {
    peopleSaid("");
    let refusal = null;
    try {
      const doc = await api(method, path, body);
      if (then) then(doc);
      peopleSaid(done);
    } catch (e) {
      peopleRefused(e);
      refusal = e;
    }
    loadPeople();
    return refusal;
  }

  // peopleFields(e, fields, taken): the field a refusal e is about marked so, tied to the panel's
  // status line, the others not (fields: the body's field -> its element, as the server names
  // it, "body.password: ..."; taken: the field a 409, a name taken, is about)
  function peopleFields(e, fields, taken) {
    valid(Object.values(fields));
    if (!e) return;
    const named = /^body\.(\w+)/.exec(e.message || "");
    const f = named ? fields[named[1]] : e.status === 409 ? taken : null;
    if (f) invalid([f], $("people-status"));
  }

  // keysOf(name) -> every key of the person, a page at a time (as loadPeople pages the people)
  async function keysOf(name) {
    const keys = [];
    for (let after = null; ;) {
      const doc = await api("GET", "/v1/users/" + encodeURIComponent(name) + "/keys?limit=200"
        + (after === null ? "" : "&after=" + encodeURIComponent(after)));
      keys.push(...(doc.keys || []));
      if (typeof doc.next !== "string" || doc.next === after) break;
      after = doc.next;
    }
    return keys;
  }

  const counted = (n, what) => n + " " + what + (n === 1 ? "" : "s");

  // sameKeys(keys, u) -> whether keys (every key of u's, as read before) are still theirs as
  // GET /v1/users counts them now: as many, as many live. A key is never deleted nor made
  // live again (orket.store.keys: an insert, a revoke), so one made elsewhere (another page,
  // the command) raises key_count and one revoked elsewhere lowers live_key_count, and the
  // keys are read again; a revoke made here is applied to them from its answer (revoked)
  function sameKeys(keys, u) {
    return keys.length === u.key_count && keys.filter((k) => !k.revoked_at).length === u.live_key_count;
  }

  // revoked(name, doc): the key doc says was revoked, marked so among the person's every
  // key as read (their time is the server's; the page shows only that it was)
  function revoked(name, doc) {
    const k = (state.allKeys.get(name) || []).find((x) => x.id === doc.id);
    if (k && !k.revoked_at) k.revoked_at = "revoked";
  }

  // showKeys(u, keyList, live, rest, liveRest): the live keys given shown, each with Revoke,
  // then what is not shown said truly: rest, how many keys of theirs are not, liveRest of
  // them live; and, when some live ones are not, a button that shows every key of theirs
  // (GET /v1/users gives a few: a person's 6th live key must be as revocable as the 1st)
  function showKeys(u, keyList, live, rest, liveRest) {
    const who = "/v1/users/" + encodeURIComponent(u.name);
    keyList.replaceChildren(...live.map((k) => el("li", { "data-key": k.id },
      el("span", { text: k.name + " · " + k.role + " " }),
      el("button", { type: "button", class: "small link", text: "Revoke", "aria-label": "Revoke " + u.name + "'s key " + k.name,
        "data-key": "revoke:" + k.id,
        onclick: () => peopleChange("DELETE", who + "/keys/" + encodeURIComponent(k.id), undefined,
          "revoked " + k.name, (doc) => revoked(u.name, doc)) }))));
    if (rest <= 0) return;
    const more = el("li", { class: "more" }, el("span", { text: liveRest > 0
      ? counted(rest, "key") + " not shown (" + liveRest + " live) "
      : counted(rest, "revoked key") + " not shown" }));
    if (liveRest > 0) {
      more.append(el("button", { type: "button", class: "small link", text: "Show all keys",
        "aria-label": "Show all keys of " + u.name, "data-key": "all-keys:" + u.name,
        onclick: () => { state.allKeys.set(u.name, null); showAllKeys(u, keyList); } }));
    }
    keyList.append(more);
  }

  // showAllKeys(u, keyList): every live key of the person, from their keys' listing read
  // once and kept, with the wish, until sign-out or another project is chosen: each change
  // in the panel redraws the page, and a person's keys may be thousands of pages' worth.
  // Read again only when GET /v1/users says their keys are no longer those read (sameKeys)
  async function showAllKeys(u, keyList) {
    let keys = state.allKeys.get(u.name);
    if (!keys || !sameKeys(keys, u)) {
      try { keys = await keysOf(u.name); } catch (e) {
        peopleRefused(e);
        return;
      }
      if (!state.allKeys.has(u.name)) return; // the wish cleared meanwhile (signed out, another project)
      state.allKeys.set(u.name, keys);
    }
    const live = keys.filter((k) => !k.revoked_at);
    rebuild(keyList, () => showKeys(u, keyList, live, keys.length - live.length, 0), $("people-title"));
  }

  function personRow(u) {
    const who = "/v1/users/" + encodeURIComponent(u.name);
    const projects = el("ul", { class: "plain" }, ...u.projects.map((p) => el("li", { "data-project": p.name },
      el("span", { text: p.name + " · " + p.role + " " }),
      el("button", { type: "button", class: "small link", text: "Remove", "aria-label": "Remove " + u.name + " from " + p.name,
        "data-key": "remove:" + u.name + "/" + p.name,
        onclick: () => peopleChange("DELETE", who + "/projects/" + encodeURIComponent(p.name), undefined,
          u.name + " is no longer in " + p.name) }))));
    // GET /v1/users gives a person's first keys (those not revoked first) and how many
    // they have, live and in all: the live ones of those shown, and what is not said
    const live = u.first_keys.filter((k) => !k.revoked_at);
    const keyList = el("ul", { class: "plain" });
    showKeys(u, keyList, live, u.key_count - live.length, u.live_key_count - live.length);
    if (state.allKeys.has(u.name) && u.live_key_count > live.length) showAllKeys(u, keyList);
    const disabled = u.disabled_at !== null && u.disabled_at !== undefined;
    const toggle = el("button", { type: "button", class: "small", text: disabled ? "Enable" : "Disable",
      "aria-label": (disabled ? "Enable " : "Disable ") + u.name, "data-key": "toggle:" + u.name,
      onclick: () => peopleChange("POST", who + (disabled ? "/enable" : "/disable"), undefined,
        (disabled ? "enabled " : "disabled ") + u.name) });
    return el("tr", { "data-person": u.name },
      el("th", { scope: "row", text: u.name + (u.admin ? " (server admin)" : "") }),
      el("td", {}, projects), el("td", {}, keyList),
      el("td", {}, el("span", { class: "state", text: disabled ? "disabled" : "active" }), " ", toggle));
  }

  $("grant-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const user = $("grant-user").value, project = $("grant-project").value, role = $("grant-role").value;
    peopleChange("PUT", "/v1/users/" + encodeURIComponent(user) + "/projects/" + encodeURIComponent(project),
      { role }, user + " is " + role + " in " + project)
      .then((e) => peopleFields(e, { role: $("grant-role"), project: $("grant-project"), name: $("grant-user") }, null));
  });

  $("add-person-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("new-name").value.trim();
    const body = { name, role: $("new-role").value, password: $("new-password").value };
    // (the password is kept for a second try when refused, and emptied once it is set)
    peopleChange("POST", "/v1/users", body, "added " + name).then((e) => {
      peopleFields(e, { name: $("new-name"), password: $("new-password"), role: $("new-role") }, $("new-name"));
      if (!e) $("new-password").value = "";
    });
  });

  // another project: the page starts over on it, as after signing in
  function switchProject(name) {
    state.project = name; // (before the address changes: its hashchange then finds it done)
    location.hash = "project=" + name;
    stopEvents();
    clearBoard();
    state.sandboxesShown = state.bugfixShown = state.violationsShown = state.viewShown = false;
    state.phases = new Map();
    signedIn(state.account);
  }
  // The switcher changes project on a choice made, not on each keyboard move (WCAG 3.2.2):
  // Chromium fires "change" for every arrow or letter on a closed <select>, and each
  // loaded another project. A change that a key on the select made only moves the choice;
  // Enter on the select, or the Switch button, takes it; a choice from the open list (mouse
  // or keyboard: its Enter) takes it at once; leaving the select for anything but Switch
  // puts back the project shown.
  let keyed = false;
  const chooseProject = () => { if ($("project").value !== state.project) switchProject($("project").value); };
  $("project").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); chooseProject(); return; }
    // (the key's own default action fires the change after this listener; cleared after it)
    keyed = true;
    setTimeout(() => { keyed = false; }, 0);
  });
  $("project").addEventListener("change", () => { if (!keyed) chooseProject(); });
  $("project").addEventListener("blur", (ev) => {
    if (ev.relatedTarget !== $("project-switch")) $("project").value = state.project;
  });
  $("project-switch").addEventListener("click", chooseProject);
  // the address names another of the person's projects in this open tab (Back after a
  // switch, a link to #project=NAME followed): that project, or the page showed one project
  // under another's address
  window.addEventListener("hashchange", () => {
    if (!state.account) return;
    // (none named: the first, as at sign-in)
    const wanted = hashProject() || (state.projects[0] || {}).name;
    if (!wanted || wanted === state.project) return;
    if (state.projects.some((p) => p.name === wanted)) switchProject(wanted);
    // one the person is not a member of: the address names the one shown again
    else if (state.projects.length > 0) history.replaceState(null, "", "#project=" + state.project);
  });

  $("signout").addEventListener("click", async () => {
    try { await api("DELETE", "/v1/session"); } catch (e) { /* signed out either way */ }
    showSignin("Signed out.", true);
  });

  $("budget-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!state.selected) return;
    const note = $("budget-note").value.trim();
    act(state.selected, "approve", note ? { note } : {}, null, [$("budget-note")]).then(() => { $("budget-note").value = ""; });
  });

  $("answer-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("answer-text").value.trim();
    if (!text || !state.selected) return;
    act(state.selected, "answer", { text }, null, [$("answer-text")]).then(() => { $("answer-text").value = ""; });
  });

  // a bug under the rock open in the pane: the answer is the new card's id, or the open bug
  // with the same fingerprint; the card itself comes to the tree through the event stream
  $("bug-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const rock = state.selected;
    if (!rock) return;
    const body = { title: $("bug-title").value };
    if ($("bug-body").value.trim()) body.body = $("bug-body").value;
    if ($("bug-fingerprint").value.trim()) body.fingerprint = $("bug-fingerprint").value.trim();
    $("bug-status").textContent = "filing…";
    $("bug-status").className = "";
    try {
      const doc = await api("POST", "/v1/rocks/" + encodeURIComponent(rock) + "/bugs", body);
      const id = ((doc.card || {}).card || {}).id || "?";
      showIn($("bug-status"), doc.duplicate ? "Seen again: " + id + " is open with the same fingerprint; the report is a comment on it."
        : id + " filed.");
      $("bug-status").dataset.card = id;
      $("bug-title").value = $("bug-body").value = "";
    } catch (e) {
      showIn($("bug-status"), e.status === 429 ? "Too many requests; try again in a moment." : e.message);
      $("bug-status").className = "error";
      delete $("bug-status").dataset.card;
    }
  });

  $("retry-button").addEventListener("click", () => { if (state.selected) act(state.selected, "retry", {}); });

  // A wait reason goes only with a move to blocked or waiting, and is cleared after each
  // move: kept, it went with the next move to another status, which the API refuses.
  const WAITS = new Set(["blocked", "waiting_for_developer"]);
  function reasonFits() {
    const waits = WAITS.has($("move-to").value);
    if (!waits) $("move-reason").value = "";
    $("move-reason").disabled = !waits;
  }
  $("move-to").addEventListener("change", reasonFits);

  $("move-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!state.selected) return;
    const body = { to: $("move-to").value };
    if ($("move-reason").value && WAITS.has(body.to)) body.reason = $("move-reason").value;
    if ($("move-note").value.trim()) body.note = $("move-note").value.trim();
    act(state.selected, "move", body, $("move-error"), [$("move-to"), $("move-reason")]).then((ok) => {
      if (!ok) return;
      $("move-note").value = "";
      $("move-reason").value = "";
    });
  });

  $("create-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { parent: $("create-parent").value, summary: $("create-summary").value.trim() };
    valid([$("create-parent"), $("create-summary")]);
    if (!body.parent || !body.summary) {
      // (blanks pass the field's own required check: said, not a silent nothing)
      $("create-status").textContent = !body.parent ? "Choose the epic the card goes under." : "Give the card a summary.";
      $("create-status").className = "error";
      invalid([!body.parent ? $("create-parent") : $("create-summary")], $("create-status"));
      return;
    }
    // too long: said, the text kept (the field's own maxlength cut a paste without a word)
    const long = [[$("create-summary"), body.summary, "summary"], [$("create-description"),
      $("create-description").value, "description"]].find(([f, v]) => chars(v) > Number(f.dataset.max));
    if (long) {
      $("create-status").textContent = "The " + long[2] + " is " + chars(long[1]) + " characters long; a card's takes "
        + "at most " + long[0].dataset.max + ".";
      $("create-status").className = "error";
      invalid([long[0]], $("create-status"));
      return;
    }
    if ($("create-description").value.trim()) body.description = $("create-description").value;
    if ($("create-priority").value) body.priority = $("create-priority").value;
    $("create-status").textContent = "creating…";
    $("create-status").className = "";
    try {
      const doc = await api("POST", "/v1/cards", body);
      const id = ((doc || {}).card || {}).id;
      showIn($("create-status"), (id || "The card") + " created.");
      $("create-summary").value = $("create-description").value = "";
      state.needBoard = true;
      schedule();
      if (id) select(id);
    } catch (e) {
      showIn($("create-status"), e.status === 429 ? "Too many requests; try again in a moment." : e.message);
      $("create-status").className = "error";
      $("create-status").scrollIntoView({ block: "nearest" });
    }
  });

  $("view-tree").addEventListener("click", () => setView("tree"));
  $("view-columns").addEventListener("click", () => setView("columns"));
  try { setView(localStorage.getItem("orket.view")); } catch (e) { setView("tree"); }

  $("comment-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("comment-text").value.trim();
    if (!text || !state.selected) return;
    act(state.selected, "comments", { body: text }, null, [$("comment-text")]).then((ok) => { if (ok) $("comment-text").value = ""; });
  });

  $("cancel-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const reason = $("cancel-reason").value.trim();
    if (!reason || !state.selected) return;
    act(state.selected, "cancel", { reason }, null, [$("cancel-reason")]).then((ok) => { if (ok) $("cancel-reason").value = ""; });
  });

  $("run-form").addEventListener("submit", submitRun);

  // the skip buttons (index.html): buttons, not links to #ids, since the project switcher
  // reads the address (hashchange)
  $("skip-card").addEventListener("click", toPane);
  $("back-to-board").addEventListener("click", toBoard);

  // The server's name, logo and colours (serve.branding, docs/teams.md), on the sign-in page
  // and the board: set as text, an image address and CSS variables, never as markup
  async function brand() {
    let b;
    try { b = await api("GET", "/v1/branding"); } catch (e) { return; }
    document.title = b.name + " board";
    showIn($("brand-name"), b.name + " board");
    showIn($("signin-title"), "Sign in to " + b.name);
    if (b.logo) $("brand-logo").src = b.logo;
    const vars = { accent: "--accent", background: "--bg", text: "--fg" };
    for (const [k, v] of Object.entries(b.colors || {})) {
      if (vars[k]) document.documentElement.style.setProperty(vars[k], v);
    }
    // the header's focus ring on the accent: app.css's amber where it stands out 3:1 (WCAG
    // 1.4.11), else white (the server refuses an accent that white text is not 4.5:1 on)
    const accent = (b.colors || {}).accent;
    if (accent && contrast(accent, "#f0b429") < 3) document.documentElement.style.setProperty("--ring-on-accent", "#fff");
  }

  // contrast(a, b) -> WCAG 2's ratio of two colours #rgb or #rrggbb (orket.settings.team's)
  function contrast(a, b) {
    const lum = (hex) => {
      let h = hex.slice(1);
      if (h.length === 3) h = h.replace(/./g, "$&$&");
      const [r, g, bl] = [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16) / 255)
        .map((c) => (c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4)));
      return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
    };
    const x = lum(a), y = lum(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }
  brand();

  // On load: a session cookie may be there already (or the server may need no key)
  api("GET", "/v1/session").then(signedIn, () => showSignin(""));
})();
