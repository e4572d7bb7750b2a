-- Epics may be Lua files returning the same shape as the JSON ones.
return {
  id = "WEB",
  name = "Web front end",
  description = "A single-page app over the notes API.",
  priority = "Medium",
  depends_on = { "API" },
  issues = {
    { id = "WEB-1", summary = "Notes list and editor", seat = "senior_developer",
      priority = "High", depends_on = { "API-2" } },
    { id = "WEB-2", summary = "Sign-in page", seat = "senior_developer",
      priority = "Medium", depends_on = { "API-3", "WEB-1" } },
    { summary = "Accessibility pass", seat = "integrity_guard", priority = "Low",
      depends_on = { "WEB-1" } },
  },
}
