#!/usr/bin/env bash
# The fleet's cost: resumption across two instances against the same load on one instance, on
# one Redis, on Redis Sentinel and on Redis Cluster. Starts a redis-server, a Sentinel set
# (master, replica, three sentinels), a Redis Cluster (three masters, a replica each), the echo
# backend and two tlsfront instances per topology (one worker each,
# [cluster] on that topology and one secret, so they share sessions and ticket keys), then runs
# tlsfront-loadgen --fresh-sessions (full, resumed, full, resumed, ...) interleaved, in two modes:
#   id (TLS 1.2 session IDs, the client sends no ticket extension)
#     single: every connection to A: each resumption is an L1 hit on A
#     fleet:  connections alternate A, B: each session made on A is resumed on B through Redis
#   ticket13 (TLS 1.3 tickets; each resumption brings new tickets, so nearly all resume)
#     single: every connection to A
#     fleet:  alternate A, B: each ticket sealed by one is opened by the other (shared keys)
# The handshake mix is the same in single and fleet; the figure is handshakes per CPU-second of
# everything serving them (both tlsfront instances and redis-server, from /proc). Both tlsfront
# instances are pinned to the last core, the client, the backend and every Redis process to the
# others; each cell runs with both clients (tlsfront-loadgen on BoringSSL,
# tlsfront-loadgen-openssl on OpenSSL 3).
# Usage: bench/load/fleet.sh [SECONDS] [ROUNDS]   (defaults 5 and 3). Needs a release build and
# the packages of scripts/install-deps. Writes bench/results/<date>-fleet.md (or $OUT.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/load/lib.sh
secs="${1:-5}"
rounds="${2:-3}"
bin=build/release
for b in "$bin/src/tlsfront" "$bin/tools/tlsfront-echo-backend" "$bin/tools/tlsfront-loadgen" \
  "$bin/tools/tlsfront-loadgen-openssl"; do
  [ -x "$b" ] || { echo "fleet.sh: $b is missing: run scripts/build release first" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "fleet.sh: run scripts/install-deps first" >&2; exit 1; }
out_base=${OUT:-bench/results/$(date +%F)-fleet}
work=$(mktemp -d /tmp/tlsfront-fleet-XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cpu_of() { awk '{print $14+$15}' "/proc/$1/stat"; }
ncpu=$(nproc)
sut_cpus=$((ncpu - 1))              # both tlsfront instances
rest_cpus="0-$((ncpu > 1 ? ncpu - 2 : 0))"  # client, backend, Redis
[ "$ncpu" -gt 1 ] || { sut_cpus=0; rest_cpus=0; }
on_rest=(taskset -c "$rest_cpus")  # an array, not a function: `$!` is then the program itself

scripts/gen-self-signed "$work/cert.pem" "$work/key.pem" localhost >/dev/null
"${on_rest[@]}" "$bin/tools/tlsfront-echo-backend" --listen 127.0.0.1:0 --threads 1 --port-file "$work/backend.port" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/backend.port"
openssl rand -hex 32 >"$work/fleet.secret"
chmod 600 "$work/fleet.secret"

redis_up() {  # PORT: waits until it answers PING
  for _ in $(seq 200); do redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done
  return 1
}
start_redis() {  # DIR PORT [ARGS...] -> pid in $last_pid
  local d="$1" port="$2"
  shift 2
  mkdir -p "$d"
  "${on_rest[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$d" \
    --logfile "$d/redis.log" "$@" >/dev/null &
  last_pid=$!
  pids+=("$last_pid")
  redis_up "$port"
}

# Per topology: the Redis processes (REDIS_PIDS), the masters' pids (MASTER_PIDS) and ports
# (MASTER), the [cluster] lines of its instances (CLUSTER_CONF).
declare -A REDIS_PIDS MASTER_PIDS MASTER CLUSTER_CONF PORT PID
# One redis-server.
p=$(free_port)
start_redis "$work/redis" "$p"
REDIS_PIDS[redis]=$last_pid
MASTER_PIDS[redis]=$last_pid
MASTER[redis]=$p
CLUSTER_CONF[redis]="redis = \"127.0.0.1:$p\""
# Redis Sentinel: a master, its replica and three sentinels (quorum 2).
m=$(free_port)
start_redis "$work/sentinel-master" "$m" --repl-diskless-sync-delay 0
REDIS_PIDS[sentinel]=$last_pid
MASTER_PIDS[sentinel]=$last_pid
MASTER[sentinel]=$m
start_redis "$work/sentinel-replica" "$(free_port)" --replicaof 127.0.0.1 "$m"
REDIS_PIDS[sentinel]+=" $last_pid"
list=""
for i in 1 2 3; do
  sp=$(free_port)
  mkdir -p "$work/sentinel$i"
  printf 'port %s\nbind 127.0.0.1\ndir %s\nlogfile %s/redis.log\nsentinel monitor edge 127.0.0.1 %s 2\n' \
    "$sp" "$work/sentinel$i" "$work/sentinel$i" "$m" >"$work/sentinel$i/sentinel.conf"
  "${on_rest[@]}" redis-server "$work/sentinel$i/sentinel.conf" --sentinel >/dev/null &
  pids+=($!)
  REDIS_PIDS[sentinel]+=" $!"
  redis_up "$sp"
  list+="${list:+, }\"127.0.0.1:$sp\""
done
CLUSTER_CONF[sentinel]="sentinels = [$list]
master_name = \"edge\""
# Redis Cluster: six nodes; redis-cli makes the first three masters, a replica each.
nodes=() seeds="" REDIS_PIDS[cluster]=""
declare -A NODE_PID
for i in 1 2 3 4 5 6; do
  np=$(free_port)
  while [ "$np" -gt 55535 ]; do np=$(free_port); done  # its cluster bus port is np + 10000
  start_redis "$work/cluster$i" "$np" --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout 2000
  NODE_PID[$np]=$last_pid
  REDIS_PIDS[cluster]+="${REDIS_PIDS[cluster]:+ }$last_pid"
  nodes+=("127.0.0.1:$np")
  seeds+="${seeds:+, }\"127.0.0.1:$np\""
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$work/cluster-create.log" 2>&1 ||
  { cat "$work/cluster-create.log" >&2; exit 1; }
for _ in $(seq 200); do
  ok=1
  for n in "${nodes[@]}"; do
    redis-cli -p "${n##*:}" CLUSTER INFO | grep -q cluster_state:ok || ok=0
  done
  [ "$ok" = 1 ] && break
  sleep 0.1
done
[ "$ok" = 1 ] || { echo "fleet.sh: the Redis Cluster never reached cluster_state:ok" >&2; exit 1; }
MASTER[cluster]="" MASTER_PIDS[cluster]=""
for n in "${nodes[@]}"; do
  if redis-cli -p "${n##*:}" ROLE | head -1 | grep -q master; then
    MASTER[cluster]+="${MASTER[cluster]:+ }${n##*:}"
    MASTER_PIDS[cluster]+="${MASTER_PIDS[cluster]:+ }${NODE_PID[${n##*:}]}"
  fi
done
CLUSTER_CONF[cluster]="cluster_nodes = [$seeds]"
topologies="redis sentinel cluster"

for topo in $topologies; do
  for inst in a b; do
    d="$work/$topo-$inst"
    mkdir -p "$d"
    cp "$work/cert.pem" "$work/key.pem" "$d/"
    bench_tlsfront_config "$d" "$(cat "$work/backend.port")"
    printf '\n[cluster]\n%s\nsecret_file = "%s"\n' "${CLUSTER_CONF[$topo]}" "$work/fleet.secret" \
      >>"$d/tlsfront.toml"
    taskset -c "$sut_cpus" "$bin/src/tlsfront" -c "$d/tlsfront.toml" --ports-file "$d/ports" >"$d/out.log" 2>&1 &
    PID[$topo-$inst]=$!
    pids+=($!)
    wait_for_file "$d/ports" || { cat "$d/out.log" >&2; exit 1; }
    PORT[$topo-$inst]=$(awk '/^https /{n=split($2,a,":"); print a[n]}' "$d/ports")
  done
done
sleep 1  # B reads the fleet's ticket key list as soon as its Redis connection is up

cpu_sum() { local t=0 p; for p in "$@"; do t=$((t + $(cpu_of "$p"))); done; echo "$t"; }
commands_of() {  # master ports -> commands they have executed (INFO commandstats calls, summed)
  local p
  for p in "$@"; do redis-cli -p "$p" INFO commandstats; done |
    awk -F'[=,]' '/^cmdstat_/{n+=$2} END{print n+0}'
}

run() {  # topology name ports mode client -> "handshakes/s resumed_share per_cpu_s errors redis_cpu_s commands handshakes master_cpu_s tlsfront_cpu_pct"
  local topo="$1" c0 c1 r0 r1 k0 k1 m0 m1 t0 t1 j="$work/$2.json"
  # shellcheck disable=SC2086
  m0=$(cpu_sum ${MASTER_PIDS[$topo]})
  # shellcheck disable=SC2086
  r0=$(cpu_sum ${REDIS_PIDS[$topo]})
 t0=$(( $(cpu_of "${PID[$topo-a]}") + $(cpu_of "${PID[$topo-b]}") ))
  c0=$((t0 + r0))
  # shellcheck disable=SC2086
  k0=$(commands_of ${MASTER[$topo]})
  "${on_rest[@]}" "$bin/tools/$5" --port "$3" --sni localhost --mode "$4" --fresh-sessions \
    --connections 32 --duration "$secs" --json "$j" >/dev/null
  # shellcheck disable=SC2086
  r1=$(cpu_sum ${REDIS_PIDS[$topo]})
  t1=$(( $(cpu_of "${PID[$topo-a]}") + $(cpu_of "${PID[$topo-b]}") ))
  c1=$((t1 + r1))
  # shellcheck disable=SC2086
  k1=$(commands_of ${MASTER[$topo]})
  # shellcheck disable=SC2086
  m1=$(cpu_sum ${MASTER_PIDS[$topo]})
  python3 - "$j" "$((c1 - c0))" "$(getconf CLK_TCK)" "$((r1 - r0))" "$((k1 - k0))" "$((m1 - m0))" "$((t1 - t0))" "$secs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); tck = int(sys.argv[3]); cpu = int(sys.argv[2]) / tck
print(f'{d["handshakes_per_s"]:.0f} {d["resumed_share"]:.4f} {d["handshakes"] / cpu:.0f} '
      f'{d["errors"]} {int(sys.argv[4]) / tck:.3f} {sys.argv[5]} {d["handshakes"]} '
      f'{int(sys.argv[6]) / tck:.3f} {100 * int(sys.argv[7]) / tck / float(sys.argv[8]):.0f}')
PY
}

results=()
for r in $(seq "$rounds"); do
  for topo in $topologies; do
    for mode in id ticket13; do
      for client in tlsfront-loadgen tlsfront-loadgen-openssl; do
        for where in single fleet; do
          ports=${PORT[$topo-a]}
          [ "$where" = fleet ] && ports="${PORT[$topo-a]},${PORT[$topo-b]}"
          line=$(run "$topo" "$topo-$where-$mode-$client-$r" "$ports" "$mode" "$client")
          results+=("$client:$topo-$where-$mode $line")
          echo "round $r $topo $where $mode $client: handshakes/s resumed-share per-CPU-s errors redis-CPU-s commands handshakes master-CPU-s tlsfront-CPU-% = $line" >&2
        done
      done
    done
  done
done
# What one session takes in Redis: MEMORY USAGE (key, value and Redis's overhead) of up to 200
# session keys, averaged.
bytes=$(redis-cli -p "${MASTER[redis]}" --scan --pattern 'tlsfront:s:*' | awk 'NR <= 200' |
  while read -r k; do redis-cli -p "${MASTER[redis]}" MEMORY USAGE "$k"; done |
  awk '{t+=$1; n++} END{if (n) printf "%.0f", t/n; else print 0}')

python3 - "$out_base.md" "$secs" "$rounds" "$bytes" "$(git rev-parse --short HEAD)" "${results[@]}" <<'PY'
import collections, statistics, sys, datetime, platform, os
out, secs, rounds, bytes_per_session, commit = sys.argv[1:6]
rows = collections.defaultdict(list)
for r in sys.argv[6:]:
    name, hs, share, per_cpu, errors, rcpu, cmds, hsn, mcpu, tpct = r.split()
    rows[name].append((float(hs), float(share), float(per_cpu), int(errors), float(rcpu),
                       int(cmds), int(hsn), float(mcpu), float(tpct)))
clients = ("tlsfront-loadgen", "tlsfront-loadgen-openssl")
def med(name, i): return statistics.median(x[i] for x in rows[name])
def rng(name, i): return f'{min(x[i] for x in rows[name]):,.0f}–{max(x[i] for x in rows[name]):,.0f}'
def cmds_per_hs(name): return statistics.median(x[5] / x[6] for x in rows[name])
def redis_us_per_hs(name): return statistics.median(1e6 * x[4] / x[6] for x in rows[name])
def master_us_per_hs(name): return statistics.median(1e6 * x[7] / x[6] for x in rows[name])
def row(label, name):
    return (f"| {label} | {med(name,0):,.0f} ({rng(name,0)}) | {med(name,1):.1%} | "
            f"{med(name,2):,.0f} ({rng(name,2)}) | {cmds_per_hs(name):.2f} | "
            f"{redis_us_per_hs(name):.1f} | {master_us_per_hs(name):.1f} | "
            f"{med(name,8):.0f} % | {sum(x[3] for x in rows[name])} |\n")
head = ("| load | handshakes/s (median, range) | resumed share | handshakes per CPU-second "
        "(median, range) | Redis commands per handshake | Redis CPU µs per handshake | "
        "master CPU µs per handshake | tlsfront CPU (both instances, of their core) | errors |\n"
        "|---|---|---|---|---|---|---|---|---|\n")
def ratio(a, b): return med(a, 2) / med(b, 2)
tables = ""
for c in clients:
    t = head
    for topo, label in (("redis", "one Redis"), ("sentinel", "Sentinel"), ("cluster", "Cluster")):
        t += (row(f"{label}: id, single (L1)", f"{c}:{topo}-single-id")
              + row(f"{label}: id, fleet (L2)", f"{c}:{topo}-fleet-id")
              + row(f"{label}: ticket13, single", f"{c}:{topo}-single-ticket13")
              + row(f"{label}: ticket13, fleet", f"{c}:{topo}-fleet-ticket13"))
    tables += f"### {c}\n\n" + t + f'''
Fleet / single, per CPU-second: one Redis, session IDs **{ratio(f"{c}:redis-fleet-id", f"{c}:redis-single-id"):.3f}**
and TLS 1.3 tickets **{ratio(f"{c}:redis-fleet-ticket13", f"{c}:redis-single-ticket13"):.3f}**; Sentinel,
session IDs **{ratio(f"{c}:sentinel-fleet-id", f"{c}:sentinel-single-id"):.3f}** and tickets
**{ratio(f"{c}:sentinel-fleet-ticket13", f"{c}:sentinel-single-ticket13"):.3f}**; Cluster,
session IDs **{ratio(f"{c}:cluster-fleet-id", f"{c}:cluster-single-id"):.3f}** and tickets
**{ratio(f"{c}:cluster-fleet-ticket13", f"{c}:cluster-single-ticket13"):.3f}**.
L2 resumption (id, fleet) per CPU-second against one Redis: Sentinel
**{ratio(f"{c}:sentinel-fleet-id", f"{c}:redis-fleet-id"):.3f}**, Cluster
**{ratio(f"{c}:cluster-fleet-id", f"{c}:redis-fleet-id"):.3f}**.

'''
with open(out, "w") as f:
    f.write(f"""# Fleet cost: resumption across two instances vs one instance, on one Redis, Sentinel and Cluster — {datetime.date.today()}

`bench/load/fleet.sh {secs} {rounds}` (tlsfront commit `{commit}`, release preset). Three
topologies run side by side, their cells interleaved over {rounds} rounds: **one Redis**
(a redis-server), **Sentinel** (a master, its replica and three redis-sentinel processes,
quorum 2; tlsfront asks the sentinels for the master) and **Cluster** (a Redis Cluster of
three masters with a replica each; tlsfront reads the slot map and sends each key to its
slot's master). Each has its own two tlsfront instances
(one worker each, `[cluster]` with one fleet secret: sessions and ticket keys shared), both
pinned to the last core of this {os.cpu_count()}-core machine ({platform.platform()}); the
client, the echo backend and every Redis process are pinned to the others. Each cell runs with
both clients, tlsfront-loadgen (BoringSSL) and tlsfront-loadgen-openssl (OpenSSL 3), with
`--fresh-sessions --connections 32`: every other handshake is a full one that makes a new
session, the next one resumes it.

- **id, single**: TLS 1.2 session IDs, all connections to instance A: every resumption is an L1
  (local cache) hit.
- **id, fleet**: connections alternate A, B; each session is made on A (and written to Redis)
  and resumed on B, whose cache has never seen it: every resumption is an L2 lookup in Redis
  (sealed value opened, then put in B's cache).
- **ticket13, single / fleet**: TLS 1.3 tickets; in fleet each ticket sealed by A is opened by
  B (and B's by A) under the ticket keys both installed from the fleet's list: no Redis on the
  handshake. Every resumption brings new tickets, so almost every handshake is a resumption
  (the resumed share column).

Per CPU-second counts the CPU of both tlsfront instances and every Redis process of the
topology (with Sentinel: master, replica and sentinels; with Cluster: all six nodes).
Commands per handshake are the masters' `INFO commandstats` calls over the cell divided by its handshakes (the periodic key
list reads and the sentinels' own commands included); Redis µs per handshake is the CPU of the
topology's Redis processes over the cell divided by its handshakes, and the masters' alone
(with one master, the one process that must carry every instance's writes and lookups; with
Cluster, the three masters together, each carrying a third of the slots). CPU times come from
/proc in clock ticks (10 ms): a cell with little Redis work rounds to a few ticks.

""" + tables + f"""One session in Redis: **{bytes_per_session} bytes** (`MEMORY USAGE`, averaged over up to 200
session keys).
""")
print(f"wrote {out}")
PY
