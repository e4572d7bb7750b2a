-- The notes-web example: the scripted team builds a tiny web notes service (Python's
-- standard library), and each epic done deploys main's tree to a sandbox (docs/sandbox.md).
name = "notes-web"
vision = "A tiny web notes service, built, deployed and fixed by the team."
models = {
  default = "scripted:team",
  providers = { scripted = { kind = "scripted", file = "script.lua" } },
}
team = {
  lead_architect = { roles = { "architect" } },
  senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" } },
}
concurrency = 2
review = { escalate_after = 2, requirements_review_after = 3 }
sandbox = {
  command = { "python3", "app.py" },
  health = { http = "/health", interval_ms = 1000, timeout_ms = 1000, failures = 3, start_timeout_ms = 20000 },
  deploy = "epic",
}
