-- orket.audit.revoking: the acts that take a power away from a person or a key, one list for
-- everything that must know them: the server's event streams check their readers again
-- before such a row is delivered (orket.serve.events), the proxy's memory asks its keys again
-- (orket.serve), and a restore that would drop such an entry is refused unless told
-- (orket.audit.restore: undone, a leaked key working again). Three lists kept apart had
-- parted: the restore's missed a project's removal and a sign-out, so an older backup gave a
-- removed project's members their access back and revived a signed-out session's cookie.
local M = {}

--- ACTS: each act, once: its journal kind; its audit action, where it is not the kind (a
--- sign-out is journaled session_end and audited sign_out); what it took away, in words; and
--- keys, whether it can take an API key's right (a password changed or a sign-out ends a
--- person's sessions, never a key's right).
M.ACTS = {
  { kind = "key_revoke", words = "a key revoked", keys = true },
  { kind = "user_disable", words = "a person disabled", keys = true },
  { kind = "user_password", words = "a password changed" },
  { kind = "user_role", words = "a server role changed", keys = true },
  { kind = "member_revoke", words = "a membership revoked", keys = true },
  -- (a grant of another role may be a demotion)
  { kind = "member_grant", words = "a project role changed", keys = true },
  { kind = "project_remove", words = "a project removed, and its memberships with it", keys = true },
  -- (serve.projects naming another store: the old store's members dropped)
  { kind = "project_rebound", words = "a project bound to another store, its memberships dropped", keys = true },
  { kind = "session_end", action = "sign_out", words = "a session signed out" },
}

--- KINDS: the journal kinds of ACTS, a set; KEY_KINDS: those that can take a key's right;
--- ACTIONS: audit action -> its words
M.KINDS, M.KEY_KINDS, M.ACTIONS = {}, {}, {}
for _, a in ipairs(M.ACTS) do
  M.KINDS[a.kind] = true
  if a.keys then M.KEY_KINDS[a.kind] = true end
  M.ACTIONS[a.action or a.kind] = a.words
end

return M
