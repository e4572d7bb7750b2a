-- The agents' file tools over a workspace holding what agent code can make: a FIFO, a unix
-- socket, a device node (as root) and a symlink to one. read_file, list_directory and
-- search_files answer at once and never open them. The tools run in a child process killed
-- after 30 s, so a regression that blocks on a FIFO fails instead of hanging the suite.
local H = require "tests.helpers"
local cjson = require "cjson"

local function sh(cmd) assert(os.execute(cmd), cmd) end

describe("file tools and special files", function()
  after_each(H.cleanup)

  it("refuse or skip FIFOs, sockets, devices and links to them, without waiting", function()
    local root = H.tmpdir()
    sh("mkdir -p " .. H.quote(root .. "/d"))
    H.write(root .. "/d/a.txt", "needle here\n")
    sh("mkfifo " .. H.quote(root .. "/d/fifo"))
    sh("ln -s fifo " .. H.quote(root .. "/d/to-fifo"))
    local sock = os.execute(string.format("perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM(), "
      .. "Local => $ARGV[0], Listen => 1) or exit 1' %s 2>/dev/null", H.quote(root .. "/d/sock")))
    -- /dev/zero's numbers: a read of it never ends
    local dev = os.execute("mknod " .. H.quote(root .. "/d/zero") .. " c 1 5 2>/dev/null")
    if not dev then io.write("\n  device node not planted: mknod needs root\n") end
    local script = H.tmpdir() .. "/child.lua" -- outside the workspace the tools see
    H.write(script, string.format([[
local tools = require "orket.tools"
local reg = assert(tools.load_dirs { %q })
local ctx = { fs = assert(require("orket.workspace").open(%q)), card = { id = "X-1", type = "issue", status = "in_progress" },
  actor = { seat = "dev", roles = { "coder" } } }
local out = {}
for _, f in ipairs { "d/fifo", "d/to-fifo", "d/sock", "d/zero" } do out[f] = reg:run("read_file", { path = f }, ctx) end
out.write = reg:run("write_file", { path = "d/fifo", content = "x" }, ctx)
out.list = reg:run("list_directory", { path = "d" }, ctx)
out.search = reg:run("search_files", { query = "needle" }, ctx)
io.write(require("cjson").encode(out))
]], H.ROOT .. "/tools", root))
    local r = H.orket("lua " .. H.quote(script), { wrap = "timeout -s KILL 30" })
    assert.are_not.equal(137, r.status, "the tools did not answer within 30 s (blocked?)")
    assert.equal(0, r.status, tostring(r.stderr))
    local out = cjson.decode(r.stdout)
    assert.is_false(out["d/fifo"].ok)
    assert.matches("not a regular file", out["d/fifo"].error)
    assert.is_false(out["d/to-fifo"].ok)
    assert.matches("symlink", out["d/to-fifo"].error)
    if sock then
      assert.is_false(out["d/sock"].ok)
      assert.matches("not a regular file", out["d/sock"].error)
    end
    if dev then
      assert.is_false(out["d/zero"].ok)
      assert.matches("not a regular file", out["d/zero"].error)
    end
    assert.is_false(out.write.ok)
    local types = {}
    for _, e in ipairs(out.list.result.entries) do types[e.name] = e.type end
    assert.equal("other", types.fifo)
    assert.equal("symlink", types["to-fifo"])
    if sock then assert.equal("other", types.sock) end
    if dev then assert.equal("other", types.zero) end
    -- the search reads the one regular file and skips the rest
    assert.same({ { path = "d/a.txt", line = 1, text = "needle here" } }, out.search.result.results)
    assert.equal(1, out.search.result.files_scanned)
  end)
end)
