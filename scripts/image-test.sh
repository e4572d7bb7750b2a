#!/bin/sh
# make image-test: builds the container image (Dockerfile) with podman and checks it from
# outside: `orket init` and `orket run` in it, then `orket serve` with a key from a mounted
# secret file, its /health and an authenticated /v1/board probed through the published port,
# its HEALTHCHECK, and a server refused on every interface without a key. Where no image can
# be pulled, the base is made from Debian's archive once (scripts/image-base.sh, cached).
# Uses podman, curl and od; where the kernel refuses what podman needs, it says so and skips.
set -eu
cd "$(dirname "$0")/.."
IMAGE=${ORKET_IMAGE:-localhost/orket:test}
BASE=${ORKET_IMAGE_BASE:-localhost/orket-base:bookworm}
start=$(date +%s)
say() { echo "image-test: $*"; }
fail() { say "FAILED: $*"; exit 1; }
for c in podman curl od; do
  command -v "$c" >/dev/null || fail "$c is not installed (sh scripts/deps.sh --image installs what this needs)"
done

# Some hosts refuse to raise the open-files and process limits podman asks for as root.
LIMITS=""
[ "$(id -u)" = 0 ] && LIMITS="--ulimit nofile=1024:4096 --ulimit nproc=4096:4096"

if ! podman image exists "$BASE"; then
  [ -n "${ORKET_IMAGE_BASE:-}" ] && fail "the base image $BASE is not here"
  sh scripts/image-base.sh "$BASE"
fi

# The OCI runtime: podman's default (crun), else runc, which also copes with the hybrid
# cgroup layout crun refuses. Neither starting is the kernel's refusal, reported as a skip.
RT="" err=""
for rt in "" "--runtime runc"; do
  # shellcheck disable=SC2086
  if err=$(podman run --rm $rt $LIMITS --network none "$BASE" true 2>&1); then RT=$rt; break; fi
  RT=none
done
if [ "$RT" = none ]; then
  say "SKIPPED: podman cannot start a container on this kernel (namespaces or cgroups refused):"
  echo "$err" | sed 's/^/  /'
  exit 0
fi
# Published ports need the bridge network (netavark and iptables); without it the host's
# own network is shared, and the probes still come from outside the container.
HOSTNET=""
# shellcheck disable=SC2086
if ! podman run --rm $RT $LIMITS -p 127.0.0.1::8765 "$BASE" true >/dev/null 2>&1; then
  say "no bridge network here (netavark or iptables refused): the container shares the host's network"
  HOSTNET=1
fi

say "building $IMAGE on $BASE"
# shellcheck disable=SC2086
podman build -q --format docker --network host $RT $LIMITS --build-arg BASE="$BASE" -t "$IMAGE" . >/dev/null ||
  fail "podman build failed"
built=$(date +%s)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/orket-image.XXXXXX")
vol="orket-image-test-$$"
name="orket-image-test-$$"
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman volume rm -f "$vol" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
key="ork_$(hex 8)_$(hex 32)"
printf '%s\n' "$key" >"$tmp/orket_key"
chmod 644 "$tmp/orket_key" # read by the image's user (uid 1000); a throwaway key
podman volume create "$vol" >/dev/null
# shellcheck disable=SC2086
orket() { podman run --rm --no-healthcheck $RT $LIMITS -v "$vol:/work" "$@"; }

# The image has no compiler and no test packages: only what running needs.
# shellcheck disable=SC2086
if podman run --rm --no-healthcheck $RT $LIMITS --entrypoint sh "$IMAGE" -c 'command -v cc || command -v gcc || command -v busted || [ -d /usr/lib/chromium ]' >/dev/null; then
  fail "the image holds build or test tools"
fi

orket "$IMAGE" init demo >"$tmp/init.out" 2>&1 || { cat "$tmp/init.out"; fail "orket init failed"; }
grep -q "created a project in demo" "$tmp/init.out" || { cat "$tmp/init.out"; fail "orket init said something else"; }
orket -w /work/demo "$IMAGE" run START >"$tmp/run.out" 2>&1 || { cat "$tmp/run.out"; fail "orket run START failed"; }
orket -w /work/demo "$IMAGE" board >"$tmp/board.out" 2>&1 || { cat "$tmp/board.out"; fail "orket board failed"; }
grep -q "done" "$tmp/board.out" || { cat "$tmp/board.out"; fail "the run finished no card"; }

# Never an open server: every interface without a key is refused.
if orket -w /work/demo "$IMAGE" serve --listen 0.0.0.0:8765 >"$tmp/open.out" 2>&1; then fail "serve listened on 0.0.0.0 without a key"; fi
grep -q "refusing to listen on 0.0.0.0 without an API key" "$tmp/open.out" || { cat "$tmp/open.out"; fail "serve without a key said something else"; }

port=$((20000 + $$ % 20000))
net="-p 127.0.0.1:$port:8765" listen=""
[ -n "$HOSTNET" ] && net="--network host" listen="--listen 0.0.0.0:$port"
# shellcheck disable=SC2086
podman run -d --name "$name" $RT $LIMITS $net -v "$vol:/work" -v "$tmp/orket_key:/run/secrets/orket_key:ro" \
  -e ORKET_KEY_FILE=/run/secrets/orket_key -w /work/demo "$IMAGE" serve $listen >/dev/null 2>"$tmp/podman.err" ||
  { cat "$tmp/podman.err"; fail "podman run serve failed"; }
# (without systemd, podman says it cannot schedule the HEALTHCHECK; it is run by hand below)
url="http://127.0.0.1:$port"
i=0
until curl -fsS "$url/health" >"$tmp/health" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then podman logs "$name" 2>&1 | tail -n 20; fail "no answer from $url/health"; fi
  sleep 0.2
done
grep -q '"ok"' "$tmp/health" || fail "/health said $(cat "$tmp/health")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/board")
[ "$code" = 401 ] || fail "/v1/board without a key answered $code, not 401"
curl -fsS -H "Authorization: Bearer $key" "$url/v1/board" >"$tmp/board.json" || fail "/v1/board with the key failed"
grep -q '"START-1"' "$tmp/board.json" || fail "/v1/board lacks the run's cards: $(head -c 300 "$tmp/board.json")"
podman healthcheck run "$name" >/dev/null 2>&1 || fail "the image's HEALTHCHECK did not pass"
podman logs "$name" 2>&1 | grep -q "$(echo "$key" | cut -c22-)" && fail "the key's secret is in the server's log"
podman stop -t 10 "$name" >/dev/null 2>&1
end=$(date +%s)
say "passed: build $((built - start)) s, checks $((end - built)) s, image $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1 / 1e6}')"
