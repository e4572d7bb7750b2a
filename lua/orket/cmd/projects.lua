-- orket projects [list|add|remove|grant|revoke]: the projects one `orket serve` hosts and who is
-- a member of each (orket.serve.team, docs/teams.md). Run in the server's own project
-- (the default one), whose store holds the people; a project added is served from the next
-- start (at once, when a running server served it from the same folder before), one removed
-- no more at once, members change at once. Writes act as the local operator, and say so.
local jsonout = require "orket.jsonout"
local cmdline = require "orket.cmdline"
local localuse = require "orket.serve.localuse"
local uv = require "luv"

local cmd = { name = "projects", summary = "list, add and remove the projects orket serve hosts; grant roles in them" }
cmd.args = {
  usage = "orket projects [list [--json] | add DIR [--name NAME] | remove NAME | grant PROJECT PERSON ROLE "
    .. "| revoke PROJECT PERSON]  [-C DIR]",
  text = "a word",
  { "list|add|remove|grant|revoke", key = "sub", optional = true,
    check = cmdline.one_of({ "list", "add", "remove", "grant", "revoke" }, "unknown projects command '%s'") },
  { "WORDS", key = "words", many = true },
  { "--name", value = "NAME", what = "a project's name", help = "the added project's name (default: its directory's)" },
  { "--json", help = "list the projects as JSON" },
  cmdline.DIR,
}
cmd.help = [[
Without a word, or with list, shows the projects this server hosts: "default" (the
project orket serve runs in), those named in orket.lua's serve.projects, and those added
with add, each with its members and their roles. add DIR hosts the project in DIR from
the server's next start (a running server that served it from DIR before it was removed
serves it again at once); remove NAME stops hosting an added project, a running server's
routes of it answering 409 from then on, and drops its memberships (its folder and store
are left as they are). grant PROJECT PERSON ROLE makes a person (orket users add) a
viewer, developer or admin of a project; revoke takes that away. See docs/teams.md.]]

local WORDS = { list = 0, add = 1, remove = 1, grant = 3, revoke = 2 }

local function known_projects(o, db)
  local projects = require "orket.serve.projects" -- lazy: these load the store and settings
  local ss = require("orket.serve.web").settings(o.dir) or {} -- lazy: as the line above
  local list, err = projects.named(db, uv.fs_realpath(o.dir) or o.dir, ss.projects)
  if not list then return nil, err end
  table.insert(list, 1, { name = projects.DEFAULT, dir = uv.fs_realpath(o.dir) or o.dir })
  return list
end

local function list(db, o, cli)
  local all, err = known_projects(o, db)
  if not all then
    cli.err("projects: %s", err)
    return 1
  end
  local members = {}
  for _, m in ipairs(require("orket.store.projects").members(db)) do -- lazy: as known_projects
    members[m.project] = members[m.project] or {}
    table.insert(members[m.project], { name = m.user_name, role = m.role })
  end
  if o.json then
    for _, p in ipairs(all) do p.members = jsonout.array(members[p.name] or {}) end
    io.stdout:write(jsonout.encode { format = "orket.projects/1", projects = jsonout.array(all) }, "\n")
    return 0
  end
  for _, p in ipairs(all) do
    local names = {}
    for _, m in ipairs(members[p.name] or {}) do names[#names + 1] = m.name .. " (" .. m.role .. ")" end
    io.stdout:write(string.format("%-16s %s\n  members: %s\n", p.name, p.dir, #names > 0 and table.concat(names, ", ") or "none"))
  end
  return 0
end

-- own_store(db, o) -> nil | msg, CODE: the project `add` names is not a store the server
-- serves already, compared by the stores themselves (orket.serve.projects.one_store), before
-- the add's transaction (whose uncommitted writes no other connection sees). A project whose
-- store does not open is left out: a SQLite project not imported yet has none.
local function own_store(db, o)
  local projects = require "orket.serve.projects" -- lazy: as known_projects
  local team = require "orket.serve.team" -- lazy: as known_projects
  local real, name, code = team.resolve(uv.fs_realpath(o.dir) or o.dir, o.words[1], o.name)
  if not real then return nil end -- the add says why
  local cand = projects.open(real, true)
  if not cand then return nil end
  local list, opened = {}, { cand }
  for _, p in ipairs(known_projects(o, db) or {}) do
    -- the very folder added again is refused by name or by folder (a project is one store
    -- with itself: that message would name the same project twice); a project orket.lua's
    -- serve.projects names is not in the table the add looks its folder up in
    if uv.fs_realpath(p.dir) == real then
      if p.name == name then goto next end -- the add refuses the name
      for _, pdb in ipairs(opened) do pdb:close() end
      return real .. " is served already, as project '" .. p.name .. "'", "EEXIST"
    end
    local pdb = p.name == projects.DEFAULT and db or projects.open(p.dir, true)
    if pdb then list[#list + 1] = { name = p.name, dir = p.dir, db = pdb } end
    if pdb and pdb ~= db then opened[#opened + 1] = pdb end
    ::next::
  end
  list[#list + 1] = { name = name, dir = real, db = cand }
  local msg = projects.one_store(list)
  for _, pdb in ipairs(opened) do pdb:close() end
  return msg, code or "EEXIST"
end

-- rebound(db, o, cli): before a grant, the project's name is bound to the store it names
-- now (orket.serve.team.rebind): memberships left from another store of that name are
-- dropped first, and said, so the grant is not dropped at the server's next start
local function rebound(db, o, cli)
  local projects = require "orket.serve.projects" -- lazy: as known_projects
  for _, p in ipairs(known_projects(o, db) or {}) do
    if p.name == o.words[1] and p.name ~= projects.DEFAULT then
      local pdb = projects.open(p.dir, true)
      if not pdb then return end
      local sid = require("orket.store.projects").store_id(pdb) -- lazy: as known_projects
      pdb:close()
      local r = require("orket.serve.team").rebind(db, p.name, sid, cli.operator().seat, "cli") -- lazy: as known_projects
      if r then cli.err("projects: %s", projects.rebound_text(r)) end
    end
  end
end

-- the sign_in settings, whose provider or directory sets a federated person's roles in some
-- projects (docs/teams.md); settings that do not load set none here (the server refuses to
-- start on them anyway)
local function followed(dir)
  return (require("orket.serve.signin").load(dir)) -- lazy: as known_projects
end

-- remove_project(db, o, actor) -> orket.serve.team.remove_project's result, with dropped:
-- the memberships it drops, "person:role" each (read in the audited transaction, before it,
-- so that the audit's entry names whose access the removal took: docs/audit.md)
local function remove_project(db, o, actor)
  local team = require "orket.serve.team" -- lazy: as known_projects
  local web = require "orket.serve.web" -- lazy: as known_projects
  local dropped = {}
  for _, m in ipairs(require("orket.store.projects").members(db)) do -- lazy: as known_projects
    if m.project == o.words[1] then dropped[#dropped + 1] = m.user_name .. ":" .. m.role end
  end
  local res, err, code = team.remove_project(db, o.words[1], (web.settings(o.dir) or {}).projects, actor)
  if res then res.dropped = dropped end
  return res, err, code
end

-- what a change did, on stdout -> exit status 0. A running server serves an added project
-- only from its next start, but one it served from the same folder before its removal again
-- at once (the same store: orket.serve.projects.changed), and a removed one no more at once
local function said(sub, res)
  local lines = { add = { "added project %s (%s); served from the server's next start, or at once by a running "
      .. "server that served it from this folder before it was removed", res.name, res.dir },
    grant = { "%s: %s is %s " .. (res.unchanged and "already (unchanged)" or "now"), res.project, res.user, res.role },
    revoke = { "%s: %s is no longer a member", res.project, res.user },
    remove = { "removed project %s (%s) and its %d membership(s); served no more (a running server answers its "
      .. "routes 409 until it is restarted or the project added again from this folder)", res.name, res.dir,
      res.members } }
  local s = lines[sub]
  io.stdout:write(string.format(s[1], table.unpack(s, 2)), "\n")
  if sub == "grant" and res.server_admin and res.role ~= "admin" then
    -- the role is recorded, but not what they act with: a server admin is admin everywhere
    io.stdout:write(string.format("%s is a server admin, and acts as admin in %s while one; the %s role is theirs "
      .. "there once they are not ('orket users role %s operator')\n", res.user, res.project, res.role, res.user))
  end
  return 0
end

local function change(db, o, cli)
  local team = require "orket.serve.team" -- lazy: as known_projects
  local accounts = require "orket.serve.accounts" -- lazy: as known_projects
  local actor = cli.operator().seat
  local res, err, code
  local known = {}
  for _, p in ipairs(known_projects(o, db) or {}) do known[p.name] = true end
  local w = o.words
  local acts = {
    add = function() return team.add_project(db, uv.fs_realpath(o.dir) or o.dir, w[1], o.name, actor) end,
    grant = function() return team.grant(db, known, w[1], w[2], w[3], actor, followed(o.dir)) end,
    revoke = function() return team.revoke(db, w[1], w[2], actor, followed(o.dir), known) end,
    remove = function() return remove_project(db, o, actor) end,
  }
  local kinds = { add = "project_add", grant = "member_grant", revoke = "member_revoke", remove = "project_remove" }
  -- whom the change was about, in the audit: the project added or removed (with the
  -- memberships a removal dropped), or the person and role
  local function subject(r)
    if o.sub == "add" then return { project = r.name } end
    if o.sub == "remove" then
      return { project = w[1], members = r.dropped[1] and table.concat(r.dropped, ",") or "none" }
    end
    return accounts.subject(r)
  end
  res, err, code = localuse.audited(db, kinds[o.sub], nil, acts[o.sub], subject)
  if not res then
    if code == "EUSAGE" then return cli.usage_error(cmd, "%s", err) end
    return cli.fail(code, "projects: %s", err) or 1
  end
  cli.say_operator()
  return said(o.sub, res)
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  o.sub, o.words = o.sub or "list", o.words or {}
  if #o.words ~= WORDS[o.sub] then
    return cli.usage_error(cmd, "projects %s takes %d word(s) after it", o.sub, WORDS[o.sub])
  end
  if (o.name and o.sub ~= "add") or (o.json and o.sub ~= "list") then
    return cli.usage_error(cmd, "--name goes with projects add, --json with projects list")
  end
  local db = cli.open_store(o.dir, false, o.sub == "list")
  if not db then return 1 end
  local shared, scode
  if o.sub == "add" then shared, scode = own_store(db, o) end
  if o.sub == "grant" then rebound(db, o, cli) end
  local status = 1
  if shared then cli.fail(scode, "projects: %s", shared)
  else status = (o.sub == "list" and list or change)(db, o, cli) end
  db:close()
  return status
end

return cmd
