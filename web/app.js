// The Orket web board: signs in with an API key (POST /v1/session sets an HttpOnly cookie
// and returns the CSRF token), shows the rock > epic > issue tree, follows the journal over
// Server-Sent Events (/v1/events) and refreshes what changed; operators get buttons for runs,
// answers, approvals and retries. Plain DOM, no framework; text is always set as text.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { csrf: null, role: null, selected: null, events: null, refreshing: false, again: false };
  // The journal's kinds (docs/store.md): EventSource delivers named events only to listeners
  // for that name, so each is listened for; any of them may change what the page shows.
  const KINDS = ["transition", "create", "import", "comment", "approval_requested", "approval_decided",
    "approval_used", "retry", "run_start", "run_end", "turn", "turn_begin", "turn_end", "tool_call",
    "gate_decision", "violation", "escalated", "requirements_review", "verification", "api_write",
    "merge", "merge_conflict", "commit", "reload", "reload_error", "model_failure", "memory", "message"];

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k) e.append(k);
    return e;
  }

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  // api(method, path[, body]) -> the answer's JSON; throws ApiError with the server's message
  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    const r = await fetch(path, { method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
    let doc = null;
    try { doc = await r.json(); } catch (e) { doc = null; }
    if (!r.ok) {
      const err = (doc && doc.error) || {};
      throw new ApiError(r.status, err.code || "error", err.message || ("the server answered " + r.status));
    }
    return doc;
  }

  const isOperator = () => state.role === "operator" || state.role === "admin";

  function showSignin(message) {
    stopEvents();
    state.boardSig = state.cardSig = null;
    state.csrf = state.role = null;
    $("app").hidden = true;
    $("who").hidden = $("signout").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("key").focus();
  }

  function signedIn(doc) {
    state.role = doc.role;
    state.csrf = doc.csrf || null;
    $("signin").hidden = true;
    $("app").hidden = false;
    $("who").hidden = false;
    $("who").textContent = (doc.local ? "local use" : (doc.key ? doc.key.name : "key")) + " · " + doc.role;
    $("signout").hidden = !doc.csrf;
    for (const e of document.querySelectorAll(".operator")) e.hidden = !isOperator();
    $("answer-form").hidden = true;
    refresh();
    startEvents();
  }

  // ---- the live journal ----------------------------------------------------------------

  function setLive(text, ok) {
    $("live").textContent = text;
    $("live").className = "live" + (ok ? " on" : "");
  }

  function startEvents() {
    stopEvents();
    const es = new EventSource("/v1/events", { withCredentials: true });
    state.events = es;
    es.onopen = () => { setLive("live", true); refresh(); }; // refresh: what happened while away
    es.onerror = () => {
      setLive("reconnecting…", false);
      if (es.readyState === EventSource.CLOSED) {
        // refused outright (the session ended?): ask who we are, then try again
        stopEvents();
        api("GET", "/v1/session").then(() => setTimeout(startEvents, 2000),
          (e) => { if (e.status === 401) showSignin("Your session ended; sign in again."); else setTimeout(startEvents, 5000); });
      }
    };
    for (const k of KINDS) es.addEventListener(k, refresh);
  }

  function stopEvents() {
    if (state.events) state.events.close();
    state.events = null;
    setLive("offline", false);
  }

  // refresh(): the board and the open card again; events that come meanwhile ask once more
  async function refresh() {
    if (state.refreshing) { state.again = true; return; }
    state.refreshing = true;
    try {
      do {
        state.again = false;
        const board = await api("GET", "/v1/board");
        renderBoard(board.cards || []);
        if (state.selected) await showCard(state.selected, true);
      } while (state.again);
    } catch (e) {
      if (e.status === 401) showSignin("Your session ended; sign in again.");
    } finally {
      state.refreshing = false;
    }
  }

  // ---- the tree -----------------------------------------------------------------------

  function statusBadge(card) {
    return el("span", { class: "status st-" + card.status, "data-status": card.status,
      text: card.status.replace(/_/g, " ") + (card.wait_reason ? " (" + card.wait_reason + ")" : "") });
  }

  function renderBoard(cards) {
    // drawn again only when it changed: focus and what is pressed stay put between events
    const sig = JSON.stringify(cards);
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
    function item(c) {
      const open = el("button", { type: "button", class: "card-link", "aria-pressed": String(c.id === state.selected),
        onclick: () => select(c.id) },
        el("span", { class: "card-type", text: c.type }), el("span", { class: "card-id", text: c.id }),
        el("span", { class: "card-title", text: c.summary || c.name || "" }));
      const li = el("li", { "data-card": c.id, class: "card " + c.type }, open, statusBadge(c));
      const sub = kids.get(c.id);
      if (sub) li.append(el("ul", {}, ...sub.map(item)));
      return li;
    }
    $("tree").replaceChildren(...roots.map(item));
    $("board-empty").hidden = cards.length > 0;
  }

  // ---- one card ---------------------------------------------------------------------

  function select(id) {
    state.selected = id;
    state.cardSig = null;
    for (const b of document.querySelectorAll(".card-link")) {
      b.setAttribute("aria-pressed", String(b.parentElement.dataset.card === id));
    }
    $("transcript-box").hidden = true;
    showCard(id, false);
  }

  async function showCard(id, quiet) {
    let doc;
    try { doc = await api("GET", "/v1/cards/" + encodeURIComponent(id)); } catch (e) {
      if (!quiet) $("detail-error").textContent = e.message;
      return;
    }
    if (state.selected !== id) return;
    const sig = JSON.stringify(doc);
    if (quiet && sig === state.cardSig) return; // unchanged: keep what is being typed
    state.cardSig = sig;
    const c = doc.card;
    $("detail-none").hidden = true;
    $("detail-body").hidden = false;
    $("detail").dataset.card = c.id;
    $("detail-title").textContent = c.id + (c.summary || c.name ? ": " + (c.summary || c.name) : "");
    const rows = [["Status", statusBadge(c)], ["Type", c.type], ["Parent", c.parent], ["Seat", c.seat],
      ["Worked by", c.worked_by], ["Priority", c.priority], ["Description", c.description],
      ["Requirements", c.requirements], ["Acceptance", c.acceptance], ["Note", c.note]];
    const dl = [];
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === "") continue;
      dl.push(el("dt", { text: k }), el("dd", {}, typeof v === "object" ? v : document.createTextNode(String(v))));
    }
    $("fields").replaceChildren(...dl);
    renderApprovals(c, doc.approvals || []);
    const waiting = c.status === "waiting_for_developer";
    $("answer-form").hidden = !(isOperator() && waiting && c.wait_reason === "input");
    $("retry-button").parentElement.hidden = !(isOperator() && (c.status === "blocked" || waiting));
    $("comments").replaceChildren(...(doc.comments || []).map((m) =>
      el("li", {}, el("span", { class: "meta", text: (m.author || "?") + " · " + (m.created_at || "") }),
        el("p", { text: m.body || "" }))));
    const runs = new Set();
    $("history").replaceChildren(...(doc.history || []).map((h) => {
      if (h.run) runs.add(h.run);
      const d = h.data || {};
      const what = h.kind === "transition" ? (d.from + " → " + d.to) : h.kind;
      return el("li", {}, el("span", { class: "meta", text: (h.at || "") + " · " + (h.actor || "") }),
        document.createTextNode(" " + what + (d.note ? ": " + d.note : "")));
    }));
    const tr = [...runs].map((r) => el("button", { type: "button", class: "small", onclick: () => transcript(r),
      text: "Transcript of run " + r }));
    $("history").append(...tr.map((b) => el("li", { class: "runs" }, b)));
  }

  function renderApprovals(card, list) {
    const box = $("approvals");
    const pending = list.filter((a) => a.decision === null || a.decision === undefined);
    if (pending.length === 0) { box.replaceChildren(); return; }
    box.replaceChildren(el("h3", { text: "Waiting for approval" }), ...pending.map((a) => {
      const reasonId = "deny-reason-" + a.id;
      const div = el("div", { class: "approval", "data-approval": String(a.id) },
        el("p", {}, el("strong", { text: a.tool }), document.createTextNode(" " + JSON.stringify(a.arguments))));
      if (a.reason) div.append(el("p", { class: "meta", text: a.reason }));
      if (isOperator()) {
        div.append(
          el("button", { type: "button", class: "approve", text: "Approve",
            onclick: () => act(card.id, "approve", {}) }),
          el("label", { for: reasonId, text: "Reason to deny" }),
          el("input", { id: reasonId, type: "text" }),
          el("button", { type: "button", class: "deny", text: "Deny", onclick: () => {
            const reason = $(reasonId).value.trim();
            if (!reason) { $("detail-error").textContent = "Say why to deny it."; return; }
            act(card.id, "deny", { reason });
          } }));
      }
      return div;
    }));
  }

  // act(id, action, body): a write to a card; the journal's event refreshes the page
  async function act(id, action, body) {
    $("detail-error").textContent = "";
    try {
      await api("POST", "/v1/cards/" + encodeURIComponent(id) + "/" + action, body);
      refresh();
    } catch (e) {
      $("detail-error").textContent = e.message;
    }
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

  async function transcript(run) {
    $("transcript-box").hidden = false;
    $("transcript-title").textContent = "Transcript of run " + run;
    $("transcript").textContent = "loading…";
    try {
      const doc = await api("GET", "/v1/runs/" + encodeURIComponent(run) + "/transcript");
      $("transcript").textContent = transcriptText(doc);
    } catch (e) {
      $("transcript").textContent = e.message;
    }
  }

  // ---- forms --------------------------------------------------------------------------

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("signin-error").textContent = "";
    try {
      const doc = await api("POST", "/v1/session", { key: $("key").value.trim() });
      $("key").value = "";
      signedIn(doc);
    } catch (e) {
      $("signin-error").textContent = e.message;
    }
  });

  $("signout").addEventListener("click", async () => {
    try { await api("DELETE", "/v1/session"); } catch (e) { /* signed out either way */ }
    showSignin("Signed out.");
  });

  $("answer-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("answer-text").value.trim();
    if (!text || !state.selected) return;
    act(state.selected, "answer", { text }).then(() => { $("answer-text").value = ""; });
  });

  $("retry-button").addEventListener("click", () => { if (state.selected) act(state.selected, "retry", {}); });

  $("run-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { concurrency: Number($("run-concurrency").value) || 1 };
    if ($("run-target").value.trim()) body.target = $("run-target").value.trim();
    if ($("run-model").value.trim()) body.model = $("run-model").value.trim();
    $("run-status").textContent = "starting…";
    try {
      const doc = await api("POST", "/v1/runs", body);
      const run = doc.run || {};
      $("run-status").textContent = "Run " + (run.id ?? "") + " started" + (run.status ? " (" + run.status + ")" : "") + ".";
    } catch (e) {
      $("run-status").textContent = e.message;
    }
  });

  // On load: a session cookie may be there already (or the server may need no key)
  api("GET", "/v1/session").then(signedIn, () => showSignin(""));
})();
