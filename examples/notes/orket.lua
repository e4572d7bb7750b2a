-- The notes example: a small team finishing one epic with the offline scripted model.
name = "notes"
vision = "A tiny notes service, built end to end by the team."
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
