-- tests.slapd: Debian's slapd, started by a test in a temp dir on a unix socket (ldapi), with
-- a small directory: people alice and bob (passwords "alice-pw", "bob-pw"), carol (a
-- person in no group) and Dave (written with a capital, "dave-pw"), under
-- ou=people,dc=example,dc=org; groups devs (groupOfNames, alice) and admins (posixGroup,
-- memberUid bob and Dave) under ou=groups. start([opts]) -> {url, dir, stop()} | nil,
-- why (slapd not installed: the test is pending with that reason); opts.acl: access lines
-- put before the last one (everything readable by all), as a site's own ACLs.
local H = require "tests.helpers"

local M = {}

M.SUFFIX = "dc=example,dc=org"
M.PEOPLE = "ou=people," .. M.SUFFIX
M.GROUPS = "ou=groups," .. M.SUFFIX
M.ADMIN_DN, M.ADMIN_PW = "cn=admin," .. M.SUFFIX, "admin-pw"

local LDIF = [[
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
userPassword: alice-pw

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
userPassword: bob-pw

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C
userPassword: carol-pw

dn: uid=Dave,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: Dave
cn: Dave
sn: D
userPassword: dave-pw

dn: cn=devs,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: devs
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=admins,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: admins
gidNumber: 500
memberUid: bob
memberUid: Dave
]]

local CONF = [[
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile DIR/slapd.pid
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-pw
directory DIR/db
access to attrs=userPassword by anonymous auth by * none
ACL
access to * by * read
]]

-- a common site ACL: who belongs to which group is for authenticated users (a person
-- bound as themselves) only, not anonymous searches
M.MEMBERS_FOR_USERS = "access to attrs=member,memberUid by users read by * none"


--- url_of(socket) -> the ldapi:// URL of a unix socket path
function M.url_of(path)
  return "ldapi://" .. path:gsub("/", "%%2F")
end

-- launch(dir, url) -> pid: slapd started on the directory's database in dir, once it answers
local function launch(dir, url)
  local sock = dir .. "/ldapi"
  os.remove(dir .. "/run.pid")
  -- -d 0: in the foreground (its pid is the one started), logging nothing
  os.execute(string.format("/usr/sbin/slapd -f %s -h %s -d 0 >%s 2>&1 & echo $! >%s", H.quote(dir .. "/slapd.conf"),
    H.quote(url), H.quote(dir .. "/slapd.log"), H.quote(dir .. "/run.pid")))
  local pid = H.wait_for(function() return tonumber((H.read(dir .. "/run.pid") or ""):match("%d+")) end, "slapd's pid")
  H.wait_for(function() return require("luv").fs_stat(sock) ~= nil or not H.alive(pid) end, "slapd's socket")
  if not H.alive(pid) then error("slapd did not start: " .. tostring(H.read(dir .. "/slapd.log"))) end
  -- the socket is made before slapd answers on it: ready once a search is answered at all
  local ldap = require "orket.c.ldap"
  H.wait_for(function()
    local _, _, code = ldap.verify({ url = url, base_dn = M.PEOPLE, timeout_ms = 1000 }, "nobody", "x")
    return code ~= "EUNAVAILABLE" or not H.alive(pid)
  end, "slapd to answer")
  return pid
end

function M.start(opts)
  if H.sh("test -x /usr/sbin/slapd && test -x /usr/sbin/slapadd") ~= 0 then
    return nil, "slapd is not installed (Debian: apt-get install slapd)"
  end
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/db"))
  local acl = opts and opts.acl or ""
  H.write(dir .. "/slapd.conf", (CONF:gsub("DIR", dir):gsub("ACL\n", function() return acl .. "\n" end)))
  H.write(dir .. "/data.ldif", LDIF)
  local rc, out = H.sh(string.format("/usr/sbin/slapadd -f %s -l %s", H.quote(dir .. "/slapd.conf"), H.quote(dir .. "/data.ldif")))
  if rc ~= 0 then error("slapadd failed: " .. out) end
  local url = M.url_of(dir .. "/ldapi")
  local s = { url = url, dir = dir, pid = launch(dir, url) }
  function s.stop()
    os.execute("kill -TERM " .. s.pid)
    H.wait_for(function() return not H.alive(s.pid) end, "slapd to stop")
  end
  -- s.start(): slapd again, on the same directory and socket, after stop()
  function s.start() s.pid = launch(dir, url) end
  -- s.modify(ldif): the directory changed (slapmodify's LDIF: changetype add, modify,
  -- delete), slapd stopped for it and started again
  function s.modify(ldif)
    s.stop()
    H.write(dir .. "/change.ldif", ldif)
    local mrc, mout = H.sh(string.format("/usr/sbin/slapmodify -f %s -l %s", H.quote(dir .. "/slapd.conf"),
      H.quote(dir .. "/change.ldif")))
    if mrc ~= 0 then error("slapmodify failed: " .. mout) end
    s.start()
  end
  -- s.entry(dn) -> the entry's LDIF as slapcat writes it (its operational attributes, the
  -- entryUUID among them), unwrapped | nil (no such entry)
  function s.entry(dn)
    -- by a filter on entryDN (slapcat -s aborts on a leaf entry), the DN escaped as RFC 4515 says
    local value = dn:gsub("[%(%)%*\\%z]", function(c) return string.format("\\%02x", c:byte()) end)
    local rc, out = H.sh(string.format("/usr/sbin/slapcat -f %s -a %s -o ldif_wrap=no", H.quote(dir .. "/slapd.conf"),
      H.quote("(entryDN=" .. value .. ")")))
    if rc ~= 0 then error("slapcat failed: " .. out) end
    local ldif = out:match("(dn: [^\n]*\n.-)\n\n") or out:match("(dn: .*)")
    return ldif and ldif:find("^dn: " .. dn:gsub("%p", "%%%0") .. "\n") and ldif or nil
  end
  -- s.uuid_of(dn) -> the entry's entryUUID | nil
  function s.uuid_of(dn) return ((s.entry(dn) or ""):match("\nentryUUID: (%S+)")) end
  -- s.move(dn, new_dn[, ldif]): the entry moved to new_dn (its RDN kept: another OU), its
  -- entryUUID with it, as a modrdn does (which slapmodify cannot: the entry deleted, then
  -- added again by slapadd, which keeps the operational attributes it is given); ldif
  -- (slapmodify's, e.g. the groups' members changed) applied in the same stop
  function s.move(dn, new_dn, ldif)
    assert(dn:match("^[^,]+") == new_dn:match("^[^,]+"), "s.move keeps the RDN")
    s.stop()
    local entry = assert(s.entry(dn), "no entry " .. dn)
    H.write(dir .. "/change.ldif", "dn: " .. dn .. "\nchangetype: delete\n\n" .. (ldif or ""))
    local mrc, mout = H.sh(string.format("/usr/sbin/slapmodify -f %s -l %s", H.quote(dir .. "/slapd.conf"),
      H.quote(dir .. "/change.ldif")))
    if mrc ~= 0 then error("slapmodify failed: " .. mout) end
    H.write(dir .. "/moved.ldif", "dn: " .. new_dn .. entry:sub(#("dn: " .. dn) + 1) .. "\n")
    local arc, aout = H.sh(string.format("/usr/sbin/slapadd -f %s -l %s", H.quote(dir .. "/slapd.conf"),
      H.quote(dir .. "/moved.ldif")))
    if arc ~= 0 then error("slapadd failed: " .. aout) end
    s.start()
  end
  return s
end

return M
