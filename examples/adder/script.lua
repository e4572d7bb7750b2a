-- Scripted answers for the adder example (docs/llm.md). The first version of add.sh
-- subtracts; the engine's acceptance checks fail and send the card back with their output;
-- the rework (turn 2) fixes it; the checks pass and the reviewer approves.
local function call(name, args) return { name = name, arguments = args } end
local rules = {
  { role = "coder", card = "ADD-1", turn = 1, match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "add.sh", content = "#!/bin/sh\n# add.sh A B: prints A + B\necho $(($1 - $2))\n" }) } } },
  { role = "coder", card = "ADD-1", turn = 2, match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "add.sh", content = "#!/bin/sh\n# add.sh A B: prints A + B\necho $(($1 + $2))\n" }) } } },
  -- after writing: hand in; the engine runs the checks before review
  { role = "coder", match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "ready_for_testing" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = {
    call("add_issue_comment", { body = "Checks pass; add.sh adds." }),
    call("update_issue_status", { status = "done" }) } } },
}
return { rules = rules, default = { content = "Nothing more to do." } }
