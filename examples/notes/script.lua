-- Scripted answers for the notes team (docs/llm.md). Rules match the turn's role, card and
-- turn number, and a pattern on the last message: the brief starts "Issue ", a tool result
-- is JSON. NOTES-2 is rejected once in review (its turn 2) and fixed in turn 3.
local function call(name, args) return { name = name, arguments = args } end
local function work(card, path, content)
  return {
    { role = "coder", card = card, match = "^Issue ", reply = { tool_calls = {
      call("write_file", { path = path, content = content }),
      call("add_issue_comment", { body = "Wrote " .. path .. "." }) } } },
  }
end
local rules = {
  -- NOTES-2: the first version misses validation; review sends it back; the fix adds it.
  { role = "integrity_guard", card = "NOTES-2", turn = 2, match = "^Issue ", reply = { tool_calls = {
    call("add_issue_comment", { body = "store.lua does not reject empty notes; acceptance says it must." }),
    call("update_issue_status", { status = "in_progress" }) } } },
  { role = "coder", card = "NOTES-2", turn = 3, match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "store.lua", content = "local M = {}\nfunction M.save(db, text)\n  assert(text ~= '', 'empty note')\n  db[#db + 1] = text\nend\nreturn M\n" }),
    call("add_issue_comment", { body = "store.lua now rejects empty notes." }) } } },
  { role = "architect", card = "NOTES-1", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "schema.sql", content = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);\n" }),
    call("add_issue_comment", { body = "schema.sql has the notes table." }) } } },
}
for _, r in ipairs(work("NOTES-2", "store.lua", "local M = {}\nfunction M.save(db, text) db[#db + 1] = text end\nreturn M\n")) do rules[#rules + 1] = r end
for _, r in ipairs(work("NOTES-3", "list.lua", "return function(db) return db end\n")) do rules[#rules + 1] = r end
for _, r in ipairs(work("NOTES-4", "README.md", "# Notes\n\nsave(db, text) and list(db).\n")) do rules[#rules + 1] = r end
-- After writing: hand in for review. Reviewers approve by default.
rules[#rules + 1] = { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } }
rules[#rules + 1] = { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } }
rules[#rules + 1] = { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } }
return { rules = rules, default = { content = "Nothing more to do." } }
