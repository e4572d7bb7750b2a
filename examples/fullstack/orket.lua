-- The fullstack example: the scripted team builds a small app of three services, a
-- SQLite database seeded from the repository, a JSON API (Python's standard library) and a
-- static page in plain JS behind a small server, described by the repository's own
-- compose.yaml. The epic done deploys them to one sandbox (docs/sandbox.md, *Several
-- services*, *A database per sandbox*).
name = "fullstack"
vision = "An items list a person uses in a browser: frontend, backend and database, deployed together."
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
  -- the frontend is reached through the sandbox's socket; its /api/health asks the backend
  health = { http = "/api/health", interval_ms = 1000, timeout_ms = 1000, failures = 3, start_timeout_ms = 20000 },
  deploy = "epic",
}
