#!/usr/bin/env bash
# The fleet's cost: resumption across two instances against the same load on one instance.
# Starts a redis-server, the echo backend and two tlsfront instances (one worker each,
# [cluster] on the same Redis and secret, so they share sessions and ticket keys), then runs
# tlsfront-loadgen --fresh-sessions (full, resumed, full, resumed, ...) interleaved, in two modes:
#   id (TLS 1.2 session IDs, the client sends no ticket extension)
#     single: every connection to A: each resumption is an L1 hit on A
#     fleet:  connections alternate A, B: each session made on A is resumed on B through Redis
#   ticket13 (TLS 1.3 tickets; each resumption brings new tickets, so nearly all resume)
#     single: every connection to A
#     fleet:  alternate A, B: each ticket sealed by one is opened by the other (shared keys)
# The handshake mix is the same in single and fleet; the figure is handshakes per CPU-second of
# everything serving them (both tlsfront instances and redis-server, from /proc).
# Usage: bench/load/fleet.sh [SECONDS] [ROUNDS]   (defaults 5 and 3). Needs a release build and
# the packages of scripts/install-deps. Writes bench/results/<date>-fleet.md (or $OUT.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/load/lib.sh
secs="${1:-5}"
rounds="${2:-3}"
bin=build/release
for b in "$bin/src/tlsfront" "$bin/tools/tlsfront-echo-backend" "$bin/tools/tlsfront-loadgen"; do
  [ -x "$b" ] || { echo "fleet.sh: $b is missing: run scripts/build release first" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "fleet.sh: run scripts/install-deps first" >&2; exit 1; }
out_base=${OUT:-bench/results/$(date +%F)-fleet}
work=$(mktemp -d /tmp/tlsfront-fleet-XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cpu_of() { awk '{print $14+$15}' "/proc/$1/stat"; }

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --logfile "$work/redis.log" >/dev/null &
rpid=$!
pids+=("$rpid")
for _ in $(seq 100); do redis-cli -p "$rport" PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done

scripts/gen-self-signed "$work/cert.pem" "$work/key.pem" localhost >/dev/null
"$bin/tools/tlsfront-echo-backend" --listen 127.0.0.1:0 --threads 1 --port-file "$work/backend.port" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/backend.port"
openssl rand -hex 32 >"$work/fleet.secret"
chmod 600 "$work/fleet.secret"

declare -A PORT PID
for inst in a b; do
  mkdir -p "$work/$inst"
  cp "$work/cert.pem" "$work/key.pem" "$work/$inst/"
  bench_tlsfront_config "$work/$inst" "$(cat "$work/backend.port")"
  printf '\n[cluster]\nredis = "127.0.0.1:%s"\nsecret_file = "%s"\n' "$rport" "$work/fleet.secret" \
    >>"$work/$inst/tlsfront.toml"
  "$bin/src/tlsfront" -c "$work/$inst/tlsfront.toml" --ports-file "$work/$inst/ports" \
    >"$work/$inst/out.log" 2>&1 &
  PID[$inst]=$!
  pids+=($!)
  wait_for_file "$work/$inst/ports" || { cat "$work/$inst/out.log" >&2; exit 1; }
  PORT[$inst]=$(awk '/^https /{n=split($2,a,":"); print a[n]}' "$work/$inst/ports")
done
sleep 1  # B reads the fleet's ticket key list as soon as its Redis connection is up


run() {  # name ports mode -> "handshakes_per_s resumed_share per_cpu_s errors"
  local c0 c1 j="$work/$1.json"
  c0=$(( $(cpu_of "${PID[a]}") + $(cpu_of "${PID[b]}") + $(cpu_of "$rpid") ))
  "$bin/tools/tlsfront-loadgen" --port "$2" --sni localhost --mode "$3" --fresh-sessions \
    --connections 32 --duration "$secs" --json "$j" >/dev/null
  c1=$(( $(cpu_of "${PID[a]}") + $(cpu_of "${PID[b]}") + $(cpu_of "$rpid") ))
  python3 - "$j" "$((c1 - c0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); cpu = int(sys.argv[2]) / int(sys.argv[3])
print(f'{d["handshakes_per_s"]:.0f} {d["resumed_share"]:.4f} {d["handshakes"] / cpu:.0f} {d["errors"]}')
PY
}

results=()
for r in $(seq "$rounds"); do
  for mode in id ticket13; do
    for where in single fleet; do
      ports=${PORT[a]}
      [ "$where" = fleet ] && ports="${PORT[a]},${PORT[b]}"
      line=$(run "$where-$mode-$r" "$ports" "$mode")
      results+=("$where-$mode $line")
      echo "round $r $where $mode: handshakes/s resumed-share per-CPU-s errors = $line" >&2
    done
  done
done
hits=$(redis-cli -p "$rport" INFO stats | awk -F: '/keyspace_hits/{print $2+0}')

python3 - "$out_base.md" "$secs" "$rounds" "$hits" "$(git rev-parse --short HEAD)" "${results[@]}" <<'PY'
import collections, statistics, sys, datetime, platform, os
out, secs, rounds, hits, commit = sys.argv[1:6]
rows = collections.defaultdict(list)
for r in sys.argv[6:]:
    name, hs, share, per_cpu, errors = r.split()
    rows[name].append((float(hs), float(share), float(per_cpu), int(errors)))
def med(name, i): return statistics.median(x[i] for x in rows[name])
def rng(name, i): return f'{min(x[i] for x in rows[name]):,.0f}–{max(x[i] for x in rows[name]):,.0f}'
def row(label, name):
    return (f"| {label} | {med(name,0):,.0f} ({rng(name,0)}) | {med(name,1):.1%} | "
            f"{med(name,2):,.0f} ({rng(name,2)}) | {sum(x[3] for x in rows[name])} |\n")
ratio_id = med("fleet-id", 2) / med("single-id", 2)
ratio_t13 = med("fleet-ticket13", 2) / med("single-ticket13", 2)
with open(out, "w") as f:
    f.write(f"""# Fleet cost: resumption across two instances vs one instance — {datetime.date.today()}

`bench/load/fleet.sh {secs} {rounds}` (tlsfront commit `{commit}`, release preset). Two tlsfront
instances (one worker each, `[cluster]` on one local redis-server and fleet secret: sessions
and ticket keys shared), the echo backend and the client on a {os.cpu_count()}-core machine
({platform.platform()}). tlsfront-loadgen `--fresh-sessions --connections 32`: every other
handshake is a full one that makes a new session, the next one resumes it.

- **id, single**: TLS 1.2 session IDs, all connections to instance A: every resumption is an L1
  (local cache) hit.
- **id, fleet**: connections alternate A, B; each session is made on A (and written to Redis)
  and resumed on B, whose cache has never seen it: every resumption is an L2 lookup in Redis
  (sealed value opened, then put in B's cache).
- **ticket13, single / fleet**: TLS 1.3 tickets; in fleet each ticket sealed by A is opened by
  B (and B's by A) under the ticket keys both installed from the fleet's list: no Redis on the
  handshake. Every resumption brings new tickets, so here `--fresh-sessions` still leaves almost
  every handshake a resumption (the resumed share column); the two rows compare like with like.

Per CPU-second counts the CPU of both tlsfront instances and redis-server.

| load | handshakes/s (median, range) | resumed share | handshakes per CPU-second (median, range) | errors |
|---|---|---|---|---|
""" + row("id, single (L1)", "single-id") + row("id, fleet (L2)", "fleet-id")
      + row("ticket13, single", "single-ticket13") + row("ticket13, fleet", "fleet-ticket13") + f"""
Fleet / single, per CPU-second: session IDs **{ratio_id:.3f}**, TLS 1.3 tickets
**{ratio_t13:.3f}**. Redis answered {hits} GETs with a value over the whole run.
""")
print(f"wrote {out}")
PY
