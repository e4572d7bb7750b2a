-- orket.config.fixed_dir: the project's directory fixed as a command starts, so that nothing
-- later goes through the working directory (tests/e2e/relative_dir_test.lua removes it
-- under run, worker and serve).
local H = require "tests.helpers"
local uv = require "luv"
local config = require "orket.config"
local cmdline = require "orket.cmdline"

describe("the project's directory as given", function()
  local here, top
  before_each(function()
    here = uv.cwd()
    top = uv.fs_realpath(H.tmpdir())
    for _, d in ipairs { "/job", "/proj", "/a", "/a/b" } do assert(uv.fs_mkdir(top .. d, 448)) end
    assert(uv.fs_symlink(top .. "/a/b", top .. "/job/lnk"))
    assert(uv.chdir(top .. "/job"))
  end)
  after_each(function()
    uv.chdir(here)
    H.cleanup()
  end)

  it("is made absolute, without its dots, when it goes through ..", function()
    assert.equal(top .. "/proj", config.fixed_dir("../proj"))
    assert.equal(top .. "/proj", config.fixed_dir("../proj/"))
    assert.equal(top .. "/proj", config.fixed_dir("./../job/../proj/."))
    assert.equal(top .. "/proj", config.fixed_dir(top .. "/job/../proj"))
    -- one not there yet (init makes it) the same
    assert.equal(top .. "/new/p", config.fixed_dir("../new/p"))
    -- the working directory itself is "."; its parent by name
    assert.equal(".", config.fixed_dir("../job"))
    assert.equal(".", config.fixed_dir(top .. "/job/x/.."))
    assert.equal(top, config.fixed_dir(".."))
  end)

  it("goes up from where a link points, as the system does", function()
    -- lnk -> a/b: lnk/.. is a, not job
    assert.equal(top .. "/a", config.fixed_dir("lnk/.."))
    assert.equal(top .. "/a/c", config.fixed_dir("lnk/../c"))
  end)

  it("is kept as typed below the working directory, and absolute without ..", function()
    for _, d in ipairs { ".", "./", "p", "./p", "p/q/", "lnk", top .. "/proj", "/" } do
      assert.equal(d, config.fixed_dir(d))
    end
  end)

  it("is what -C and DIR give a command", function()
    local o = assert(cmdline.parse({ cmdline.DIR }, { "-C", "../proj" }))
    assert.equal(top .. "/proj", o.dir)
    o = assert(cmdline.parse(cmdline.dir_args("validate"), { "../proj" }))
    assert.equal(top .. "/proj", o.dir)
    -- the same folder twice, spelled two ways, is one
    o = assert(cmdline.parse(cmdline.dir_args("validate"), { "../proj", "-C", top .. "/proj" }))
    assert.equal(top .. "/proj", o.dir)
  end)
end)
