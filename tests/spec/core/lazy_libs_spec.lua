-- libgit2, libmicrohttpd and libedit are loaded with dlopen on first use (core/gitapi.c,
-- core/mhdapi.c, core/editapi.c): a process maps them only once it opens a repository,
-- starts a server or edits a line (the REPL's history), and without them orket still starts
-- and the first use says which package is missing.
local H = require "tests.helpers"

-- a script that prints, after each step, whether libgit2, libmicrohttpd and libedit are mapped
local function steps_script(dir)
  return string.format([[
local function mapped(pat)
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find(pat) ~= nil
end
local seen = {}
local function note()
  seen[#seen + 1] = tostring(mapped("/libgit2%%.so")) .. "/" .. tostring(mapped("/libmicrohttpd%%.so"))
    .. "/" .. tostring(mapped("/libedit%%.so"))
end
note()
local G = require "orket.c.gitrepo"
local httpd = require "orket.c.httpd"
local le = require "orket.c.lineedit"
assert(G.card_valid("A-1"))
assert(le.isatty(0) ~= nil)
note()
local r = assert(G.init(%q, { name = "t", email = "t@example.com" }))
r:close()
note()
local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
srv:close()
note()
assert(le.load_history(%q))
note()
print(table.concat(seen, " "))
]], dir .. "/repo", dir .. "/no-history")
end

-- The files the loader maps for libgit2, libmicrohttpd and libedit, as a process that used
-- all three saw them.
local function library_files()
  local dir = H.tmpdir()
  H.write(dir .. "/files.lua", string.format([[
assert(require("orket.c.gitrepo").init(%q, { name = "t", email = "t@example.com" })):close()
assert(require("orket.c.httpd").listen { host = "127.0.0.1", port = 0 }):close()
assert(require("orket.c.lineedit").load_history(%q))
local f = assert(io.open("/proc/self/maps"))
local maps = f:read("a")
f:close()
print(maps:match("%%s(/%%S+/libgit2%%.so[%%w.]*)\n"))
print(maps:match("%%s(/%%S+/libmicrohttpd%%.so[%%w.]*)\n"))
print(maps:match("%%s(/%%S+/libedit%%.so[%%w.]*)\n"))
]], dir .. "/repo", dir .. "/no-history"))
  local r = H.orket("lua " .. H.quote(dir .. "/files.lua"), { wrap = "timeout 60" })
  assert.equal(0, r.status, r.stderr)
  local git, mhd, edit = r.stdout:match("^(%S+)\n(%S+)\n(%S+)\n$")
  assert(git and mhd and edit, r.stdout)
  return git, mhd, edit
end

-- wrap for H.orket: the command runs where each of files reads as empty (a bind mount of
-- /dev/null in a mount namespace of its own), so dlopen cannot load them
local function without(files)
  local mounts = {}
  for _, f in ipairs(files) do mounts[#mounts + 1] = "mount --bind /dev/null " .. H.quote(f) end
  local script = table.concat(mounts, " && ") .. ' && exec timeout 60 "$0" "$@"'
  return "unshare -rm sh -c " .. H.quote(script)
end

local function namespaces_work()
  local ok = os.execute("unshare -rm true >/dev/null 2>&1")
  return ok == true
end

-- Sanitizer builds link all three libraries (the Makefile says why), so neither test applies;
-- the binary under test is the one running this spec.
local function sanitizer_build()
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find("/libasan%.so") ~= nil
end

describe("libraries loaded on first use", function()
  after_each(H.cleanup)

  local sanitized = sanitizer_build()
  local lazy_it = not sanitized and it
    or function(name) pending(name .. " [sanitizer builds link libgit2, libmicrohttpd and libedit]") end

  lazy_it("maps libgit2 at the first repository, libmicrohttpd at the first server and libedit at the first history, not before", function()
    local dir = H.tmpdir()
    H.write(dir .. "/steps.lua", steps_script(dir))
    local r = H.orket("lua " .. H.quote(dir .. "/steps.lua"), { wrap = "timeout 60" })
    assert.equal(0, r.status, r.stderr)
    -- loading the modules maps nothing; each stays mapped after its last handle closes
    assert.equal("false/false/false false/false/false true/false/false true/true/false true/true/true\n", r.stdout)
  end)

  local ns_it = sanitized and lazy_it or namespaces_work() and it
    or function(name) pending(name .. " [needs unshare -rm: user and mount namespaces]") end

  ns_it("starts without any of them, and names the missing package at first use", function()
    local git, mhd, edit = library_files()
    local dir = H.tmpdir()
    H.write(dir .. "/missing.lua", string.format([[
local G = require "orket.c.gitrepo"
local out = {}
local function add(...) out[#out + 1] = table.concat({ tostring(select(1, ...)), tostring(select(2, ...)), tostring(select(3, ...)) }, "|") end
add(G.init(%q, { name = "t", email = "t@example.com" }))
add(G.open(%q))
add(G.init_bare(%q))
add(G.ls_remote(%q))
add(require("orket.c.httpd").listen { host = "127.0.0.1", port = 0 })
local ok, e = pcall(require("orket.c.lineedit").load_history, %q)
add(ok, e, nil)
print(table.concat(out, "\n"))
]], dir .. "/repo", dir .. "/repo", dir .. "/bare", dir .. "/bare", dir .. "/no-history"))
    local r = H.orket("lua " .. H.quote(dir .. "/missing.lua"), { wrap = without { git, mhd, edit } })
    assert.equal(0, r.status, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(6, #lines, r.stdout)
    for i = 1, 4 do
      assert.matches("^nil|git: cannot load libgit2 %(install the libgit2%-[%d.]+ package%): .+|EGIT$", lines[i])
    end
    assert.matches("^nil|cannot load libmicrohttpd %(install the libmicrohttpd12 package%): .+|ELISTEN$", lines[5])
    assert.matches("^false|cannot load libedit %(install the libedit2 package%): .+|nil$", lines[6])
    -- nothing was made: the repository was never reached
    assert.is_nil(io.open(dir .. "/repo/.git/HEAD"))
    -- and a command that needs neither runs as before
    local v = H.orket("version", { wrap = without { git, mhd, edit } })
    assert.equal(0, v.status, v.stderr)
    assert.matches("orket", v.stdout)
  end)

  -- A library that could not be opened for a limit of the process (every descriptor in use,
  -- its address space) was said as missing: "install the package", which was installed.
  lazy_it("says a library that a limit of the process stopped as that, not as missing", function()
    local dir = H.tmpdir()
    H.write(dir .. "/emfile.lua", [[
local held = {}
while true do
  local f = io.open("/dev/null")
  if not f then break end
  held[#held + 1] = f
end
local a, b, c = require("orket.c.gitrepo").open(".")
for _, f in ipairs(held) do f:close() end
print(a, b, c)
]])
    local r = H.orket("lua " .. H.quote(dir .. "/emfile.lua"), { wrap = "sh -c 'ulimit -n 64 && exec \"$0\" \"$@\"'" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("git: cannot load libgit2: [^\n]*Too many open files %(installed, but not mapped: a limit of this "
      .. "process, its address space, ulimit %-v, or its open files, ulimit %-n; or a mount or policy", r.stdout)
    assert.is_nil(r.stdout:find("install the", 1, true))
  end)
end)
