#!/usr/bin/env bash
# HTTP/2 comparison of tlsfront with nginx, HAProxy and H2O: each terminates TLS with HTTP/2
# towards the client (ALPN h2) in front of the same plain HTTP/1.1 backend, all on 127.0.0.1,
# built as compare.sh is so that it cannot flatter tlsfront: the server under test gets a CPU of
# its own, every server is configured alike (one worker, the same ECDSA P-256 certificate, TLS
# 1.2+1.3, at least 128 concurrent streams per connection, keep-alive to the backend with room
# for an idle connection per stream in flight, no access log), and the main figure is requests
# per server CPU-second, next to each server's CPU share so a client-bound run shows as one.
#
# Usage: bench/load/h2.sh [SECONDS_PER_CELL] [ROUNDS]        (defaults 5 and 3)
#   env VARIANT=pinned   (default) one worker each; the server under test alone on CPU
#                        $SERVER_CPU (1) with `taskset`, h2load and backend on $CLIENT_CPU (0)
#       VARIANT=2w       two workers/threads each (h2load -t 2), nothing pinned
#       PIN=0            with VARIANT=pinned: one worker, nothing pinned (variant "1w")
#   env BACKEND=nginx    (default) a separate nginx (1 worker, keep-alive, `return 200 "ok\n"`)
#       BACKEND=echo     tlsfront-echo-backend --threads 1
#   env SERVERS="tlsfront nginx haproxy h2o"   servers to run (default all four)
#   env CELLS="c16m32 c1m100 c16m32-4k"        only these cells (default all, see CELL_DESC)
#   env WARMUP=1         seconds of unmeasured h2load load before every measured run (default 1)
#   env KEEP_TMP=1       keep the temp dir (configs, error logs, raw h2load output)
#   env OUT=/tmp/try     write /tmp/try.{md,tsv,png} instead of the dated results
#                        bench/results/<date>-h2-<variant>.{md,tsv,png}
#
# Cells: `h2load -c C -m M` (C connections, M streams in flight on each) for SECONDS (`-D`),
# GET / (a 3-byte body) or GET /bytes/4096 (4 KiB). One client implementation only: h2load
# (nghttp2 1.52, OpenSSL 3); tools/loadgen speaks HTTP/1.1 only (it offers ALPN http/1.1) and
# curl cannot load a server. Rounds are interleaved (for round, for cell, for server, the server
# order rotating each round). Each measured run follows a WARMUP-second h2load run of the same
# shape; the server's CPU seconds (whole process tree: nginx master and worker, HAProxy, H2O)
# are read from /proc/<pid>/stat before and after the measured run, the backend's separately. A
# run with failed, errored or timed-out requests, non-2xx responses or a protocol other than h2
# is flagged and left out of the medians, never averaged in.
#
# Needs a release build (scripts/build release: src/tlsfront, tools/tlsfront-echo-backend) and
# the packages from scripts/install-deps (nginx, haproxy, h2o, nghttp2-client, gnuplot-nox,
# openssl, curl). Builds and installs nothing; stops the Debian system services nginx, haproxy
# and h2o when they run (they would compete for the CPUs).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/load/lib.sh

bench_args h2 "$@"

# ---- settings ---------------------------------------------------------------------------------
bench_variant
backend_kind=${BACKEND:-nginx}
[[ "$backend_kind" == nginx || "$backend_kind" == echo ]] || die "BACKEND must be nginx or echo"
read -r -a servers <<<"${SERVERS:-tlsfront nginx haproxy h2o}"
warmup=${WARMUP:-1}
[[ "$warmup" =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number of seconds"
known_servers=" tlsfront nginx haproxy h2o "
for s in "${servers[@]}"; do
  [[ "$known_servers" == *" $s "* ]] || die "unknown server '$s' (known:$known_servers)"
done
h2load_threads=$workers   # one client thread per server worker (at most one per connection)

# Cells: connections, streams per connection, path.
declare -A CELL_C=([c16m32]=16 [c1m100]=1 [c16m32-4k]=16)
declare -A CELL_M=([c16m32]=32 [c1m100]=100 [c16m32-4k]=32)
declare -A CELL_PATH=([c16m32]=/ [c1m100]=/ [c16m32-4k]=/bytes/4096)
declare -A CELL_DESC=(
  [c16m32]="h2load -c 16 -m 32: 16 connections, 32 streams in flight on each (512 in all), GET / (small body)"
  [c1m100]="h2load -c 1 -m 100: one connection, 100 streams in flight, GET / (small body)"
  [c16m32-4k]="h2load -c 16 -m 32, GET /bytes/4096 (a 4 KiB body)"
)
all_cells=(c16m32 c1m100 c16m32-4k)
if [ -n "${CELLS:-}" ]; then
  read -r -a cells <<<"$CELLS"
  for c in "${cells[@]}"; do
    [ -n "${CELL_C[$c]:-}" ] || die "unknown cell '$c' (known: ${all_cells[*]})"
  done
else
  cells=("${all_cells[@]}")
fi
# the pool must keep an idle backend connection for every stream in flight, or it churns
max_streams=0
for c in "${cells[@]}"; do
  n=$((CELL_C[$c] * CELL_M[$c]))
  [ "$n" -gt "$max_streams" ] && max_streams=$n
done
backend_idle=1024
[ "$max_streams" -le "$backend_idle" ] || die "cells with over $backend_idle streams in flight need a larger backend_idle"

# ---- tools and binaries -----------------------------------------------------------------------
for t in h2load gnuplot openssl curl python3 pgrep timeout taskset setsid ss; do
  command -v "$t" >/dev/null || die "'$t' not found: run scripts/install-deps first"
done
for s in "${servers[@]}"; do
  [ "$s" = tlsfront ] || command -v "$s" >/dev/null || die "'$s' not found: run scripts/install-deps first"
done
[ "$backend_kind" = nginx ] && { command -v nginx >/dev/null || die "'nginx' (the backend) not found"; }
need=()
[[ " ${servers[*]} " == *" tlsfront "* ]] && need+=("$BENCH_BIN/src/tlsfront")
[ "$backend_kind" = echo ] && need+=("$BENCH_BIN/tools/tlsfront-echo-backend")
for b in "${need[@]}"; do
  [ -x "$b" ] || die "$b is missing: run scripts/build release first"
done

day=$(date +%F)
results=bench/results
mkdir -p "$results"
out_base=${OUT:-$results/$day-h2-$variant}
out_md=$out_base.md
out_tsv=$out_base.tsv
out_png=$out_base.png

bench_workdir

bench_stop_services nginx haproxy h2o

# The command that reproduces this run, every setting spelled out.
repro="VARIANT=$variant BACKEND=$backend_kind SERVERS=\"${servers[*]}\" WARMUP=$warmup"
[ "$pin" = 1 ] && repro+=" SERVER_CPU=$server_cpu CLIENT_CPU=$client_cpu"
[ -n "${CELLS:-}" ] && repro+=" CELLS=\"${cells[*]}\""
repro+=" bench/load/h2.sh $secs $rounds"

n_runs=$((${#cells[@]} * ${#servers[@]} * rounds))
est=$((n_runs * (secs + warmup + 1) + 15))
log "variant $variant ($workers worker(s) each; $([ "$pin" = 1 ] && echo "server on CPU $server_cpu, h2load and backend on CPU $client_cpu" || echo "nothing pinned")), backend $backend_kind"
log "cells (${#cells[@]}): ${cells[*]}"
log "servers (${#servers[@]}): ${servers[*]}; ${rounds} round(s) of ${secs} s (after ${warmup} s of warm-up each)"
log "estimated wall time: ~$((est / 60)) min $((est % 60)) s"

# Is the machine quiet? Our processes are not started yet, so any busy share now is someone else's.
bench_busy_before

# ---- certificate and backend ------------------------------------------------------------------
bench_cert_and_backend "$backend_kind" "$cli_cpus"
big=$(curl -s --max-time 5 "http://127.0.0.1:$bport/bytes/4096" | wc -c) || big=0
[ "$big" = 4096 ] || die "the backend answers GET /bytes/4096 with $big bytes, not 4096"

# ---- servers under test -----------------------------------------------------------------------
declare -A PID=() PORT=() UP=() WHY=() CONF=() AFF=() REPINNED=()

start_tlsfront() {
  # tlsfront's http listeners offer ALPN h2 (then http/1.1) by default; max_concurrent_streams
  # is 128 by default. Its pool keeps max_idle idle backend connections per worker (64 by
  # default, fewer than the streams in flight here): raised to backend_idle as nginx's keepalive.
  if bench_start_tlsfront "$work" "$bport" "$workers" "$srv_cpus" "$BENCH_BIN" "$backend_idle" \
    2>"$work/tlsfront.start"; then
    PID[tlsfront]=$TLSFRONT_PID PORT[tlsfront]=$TLSFRONT_PORT
  else
    PID[tlsfront]=$TLSFRONT_PID PORT[tlsfront]=0 WHY[tlsfront]=$(cat "$work/tlsfront.start")
  fi
  CONF[tlsfront]=$work/tlsfront.toml
}

for s in "${servers[@]}"; do
  UP[$s]=0
  if [ "$s" = tlsfront ]; then
    start_tlsfront
  else
    bench_start_peer "$s" "$work" "$bport" "$workers" "$srv_cpus" h2 "$backend_idle"
    PORT[$s]=$PEER_PORT PID[$s]=$PEER_PID CONF[$s]=$PEER_CONF
  fi
done

# ---- health checks: one curl --http2 each, then what each negotiates -------------------------
for s in "${servers[@]}"; do
  [ "${PORT[$s]}" = 0 ] && continue
  bench_await_server "$s" h2
done
any_up=0
for s in "${servers[@]}"; do [ "${UP[$s]}" = 1 ] && any_up=1; done
[ "$any_up" = 1 ] || die "no server came up; see the error logs in $work"

# h2neg PORT VERSION: "cipher, key exchange, ALPN x" offering h2 and http/1.1, as h2load does.
h2neg() {
  timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername localhost "-tls${2/./_}" \
    -alpn h2,http/1.1 </dev/null 2>/dev/null |
    awk -F': ' '/^New, /{split($0,a,"Cipher is "); c=a[2]} /Server Temp Key/{k=$2}
                /ALPN protocol/{p=$2} END{printf "%s, %s, ALPN %s", c, k, p}'
}
: >"$work/negotiated.tsv"
for s in "${servers[@]}"; do
  n12=NaN n13=NaN
  if [ "${UP[$s]}" = 1 ]; then
    n12=$(h2neg "${PORT[$s]}" 1.2) || n12=NaN
    n13=$(h2neg "${PORT[$s]}" 1.3) || n13=NaN
    log "$s: TLS 1.2 $n12; TLS 1.3 $n13"
  fi
  aff=${AFF[$s]:-}
  [ -n "${REPINNED[$s]:-}" ] && aff+=" (re-pinned; it had set CPUs ${REPINNED[$s]} itself)"
  printf '%s\t%s\t%s\t%s\n' "$s" "$n12" "$n13" "$aff" >>"$work/negotiated.tsv"
done

# ---- measurement ------------------------------------------------------------------------------
tsv_header="round	cell	server	position	wall_s	req_per_s	done	succeeded	failed	errored	timeout	non_2xx	protocol	server_cpu_s	per_server_cpu_s	server_cpu_pct	client_cpu_s	backend_cpu_s	server_cpus_busy_pct	client_cpus_busy_pct	mean_latency_us	backend_conns	note"
raw_tsv=$work/runs.tsv
echo "$tsv_header" >"$raw_tsv"

nan_row() {  # round cell server position note
  {
    printf '%s\t%s\t%s\t%s' "$1" "$2" "$3" "$4"
    printf '\tNaN%.0s' $(seq 18)
    printf '\t%s\n' "$5"
  } >>"$raw_tsv"
}

# run_h2load CELL PORT SECS OUT: h2load in the foreground, pinned to the client CPU when pinned,
# its text output in OUT; a hard limit of SECS + 30 s. Returns h2load's exit status.
run_h2load() {
  local cell=$1 port=$2 d=$3 out=$4 wrap=() rc=0 t=$h2load_threads
  [ -n "$cli_cpus" ] && wrap=(taskset -c "$cli_cpus")
  [ "$t" -le "${CELL_C[$cell]}" ] || t=${CELL_C[$cell]}   # h2load wants no more threads than clients
  timeout -k 5 $((d + 30)) "${wrap[@]}" h2load -t "$t" -c "${CELL_C[$cell]}" \
    -m "${CELL_M[$cell]}" -D "$d" "https://127.0.0.1:$port${CELL_PATH[$cell]}" >"$out" 2>&1 || rc=$?
  return "$rc"
}

# parse_h2load FILE: h2load's text output as req_per_s done succeeded failed errored timeout
# non_2xx protocol mean_latency_us (tab-separated); fails (prints nothing) when unusable.
parse_h2load() {
  python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
fin = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", t)
req = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                r"(\d+) errored, (\d+) timeout", t)
st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", t)
if not fin or not req or not st:
    sys.exit(1)
proto = re.search(r"Application protocol: (\S+)", t)
lat = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", t)
lat_us = (float(lat.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[lat.group(2)]) if lat else float("nan")
non2xx = sum(int(x) for x in st.groups()[1:])
print("\t".join([fin.group(1), *req.groups(), str(non2xx), proto.group(1) if proto else "none",
                 f"{lat_us:.6g}"]))
PY
}

# backend_conns PID: established connections from PID's process tree to the backend (busy and
# idle; every server under test keeps its own pool open at the same time, so the owner counts).
backend_conns() {
  local pids
  mapfile -t pids < <(bench_tree "$1")
  ss -Htnp state established "( dport = :$bport )" 2>/dev/null |
    grep -cE "pid=($(IFS='|'; echo "${pids[*]}"))," || true
}

run_one() {  # round cell server position
  local round=$1 cell=$2 s=$3 pos=$4
  local port=${PORT[$s]} tag="r${round}-${cell}-${s}" note=ok
  if [ "${UP[$s]}" != 1 ]; then
    nan_row "$round" "$cell" "$s" "$pos" "server down"
    return
  fi
  if ! kill -0 "${PID[$s]}" 2>/dev/null; then
    UP[$s]=0
    log "WARNING: $s (pid ${PID[$s]}) has exited; its remaining cells record NaN"
    nan_row "$round" "$cell" "$s" "$pos" "server exited"
    return
  fi
  local out=$work/$tag.out
  if [ "$warmup" -gt 0 ]; then
    run_h2load "$cell" "$port" "$warmup" "$work/$tag.warmup" || note="warm-up exit $?"
  fi
  # halfway through, the backend connections the server holds (on the client CPU when pinned)
  local sampler conns
  rm -f "$work/$tag.conns"
  (sleep "$(awk -v s="$secs" 'BEGIN{print s / 2}')" && backend_conns "${PID[$s]}" >"$work/$tag.conns") &
  sampler=$!
  [ -z "$cli_cpus" ] || taskset -a -p -c "$cli_cpus" "$sampler" >/dev/null 2>&1 || true
  bench_measure "$work" "${PID[$s]}" "$srv_cpus" "$cli_cpus" run_h2load "$cell" "$port" "$secs" "$out"
  wait "$sampler" || true
  conns=$(cat "$work/$tag.conns" 2>/dev/null) || conns=NaN
  [ "$M_RC" != 0 ] && note="h2load exit $M_RC"
  local f
  if [ -s "$out" ] && f=$(parse_h2load "$out" 2>"$work/$tag.parse-err"); then
    local rps done_ succ failed errored tmo non2xx proto lat
    IFS=$'\t' read -r rps done_ succ failed errored tmo non2xx proto lat <<<"$f"
    local per pct
    per=$(awk -v d="$done_" -v c="$M_CPU" 'BEGIN{if (c > 0) printf "%.6g", d / c; else print "NaN"}')
    pct=$(awk -v c="$M_CPU" -v w="$M_WALL" 'BEGIN{if (w > 0) printf "%.6g", 100 * c / w; else print "NaN"}')
    [ "$proto" = h2 ] || note="protocol $proto, not h2"
    printf '%s\t' "$round" "$cell" "$s" "$pos" "$M_WALL" "$rps" "$done_" "$succ" "$failed" "$errored" \
      "$tmo" "$non2xx" "$proto" "$M_CPU" "$per" "$pct" "$M_CCPU" "$M_BCPU" "$M_SBUSY" "$M_CBUSY" "$lat" \
      "$conns" >>"$raw_tsv"
    printf '%s\n' "$note" >>"$raw_tsv"
  else
    log "WARNING: $tag: no usable h2load output ($note); recorded NaN (see $out)"
    nan_row "$round" "$cell" "$s" "$pos" "no output; $note"
  fi
  if ! kill -0 "${PID[$s]}" 2>/dev/null; then
    UP[$s]=0
    log "WARNING: $s exited during $tag"
  fi
  log "$(tail -1 "$raw_tsv" | awk -F'\t' '{printf "round %s %-10s %-8s %8.0f req/s %8.0f per CPU-s  server CPU %3.0f%%  client CPU %5.2fs  CPU busy %s%%/%s%%  failed/errored/timeout/non-2xx %s/%s/%s/%s  %s  backend conns %s  %s", $1, $2, $3, $6, $15, $16, $17, $19, $20, $9, $10, $11, $12, $13, $22, $23}')"
}

start=$(date +%s)
bench_rounds run_one
elapsed=$(($(date +%s) - start))
cp "$raw_tsv" "$out_tsv"

# ---- environment ------------------------------------------------------------------------------
env_file=$work/env.txt
{
  bench_env_versions
  echo "h2load	$(h2load --version 2>&1 | head -1)"
  echo "variant	$variant"
  echo "workers	$workers"
  echo "pin	$pin"
  echo "server_cpu	$server_cpu"
  echo "client_cpu	$client_cpu"
  echo "backend	$BACKEND_DESC"
  echo "backend_cpus	$(bench_affinity "$BACKEND_PID")"
  echo "backend_idle	$backend_idle"
  echo "h2load_threads	$h2load_threads"
  echo "secs	$secs"
  echo "rounds	$rounds"
  echo "warmup	$warmup"
  echo "servers	${servers[*]}"
  echo "busy_before	$busy_before"
  echo "command	$repro"
  echo "elapsed	$elapsed"
} >"$env_file"

errlogs=$work/errlogs.txt
bench_errlogs "$work" "$errlogs"

desc_file=$work/cells.txt
: >"$desc_file"
for c in "${cells[@]}"; do printf '%s\t%s\n' "$c" "${CELL_DESC[$c]}" >>"$desc_file"; done
bench_report_lists "$backend_kind"
why_file=$work/why.tsv conf_file=$work/confs.txt
plot_dat=$work/plot.dat

# ---- report -----------------------------------------------------------------------------------
PYTHONPATH=bench/load python3 - "$raw_tsv" "$env_file" "$desc_file" "$work/negotiated.tsv" "$errlogs" \
  "$out_md" "$plot_dat" "$out_png" "$out_tsv" "$why_file" "$conf_file" <<'PY'
import csv, math, sys
from bench_report import (num, med, fmt as f, rng, CLIENT_BOUND, OTHER_LOAD, reproduce_lines,
                          machine_lines, tail_lines, write_plot_dat, print_summary,
                          checks_lines, cells_lines)
(raw, envf, descf, negf, errf, out_md, plot_dat, out_png, out_tsv, whyf, conff) = sys.argv[1:]
env = dict(l.rstrip("\n").split("\t", 1) for l in open(envf) if "\t" in l)
servers = env["servers"].split()
peers = [s for s in servers if s != "tlsfront"]
cells = [l.rstrip("\n").split("\t", 1) for l in open(descf)]
rows = list(csv.DictReader(open(raw), delimiter="\t"))
why = dict(l.rstrip("\n").split("\t", 1) for l in open(whyf) if "\t" in l)
confs = [l.rstrip("\n").split("\t", 1) for l in open(conff) if "\t" in l]
pinned = env["pin"] == "1"
variant = env["variant"]

def bad(r):
    """Why run r is left out of the medians, or '' for a clean run."""
    if math.isnan(num(r["req_per_s"])):
        return "no result"
    why = [f"{int(num(r[k]))} {k.replace('_', '-')}" for k in ("failed", "errored", "timeout", "non_2xx")
           if num(r[k]) > 0]
    if r["protocol"] != "h2":
        why.append(f"protocol {r['protocol']}")
    return ", ".join(why)

def runs(c, s):
    return [r for r in rows if r["cell"] == c and r["server"] == s]

def clean(c, s):
    return [r for r in runs(c, s) if not bad(r)]

def vals(c, s, key):
    v = [num(r[key]) for r in clean(c, s)]
    return [x for x in v if not math.isnan(x)]

KEYS = ("req_per_s", "per_server_cpu_s", "server_cpu_pct", "client_cpu_s", "backend_cpu_s",
        "wall_s", "mean_latency_us", "backend_conns")
S = {(c, s): {k: med(vals(c, s, k)) for k in KEYS} for c, _ in cells for s in servers}

def other_load(c, s):
    v = [num(r["server_cpus_busy_pct"]) - num(r["server_cpu_pct"]) for r in clean(c, s)]
    v = [x for x in v if not math.isnan(x)]
    return max(0.0, med(v)) if pinned and v else math.nan

def cpu_note(pct, c, s):
    if math.isnan(pct):
        return "NaN"
    mark = ""
    if pinned and other_load(c, s) > OTHER_LOAD:
        mark = " §"
    elif pinned and pct < CLIENT_BOUND:
        mark = " ‡"
    return f"{pct:.0f} %{mark}"

def flag(c, s):
    n = sum(1 for r in runs(c, s) if bad(r))
    return f" ⚠ {n}/{len(runs(c, s))} runs with errors, left out" if n else ""

def ratio(c, key):
    t = S[(c, "tlsfront")][key] if "tlsfront" in servers else math.nan
    o = [(S[(c, s)][key], s) for s in peers if not math.isnan(S[(c, s)][key])]
    bv, bs = max(o) if o else (math.nan, None)
    return (t / bv if bs and bv > 0 and not math.isnan(t) else math.nan), bv, bs

names = {"tlsfront": "tlsfront", "nginx": "nginx", "haproxy": "HAProxy", "h2o": "H2O"}
date = env["date"].split()[0]
vdesc = {"pinned": f"pinned: one worker each, the server under test alone on CPU {env['server_cpu']}, "
                   f"h2load and backend on CPU {env['client_cpu']}",
         "1w": "one worker each, nothing pinned",
         "2w": "two workers/threads each, nothing pinned"}[variant]
L = [f"# HTTP/2 load comparison ({variant}): {', '.join(names[s] for s in servers)} — {date}", ""]
L.append(f"Variant **{variant}** ({vdesc}). Every server terminates TLS and speaks HTTP/2 (ALPN h2) "
         f"to the client and HTTP/1.1 with keep-alive to the backend: {env['backend']}.")
L.append("")
L.append("**One client implementation only: h2load** (nghttp2, OpenSSL). tlsfront's own load "
         "generator (tools/loadgen) speaks HTTP/1.1 only (ALPN http/1.1) and curl is far too slow "
         "to load a server, so no second client drives these cells.")
L.append("")
L.append("## Headline: tlsfront against the best of its peers")
L.append("")
L.append("Requests per server CPU-second (requests h2load completed ÷ the server's CPU seconds over "
         "the same run), median over clean rounds; the ratio is tlsfront ÷ the best peer in that "
         "cell. Server CPU % is the server's CPU seconds ÷ wall seconds × 100"
         + (f"; ‡ marks a server under {CLIENT_BOUND:.0f} % of its CPU (held back by the client: "
            "throughput then measures h2load, and per CPU-second is the fair figure); § marks a "
            f"cell where other processes took more than {OTHER_LOAD:.0f} % of the server's CPU."
            if pinned else ".")
         + " ⚠ marks runs with failed, errored or timed-out requests, non-2xx answers or a "
         "protocol other than h2: they are left out of the medians and listed below.")
L.append("")
L.append("| cell | tlsfront per CPU-s | tlsfront CPU % | best peer per CPU-s | peer CPU % | **ratio per CPU-s** | ratio req/s (vs best peer by req/s) |")
L.append("|---|---|---|---|---|---|---|")
for c, _ in cells:
    r, bv, bs = ratio(c, "per_server_cpu_s")
    rt, _, ts = ratio(c, "req_per_s")
    tf = S[(c, "tlsfront")] if "tlsfront" in servers else None
    L.append(f"| `{c}` | {f(tf['per_server_cpu_s']) if tf else 'NaN'}{flag(c, 'tlsfront') if tf else ''} | "
             f"{cpu_note(tf['server_cpu_pct'], c, 'tlsfront') if tf else 'NaN'} | "
             f"{f(bv)} ({bs or '–'}) | {cpu_note(S[(c, bs)]['server_cpu_pct'], c, bs) if bs else 'NaN'} | "
             f"**{f(r)}** | {f(rt)} ({ts or '–'}) |")
L.append("")
L += reproduce_lines(env, why)

L.append("## Set-up")
L.append("")
L += machine_lines(env)
L.append(f"- Servers: tlsfront commit `{env['tlsfront']}` (release preset, BoringSSL "
         f"`android-libboringssl` {env['boringssl']}); {env['nginx']}; {env['haproxy']}; "
         f"{env['h2o']}; nginx, HAProxy and H2O on Debian's libssl3 {env['libssl3']} "
         f"(`{env['openssl']}`)")
L.append(f"- Client: {env['h2load']} (`h2load -t {env['h2load_threads']} -c C -m M -D S "
         "https://127.0.0.1:PORT/PATH`" + (", `-t 1` where C is 1" if env["h2load_threads"] != "1" else "")
         + "), Debian's libssl3; each measured run follows "
         f"{env['warmup']} s of the same load, unmeasured.")
if pinned:
    L.append(f"- Pinning (`taskset -c`): every process and thread of the server under test on CPU "
             f"{env['server_cpu']} (checked from /proc after start, table below); h2load and "
             f"backend on CPU {env['client_cpu']} (backend: {env['backend_cpus']}).")
else:
    L.append("- Nothing pinned: h2load, backend and server share all cores.")
L.append(f"- Workers: {env['workers']} per server (nginx `worker_processes`, HAProxy `nbthread`, "
         "H2O `num-threads`, tlsfront `threads`).")
L.append("- Every server: the same ECDSA P-256 self-signed certificate, TLS 1.2 and 1.3, ALPN h2 "
         "and http/1.1 offered, 128 concurrent streams per connection (tlsfront's default; nginx "
         "`http2_max_concurrent_streams 128`, HAProxy `tune.h2.max-concurrent-streams 128`, H2O "
         "`http2-max-concurrent-requests-per-connection: 128`), access logs off, keep-alive "
         "HTTP/1.1 connections to the backend with room for one idle connection per stream in "
         f"flight: nginx `upstream keepalive {env['backend_idle']}`, tlsfront pool `max_idle = "
         f"{env['backend_idle']}` (its default, 64, would cap below the 512 streams of c16m32), "
         "HAProxy `http-reuse always` (its idle pool has no count cap by default), H2O "
         "`proxy.timeout.keepalive` (H2O 2.2 has no count cap; it refuses `proxy.max-connections`). "
         "H2O with `neverbleed: OFF` and `proxy.emit-via-header: OFF`.")
L.append("- Rounds are interleaved: for each round, for each cell, for each server, the server "
         "order rotating each round. Medians over clean rounds; range is min–max.")
L.append("- CPU: each server's CPU seconds are user+system time from `/proc/<pid>/stat` summed "
         "over its whole process tree, read before and after the measured h2load run (connection "
         "set-up included); the backend's are read separately and never count for the server. "
         "Client CPU: h2load's own user+system time.")
L.append("")
L += cells_lines(cells)
L += checks_lines(negf, "Checked before measuring with `openssl s_client -alpn h2,http/1.1` (cipher, "
                  "key exchange, ALPN) and one `curl --http2`:", ["TLS 1.2", "TLS 1.3", "CPUs of its threads"])

L.append("## Every cell and server")
L.append("")
L.append("Medians over clean rounds (range min–max): requests/s (h2load), server CPU %, requests "
         "per server CPU-second; h2load's failed / errored / timed-out requests and non-2xx "
         "responses summed over all rounds; client (h2load) and backend CPU %; mean time per "
         "request (h2load); backend connections the server held halfway through the run.")
L.append("")
L.append("| cell | server | req/s (range) | server CPU % | **per CPU-s** (range) | failed / errored / timeout / non-2xx | client CPU % | backend CPU % | others on server CPU % | mean µs | backend conns |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|")
for c, _ in cells:
    for s in servers:
        m = S[(c, s)]
        err = " / ".join(str(int(sum(num(r[k]) for r in runs(c, s) if not math.isnan(num(r[k])))))
                         for k in ("failed", "errored", "timeout", "non_2xx"))
        w = m["wall_s"]
        cpct = 100 * m["client_cpu_s"] / w if w and not math.isnan(w) else math.nan
        bpct = 100 * m["backend_cpu_s"] / w if w and not math.isnan(w) else math.nan
        L.append(f"| `{c}` | {s} | {f(m['req_per_s'])}{rng(vals(c, s, 'req_per_s'))} | "
                 f"{cpu_note(m['server_cpu_pct'], c, s)} | **{f(m['per_server_cpu_s'])}**"
                 f"{rng(vals(c, s, 'per_server_cpu_s'))}{flag(c, s)} | {err} | {f(cpct)} | "
                 f"{f(bpct)} | {f(other_load(c, s))} | {f(m['mean_latency_us'])} | "
                 f"{f(m['backend_conns'])} |")
L.append("")
odd = [(r, bad(r)) for r in rows if bad(r) or r["note"] != "ok"]
if odd:
    L.append("Runs left out or with notes:")
    L.append("")
    for r, b in odd:
        L.append(f"- round {r['round']} `{r['cell']}` {r['server']}: {'; '.join(x for x in (b, r['note']) if x and x != 'ok')}")
    L.append("")
L += tail_lines(errf, confs)
L.append(f"Chart: `{out_png.split('/')[-1]}` (median requests per server CPU-second, log scale). "
         f"Raw runs, one line each: `{out_tsv.split('/')[-1]}`.")
open(out_md, "w").write("\n".join(L) + "\n")

write_plot_dat(plot_dat, [c for c, _ in cells], servers, S)
print_summary([c for c, _ in cells], servers, S,
              {c: ratio(c, "per_server_cpu_s")[0] for c, _ in cells}, 12)
PY

if ! bench_plot "$plot_dat" "$out_png" \
  "HTTP/2: tlsfront vs peers ($variant, $workers worker(s) each, backend $backend_kind): median requests per server CPU-second\\n$day, h2load, ${secs} s x ${rounds} rounds, $(nproc) cores, log scale" \
  "requests per server CPU-second" "$work/gnuplot.err"; then
  log "WARNING: gnuplot failed: $(head -3 "$work/gnuplot.err")"
fi

bench_wrote "$out_md" "$out_tsv" "$out_png"
flagged=$(awk -F'\t' 'NR > 1 && ($6 == "NaN" || $9 + $10 + $11 + $12 > 0 || $13 != "h2")' "$out_tsv" | wc -l)
if [ "$flagged" != 0 ]; then
  echo "WARNING: $flagged of $(($(wc -l <"$out_tsv") - 1)) runs failed or had errors; see the notes in $out_md"
fi
