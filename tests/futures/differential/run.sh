#!/bin/sh
# Differential test of ztwist's Deferred against Twisted's: for each seed, twisted_run.py generates
# a random op script, runs it against Twisted 22.4 and interp runs it against ztwist; the two logs
# (every link's received value or failure type, fire/fail outcomes, canceller calls, each
# Deferred's final state, the unhandled-failure count) must be identical. Prints the first seed
# that differs, with the script and both logs, and exits 1; exits 77 (skip) when /usr/bin/python3
# cannot import twisted.
#     run.sh INTERP [FIRST_SEED LAST_SEED]
set -u
interp=$1
first=${2:-1}
last=${3:-60}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import twisted.internet.defer' 2>/dev/null; then
    echo "skip: $py cannot import twisted"
    exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/zt_differential.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
seed=$first
while [ "$seed" -le "$last" ]; do
    "$py" "$here/twisted_run.py" gen "$seed" >"$work/script" || exit 1
    "$py" "$here/twisted_run.py" run "$work/script" >"$work/twisted" 2>"$work/twisted.err"
    py_rc=$?
    "$interp" <"$work/script" >"$work/ztwist" 2>"$work/ztwist.err"
    c_rc=$?
    if [ $py_rc -ne 0 ] || [ $c_rc -ne 0 ] || ! cmp -s "$work/twisted" "$work/ztwist"; then
        echo "seed $seed differs (twisted_run.py exit $py_rc, interp exit $c_rc)"
        echo "--- script"
        cat "$work/script"
        echo "--- diff twisted ztwist"
        diff "$work/twisted" "$work/ztwist"
        echo "--- twisted log"
        cat "$work/twisted" "$work/twisted.err"
        echo "--- ztwist log"
        cat "$work/ztwist" "$work/ztwist.err"
        exit 1
    fi
    seed=$((seed + 1))
done
echo "seeds $first..$last: ztwist and Twisted logs identical"
exit 0
