-- orket.scriptfile and the reads under it (orket.c.runtime.read_script, orket.c.plain):
-- regular files under a cap only, budget errors that name the file and line, script values
-- detached before the host reads them, and a policy rule refused even when the script
-- swallows the error. (FIFOs and /dev/zero, which would block the old code, are in
-- tests/e2e/script_files_test.lua, under a timeout.)
local H = require "tests.helpers"
local scriptfile = require "orket.scriptfile"
local scriptenv = require "orket.scriptenv"
local plain = require "orket.c.plain"

describe("scriptfile.read", function()
  after_each(H.cleanup)

  it("reads a regular file, through a link too", function()
    local dir = H.tmpdir()
    H.write(dir .. "/a.lua", "return 1\n")
    os.execute("ln -s a.lua " .. H.quote(dir .. "/b.lua"))
    assert.equal("return 1\n", scriptfile.read(dir .. "/a.lua"))
    assert.equal("return 1\n", scriptfile.read(dir .. "/b.lua"))
    H.write(dir .. "/empty.lua", "")
    assert.equal("", scriptfile.read(dir .. "/empty.lua"))
  end)

  it("refuses what is not a regular file, or is larger than the cap, by name", function()
    local dir = H.tmpdir()
    local function refused(path, code, msg, max)
      local t, err, c = scriptfile.read(path, max)
      assert.is_nil(t)
      assert.equal(code, c)
      assert.matches("^" .. path:gsub("%p", "%%%0") .. ": " .. msg, err)
    end
    refused(dir .. "/none.lua", "ENOENT", "cannot read: No such file or directory")
    refused(dir, "EISDIR", "is a directory, not a regular file")
    os.execute("ln -s /dev/null " .. H.quote(dir .. "/null.lua"))
    refused(dir .. "/null.lua", "EINVAL", "is a character device, not a regular file")
    H.write(dir .. "/big.lua", ("x"):rep(101))
    refused(dir .. "/big.lua", "EFBIG", "larger than 100 bytes", 100)
    assert.equal(100, #scriptfile.read(dir .. "/big.lua", 101) - 1)
    H.write(dir .. "/huge.lua", ("-- x\n"):rep(scriptfile.MAX_BYTES // 5 + 1))
    refused(dir .. "/huge.lua", "EFBIG", "larger than 1048576 bytes")
  end)

  it("raises on misuse", function()
    assert.has_error(function() scriptfile.read(nil) end, "bad argument #1 to 'read' (string expected, got nil)")
    assert.has_error(function() require("orket.c.runtime").read_script("x", -1) end)
  end)

  it("reports a routing.lua that is a link leading nowhere; none at all is the built-in routing", function()
    local routing = require "orket.engine.routing"
    local dir = H.tmpdir()
    assert.is_nil(routing.load(dir .. "/routing.lua").file)
    os.execute("ln -s gone.lua " .. H.quote(dir .. "/routing.lua"))
    local r, err, code = routing.load(dir .. "/routing.lua")
    assert.is_nil(r)
    assert.equal("ENOENT", code)
    assert.matches("routing%.lua: cannot read: No such file or directory %(a link to gone%.lua, which does not exist%)$",
      err)
  end)

  it("says a routing.lua's misspelt field first among unknown ones", function()
    local routing = require "orket.engine.routing"
    local dir = H.tmpdir()
    H.write(dir .. "/routing.lua", "return { aaa = 1, bbb = 2, ccc = 3, ddd = 4, wroker = function() end, eee = 5 }\n")
    local r, err, code = routing.load(dir .. "/routing.lua")
    assert.is_nil(r)
    assert.equal("EINVAL", code)
    assert.equal(dir .. "/routing.lua: unknown field 'wroker' (fields: worker, reviewer, escalation, model)", err)
  end)

  it("lists every entry named like a script, of any kind, sorted", function()
    local dir = H.tmpdir()
    H.write(dir .. "/b.lua", "")
    os.execute("mkdir " .. H.quote(dir .. "/a.lua") .. " && mkfifo " .. H.quote(dir .. "/c.lua"))
    H.write(dir .. "/notes.txt", "")
    assert.same({ dir .. "/a.lua", dir .. "/b.lua", dir .. "/c.lua" }, scriptfile.list(dir))
    assert.same({}, scriptfile.list(dir .. "/none"))
  end)

  -- a policy file named deny.v2.lua was skipped by list, without a word from `orket run`:
  -- its deny never applied; an editor's files beside a script are no one's scripts
  it("lists a file named like no script for the loaders to refuse; an editor's files are left alone", function()
    local dir = H.tmpdir()
    for _, name in ipairs { "deny.v2.lua", "deny copy.lua", "café.lua", "NoSSH.LUA", "ok.lua", ".#ok.lua", "._ok.lua",
      "ok.lua~", ".ok.lua.swp", "ok.lua.orig" } do
      H.write(dir .. "/" .. name, "")
    end
    assert.same({ dir .. "/NoSSH.LUA", dir .. "/café.lua", dir .. "/deny copy.lua", dir .. "/deny.v2.lua",
      dir .. "/ok.lua" }, scriptfile.list(dir))
    assert.is_nil(scriptfile.misnamed(dir .. "/ok.lua", "policies/ok.lua"))
    local err, code = scriptfile.misnamed(dir .. "/deny.v2.lua", "policies/deny.v2.lua")
    assert.equal("EINVAL", code)
    assert.equal("policies/deny.v2.lua: the file's name is no script's: a script is named NAME.lua, NAME of "
      .. "letters, digits, '_' and '-'; rename it, or move it out of policies/", err)
  end)

  it("is refused by every loader of a folder, by its name", function()
    local dir = H.tmpdir()
    for _, name in ipairs { "policies", "roles", "tools" } do os.execute("mkdir " .. H.quote(dir .. "/" .. name)) end
    local policy = require "orket.policy"
    H.write(dir .. "/policies/deny.v2.lua", 'deny { tool = "write_file", reason = "no" }\n')
    local set, err, code = policy.load(policy.files_in { dir .. "/policies" }, dir)
    assert.is_nil(set)
    assert.equal("EINVAL", code)
    assert.matches("^policies/deny%.v2%.lua: the file's name is no script's: .*move it out of policies/$", err)
    H.write(dir .. "/roles/a b.lua", 'return { intent = "x", tools = {}, system = "s" }\n')
    local roles, rerr, rcode = require("orket.engine.roles").load({ dir .. "/roles" }, dir)
    assert.is_nil(roles)
    assert.equal("EINVAL", rcode)
    assert.matches("^roles/a b%.lua: the file's name is no script's", rerr)
    H.write(dir .. "/tools/my.tool.lua", "return {}\n")
    local reg, terr = require("orket.tools").load_dirs({ dir .. "/tools" }, dir)
    assert.is_nil(reg)
    assert.matches("^tools/my%.tool%.lua: the file's name is no script's", terr)
    -- what validate checks file by file (a X.LUA has no stem .lua: it was an error in the check)
    H.write(dir .. "/tools/X.LUA", "return {}\n")
    local out = {}
    require("orket.engine.scriptcheck").check(dir, out, { epics = 0, issues = 0, roles = 0, tools = 0, policies = 0 })
    local said = {}
    for _, pr in ipairs(out) do said[#said + 1] = pr.file .. ": " .. pr.message end
    table.sort(said)
    assert.equal(4, #said, table.concat(said, "\n"))
    assert.matches("^policies/deny%.v2%.lua: the file's name is no script's", said[1])
    assert.matches("^roles/a b%.lua: the file's name is no script's", said[2]) -- named once
    assert.matches("^tools/X%.LUA: the file's name is no script's", said[3])
    assert.matches("^tools/my%.tool%.lua: the file's name is no script's", said[4])
  end)
end)

describe("budget errors", function()
  after_each(H.cleanup)

  -- no deadline to race: on a busy core the clock, not the instruction count, would stop the loop
  it("name the file and the line, for a role, orket.lua and a Lua epic", function() H.without_deadline(function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/roles"))
    local spin = "local n = 0\nwhile true do n = n + 1 end\n"
    H.write(dir .. "/roles/spin.lua", spin)
    local role, rerr, rcode = require("orket.engine.roles").load_file(dir .. "/roles/spin.lua")
    assert.is_nil(role)
    assert.equal("EBUDGET", rcode)
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/roles/spin%.lua:2: script: instruction budget exceeded", rerr)
    H.write(dir .. "/orket.lua", spin)
    local data, cerr = require("orket.config").read(dir)
    assert.is_nil(data)
    assert.matches("^orket%.lua:2: script: instruction budget exceeded", cerr)
    H.write(dir .. "/epics/spin.lua", spin)
    local set, ierr = require("orket.import").load(dir)
    assert.is_nil(set)
    assert.matches("^epics/spin%.lua:2: script: instruction budget exceeded", ierr)
  end) end)

  it("keep a message that already names the file as it is", function()
    assert.equal("x.lua:3: boom", scriptfile.message("x.lua:3: boom\nstack traceback:\n\tx.lua:3: in main chunk", "x.lua"))
    assert.equal("x.lua: out of memory", scriptfile.message("out of memory", "x.lua"))
    local long = "/a/very/long/folder/name/that/goes/on/and/on/for/a/while/roles/coder.lua"
    assert.equal(long .. ":7: script: instruction budget exceeded",
      scriptfile.message("script: instruction budget exceeded\nstack traceback:\n\t[C]: in ?\n\t..."
        .. long:sub(-50) .. ":7: in main chunk", long))
  end)
end)

describe("scriptfile.run", function()
  after_each(H.cleanup)

  it("hands back a detached copy: plain tables, the script's functions", function()
    local dir = H.tmpdir()
    H.write(dir .. "/r.lua", "local function f() return 1 end\nreturn { f = f, list = { 'a', { b = f } } }\n")
    local ok, v = scriptfile.run(scriptenv.new {}, dir .. "/r.lua")
    assert.is_true(ok)
    assert.equal("a", v.list[1])
    assert.equal(v.f, v.list[2].b)
    H.write(dir .. "/m.lua", "return { t = setmetatable({}, { __index = function() return 1 end }) }\n")
    local ok2, err, code = scriptfile.run(scriptenv.new {}, dir .. "/m.lua")
    assert.is_false(ok2)
    assert.equal("EINVAL", code)
    assert.equal(dir .. "/m.lua: t: a table with a metatable; return plain tables", err)
  end)

  -- A project's script is loaded under its name in the project: an error it raises when
  -- called later (a role's hook in a turn) names it so, not by the directory it was read from
  it("names a script by its name in the project (name): a role loaded given it, in its errors later and a read's",
    function()
    assert.equal("roles/x.lua", scriptfile.name("/srv/p/roles/x.lua", "/srv/p"))
    assert.equal("roles/x.lua", scriptfile.name("/srv/p/roles/x.lua", "/srv/p/"))
    assert.equal("roles/x.lua", scriptfile.name("./roles/x.lua", "."))
    assert.equal("roles/x.lua", scriptfile.name("sub//roles/x.lua", "sub"))
    assert.equal("/opt/orket/roles/x.lua", scriptfile.name("/opt/orket/roles/x.lua", "/srv/p")) -- Orket's own
    assert.equal("/srv/px/roles/x.lua", scriptfile.name("/srv/px/roles/x.lua", "/srv/p"))
    assert.equal("/srv/p/roles/x.lua", scriptfile.name("/srv/p/roles/x.lua", "/"))
    assert.equal("/srv/p/roles/x.lua", scriptfile.name("/srv/p/roles/x.lua"))
    -- through a loader given the project's directory (roles.load_file's base), as a run loads it
    local roles = require "orket.engine.roles"
    local dir = H.tmpdir()
    os.execute("mkdir " .. H.quote(dir .. "/roles"))
    H.write(dir .. "/roles/x.lua", "return { intent = 'i', tools = {}, build = function()\n  error('kaput')\nend }\n")
    local role = assert(roles.load_file(dir .. "/roles/x.lua", dir))
    assert.equal("roles/x.lua", role.chunk)
    assert.equal(dir .. "/roles/x.lua", role.file) -- read and watched at its path
    local cok, err = role.box:pcall(role.build, {})
    assert.is_false(cok)
    assert.matches("^roles/x%.lua:2: kaput", err)
    assert.is_nil(err:find(dir, 1, true), err) -- the traceback too
    os.execute("mkdir " .. H.quote(dir .. "/roles/d.lua"))
    local r, rerr = roles.load_file(dir .. "/roles/d.lua", dir)
    assert.is_nil(r)
    assert.matches("^roles/d%.lua: is a directory", rerr)
  end)

  it("stops a copy of a table shared too often", function()
    local t = {}
    for _ = 1, 30 do t = { t, t } end
    local c, err = plain.copy(t)
    assert.is_nil(c)
    assert.matches(": more than 1000000 values$", err)
    assert.is_nil((plain.detach(t)))
    local ok = plain.copy { { 1, 2 }, { 3 } }
    assert.same({ { 1, 2 }, { 3 } }, ok)
  end)
end)

describe("policy rules", function()
  after_each(H.cleanup)

  -- a deny{} called from a `when` was appended to the set's rules (listed, one more at every
  -- call) and never applied: the set is compiled once, when the files have loaded
  it("are fixed when the file has loaded: deny{} from a when is the rule's error", function()
    local dir = H.tmpdir()
    H.write(dir .. "/p.lua", 'deny { tool = "mytool", when = function(call)\n'
      .. '  deny { tool = "update_issue_status", reason = "late" }\n  return true\nend }\n')
    local set = assert(require("orket.policy").load { dir .. "/p.lua" })
    assert.equal(1, #set.rules)
    for _ = 1, 3 do
      local matched, err = set:predicate(1, { tool = "mytool", args = {} })
      assert.is_nil(matched)
      assert.matches("p%.lua:2: deny{} may only be called while p%.lua loads, not from a rule's when or later", err)
    end
    assert.equal(1, #set.rules)
    assert.equal(1, #set.origin)
  end)

  it("refused inside the script's own pcall still fail the load", function()
    local dir = H.tmpdir()
    H.write(dir .. "/p.lua", "deny { tool = 'write_file' }\nlocal ok = pcall(deny, { toool = 'x' })\n")
    local set, err, code = require("orket.policy").load { dir .. "/p.lua" }
    assert.is_nil(set)
    assert.equal("EINVAL", code)
    assert.matches("p%.lua:2: unknown field 'toool'", err)
  end)
end)
