-- The web board offers what the API takes, checked against the board itself: New card's
-- parents (web/app.js createParents; POST /v1/cards, orket.board's create) and the Retry
-- button (retryable; POST /v1/cards/{id}/retry, orket.board's retry), run with node; and the
-- run form's status line (startRun) against the answers of POST /v1/runs, with a stub page.
local H = require "tests.helpers"
local B = require "tests.backends"
local board_mod = require "orket.board"
local jsonout = require "orket.jsonout"
local cjson = require "cjson"

local STATUSES = { "ready", "in_progress", "blocked", "waiting_for_developer", "ready_for_testing", "code_review",
  "done", "canceled", "archived" }

-- js(fn, call) -> the line node prints for fn's source followed by call
local function js(fn, call)
  local path = H.tmpdir() .. "/web.js"
  H.write(path, fn .. "\nconsole.log(" .. call .. ");\n")
  local p = assert(io.popen("node " .. H.quote(path)))
  local out = p:read("l")
  assert.is_true(p:close())
  return out
end

local function app_fn(name)
  local src = assert(H.read("web/app.js"))
  return assert(src:match("\n  (function " .. name .. "%(%w+%) {.-\n  })\n"), name .. "() in web/app.js")
end

describe("the web board's New card parents and Retry button", function()
  it("are the cards the board files a new issue under: epics not finished, never a rock", function()
    if not os.execute("command -v node >/dev/null 2>&1") then return pending("node is not installed") end
    finally(H.cleanup)
    local src = assert(H.read("web/app.js"))
    local fn = assert(src:match("\n  (function createParents%(cards%) {.-\n  })\n"), "createParents() in web/app.js")
    local db = B.open_store()
    local imports = require "orket.store.imports"
    local cards = {}
    assert(db:tx(function()
      imports.insert_card(db, { id = "R", type = "rock", priority = 2 })
      cards[#cards + 1] = { id = "R", type = "rock", status = "ready" }
      for i, st in ipairs(STATUSES) do
        local id = "E" .. i
        imports.insert_card(db, { id = id, type = "epic", parent = "R", priority = 2 })
        assert(db:run("UPDATE cards SET status = ? WHERE id = ?", st, id))
        cards[#cards + 1] = { id = id, type = "epic", status = st }
      end
      imports.insert_card(db, { id = "E1-1", type = "issue", parent = "E1", priority = 2, seat = "dev" })
      cards[#cards + 1] = { id = "E1-1", type = "issue", status = "ready" }
      return true
    end))
    local b = board_mod.open(db)
    local takes = {}
    for _, c in ipairs(cards) do
      if b:create { parent = c.id, summary = "x", actor = { seat = "person" } } then takes[#takes + 1] = c.id end
    end
    assert.equal(6, #takes) -- the epics not done, canceled or archived
    local js = H.tmpdir() .. "/parents.js"
    H.write(js, fn .. "\nconsole.log(createParents(" .. jsonout.encode(cards) .. ").map((c) => c.id).join(','));\n")
    local p = assert(io.popen("node " .. H.quote(js)))
    local offered = p:read("l")
    assert.is_true(p:close())
    assert.equal(table.concat(takes, ","), offered)
    assert.is_nil(offered:find("R", 1, true)) -- (the rock: a refusal every time it was chosen)
    db:close()
  end)

  it("shows Retry on the cards the board retries, in every status", function()
    if not os.execute("command -v node >/dev/null 2>&1") then return pending("node is not installed") end
    finally(H.cleanup)
    local fn = app_fn("retryable")
    local db = B.open_store()
    local imports = require "orket.store.imports"
    local cards = {}
    assert(db:tx(function()
      imports.insert_card(db, { id = "E", type = "epic", priority = 2 })
      for i, st in ipairs(STATUSES) do
        local id = "E-" .. i
        imports.insert_card(db, { id = id, type = "issue", parent = "E", priority = 2, seat = "dev" })
        assert(db:run("UPDATE cards SET status = ? WHERE id = ?", st, id))
        cards[#cards + 1] = { id = id, type = "issue", status = st }
      end
      return true
    end))
    local b = board_mod.open(db)
    local takes = {}
    for _, c in ipairs(cards) do
      if b:retry(c.id, { actor = { seat = "user:alice", roles = {}, by = "person" } }) then takes[#takes + 1] = c.id end
    end
    assert.equal(3, #takes) -- blocked, waiting_for_developer, ready_for_testing
    assert.equal(table.concat(takes, ","), js(fn, jsonout.encode(cards) .. ".filter(retryable).map((c) => c.id).join(',')"))
    db:close()
  end)
end)

describe("the web board's run form", function()
  it("says a start as going once a refused start was shown red, and a refusal red", function()
    if not os.execute("command -v node >/dev/null 2>&1") then return pending("node is not installed") end
    finally(H.cleanup)
    local src = assert(H.read("web/app.js"))
    local fns = {}
    for _, name in ipairs { "runSaid", "startRun" } do
      fns[#fns + 1] = assert(src:match("\n  (%s*// " .. name .. "%(.-\n  })\n"), name .. "() in web/app.js")
    end
    -- the page's elements and POST /v1/runs stubbed: a refusal (409), then an answer that
    -- has not come yet, then a run started
    local page = [[
const els = {};
const $ = (id) => (els[id] = els[id] || { textContent: "", className: "", value: "" });
const said = () => els["run-status"].textContent + "|" + els["run-status"].className;
let answer;
const api = () => answer;
const loadRuns = () => {};
// (the page's showIn marks bidi controls, tests/e2e/web_hostile_test.lua: here, the text)
const showIn = (e, text) => { e.textContent = String(text ?? ""); };
]] .. table.concat(fns, "\n") .. [[

(async () => {
  const out = [];
  const err = new Error("run 1 (A) is working on A-1");
  err.status = 409;
  answer = Promise.reject(err);
  await startRun({ preventDefault() {} });
  out.push(said());
  answer = new Promise(() => {});
  startRun({ preventDefault() {} });
  out.push(said());
  answer = Promise.resolve({ run: { id: 2, state: "running" } });
  await startRun({ preventDefault() {} });
  out.push(said());
  console.log(JSON.stringify(out));
})();
]]
    local path = H.tmpdir() .. "/run_form.js"
    H.write(path, page)
    local p = assert(io.popen("node " .. H.quote(path)))
    local out = p:read("l")
    assert.is_true(p:close())
    assert.same({ "run 1 (A) is working on A-1|error", "starting…|", "Run 2 started (running).|" }, cjson.decode(out))
  end)
end)
