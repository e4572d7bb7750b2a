-- Orket's default policy. A project's policies/default.lua replaces this file; other files
-- in a project's policies/ add to it. See docs/policies.md.

-- Secrets stay out of reach of every agent.
deny {
  tool = "*_file", path = { "**/*.env", "**/.env.*", "**/*.pem", "**/id_rsa*" },
  reason = "secrets files are off limits",
  remedy = "Do not read or change credentials; ask the developer with request_input if you need a setting.",
}

-- Deleting is irreversible: a developer approves each one.
ask {
  tool = "delete_file",
  reason = "deleting files needs a developer's approval",
  remedy = "Wait for approval, or leave the file and say in a comment why it should go.",
}
