-- The container image and the dependency script name every Debian package the binary
-- needs: each shared library orket links (readelf's NEEDED entries, resolved by ldd and
-- owned per dpkg -S), libcurl4 and libpq5 (loaded with dlopen) are installed by the Dockerfile's
-- runtime stage, and every package scripts/deps.sh installs for the build is in its build
-- stage. A library added to the Makefile without the image would otherwise be found only
-- when the image fails to start.
local H = require "tests.helpers"

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

-- The Dockerfile's stages: the text after the first FROM and after the second.
local function stages()
  local text = H.read(H.ROOT .. "/Dockerfile")
  local build, runtime = text:match("FROM[^\n]*\n(.-)\nFROM[^\n]*\n(.*)$")
  return assert(build, "Dockerfile: two stages expected"), runtime
end

local function has(text, pkg) return text:find("%f[%w%-%.]" .. pkg:gsub("%p", "%%%0") .. "%f[^%w%-%.]") ~= nil end

describe("packaging", function()
  it("installs every library the binary links in the image's runtime stage", function()
    local _, runtime = stages()
    local needed = {}
    for lib in sh("readelf -d " .. H.quote(H.BIN) .. " 2>/dev/null"):gmatch("NEEDED%)%s+Shared library: %[([^%]]+)%]") do
      needed[#needed + 1] = lib
    end
    assert.is_true(#needed > 5, "readelf found no NEEDED entries")
    local ldd = sh("ldd " .. H.quote(H.BIN))
    local function path_of(lib) return ldd:match("%f[%S]" .. lib:gsub("%p", "%%%0") .. " => (%S+)") end
    -- the owners of every path, and of its /usr/lib twin, asked of dpkg at once: each dpkg
    -- -S reads the whole package database (half a second)
    local paths = {}
    for _, lib in ipairs(needed) do
      local path = path_of(lib)
      if path then paths[#paths + 1] = H.quote(path) .. " " .. H.quote((path:gsub("^/lib/", "/usr/lib/"))) end
    end
    local owner = {}
    for pkgs, path in sh("dpkg -S " .. table.concat(paths, " ") .. " 2>/dev/null"):gmatch("([^\n]-): (/[^\n]*)") do
      owner[path] = owner[path] or pkgs:match("^([^:,%s]+)")
    end
    for _, lib in ipairs(needed) do
      -- the sanitizer build (make asan) also links gcc's runtimes, which no image carries
      if lib:match("^lib[aubltsan]*san%.so") then goto next end
      local path = path_of(lib)
      assert.is_not_nil(path, lib .. " does not resolve")
      local pkg = owner[path] or owner[(path:gsub("^/lib/", "/usr/lib/"))]
      assert.is_not_nil(pkg, "no package owns " .. path)
      if pkg ~= "libc6" then -- in the base image
        assert.is_true(has(runtime, pkg), "Dockerfile runtime stage lacks " .. pkg .. " (for " .. lib .. ")")
      end
      ::next::
    end
    assert.is_true(has(runtime, "libcurl4"), "Dockerfile runtime stage lacks libcurl4 (loaded with dlopen)")
    assert.is_true(has(runtime, "libpq5"), "Dockerfile runtime stage lacks libpq5 (loaded with dlopen)")
    -- signing people in: JOSE and LDAP (docs/teams.md)
    assert.is_true(has(runtime, "libcjose0"), "Dockerfile runtime stage lacks libcjose0 (loaded with dlopen)")
    assert.is_true(has(runtime, "libldap-2.5-0"), "Dockerfile runtime stage lacks libldap-2.5-0 (loaded with dlopen)")
  end)

  it("installs every build package of scripts/deps.sh in the image's build stage", function()
    local build = stages()
    local deps = H.read(H.ROOT .. "/scripts/deps.sh")
    local list = assert(deps:match('PKGS="([^"]*)"'), "scripts/deps.sh: PKGS not found")
    local n = 0
    for pkg in list:gmatch("[%w%-%.%+]+") do
      n = n + 1
      assert.is_true(has(build, pkg), "Dockerfile build stage lacks " .. pkg)
    end
    assert.is_true(n >= 10)
  end)
end)
