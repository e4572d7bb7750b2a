-- A busted output handler: a line per failing test with its message and place, a dot per
-- passing one, a "SKIP:" line per skipped one (pending(why)), and the closing
-- "spec: N passed, N failed, N skipped" line tests/run.sh adds up.
-- ORKET_TEST_PROFILE=1 adds a line per test: its wall time and the whole machine's busy CPU
-- meanwhile (its programs, servers and browsers included), to find the dear tests; it means
-- something only when the file runs alone on an idle machine.
return function(options)
  local busted = require "busted"
  local handler = require("busted.outputHandlers.base")()
  local passed, failed, pending = 0, 0, 0
  local profile = os.getenv("ORKET_TEST_PROFILE") == "1"
  local hrtime = require("luv").hrtime

  -- the machine's busy CPU in ms from /proc/stat's first line (user nice system irq softirq
  -- steal, at 100 ticks a second)
  local function machine_ms()
    local f = io.open("/proc/stat")
    if not f then return 0 end
    local line = f:read("l")
    f:close()
    local t = {}
    for n in line:gmatch("%d+") do t[#t + 1] = tonumber(n) end
    return (t[1] + t[2] + t[3] + t[6] + t[7] + t[8]) * 10
  end
  local started = {}
  local ended, block_errors = {}, {} -- the tests that ended; the errors outside tests (below)
  local ran = {} -- the describes whose body busted started (below)

  local function show(kind, t)
    local msg = t.message
    if type(msg) ~= "string" then msg = require("pl.pretty").write(msg) end
    local tr = t.element.trace
    local where = tr and tr.short_src and (tostring(tr.short_src) .. ":" .. tostring(tr.currentline)) or "?"
    -- busted's loader errors (a missing file, no file matched) have no block, so no name
    io.write("\n", kind, ": ", t.name ~= "" and t.name or "busted", "\n  at ", where, "\n  ", (msg or "nil"):gsub("\n", "\n  "), "\n")
    if t.trace and t.trace.traceback and os.getenv("ORKET_TEST_VERBOSE") then
      io.write(t.trace.traceback, "\n")
    end
  end

  handler.testStart = function(element)
    started[element] = { hrtime(), machine_ms() }
    return nil, true
  end

  handler.testEnd = function(element, parent, status)
    ended[element] = true
    local s = started[element]
    if s then
      started[element] = nil
      io.write(string.format("\nPROFILE %7.0f ms wall %7d ms cpu  %s\n", (hrtime() - s[1]) / 1e6,
        machine_ms() - s[2], handler.getFullName(element)))
    end
    if status == "success" then
      passed = passed + 1
      io.write(".")
    elseif status == "pending" then
      -- a skip says what it skips and why: never silent
      pending = pending + 1
      local p = handler.pendings[#handler.pendings]
      local why = p and type(p.message) == "string" and p.message ~= "" and p.message or "skipped"
      why = why:gsub("^[^\n:]+%.lua:%d+: ", "") -- the reason, not where pending was called
      io.write("\nSKIP: ", p and p.name or "?", " (", why, ")\n")
    elseif status == "failure" then
      failed = failed + 1
      show("FAIL", handler.failures[#handler.failures])
    elseif status == "error" then
      failed = failed + 1
      show("ERROR", handler.errors[#handler.errors])
    end
    io.flush()
    return nil, true
  end

  -- An error outside a test (a file, describe, setup or before_each that fails) is shown at
  -- once; busted then runs none of the tests under that block, and publishes nothing for
  -- them. So that no test vanishes from the count, each such test is counted at the end
  -- as failed (a pending one as skipped), naming the error it did not run for. A describe
  -- nested in that block never runs its body, so its tests are never known: it is counted
  -- as one failure of its own, named for it, with the error. Only the blocks below can
  -- keep tests from running; any other error (after_each, teardown, busted's own "no such
  -- file") counts as one failure, each time.
  -- insulate and expose blocks need no entry: busted registers them as aliases of describe,
  -- so their elements carry descriptor "describe"
  local hides = { file = true, describe = true, strict_setup = true, lazy_setup = true, before_each = true }

  handler.describeStart = function(element)
    ran[element] = true
    return nil, true
  end

  handler.error = function(element, parent, message)
    local d = element.descriptor -- nil for busted's loader errors: a missing file, no file matched
    if d ~= "it" and d ~= "pending" then
      show("ERROR", handler.errors[#handler.errors])
      block_errors[#block_errors + 1] = {
        -- a describe's or file's own body failing: its tests; a setup or before_each: its describe's
        scope = hides[d] and ((d == "describe" or d == "file") and element or parent) or nil,
        why = tostring(d or "busted"):gsub("^strict_", "") .. " failed: "
          .. (type(message) == "string" and message:match("[^\n]*") or tostring(message)),
      }
    end
    return nil, true
  end

  local function unrun(suite)
    -- counted: the test is itself counted failed, and so stands for its block's errors; a
    -- pending one is counted skipped, and the error that stopped it must still fail the file
    local function reason(element, counted)
      local up = busted.parent(element)
      while up do
        for _, e in ipairs(block_errors) do
          if e.scope == up then
            if counted then
              -- every error of that block kept its tests from running
              for _, o in ipairs(block_errors) do
                if o.scope == up then o.explained = true end
              end
            end
            return e.why
          end
        end
        up = busted.parent(up)
      end
      return "busted did not run it, and published no error that says why"
    end
    local function walk(element)
      for _, child in ipairs(busted.children(element)) do
        if (child.descriptor == "it" or child.descriptor == "pending") and not ended[child] then
          local why = "did not run: " .. reason(child, child.descriptor == "it")
          if child.descriptor == "pending" then
            pending = pending + 1
            io.write("\nSKIP: ", handler.getFullName(child), " (", why, ")\n")
          else
            failed = failed + 1
            io.write("\nERROR: ", handler.getFullName(child), "\n  ", why, "\n")
          end
        elseif child.descriptor == "describe" and not ran[child] then
          -- its body never ran (an insulate or expose too): its tests are unknown, and it
          -- stands for them
          failed = failed + 1
          io.write("\nERROR: ", handler.getFullName(child), "\n  did not run: ", reason(child, true), "\n")
        end
        walk(child)
      end
    end
    walk(suite)
    for _, e in ipairs(block_errors) do
      if not e.explained then failed = failed + 1 end
    end
  end

  handler.suiteEnd = function(suite)
    unrun(suite)
    io.write("\nspec: ", passed, " passed, ", failed, " failed, ", pending, " skipped\n")
    io.flush()
    return nil, true
  end

  if profile then busted.subscribe({ "test", "start" }, handler.testStart) end
  busted.subscribe({ "test", "end" }, handler.testEnd, { predicate = handler.cancelOnPending })
  busted.subscribe({ "describe", "start" }, handler.describeStart)
  busted.subscribe({ "error" }, handler.error)
  busted.subscribe({ "suite", "end" }, handler.suiteEnd)
  return handler
end
