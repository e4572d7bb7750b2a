-- orket.auth.ldap: a person's name and password checked by the LDAP directory of
-- sign_in.ldap (orket.c.ldap: libldap finds their entry with the name escaped by its own
-- filter escaping, binds as it, lists their groups), and the role their groups give
-- (sign_in.roles). The service's bind password is secret "NAME" or named by an environment
-- variable; a bind_dn with none is never bound (an unauthenticated bind).
local ldap = require "orket.c.ldap"
local rt = require "orket.c.runtime"
local semaphore = require "orket.semaphore"
local secret = require "orket.settings.secret"
local signin = require "orket.settings.signin"

local M = {}

M.TIMEOUT_MS = 5000
M.IN_FLIGHT = 1 -- sign-ins' directory checks running at once in this process
M.LOOKS_IN_FLIGHT = 1 -- and, apart, the server's looks at people signed in
M.NO_ROLE = "none of this person's groups has a role on this server"

-- Each check holds a thread of libuv's pool (libldap's calls block) for up to a few
-- timeout_ms: a directory that hangs must not take them all, or local accounts' Argon2,
-- files and DNS wait behind it. The others wait their turn, at most timeout_ms. Looks
-- have a gate of their own: anyone can queue sign-ins, and they must not hold up (or
-- time out) the looks that keep people's access current.
local gates = { verify = semaphore.new(M.IN_FLIGHT), lookup = semaphore.new(M.LOOKS_IN_FLIGHT) }

-- ldap[which](opts, ...) with a slot of which's gate | nil, msg, EUNAVAILABLE (none came
-- within timeout_ms)
local function gated(which, opts, ...)
  local gate = gates[which]
  local slot <close> = gate:hold(rt.now() + opts.timeout_ms)
  if not slot then
    return nil, "the directory is busy: " .. gate.limit .. " " .. which .. " checks are waiting on it already",
      "EUNAVAILABLE"
  end
  return ldap[which](opts, ...)
end

-- the options of orket.c.ldap for cfg | nil, msg, code (the bind password unavailable)
local function options(cfg)
  -- the environment variable bind_password_env, else secret "NAME" (orket.settings.secret)
  local bind_password, perr, pcode = secret.value(cfg.bind_password, cfg.bind_password_env)
  if perr then return nil, perr, pcode end
  -- a bind_dn with no password would be an unauthenticated bind, which a directory may take
  -- for anonymous: not sent (orket validate and the server's start refuse it already:
  -- orket.settings.signin's service_password; the variable may have gone since)
  if cfg.bind_dn and not bind_password then
    return nil, signin.NO_BIND_PASSWORD .. (cfg.bind_password_env and (" (" .. cfg.bind_password_env
      .. " is unset or empty)") or ""), "EUNAVAILABLE"
  end
  return { url = cfg.url, base_dn = cfg.base_dn, user_attr = cfg.user_attr or "uid", bind_dn = cfg.bind_dn,
    bind_password = bind_password,
    group_base_dn = cfg.group_base_dn, timeout_ms = cfg.timeout_ms or M.TIMEOUT_MS }
end

-- the person the directory's answer (who: orket.c.ldap's) makes name: {name, role (nil: none),
-- dn, uuid, groups, groups_known}. groups_known: an empty groups is the directory's word
-- that they are in none (no group_base_dn: groups are not looked up at all; else the bind
-- could read some group's members), not a bind that may not read members
local function answer(cfg, roles, name, who)
  return { name = name, role = signin.role_of(who.groups, roles or {}, cfg.default_role), dn = who.dn,
    uuid = who.uuid, groups = who.groups, groups_known = cfg.group_base_dn == nil or #who.groups > 0
      or who.members_seen == true }
end

-- the person a sign-in's answer makes | nil, msg, code[, answer (their groups give no role)]
local function person(cfg, roles, name, who, err, code)
  if not who then return nil, err, code end
  local p = answer(cfg, roles, name, who)
  if not p.role then return nil, M.NO_ROLE, "EAUTH", p end
  return p
end

--- verify(cfg, roles, name, password) -> {name, role, dn, uuid, groups, groups_known} | nil,
--- msg, code[, answer]: cfg is sign_in.ldap; EAUTH for no such person, a wrong password or no
--- role (then answer: the directory's, bound as the person, their role nil);
--- EUNAVAILABLE when the directory cannot be reached; EINVAL for an empty password
function M.verify(cfg, roles, name, password)
  local opts, err, code = options(cfg)
  if not opts then return nil, err, code end
  return person(cfg, roles, name, gated("verify", opts, name, password))
end

--- lookup(cfg, roles, name) -> {name, role (nil: their groups give none), dn, uuid, groups,
--- groups_known} | nil, msg, code: the server's look at someone signed in, without their
--- password (their entry and groups, as the search's own bind sees them); EAUTH only for no
--- entry of that name under a base_dn that exists, EUNAVAILABLE for anything about the
--- directory
function M.lookup(cfg, roles, name)
  local opts, err, code = options(cfg)
  if not opts then return nil, err, code end
  local who, lerr, lcode = gated("lookup", opts, name)
  if not who then return nil, lerr, lcode end
  return answer(cfg, roles, name, who)
end

return M
