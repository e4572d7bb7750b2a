-- Scripted answers for the notes-web team (docs/llm.md): each card writes one file of a
-- small web service in Python's standard library. Rules match the turn's role and card, and
-- a pattern on the last message (a brief starts "Issue ID: summary", a tool result is JSON).
-- The first app.py accepts an empty note; the filed bug "BUG: empty notes are accepted" is
-- matched by its summary (whatever id it gets) and its fix rejects one with 400.
local function call(name, args) return { name = name, arguments = args } end

local STORE = [==[
"""The notes, kept in memory while the service runs: add one, list them all."""
import threading

_lock = threading.Lock()
_notes = []


def add(text):
    with _lock:
        note = {"id": len(_notes) + 1, "text": text}
        _notes.append(note)
        return dict(note)


def all_notes():
    with _lock:
        return [dict(n) for n in _notes]
]==]

-- app.py, with or without the check a filed bug asks for
local APP = [==[
"""The notes web service: GET / (the page), GET and POST /notes (JSON), GET /health.
Python's standard library only; listens on $HOST:$PORT."""
import html
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import store

MAX_BODY = 64 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))


def page():
    try:
        with open(os.path.join(HERE, "page.html"), encoding="utf-8") as f:
            template = f.read()
    except OSError:
        template = '<!doctype html><title>Notes</title><ul id="notes">{notes}</ul>'
    items = "".join('<li data-id="%d">%s</li>' % (n["id"], html.escape(n["text"])) for n in store.all_notes())
    return template.replace("{notes}", items)


def invalid(text):
    if not isinstance(text, str):
        return "text must be a string"
%CHECK%    return None


class Handler(BaseHTTPRequestHandler):
    def send(self, status, body, ctype="application/json", extra=None):
        data = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            return self.send(200, {"status": "ok"})
        if path == "/notes":
            return self.send(200, store.all_notes())
        if path in ("/", "/index.html"):
            return self.send(200, page(), "text/html; charset=utf-8")
        return self.send(404, {"error": "not found"})

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/notes":
            return self.send(404, {"error": "not found"})
        size = int(self.headers.get("Content-Length") or 0)
        if size < 0 or size > MAX_BODY:
            return self.send(413, {"error": "body too large"})
        raw = self.rfile.read(size).decode("utf-8", "replace")
        form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        if form:
            text = parse_qs(raw).get("text", [""])[0]
        else:
            try:
                text = json.loads(raw).get("text")
            except (ValueError, AttributeError):
                return self.send(400, {"error": "body must be a JSON object"})
        problem = invalid(text)
        if problem:
            return self.send(400, {"error": problem})
        note = store.add(text)
        if form:
            return self.send(303, "", "text/plain", {"Location": "./"})
        return self.send(201, note)

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


def main():
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer((host, port), Handler)
    print("notes listening on %s:%d" % (host, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
]==]
local function app(fixed)
  local check = fixed and '    if not text.strip():\n        return "text must not be empty"\n' or ""
  return (APP:gsub("%%CHECK%%", function() return check end))
end

local PAGE = [==[
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Notes</title></head>
<body>
<h1>Notes</h1>
<ul id="notes">{notes}</ul>
<form method="post" action="notes">
  <input name="text" placeholder="A new note" required>
  <button type="submit">Add</button>
</form>
</body>
</html>
]==]

local README = [==[
# Notes on the web

A notes service in Python's standard library: `python3 app.py` listens on `$HOST:$PORT`.

- `GET /` the page: the notes in `<ul id="notes">` and a form that adds one
- `GET /notes` the notes as JSON: `[{"id": 1, "text": "..."}]`
- `POST /notes` with `{"text": "..."}` answers `201` with the note; a bad body `400`
- `GET /health` answers `200` while the service runs
]==]

local function work(card, role, path, content, what)
  return { role = role, card = card, match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = path, content = content }),
    call("add_issue_comment", { body = what }) } } }
end

local rules = {
  work("WEB-1", "architect", "store.py", STORE, "store.py keeps the notes in memory: add(text) and all_notes()."),
  work("WEB-2", "coder", "app.py", app(false), "app.py serves /health, GET and POST /notes, and the page."),
  work("WEB-3", "coder", "page.html", PAGE, "page.html lists the notes in #notes, with a form to add one."),
  work("WEB-4", "coder", "README.md", README, "README.md says how to run and use it."),
  -- a bug filed against the running service: found by its summary, fixed in app.py
  { role = "coder", match = "^Issue [^\n]*[Ee]mpty notes are accepted", reply = { tool_calls = {
    call("write_file", { path = "app.py", content = app(true) }),
    call("add_issue_comment", { body = "app.py now answers 400 to an empty or blank note." }) } } },
  -- after writing: hand in for review; reviewers approve
  { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}
return { rules = rules, default = { content = "Nothing more to do." } }
