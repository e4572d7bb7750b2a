#!/bin/sh
# Runs the notes example end to end in a fresh copy: import, run with the scripted model
# (the live view on a terminal, the run's events as JSON Lines otherwise), print the board
# and the command that prints the transcript, with the binary's path as given (orket
# need not be on PATH).
set -e
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/orket-notes.XXXXXX")
cp -R "$SRC/." "$DIR/"
rm -f "$DIR/run.sh"
cd "$DIR"
"$BIN" import .
status=0
"$BIN" run NOTES --concurrency 2 || status=$?
echo
"$BIN" board
echo
if [ "$status" -ne 0 ]; then echo "the run did not finish (exit $status)"; fi
echo "project: $DIR"
echo "transcript:"
echo "  '$BIN' log 1 -C '$DIR'"
exit "$status"
