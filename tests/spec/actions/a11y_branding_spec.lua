-- serve.branding's colours are checked for contrast on the page they paint (docs/serve.md:
-- text 4.5:1, the focus ring 3:1): a light accent under the header's white text, grey text
-- on the panels' white, a background the hints or the focus ring fade into are refused,
-- naming the field, the colour, the ratio and what it is drawn with; readable brand colours
-- and the defaults pass.
local settings = require "orket.settings"
local team = require "orket.settings.team"

local function colors(c) return settings.resolve { serve = { branding = { colors = c } } } end

describe("serve.branding's colours and contrast", function()
  it("computes WCAG 2's ratio", function()
    assert.equal(21, team.contrast("#000", "#ffffff"))
    assert.equal(1, team.contrast("#7ec8e3", "#7EC8E3"))
    -- the defaults of web/app.css as its comment gives them
    assert.is_true(team.contrast(team.PAGE.text, team.PAGE.background) >= 4.5)
    assert.is_true(team.contrast(team.PAGE.accent, team.PAGE.panel) >= 4.5)
  end)

  it("refuses colours that make the page's text or focus ring unreadable, with the field and the ratio", function()
    for c, msg in pairs {
      -- the report's: the header's white on a light blue (1.87:1), grey text (2.85:1)
      [{ accent = "#7ec8e3" }] = 'serve.branding.colors.accent: "#7ec8e3" has 1.86:1 contrast with the white text drawn on '
        .. "it (the header, buttons) and the white it is text on; 4.5:1 at least is needed (WCAG 1.4.3): choose a darker colour",
      [{ text = "#999" }] = 'serve.branding.colors.text: "#999" has 2.84:1 contrast with the panels\' white #ffffff it is '
        .. "drawn on; 4.5:1 at least is needed (WCAG 1.4.3): choose a darker colour",
      [{ text = "#555", background = "#777" }] = 'serve.branding.colors.text: "#555" has 1.66:1 contrast with '
        .. "colors.background #777",
      [{ background = "#333" }] = 'serve.branding.colors.background: "#333" has 1.19:1 contrast with the text #1d2733 drawn on it',
      [{ background = "#ddd" }] = 'serve.branding.colors.background: "#ddd" has 4.23:1 contrast with the hints\' grey #5b6776',
      [{ accent = "#0a7" }] = 'serve.branding.colors.accent: "#0a7" has 2.99:1 contrast',
    } do
      local s, err = colors(c)
      assert.is_nil(s)
      assert.matches("orket.lua: " .. msg, err, 1, true)
    end
  end)

  it("takes readable brand colours, whose header ring the page picks", function()
    for _, c in ipairs { { accent = "#aa3300", background = "#fafafa", text = "#111" }, { accent = "#1a73e8" },
      { accent = "#2F5D8A" }, { background = "#fff", text = "#000" }, {} } do
      assert(colors(c))
    end
  end)
end)
