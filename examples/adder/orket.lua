-- The adder example: a card whose acceptance checks fail on the first version, pass after
-- the rework, and only then reach review and done. Offline: the scripted model; the checks
-- need only sh (docs/verify.md).
name = "adder"
vision = "A command that adds two numbers, verified by running it."
models = {
  default = "scripted:team",
  providers = { scripted = { kind = "scripted", file = "script.lua" } },
}
team = {
  senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" } },
}
concurrency = 1
