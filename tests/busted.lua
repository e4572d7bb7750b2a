-- Runs busted inside the orket runtime, so specs see the real C bindings:
--   build/orket lua tests/busted.lua [busted options] [spec dirs]
-- Each spec file runs inside the script's task, so specs may wait (orket.sleep).
_G.orket = require "orket"

-- luassert's matches(pattern, s, init, plain, message) takes for its message the first
-- argument from the third on that is truthy, neither a boolean nor number-like (tonumber
-- reads it), and drops it; then the third and fourth are init and plain. When it finds no
-- such message, a number-like string in the third or fourth place (a count, a status, a
-- command's output "3\n"), or a number in the fourth, was most likely meant as one, and is
-- silently read as init or plain: the assertion then checks something else. That is
-- refused, saying so. A word message anywhere keeps luassert's reading as it is, e.g.
-- ("why", 5) is message and init. A number in the third place alone is a real init, and
-- passes. (error_matches: the same places.)
do
  require "luassert"
  local assertions = require("luassert.namespaces").assertion
  for _, name in ipairs { "matches", "match", "error_matches", "error_match", "matches_error", "match_error" } do
    local a = assertions[name]
    local callback = a.callback
    a.callback = function(state, args, level)
      for i = 3, args.n or #args do
        local v = args[i]
        if v and type(v) ~= "boolean" and not tonumber(v) then return callback(state, args, level) end
      end
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
