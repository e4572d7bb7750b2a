-- The web board's people panel (web/app.js peopleChange) against the answers of the people
-- API, with a stub page run by node: a refusal is said in the error style the other panels
-- use (the runs' status line: web_offers_spec), a change done in the panel's own.
local H = require "tests.helpers"
local cjson = require "cjson"

describe("the web board's people panel", function()
  it("says a refusal (403, 409, 429) red and a change done in its hint style, no red left over", function()
    if not os.execute("command -v node >/dev/null 2>&1") then return pending("node is not installed") end
    finally(H.cleanup)
    local src = assert(H.read("web/app.js"))
    -- the panel's functions: each from its comment to its end
    local fns = {}
    for _, name in ipairs { "peopleSaid", "peopleRefused", "peopleChange" } do
      fns[#fns + 1] = assert(src:match("\n  (// " .. name .. "%(.-\n  })\n")
        or src:match("\n  (// [^\n]*\n  // [^\n]*\n  async function " .. name .. "%(.-\n  })\n"), name .. "() in web/app.js")
    end
    local page = [[
const els = { "people-status": { textContent: "", className: "hint" } };
const $ = (id) => els[id];
const said = () => els["people-status"].textContent + "|" + els["people-status"].className;
let answer;
const api = () => answer;
const loadPeople = () => {};
// (the page's showIn marks bidi controls, tests/e2e/web_hostile_test.lua: here, the text)
const showIn = (e, text) => { e.textContent = String(text ?? ""); };
const refusal = (status, message) => { const e = new Error(message); e.status = status; return Promise.reject(e); };
]] .. table.concat(fns, "\n") .. [[

(async () => {
  const out = [];
  answer = refusal(409, "root is the last enabled server admin");
  await peopleChange("POST", "/v1/users/root/disable", undefined, "disabled root");
  out.push(said());
  answer = Promise.resolve({ name: "bob" });
  await peopleChange("POST", "/v1/users/bob/disable", undefined, "disabled bob");
  out.push(said());
  answer = refusal(403, "this needs the admin role");
  await peopleChange("DELETE", "/v1/users/bob/keys/x", undefined, "revoked x");
  out.push(said());
  answer = refusal(429, "rate limited");
  await peopleChange("PUT", "/v1/users/bob/projects/default", { role: "viewer" }, "bob is viewer in default");
  out.push(said());
  console.log(JSON.stringify(out));
})();
]]
    local path = H.tmpdir() .. "/people.js"
    H.write(path, page)
    local p = assert(io.popen("node " .. H.quote(path)))
    local out = p:read("l")
    assert.is_true(p:close())
    assert.same({ "root is the last enabled server admin|error", "disabled bob|hint", "this needs the admin role|error",
      "Too many requests; try again in a moment.|error" }, cjson.decode(out))
  end)
end)
