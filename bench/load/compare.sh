#!/usr/bin/env bash
# System-level comparison of tlsfront with nginx, HAProxy, H2O and hitch as TLS terminators in
# front of the same plain-HTTP backend, all on 127.0.0.1, built so that it cannot flatter
# tlsfront: the server under test gets a CPU of its own, every peer is configured alike (one
# worker, the same ECDSA P-256 certificate, TLS 1.2+1.3, session cache and tickets on, keep-alive
# to the backend where the server has it, no access log), every handshake cell runs with an
# OpenSSL client as well as tlsfront's BoringSSL one, and the main figure is work per server
# CPU-second, next to each server's CPU share so a client-bound run shows as one.
#
# Usage: bench/load/compare.sh [SECONDS_PER_CELL] [ROUNDS]        (defaults 5 and 3)
#   env VARIANT=pinned   (default) one worker each; the server under test alone on CPU
#                        $SERVER_CPU (1) with `taskset`, clients and backend on $CLIENT_CPU (0)
#       VARIANT=2w       two workers/threads each, nothing pinned
#       PIN=0            with VARIANT=pinned: one worker, nothing pinned (variant "1w")
#   env BACKEND=nginx    (default) a separate nginx (1 worker, keep-alive, `return 200 "ok\n"`)
#       BACKEND=echo     tlsfront-echo-backend --threads 1
#   env CLIENTS="openssl boringssl"  loadgen clients for the handshake cells (default both):
#                        tlsfront-loadgen-openssl (OpenSSL 3) and tlsfront-loadgen (BoringSSL)
#   env SERVERS="tlsfront nginx haproxy h2o hitch"   servers to run (default all five)
#       SERVERS="tlsfront tlsfront-b" B_BIN=build/uring   tlsfront against another build of
#                        itself (B_BIN/src/tlsfront, same config): tlsfront-b is then the only
#                        "peer", so every ratio reads "this build ÷ B_BIN's"
#   env CELLS="id full13/openssl wrk-ka ..."  only these cells; a handshake mode alone (id) means
#                        every client of it (default: all, see CELL_DESC below)
#   env CONNS=64         concurrent connections of every client (default 64)
#   env CLIENT_THREADS=1 threads of every client (loadgen --threads, wrk -t; default 1)
#   env KEEP_TMP=1       keep the temp dir (configs, error logs, raw client output)
#   env OUT=/tmp/try     write /tmp/try.{md,tsv,png} instead of the dated results
#                        bench/results/<date>-load-<variant>.{md,tsv,png}
#
# Cells: handshake modes × clients (`id/openssl`, `id/boringssl`, ...: full TLS 1.2, full TLS
# 1.3, TLS 1.2 session-ID resumption, TLS 1.2 ticket resumption, TLS 1.3 PSK resumption; one
# request per connection) and wrk (OpenSSL) keep-alive and Connection: close. Rounds are
# interleaved (for round, for cell, for server, the server order rotating each round). For every
# run the CPU seconds of the server's processes (the whole process tree: nginx master and worker,
# h2o and its neverbleed helper if any, hitch and its workers) are read from /proc/<pid>/stat
# before and after; the backend's are read separately and never count for the server.
#
# Needs a release build (scripts/build release: src/tlsfront, tools/tlsfront-echo-backend,
# tools/tlsfront-loadgen, tools/tlsfront-loadgen-openssl) and the packages from
# scripts/install-deps (nginx, haproxy, h2o, hitch, wrk, gnuplot-nox, openssl, curl).
# Builds and installs nothing; stops the Debian system services nginx/haproxy/h2o/hitch when
# they run (they would compete for the CPUs).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/load/lib.sh

bench_args compare "$@"

# ---- settings ---------------------------------------------------------------------------------
bench_variant
backend_kind=${BACKEND:-nginx}
[[ "$backend_kind" == nginx || "$backend_kind" == echo ]] || die "BACKEND must be nginx or echo"
read -r -a clients <<<"${CLIENTS:-openssl boringssl}"
read -r -a servers <<<"${SERVERS:-tlsfront nginx haproxy h2o hitch}"
conns=${CONNS:-64}
client_threads=${CLIENT_THREADS:-1}
[[ "$conns" =~ ^[1-9][0-9]*$ && "$client_threads" =~ ^[1-9][0-9]*$ ]] ||
  die "CONNS and CLIENT_THREADS must be positive integers"
known_servers=" tlsfront tlsfront-b nginx haproxy h2o hitch "
for s in "${servers[@]}"; do
  [[ "$known_servers" == *" $s "* ]] || die "unknown server '$s' (known:$known_servers)"
done
for c in "${clients[@]}"; do
  [[ "$c" == openssl || "$c" == boringssl ]] || die "unknown client '$c' (openssl, boringssl)"
done

declare -A CELL_DESC=(
  [full12]="full handshake, TLS 1.2 (loadgen --mode full --tls 1.2)"
  [full13]="full handshake, TLS 1.3 (loadgen --mode full --tls 1.3)"
  [id]="TLS 1.2 session-ID resumption, no ticket extension (loadgen --mode id)"
  [ticket12]="TLS 1.2 ticket resumption (loadgen --mode ticket12)"
  [ticket13]="TLS 1.3 PSK resumption (loadgen --mode ticket13)"
  [wrk-ka]="HTTP/1.1 keep-alive requests (wrk, OpenSSL client)"
  [wrk-close]="one request per connection (wrk -H 'Connection: close'); wrk's OpenSSL client re-offers its last session on each reconnect, so nearly every connection is a TLS 1.3 ticket resumption"
)
all_cells=()
for m in "${BENCH_HANDSHAKE_MODES[@]}"; do
  for c in "${clients[@]}"; do all_cells+=("$m/$c"); done
done
all_cells+=("${BENCH_WRK_MODES[@]}")
if [ -n "${CELLS:-}" ]; then
  read -r -a want <<<"$CELLS"
  cells=()
  for w in "${want[@]}"; do
    found=0
    for c in "${all_cells[@]}"; do
      if [[ "$c" == "$w" || "${c%%/*}" == "$w" ]]; then
        [[ " ${cells[*]} " == *" $c "* ]] || cells+=("$c")
        found=1
      fi
    done
    [ "$found" = 1 ] || die "unknown cell '$w' (known: ${all_cells[*]}, or a mode alone)"
  done
else
  cells=("${all_cells[@]}")
fi

# ---- tools and binaries -----------------------------------------------------------------------
for t in wrk gnuplot openssl curl python3 pgrep timeout taskset setsid; do
  command -v "$t" >/dev/null || die "'$t' not found: run scripts/install-deps first"
done
for s in "${servers[@]}"; do
  case $s in
    tlsfront) ;;
    tlsfront-b) [ -n "${B_BIN:-}" ] || die "server tlsfront-b needs B_BIN (a build directory)" ;;
    *) command -v "$s" >/dev/null || die "'$s' not found: run scripts/install-deps first" ;;
  esac
done
[ "$backend_kind" = nginx ] && { command -v nginx >/dev/null || die "'nginx' (the backend) not found"; }
need=()
[[ " ${servers[*]} " == *" tlsfront "* ]] && need+=("$BENCH_BIN/src/tlsfront")
[[ " ${servers[*]} " == *" tlsfront-b "* ]] && need+=("$B_BIN/src/tlsfront")
[ "$backend_kind" = echo ] && need+=("$BENCH_BIN/tools/tlsfront-echo-backend")
for c in "${cells[@]}"; do
  [[ "$c" == */* ]] && need+=("$(bench_client_bin "${c#*/}")")
done
for b in $(printf '%s\n' "${need[@]}" | sort -u); do
  if [ ! -x "$b" ]; then
    if [[ "$b" == *tlsfront-loadgen-openssl ]]; then
      die "$b is missing (tools/loadgen_openssl, the OpenSSL 3 client, is not built yet): build it with scripts/build release, or measure with the BoringSSL client only: CLIENTS=boringssl $0 $*"
    fi
    die "$b is missing: run scripts/build release first"
  fi
done

day=$(date +%F)
results=bench/results
mkdir -p "$results"
out_base=${OUT:-$results/$day-load-$variant}
out_md=$out_base.md
out_tsv=$out_base.tsv
out_png=$out_base.png

bench_workdir

bench_stop_services nginx haproxy h2o hitch

# The command that reproduces this run, every setting spelled out.
repro="VARIANT=$variant BACKEND=$backend_kind CLIENTS=\"${clients[*]}\" SERVERS=\"${servers[*]}\" CONNS=$conns"
[ "$client_threads" != 1 ] && repro+=" CLIENT_THREADS=$client_threads"
[ "$pin" = 1 ] && repro+=" SERVER_CPU=$server_cpu CLIENT_CPU=$client_cpu"
[ -n "${CELLS:-}" ] && repro+=" CELLS=\"${cells[*]}\""
[[ " ${servers[*]} " == *" tlsfront-b "* ]] && repro+=" B_BIN=$B_BIN"
repro+=" bench/load/compare.sh $secs $rounds"

n_runs=$((${#cells[@]} * ${#servers[@]} * rounds))
est=$((n_runs * secs + n_runs + 15))   # ~1 s a run to start, settle and read /proc; ~15 s set-up
log "variant $variant ($workers worker(s) each; $([ "$pin" = 1 ] && echo "server on CPU $server_cpu, clients and backend on CPU $client_cpu" || echo "nothing pinned")), backend $backend_kind, $conns connections"
log "cells (${#cells[@]}): ${cells[*]}"
log "servers (${#servers[@]}): ${servers[*]}; ${rounds} round(s) of ${secs} s"
log "estimated wall time: ${#cells[@]} cells x ${#servers[@]} servers x $rounds rounds x (${secs} s + ~1 s) + set-up = ~$((est / 60)) min $((est % 60)) s"

# Is the machine quiet? Our processes are not started yet, so any busy share now is someone else's.
bench_busy_before

# ---- certificate and backend ------------------------------------------------------------------
bench_cert_and_backend "$backend_kind" "$cli_cpus"

# ---- servers under test -----------------------------------------------------------------------
declare -A PID=() PORT=() UP=() WHY=() CONF=() AFF=() REPINNED=()

start_tlsfront() {
  if bench_start_tlsfront "$work" "$bport" "$workers" "$srv_cpus" 2>"$work/tlsfront.start"; then
    PID[tlsfront]=$TLSFRONT_PID PORT[tlsfront]=$TLSFRONT_PORT
  else
    PID[tlsfront]=$TLSFRONT_PID PORT[tlsfront]=0 WHY[tlsfront]=$(cat "$work/tlsfront.start")
  fi
  CONF[tlsfront]=$work/tlsfront.toml
}

start_tlsfront-b() {
  local d=$work/tlsfront-b
  mkdir -p "$d"
  cp "$work/cert.pem" "$work/key.pem" "$d/"
  if bench_start_tlsfront "$d" "$bport" "$workers" "$srv_cpus" "$B_BIN" 2>"$d/tlsfront.start"; then
    PID[tlsfront-b]=$TLSFRONT_PID PORT[tlsfront-b]=$TLSFRONT_PORT
  else
    PID[tlsfront-b]=$TLSFRONT_PID PORT[tlsfront-b]=0 WHY[tlsfront-b]=$(cat "$d/tlsfront.start")
  fi
  CONF[tlsfront-b]=$d/tlsfront.toml
}

# nginx, HAProxy, H2O and hitch as bench_start_peer configures them (HTTP/1.1; nginx keeps 64
# idle backend connections, one per client connection).
start_peer() {
  bench_start_peer "$1" "$work" "$bport" "$workers" "$srv_cpus" h1 64
  PORT[$1]=$PEER_PORT PID[$1]=$PEER_PID CONF[$1]=$PEER_CONF
}
start_nginx() { start_peer nginx; }
start_haproxy() { start_peer haproxy; }
start_h2o() { start_peer h2o; }
start_hitch() { start_peer hitch; }

for s in "${servers[@]}"; do
  UP[$s]=0
  "start_$s"
done

# ---- health checks: one curl each, then what each negotiates and resumes ----------------------
for s in "${servers[@]}"; do
  [ "${PORT[$s]}" = 0 ] && continue
  bench_await_server "$s" h1
done
any_up=0
for s in "${servers[@]}"; do [ "${UP[$s]}" = 1 ] && any_up=1; done
[ "$any_up" = 1 ] || die "no server came up; see the error logs in $work"

: >"$work/negotiated.tsv"
for s in "${servers[@]}"; do
  n12=NaN n13=NaN r_id=NaN r_t12=NaN r_t13=NaN
  if [ "${UP[$s]}" = 1 ]; then
    n12=$(bench_negotiated "${PORT[$s]}" 1.2) || n12=NaN
    n13=$(bench_negotiated "${PORT[$s]}" 1.3) || n13=NaN
    r_id=$(bench_resumes "${PORT[$s]}" id "$work")
    r_t12=$(bench_resumes "${PORT[$s]}" ticket12 "$work")
    r_t13=$(bench_resumes "${PORT[$s]}" ticket13 "$work")
    log "$s: TLS 1.2 $n12; TLS 1.3 $n13; resumes: session ID $r_id, TLS 1.2 ticket $r_t12, TLS 1.3 ticket $r_t13"
  fi
  aff=${AFF[$s]:-}
  [ -n "${REPINNED[$s]:-}" ] && aff+=" (re-pinned; it had set CPUs ${REPINNED[$s]} itself)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$n12" "$n13" "$r_id" "$r_t12" "$r_t13" "$aff" \
    >>"$work/negotiated.tsv"
done

# ---- measurement ------------------------------------------------------------------------------
tsv_header="round	cell	mode	client	server	position	wall_s	throughput_per_s	completed	duration_s	server_cpu_s	per_server_cpu_s	server_cpu_pct	resumed_share	errors	bad_responses	client_cpu_s	p50_us	p99_us	backend_cpu_s	server_cpus_busy_pct	client_cpus_busy_pct	note"
raw_tsv=$work/runs.tsv
echo "$tsv_header" >"$raw_tsv"

nan_row() {  # round cell mode client server position note
  {
    printf '%s\t%s\t%s\t%s\t%s\t%s' "$1" "$2" "$3" "$4" "$5" "$6"
    printf '\tNaN%.0s' $(seq 16)
    printf '\t%s\n' "$7"
  } >>"$raw_tsv"
}

run_one() {  # round cell server position
  local round=$1 cell=$2 s=$3 pos=$4
  local mode=${cell%%/*} client=wrk kind=wrk
  if [[ "$cell" == */* ]]; then
    client=${cell#*/}
    kind=loadgen
  fi
  local port=${PORT[$s]} tag="r${round}-${cell/\//-}-${s}" rc=0 note=ok
  if [ "${UP[$s]}" != 1 ]; then
    nan_row "$round" "$cell" "$mode" "$client" "$s" "$pos" "server down"
    return
  fi
  if ! kill -0 "${PID[$s]}" 2>/dev/null; then
    UP[$s]=0
    log "WARNING: $s (pid ${PID[$s]}) has exited; its remaining cells record NaN"
    nan_row "$round" "$cell" "$mode" "$client" "$s" "$pos" "server exited"
    return
  fi
  local out=$work/$tag.out
  bench_measure "$work" "${PID[$s]}" "$srv_cpus" "$cli_cpus" \
    bench_run_client "$client" "$mode" "$port" "$secs" "$conns" "$out" "$cli_cpus" "$client_threads"
  rc=$M_RC
  local cpu=$M_CPU bcpu=$M_BCPU wall=$M_WALL ccpu=$M_CCPU sbusy=$M_SBUSY cbusy=$M_CBUSY
  [ "$rc" != 0 ] && note="client exit $rc"
  local fields
  if [ -s "$out" ] && fields=$(bench_parse_client "$kind" "$out" "$cpu" "$wall" 2>"$work/$tag.parse-err"); then
    # the client CPU measured here (times) replaces the loadgen's own figure, so wrk has one too
    fields=$(awk -F'\t' -v OFS='\t' -v c="$ccpu" '{$10 = c; print}' <<<"$fields")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$cell" "$mode" "$client" "$s" \
      "$pos" "$wall" "$fields" "$bcpu" "$sbusy" "$cbusy" "$note" >>"$raw_tsv"
  else
    local see=$out
    [ "$kind" = loadgen ] && see+=" and $out.log"
    log "WARNING: $tag: no usable client output ($note); recorded NaN (see $see)"
    nan_row "$round" "$cell" "$mode" "$client" "$s" "$pos" "no output; $note"
  fi
  if ! kill -0 "${PID[$s]}" 2>/dev/null; then
    UP[$s]=0
    log "WARNING: $s exited during $tag"
  fi
  log "$(tail -1 "$raw_tsv" | awk -F'\t' '{printf "round %s %-15s %-8s %8.0f/s %8.0f per CPU-s  server CPU %3.0f%%  client CPU %5.2fs  CPU busy %s%%/%s%%  err %s  resumed %s  %s", $1, $2, $5, $8, $12, $13, $17, $21, $22, $15 "+" $16, $14, $23}')"
}

start=$(date +%s)
bench_rounds run_one
elapsed=$(($(date +%s) - start))
cp "$raw_tsv" "$out_tsv"

# ---- environment ------------------------------------------------------------------------------
env_file=$work/env.txt
{
  bench_env_versions
  if [[ " ${servers[*]} " == *" tlsfront-b "* ]]; then
    echo "tlsfront_b	$B_BIN/src/tlsfront ($(grep -E '^(CMAKE_BUILD_TYPE|TLSFRONT_IO_URING):' "$B_BIN/CMakeCache.txt" 2>/dev/null | tr '\n' ' '))"
  fi
  echo "wrk	$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
  echo "variant	$variant"
  echo "workers	$workers"
  echo "pin	$pin"
  echo "server_cpu	$server_cpu"
  echo "client_cpu	$client_cpu"
  echo "backend	$BACKEND_DESC"
  echo "backend_kind	$backend_kind"
  echo "backend_cpus	$(bench_affinity "$BACKEND_PID")"
  echo "conns	$conns"
  echo "client_threads	$client_threads"
  echo "secs	$secs"
  echo "rounds	$rounds"
  echo "servers	${servers[*]}"
  echo "clients	${clients[*]}"
  echo "busy_before	$busy_before"
  echo "command	$repro"
  echo "elapsed	$elapsed"
} >"$env_file"

errlogs=$work/errlogs.txt
bench_errlogs "$work" "$errlogs"

# ---- report -----------------------------------------------------------------------------------
desc_file=$work/cells.txt
: >"$desc_file"
for c in "${cells[@]}"; do printf '%s\t%s\n' "$c" "${CELL_DESC[${c%%/*}]}" >>"$desc_file"; done
bench_report_lists "$backend_kind"
why_file=$work/why.tsv conf_file=$work/confs.txt
plot_dat=$work/plot.dat

PYTHONPATH=bench/load python3 - "$raw_tsv" "$env_file" "$desc_file" "$work/negotiated.tsv" "$errlogs" "$out_md" \
  "$plot_dat" "$out_png" "$out_tsv" "$why_file" "$conf_file" <<'PY'
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

def runs(cell, server):
    return [r for r in rows if r["cell"] == cell and r["server"] == server]

def vals(cell, server, key):
    v = [num(r[key]) for r in runs(cell, server)]
    return [x for x in v if not math.isnan(x)]

def client_of(cell):
    return cell.split("/", 1)[1] if "/" in cell else "wrk"

S = {}  # (cell, server) -> medians
for c, _ in cells:
    for s in servers:
        S[(c, s)] = {k: med(vals(c, s, k)) for k in (
            "throughput_per_s", "per_server_cpu_s", "server_cpu_pct", "resumed_share",
            "client_cpu_s", "p50_us", "p99_us", "backend_cpu_s", "server_cpus_busy_pct",
            "client_cpus_busy_pct", "wall_s")}

def best_peer(c, key):
    o = [(S[(c, s)][key], s) for s in peers if not math.isnan(S[(c, s)][key])]
    return max(o) if o else (math.nan, None)

def ratio(c, key):
    t = S[(c, "tlsfront")][key] if "tlsfront" in servers else math.nan
    bv, bs = best_peer(c, key)
    return (t / bv if bs and bv > 0 and not math.isnan(t) else math.nan), bv, bs

def other_load(c, s):
    """Median share of the server's CPU that others used during the runs of (c, s), pinned only."""
    v = [num(r["server_cpus_busy_pct"]) - num(r["server_cpu_pct"]) for r in runs(c, s)]
    v = [x for x in v if not math.isnan(x)]
    return max(0.0, med(v)) if pinned and v else math.nan

def cpu_note(pct, c=None, s=None):
    if math.isnan(pct):
        return "NaN"
    mark = ""
    if pinned and c is not None and other_load(c, s) > OTHER_LOAD:
        mark = " §"
    elif pinned and pct < CLIENT_BOUND:
        mark = " ‡"
    return f"{pct:.0f} %{mark}"

date = env["date"].split()[0]
title_servers = ", ".join({"tlsfront": "tlsfront", "tlsfront-b": "tlsfront-b", "nginx": "nginx", "haproxy": "HAProxy",
                           "h2o": "H2O", "hitch": "hitch"}[s] for s in servers)
vdesc = {"pinned": f"pinned: one worker each, the server under test alone on CPU {env['server_cpu']}, "
                   f"clients and backend on CPU {env['client_cpu']}",
         "1w": "one worker each, nothing pinned",
         "2w": "two workers/threads each, nothing pinned"}[variant]
L = []
L.append(f"# Load comparison ({variant}): {title_servers} — {date}")
L.append("")
L.append(f"Variant **{variant}** ({vdesc}). Backend: {env['backend']}. "
         f"Every client runs {env['conns']} connections.")
L.append("")

# ---- headline ----
head_client = "openssl" if any(c.endswith("/openssl") for c, _ in cells) else "boringssl"
head_cells = [c for c, _ in cells if client_of(c) in (head_client, "wrk")]
L.append(f"## Headline: tlsfront against the best of its peers, {variant}, "
         f"{'OpenSSL' if head_client == 'openssl' else 'BoringSSL'} client")
L.append("")
if head_client != "openssl":
    L.append("**The OpenSSL client (tlsfront-loadgen-openssl) was not part of this run**: the "
             "handshake rows below come from tlsfront's own BoringSSL client.")
    L.append("")
if variant != "pinned":
    L.append(f"This is the {variant} variant; the project's headline figure is the pinned run "
             f"(`VARIANT=pinned`, `-load-pinned.md`).")
    L.append("")
L.append("Work per server CPU-second (handshakes or requests completed ÷ the server's CPU "
         "seconds), median over rounds; the ratio is tlsfront ÷ the best peer in that cell. "
         f"Handshake cells: `tlsfront-loadgen{'-openssl' if head_client == 'openssl' else ''}`; "
         "wrk cells: wrk (OpenSSL). Server CPU % "
         "is the server's CPU seconds ÷ wall seconds × 100"
         + (f"; ‡ marks a server under {CLIENT_BOUND:.0f} % of its CPU, i.e. held back by the "
            "client: there throughput measures the client, and per CPU-second is the fair figure; "
            f"§ marks a cell where other processes took more than {OTHER_LOAD:.0f} % of the "
            "server's CPU (median), so that cell is noisy." if pinned else "."))
L.append("")
if pinned:
    ol = [other_load(c, s) for c, _ in cells for s in servers]
    ol = [x for x in ol if not math.isnan(x)]
    if ol and med(ol) > OTHER_LOAD:
        L.append(f"**Warning: this run was not alone on the machine.** Other processes used a median "
                 f"{med(ol):.0f} % of the server's CPU {env['server_cpu']} during the runs (see "
                 "\"Other load on the machine\"): the figures are noisy; rerun on a quiet machine "
                 "before quoting them.")
        L.append("")
L.append("| cell | tlsfront per CPU-s | tlsfront CPU % | best peer per CPU-s | peer CPU % | **ratio per CPU-s** | ratio throughput (vs best peer by /s) |")
L.append("|---|---|---|---|---|---|---|")
for c in head_cells:
    r, bv, bs = ratio(c, "per_server_cpu_s")
    rt, tv, ts = ratio(c, "throughput_per_s")
    tf = S[(c, "tlsfront")] if "tlsfront" in servers else None
    L.append(f"| `{c}` | {f(tf['per_server_cpu_s']) if tf else 'NaN'} | "
             f"{cpu_note(tf['server_cpu_pct'], c, 'tlsfront') if tf else 'NaN'} | "
             f"{f(bv)} ({bs or '–'}) | {cpu_note(S[(c, bs)]['server_cpu_pct'], c, bs) if bs else 'NaN'} | "
             f"**{f(r)}** | {f(rt)} ({ts or '–'}) |")
L.append("")
L += reproduce_lines(env, why)

# ---- set-up ----
L.append("## Set-up")
L.append("")
L += machine_lines(env)
if "tlsfront_b" in env:
    L.append(f"- tlsfront-b (the only \"peer\" when listed: ratios read tlsfront ÷ tlsfront-b): "
             f"{env['tlsfront_b']}, same config as tlsfront")
L.append(f"- Servers: tlsfront commit `{env['tlsfront']}` (release preset, BoringSSL "
         f"`android-libboringssl` {env['boringssl']}); {env['nginx']}; {env['haproxy']}; "
         f"{env['h2o']}; {env['hitch']}; nginx, HAProxy, H2O and hitch on Debian's libssl3 "
         f"{env['libssl3']} (`{env['openssl']}`)")
L.append(f"- Clients: tlsfront-loadgen (BoringSSL, same build), tlsfront-loadgen-openssl "
         f"(OpenSSL 3, libssl3 {env['libssl3']}), {env['wrk']}; {env['client_threads']} thread(s), "
         f"{env['conns']} connections each")
if pinned:
    L.append(f"- Pinning (`taskset -c`): every process and thread of the server under test on CPU "
             f"{env['server_cpu']} (checked from /proc after start, table below); clients and "
             f"backend on CPU {env['client_cpu']} (backend: {env['backend_cpus']}).")
else:
    L.append("- Nothing pinned: clients, backend and server share all cores.")
L.append(f"- Workers: {env['workers']} per server (nginx `worker_processes`, HAProxy `nbthread`, "
         "H2O `num-threads`, hitch `workers`, tlsfront `threads`).")
L.append("- Every server: the same ECDSA P-256 self-signed certificate, TLS 1.2 and 1.3, session "
         "cache and session tickets on, keep-alive connections to the backend (nginx `upstream "
         "keepalive 64`, HAProxy `http-reuse always`, H2O `proxy.timeout.keepalive`, tlsfront "
         "`max_idle`; hitch is a TCP-mode terminator: one backend connection per client "
         "connection), access logs off. H2O with `neverbleed: OFF` (it signs in-process, like "
         "the others) and `proxy.emit-via-header: OFF` (it still adds X-Forwarded-For/-Proto, "
         "as tlsfront does).")
L.append("- hitch parses no HTTP: it relays the decrypted bytes, so its figures are the cost of TLS "
         "plus a TCP relay, a floor the HTTP proxies cannot reach by design; it is counted among "
         "the peers all the same. Debian's hitch is built without its shared session cache "
         "(`session-cache` is refused), so session IDs live in OpenSSL's per-process cache: with "
         "2 workers a session-ID resumption only succeeds on the worker that made the session "
         "(see the resumed column).")
L.append("- Rounds are interleaved: for each round, for each cell, for each server, the server "
         "order rotating each round. Medians over rounds; range is min–max.")
L.append("- CPU: each server's CPU seconds are user+system time from `/proc/<pid>/stat` summed "
         "over its whole process tree (nginx master and workers, hitch and its workers), read "
         "before and after each client run; the backend's are read separately (never counted "
         "for the server). Server CPU % = server CPU seconds ÷ wall seconds of that window × 100 "
         "(100 % = one core). Client CPU: the client's own user+system time.")
if pinned:
    L.append(f"- A server under ~100 % of its CPU in this pinned variant was **client-bound**: "
             f"the client and backend on CPU {env['client_cpu']} did not keep it busy. Its "
             "throughput then measures the client, and work per server CPU-second is the fair "
             f"figure (‡ marks runs under {CLIENT_BOUND:.0f} %).")
L.append("")
L += cells_lines(cells, lambda c: f"; client {client_of(c)}" if "/" in c else "")
L.append("loadgen (both clients, the same flags): `tlsfront-loadgen[-openssl] --host 127.0.0.1 "
         f"--port PORT --sni localhost --mode MODE [--tls V] --connections {env['conns']} "
         f"--threads {env['client_threads']} --duration S --expect TEXT --json OUT`: each "
         "connection does connect, handshake, one `GET /` with `Connection: close`, reads the "
         "response until the server closes and checks it. wrk: "
         f"`wrk -t{env['client_threads']} -c{env['conns']} -dSs --latency [-H 'Connection: close'] "
         "https://127.0.0.1:PORT/`.")
L.append("")
L += checks_lines(negf, "Checked before measuring with `openssl s_client` (cipher, key exchange, "
                  "ALPN; resumption: a second connection offering the first one's session) and one "
                  "`curl`:", ["TLS 1.2", "TLS 1.3", "session-ID resumption", "TLS 1.2 ticket",
                              "TLS 1.3 ticket", "CPUs of its threads"])

# ---- per cell and server ----
L.append("## Every cell and server")
L.append("")
L.append("Medians over rounds (range min–max): throughput (handshakes/s or requests/s), server "
         "CPU %, completed per server CPU-second; resumed share (loadgen), errors summed over "
         "rounds (loadgen: failed connections, handshakes or responses; wrk: socket errors) and "
         "bad responses (loadgen: not `200` with the expected body; wrk: non-2xx), client and "
         "backend CPU %, p50/p99 latency (loadgen: connect + handshake + request; wrk: per request).")
L.append("")
L.append("| cell | server | /s (range) | server CPU % | **per CPU-s** (range) | resumed | errors | bad | client CPU % | backend CPU % | others on server CPU % | p50 µs | p99 µs |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for c, _ in cells:
    for s in servers:
        m = S[(c, s)]
        e = vals(c, s, "errors")
        b = vals(c, s, "bad_responses")
        failed = sum(1 for r in runs(c, s) if math.isnan(num(r["throughput_per_s"])))
        err = f"{int(sum(e))}" if e else "NaN"
        if failed:
            err += f" ({failed} failed runs)"
        w = m["wall_s"]
        cpct = 100 * m["client_cpu_s"] / w if w and not math.isnan(w) else math.nan
        bpct = 100 * m["backend_cpu_s"] / w if w and not math.isnan(w) else math.nan
        res = m["resumed_share"]
        L.append(f"| `{c}` | {s} | {f(m['throughput_per_s'])}{rng(vals(c, s, 'throughput_per_s'))} | "
                 f"{cpu_note(m['server_cpu_pct'], c, s)} | **{f(m['per_server_cpu_s'])}**"
                 f"{rng(vals(c, s, 'per_server_cpu_s'))} | "
                 f"{f'{res:.3f}' if not math.isnan(res) else '–'} | {err} | "
                 f"{int(sum(b)) if b else 'NaN'} | {f(cpct)} | {f(bpct)} | {f(other_load(c, s))} | "
                 f"{f(m['p50_us'])} | {f(m['p99_us'])} |")
L.append("")

# ---- ratios ----
L.append("## tlsfront relative to the best peer, every cell and client")
L.append("")
L.append(f"Per server CPU-second; the best of {', '.join(peers) or 'no peer'} in each cell.")
L.append("")
L.append("| cell | client | tlsfront per CPU-s | best peer per CPU-s | **ratio per CPU-s** | ratio throughput |")
L.append("|---|---|---|---|---|---|")
ratios = {}
for c, _ in cells:
    r, bv, bs = ratio(c, "per_server_cpu_s")
    rt, tv, ts = ratio(c, "throughput_per_s")
    ratios[c] = r
    tf = S[(c, "tlsfront")]["per_server_cpu_s"] if "tlsfront" in servers else math.nan
    L.append(f"| `{c.split('/')[0]}` | {client_of(c)} | {f(tf)} | {f(bv)} ({bs or '–'}) | "
             f"**{f(r)}** | {f(rt)} ({ts or '–'}) |")
L.append("")
modes = []
for c, _ in cells:
    if "/" in c and c.split("/")[0] not in modes:
        modes.append(c.split("/")[0])
both = [m for m in modes if f"{m}/openssl" in ratios and f"{m}/boringssl" in ratios]
if both:
    L.append("### Does the client choose the winner?")
    L.append("")
    L.append("The same handshake cell driven by the two clients: tlsfront's ratio to the best "
             "peer, and each server's per-CPU-second figure with the OpenSSL client ÷ with the "
             "BoringSSL client (how much the server's work depends on who talks to it).")
    L.append("")
    L.append("| cell | ratio, OpenSSL client | ratio, BoringSSL client | " +
             " | ".join(f"{s} openssl ÷ boringssl" for s in servers) + " |")
    L.append("|---|---|---|" + "---|" * len(servers))
    for m in both:
        cells_ = [f"{m}/openssl", f"{m}/boringssl"]
        line = [f"`{m}`", f(ratios[cells_[0]]), f(ratios[cells_[1]])]
        for s in servers:
            a, b = S[(cells_[0], s)]["per_server_cpu_s"], S[(cells_[1], s)]["per_server_cpu_s"]
            line.append(f(a / b) if b and not math.isnan(a) and not math.isnan(b) else "NaN")
        L.append("| " + " | ".join(line) + " |")
    L.append("")

# ---- other load ----
L.append("## Other load on the machine")
L.append("")
if pinned:
    L.append(f"Busy share of CPU {env['server_cpu']} (the server's) and CPU {env['client_cpu']} "
             "(clients and backend) over each run, from `/proc/stat`, whoever ran there. On "
             f"CPU {env['server_cpu']}, busy % well above the server's own CPU % means something "
             "else (another user's job) shared the server's core during that run.")
else:
    L.append("Busy share of the whole machine over each run, from `/proc/stat`.")
L.append("")
L.append("| server | median server CPU % | median busy % of its CPU(s) | others on it, median % | others on it, max % | median busy % of the client CPU |")
L.append("|---|---|---|---|---|---|")
for s in servers:
    sr = [r for r in rows if r["server"] == s and not math.isnan(num(r["server_cpus_busy_pct"]))
          and not math.isnan(num(r["server_cpu_pct"]))]
    own = med([num(r["server_cpu_pct"]) for r in sr])
    busy = med([num(r["server_cpus_busy_pct"]) for r in sr])
    # unpinned: busy % is of the whole machine, the server's CPU % of one core
    scale = 1 if pinned else int(env["nproc"])
    extra = [max(0.0, num(r["server_cpus_busy_pct"]) - num(r["server_cpu_pct"]) / scale) for r in sr]
    cb = med([num(r["client_cpus_busy_pct"]) for r in sr if not math.isnan(num(r["client_cpus_busy_pct"]))])
    L.append(f"| {s} | {f(own)} | {f(busy)} | {f(med(extra))} | {f(max(extra)) if extra else 'NaN'} | {f(cb)} |")
L.append("")
L.append("\"Others\" is the CPU's busy share less the server's own CPU share: other processes "
         "(another user's build or tests), plus any kernel work charged to no process.")
L.append("")

odd = [r for r in rows if r["note"] != "ok"]
if odd:
    L.append("Runs with notes:")
    L.append("")
    for r in odd:
        L.append(f"- round {r['round']} `{r['cell']}` {r['server']}: {r['note']}")
    L.append("")
L += tail_lines(errf, confs)
L.append(f"Chart: `{out_png.split('/')[-1]}` (median per server CPU-second, log scale). "
         f"Raw runs, one line each: `{out_tsv.split('/')[-1]}`.")
open(out_md, "w").write("\n".join(L) + "\n")

write_plot_dat(plot_dat, [c for c, _ in cells], servers, S)
print_summary([c for c, _ in cells], servers, S, ratios)
PY

if ! bench_plot "$plot_dat" "$out_png" \
  "tlsfront vs peers ($variant, $workers worker(s) each, backend $backend_kind): median handshakes or requests per server CPU-second\\n$day, ${secs} s x ${rounds} rounds, $(nproc) cores, $conns connections, log scale" \
  "handshakes or requests per server CPU-second" "$work/gnuplot.err"; then
  log "WARNING: gnuplot failed: $(head -3 "$work/gnuplot.err")"
fi

bench_wrote "$out_md" "$out_tsv" "$out_png"
failed=$(awk -F'\t' 'NR > 1 && $8 == "NaN"' "$out_tsv" | wc -l)
if [ "$failed" != 0 ]; then
  echo "WARNING: $failed of $(($(wc -l <"$out_tsv") - 1)) runs failed (NaN); see the notes in $out_md"
fi
