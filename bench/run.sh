#!/usr/bin/env bash
# Run every benchmark built into BUILD_DIR, in name order, then every peer. --quick (or BENCH_QUICK=1) runs the
# small sizes. Each benchmark prints `BENCH <name> <value> <unit>` lines, peers as
# `BENCH <name>.peer.<peer> <value> <unit>`; lines starting with '#' are comments (targets, spreads, skips).
#
# Peers: every bench/peers/<name>.c is built by bench/CMakeLists.txt into BUILD_DIR/bench/peers/<name>, and every
# bench/peers/<name>.py runs under /usr/bin/python3 (the Debian interpreter that has Twisted). A peer that is not
# built, cannot start or exits non-zero prints `# skipped: ...` and does not fail the run; a ztwist benchmark
# that fails does fail it. A figure that misses its target never fails the run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1
shift
for arg in "$@"; do
  case $arg in
    --quick) export BENCH_QUICK=1 ;;
    *) echo "usage: bench/run.sh BUILD_DIR [--quick]" >&2; exit 2 ;;
  esac
done
python=/usr/bin/python3

# run_peer NAME COMMAND...: run one peer; a failure becomes a '# skipped' line.
run_peer() {
  local name=$1
  shift
  echo "== peer $name"
  local status=0
  local t0
  t0=$(date +%s.%N)
  "$@" || status=$?
  [ "$status" -eq 0 ] || echo "# skipped: $name exited with status $status"
  s_took "$name" "$t0"
}

# s_took NAME T0: a comment with the wall time since T0 (from date +%s.%N).
s_took() {
  awk -v name="$1" -v t0="$2" -v t1="$(date +%s.%N)" 'BEGIN { printf "# %s took %.1f s\n", name, t1 - t0 }'
}

# run_all: every benchmark, then every peer.
run_all() {
  # The machine's state, since every figure depends on it.
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc 2>/dev/null || echo '?') CPUs, load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)${BENCH_QUICK:+, quick mode}"
  found=0
  for b in "$build"/bench/bench_*; do
    [ -x "$b" ] || continue
    found=1
    echo "== $(basename "$b")"
    t0=$(date +%s.%N)
    "$b"
    s_took "$(basename "$b")" "$t0"
  done
  [ "$found" -eq 1 ] || echo "no benchmarks built yet"

  for src in "$here"/peers/*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    exe="$build/bench/peers/$name"
    if [ -x "$exe" ]; then
      run_peer "$name" "$exe"
    else
      echo "== peer $name"
      echo "# skipped: $name was not built (its library was not found by pkg-config when configuring)"
    fi
  done

  for src in "$here"/peers/*.escript; do # Erlang peers (Debian: erlang-base)
    [ -e "$src" ] || continue
    name=$(basename "$src" .escript)
    if command -v escript >/dev/null; then run_peer "$name" escript "$src"; else
      echo "== peer $name"; echo "# skipped: $name needs escript (Debian: apt-get install erlang-base)"; fi
  done

  for src in "$here"/peers/*.py; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .py)
    if [ -x "$python" ]; then
      run_peer "$name" "$python" "$src"
    else
      echo "== peer $name"
      echo "# skipped: $name needs $python, which is missing"
    fi
  done
}

# summarize: one '#' line per figure, ztwist's value then every peer's, from the BENCH lines on stdin.
summarize() {
  awk '
    $1 == "BENCH" {
      name = $2; peer = "ztwist"; i = index(name, ".peer.")
      if (i > 0) { peer = substr(name, i + 6); name = substr(name, 1, i - 1) }
      if (!(name in row)) { order[++n] = name; row[name] = "" }
      row[name] = row[name] sprintf("  %s %s %s", peer, $3, $4)
    }
    END {
      if (n == 0) exit
      print "== summary: the median of each figure, ztwist and its peers from this run"
      for (k = 1; k <= n; k++) printf "# %-44s%s\n", order[k], row[order[k]]
    }'
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
run_all | tee "$out"
summarize <"$out"
