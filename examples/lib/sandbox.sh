# Sourced by the examples whose run.sh deploys a sandbox (notes-web, fullstack): waiting for
# a sandbox, and one request to its app. They read BIN (the orket binary), DIR (the
# project's copy) and ID (the live sandbox) from the script that sources this.

# healthy_after OLD [TRIES]: waits until the live sandbox is a new one (not OLD) and
# healthy, asking every 0.2 s, TRIES times at most (default 150); prints its id
healthy_after() {
  i=0
  while [ $i -lt "${2:-150}" ]; do
    id=$("$BIN" sandbox list | awk -v old="$1" '$2 == "healthy" && $1 != old { print $1; exit }')
    if [ -n "$id" ]; then echo "$id"; return 0; fi
    i=$((i + 1)); sleep 0.2
  done
  echo "no sandbox became healthy; .orket/sandboxes/owner.log says:" >&2
  cat .orket/sandboxes/owner.log >&2 || true
  return 1
}

# try METHOD PATH [JSON]: one request to the sandbox's app through its socket, shown when
# curl is installed
try() {
  command -v curl >/dev/null 2>&1 || return 0
  echo "\$ $1 $2${3:+ $3}"
  curl -s --unix-socket "$DIR/.orket/sandboxes/$ID/app.sock" -X "$1" -H 'Content-Type: application/json' \
    ${3:+-d "$3"} -w '  (HTTP %{http_code})\n' "http://sandbox$2"
}
