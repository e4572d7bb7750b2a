-- orket.settings.team: serve.projects and serve.branding are checked as every setting is,
-- each refusal naming its field, and the web board's CSP lets in only the logo's origin.
local settings = require "orket.settings"
local web = require "orket.serve.web"

local function serve(src) return settings.resolve { serve = src } end

describe("serve.projects and serve.branding", function()
  it("takes projects by name and directory", function()
    local s = assert(serve { projects = { web = "../web", infra = "/srv/infra" } })
    assert.same({ web = "../web", infra = "/srv/infra" }, s.serve.projects)
    for src, msg in pairs {
      [{ projects = { Web = "x" } }] = "serve.projects.Web: a project's name is 1 to 40 ASCII characters: lowercase",
      [{ projects = { default = "x" } }] = "serve.projects.default: \"default\" is the project orket serve runs in",
      [{ projects = { web = 3 } }] = "serve.projects.web: must be a project's directory (got number)",
      [{ projects = { web = "a\nb" } }] = "serve.projects.web: must be a project's directory",
      [{ projects = "x" }] = "serve.projects: must be a table",
    } do
      local s2, err = serve(src)
      assert.is_nil(s2)
      assert.matches("orket.lua: " .. msg, err, 1, true)
    end
  end)

  it("takes a name, a logo and colours, and refuses anything that could carry markup or script", function()
    local s = assert(serve { branding = { name = "Acme Works", logo = "https://cdn.acme.example/logo.svg",
      colors = { accent = "#AA3300", background = "#fff", text = "#111111" } } })
    assert.same({ name = "Acme Works", logo = "https://cdn.acme.example/logo.svg",
      colors = { accent = "#aa3300", background = "#fff", text = "#111111" } }, s.serve.branding)
    assert.same({ name = "Orket", colors = {} }, assert(serve(nil)).serve.branding)
    for src, msg in pairs {
      [{ name = "<script>" }] = "serve.branding.name: must be 1 to 60 characters of one line, without < or >",
      [{ name = "" }] = "serve.branding.name: must be 1 to 60",
      [{ name = string.rep("x", 61) }] = "serve.branding.name: must be 1 to 60",
      [{ logo = "javascript:alert(1)" }] = "serve.branding.logo: must be an https:// address",
      [{ logo = "data:image/svg+xml,<svg/>" }] = "serve.branding.logo: must be an https:// address",
      [{ logo = "http://acme.example/l.png" }] = "serve.branding.logo: must be an https:// address",
      [{ logo = "//evil.example/l.png" }] = "serve.branding.logo: must be an https:// address",
      [{ logo = "https://a.example/x\" onload=\"y" }] = "serve.branding.logo: must be an https:// address",
      [{ colors = { accent = "red" } }] = "serve.branding.colors.accent: must be a colour #rgb or #rrggbb",
      [{ colors = { accent = "#12345g" } }] = "serve.branding.colors.accent: must be a colour",
      [{ colors = { accent = "#fff; background: url(x)" } }] = "serve.branding.colors.accent: must be a colour",
      [{ colors = { link = "#fff" } }] = "serve.branding.colors.link: unknown colour",
      [{ motto = "x" }] = "serve.branding.motto: unknown setting (known: name, logo, colors)",
    } do
      local s2, err = serve { branding = src }
      assert.is_nil(s2)
      assert.matches("orket.lua: " .. msg, err, 1, true)
    end
  end)

  it("lets the board load images from the logo's origin only", function()
    assert.equal(web.HEADERS[1], web.csp(nil))
    assert.equal(web.HEADERS[1], web.csp({ name = "x", colors = {} }))
    local csp = web.csp({ logo = "https://cdn.acme.example:8443/logo.svg" })
    assert.matches("default-src 'self'; img-src 'self' https://cdn.acme.example:8443;", csp, 1, true)
    assert.matches("frame-ancestors 'none'", csp, 1, true)
  end)
end)
