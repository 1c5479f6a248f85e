#!/usr/bin/env bash
# The library sources' two house rules that a compiler cannot check:
#   1. compiler extensions (__attribute__, __builtin_*, inline assembly, _GNU_SOURCE, intrinsics headers) appear
#      only in base/include/base/compiler.h and base/compiler.c, the one place for them;
#   2. no benchmark figure in a library source (a number followed by ns, us, calls/s, req/s, msgs/s, ops/s or
#      tasks/s): design notes state invariants and reasons; figures belong in bench/README.md and docs/.
# Library sources are the .c and .h files of base/ futures/ runtime/ actors/ bridges/ tools/. Prints each
# problem with its file and line; exits 1 when any.
#
# usage: check_sources.sh [--self-test] [ROOT]   ROOT is the repository (the default is this script's).
# --self-test first runs the check on a scratch tree with planted faults and fails unless each is reported.
set -euo pipefail
if [ "${1:-}" = --self-test ]; then
    shift
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    mkdir -p "$scratch/base/include/base" "$scratch/runtime"
    printf '#define ZT__LIKELY(x) __builtin_expect(!!(x), 1)\n' >"$scratch/base/include/base/compiler.h"
    printf '/* A pass costs 38 ns here. */\nstatic int x __attribute__((unused));\n#define _GNU_SOURCE\n' \
        >"$scratch/runtime/planted.c"
    printf '/* A timeout of 5 seconds, a window of 32 calls. */\nstatic int y;\n' >"$scratch/runtime/clean.c"
    out=$("$0" "$scratch" 2>&1) && { echo "check_sources self-test: a tree with planted faults passed"; exit 1; }
    for expect in "planted.c:1: benchmark figure" "planted.c:2: compiler extension" \
        "planted.c:3: compiler extension"; do
        grep -q "$expect" <<<"$out" || { echo "check_sources self-test: not reported: $expect"; echo "$out"; exit 1; }
    done
    if grep -Eq "^(base/include/base/compiler.h|runtime/clean.c):" <<<"$out"; then
        echo "check_sources self-test: a permitted line was reported"; echo "$out"; exit 1
    fi
    echo "check_sources self-test: the planted faults were reported"
    rm -rf "$scratch"
    trap - EXIT
fi
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
status=0
hits=$(mktemp)
trap 'rm -f "$hits"' EXIT
files=()
for dir in base futures runtime actors bridges tools; do
    [ -d "$dir" ] || continue
    while IFS= read -r f; do files+=("$f"); done < <(find "$dir" -name '*.[ch]' | sort)
done
[ "${#files[@]}" -gt 0 ] || { echo "check_sources: no library source under $root"; exit 1; }
extension='__attribute__|__builtin_|__asm__|\basm\b|_GNU_SOURCE|__rdtsc|intrin\.h'
figure='[0-9][0-9.,]*[[:space:]]?[kKM]?[[:space:]]?(ns|us|µs|calls/s|req/s|msgs?/s|ops/s|tasks/s)\b'
for f in "${files[@]}"; do
    case $f in
        base/include/base/compiler.h | base/compiler.c) ;;
        *) if grep -nE "$extension" "$f" >"$hits" 2>/dev/null; then
               sed "s|^\([0-9]*\):|$f:\1: compiler extension outside base/compiler.h: |" "$hits"
               status=1
           fi ;;
    esac
    if grep -nE "$figure" "$f" >"$hits" 2>/dev/null; then
        sed "s|^\([0-9]*\):|$f:\1: benchmark figure in a library source: |" "$hits"
        status=1
    fi
done
echo "check_sources: ${#files[@]} library sources checked"
exit $status
