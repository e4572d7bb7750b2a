-- tests/with_pg.lua COMMAND...: starts the tests' own PostgreSQL 15 (tests/pg.lua), runs
-- COMMAND with ORKET_TEST_DATABASE_URL naming it (tests.backends then runs the store's
-- tests on it), stops the server and exits with COMMAND's status. Without the server's
-- programs it says so and exits 0 (the SQLite layer ran the same tests).
local PG = require "tests.pg"
local ok, why = PG.available()
if not ok then
  print("PostgreSQL layer skipped: " .. why)
  return
end
local q = require("tests.helpers").quote
local words = {}
for i = 1, #arg do words[#words + 1] = q(arg[i]) end
local server = PG.start()
local status = os.execute("ORKET_TEST_DATABASE_URL=" .. q(server.url) .. " " .. table.concat(words, " "))
server.stop()
if status ~= true then os.exit(1) end
