-- A stdout that cannot be written: closed by the caller (`>&-`), a full disk (/dev/full), a
-- reader gone. A closed one was /dev/null opened for writing (core/main.c), so every
-- command ended 0 with its output lost, as `ls >&-` does not; and `orket keys create`
-- stored a key whose only-shown secret nobody got, told the script it succeeded, and kept
-- the name taken.
local H = require "tests.helpers"
local cjson = require "cjson"

-- `orket ARGS` in dir with stdout as redirect says (a shell redirection) -> exit status, stderr
local function with_stdout(dir, args, redirect)
  os.execute(string.format("cd %s && { %s %s %s 2>err.txt; echo $? >rc; }", H.quote(dir), H.quote(H.BIN), args,
    redirect))
  return tonumber((H.read(dir .. "/rc") or ""):match("^%d+")), H.read(dir .. "/err.txt") or ""
end

local function keys_of(dir)
  local out = {}
  for _, k in ipairs(cjson.decode(H.orket("keys list --json", { cwd = dir }).stdout).keys) do out[k.name] = k end
  return out
end

describe("a stdout that cannot be written", function()
  after_each(H.cleanup)

  it("is exit 1, said, when the caller closed it", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    dir = dir .. "/p"
    for _, c in ipairs { "version", "board", "board --json", "runs --json", "help" } do
      local rc, err = with_stdout(dir, c, ">&-")
      assert.equal(1, rc, c .. ": " .. err)
      assert.equal("orket: cannot write the output: Bad file descriptor\n", err, c)
    end
    -- stdin or stderr closed is no failure: stderr's messages go nowhere, the status tells
    assert.equal(0, (with_stdout(dir, "board", ">/dev/null <&-")))
    assert.equal(0, (with_stdout(dir, "board", ">/dev/null 3>&- 2>&-")))
  end)

  it("makes orket init refuse before it makes anything, and orket serve say its address on stderr", function()
    local dir = H.tmpdir()
    -- init: its summary could not be written, the project was made all the same, and the
    -- exit 1 read as "nothing was made"
    local rc, err = with_stdout(dir, "init p --yes", ">&-")
    assert.equal(1, rc, err)
    assert.matches("stdout is closed (or open only for reading), so nothing was created", err, 1, true)
    assert.is_nil(io.open(dir .. "/p/orket.lua"))
    assert.equal(0, H.orket("init p --yes", { cwd = dir }).status)
    -- serve: the address and the token went nowhere, and its clean stop said 1
    local p = dir .. "/p"
    os.execute(string.format("cd %s && { %s serve --listen 127.0.0.1:0 >&- 2>err.txt & echo $! >pid; wait $!; "
      .. "echo $? >rc; } >/dev/null 2>&1 &", H.quote(p), H.quote(H.BIN)))
    local said
    for _ = 1, 200 do
      said = H.read(p .. "/err.txt") or ""
      if said:find("/?token=", 1, true) then break end
      os.execute("sleep 0.05")
    end
    assert.matches("orket serve: listening on http://127%.0%.0%.1:%d+\n", said)
    assert.matches("/?token=", said, 1, true)
    os.execute("kill -TERM " .. H.read(p .. "/pid"):match("%d+"))
    for _ = 1, 200 do
      if H.read(p .. "/rc") then break end
      os.execute("sleep 0.05")
    end
    assert.equal("0\n", H.read(p .. "/rc"), H.read(p .. "/err.txt"))
    assert.is_nil((H.read(p .. "/err.txt")):find("cannot write the output", 1, true))
  end)

  it("makes orket keys create revoke the key it could not show, whatever the stdout", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    dir = dir .. "/p"
    local cases = {
      { "kclosed", ">&-", 1, "Bad file descriptor" },
      -- a reader gone before the write: SIGPIPE ended the process (141), the key kept
      { "kpipe", "| { exec <&-; sleep 2; }", 1, "Broken pipe" },
    }
    if io.open("/dev/full", "w") then cases[#cases + 1] = { "kfull", ">/dev/full", 1, "No space left on device" } end
    for _, c in ipairs(cases) do
      local name, redirect, want, why = c[1], c[2], c[3], c[4]
      local rc, err
      if redirect:find("^|") then
        -- the reader's end closed before orket writes (its start takes longer than the shell's exec)
        os.execute(string.format("cd %s && { sleep 0.3; %s keys create %s --role viewer 2>err.txt; echo $? >rc; } %s",
          H.quote(dir), H.quote(H.BIN), name, redirect))
        rc, err = tonumber((H.read(dir .. "/rc") or ""):match("^%d+")), H.read(dir .. "/err.txt") or ""
      else
        rc, err = with_stdout(dir, "keys create " .. name .. " --role viewer", redirect)
      end
      assert.equal(want, rc, name .. ": " .. err)
      local k = keys_of(dir)[name]
      assert.is_truthy(k, name)
      assert.matches("key " .. k.id .. " %(" .. name .. "%) was not shown: its secret could not be written %(" .. why
        .. "%); it is revoked again", err)
      assert.is_truthy(k.revoked_at, name .. " is still active")
      -- its name is free again
      local again = H.orket("keys create " .. name .. " --role viewer", { cwd = dir })
      assert.equal(0, again.status, again.stderr)
      assert.matches("^ork_%x+_%x+\n$", again.stdout)
    end
    -- the revoke is audited, as any
    local log = H.orket("audit export", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    local revoked = 0
    for line in log.stdout:gmatch("[^\n]+") do
      if line:find('"key_revoke"', 1, true) then revoked = revoked + 1 end
    end
    assert.equal(#cases, revoked)
  end)
end)
