#!/usr/bin/env bash
# Run every benchmark built into BUILD_DIR, in name order. --quick (or BENCH_QUICK=1) runs the small sizes.
# Each benchmark prints `BENCH <name> <value> <unit>` lines, peers as `BENCH <name>.peer.<peer> <value> <unit>`.
set -euo pipefail
build=$1
shift
for arg in "$@"; do
  case $arg in
    --quick) export BENCH_QUICK=1 ;;
    *) echo "usage: bench/run.sh BUILD_DIR [--quick]" >&2; exit 2 ;;
  esac
done
found=0
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  found=1
  echo "== $(basename "$b")"
  "$b"
done
[ "$found" -eq 1 ] || echo "no benchmarks built yet"
