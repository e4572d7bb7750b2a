-- Project settings (docs/engine.md). This file runs in a restricted environment.
name = "PROJECT"
vision = "Say in a sentence what this project is for."
-- The scripted model answers from script.lua, offline, so the first run works at once.
-- For a local model: default = "ollama:qwen2.5-coder:7b" (the ollama provider is built in).
models = {
  default = "scripted:starter",
  providers = { scripted = { kind = "scripted", file = "script.lua" } },
}
team = {
  lead_architect = { roles = { "architect" } },
  senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" } },
}
concurrency = 3
budgets = { turns_per_card = 6, steps_per_turn = 12, tokens_per_card = 200000 } -- turns: work, rework, escalation; reviews count apart
review = { escalate_after = 2, requirements_review_after = 3 }
