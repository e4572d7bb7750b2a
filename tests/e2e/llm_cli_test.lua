-- `orket models` and `orket repl` streaming a chat, run as the binary against the fake server.
local H = require "tests.helpers"
local F = require "tests.fixtures"

local fake = F.model_server(teardown)

local function project(default)
  local dir = H.tmpdir()
  H.write(dir .. "/orket.lua", string.format([[
models = {
  default = %q,
  providers = {
    fake = { kind = "openai", base_url = %q, api_key_env = "FAKE_KEY" },
    local_ollama = { kind = "ollama", base_url = %q },
    down = { kind = "openai", base_url = "http://127.0.0.1:1/v1", retry = { max_attempts = 1 } },
    offline = { kind = "scripted", rules = { { reply = { content = "hi" } } } },
  },
}
]], default, fake.url .. "/v1", fake.url))
  return dir
end

describe("orket models", function()
  it("lists providers, checks each endpoint, and fails only when one in use is down", function()
    local dir = project("fake:fake-model")
    local r = H.orket("models", { cwd = dir, env = { FAKE_KEY = "sk-cli-SECRET-42" } })
    assert.equal(0, r.status, r.stdout)
    assert.matches("default: fake:fake%-model", r.stdout)
    assert.matches("fake%s+openai%s+http://127.0.0.1:%d+/v1  key: FAKE_KEY  ok %(%d+ ms, 1 model: fake%-model%)", r.stdout)
    assert.matches("local_ollama%s+ollama%s+http://127.0.0.1:%d+  ok", r.stdout)
    assert.matches("down%s+openai.-unavailable %(not used here%) transient", r.stdout)
    assert.matches("offline%s+scripted.-ok %(offline%)", r.stdout)
    assert.is_nil(r.stdout:find("SECRET", 1, true))
    -- a model the server does not list would fail every turn
    r = H.orket("models", { cwd = project("fake:gpt-9"), env = { FAKE_KEY = "sk-cli-SECRET-42" } })
    assert.equal(1, r.status)
    assert.matches("FAILED: not served here: gpt%-9", r.stdout)
    r = H.orket("models", { cwd = project("down:x"), env = { FAKE_KEY = "sk-cli-SECRET-42" } })
    assert.equal(1, r.status)
    assert.matches("down%s+openai.-FAILED transient", r.stdout)
    r = H.orket("models -C " .. H.quote(dir .. "/nowhere"))
    assert.equal(2, r.status)
    assert.matches("%-C .-/nowhere: no such directory", r.stderr)
  end)

  it("takes ORKET_MODEL and OLLAMA_HOST from the environment; --no-check skips the probes", function()
    local r = H.orket("models --no-check", { cwd = H.tmpdir(),
      env = { ORKET_MODEL = "openai:gpt-4o-mini", OLLAMA_HOST = "127.0.0.1:" .. fake.port, OPENAI_API_KEY = "" } })
    assert.equal(0, r.status)
    assert.matches("default: openai:gpt%-4o%-mini", r.stdout)
    assert.matches("ollama%s+ollama%s+http://127.0.0.1:" .. fake.port, r.stdout)
  end)

  it("reports a bad orket.lua with its file and field", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", "models = { providers = { x = { kind = 'grpc' } } }")
    local r = H.orket("models", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: orket.lua:1: models.providers.x.kind must be one of openai, ollama, scripted, replay (got grpc)\n", r.stderr)
  end)
end)

describe("orket repl", function()
  it("streams llm.chat token by token", function()
    local dir = project("fake:chunks=4,chunk_ms=10")
    local r = H.orket("repl", { cwd = dir,
      stdin = 'r = llm.chat{messages = {{role = "user", content = "hi"}}}\nprint(r.finish_reason, r.usage.completion_tokens, r.attempts)\n' })
    assert.equal(0, r.status)
    assert.matches("tok1 tok2 tok3 tok4\n", r.stdout)
    assert.matches("stop\t4\t1", r.stdout)
    local log = fake.log()
    assert.is_true(log[#log].stream)
  end)

  it("prints only the result of llm.chat typed as an expression", function()
    local dir = project("fake:chunks=2")
    local r = H.orket("repl", { cwd = dir,
      stdin = 'llm.chat{messages = {{role = "user", content = "hi"}}}\nllm.chat{model = "down:x", messages = {{role = "user", content = "hi"}}}\n' })
    assert.equal(0, r.status)
    assert.matches("> tok1 tok2\n{\n", r.stdout, 1, true)
    assert.matches('finish_reason = "stop"', r.stdout, 1, true)
    assert.is_nil(r.stdout:find("}\tnil", 1, true))
    assert.matches('\n> nil\t".-"\t"transient"\n', r.stdout) -- a failure: nil, message, class
  end)

  it("chats with the models of the project -C names", function()
    local dir = project("fake:chunks=3")
    local here = H.tmpdir() -- a project of its own, whose model must not answer
    H.write(here .. "/orket.lua", 'models = { default = "offline:x", providers = { offline = { kind = "scripted", '
      .. 'rules = { { reply = { content = "WRONG-FOLDER" } } } } } }\n')
    local r = H.orket("repl -C " .. H.quote(dir), { cwd = here,
      stdin = 'r = llm.chat{messages = {{role = "user", content = "hi"}}}\nprint("MODEL", r.model)\n' })
    assert.equal(0, r.status)
    assert.matches("tok1 tok2 tok3\n", r.stdout)
    assert.matches("MODEL\tchunks=3\n", r.stdout)
    assert.is_nil(r.stdout:find("WRONG-FOLDER", 1, true))
    -- a mistake in that orket.lua names the folder
    H.write(dir .. "/orket.lua", "models = 1\n")
    r = H.orket("repl -C " .. H.quote(dir), { cwd = here,
      stdin = 'llm.chat{messages = {{role = "user", content = "hi"}}}\n' })
    assert.matches('> nil\t"llm.chat: in ' .. dir:gsub("%p", "%%%0") .. ': orket.lua:1: models must be a table"\t"bad_request"\n', r.stdout)
    assert.is_nil(r.stdout:find("traceback", 1, true))
  end)

  it("ends the streamed line when a chat fails mid-stream, so the next output starts on its own", function()
    local dir = project("fake:chunks=4,disconnect_after=2")
    local r = H.orket("repl", { cwd = dir,
      stdin = 'r, e = llm.chat{messages = {{role = "user", content = "hi"}}}\nprint("ERR", e)\n' })
    assert.equal(0, r.status)
    assert.matches("> tok1 tok2 \n> ERR\t", r.stdout, 1, true)
  end)
end)

describe("orket run --model", function()
  after_each(H.cleanup)

  -- a typo in --model's model would block each card that reaches the model: refused up
  -- front, as a provider not configured is
  it("refuses a model its server does not list, before a card is touched", function()
    local p = F.initialized()
    F.append(p .. "/orket.lua", string.format("\nmodels.providers.here = { kind = 'ollama', base_url = %q }\n", fake.url))
    local r = H.orket("run START --json --model here:llama9", { cwd = p })
    assert.equal(2, r.status, r.stderr)
    assert.matches("^orket: %-%-model here:llama9: here %(http://127%.0%.0%.1:%d+%) does not list llama9 among "
      .. "its 1 model %(fake%-model%); 'orket models' lists them\nusage: orket run ", r.stderr)
    assert.equal("", r.stdout)
    assert.matches("START%-1%s+ready", H.orket("board", { cwd = p }).stdout)
    assert.matches("^no runs yet", H.orket("runs", { cwd = p }).stdout)
    -- one it lists (Ollama's ":latest" left out as Ollama does) goes on to a run
    for _, m in ipairs { "here:fake-model", "here:fake-model:latest" } do
      r = H.orket("run START-1 --json --concurrency 1 --model " .. m, { cwd = p })
      assert.matches('"type":"run_start"', r.stdout, 1, true, r.stderr)
    end
    -- a worker's new run too, before it is left to the workers
    r = H.orket("worker --start START --drain --model here:llama9", { cwd = p })
    assert.equal(1, r.status, r.stderr)
    assert.matches("^orket: %-%-model here:llama9: here %(http://127%.0%.0%.1:%d+%) does not list llama9", r.stderr)
    assert.equal("", r.stdout)
    -- a server that cannot be asked is left to the run's own model calls to say why
    F.append(p .. "/orket.lua", "\nmodels.providers.down = { kind = 'ollama', base_url = 'http://127.0.0.1:1', retry = { max_attempts = 1 } }\n")
    r = H.orket("run START-1 --json --model down:x", { cwd = p })
    assert.matches('"type":"run_start"', r.stdout, 1, true)
  end)

  -- ORKET_MODEL is --model's equivalent (every turn's model): it went unchecked, and the run
  -- started on a model its server would answer 404 at the first call
  it("refuses ORKET_MODEL's model its server does not list as it refuses --model's", function()
    local p = F.initialized()
    F.append(p .. "/orket.lua", string.format("\nmodels.providers.here = { kind = 'ollama', base_url = %q }\n", fake.url))
    local r = H.orket("run START --json", { cwd = p, env = { ORKET_MODEL = "here:llama9" } })
    assert.equal(1, r.status, r.stderr)
    assert.equal("orket: ORKET_MODEL=here:llama9: here (" .. fake.url .. ") does not list llama9 among its 1 model "
      .. "(fake-model); 'orket models' lists them\n", r.stderr)
    -- with --json, one line says it too (no run_start: nothing started)
    assert.matches('^{"code":"EINVAL",[^\n]*"type":"error"}\n$', r.stdout)
    assert.matches("^no runs yet", H.orket("runs", { cwd = p }).stdout)
    r = H.orket("worker --start START --drain", { cwd = p, env = { ORKET_MODEL = "here:llama9" } })
    assert.equal(1, r.status, r.stderr)
    assert.matches("^orket: ORKET_MODEL=here:llama9: here %(http://127%.0%.0%.1:%d+%) does not list llama9", r.stderr)
    assert.matches("^no runs yet", H.orket("runs", { cwd = p }).stdout)
    -- --model wins over it, as for every turn's model
    r = H.orket("run START-1 --json --concurrency 1 --model here:fake-model", { cwd = p, env = { ORKET_MODEL = "here:llama9" } })
    assert.matches('"type":"run_start"', r.stdout, 1, true, r.stderr)
  end)
end)
