#!/bin/sh
# Runs the notes example end to end in a fresh copy: import, run with the scripted model,
# then print the board and where to read the transcript.
set -e
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/orket-notes.XXXXXX")
cp -R "$SRC/." "$DIR/"
rm -f "$DIR/run.sh"
cd "$DIR"
"$BIN" import .
"$BIN" run NOTES --concurrency 2 --json >/dev/null || { echo "the run did not finish (exit $?)"; "$BIN" board; exit 1; }
"$BIN" board
echo
echo "project: $DIR   transcript: cd $DIR && orket log 1"
