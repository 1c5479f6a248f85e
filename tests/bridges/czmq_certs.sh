#!/usr/bin/env bash
# tests/bridges/czmq_certs.sh - CURVE certificates between czmq and ztwist's programs, both ways
#
#     czmq_certs.sh ZTWIST_BROKER ECHO_WORKER REMOTE_CLIENT CZMQ_CERT
#
# 1. Certificates made by a czmq program (CZMQ_CERT make: zcert_save) serve ztwist-broker
#    (--curve-cert, and --allow-dir: a directory of public certificates, read again when it
#    changes), echo_worker and remote_client (--curve-cert, zt_remote_*): a client whose
#    certificate is not in the directory is refused, and served once it is copied in.
# 2. A certificate made by ztwist-broker --keygen loads in czmq (CZMQ_CERT show: zcert_load) with
#    the same public key and a secret, and its secret file has mode 600.
# Every process is started here, on 127.0.0.1 port 0, and stopped by its pid.
set -euo pipefail
broker_bin=$1 worker_bin=$2 client_bin=$3 czmq_cert=$4
dir=$(mktemp -d /tmp/ztwist-czmq-certs-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL $*"; exit 1; }
ok() { echo "ok   $*"; }

# 1. czmq's certificates with ztwist's programs.
for name in broker worker client; do "$czmq_cert" make "$dir/$name" > "$dir/$name.pub.txt"; done
mkdir "$dir/allowed"
cp "$dir/worker" "$dir/allowed/worker"
ok "czmq made certificates: broker $(cat "$dir/broker.pub.txt")"

mkfifo "$dir/broker.out"
"$broker_bin" --bind tcp://127.0.0.1:0 --heartbeat-ms 250 --curve-cert "$dir/broker" \
  --allow-dir "$dir/allowed" > "$dir/broker.out" 2> "$dir/broker.err" &
pids+=($!)
broker_pid=$!
exec 3< "$dir/broker.out"
endpoint=""
while read -r -u 3 line; do
  case $line in
    "ztwist-broker: CURVE public key "*) key=${line#ztwist-broker: CURVE public key }
      [ "$key" = "$(cat "$dir/broker.pub.txt")" ] || fail "the broker's key is not its certificate's"
      ok "ztwist-broker read czmq's certificate: $key" ;;
    "ztwist-broker: listening on "*) endpoint=${line#ztwist-broker: listening on }; break ;;
  esac
done
[ -n "$endpoint" ] || fail "ztwist-broker did not start: $(cat "$dir/broker.err")"

"$worker_bin" --broker "$endpoint" --service echo --heartbeat-ms 250 \
  --curve-cert "$dir/broker" "$dir/worker" 2> "$dir/worker.err" &
pids+=($!)
worker_pid=$!

# Not in the directory: refused at once (the broker rejected our CURVE key).
if out=$("$client_bin" --broker "$endpoint" --service echo --requests 1 --timeout 10 --quiet \
  --curve-cert "$dir/broker" "$dir/client" 2>&1); then
  fail "a client whose certificate is not allowed was served: $out"
fi
case $out in *"rejected our CURVE key"*) ok "a client not in --allow-dir is refused" ;;
  *) fail "the refused client says: $out" ;; esac

# Copied in: the broker reads the directory again at the next handshake.
cp "$dir/client" "$dir/allowed/client"
out=$("$client_bin" --broker "$endpoint" --service echo --requests 50 --inflight 5 --wait \
  --quiet --curve-cert "$dir/broker.pub.txt.cert" "$dir/client" 2>&1 || true)
case $out in *"--curve-cert"*) ok "remote_client refuses a server certificate that is not there" ;;
  *) fail "a missing server certificate was not refused: $out" ;; esac
out=$("$client_bin" --broker "$endpoint" --service echo --requests 50 --inflight 5 --wait \
  --quiet --curve-cert "$dir/broker" "$dir/client" 2>&1) || fail "the allowed client failed: $out"
case $out in *"50 requests, 50 replies, 0 failures"*)
  ok "czmq certificates: echo_worker served remote_client through ztwist-broker ($out)" ;;
  *) fail "remote_client: $out" ;; esac

kill -TERM "$worker_pid"; wait "$worker_pid" || fail "echo_worker did not exit cleanly"
kill -TERM "$broker_pid"; wait "$broker_pid" || fail "ztwist-broker did not exit cleanly"
pids=()
stats=$(tail -n 1 <&3)
case $stats in *" 1 keys rejected"*) ok "the broker counted the refused key: $stats" ;;
  *) fail "the broker's counters: $stats" ;; esac
exec 3<&-

# 2. ztwist's certificate in czmq.
made=$("$broker_bin" --keygen "$dir/ztwist")
key=${made#ztwist-broker: CURVE public key }
key=${key%% *}
shown=$("$czmq_cert" show "$dir/ztwist") || fail "czmq cannot load ztwist's certificate"
[ "${shown%% *}" = "$key" ] || fail "czmq reads public key ${shown%% *}, ztwist wrote $key"
[ "${shown#* }" != "-" ] || fail "czmq finds no secret key in ztwist's certificate"
mode=$(stat -c %a "$dir/ztwist_secret")
[ "$mode" = 600 ] || fail "the secret file has mode $mode"
missing=$("$czmq_cert" show "$dir/nonexistent" > /dev/null 2>&1 && echo loaded || echo refused)
[ "$missing" = refused ] || fail "czmq loaded a certificate that does not exist"
ok "ztwist-broker --keygen's certificate loads in czmq (zcert_load): $key, secret mode $mode"
echo "all checks passed"
