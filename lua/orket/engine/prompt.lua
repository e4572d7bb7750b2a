-- orket.engine.prompt: the role author's toolkit, handed to every role script as the
-- global `prompt` (frozen). Pure functions from the plain context object to text and
-- messages; nothing here reaches the store. Documented in docs/roles.md.
local schemas = require "orket.engine.schemas"
local jsonout = require "orket.jsonout"

local M = {}

local function add(out, label, text)
  if type(text) == "string" and text:find("%S") then out[#out + 1] = label .. ":\n" .. text end
end

-- An argument a helper cannot use, raised at the role's call (level: the role's frame, 3
-- from a helper's own check) and named as the role calls it, prompt.brief: the role's
-- error then gives its own line, not one of this file's (an index of a number here did)
local function bad(fname, n, what, level)
  error(string.format("bad argument #%d to 'prompt.%s' (%s)", n, fname, what), level or 3)
end

local function check_card(fname, n, card, what, level)
  if type(card) ~= "table" then bad(fname, n, (what or "") .. "card table expected, got " .. type(card), level) end
end

-- list: nil, or an array of tables (what: "ctx.comments" when a ctx's field)
local function check_list(fname, n, list, what, level)
  if list == nil then return end
  if type(list) ~= "table" then
    bad(fname, n, (what and (what .. ": ") or "") .. "table expected, got " .. type(list), level)
  end
  for i, v in ipairs(list) do
    if type(v) ~= "table" then
      bad(fname, n, string.format("%s: table expected, got %s", what and (what .. "[" .. i .. "]") or ("item " .. i),
        type(v)), level)
    end
  end
end

-- The ctx user_brief and messages read, checked at once (level 4: their caller's frame)
local function check_ctx(fname, ctx)
  if type(ctx) ~= "table" then bad(fname, 1, "ctx table expected, got " .. type(ctx), 4) end
  check_card(fname, 1, ctx.card, "ctx.card: ", 4)
  for _, k in ipairs { "deps", "comments", "memory", "tools" } do check_list(fname, 1, ctx[k], "ctx." .. k, 4) end
  if ctx.verification ~= nil and type(ctx.verification) ~= "table" then
    bad(fname, 1, "ctx.verification: table expected, got " .. type(ctx.verification), 4)
  end
  if ctx.history ~= nil and type(ctx.history) ~= "table" then
    bad(fname, 1, "ctx.history: table expected, got " .. type(ctx.history), 4)
  end
end

--- brief(card) -> text: id, summary, description, note, requirements, acceptance
function M.brief(card)
  check_card("brief", 1, card)
  local out = { string.format("Issue %s: %s", card.id or "?", card.summary or card.name or "") }
  add(out, "Description", card.description)
  add(out, "Note", card.note)
  add(out, "Requirements", card.requirements)
  add(out, "Acceptance criteria", card.acceptance)
  return table.concat(out, "\n\n")
end

--- dependencies(deps) -> text: each dependency's id, status, summary and outcome, the
--- finished ones (done) apart from the others, so the model is not told that work is
--- finished when it is not (a turn taken early: the REPL, an operator's retry)
function M.dependencies(deps)
  check_list("dependencies", 1, deps)
  if not deps or #deps == 0 then return "" end
  local done, open = {}, {}
  for _, d in ipairs(deps) do
    local list = d.status == "done" and done or open
    list[#list + 1] = string.format("- %s (%s): %s", d.id, d.status, d.summary or "")
    if d.outcome and d.outcome ~= "" then list[#list + 1] = "  outcome: " .. d.outcome end
  end
  local parts = {}
  if #done > 0 then parts[#parts + 1] = "Finished work this issue builds on:\n" .. table.concat(done, "\n") end
  if #open > 0 then
    parts[#parts + 1] = "Work this issue builds on that is not finished yet:\n" .. table.concat(open, "\n")
  end
  return table.concat(parts, "\n\n")
end

--- comments(list) -> text, oldest first ("author: body")
function M.comments(list)
  check_list("comments", 1, list)
  if not list or #list == 0 then return "" end
  local out = { "Comments on this issue:" }
  for _, c in ipairs(list) do out[#out + 1] = string.format("- %s: %s", c.author or "?", c.body or "") end
  return table.concat(out, "\n")
end

--- memory(entries) -> text: recalled project memory with source card and age
function M.memory(entries)
  check_list("memory", 1, entries)
  if not entries or #entries == 0 then return "" end
  local out = { "Project memory that may be relevant:" }
  for _, m in ipairs(entries) do
    out[#out + 1] = string.format("- [%s, %d days old] %s", m.card or "project", m.age_days or 0, m.text)
  end
  return table.concat(out, "\n")
end

--- tool_dialect(tools) -> instructions for models without native tool calling
function M.tool_dialect(tools)
  check_list("tool_dialect", 1, tools)
  local out = { "You can use these tools. To call one, reply with a JSON object on its own, "
    .. "like {\"tool\": \"NAME\", \"args\": {...}}; several calls may follow each other. "
    .. "Reply without any JSON object when you are finished.", "" }
  for _, t in ipairs(tools or {}) do
    out[#out + 1] = string.format("- %s: %s\n  parameters: %s", t.name, t.description or "",
      -- keys sorted: the same bytes in every process (a prompt cache keeps them)
      jsonout.encode(schemas.plain(t.parameters or {})) or "{}")
  end
  return table.concat(out, "\n")
end

--- verification(v) -> text: the engine's last run of the card's acceptance checks
--- ({passed=, command=, reason=, code=, output=}, engine/verify.lua's last), for reviewers
function M.verification(v)
  if not v then return "" end
  if type(v) ~= "table" then bad("verification", 1, "table expected, got " .. type(v)) end
  return string.format("Acceptance checks run by the engine: %s (%s: %s%s)%s", v.passed == 1 and "passed" or "failed",
    v.command, v.reason, v.code and (" " .. v.code) or "", (v.output or "") ~= "" and ("\nOutput (tail):\n" .. v.output) or "")
end

--- user_brief(ctx) -> the first user message: brief, dependencies, comments, verification, memory
function M.user_brief(ctx)
  check_ctx("user_brief", ctx)
  -- each part is one string ("" when empty): kept in order without a list to walk
  local parts = { M.brief(ctx.card) }
  local deps, comments = M.dependencies(ctx.deps), M.comments(ctx.comments)
  local verification, memory = M.verification(ctx.verification), M.memory(ctx.memory)
  if deps ~= "" then parts[#parts + 1] = deps end
  if comments ~= "" then parts[#parts + 1] = comments end
  if verification ~= "" then parts[#parts + 1] = verification end
  if memory ~= "" then parts[#parts + 1] = memory end
  return table.concat(parts, "\n\n")
end

-- What every seat's system message says, before the project's name: the same for every
-- role, so seats share it (and the tools a template renders after it) in a prompt cache.
M.TEAM = "You are a member of a software team that works through a board of issues with "
  .. "tools. The issue you work on and your part in it follow."

--- messages(ctx, role_text) -> {system, user, history...}, laid out for a prompt cache
--- (docs/cost.md): the system message holds only what every seat of the project shares
--- (M.TEAM, the project's name and vision; with ctx.dialect == "json" the tool
--- instructions), so a chat template's tools, rendered after it, follow a start that is
--- the same for every seat; the user message is the card's brief, then the role's text;
--- then the turn's history.
function M.messages(ctx, role_text)
  check_ctx("messages", ctx)
  local sys = M.TEAM
  if ctx.project and ctx.project.name then
    sys = sys .. "\n\nProject: " .. ctx.project.name .. (ctx.project.vision and (" - " .. ctx.project.vision) or "")
  end
  if ctx.dialect == "json" then sys = sys .. "\n\n" .. M.tool_dialect(ctx.tools) end
  local user = M.user_brief(ctx)
  if type(role_text) == "string" and role_text:find("%S") then user = user .. "\n\n" .. role_text end
  local msgs = { { role = "system", content = sys }, { role = "user", content = user } }
  for _, m in ipairs(ctx.history or {}) do msgs[#msgs + 1] = m end
  return msgs
end

return M
