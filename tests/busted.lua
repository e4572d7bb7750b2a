-- Runs busted inside the orket runtime, so specs see the real C bindings:
--   build/orket lua tests/busted.lua [busted options] [spec dirs]
-- Each spec file runs inside the script's task, so specs may wait (orket.sleep).
_G.orket = require "orket"
require "busted.runner" { standalone = false }
