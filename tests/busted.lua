-- Runs busted inside the orket runtime, so specs see the real C bindings:
--   build/orket lua tests/busted.lua [busted options] [spec dirs]
-- Each spec file runs inside the script's task, so specs may wait (orket.sleep).
_G.orket = require "orket"

-- luassert's matches(pattern, s, init, plain, message) takes for its message the first
-- argument after s that is neither a boolean nor number-like: a number-like message (a
-- count, a status, a command's output "3\n") is silently read as init or plain, and the
-- assertion then checks something else. A string there that tonumber reads, or a number in
-- plain's place, is such a message: refused, saying so. (error_matches: the same places.)
do
  require "luassert"
  local assertions = require("luassert.namespaces").assertion
  for _, name in ipairs { "matches", "match", "error_matches", "error_match", "matches_error", "match_error" } do
    local a = assertions[name]
    local callback = a.callback
    a.callback = function(state, args, level)
      for i = 3, 4 do
        local v = args[i]
        if (type(v) == "string" and tonumber(v)) or (i == 4 and type(v) == "number") then
          error(string.format("assert.%s: argument %d, %q, would be taken for its %s, not for a message: "
            .. "give a message words beside the number", name, i, tostring(v), i == 3 and "init" or "plain"), level + 1)
        end
      end
      return callback(state, args, level)
    end
  end
end

require "busted.runner" { standalone = false }
