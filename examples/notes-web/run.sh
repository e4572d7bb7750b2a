#!/bin/sh
# Runs the notes-web example in a fresh copy: import, run the rock with the scripted model
# (the epic done deploys main's tree to a sandbox, and the cards' acceptance checks run
# against it), use the service through the sandbox's socket, file a bug found there in the
# rock's bug-fix phase, run it (the fix is deployed in place of the first), and print how
# to reach the sandbox and stop it. The binary's path is given as the first
# argument (orket need not be on PATH); curl, when installed, shows the requests.
set -e
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/orket-notes-web.XXXXXX")
cp -R "$SRC/." "$DIR/"
rm -f "$DIR/run.sh"
cd "$DIR"

# healthy_after and try (examples/lib/sandbox.sh)
. "$SRC/../lib/sandbox.sh"

"$BIN" import .
"$BIN" run NOTESWEB --concurrency 2
echo
"$BIN" board
echo
ID=$(healthy_after 0 100)
echo "the epic is done and deployed: sandbox $ID"
try GET /health
try POST /notes '{"text": "buy milk"}'
try POST /notes '{"text": ""}'
try GET /notes
echo
echo "the rock is done: its bug-fix phase is open"
"$BIN" bugfix status
echo
echo "an empty note was accepted: a bug is filed under the rock and worked"
"$BIN" bug NOTESWEB "BUG: empty notes are accepted" --body "POST /notes with an empty text answers 201"
"$BIN" run NOTESWEB
OLD=$ID
ID=$(healthy_after "$OLD" 100)
echo
echo "the fix is deployed: sandbox $ID (sandbox $OLD was stopped)"
try POST /notes '{"text": ""}'
try POST /notes '{"text": "it works"}'
echo
"$BIN" sandbox list
echo
echo "project: $DIR"
echo "reach it: curl --unix-socket '$DIR/.orket/sandboxes/$ID/app.sock' http://sandbox/"
echo "or in a browser, from the web board: '$BIN' serve -C '$DIR' (docs/serve.md), sign in"
echo "  (a key: '$BIN' keys create me --role operator -C '$DIR'), and Sandboxes > Open the app:"
echo "  the app on its own origin, http://$ID.sandbox.localhost:PORT/, where its form adds notes"
echo "stop it: '$BIN' sandbox stop $ID -C '$DIR'"
