-- The notes epic for a local model served by Ollama (see README.md). Nothing here is
-- scripted: every turn asks the model.
name = "ollama-notes"
vision = "A tiny notes service, built end to end by a team running on a local model."
models = {
  default = "ollama:qwen2.5-coder:7b",
  -- OLLAMA_HOST overrides base_url (host, host:port or a URL).
  providers = { ollama = { kind = "ollama", base_url = "http://127.0.0.1:11434",
    timeouts = { first_byte_ms = 300000, idle_ms = 120000 } } },
}
team = {
  lead_architect = { roles = { "architect" } },
  senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" } },
}
-- One model on one machine answers one request at a time; more only queue.
concurrency = 1
budgets = { turns_per_card = 8, steps_per_turn = 16, tokens_per_card = 300000 }
review = { escalate_after = 2, requirements_review_after = 3 }
context = { max_chars = 24000, recent_steps = 6 }
