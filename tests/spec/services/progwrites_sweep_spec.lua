-- orket.engine.progwrites.sweep: a run killed while it put a program's refused paths back
-- left its export beside the cards' state; the next open of the repository removes the
-- leftovers of processes no longer running, and keeps a running process's own.
local H = require "tests.helpers"
local uv = require "luv"
local progwrites = require "orket.engine.progwrites"

-- the pid of a process that has ended (and been reaped)
local function dead_pid()
  local p = io.popen("sh -c 'echo $$'")
  local pid = math.tointeger(tonumber(p:read("l")))
  p:close()
  return pid
end

describe("orket.engine.progwrites.sweep", function()
  after_each(H.cleanup)

  it("removes the put-back folders of ended processes, once old enough, only", function()
    local state = H.tmpdir()
    local dead, live = dead_pid(), uv.os_getpid()
    local names = {
      left = string.format(".put-back-E-1.%d.1", dead),
      left_aside = string.format(".put-back-E-1.%d.1.aside", dead),
      own = string.format(".put-back-E-2.%d.3", live),
      card = "E-1",
      other = ".put-back-notes",
    }
    for _, n in pairs(names) do
      assert(uv.fs_mkdir(state .. "/" .. n, 448))
      H.write(state .. "/" .. n .. "/f.txt", "x")
    end
    -- young: another machine's, at work over a shared file system, may have that pid
    progwrites.sweep(state)
    assert.is_table(uv.fs_lstat(state .. "/" .. names.left))
    progwrites.sweep(state, os.time() + progwrites.SWEEP_AGE_S + 5)
    assert.is_nil(uv.fs_lstat(state .. "/" .. names.left))
    assert.is_nil(uv.fs_lstat(state .. "/" .. names.left_aside))
    for _, k in ipairs { "own", "card", "other" } do
      assert.equal("x", H.read(state .. "/" .. names[k] .. "/f.txt"), k)
    end
    progwrites.sweep(state .. "/none") -- no such folder: nothing to do
  end)
end)
