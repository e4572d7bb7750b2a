#!/bin/sh
# Checks that the Debian 12 packages a target needs are present. As root it installs what
# is missing; otherwise it prints the one line for root to run, and exits 1.
#   scripts/deps.sh           build and run orket (make, make run)
#   scripts/deps.sh --test    also run its tests (make test, check, soak; --asan: the same)
#   scripts/deps.sh --bench   also run the benchmarks (make bench)
#   scripts/deps.sh --fuzz    also build the fuzz targets (make fuzz)
set -eu

# Building and running: the compiler and the -dev packages of the libraries orket links or
# loads with dlopen (libcurl, libpq, libgit2, libmicrohttpd, libcjose, libldap; their runtime
# libraries come with them); lua-yaml (LibYAML's binding) reads a repository's compose file for
# its sandbox. libcjose checks sign-in tokens against a provider's JWKS, libldap binds people
# to a directory (docs/teams.md). mimalloc is the process's allocator (docs/engine.md, "The allocator").
PKGS="build-essential pkg-config liblua5.4-dev lua-luv-dev libuv1-dev \
libsqlite3-dev libcurl4-openssl-dev libsodium-dev lua-cjson-dev libedit-dev \
libyajl-dev libgit2-dev libmicrohttpd-dev libseccomp-dev libpq-dev lua-yaml libcjose-dev libldap-dev libmimalloc-dev"
# The tests: busted runs the specs; prometheus for its promtool, which checks orket serve's
# /metrics; chromium's headless shell and its WebDriver for the browser tests and browser
# checks (chromium itself comes with chromium-driver); postgresql for the
# PostgreSQL backend's tests (each test run starts its own server in a temp dir); procps
# for ps (not in a minimal Debian); nodejs and npm run the MCP peers from npm (docs/mcp.md);
# docker-compose checks the compose files Orket writes (`orket sandbox compose`) and
# deploy/compose.yaml (`config` needs no engine), and podman-compose what becomes of the
# generated health check (it runs podman, here a stand-in); systemd-analyze verifies
# deploy/orket.service; curl is the HTTP client (over TCP and over orket serve's unix
# socket) that serve's guard tests use from outside orket (not in a minimal Debian); nginx
# and caddy front orket serve as docs/serve.md configures them (tests/e2e/serve_apps_test.lua);
# slapd is the directory the LDAP sign-in tests start in a temp dir; lua5.4's luac lists the
# globals each module reads (tests/spec/tree/globals_spec.lua).
TEST_PKGS="lua-busted prometheus chromium chromium-headless-shell chromium-driver postgresql procps nodejs npm docker-compose podman-compose systemd curl nginx-light caddy slapd lua5.4"
# The benchmarks: wrk loads orket serve; valgrind (callgrind) and strace count git's work
# (bench/gitcount.lua).
BENCH_PKGS="wrk valgrind strace"
# libFuzzer ships in clang's runtime package.
FUZZ_PKGS="clang libclang-rt-14-dev"
# `make image-test`: podman (runc where crun refuses the host's cgroups, iptables for
# published ports, catatonit for the infra container of a pod that `podman kube play`
# starts), debootstrap for a base image, curl for probes.
IMAGE_PKGS="podman runc iptables catatonit debootstrap curl"

case "${1:-}" in
  "") ;;
  --test | --asan) PKGS="$PKGS $TEST_PKGS" ;; # make asan runs the tests: the same packages
  --bench) PKGS="$PKGS $BENCH_PKGS" ;;
  --fuzz) PKGS="$PKGS $FUZZ_PKGS" ;;
  --image) PKGS="$PKGS $IMAGE_PKGS" ;;
  *) echo "usage: scripts/deps.sh [--test | --asan | --bench | --fuzz | --image]" >&2; exit 2 ;;
esac

# One dpkg-query for every package (one each took most of a second before every make
# test): a line "NAME STATUS" per package dpkg knows, none for one it does not.
# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${Package} ${Status}\n' $PKGS 2>/dev/null | awk '/ install ok installed$/ { printf "%s ", $1 }') " || true
missing=""
for p in $PKGS; do
  [ "$p" = npm ] && command -v npm >/dev/null 2>&1 && continue # a nodejs from elsewhere (NodeSource) carries its own
  case $installed in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
  # apt's own progress, on stderr with the script's other words: a first install takes
  # minutes, and a silent one looked hung
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends $missing >&2
else
  # a minimal Debian has no sudo: the line is for root to run as it is
  echo "deps: missing Debian packages; as root, run:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
  exit 1
fi
