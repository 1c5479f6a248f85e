#!/usr/bin/env bash
# Run an example and compare what it prints with its expected output; show the difference when they differ.
# usage: check_output.sh PROGRAM EXPECTED_FILE [ARGS...]
set -euo pipefail
program=$1 expected=$2
shift 2
actual=$(mktemp)
trap 'rm -f "$actual"' EXIT
status=0
"$program" "$@" >"$actual" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  echo "FAIL: $program exited with status $status; it printed:"
  cat "$actual"
  exit 1
fi
if ! diff -u "$expected" "$actual"; then
  echo "FAIL: $program printed something other than $expected"
  exit 1
fi
echo "ok: $(basename "$program") printed what $(basename "$expected") says"
