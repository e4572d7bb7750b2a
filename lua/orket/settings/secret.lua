-- orket.settings.secret: `secret "NAME"` in orket.lua (docs/secrets.md), for any setting
-- that takes a credential. orket.lua's sandbox gets `secret`, which returns a marker (plain
-- data, {secret = NAME}); orket.config binds each to its project (bind_all). A bound
-- reference holds the name and the project, never the value: it prints as secret:NAME, so
-- a config dump, a trace or a message shows no more. The value is read only by value(),
-- at the moment a request needs it: from the environment, else the secret store
-- (orket.store.secrets).
local store = require "orket.store.secrets"
local nearest = require "orket.nearest"
local uv = require "luv"

local M = {}

-- ORKET_SECRET_NAME, when set and not blank, gives secret "NAME" (containers, CI)
M.ENV_PREFIX = "ORKET_SECRET_"

--- given(v) -> whether an environment variable's value v is set: empty or only spaces is
--- unset, as for OPENAI_BASE_URL and the OTEL_* variables (orket.config.apply_env), never a
--- blank credential sent (`Authorization: Bearer `) in place of the next source's value
function M.given(v) return type(v) == "string" and v:find("%S") ~= nil end
local MAX_DEPTH = 16

local Ref = { __name = "orket.secret" }
Ref.__tostring = function(r) return "secret:" .. r.secret end

--- global(name) -> marker: orket.lua's `secret`; a bad name is orket.lua's error at its line
function M.global(name)
  local ok, err = store.check_name(name)
  if not ok then error("secret: " .. err, 2) end
  return { secret = name }
end

--- name_of(v) -> NAME when v is secret "NAME" (a marker or a bound reference), else nil
function M.name_of(v)
  if type(v) ~= "table" or type(v.secret) ~= "string" then return nil end
  for k in pairs(v) do
    if k ~= "secret" and k ~= "dir" then return nil end
  end
  return v.secret
end

--- check(v, path) -> v: raises a settings error unless v is secret "NAME" (a credential
--- never stands in orket.lua as text, where it would be committed with the project)
function M.check(v, path)
  if not M.name_of(v) then
    error({ settings_error = string.format("orket.lua: %s: must be secret \"NAME\" (the value is kept with "
      .. "'orket secrets set NAME', never written in orket.lua; got %s)", path, type(v)) }, 0)
  end
  return v
end

-- every marker under t, bound to dir in place; found gets {path, name} for each
local function walk(t, path, dir, found, depth)
  if depth > MAX_DEPTH then return end
  for k, v in pairs(t) do
    if type(v) == "table" then
      local at = path and (path .. "." .. tostring(k)) or tostring(k)
      local name = M.name_of(v)
      if name then
        t[k] = setmetatable({ secret = name, dir = dir }, Ref)
        found[#found + 1] = { path = at, name = name }
      else
        walk(v, at, dir, found, depth + 1)
      end
    end
  end
end

--- bind_all(data, dir) -> { {path=, name=}, ... }: each secret "NAME" in orket.lua's data
--- replaced by a reference to the project in dir, and where each stands
function M.bind_all(data, dir)
  local found = {}
  walk(data, nil, dir or ".", found, 0)
  table.sort(found, function(a, b) return a.path < b.path end)
  return found
end

--- unopened(path, name, err) -> "orket.lua: PATH: secret "NAME" cannot be opened: ERR": a
--- value the store holds but did not give, said as orket.lua's error at the setting (a
--- command adds its line: orket.config.placed); name nil (not a secret "NAME" setting):
--- "orket.lua: PATH: ERR"
function M.unopened(path, name, err)
  if not name then return string.format("orket.lua: %s: %s", path, err) end
  return string.format("orket.lua: %s: secret %q cannot be opened: %s", path, name, err)
end

-- the remedy for a name the store lacks: the nearest name it has (a typo would otherwise be
-- set again as a second copy), else both ways to give it
local function absent(f, dir)
  local names = {}
  for _, r in ipairs(store.list(dir) or {}) do names[#names + 1] = r.name end
  local near = nearest.nearest(f.name, names)
  if near then
    return string.format("orket.lua: %s: secret %q is not in the project's secret store, which has %s: did you "
      .. "mean secret %q?", f.path, f.name, near, near)
  end
  return string.format("orket.lua: %s: secret %q is not in the project's secret store "
    .. "(set it with 'orket secrets set %s', or set %s%s)", f.path, f.name, f.name, M.ENV_PREFIX, f.name)
end

--- problems(found, dir[, getenv]) -> { "orket.lua: PATH: ...", ... }: each reference whose
--- name neither the environment (ORKET_SECRET_NAME) nor the store knows
function M.problems(found, dir, getenv)
  getenv = getenv or os.getenv
  local out = {}
  for _, f in ipairs(found) do
    local env = getenv(M.ENV_PREFIX .. f.name)
    if not M.given(env) then
      local has, err = store.has(dir, f.name)
      if has == nil then
        out[#out + 1] = string.format("orket.lua: %s: secret %q: %s", f.path, f.name, err)
      elseif not has then
        out[#out + 1] = absent(f, dir)
      else
        -- opened as a run opens it (the value dropped at once): one sealed under another name
        -- (copied in the file) or changed is said here, not at the run's first model call.
        -- Without the key file (a checkout that holds none) the store's values are not judged;
        -- but a key file ORKET_SECRETS_KEY_FILE names and that is not there is a mistyped path.
        local _, rerr, rcode = store.reveal(dir, f.name, getenv)
        local named = getenv(store.KEY_ENV)
        if rerr and (rcode ~= "ENOENT" or (named and named ~= "" and not uv.fs_stat(named))) then
          out[#out + 1] = M.unopened(f.path, f.name, rerr)
        end
      end
    end
  end
  return out
end

--- stamp(ref) -> a string that changes whenever ref's store is written (its file is replaced
--- whole: orket.store.secrets), "" when it has none: a reader holding a value reads it again
--- only when this changes (orket.llm's model keys)
function M.stamp(ref)
  local st = ref and uv.fs_stat((store.paths(ref.dir or ".")))
  if not st then return "" end
  return string.format("%d:%d:%d.%d", st.ino, st.size, st.mtime.sec, st.mtime.nsec)
end

--- value(ref, var[, getenv]) -> the credential | nil when neither is given | nil, msg, CODE.
--- The precedence: the environment variable var (a setting's *_env) when set and not blank;
--- then ORKET_SECRET_NAME; then the store. ref is a bound reference or nil.
function M.value(ref, var, getenv)
  getenv = getenv or os.getenv
  local v = var and getenv(var)
  if M.given(v) then return v end
  if not ref then return nil end
  v = getenv(M.ENV_PREFIX .. ref.secret)
  if M.given(v) then return v end
  return store.reveal(ref.dir or ".", ref.secret, getenv)
end

return M
