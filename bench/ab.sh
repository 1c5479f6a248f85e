#!/usr/bin/env bash
# A/B of two builds: run every ztwist benchmark (not the peers) of build A, then of build B, alternating ROUNDS
# times on the same machine state, then print each BENCH figure's median for A and B and the ratio B/A.
# Each build must have its own build directory (the benchmarks load libztwist.so through a RUNPATH to it).
#
# usage: bench/ab.sh BUILD_A BUILD_B [ROUNDS] [BENCH...]   ROUNDS defaults to 3; BENCH names (e.g. reactor pool)
# limit the run to those benchmarks. BENCH_QUICK=1 in the environment uses the small sizes.
set -euo pipefail
a=$1
b=$2
rounds=${3:-3}
shift $(($# < 3 ? $# : 3))
names=("$@")
if [ "${#names[@]}" -eq 0 ]; then
  for exe in "$b"/bench/bench_*; do names+=("$(basename "$exe" | sed 's/^bench_//')"); done
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((i = 1; i <= rounds; i++)); do
  for side in A B; do
    dir=$a
    [ "$side" = B ] && dir=$b
    for name in "${names[@]}"; do
      exe=$dir/bench/bench_$name
      [ -x "$exe" ] || continue
      echo "# round $i, $side: bench_$name" >&2
      "$exe" 2>/dev/null | awk -v side="$side" '$1 == "BENCH" && $2 !~ /\.peer\./ { print side, $2, $3, $4 }' >>"$out"
    done
  done
done
printf "%-48s %14s %14s %8s  %s\n" figure "A (median)" "B (median)" "B/A" unit
awk '
  { v[$1 SUBSEP $2] = v[$1 SUBSEP $2] " " $3; unit[$2] = $4; seen[$2] = 1 }
  function median(list,   n, arr, i, j, t) {
    n = split(list, arr, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    if (n == 0) return ""
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
  }
  END {
    for (k in seen) {
      ma = median(v["A" SUBSEP k]); mb = median(v["B" SUBSEP k])
      ratio = (ma != "" && mb != "" && ma != 0) ? sprintf("%.3f", mb / ma) : "-"
      printf "%-48s %14s %14s %8s  %s\n", k, ma, mb, ratio, unit[k]
    }
  }' "$out" | sort
