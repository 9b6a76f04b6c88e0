#!/usr/bin/env bash
# Keep-alive requests/s with wrk: straight to the echo backend, then through tlsfront (TLS 1.3,
# one worker thread, the config of bench/load/lib.sh), in the same run, interleaved ROUNDS
# times. Prints one line per run and the median ratio tlsfront/backend.
# Usage: bench/load/wrk-keepalive.sh [SECONDS] [ROUNDS]
# Needs a release build (scripts/build release) and wrk (scripts/install-deps).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/load/lib.sh
secs="${1:-10}"
rounds="${2:-3}"
bin=build/release
work=$(mktemp -d /tmp/tlsfront-wrk-XXXXXX)
scripts/gen-self-signed "$work/cert.pem" "$work/key.pem" localhost >/dev/null
"$bin/tools/tlsfront-echo-backend" --listen 127.0.0.1:0 --port-file "$work/backend.port" >/dev/null &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
wait_for_file "$work/backend.port"
bport=$(cat "$work/backend.port")
bench_tlsfront_config "$work" "$bport"
"$bin/src/tlsfront" -c "$work/tlsfront.toml" --ports-file "$work/ports" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/ports"
pport=$(awk '/^https/{split($2,a,":"); print a[2]}' "$work/ports")

rps() { wrk -t1 -c64 -d"${secs}s" "$1" | awk '/Requests\/sec/{print $2}'; }
ratios=()
for r in $(seq "$rounds"); do
  direct=$(rps "http://127.0.0.1:$bport/")
  proxied=$(rps "https://127.0.0.1:$pport/")
  ratio=$(awk -v a="$proxied" -v b="$direct" 'BEGIN{printf "%.3f", a/b}')
  ratios+=("$ratio")
  echo "round $r: backend direct ${direct} req/s, through tlsfront ${proxied} req/s, ratio ${ratio}"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
echo "median ratio tlsfront/backend: $median  (wrk -t1 -c64 -d${secs}s, tlsfront threads=1, $(nproc) cores shared with wrk and the backend)"
