-- tests/with_pg.lua [--or-without] COMMAND...: starts the tests' own PostgreSQL 15
-- (tests/pg.lua), runs COMMAND with ORKET_TEST_DATABASE_URL naming it (tests.backends then
-- runs the store's tests on it), stops the server and exits with COMMAND's status. Without
-- the server's programs it says so and exits 0 (the SQLite layer ran the same tests); with
-- --or-without it runs COMMAND anyway, with ORKET_TEST_PG_SKIPPED set (tests/run.sh's pool
-- then drops its PostgreSQL files).
local PG = require "tests.pg"
local q = require("tests.helpers").quote
local first, without = 1, false
if arg[1] == "--or-without" then first, without = 2, true end
local words = {}
for i = first, #arg do words[#words + 1] = q(arg[i]) end
local ok, why = PG.available()
if not ok then
  print("PostgreSQL layer skipped: " .. why)
  if without and os.execute("ORKET_TEST_PG_SKIPPED=1 " .. table.concat(words, " ")) ~= true then os.exit(1) end
  return
end
local server = PG.start()
local status = os.execute("ORKET_TEST_DATABASE_URL=" .. q(server.url) .. " " .. table.concat(words, " "))
server.stop()
if status ~= true then os.exit(1) end
