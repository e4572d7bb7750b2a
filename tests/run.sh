#!/bin/sh
# Runs every test layer against BUILD (default build) and ends with one line:
# "N passed, N failed". Exits non-zero when anything failed.
#   layer 1: C unit tests of the core's pure logic      (BUILD/test_core)
#   layer 2: busted specs of the Lua modules, in-runtime (tests/spec)
#   layer 3: end-to-end tests of the orket binary        (tests/e2e)
#   layer 4: the store's suites again on PostgreSQL      (PG_TESTS, under tests/with_pg.lua,
#            which starts the tests' own server; skipped, and said so, without PostgreSQL 15)
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.." || exit 1
export ORKET_BIN="$PWD/$BUILD/orket"
export ORKET_HISTORY=""   # tests never touch the user's history
export NO_COLOR=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# A layer that hangs (a test leaving a handle open keeps the loop alive) is stopped and counted
# as not finished, rather than holding the run forever; the bound is far above a layer's time.
LAYER_TIMEOUT=${LAYER_TIMEOUT:-2400}
echo "== C unit tests"
timeout "$LAYER_TIMEOUT" "$BUILD/test_core" 2>&1 | tee -a "$log"
echo "== Lua specs"
timeout "$LAYER_TIMEOUT" "$BUILD/orket" lua tests/busted.lua -o tests/busted_output.lua tests/spec 2>&1 | tee -a "$log"
echo "== End-to-end tests"
timeout "$LAYER_TIMEOUT" "$BUILD/orket" lua tests/busted.lua -o tests/busted_output.lua --pattern=_test tests/e2e 2>&1 | tee -a "$log"
# The suites that run on both backends (they open their stores through tests/backends.lua).
PG_TESTS="tests/spec/store_backends_spec.lua tests/spec/store_board_ops_spec.lua tests/spec/store_ops_spec.lua
  tests/spec/board_spec.lua tests/spec/ready_spec.lua tests/spec/engine_spec.lua tests/spec/claims_spec.lua
  tests/spec/approvals_spec.lua tests/spec/serve_spec.lua tests/e2e/board_test.lua tests/e2e/serve_test.lua
  tests/e2e/serve_runs_test.lua tests/e2e/serve_write_test.lua tests/e2e/serve_session_test.lua tests/e2e/serve_guard_test.lua
  tests/e2e/serve_metrics_test.lua tests/e2e/serve_keys_test.lua
  tests/e2e/run_test.lua tests/e2e/approval_test.lua tests/e2e/question_test.lua tests/e2e/retry_test.lua
  tests/e2e/cancel_test.lua tests/e2e/workers_test.lua tests/e2e/git_test.lua tests/e2e/verify_test.lua
  tests/e2e/liveview_test.lua tests/e2e/backup_test.lua"
echo "== On PostgreSQL"
expected=4
# run_test's two kill loops (20 and 12 killed runs) are left to the SQLite layer: on
# PostgreSQL each command's connections cost a SCRAM exchange, and they would take minutes
timeout "$LAYER_TIMEOUT" "$BUILD/orket" lua tests/with_pg.lua "$BUILD/orket" lua tests/busted.lua \
  -o tests/busted_output.lua --pattern=_spec --pattern=_test --filter-out="at every fault point" \
  --filter-out="at random moments" $PG_TESTS 2>&1 | tee -a "$log"
if grep -q '^PostgreSQL layer skipped' "$log"; then expected=3; fi

# Each layer printed "<layer>: N passed, N failed"; a layer that printed nothing crashed.
layers=$(grep -cE '^(c|spec): [0-9]+ passed, [0-9]+ failed' "$log")
counts=$(grep -E '^(c|spec): [0-9]+ passed, [0-9]+ failed' "$log")
passed=$(echo "$counts" | awk '{s+=$2} END {print s+0}')
failed=$(echo "$counts" | awk '{s+=$4} END {print s+0}')
if [ "$layers" -ne "$expected" ]; then
  echo "a test layer did not finish (it crashed or was killed): counted $layers of $expected"
  failed=$((failed + 1))
fi
# Under the sanitizers (make asan) a report after the last test, a leak found at exit, does
# not change a layer's count: it fails the run here. (LeakSanitizer's own "fatal error",
# its tracer failing to stop the threads, is no report about the code and is not counted.)
reports=$(grep -cE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer: detected|runtime error:' "$log")
if [ "$reports" -ne 0 ]; then
  echo "$reports sanitizer report(s) above"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
