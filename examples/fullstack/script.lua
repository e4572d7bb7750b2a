-- Scripted answers for the fullstack team (docs/llm.md): each card writes the files of one
-- part of a three-service app. Rules match the turn's role and card, and a pattern on the
-- last message (a brief starts "Issue ID: summary", a tool result is JSON). The first API
-- accepts an item with an empty name; the filed bug "BUG: empty item names are accepted"
-- is matched by its summary (whatever id it gets) and its fix answers 400.
local function call(name, args) return { name = name, arguments = args } end

local COMPOSE = [==[
# The app's three services, run together by Orket in one sandbox (docs/sandbox.md).
services:
  db:
    x-orket:
      database: sqlite
      seed: db/seed.sql
  backend:
    build: backend
    command: ["python3", "app.py"]
    depends_on: [db]
    healthcheck:
      test: ["CMD", "python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ['PORT'])"]
      interval: 200ms
      retries: 50
  frontend:
    build: frontend
    command: ["python3", "server.py"]
    ports: ["8080"]
    depends_on: [backend]
]==]

local SEED = [==[
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO items (name) VALUES ('the first item');
]==]

-- backend/app.py, with or without the check a filed bug asks for
local API = [==[
"""The items API: GET and POST /api/items (JSON), GET /api/health. Python's standard
library only; the database is the SQLite file named by $DB_URL (sqlite:///PATH)."""
import json
import os
import sqlite3
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024
DB = os.environ["DB_URL"][len("sqlite:///"):]


def items():
    with sqlite3.connect(DB) as c:
        return [{"id": i, "name": n} for i, n in c.execute("SELECT id, name FROM items ORDER BY id")]


def add(name):
    with sqlite3.connect(DB) as c:
        cur = c.execute("INSERT INTO items (name) VALUES (?)", (name,))
        return {"id": cur.lastrowid, "name": name}


def invalid(name):
    if not isinstance(name, str):
        return "name must be a string"
%CHECK%    return None


class Handler(BaseHTTPRequestHandler):
    def send(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/api/health":
            return self.send(200, {"status": "ok"})
        if path == "/api/items":
            return self.send(200, items())
        return self.send(404, {"error": "not found"})

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/api/items":
            return self.send(404, {"error": "not found"})
        size = int(self.headers.get("Content-Length") or 0)
        if size < 0 or size > MAX_BODY:
            return self.send(413, {"error": "body too large"})
        try:
            name = json.loads(self.rfile.read(size).decode("utf-8", "replace")).get("name")
        except (ValueError, AttributeError):
            return self.send(400, {"error": "body must be a JSON object"})
        problem = invalid(name)
        if problem:
            return self.send(400, {"error": problem})
        return self.send(201, add(name))

    def log_message(self, fmt, *args):
        print("api %s" % (fmt % args), flush=True)


if __name__ == "__main__":
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])
    print("api listening on %s:%d" % (host, port), flush=True)
    ThreadingHTTPServer((host, port), Handler).serve_forever()
]==]
local function api(fixed)
  local check = fixed and '    if not name.strip():\n        return "name must not be empty"\n' or ""
  return (API:gsub("%%CHECK%%", function() return check end))
end

local SERVER = [==[
"""The page's server: static/ as files, and /api/... passed on to the backend at
$BACKEND_URL. Python's standard library only."""
import os
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

BACKEND = os.environ["BACKEND_URL"]
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


class Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=STATIC, **kwargs)

    def backend(self, method):
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size) if size > 0 else None
        req = urllib.request.Request(BACKEND + self.path, data=body, method=method,
                                     headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/api/"):
            return self.backend("GET")
        return super().do_GET()

    def do_POST(self):
        if self.path.startswith("/api/"):
            return self.backend("POST")
        self.send_error(404)

    def log_message(self, fmt, *args):
        print("web %s" % (fmt % args), flush=True)


if __name__ == "__main__":
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])
    print("web listening on %s:%d, the API at %s" % (host, port, BACKEND), flush=True)
    ThreadingHTTPServer((host, port), Handler).serve_forever()
]==]

local PAGE = [==[
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Items</title><link rel="icon" href="data:,"></head>
<body>
<h1>Items</h1>
<ul id="items"></ul>
<form id="add">
  <input name="name" placeholder="A new item" required>
  <button type="submit">Add</button>
</form>
<script src="app.js"></script>
</body>
</html>
]==]

-- relative addresses: the page works wherever it is served from (a proxy's path too)
local APP_JS = [==[
// The items page: lists GET api/items in #items; the form adds one and reloads the page.
const list = document.getElementById("items");

async function load() {
  const res = await fetch("api/items");
  const items = await res.json();
  list.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    li.dataset.id = item.id;
    li.textContent = item.name;
    return li;
  }));
}

document.getElementById("add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = event.target.elements.name.value;
  const res = await fetch("api/items", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (res.ok) location.reload();
});

load();
]==]

local README = [==[
# Items on the web

Three services, in `compose.yaml`: `db` (SQLite, seeded from `db/seed.sql`), `backend/`
(`python3 app.py`: `GET`/`POST /api/items`, `GET /api/health`) and `frontend/`
(`python3 server.py`: the page in `static/`, and `/api/` passed on to `$BACKEND_URL`).
]==]

local function work(card, role, files, what)
  local calls = {}
  for _, f in ipairs(files) do calls[#calls + 1] = call("write_file", { path = f[1], content = f[2] }) end
  calls[#calls + 1] = call("add_issue_comment", { body = what })
  return { role = role, card = card, match = "^Issue ", reply = { tool_calls = calls } }
end

local rules = {
  work("APP-1", "architect", { { "compose.yaml", COMPOSE }, { "db/seed.sql", SEED } },
    "compose.yaml runs db, backend and frontend in that order; db/seed.sql makes the items table."),
  work("APP-2", "coder", { { "backend/app.py", api(false) } }, "backend/app.py serves the items as JSON."),
  work("APP-3", "coder", { { "frontend/server.py", SERVER }, { "frontend/static/index.html", PAGE },
    { "frontend/static/app.js", APP_JS } }, "frontend/ serves the page and passes /api/ on to the backend."),
  work("APP-4", "coder", { { "README.md", README } }, "README.md says what runs where."),
  -- a bug filed against the running app: found by its summary, fixed in the API
  { role = "coder", match = "^Issue [^\n]*[Ee]mpty item names are accepted", reply = { tool_calls = {
    call("write_file", { path = "backend/app.py", content = api(true) }),
    call("add_issue_comment", { body = "backend/app.py now answers 400 to an empty or blank name." }) } } },
  -- after writing: hand in for review; reviewers approve
  { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}
return { rules = rules, default = { content = "Nothing more to do." } }
