#!/bin/sh
# Runs the fullstack example in a fresh copy: import, run the rock with the scripted model
# (the epic done deploys its three services, database included, to one sandbox, and the
# cards' acceptance checks run against it), use the app through the sandbox's socket, file
# a bug found there in the rock's bug-fix phase, run it (the fix is deployed in place of
# the first, the database kept), and print how to reach the sandbox and stop it. The
# binary's path is the first argument (orket need not be on PATH); curl, when installed,
# shows the requests.
set -e
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/orket-fullstack.XXXXXX")
cp -R "$SRC/." "$DIR/"
rm -f "$DIR/run.sh"
cd "$DIR"

# healthy_after and try (examples/lib/sandbox.sh)
. "$SRC/../lib/sandbox.sh"

"$BIN" import .
"$BIN" run FULLSTACK --concurrency 2
echo
"$BIN" board
echo
"$BIN" sandbox plan
echo
ID=$(healthy_after 0)
echo "the epic is done and its three services deployed: sandbox $ID"
# (the acceptance checks run beside this script once the sandbox is healthy; their own
# item comes first)
sleep 2
try GET /api/health
try POST /api/items '{"name": ""}'
try GET /api/items
echo
echo "an empty name was accepted: a bug is filed under the rock and worked"
"$BIN" bug FULLSTACK "BUG: empty item names are accepted" --body "POST /api/items with an empty name answers 201"
"$BIN" run FULLSTACK
OLD=$ID
ID=$(healthy_after "$OLD")
echo
echo "the fix is deployed: sandbox $ID (sandbox $OLD was stopped), its database kept"
try POST /api/items '{"name": ""}'
try GET /api/items
echo
"$BIN" sandbox logs "$ID" | head -8
echo
echo "project: $DIR"
echo "reach it: curl --unix-socket '$DIR/.orket/sandboxes/$ID/app.sock' http://sandbox/api/items"
echo "or in a browser, through the web board: '$BIN' serve -C '$DIR' (docs/serve.md)"
echo "stop it: '$BIN' sandbox stop $ID -C '$DIR'"
