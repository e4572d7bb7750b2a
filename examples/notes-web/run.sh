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

# waits until the live sandbox is a new one (not $1) and healthy; prints its id
healthy_after() {
  i=0
  while [ $i -lt 100 ]; do
    id=$("$BIN" sandbox list | awk -v old="$1" '$2 == "healthy" && $1 != old { print $1; exit }')
    if [ -n "$id" ]; then echo "$id"; return 0; fi
    i=$((i + 1)); sleep 0.2
  done
  echo "no sandbox became healthy; .orket/sandboxes/owner.log says:" >&2
  cat .orket/sandboxes/owner.log >&2 || true
  return 1
}

# try METHOD PATH [JSON]: one request to the sandbox's app through its socket
try() {
  command -v curl >/dev/null 2>&1 || return 0
  echo "\$ $1 $2${3:+ $3}"
  curl -s --unix-socket "$DIR/.orket/sandboxes/$ID/app.sock" -X "$1" -H 'Content-Type: application/json' \
    ${3:+-d "$3"} -w '  (HTTP %{http_code})\n' "http://sandbox$2"
}

"$BIN" import .
"$BIN" run NOTESWEB --concurrency 2
echo
"$BIN" board
echo
ID=$(healthy_after 0)
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
ID=$(healthy_after "$OLD")
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
