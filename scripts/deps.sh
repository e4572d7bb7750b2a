#!/bin/sh
# Checks that the Debian 12 packages Orket builds and tests against are present.
# As root it installs what is missing; otherwise it prints the one apt-get line to run.
set -eu

PKGS="build-essential pkg-config liblua5.4-dev lua-luv-dev libuv1-dev \
libsqlite3-dev libcurl4-openssl-dev libsodium-dev lua-cjson-dev libedit-dev lua-busted \
libyajl-dev libgit2-dev libmicrohttpd-dev libseccomp-dev libpq-dev"
# Needed by the tests only (not by a build, so not in the image's build stage):
# prometheus for its promtool, which checks orket serve's /metrics; chromium and its
# WebDriver for the web board's browser test; postgresql for the PostgreSQL backend's
# tests (each test run starts its own server in a temp dir); wrk for `make bench`.
# nodejs and npm run the tests' MCP peers from npm (docs/mcp.md).
TEST_PKGS="prometheus chromium chromium-driver postgresql wrk nodejs npm"
# docker-compose checks the compose files Orket writes (`orket sandbox compose`) and
# deploy/compose.yaml (`config` needs no engine); systemd-analyze verifies
# deploy/orket.service.
TEST_PKGS="$TEST_PKGS docker-compose systemd"
PKGS="$PKGS $TEST_PKGS"

# --asan: gcc's AddressSanitizer and UBSan runtimes come with build-essential's gcc.
# --fuzz adds libFuzzer, which ships in clang's runtime package.
[ "${1:-}" = "--fuzz" ] && PKGS="$PKGS clang libclang-rt-14-dev"
# --image adds what `make image-test` needs: podman (runc where crun refuses the host's
# cgroups, iptables for published ports), debootstrap for a base image, curl for probes.
[ "${1:-}" = "--image" ] && PKGS="$PKGS podman runc iptables debootstrap curl"

missing=""
for p in $PKGS; do
  [ "$p" = npm ] && command -v npm >/dev/null 2>&1 && continue # a nodejs from elsewhere (NodeSource) carries its own
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "deps: missing Debian packages; run:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
