-- orket.serve.session: sign-in for browsers (the web board). POST /v1/session trades an API
-- key, or a local account's name and password (orket.serve.accounts), for a session cookie
-- (HttpOnly, SameSite=Strict), since EventSource cannot send an Authorization header. The token is random (orket.c.crypto); the store keeps only its
-- BLAKE2b (orket.store.sessions, migration 12). A write made with the cookie must carry the CSRF token
-- the sign-in returned (X-CSRF-Token, compared in constant time). orket.serve.auth asks
-- check() when a request has the cookie and no Authorization header. Signing in and out are
-- journaled (session_start, session_end) with the key's id (or "user:NAME") as the actor,
-- and audited as every write through the server is (orket.serve.writes: an api_write event
-- and an entry of the audit's chain, actions sign_in and sign_out, in the session row's
-- transaction); a failed sign-in is counted and logged, never audited (a flood would grow
-- the chain): against the address, and a password's against the name tried too (the
-- store's buckets, every server's: docs/serve.md, Limits). GET /v1/session/audit lists
-- the caller's own sign-ins and sign-outs.
local accounts = require "orket.serve.accounts"
local identity = require "orket.serve.identity"
local jsonout = require "orket.jsonout"
local sj = require "orket.store.journal_reads"
local cookie = require "orket.serve.cookie"
local crypto = require "orket.c.crypto"
local httpd = require "orket.c.httpd"
local keys = require "orket.serve.keys"
local projects = require "orket.serve.projects"
local routes = require "orket.serve.routes"
local sessions = require "orket.store.sessions"
local users = require "orket.store.users"
local uv = require "luv"
local openapi = require "orket.serve.openapi"
local writes = require "orket.serve.writes"

local err = routes.err

local M = {}

M.COOKIE = "orket_session"
M.TTL_S = 8 * 3600     -- a session ends 8 hours after sign-in, whatever it does
M.MAX_PER_KEY = 20     -- older sessions of a key beyond this are ended at sign-in

local SAFE = { GET = true, HEAD = true, OPTIONS = true }

-- What a refused sign-in or an ended session tells its person to do. Each says the same
-- whichever of its causes it was (an unknown name, a wrong password, a person disabled; a
-- key mistyped or revoked), so that it never tells which names or keys exist: the server's
-- log says which (its line's auth). A whole, valid key of a disabled person is told so
-- (DISABLED_REMEDY), at a sign-in as when sent as a bearer key: its holder has the secret.
M.SIGN_IN_AGAIN = "sign in again: the board's sign-in page, or POST /v1/session with {\"user\", \"password\"} or "
  .. "{\"key\"} (docs/serve.md#sessions-csrf-and-cors)"
M.PASSWORD_REMEDY = "check both and try again (a name is taken in lower case, a password as typed); a person who "
  .. "signs in through the organisation's provider uses its link instead. Still refused: the password may have "
  .. "been changed or the person disabled, which a server admin sets right (orket users passwd NAME or enable NAME; "
  .. "docs/teams.md#people-the-api). Ten failures for one name hold it off a minute at a time"
M.DISABLED_REMEDY = "a server admin enables them again (orket users enable NAME, or POST /v1/users/NAME/enable), "
  .. "which brings their keys back; then sign in again. A person of the directory whose name it now gives to another "
  .. "entry (the server's log says 'belongs to another ldap subject') is not enabled so, which the next look undoes: "
  .. "orket users enable NAME --new-subject hands the name to that entry (docs/teams.md#offboarding)"
M.KEY_REMEDY = "send the whole key as it was shown when made (ork_, its id, _, its secret): a key mistyped, cut "
  .. "short or revoked is refused alike. A person makes a new one with POST /v1/me/keys once signed in with their "
  .. "name and password; a server admin with orket keys create or POST /v1/users/NAME/keys (docs/teams.md#keys)"

-- "ors_" and 64 hex digits: 256 random bits.
local function well_formed(t) return type(t) == "string" and #t == 68 and t:match("^ors_%x+$") ~= nil end

-- The stored form: the token has 256 random bits, so a plain hash cannot be reversed.
local function digest(token) return crypto.hash(token, 32) end

--- csrf_of(token) -> the CSRF token of a session: derived from its token (so it is not
--- stored), yet not the token (which the page never sees: the cookie is HttpOnly)
function M.csrf_of(token) return crypto.hash("csrf:" .. token, 32) end

--- token_of(req) -> the session token the request's Cookie header carries | nil
function M.token_of(req) return cookie.get(req, M.COOKIE) end

-- secure(req): the page came over https through a proxy: one on this machine (the
-- connection's peer on loopback), or one of serve.trusted_proxies (the peer the listener
-- trusts, whose X-Forwarded-For names the client too). Anyone else's X-Forwarded-Proto
-- could at worst make their own cookie Secure. The peer, not the client: behind a trusted
-- proxy the client's address is the one it forwards for.
local function secure(req)
  return (req.headers["x-forwarded-proto"] or ""):lower() == "https"
    and (req.trusted_peer == true or httpd.is_loopback(req.peer or req.remote or ""))
end
M.secure = secure

local function cookie(req, value, max_age)
  return string.format("Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", M.COOKIE, value,
    max_age, secure(req) and "; Secure" or "")
end

-- a write carries the session's CSRF token (a read needs none)
local function csrf_ok(req, token)
  if SAFE[req.method] then return true end
  local sent = req.headers["x-csrf-token"]
  return type(sent) == "string" and crypto.equal(sent, M.csrf_of(token))
end

--- check(db, req) -> identity {id, name, role, session} | nil, status, code, message, why:
--- the session of the request's cookie. A write (not GET/HEAD/OPTIONS) must also carry its
--- CSRF token, else 403.
--- unavailable(err) -> nil, 503, ...: the store could not be read (its primary lost, say),
--- which says nothing of the credential: not a 401, which would count against the address
function M.unavailable(err)
  return nil, 503, "unavailable", "the store cannot be reached just now; try again", "store: " .. tostring(err)
end

-- A write of a valid session without its CSRF token (a page of another site riding the
-- cookie, or a client's mistake): refused, with the id the session acts as (the key's, or
-- user:NAME), for the log line alone: whose session was aimed at
local function csrf_refused(as)
  return nil, 403, "forbidden", "a write made with a session cookie needs the X-CSRF-Token header that "
    .. "signing in returned", "csrf", "send the csrf of POST /v1/session's answer (or of GET /v1/session, which gives it "
    .. "again) as X-CSRF-Token with each write (docs/serve.md#sessions-csrf-and-cors)", as
end

function M.check(db, req)
  local token = M.token_of(req)
  if not well_formed(token) then
    return nil, 401, "unauthorized", "the session cookie is not valid; sign in again", "session_malformed", M.SIGN_IN_AGAIN
  end
  local h = digest(token)
  -- (judged by the store's clock: on PostgreSQL the database's, which every server shares)
  local row, rerr = sessions.lookup(db, h, os.time())
  if not row and rerr then return M.unavailable(rerr) end
  if not row then return M.check_person(db, req, token, h) end
  if row.revoked_at then
    sessions.delete_for_key(db, row.key_id)
    return nil, 401, "unauthorized", "the session's key was revoked; sign in again", "revoked",
      "sign in again with your name and password, or with a key not revoked (docs/serve.md#sessions-csrf-and-cors)"
  end
  if row.expires <= row.now then
    sessions.delete(db, h)
    return nil, 401, "unauthorized", "the session has expired; sign in again", "session_expired", M.SIGN_IN_AGAIN
  end
  if not csrf_ok(req, token) then return csrf_refused(row.key_id) end
  local who = accounts.of_key(db, { id = row.key_id, name = row.name, role = row.role, user = row.user_name })
  if not who then
    sessions.delete_for_key(db, row.key_id)
    return nil, 401, "unauthorized", "this person was disabled; their sessions have ended", "disabled", M.DISABLED_REMEDY
  end
  who.session, who.csrf, who.expires, who.key_session = h, M.csrf_of(token), row.expires, true
  return who
end

--- check_person(db, req, token, h) -> identity | nil, status, code, message, why: the
--- session of a local account (orket.serve.accounts), checked as a key's is; a person
--- disabled meanwhile is refused at once, and their sessions end.
function M.check_person(db, req, token, h)
  local row = users.session_lookup(db, h, os.time())
  -- signed out, expired and trimmed, ended by a new password or by a server admin: the
  -- store keeps no trace of which
  if not row then
    return nil, 401, "unauthorized", "the session is not valid (it was signed out of, expired, or was ended by a new "
      .. "password or a server admin); sign in again", "session_unknown", M.SIGN_IN_AGAIN
  end
  if row.disabled_at then
    db:tx(function() users.sessions_end(db, row.name) return true end)
    return nil, 401, "unauthorized", "this person was disabled; their sessions have ended", "disabled", M.DISABLED_REMEDY
  end
  if row.expires <= row.now then
    db:tx(function() users.session_delete(db, h) return true end)
    return nil, 401, "unauthorized", "the session has expired; sign in again", "session_expired", M.SIGN_IN_AGAIN
  end
  if not csrf_ok(req, token) then return csrf_refused(accounts.PREFIX .. row.name) end
  local who = accounts.identity(row.name, row.role, row.hash)
  who.session, who.csrf, who.expires = h, M.csrf_of(token), row.expires
  return who
end

--- foreign_write(req[, method, headers]) -> whether req is a write a page of another origin sent (its Origin
--- is not this server's). Without keys nothing else stops a page on any site from posting
--- to a server on loopback; browsers send Origin with every such write.
function M.foreign_write(req, method, h)
  -- the method first: most requests are reads, and each field is a call into C (a caller
  -- that read the method and headers already passes them)
  if SAFE[method or req.method] then return false end
  h = h or req.headers
  local origin = h.origin
  if origin == nil then return false end
  local host = h.host or ""
  return origin ~= "http://" .. host and origin ~= "https://" .. host
end

--- foreign_page(req[, method, headers]) -> whether a page of another origin sent req, as its browser says:
--- Sec-Fetch-Site cross-site or same-site (but a link followed, a GET navigation), or,
--- from a browser that does not say, an Origin on a write that is not this server's. A
--- sandbox's app on ID.sandbox.HOST is same-site to a board on HOST, so its script's
--- requests would carry the board's SameSite cookies: they are refused by this.
function M.foreign_page(req, method, h)
  h = h or req.headers
  local site = h["sec-fetch-site"]
  if site == nil then return M.foreign_write(req, method, h) end
  if site == "same-origin" or site == "none" then return false end
  return not (SAFE[method or req.method] and h["sec-fetch-mode"] == "navigate")
end

local function expires_at(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

M.SESSION_ID = 16 -- hex digits of the stored hash that name a session in the audit

-- audited(ctx, who, action, via, h): a sign-in or sign-out in the audit (in the caller's
-- transaction), as a write: who (the person, else the key), the way (key, password, oidc,
-- ldap), and the session as the start of its stored hash (which
-- names it for the auditor and matches a sign-in with its sign-out), never its token or its
-- CSRF token, which that hash does not give back
local function audited(ctx, who, action, via, h)
  -- no client address: the journal keeps its rows for ever, and the request's log line
  -- already ties the address to the person under the operator's own retention
  local subject = { via = via, session = h:sub(1, M.SESSION_ID) }
  if who.user then subject.person = who.user else subject.key, subject.keyid = who.name, who.id end
  -- the last server admin, whose groups would have demoted them, kept an admin: said where
  -- the sign-in is recorded (orket.serve.identity)
  if who.kept then subject.kept, subject.groups = "admin", who.groups_role end
  writes.audited(ctx, { actor = who.id, action = action, subject = subject, who = who })
end

--- via(who, with_key) -> the way who signed in, as the audit names it: "key" (an API key,
--- a person's own too), "password" (a local account), "oidc" or "ldap"
function M.via(who, with_key)
  if with_key then return "key" end
  if who.source == "oidc" or who.source == "ldap" then return who.source end
  return "password"
end

-- the session cookie for who, made now: token, CSRF token and expiry in the answer | nil
-- when who's person was disabled (or removed) after the sign-in checked them; via: the way
-- they signed in (M.via), for the audit. The person is read again inside the transaction
-- that inserts the session: a disable committed between the check and that transaction (the
-- CLI, another server) would otherwise leave a session its own deletion of sessions missed,
-- which an enable would bring back. Writes are one at a time on both stores (BEGIN
-- IMMEDIATE, the journal's lock), so a disable that commits later ends this session too.
local function start(req, ctx, who, insert, via)
  local token, db = "ors_" .. crypto.random_id(32), ctx.db
  local expires
  local refused = false
  local ok, terr = db:tx(function()
    -- dated by the clock its expiry is judged by (orket.store.sessions: the database's on
    -- PostgreSQL, so that a server whose clock is ahead or behind neither cuts it nor stretches it)
    local now = sessions.now(db, os.time())
    expires = now + M.TTL_S
    if who.user then
      local person = users.get(db, who.user)
      if not person or person.disabled_at then
        refused = true
        return nil, "disabled"
      end
    end
    local h = digest(token)
    insert(db, h, expires, now)
    -- who signed in: its id and name, never the key, the password or the token
    db:event { kind = "session_start", actor = who.id, data = { name = who.name, expires_at = expires_at(expires),
      kept_admin = who.kept } }
    audited(ctx, who, "sign_in", via, h)
    return true
  end)
  if refused then return nil end
  if not ok then error(terr) end
  if who.kept then ctx.note = who.kept end -- the sign-in's log line says it too
  ctx.headers = ctx.headers or {}
  table.insert(ctx.headers, cookie(req, token, M.TTL_S))
  return token, expires
end

--- start_person(req, ctx, who) -> token, expires | nil (the person disabled since the
--- check): a person's session cookie, made now (their oldest sessions beyond MAX_PER_KEY
--- end), audited as a sign-in the way their account says (M.via: a password, the provider,
--- the directory)
function M.start_person(req, ctx, who)
  return start(req, ctx, who, function(db, h, exp, now)
    users.sessions_trim(db, who.name, M.MAX_PER_KEY - 1, now)
    users.session_insert(db, h, who.name, exp)
  end, M.via(who))
end

--- start_key(req, ctx, who) -> token, expires | nil (a personal key's person disabled since
--- the check): a session of the key who signed in with (a server key's, or a person's key
--- as accounts.of_key gave it), made now (its oldest beyond MAX_PER_KEY end), audited as a
--- sign-in with a key
function M.start_key(req, ctx, who)
  return start(req, ctx, who, function(db, h, exp, now)
    assert(sessions.delete_expired(db, now))
    assert(sessions.keep_newest(db, who.key_id or who.id, M.MAX_PER_KEY - 1))
    assert(sessions.insert(db, h, who.key_id or who.id, exp))
  end, M.via(who, true))
end

-- The role a session's answer names: the key's, or the person's account role, never above
-- their key's own (a personal key's cap). Their role in each project is /v1/projects'.
local function own_role(who)
  return who.cap and projects.lower(who.role, who.cap) or who.role
end

-- 429: too many failed authentications from the address (or of: for the account name);
-- retry after wait s
local function limited(ctx, wait, of)
  ctx.headers = ctx.headers or {}
  table.insert(ctx.headers, "Retry-After: " .. wait)
  -- the remedy in seconds, for a person at the sign-in form (which shows it), not a header's name
  return err(429, "rate_limited", "too many failed " .. (of and "sign-ins for this name" or
    "authentications from this address") .. "; retry after " .. wait .. " s", "wait " .. wait .. " s and try "
    .. "again" .. (of and ", or ask a server admin to lift the hold on the name at once (orket users unlock NAME)"
    or "") .. " (docs/serve.md#limits)")
end

--- account_name(user) -> the name a password sign-in's failures are counted under: as
--- accounts are looked up (orket.serve.identity.verify: in lower case), whether one
--- exists or not, so that the limit does not tell which do
function M.account_name(user) return user:lower() end

-- the wait of either limit: the address's, else the account name's (nil when no name)
local function held_off(ctx, req, name)
  local wait = ctx.server.auth_fails:empty(req.remote, uv.now())
  if wait then return wait end
  local acct = name and ctx.server.account_fails
  wait = acct and acct:empty(name, uv.now())
  if wait then return wait, true end
end

-- the name's token, taken before its password is checked -> the bucket it came from |
-- false, wait: in one statement of the store's, so that servers checking guesses at once
-- never answer more of them than the name has tokens (a failure keeps it, a success or a
-- directory that could not be asked gives it back: only failures are counted)
local function reserve(ctx, name)
  local acct = ctx.server.account_fails
  if not acct then return true end
  return acct:reserve(name)
end
local function give_back(ctx, bucket)
  local acct = ctx.server.account_fails
  if acct and type(bucket) == "string" then acct:give(bucket) end
end

-- POST /v1/session {key} | {user, password}: a key, or a person's name and password, for
-- a session. A wrong one counts as a failed authentication (the same limit as a wrong
-- Bearer key).
local function sign_in(req, ctx)
  -- JSON only (the route's media, checked before the body: else a form on another site
  -- could sign a browser in with that site's key)
  local fails, now = ctx.server.auth_fails, uv.now()
  local b = ctx.body
  -- a password's failures count against the name tried too, whatever the address: a
  -- guesser spread over many addresses is held off all the same, and a name held off is
  -- refused even with its right password (else the limit would let the guess through)
  local name = type(b.user) == "string" and M.account_name(b.user) or nil
  -- a key alone is checked before the address's limit, as a bearer key is (orket.serve's
  -- refused_credential): a valid one signs in from an address others' failures hold off (a
  -- reverse proxy's), a wrong one is refused 429 then; a password is held off before its
  -- check, the right one too (a password can be guessed: a limit that let the right one
  -- through would tell the guesser)
  local key_only = b.key ~= nil and b.user == nil and b.password == nil
  local wait, of
  if not key_only then
    wait, of = held_off(ctx, req, name)
    if wait then return limited(ctx, wait, of) end
  end
  if (b.key == nil) == (b.user == nil) or (b.user ~= nil) ~= (b.password ~= nil) then
    return err(400, "bad_request", "a sign-in takes an API key or a name and password, one of the two: the body "
      .. "held " .. (b.key ~= nil and b.user ~= nil and "both" or b.user ~= nil and "a name without a password"
      or b.key ~= nil and "a key with a password" or b.password ~= nil and "a password without a name"
      or "neither"),
      "send {\"user\": NAME, \"password\": PASSWORD} or {\"key\": \"ork_...\"} (docs/serve.md#sessions-csrf-and-cors)")
  end
  -- a person's name and password, else a key; either way the same refusal and limit
  local who, why, refusal, remedy, down, bucket
  if b.user then
    -- the name's token first: none left (taken meanwhile, by this server or another) is
    -- refused as held off, its password not checked
    bucket, wait = reserve(ctx, name)
    if not bucket then return limited(ctx, wait, true) end
    -- a local account, else the directory of sign_in.ldap (orket.serve.identity)
    who, why, down = identity.verify(ctx.db, ctx.server.signin, b.user, b.password)
    refusal, remedy = "the name or password is not valid", M.PASSWORD_REMEDY
    if down then -- the directory's failure, not the person's: no failed authentication counted
      give_back(ctx, bucket)
      ctx.auth = why
      return err(502, "provider_unavailable", "the directory cannot be asked just now, so the password was not "
        .. "checked; try again", "try again in a minute; if it lasts, a server admin checks sign_in.ldap in orket.lua "
        .. "and the directory (the server's log says what failed: docs/teams.md#ldap)")
    end
    -- only failures count against the name: a success's token is given back
    if who then give_back(ctx, bucket) end
    -- the directory vouched for them just now: their keys need no look for a while
    local dirs = ctx.server.auth and ctx.server.auth.directory
    if who and who.source == "ldap" and dirs then dirs:seen(who.user) end
    -- the check waited (the thread pool, or the directory): tries from this address sent
    -- alongside it may have failed meanwhile, and one past the limit is not told how it went
    -- (the name's own limit was settled by its token)
    wait = held_off(ctx, req, nil)
    if wait then
      ctx.auth = "limited after the check"
      return limited(ctx, wait)
    end
  else
    local pepper = keys.pepper(ctx.dir, false)
    why = "no pepper"
    if pepper then who, why = keys.verify(ctx.db, pepper, b.key) end
    refusal, remedy = "the API key is not valid", M.KEY_REMEDY
    if who then
      who, why = accounts.of_key(ctx.db, who)
      -- the secret checked: said as the bearer key's refusal says it (orket.serve.auth)
      if not who then refusal, remedy = "the key's person was disabled", M.DISABLED_REMEDY end
    end
  end
  if not who then
    ctx.auth = why
    -- a key refused while the address is held off: 429, not counted (the password's hold
    -- was asked before its check, and again after it, above)
    wait = key_only and held_off(ctx, req, nil)
    if wait then return limited(ctx, wait) end
    fails:take(req.remote, now) -- (the name's token was taken before the check)
    return err(401, "unauthorized", refusal, remedy)
  end
  ctx.key = who.id
  -- a key's sign-in is a request of that key: it takes the key's token as its others do,
  -- or one valid key (a viewer's too) would grow the audit's chain past the key's limit
  if not b.user then
    local kok, kretry = ctx.server.by_key:take(who.id, uv.now())
    if not kok then
      ctx.headers = ctx.headers or {}
      table.insert(ctx.headers, "Retry-After: " .. kretry)
      return err(429, "rate_limited", "too many requests with this key; retry after " .. kretry .. " s",
        "wait " .. kretry .. " s and try again (docs/serve.md#limits)")
    end
  end
  local token, expires
  -- a person's key opens a session of that key, not one of a sign-in: its role's cap (a
  -- key made for reading opens no session that writes) and a provider's person's key's
  -- lifetime (docs/teams.md, "Offboarding") are kept
  local person = who.user and not who.key_id
  if person then token, expires = M.start_person(req, ctx, who)
  else token, expires = M.start_key(req, ctx, who) end
  if not token then -- disabled since the check: refused as the check refuses them
    if not b.user then refusal, remedy = "the key's person was disabled", M.DISABLED_REMEDY end
    fails:take(req.remote, now)
    ctx.auth = "disabled"
    return err(401, "unauthorized", refusal, remedy)
  end
  return 200, { role = own_role(who), key = not who.user and { id = who.id, name = who.name } or nil,
    user = who.user and { name = who.user } or nil, csrf = M.csrf_of(token), expires_at = expires_at(expires) }
end

-- GET /v1/session: who the request is (the page asks on load: a session cookie it cannot
-- read may be there already), with the CSRF token when it came with a session.
local function whoami(_, ctx)
  local who = ctx.who
  if who.local_use then return 200, { role = who.role, ["local"] = true } end
  -- a key sent as a Bearer token has no session: no CSRF token, no end
  local ends = who.expires and expires_at(who.expires) or nil
  if who.user then
    return 200, { role = own_role(who), user = { name = who.user }, csrf = who.csrf, expires_at = ends }
  end
  return 200, { role = who.role, key = { id = who.id, name = who.name }, csrf = who.csrf, expires_at = ends }
end

-- DELETE /v1/session: signs out (the CSRF check came first, as for any write).
local function sign_out(req, ctx)
  if not (ctx.who and ctx.who.session) then
    return err(400, "bad_request", "this request was not made with a session cookie: there is nothing to sign out of")
  end
  local db, who = ctx.db, ctx.who
  local ok, terr = db:tx(function()
    if who.user and not who.key_session then users.session_delete(db, who.session)
    else assert(sessions.delete(db, who.session)) end
    db:event { kind = "session_end", actor = who.id, data = { name = who.name } }
    audited(ctx, who, "sign_out", M.via(who, who.key_session), who.session)
    return true
  end)
  if not ok then error(terr) end
  ctx.headers = ctx.headers or {}
  table.insert(ctx.headers, cookie(req, "", 0))
  return 200, { signed_out = true }
end

local SIGNS_MAX = 200

-- GET /v1/session/audit[?after=ID][&limit=N]: the caller's own sign-ins and sign-outs, as
-- GET /v1/audit gives them, with their subject (the way and the session: only the caller's
-- own) and no client address (none is kept). A server route, so any signed-in person
-- reads them, a member of other projects only too (GET /v1/audit, the default project's,
-- answers them 404); only their own: the actor is the caller, never a query's.
local function own_signs(_, ctx)
  local after, limit, bad = routes.page(ctx.query.after, ctx.query.limit, SIGNS_MAX)
  if not after then return limit, bad end
  local who, out = ctx.who, {}
  -- local use signs in to nothing (no session): an empty list, as for anyone never signed in
  if who and who.id and not who.local_use then
    for _, r in ipairs(sj.sign_ins(ctx.db, who.id, after, limit)) do
      local d = r.data
      out[#out + 1] = { id = r.id, at = r.at, actor = r.actor, action = d.action, route = d.route, key = d.key,
        subject = type(d.subject) == "table" and d.subject or nil }
    end
  end
  return 200, { entries = jsonout.array(out), next = #out == limit and out[#out].id or nil }
end

local SIGNS = { type = "object", additionalProperties = false, required = { "entries" }, properties = {
  entries = { type = "array", items = { type = "object", additionalProperties = false,
    required = { "id", "at", "actor", "action", "route" },
    properties = { id = { type = "integer" }, at = { type = "string" }, actor = { type = "string" },
      action = { enum = { "sign_in", "sign_out" } }, route = { type = "string" },
      key = { type = "string", description = "the id of the person's own key the session was opened with" },
      subject = { type = "object", description = "person (or key and keyid), via, session (docs/audit.md)",
        additionalProperties = { type = "string" } } } } },
  next = { type = "integer" } } }

local SESSION = { type = "object", additionalProperties = false, required = { "role" }, properties = {
  role = { enum = { "viewer", "operator", "admin" } }, ["local"] = { type = "boolean" },
  key = { type = "object", required = { "id", "name" }, properties = { id = { type = "string" }, name = { type = "string" } } },
  user = { type = "object", required = { "name" }, properties = { name = { type = "string" } } },
  csrf = { type = "string" }, expires_at = { type = "string" } } }

-- {key} or {user, password} (the handler says which is missing)
M.SCHEMA = { type = "object", additionalProperties = false,
  properties = { key = { type = "string", minLength = 1, maxLength = 256 },
    user = { type = "string", minLength = 1, maxLength = 64 },
    password = { type = "string", minLength = 1, maxLength = 1024 } } }

--- add(router): POST, GET and DELETE /v1/session
function M.add(router)
  -- media: JSON only, checked before the body is read (orket.serve): a form on another site
  -- cannot send it without a preflight, which only the origins of serve.cors pass
  -- max_body: it takes no key before its body, so a large one is refused undecoded (the
  -- schema's fields fit in well under 4 KiB)
  router:add("POST", "/v1/session", { handler = sign_in, server = true, body = "json", media = "application/json", schema = M.SCHEMA,
    max_body = 4096, name = "session_create",
    summary = "Sign in with an API key or a person's name and password: sets the session cookie, returns the role and the CSRF token",
    responses = { [200] = { schema = SESSION, description = "signed in (Set-Cookie: orket_session=...)" },
      [400] = { schema = openapi.ERROR, description = "neither a key nor a name and password" },
      [401] = { schema = openapi.ERROR, description = "the key, or the name or password, is not valid" },
      [415] = { schema = openapi.ERROR, description = "the body is not sent as application/json" },
      [429] = { schema = openapi.ERROR, description = "too many failed authentications" } } })
  router:add("GET", "/v1/session", { handler = whoami, role = "viewer", server = true, name = "session", summary = "Who this is",
    responses = { [200] = { schema = SESSION } } })
  router:add("GET", "/v1/session/audit", { handler = own_signs, role = "viewer", server = true, name = "session_audit",
    summary = "The caller's own sign-ins and sign-outs, oldest first (docs/audit.md)",
    query = { { name = "after", type = "integer", description = "entries after this id" },
      { name = "limit", type = "integer", description = "at most this many (100; 200 at most)" } },
    responses = { [200] = { schema = SIGNS } } })
  router:add("DELETE", "/v1/session", { handler = sign_out, role = "viewer", server = true, name = "session_delete",
    summary = "Sign out (a write: needs X-CSRF-Token)", responses = { [200] = { schema = { type = "object",
      required = { "signed_out" }, properties = { signed_out = { type = "boolean" } } } } } })
end

return M
