-- A model whose tool-call arguments are not a JSON object (cut short, a bare string, an
-- array, nested too deep) or hold a byte that is not UTF-8, end to end against the fake model server: the gate refuses the
-- call with ARGS_MALFORMED and the parse error, the model reads that as the call's result,
-- the refusal is recorded like any other, and 'orket log' shows the text the model sent.
-- A tool with no required argument (list_directory) does not run on {} instead.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local fake = F.model_server(teardown)

local function project(model)
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", string.format([[
name = "badargs"
models = { default = %q, providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], "fake:" .. model, fake.url .. "/v1"))
  H.write(dir .. "/epics/e.json", [[
{ "id": "BAD", "name": "Bad arguments", "issues": [ { "id": "BAD-1", "summary": "Look around", "seat": "senior_developer" } ] }
]])
  H.write(dir .. "/workspace/seen.txt", "x\n")
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local CASES = {
  { tool = "add_issue_comment", kind = "truncated", text = '{"body": ', why = "arguments are not valid JSON %(" },
  { tool = "list_directory", kind = "string", text = '"hi"', why = "arguments are a JSON string, not an object" },
  { tool = "list_directory", kind = "array", text = "[1]", why = "arguments are a JSON array, not an object" },
  { tool = "search_files", kind = "deep", text = '{"a":{"a":{"a":', why = "arguments are not valid JSON %(.-nested" },
  -- the byte kept escaped, as the journal holds it on either store
  { tool = "add_issue_comment", kind = "bytes", text = '{"body": "caf\\xff"}', why = "arguments are not valid UTF%-8 %(byte 14 " },
}

describe("tool-call arguments that are not a JSON object", function()
  before_each(function() fake.reset() end)

  for _, c in ipairs(CASES) do
    it("are refused with the parse error, not run as {} (" .. c.kind .. ", " .. c.tool .. ")", function()
      local dir = project("tool=" .. c.tool .. ",bad_args=" .. c.kind .. ",tool_times=1")
      local r = H.orket("run BAD --json", { cwd = dir })
      -- the model then ends its turn without handing in, and one turn is all the card may use
      assert.equal(1, r.status, r.stderr)
      local tool
      for line in r.stdout:gmatch("[^\n]+") do
        local ev = cjson.decode(line)
        if ev.type == "tool" then tool = ev end
      end
      assert.equal(c.tool, tool.tool)
      assert.is_true(tool.denied)
      assert.equal("ARGS_MALFORMED", tool.code)

      -- the model's next request carries the refusal as the call's result
      local reqs = fake.log()
      assert.equal(2, #reqs)
      local msgs = reqs[2].request.messages
      local result = msgs[#msgs]
      assert.equal("tool", result.role)
      local body = cjson.decode(result.content)
      assert.equal("ARGS_MALFORMED", body.code)
      assert.matches(c.tool .. ": the call's " .. c.why, body.error)
      assert.truthy(#body.remedy > 0)

      local log = H.orket("log", { cwd = dir })
      assert.equal(0, log.status, log.stderr)
      local call = log.stdout:match("%[call%] " .. c.tool .. " ([^\n]*)")
      assert.equal(c.text, call:sub(1, #c.text))
      assert.matches(c.why, call)
      assert.is_nil(log.stdout:find("[call] " .. c.tool .. " {}", 1, true))
      if c.kind == "deep" then assert.truthy(#call < 600, "the log line is clipped") end
      assert.matches("%[gate%] " .. c.tool .. " deny: ARGS_MALFORMED", log.stdout)
      assert.matches("%[violation%] ARGS_MALFORMED: " .. c.tool .. ": the call's " .. c.why, log.stdout)
      assert.matches("%[result%] " .. c.tool .. " failed", log.stdout)
      assert.is_nil(log.stdout:find('"entries"', 1, true)) -- list_directory never ran
      assert.is_nil(log.stdout:find("required argument is missing", 1, true))
    end)
  end
end)

describe("a tool's empty list", function()
  before_each(function() fake.reset() end)

  it("reaches the model as [] (lua-cjson alone writes an empty table as {})", function()
    local dir = project("tool=search_files,arg_query=no-such-text-anywhere,tool_times=1")
    H.orket("run BAD --json", { cwd = dir })
    local reqs = fake.log()
    assert.equal(2, #reqs)
    local msgs = reqs[2].request.messages
    local result = msgs[#msgs]
    assert.equal("tool", result.role)
    assert.matches('"results":[]', result.content, 1, true)
    assert.is_nil(result.content:find("{}", 1, true))
    -- and orket log shows it as the model read it, not as the journal's JSON writes it
    local line = H.orket("log", { cwd = dir }).stdout:match("%[result%] search_files ok [^\n]*")
    assert.matches('"results":[]', line, 1, true)
    assert.is_nil(line:find("{}", 1, true))
  end)

  it("and a path's slashes read plainly in orket log", function()
    local dir = project("tool=write_file,arg_path=docs/a.txt,arg_content=x,tool_times=1")
    H.orket("run BAD --json", { cwd = dir })
    local log = H.orket("log", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    for _, what in ipairs { "call%] write_file", "result%] write_file ok", "tool%]" } do
      local line = log.stdout:match("%[" .. what .. " [^\n]*")
      assert.matches('"path":"docs/a.txt"', line, 1, true) -- and the model read it so
    end
    assert.is_nil(log.stdout:find("\\/", 1, true))
    -- what the model read: keys in order, the same in every process
    local msgs = fake.log()[2].request.messages
    assert.equal('{"bytes":1,"path":"docs/a.txt"}', msgs[#msgs].content)
  end)
end)
