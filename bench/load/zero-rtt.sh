#!/usr/bin/env bash
# TLS 1.3 0-RTT (issue 15): what a resumed client gains with early data, and what the fleet-wide
# single-use check costs the server. One tlsfront (one worker, early_data on, [cluster] on a local
# redis-server, so every 0-RTT attempt costs one SET NX), the echo backend, and two clients:
# tlsfront-loadgen (BoringSSL) and tlsfront-loadgen-openssl (OpenSSL 3), --mode ticket13 (a
# resumption, request after the handshake) against --mode early13 (the same, request as early
# data; every round resumes with the newest ticket of the round before, so each ticket is used
# once and early data should be accepted every time).
#  1. latency: through bench/load/delay_relay.py, DELAY ms each way (no tc netem on this
#     machine), 4 connections: the median time from connect to the whole response. Resumed
#     TLS 1.3 costs TCP + handshake + request = 3 round trips; with 0-RTT the request rides on the
#     ClientHello: 2.
#  2. cost: no relay, 32 connections, tlsfront pinned to CPU 0 and everything else to CPU 1:
#     handshakes per CPU-second of tlsfront + redis-server.
# Cells run interleaved over ROUNDS rounds; figures are medians with their range and the ratio
# early13 / ticket13 within the same run.
# Usage: bench/load/zero-rtt.sh [SECONDS] [ROUNDS] [DELAY_MS]   (defaults 5, 3, 10). Needs a
# release build and the packages of scripts/install-deps. Writes
# bench/results/<date>-zero-rtt.md (or $OUT.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/load/lib.sh
secs="${1:-5}"
rounds="${2:-3}"
delay="${3:-10}"
bin=build/release
for b in "$bin/src/tlsfront" "$bin/tools/tlsfront-echo-backend" "$bin/tools/tlsfront-loadgen" \
  "$bin/tools/tlsfront-loadgen-openssl"; do
  [ -x "$b" ] || { echo "zero-rtt.sh: $b is missing: run scripts/build release first" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "zero-rtt.sh: run scripts/install-deps first" >&2; exit 1; }
out_base=${OUT:-bench/results/$(date +%F)-zero-rtt}
work=$(mktemp -d /tmp/tlsfront-zero-rtt-XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
other=1
[ "$(nproc)" -ge 2 ] || other=0

rport=$(free_port)
taskset -c "$other" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" --logfile "$work/redis.log" >/dev/null &
rpid=$!
pids+=("$rpid")
for _ in $(seq 100); do redis-cli -p "$rport" PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done

scripts/gen-self-signed "$work/cert.pem" "$work/key.pem" localhost >/dev/null
taskset -c "$other" "$bin/tools/tlsfront-echo-backend" --listen 127.0.0.1:0 --threads 1 \
  --port-file "$work/backend.port" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/backend.port"
openssl rand -hex 32 >"$work/fleet.secret"
chmod 600 "$work/fleet.secret"
bench_tlsfront_config "$work" "$(cat "$work/backend.port")"
sed -i 's/^max_tls = "1.3"$/max_tls = "1.3"\nearly_data = true/' "$work/tlsfront.toml"
printf '\n[cluster]\nredis = "127.0.0.1:%s"\nsecret_file = "%s"\nlookup_timeout = "50ms"\n' \
  "$rport" "$work/fleet.secret" >>"$work/tlsfront.toml"
taskset -c 0 "$bin/src/tlsfront" -c "$work/tlsfront.toml" --ports-file "$work/ports" \
  >"$work/out.log" 2>&1 &
tpid=$!
pids+=("$tpid")
wait_for_file "$work/ports" || { cat "$work/out.log" >&2; exit 1; }
port=$(awk '/^https /{n=split($2,a,":"); print a[n]}' "$work/ports")
taskset -c "$other" python3 bench/load/delay_relay.py 0 "$port" "$delay" "$work/relay.port" &
pids+=($!)
wait_for_file "$work/relay.port"
relay=$(cat "$work/relay.port")
sleep 1

# run NAME CLIENT PORT MODE CONNECTIONS
#   -> "handshakes_per_s ttfb_p50_us round_p50_us per_cpu_s early_share errors tlsfront_cpu_pct"
run() {
  local c0 c1 t0 t1 j="$work/$1.json"
  c0=$(bench_cpu_ticks "$tpid" "$rpid")
  t0=$(bench_cpu_ticks "$tpid")
  taskset -c "$other" "$bin/tools/$2" --port "$3" --sni localhost --mode "$4" \
    --connections "$5" --duration "$secs" --json "$j" >/dev/null
  c1=$(bench_cpu_ticks "$tpid" "$rpid")
  t1=$(bench_cpu_ticks "$tpid")
  python3 - "$j" "$((c1 - c0))" "$(getconf CLK_TCK)" "$((t1 - t0))" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); cpu = max(int(sys.argv[2]), 1) / int(sys.argv[3])
tlsfront_pct = int(sys.argv[4]) / int(sys.argv[3]) / d["duration_s"] * 100
hs = max(d["handshakes"], 1)
print(f'{d["handshakes_per_s"]:.0f} {d["ttfb_us"]["p50"]} {d["latency_us"]["p50"]} '
      f'{d["handshakes"] / cpu:.0f} {d["early_accepted"] / hs:.4f} {d["errors"]} {tlsfront_pct:.0f}')
PY
}

results=()
for r in $(seq "$rounds"); do
  for client in tlsfront-loadgen tlsfront-loadgen-openssl; do
    for mode in ticket13 early13; do
      line=$(run "lat-$client-$mode-$r" "$client" "$relay" "$mode" 4)
      results+=("lat/$client/$mode $line")
      echo "round $r latency $client $mode: hs/s ttfb_p50_us round_p50_us per-CPU-s early-share errors tlsfront-CPU% = $line" >&2
      line=$(run "cost-$client-$mode-$r" "$client" "$port" "$mode" 32)
      results+=("cost/$client/$mode $line")
      echo "round $r cost $client $mode: hs/s ttfb_p50_us round_p50_us per-CPU-s early-share errors tlsfront-CPU% = $line" >&2
    done
  done
done
claims=$(redis-cli -p "$rport" DBSIZE | awk '{print $1+0}')

python3 - "$out_base.md" "$secs" "$rounds" "$delay" "$claims" "$(git rev-parse --short HEAD)" \
  "${results[@]}" <<'PY'
import collections, statistics, sys, datetime, platform, os
out, secs, rounds, delay, claims, commit = sys.argv[1:7]
rows = collections.defaultdict(list)
for r in sys.argv[7:]:
    name, hs, ttfb, p50, per_cpu, share, errors, pct = r.split()
    rows[name].append((float(hs), float(ttfb) / 1000, float(per_cpu), float(share), int(errors),
                       float(p50) / 1000, float(pct)))
def med(n, i): return statistics.median(x[i] for x in rows[n])
def rng(n, i, f): return f'{min(x[i] for x in rows[n]):{f}}–{max(x[i] for x in rows[n]):{f}}'
def errs(n): return sum(x[4] for x in rows[n])
lat = cost = ""
for client in ("tlsfront-loadgen", "tlsfront-loadgen-openssl"):
    a, b = f"lat/{client}/ticket13", f"lat/{client}/early13"
    lat += (f"| {client} | {med(a,1):.1f} ({rng(a,1,'.1f')}) | {med(b,1):.1f} ({rng(b,1,'.1f')}) | "
            f"**{med(b,1)/med(a,1):.3f}** | {med(a,5):.1f} / {med(b,5):.1f} | {med(b,3):.1%} | "
            f"{med(a,6):.0f} / {med(b,6):.0f} | {errs(a)} / {errs(b)} |\n")
    a, b = f"cost/{client}/ticket13", f"cost/{client}/early13"
    cost += (f"| {client} | {med(a,2):,.0f} ({rng(a,2,',.0f')}) | {med(b,2):,.0f} ({rng(b,2,',.0f')}) | "
             f"**{med(b,2)/med(a,2):.3f}** | {med(b,3):.1%} | {med(a,6):.0f} / {med(b,6):.0f} | "
             f"{errs(a)} / {errs(b)} |\n")
with open(out, "w") as f:
    f.write(f"""# TLS 1.3 0-RTT: latency gained, single-use check paid — {datetime.date.today()}

`bench/load/zero-rtt.sh {secs} {rounds} {delay}` (tlsfront commit `{commit}`, release preset) on a
{os.cpu_count()}-core machine ({platform.platform()}). One tlsfront worker pinned to CPU 0,
`early_data = true`, `[cluster]` on a local redis-server (each 0-RTT attempt: one `SET NX PX`);
the echo backend, redis-server, the relay and the clients on CPU 1. `ticket13`: resumed TLS 1.3,
the request after the handshake; `early13`: the same resumption with the request as early data.
Cells interleaved over {rounds} rounds of {secs} s; medians (range).

## Time to the whole response across a {delay} ms (each way) link

bench/load/delay_relay.py in front of tlsfront (no `tc netem` here; the relay answers the TCP
handshake itself, so only TLS and HTTP pay the delay), 4 connections. Time to first byte: from
connect to the first response byte. A whole round (connect → close) also waits for the server's
close, which with 0-RTT follows the client's Finished (tlsfront reads it first, so the close
cannot reset a response the client has not read), so it shows no gain; a client does not wait
for it (Content-Length).

| client | ticket13 TTFB p50 ms | early13 TTFB p50 ms | early13 / ticket13 | whole round p50 ms (t13 / e13) | early data accepted | tlsfront CPU % (t13 / e13) | errors (t13 / e13) |
|---|---|---|---|---|---|---|---|
{lat}
## What the replay check costs: handshakes per CPU-second of tlsfront + redis-server

Loopback, no relay, 32 connections.

| client | ticket13 | early13 | early13 / ticket13 | early data accepted | tlsfront CPU % (t13 / e13) | errors (t13 / e13) |
|---|---|---|---|---|---|---|
{cost}
Redis held {claims} keys at the end (single-use claims live for the ticket's remaining
lifetime, 1 h by default).
""")
print(f"wrote {out}")
PY
