#!/bin/sh
# The project's acceptance checks: orket.lua's verify.command runs this at each hand-in,
# and the forge's workflow (orket.yml) on each pull request. Replace them with your own
# (a test suite: exec make test). Each failure says what is wrong on stderr.
set -u
fail() { echo "check failed: $*" >&2; exit 1; }
# START-1: hello.txt greets the reader (once it is written)
if [ -e hello.txt ]; then grep -qi hello hello.txt || fail "hello.txt does not greet the reader"; fi
# README.md keeps the workflow's status badge
grep -q "actions/workflows/orket.yml/badge.svg" README.md || fail "README.md lost the workflow's status badge"
echo "acceptance checks passed"
