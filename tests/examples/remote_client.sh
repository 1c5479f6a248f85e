#!/usr/bin/env bash
# remote_client against real processes: ztwist-broker on a free port, an echo_worker with two
# connections and a 1 s heartbeat (sanitizer builds on a loaded 2-core machine miss 100 ms ones),
# then remote_client --quiet, whose output must be exactly the expected lines.
# usage: remote_client.sh BROKER ECHO_WORKER REMOTE_CLIENT
set -euo pipefail
broker=$1 worker=$2 client=$3
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
# The broker prints its endpoint once bound: read it from its stdout, with a 10 s bound.
exec 3< <(exec "$broker" --bind tcp://127.0.0.1:0 --heartbeat-ms 1000 2>"$dir/broker.err")
pids+=($!)
endpoint=
if read -r -t 10 -u 3 line; then
  endpoint=${line#ztwist-broker: listening on }
fi
[ -n "$endpoint" ] || { echo "FAIL: the broker did not report its endpoint"; cat "$dir/broker.err"; exit 1; }
"$worker" --broker "$endpoint" --service echo --threads 2 --heartbeat-ms 1000 2>"$dir/worker.err" &
pids+=($!)
# --wait: the client asks the broker (mmi.service) until the worker has announced itself.
actual=$("$client" --broker "$endpoint" --service echo --requests 500 --inflight 20 --timeout 10 --wait --quiet) ||
  true # a failed request makes the client exit non-zero: compare its summary below instead
expected="remote_client: 500 requests, 500 replies, 0 failures"
if [ "$actual" != "$expected" ]; then
  echo "FAIL: remote_client printed:"; echo "$actual"; echo "expected:"; echo "$expected"
  echo "broker log:"; cat "$dir/broker.err"; echo "worker log:"; cat "$dir/worker.err"
  exit 1
fi
# An unknown service fails every request with a clear message.
actual=$("$client" --broker "$endpoint" --service nobody --requests 3 --inflight 1 --quiet || true)
expected="remote_client: 3 requests, 0 replies, 3 failures
remote_client: first failure: SystemError: not found: service 'nobody' unknown: no worker announced it"
if [ "$actual" != "$expected" ]; then
  echo "FAIL: remote_client (unknown service) printed:"; echo "$actual"; echo "expected:"; echo "$expected"
  exit 1
fi
echo "ok: remote_client against ztwist-broker and echo_worker"
