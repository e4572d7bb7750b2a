-- Scripted answers for the offline model (docs/llm.md): rules match the turn's role and card
-- and a pattern on the last message (the brief starts "Issue ", a tool result is JSON).
-- Switch models.default in orket.lua to a real model and this file is no longer used.
local function call(name, args) return { name = name, arguments = args } end
local function work(card, path, content)
  return { role = "coder", card = card, match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = path, content = content }),
    call("add_issue_comment", { body = "Wrote " .. path .. "." }) } } }
end
return {
  rules = {
    work("START-1", "hello.txt", "Hello, and welcome to the project.\n"),
    work("START-2", "README.md", "# Project\n\nhello.txt greets the reader.\n"),
    -- After writing: hand the issue in for review; the reviewer approves.
    { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
    { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
  },
  default = { content = "Nothing more to do." },
}
