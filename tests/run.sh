#!/bin/sh
# Runs Orket's test layers against BUILD (default build) and ends with one line:
# "N passed, N failed, N skipped" (a skipped test says why, and never counts as passed).
# Exits non-zero when anything failed.
#   tests/run.sh [--check | --soak] [BUILD]
#   layer 1: C unit tests of the core's pure logic      (BUILD/test_core)
#   layer 2: busted specs of the Lua modules, in-runtime (tests/spec)
#   layer 3: end-to-end tests of the orket binary        (tests/e2e, but the SOAK files)
#   layer 4: the store's suites again on PostgreSQL      (PG_TESTS, under tests/with_pg.lua,
#            which starts the tests' own server; skipped, and said so, without PostgreSQL 15)
# --check (make check): layers 1 and 2. --soak (make soak): the git layer's crash test over
# more seeds, and the SOAK files, long runs of many killed or repeated runs, on SQLite and
# again on PostgreSQL for those in PG_TESTS.
# TEST_LAYERS (words of "c spec e2e pg soak"; default "c spec e2e pg") runs those layers:
# CI runs the PostgreSQL layer as a step of its own; "soak" adds what --soak runs.
# Each spec or e2e file runs as a process of its own, TEST_JOBS at a time (default: the
# cores plus two, at most 8: e2e files mostly wait on the processes they start; on 2 cores
# four at a time took a tenth less time than three), the
# slowest first by the last run's times (BUILD/test-times; in a fresh clone tests/test-times,
# a whole run's times kept in the repository). The spec, e2e and pg layers share one pool,
# so that no layer waits for another's slowest file. A file's line gives its layer, its
# counts and its time; each layer then reports the output of its failing files and adds its
# files' counts into its "spec: N passed, N failed, N skipped" line.
set -u
cd "$(dirname "$0")/.." || exit 1

# The long-running end-to-end files: `make soak` runs them, `make test` does not.
SOAK="tests/e2e/run_test.lua tests/e2e/workers_test.lua tests/e2e/chaos_test.lua"
# The suites that run on both backends (they open their stores through tests/backends.lua).
PG_TESTS="tests/e2e/board_tool_rollback_test.lua tests/spec/board/metrics_kept_hist_spec.lua tests/e2e/metrics_durations_test.lua tests/e2e/tool_numbers_test.lua tests/e2e/tool_writes_judged_test.lua tests/spec/services/ldap_identity_spec.lua tests/e2e/ldap_offboarding_test.lua tests/e2e/restore_run_ids_test.lua tests/e2e/restore_stale_branch_test.lua tests/e2e/restore_revok_test.lua tests/e2e/restore_checkpoint_test.lua tests/spec/services/refused_calls_spec.lua tests/e2e/refused_calls_test.lua tests/e2e/backup_target_test.lua tests/e2e/backup_pg_full_test.lua tests/spec/board/store_backends_spec.lua tests/spec/board/store_journal_index_spec.lua tests/spec/board/store_metrics_sums_spec.lua tests/spec/board/store_board_ops_spec.lua tests/spec/board/store_ops_spec.lua
  tests/spec/board/memory_search_spec.lua tests/spec/services/app_grants_clock_spec.lua tests/spec/services/audit_first_checkpoint_spec.lua tests/spec/services/sandbox_owner_spec.lua tests/spec/services/sandbox_retention_spec.lua
  tests/spec/board/board_spec.lua tests/spec/board/ready_spec.lua tests/spec/services/engine_spec.lua tests/spec/services/claims_spec.lua
  tests/spec/services/reload_spec.lua tests/spec/services/runset_spec.lua
  tests/spec/actions/requirements_wait_spec.lua tests/spec/services/identity_spec.lua
  tests/spec/actions/approvals_spec.lua tests/spec/services/serve_spec.lua tests/spec/services/serve_proxy_memo_spec.lua
  tests/e2e/board_test.lua tests/e2e/serve_test.lua
  tests/e2e/serve_runs_test.lua tests/e2e/serve_write_test.lua tests/e2e/serve_session_test.lua tests/e2e/serve_guard_test.lua
  tests/e2e/serve_metrics_test.lua tests/e2e/serve_keys_test.lua
  tests/e2e/budget_test.lua tests/spec/services/spend_shared_spec.lua tests/e2e/experiments_test.lua tests/e2e/experiments_arms_test.lua tests/spec/actions/experiments_spec.lua
  tests/e2e/card_cost_by_seat_test.lua
  tests/e2e/run_test.lua tests/e2e/approval_test.lua tests/e2e/question_test.lua tests/e2e/retry_test.lua tests/e2e/model_bytes_test.lua
  tests/e2e/cancel_test.lua tests/e2e/workers_test.lua tests/e2e/workers_budget_test.lua tests/e2e/git_test.lua tests/e2e/verify_test.lua
  tests/e2e/liveview_test.lua tests/e2e/backup_test.lua tests/e2e/restore_older_test.lua tests/e2e/sandbox_life_test.lua tests/e2e/notes_web_test.lua
  tests/e2e/mainview_test.lua
  tests/spec/services/sandbox_accept_spec.lua tests/e2e/sandbox_accept_test.lua
  tests/spec/services/bugfix_life_spec.lua tests/e2e/bugfix_test.lua
  tests/e2e/audit_test.lua tests/e2e/users_test.lua tests/e2e/secrets_test.lua tests/e2e/signin_test.lua tests/e2e/teams_test.lua
  tests/spec/board/worker_identity_spec.lua tests/spec/board/finish_run_spec.lua tests/e2e/workers_names_test.lua tests/e2e/odd_rows_test.lua
  tests/spec/services/journal_notify_spec.lua tests/spec/services/rate_buckets_clock_spec.lua tests/spec/actions/import_spec.lua
  tests/e2e/backup_private_test.lua tests/e2e/backup_passphrase_test.lua tests/e2e/backup_leftovers_test.lua tests/e2e/restore_resume_test.lua
  tests/e2e/runs_lease_end_test.lua tests/e2e/worker_stall_test.lua tests/e2e/lease_renewal_stall_test.lua tests/spec/services/lease_renew_open_claim_spec.lua tests/e2e/git_lock_stall_test.lua tests/e2e/worker_start_refused_test.lua tests/e2e/team_admin_test.lua tests/e2e/worker_stop_test.lua
  tests/spec/board/users_signs_in_spec.lua tests/spec/services/run_lease_end_spec.lua tests/spec/services/serve_board_held_spec.lua
  tests/e2e/serve_revoke_inflight_test.lua tests/e2e/serve_key_revoke_scope_test.lua tests/e2e/mcp_audit_key_test.lua
  tests/e2e/serve_metrics_project_test.lua tests/e2e/worktree_sweep_test.lua
  tests/e2e/killed_move_test.lua tests/spec/services/killed_move_spec.lua tests/spec/actions/approval_canceled_spec.lua tests/spec/actions/reimport_status_spec.lua"

# A file (or layer) that hangs (a test leaving a handle open keeps the loop alive) is stopped
# and counted as not finished, rather than holding the run forever; the bound is far above
# a file's time.
LAYER_TIMEOUT=${LAYER_TIMEOUT:-2400}
COUNT='^spec: [0-9]+ passed, [0-9]+ failed'
SANITIZER='ERROR: AddressSanitizer|ERROR: LeakSanitizer: detected|runtime error:'

# --one-of OUT KIND FILE: runs one file, its output in OUT/KEY.log, its time in OUT/KEY.ms;
# prints the file's line, and exits 1 when the file failed. KIND: spec, e2e, or pg (on the
# server tests/with_pg.lua started; run_test's two kill loops, 20 and 12 killed runs, are left
# to SQLite: on PostgreSQL each command's connections cost a SCRAM exchange, and they would
# take minutes).
if [ "${1:-}" = "--one-of" ]; then
  out=$2 kind=$3 f=$4
  # KEY: the path's slashes made underscores, by the shell itself (a program started per
  # file costs milliseconds of CPU, and the pool starts a few hundred of these)
  key=$kind sep=. ifs=$IFS
  IFS=/
  for part in $f; do key=$key$sep$part sep=_; done
  IFS=$ifs
  # as the layers set them, for a file run by hand
  export ORKET_BIN="${ORKET_BIN:-$PWD/build/orket}" ORKET_HISTORY="" NO_COLOR=1
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
  # only the pg layer's files see the tests' PostgreSQL server: the others run on SQLite
  [ "$kind" = pg ] || unset ORKET_TEST_DATABASE_URL
  case $kind in
    spec) set -- tests/busted.lua -o tests/busted_output.lua "$f" ;;
    e2e) set -- tests/busted.lua -o tests/busted_output.lua --pattern=_test "$f" ;;
    pg) set -- tests/busted.lua -o tests/busted_output.lua --pattern=_spec --pattern=_test \
          --filter-out="at every fault point" --filter-out="at random moments" "$f" ;;
  esac
  # The file's temp trees (tests/helpers.lua's tmpdir) are named with a prefix of its own,
  # reserved by the empty directory of that name, so that what it leaves, and the processes
  # and mounts it leaves there, are known to be its own: tests/leaks.lua fails the file for
  # each. timeout makes the file a process group of its own.
  [ -n "${ORKET_TEST_SCRATCH:-}" ] ||
    ORKET_TEST_SCRATCH=$("$ORKET_BIN" lua -e 'print(require("tests.helpers").scratch())')
  mine=$(mktemp -d "$ORKET_TEST_SCRATCH/orket-XXXX")
  start=$(date +%s%N)
  ORKET_TEST_PREFIX=${mine##*/} timeout "$LAYER_TIMEOUT" "$ORKET_BIN" lua "$@" >"$out/$key.log" 2>&1 </dev/null &
  group=$!
  wait "$group"
  ms=$((($(date +%s%N) - start) / 1000000))
  echo "$ms" >"$out/$key.ms"
  # the CPU its processes took (user and system, of the children this shell waited for,
  # through the builtin: a forked `times` would count none), beside the wall time: a file
  # whose wall time is far above it is waiting, not working
  times >"$out/$key.cpu"
  "$ORKET_BIN" lua tests/leaks.lua "$mine" "$group" "$out/$key.log"
  # exits 1 when the file failed as its layer's report counts it (a failed test, no count
  # line, a sanitizer report, no test run): 1, not 255, so that the pool's xargs goes on
  # with the other files (the pool's own report, read from the logs, sets its status)
  awk -v re="$COUNT" -v san="$SANITIZER" -v kind="$kind" -v f="$f" -v ms="$ms" -v cpuf="$out/$key.cpu" '
    $0 ~ re { counts = substr($0, 7); split($0, w, " "); p = w[2] + 0; n = w[4] + 0; s = w[6] + 0 }
    $0 ~ san { reports++ }
    END {
      # the second line of `times`: user and system time of the children, as "1m2.345s 0m0.5s"
      cpu = 0
      if ((getline line < cpuf) > 0 && (getline line < cpuf) > 0) {
        split(line, t, " ")
        for (i = 1; i <= 2; i++) { split(t[i], m, "m"); cpu += m[1] * 60 + m[2] }
      }
      printf "  %-4s %-44s %s  %d.%ds (CPU %.1fs)\n", kind, f, counts == "" ? "did not finish" : counts, ms / 1000, ms % 1000 / 100, cpu
      exit (counts == "" || reports || n || p + n + s == 0)
    }' "$out/$key.log"
  exit
fi

# --files KIND FILE...: runs one layer's files in parallel (as --pool does) and reports it.
# --pool KIND:FILE...: runs the files of several layers in one pool, so that no layer waits
# for another's slowest file, then reports each layer in turn. Under tests/with_pg.lua's
# --or-without, ORKET_TEST_PG_SKIPPED drops the pg files and says so once.
# A layer's report: each file's line as it ends, the output of those that failed, then the
# layer's "spec: N passed, N failed, N skipped" line. Exits 1 on a failure.
# ORKET_TEST_RUN_DIR (the pool's own temp dir) is where a file leaves what the other files of
# the same run reuse, such as tests/npm.lua's one probe of the registry.
if [ "${1:-}" = "--files" ] || [ "${1:-}" = "--pool" ]; then
  pool=""
  if [ "$1" = "--files" ]; then
    kind=$2
    shift 2
    items=$(for f in "$@"; do echo "$kind:$f"; done)
  else
    shift
    pool=1
    items=$(for i in "$@"; do echo "$i"; done)
  fi
  if [ -n "${ORKET_TEST_PG_SKIPPED:-}" ]; then items=$(echo "$items" | grep -v '^pg:'); fi
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  export ORKET_TEST_RUN_DIR="$out"
  # where each file's temp trees are made (--one-of), found once for the pool
  ORKET_TEST_SCRATCH=$("${ORKET_BIN:-$PWD/build/orket}" lua -e 'print(require("tests.helpers").scratch())')
  export ORKET_TEST_SCRATCH
  # what a file killed before its end left there (its prefix's directory and temp trees,
  # which tests/leaks.lua never got to check): this user's, a day old, so never a running
  # file's (a file is stopped after LAYER_TIMEOUT)
  find "$ORKET_TEST_SCRATCH" -mindepth 1 -maxdepth 1 -user "$(id -u)" -mmin +1440 \
    \( -name 'orket-????' -o -name 'orket-????.??????' \) -exec chmod -R u+rwx {} + -exec rm -rf {} + 2>/dev/null || true
  jobs=${TEST_JOBS:-$(($(nproc 2>/dev/null || echo 2) + 2))}
  [ "$jobs" -le 8 ] || jobs=8
  times=${TEST_TIMES:-/dev/null}
  # slowest first (a file not timed yet counts as slow), so the last ones to start are short;
  # without a last run's times (a fresh clone, CI) by those kept in tests/test-times
  order=$times
  [ -s "$order" ] || order=tests/test-times
  # (one awk for the whole list, and one below for the report: a program started per file
  # cost seconds of the run's wall time)
  echo "$items" | awk -v order="$order" '
    BEGIN { while ((getline l < order) > 0) { split(l, a, " "); ms[a[1] " " a[2]] = a[3] } }
    NF { i = index($0, ":"); k = substr($0, 1, i - 1) " " substr($0, i + 1)
         print ((k in ms) ? ms[k] : 999999), k }' |
    sort -rn | awk '{ print $2, $3 }' | xargs -P "$jobs" -n 2 sh "$0" --one-of "$out"
  status=0
  for kind in spec e2e pg; do
    files=$(echo "$items" | sed -n "s/^$kind://p")
    [ -n "$files" ] || continue
    [ -z "$pool" ] || case $kind in
      spec) echo "== Lua specs" ;;
      e2e) echo "== End-to-end tests (make soak runs: $SOAK)" ;;
      pg) echo "== On PostgreSQL" ;;
    esac
    # Each file's log: its last count line, its sanitizer reports. A file that ran no test
    # fails: every file holds tests, so none run means none were found or none selected.
    # A failing file's log is
    # shown indented, so that its own count lines are not taken for a layer's; a passing
    # file's skips and notes (what a refused kernel layer left untested) are shown too.
    # shellcheck disable=SC2086
    echo $files | tr ' ' '\n' | awk -v kind="$kind" -v out="$out" -v count_re="$COUNT" -v san_re="$SANITIZER" '
      NF {
        f = $0; key = f; gsub("/", "_", key); key = kind "." key
        lf = out "/" key ".log"; line = ""; reports = 0; nl = 0
        while ((getline l < lf) > 0) {
          text[++nl] = l
          if (l ~ count_re) line = l
          if (l ~ san_re) reports++
        }
        close(lf)
        split(line, w, " "); p = w[2] + 0; n = w[4] + 0; s = w[6] + 0
        if (line == "") { print "== " f " did not finish (it crashed or was killed):"; n++ }
        else if (reports) { print "== " f ": " reports " sanitizer report(s):"; n++ }
        else if (p + n + s == 0) { print "== " f " ran no test (none found, or a filter matched none):"; n++ }
        else if (n) print "== " f ": " n " failed:"
        for (i = 1; i <= nl; i++) {
          if (line == "" || reports || n) print "    " text[i]
          else if (text[i] ~ /^(SKIP: |  note: |  skipped: )/) { t = text[i]; sub(/^ */, "", t); print "    " f ": " t }
        }
        passed += p; failed += n; skipped += s; files++
        if ((getline ms < (out "/" key ".ms")) > 0) print kind, f, ms >> (out "/times")
        close(out "/" key ".ms")
      }
      END {
        print "spec: " passed + 0 " passed, " failed + 0 " failed, " skipped + 0 " skipped (" kind ": " files + 0 " files)"
        exit (failed > 0)
      }' || status=1
  done
  # the files run now replace their own times only: a run of a few files (make soak's, one
  # by hand) once dropped every other file's of its kind, and the next whole run started
  # them in no order
  if [ "$times" != /dev/null ] && [ -f "$out/times" ]; then
    { [ -f "$times" ] && awk 'NR == FNR { now[$1 " " $2] = 1; next } !(($1 " " $2) in now)' "$out/times" "$times"
      cat "$out/times"; } >"$out/times.new"
    cat "$out/times.new" >"$times"
  fi
  exit "$status"
fi

mode=test
case ${1:-} in
  --check) mode=check; shift ;;
  --soak) mode=soak; shift ;;
esac
BUILD=${1:-build}
export ORKET_BIN="$PWD/$BUILD/orket"
export ORKET_HISTORY=""   # tests never touch the user's history
export NO_COLOR=1
export TEST_TIMES="$PWD/$BUILD/test-times"
log=$(mktemp)
cout=$(mktemp)
kout=$(mktemp)
trap 'rm -f "$log" "$cout" "$kout"' EXIT

in_list() { for w in $2; do [ "$w" = "$1" ] && return 0; done; return 1; }

expected=0
layers=${TEST_LAYERS:-c spec e2e pg}
[ "$mode" = check ] && layers="c spec"
[ "$mode" = soak ] && layers="soak"
# The C tests mostly wait on their files' syncs (a second of CPU in several of time): they
# run beside the pool rather than before it, and report after it. So does the soak's git
# crash test over more seeds (one thread of CPU): a layer of its own after the pool once
# left a CPU idle for minutes, and so did the soak's files in pools of two or three.
cpid=""
if in_list c "$layers"; then
  expected=$((expected + 1))
  timeout "$LAYER_TIMEOUT" "$BUILD/test_core" >"$cout" 2>&1 &
  cpid=$!
fi
kpid=""
if in_list soak "$layers"; then
  expected=$((expected + 1))
  ORKET_GITCRASH_SEEDS=${ORKET_GITCRASH_SEEDS:-40} timeout "$LAYER_TIMEOUT" "$BUILD/test_core" test_gitcrash >"$kout" 2>&1 &
  kpid=$!
fi
# the spec, e2e and pg layers share one pool; each is still reported as a layer of its own.
# soak adds the SOAK files, on SQLite and (those in PG_TESTS) on PostgreSQL.
items=""
if in_list spec "$layers"; then
  for f in tests/spec/*/*_spec.lua; do items="$items spec:$f"; done
fi
if in_list e2e "$layers"; then
  for f in tests/e2e/*_test.lua; do in_list "$f" "$SOAK" || items="$items e2e:$f"; done
fi
if in_list soak "$layers"; then
  for f in $SOAK; do items="$items e2e:$f"; done
fi
if in_list pg "$layers"; then
  for f in $PG_TESTS; do in_list "$f" "$SOAK" || items="$items pg:$f"; done
fi
if in_list soak "$layers"; then
  for f in $SOAK; do in_list "$f" "$PG_TESTS" && items="$items pg:$f"; done
fi
kinds=""
for k in spec e2e pg; do
  case " $items" in *" $k:"*) kinds="$kinds$k " expected=$((expected + 1)) ;; esac
done
if [ -n "$items" ]; then
  echo "== Test files: $(echo "$items" | wc -w) of the layers ${kinds}in one pool"
  # (each file is bounded by LAYER_TIMEOUT itself; the pool's bound is a last resort)
  # shellcheck disable=SC2086
  if in_list pg "$kinds"; then
    timeout "$((LAYER_TIMEOUT * 2))" "$ORKET_BIN" lua tests/with_pg.lua --or-without sh tests/run.sh --pool $items 2>&1 | tee -a "$log"
    if grep -q '^PostgreSQL layer skipped' "$log"; then expected=$((expected - 1)); fi
  else
    timeout "$((LAYER_TIMEOUT * 2))" sh tests/run.sh --pool $items 2>&1 | tee -a "$log"
  fi
fi
if [ -n "$cpid" ]; then
  wait "$cpid"
  echo "== C unit tests"
  tee -a "$log" <"$cout"
fi
if [ -n "$kpid" ]; then
  wait "$kpid"
  echo "== The git layer's crash test, ${ORKET_GITCRASH_SEEDS:-40} more seeds"
  tee -a "$log" <"$kout"
fi

# Each layer printed "<layer>: N passed, N failed, N skipped"; a layer that printed nothing crashed.
layers=$(grep -cE '^(c|spec): [0-9]+ passed, [0-9]+ failed' "$log")
counts=$(grep -E '^(c|spec): [0-9]+ passed, [0-9]+ failed' "$log")
passed=$(echo "$counts" | awk '{s+=$2} END {print s+0}')
failed=$(echo "$counts" | awk '{s+=$4} END {print s+0}')
skipped=$(echo "$counts" | awk '{s+=$6} END {print s+0}')
if [ "$layers" -ne "$expected" ]; then
  echo "a test layer did not finish (it crashed or was killed): counted $layers of $expected"
  failed=$((failed + 1))
fi
# Under the sanitizers (make asan) a report after the last test, a leak found at exit, does
# not change a layer's count: it fails the run here (a file's report also fails its layer).
# (LeakSanitizer's own "fatal error", its tracer failing to stop the threads, is no report
# about the code and is not counted.)
reports=$(grep -cE "$SANITIZER" "$log")
if [ "$reports" -ne 0 ]; then
  echo "$reports sanitizer report(s) above"
  failed=$((failed + 1))
fi
# What failed, again just above the summary: a long run's log is often read from its tail only.
if [ "$failed" -ne 0 ]; then
  echo "== What failed (each file's output is above)"
  grep -E '^== .*( failed:| did not finish | sanitizer report)|^    (FAIL|ERROR): |^  FAIL ' "$log" | sed 's/^ */  /'
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
