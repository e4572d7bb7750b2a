-- Ctrl-C at a password or passphrase prompt (seal.read_tty, which turns echo off) leaves
-- the person's terminal as it was: echo on, the command ended by the signal (130). Before,
-- SIGINT's default action killed the process inside read(), and the shell showed nothing
-- typed after it.
local H = require "tests.helpers"

local PTY = H.BIN:gsub("orket$", "ptydrive")

-- `orket ARGS` in dir on a terminal, under a shell that stays (it traps INT; the command gets
-- the default action), Ctrl-C at the prompt -> the transcript: the command's status, then
-- the terminal's echo flag (" echo " or " -echo ")
local function interrupted(dir, args, prompt)
  H.write(dir .. "/steps", table.concat({ "expect " .. prompt, "sleep 300", "keys \\x03", "expect flag=" }, "\n") .. "\n")
  local script = string.format([[trap 'echo trapped' INT; %s %s; echo "rc=$?"; printf 'flag=%%s|\n' "$(stty -a | grep -o ' -*echo ')"]],
    H.quote(H.BIN), args)
  local p = io.popen(string.format("cd %s && %s -t 20 -- sh -c %s <steps 2>&1", H.quote(dir), H.quote(PTY),
    H.quote(script)))
  local out = p:read("a")
  p:close()
  return out
end

describe("Ctrl-C at a password or passphrase prompt", function()
  after_each(H.cleanup)

  it("puts echo back and ends the command with 130", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    for _, c in ipairs({
      { "users add bob --role viewer", "password: " },
      { "secrets set tok", "value of tok: " },
      { "backup " .. H.quote(H.tmpdir() .. "/b") .. " --encrypt", "passphrase: " },
    }) do
      local out = interrupted(dir, c[1], c[2])
      assert.matches("rc=130", out, 1, true)
      assert.matches("flag= echo |", out, 1, true)
    end
    -- nothing was stored
    assert.is_nil(H.orket("users", { cwd = dir }).stdout:find("bob", 1, true))
  end)
end)
