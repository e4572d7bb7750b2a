-- orket.serve.auth: who a request is. Once any key (or local account) was ever made, every request but the
-- probes needs "Authorization: Bearer ork_..." (orket.serve.keys checks it); revoking the
-- last key does not open the server again. Before that, a server on loopback serves local
-- use with the operator role, if the Host is a loopback name (a web page cannot reach the
-- board through DNS rebinding); orket serve refuses other addresses without a key. Its
-- writes need this user's unix socket or the local token (orket.serve.localuse).
local keys = require "orket.serve.keys"
local accounts = require "orket.serve.accounts"
local session = require "orket.serve.session"
local localuse = require "orket.serve.localuse"
local jwt = require "orket.auth.jwt"
local signin = require "orket.serve.signin"
local signin_settings = require "orket.settings.signin"
local stored_keys = require "orket.store.keys"

local crypto = require "orket.c.crypto"
local httpd = require "orket.c.httpd"

local M = {}

local Auth = {}
Auth.__index = Auth

--- new(db, dir, loopback[, token]) -> auth; loopback: the server listens on a loopback
--- address; token: the local token writes need before any key exists (without one, only
--- the unix socket writes)
function M.new(db, dir, loopback, token)
  return setmetatable({ db = db, dir = dir, loopback = loopback, token = token, hosts = {}, nhosts = 0 }, Auth)
end

-- Local use's identity, one table for every request (never changed by them)
M.LOCAL = { role = "operator", local_use = true }

local LOOPBACK_HOSTS = { localhost = true, ["127.0.0.1"] = true, ["[::1]"] = true }

--- loopback_host(host header) -> whether it names this machine
function M.loopback_host(h)
  if type(h) ~= "string" then return false end
  -- one pattern a request (each runs the step-counted matcher), chosen by the first byte
  local name = (h:byte(1) == 91 and h:match("^(%[[%x:]+%]):%d+$") or h:match("^([^:]+):%d+$")) or h
  name = name:lower()
  -- 127.x.y.z as an address (each part 0-255, no leading zero), not any digits ("127.999.0.1")
  return LOOPBACK_HOSTS[name] or (name:match("^127%.%d+%.%d+%.%d+$") ~= nil and httpd.is_loopback(name))
end

--- kept_per_host(owner, host, fn) -> fn(owner, host) (never nil), kept in owner.hosts for
--- the few Host names a server is sent (a browser's, a proxy's): a page's every request
--- asks. Past 64 names (owner.nhosts) the kept ones are dropped, so hostile Hosts cannot
--- grow it.
function M.kept_per_host(owner, host, fn)
  local known = owner.hosts[host]
  if known == nil then
    if owner.nhosts >= 64 then owner.hosts, owner.nhosts = {}, 0 end
    known = fn(owner, host)
    owner.hosts[host], owner.nhosts = known, owner.nhosts + 1
  end
  return known
end

local function loopback_of(_, h) return M.loopback_host(h) end

-- loopback_host of a Host, kept per name
local function loopback_known(self, h)
  if h == nil then return false end
  return M.kept_per_host(self, h, loopback_of)
end

--- auth:check(req[, own, dv]) -> identity {id=, name=, role=} | nil, status, code, message, why
--- [, remedy[, as]] (why: for the server's log only: malformed, unknown, wrong, revoked, missing,
--- store: ...; 503 when the store cannot be read; remedy: where the code's own text fits the
--- refusal loosely; as: the id a valid credential refused for its request would act as, a
--- session's refused for its CSRF token, for the log line's key). A directory's person is looked up again when it is
--- time (orket.serve.directory: the call may wait for the directory); a provider's
--- person's key is refused past its lifetime.
function Auth:check(req, own, dv)
  -- keys are never deleted (revoking keeps the row), so once one exists it always will:
  -- the store is asked (one read) until then, not on every request after; and with the
  -- store's stamp (own, dv: db.conn:stamp(), read before, SQLite's) not while it stays
  -- the same as when the answer was none: no connection wrote to the store since
  if self.loopback and not self.keyed and not (own and own == self.none_own and dv == self.none_dv) then
    -- a provider set up (sign_in.oidc) means people sign in: no local use either
    local made, merr = self.oidc ~= nil, nil
    if not made then made, merr = keys.any_made(self.db) end
    if made == nil then return session.unavailable(merr) end
    self.keyed = made
    self.none_own, self.none_dv = own, dv
  end
  if self.loopback and not self.keyed then
    local headers, method = req.headers, req.method -- each field of a request is a call into C
    if not loopback_known(self, headers.host) then
      return nil, 403, "forbidden", "without API keys only loopback host names are served; create a key "
        .. "(orket keys create) to serve other names", "host"
    end
    if session.foreign_write(req, method, headers) then return nil, 403, "forbidden", "a write from another web origin", "origin" end
    -- a page of another origin (a sandbox's app among them) reads nothing either, but from
    -- the origins serve.cors lists
    local o = headers.origin
    if session.foreign_page(req, method, headers) and not (o and self.cors and self.cors[o:lower()]) then
      return nil, 403, "forbidden", "a request from a page of another web origin", "origin"
    end
    if not localuse.allows(req, self.token, method) then
      return nil, 401, "unauthorized", "without API keys a write needs the local token (" .. localuse.TOKEN_FILE
        .. ", as Authorization: Bearer) or the unix socket (" .. localuse.SOCKET .. ")", "token"
    end
    return M.LOCAL
  end
  local who, st, code, msg, why, remedy, as = self:_person(req, own, dv)
  if not who then return nil, st, code, msg, why, remedy, as end
  local fine
  fine, st, code, msg, why, remedy = self:vouch(who)
  if not fine then return nil, st, code, msg, why, remedy end
  -- the directory answered: their role as it is now (their groups may have changed; it
  -- may have written them since the stamp was read, so none is passed)
  if st then return self:_person(req) end
  return who
end

--- auth:vouch(who) -> true[, looked (the directory answered: read their role again)] |
--- nil, status, code, message, why[, remedy]: whether the person a credential names may still act,
--- beyond the store: a directory's person as the directory says now (orket.serve.directory:
--- may wait for it), a provider's person's key within its lifetime. Every way a person's
--- credential is taken asks it (requests here, apps' sessions on their own origins).
function Auth:vouch(who)
  if who.source == "ldap" and self.directory then return self.directory:check(self.db, who) end
  if who.source == "oidc" and who.key_id then
    local fine, st, code, msg, why, remedy = self:_lasting(who)
    if not fine then return nil, st, code, msg, why, remedy end
  end
  return true
end

-- A personal key of a provider's person works sign_in.oidc.key_lifetime_days after it was
-- made: the provider cannot be asked about a person without their token, so a key must
-- not outlive what it vouched for indefinitely (docs/teams.md, "Offboarding")
function Auth:_lasting(who)
  local days = self.oidc and self.oidc.cfg.key_lifetime_days or signin_settings.KEY_LIFETIME_DAYS
  local cutoff = os.date("!%Y-%m-%dT%H:%M:%S.000Z", os.time() - days * 86400)
  local old, serr = stored_keys.made_before(self.db, who.key_id, cutoff)
  if old == nil then return session.unavailable(serr) end
  if old then
    return nil, 401, "unauthorized", string.format("this key of a person of the identity provider is more than %d "
      .. "days old (sign_in.oidc.key_lifetime_days): sign in again and make a new one", days), "key_expired",
      "sign in through the provider (the board's link, or its token as Authorization: Bearer) and make a new key "
        .. "with that session (POST /v1/me/keys; docs/teams.md#offboarding)"
  end
  return who
end

-- API keys verified under one store stamp: the key's id (its "ork_" and 16 hex digits, no
-- secret) -> {header=, who=}, 64 at most (then all dropped). Only keys that were valid are
-- kept; a request's header is compared with the kept one in constant time (crypto.equal),
-- as a key's hash is: a table lookup by the whole header would compare its secret with
-- memcmp.
M.MAX_VERIFIED = 64

-- the cache's key for an Authorization header: its key id, nil when there is none
local function key_id(h)
  local at = h:find("ork_", 1, true)
  return at and h:sub(at, at + 19) or nil
end

-- who the request's session, key or provider token is (before the directory's look); with
-- the store's stamp (own, dv: read before), an API key verified while it stayed the same
-- is not read and hashed again: no connection wrote to the store since (a key revoked, a
-- person disabled or demoted moves it)
function Auth:_person(req, own, dv)
  local h = req.headers.authorization
  if not h and session.token_of(req) then -- the web board
    -- its cookie acts for the board's own page only: never for a page of another origin,
    -- such as a sandbox's app on a host of the same site
    if session.foreign_page(req) then
      return nil, 403, "forbidden", "the board's session acts only for the board's own page", "origin",
        -- said to the person: the page asking may be an app an agent wrote, not to be
        -- invited to ask for a credential of its own
        "open the board itself, at this server's own address: your sign-in acts there only, never "
          .. "for a page of another origin such as a sandbox's app (docs/serve.md#apps-on-their-own-origins)"
    end
    return session.check(self.db, req)
  end
  local verified
  if own and h then -- found by the header's whole text, before its pattern (compiled each use)
    if own ~= self.verified_own or dv ~= self.verified_dv then
      self.verified, self.nverified, self.verified_own, self.verified_dv = {}, 0, own, dv
    end
    verified = self.verified
    local id = key_id(h)
    local known = id and verified[id]
    if known and crypto.equal(known.header, h) then return known.who end
  end
  local token = h and h:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +(%S+) *$")
  if not token then
    -- said apart: a header that is there but not a bearer key is a client's mistake to fix,
    -- none at all is someone not signed in yet
    if h then
      return nil, 401, "unauthorized", "the Authorization header is not a bearer key: send Authorization: Bearer <key>",
        "malformed"
    end
    return nil, 401, "unauthorized", "this needs a sign-in or an API key, and the request carried neither (no session "
      .. "cookie, no Authorization header)", "missing"
  end
  -- a JWT (three base64url parts; an API key has none of its dots) of the provider
  if self.oidc and jwt.looks_like(token) then return signin.bearer(self.db, self.oidc, token, self.project_roles) end
  local perr, pcode
  if not self.pepper then self.pepper, perr, pcode = keys.pepper(self.dir, false) end
  local who, why, serr = nil, "no pepper", nil
  if self.pepper then who, why, serr = keys.verify(self.db, self.pepper, token) end
  -- a pepper that is there but damaged or readable by others: not "has no pepper" of a file
  -- that is there. Its cause and fix (orket.serve.keys) are the operator's, in the log line
  -- and the start's warning: whoever sends a key-shaped word is told no file's mode or state
  if not self.pepper and pcode ~= "ENOENT" and keys.parse(token) then
    local cause = tostring(perr):match("^(.-); ") or tostring(perr)
    return nil, 401, "unauthorized", "this server cannot check API keys: its key pepper cannot be used",
      "pepper: " .. cause, "the server's operator has the cause and its fix in the server's log (a warning at its "
      .. "start, and this request's line)"
  end
  -- a folder of the store with no pepper of its own (made by init against a shared store)
  -- can check no key: said so, not as a key mistyped or revoked
  if not self.pepper and keys.parse(token) then
    -- (the file named as in the folder, not by its path on the server's machine)
    return nil, 401, "unauthorized", "this server cannot check API keys: its folder has no .orket/keys.pepper (keys "
      .. "are checked with the pepper of the folder they were made in)", why,
      "copy .orket/keys.pepper (mode 0600) from the folder where the keys were made: every folder of one store "
      .. "shares it (docs/teams.md#keys)"
  end
  if why == "store" then return session.unavailable(serr) end
  if not who then
    -- the local token of a start before any key or person: not a key, and over now
    if localuse.looks_like(token) then
      return nil, 401, "unauthorized", "the local token works only before any key or person exists and without "
        .. "sign_in.oidc: sign in as a person, or send an API key ('orket keys create')", "local token"
    end
    return nil, 401, "unauthorized", "the API key is not valid", why, session.KEY_REMEDY
  end
  who, why = accounts.of_key(self.db, who)
  if not who then return nil, 401, "unauthorized", "the key's person was disabled", why, session.DISABLED_REMEDY end
  if verified then
    if self.nverified >= M.MAX_VERIFIED then
      verified = {}
      self.verified, self.nverified = verified, 0
    end
    local id = key_id(h)
    if id then verified[id], self.nverified = { header = h, who = who }, self.nverified + 1 end
  end
  return who
end

return M
