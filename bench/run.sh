#!/bin/sh
# Runs every benchmark (bench/*.lua) with the built orket and prints their figures.
# Speed targets live here, never in timed tests.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.." || exit 1
export ORKET_BIN="$PWD/$BUILD/orket"
export ORKET_CURLFLOOR="$PWD/$BUILD/curlfloor"
export ORKET_MHDFLOOR="$PWD/$BUILD/mhdfloor"
export ORKET_PROXYFLOOR="$PWD/$BUILD/proxyfloor"
export ORKET_GITFLOOR="$PWD/$BUILD/gitfloor"
export ORKET_W2FLOOR="$PWD/$BUILD/w2floor"
status=0
for b in bench/*.lua; do
  echo "== $b"
  "$BUILD/orket" lua "$b" || status=1
done
exit $status
