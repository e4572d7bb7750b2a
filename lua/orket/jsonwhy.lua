-- orket.jsonwhy: why lua-cjson refused a text, in words a client can act on. cjson names
-- what it found by its own token names ("Expected value but found T_END at character 12");
-- the HTTP API's bodies and MCP's messages are refused in the same words.
local M = {}

local TOKENS = {
  T_END = "the end of the text", T_OBJ_BEGIN = "'{'", T_OBJ_END = "'}'", T_ARR_BEGIN = "'['", T_ARR_END = "']'",
  T_STRING = "a string", T_NUMBER = "a number", T_BOOLEAN = "true or false", T_NULL = "null", T_COLON = "':'",
  T_COMMA = "','", T_ERROR = "something that is no JSON", T_UNKNOWN = "something that is no JSON",
}

--- why(err[, what]) -> cjson's decoding error err in words ("expected value but found the
--- end of the body at byte 9"); what names the text ("the body", "the message"; default
--- "the text"), capped at 200 bytes
function M.why(err, what)
  local end_of = "the end of " .. (what or "the text")
  local s = tostring(err):sub(1, 200):gsub("T_[%u_]+", function(t)
    if t == "T_END" then return end_of end
    return TOKENS[t]
  end):gsub("^Expected", "expected"):gsub(" at character (%d+)$", " at byte %1")
  return s
end

return M
