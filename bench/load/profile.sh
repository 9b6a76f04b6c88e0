#!/usr/bin/env bash
# Where tlsfront's per-connection (or per-request) cost goes: system calls, heap allocations, TCP
# segments, context switches and CPU by library and symbol, each divided by the connections or
# requests the client completed while it was counted.
#
# Starts tlsfront (release build, one worker) alone on CPU $SERVER_CPU (1) with `taskset`, the
# backend and one client on CPU $CLIENT_CPU (0), as in bench/load/compare.sh's pinned variant, then
# runs the client once per phase (SECONDS each, after a 1 s warm-up), every counter attached
# before the client starts and detached after it ends:
#   clean   nothing attached: throughput, server CPU µs, context switches of tlsfront's threads
#           and TCP segments (/proc/net/snmp OutSegs, all senders) per connection/request
#   sys     perf stat on the syscall tracepoints of tlsfront's threads: system calls per
#           connection/request, by call, with no slow-down (epoll_wait batches as unobserved)
#   strace  strace -f -c on tlsfront: the same by call with errors (EAGAIN), slowed down
#   malloc  perf stat on uprobes at libc malloc/calloc/realloc/free (perf probe -x libc): heap
#           calls per connection/request (falls back to ltrace -c when uprobes do not work)
#   perf    perf record -e cpu-clock -g on tlsfront: share of its CPU by DSO and the top symbols
#
# Usage: bench/load/profile.sh MODE [CLIENT] [SECONDS]
#   MODE    id | ticket12 | ticket13 | full12 | full13 (loadgen) | wrk-ka | wrk-close (wrk)
#   CLIENT  openssl (tlsfront-loadgen-openssl, default) | boringssl (tlsfront-loadgen);
#           ignored for the wrk modes
#   SECONDS per phase (default 3)
#   env BACKEND=nginx (default; a separate nginx, `return 200 "ok\n"`) | echo
#   env CONNS=64 (client connections), SERVER_CPU=1, CLIENT_CPU=0, KEEP_TMP=1 (keep the temp dir)
#   env OUT=FILE.md  (default bench/results/<date>-profile-<mode>.md; with CLIENT=boringssl
#                    and a handshake mode, -profile-<mode>-boringssl.md)
# Needs a release build and linux-perf, strace (scripts/install-deps). Run it as root (perf probe
# and strace -p); it adds uprobes named probe_libc:tfprof<pid>_* and deletes them on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/load/lib.sh

die() {
  echo "profile.sh: $*" >&2
  exit 1
}
log() { echo "[$(date +%T)] $*" >&2; }

mode=${1:-}
client=${2:-openssl}
secs=${3:-3}
case $mode in
  id | ticket12 | ticket13 | full12 | full13) ;;
  wrk-ka | wrk-close) client=wrk ;;
  *) die "usage: $0 MODE [CLIENT] [SECONDS]; MODE: id ticket12 ticket13 full12 full13 wrk-ka wrk-close" ;;
esac
[[ "$client" =~ ^(openssl|boringssl|wrk)$ ]] || die "CLIENT must be openssl or boringssl"
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer"
backend_kind=${BACKEND:-nginx}
conns=${CONNS:-64}
server_cpu=${SERVER_CPU:-1}
client_cpu=${CLIENT_CPU:-0}
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (the server pinned alone on one)"
[ "$server_cpu" != "$client_cpu" ] || die "SERVER_CPU and CLIENT_CPU must differ"

for t in perf strace taskset setsid curl python3 openssl; do
  command -v "$t" >/dev/null || die "'$t' not found: run scripts/install-deps first"
done
[ "$client" = wrk ] && { command -v wrk >/dev/null || die "'wrk' not found"; }
[ "$backend_kind" = nginx ] && { command -v nginx >/dev/null || die "'nginx' (the backend) not found"; }
need=("$BENCH_BIN/src/tlsfront")
[ "$backend_kind" = echo ] && need+=("$BENCH_BIN/tools/tlsfront-echo-backend")
[ "$client" != wrk ] && need+=("$(bench_client_bin "$client")")
for b in "${need[@]}"; do
  if [ ! -x "$b" ]; then
    [[ "$b" == *-openssl ]] && die "$b is missing (tools/loadgen_openssl not built yet): scripts/build release, or use the BoringSSL client: $0 $mode boringssl $secs"
    die "$b is missing: run scripts/build release first"
  fi
done

day=$(date +%F)
suffix=$mode
[ "$client" = boringssl ] && suffix+=-boringssl
out_md=${OUT:-bench/results/$day-profile-$suffix.md}
mkdir -p "$(dirname "$out_md")"
hz=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/tlsfront-profile-XXXXXX)
probe_prefix="tfprof$$"
probes_added=0
tracer_pid=""
cleanup() {
  local rc=$?
  if [ -n "$tracer_pid" ]; then
    kill -INT "$tracer_pid" 2>/dev/null || true
    sleep 0.5
    kill -KILL "$tracer_pid" 2>/dev/null || true
  fi
  if [ "$probes_added" = 1 ]; then
    perf probe -q -d "probe_libc:${probe_prefix}_*" >/dev/null 2>&1 || true
  fi
  bench_stop_all
  bench_drop_work profile.sh "$work" "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "mode $mode, client $client, $conns connections, ${secs} s a phase (warm-up 1 s, clean, strace, malloc, perf: ~$((4 * secs + 12)) s)"
scripts/gen-self-signed "$work/cert.pem" "$work/key.pem" localhost
bench_start_backend "$backend_kind" "$work" "$client_cpu" || die "the backend did not start"
bench_start_tlsfront "$work" "$BACKEND_PORT" 1 "$server_cpu" || die "tlsfront did not start"
tf=$TLSFRONT_PID
port=$TLSFRONT_PORT
curl -sk --max-time 5 "https://127.0.0.1:$port/" | grep -q "$BACKEND_EXPECT" ||
  die "tlsfront on port $port does not answer '$BACKEND_EXPECT'"
log "tlsfront pid $tf on 127.0.0.1:$port (CPUs $(bench_affinity "$tf")); backend: $BACKEND_DESC (CPUs $(bench_affinity "$BACKEND_PID"))"

kind=loadgen
[ "$client" = wrk ] && kind=wrk

ctx_switches() {  # voluntary + involuntary context switches of all of tlsfront's threads
  cat /proc/"$tf"/task/*/status 2>/dev/null |
    awk '/^(voluntary|nonvoluntary)_ctxt_switches/{s += $2} END{print s + 0}'
}
tcp_out_segs() { awk '/^Tcp:/ && $2 ~ /^[0-9]+$/ {print $12}' /proc/net/snmp; }

# measure PHASE: one client run; writes $work/PHASE.tsv (the bench_parse_client fields) and
# $work/PHASE.extra ("ctx_switches out_segs wall_s").
measure() {
  local phase=$1 c0 c1 x0 x1 s0 s1 t0 t1 rc=0 out=$work/$1.out
  c0=$(bench_cpu_ticks "$tf")
  x0=$(ctx_switches)
  s0=$(tcp_out_segs)
  t0=$(date +%s.%N)
  bench_run_client "$client" "$mode" "$port" "$secs" "$conns" "$out" "$client_cpu" || rc=$?
  t1=$(date +%s.%N)
  c1=$(bench_cpu_ticks "$tf")
  x1=$(ctx_switches)
  s1=$(tcp_out_segs)
  [ "$rc" = 0 ] || log "WARNING: the client exited $rc in phase $phase"
  local cpu wall
  cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN{printf "%.3f", (b - a) / hz}')
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
  bench_parse_client "$kind" "$out" "$cpu" "$wall" >"$work/$phase.tsv" ||
    die "phase $phase: no usable client output (see $out)"
  echo "$((x1 - x0)) $((s1 - s0)) $wall" >"$work/$phase.extra"
  log "phase $phase: $(awk -F'\t' '{printf "%.0f/s, %s completed, tlsfront CPU %.0f%%, resumed %s, errors %s", $1, $2, $6, $7, $8}' "$work/$phase.tsv")"
}

# traced PHASE OUTPUT COMMAND...: runs COMMAND (a tracer attaching to tlsfront) on the client's
# CPU with its output to OUTPUT, lets it attach, measures PHASE, then stops it.
traced() {
  local phase=$1 output=$2
  shift 2
  taskset -c "$client_cpu" "$@" >"$output" 2>&1 &
  tracer_pid=$!
  sleep 1   # attach to every thread before the client starts
  measure "$phase"
  kill -INT "$tracer_pid" 2>/dev/null || true
  wait "$tracer_pid" 2>/dev/null || true
  tracer_pid=""
}

# ---- warm-up and the clean phase --------------------------------------------------------------
bench_run_client "$client" "$mode" "$port" 1 "$conns" "$work/warmup.out" "$client_cpu" || true
# others' loopback traffic over one idle second, subtracted from the clean phase's OutSegs
b0=$(tcp_out_segs)
sleep 1
b1=$(tcp_out_segs)
idle_segs_per_s=$((b1 - b0))
measure clean

# ---- system calls by tracepoint (no slow-down) -------------------------------------------------
sys_events="raw_syscalls:sys_enter"
for c in accept4 accept recvfrom recvmsg sendto sendmsg read write readv writev epoll_ctl \
  epoll_wait close shutdown ioctl fcntl setsockopt getsockopt futex timerfd_settime io_uring_enter; do
  sys_events="$sys_events,syscalls:sys_enter_$c"
done
traced sys "$work/sys.err" perf stat -x, -e "$sys_events" -p "$tf" -o "$work/sys.txt"

# ---- strace -----------------------------------------------------------------------------------
traced strace "$work/strace.err" strace -f -c -o "$work/strace.txt" -p "$tf"

# ---- heap allocations -------------------------------------------------------------------------
libc=$(ldd "$BENCH_BIN/src/tlsfront" | awk '$1 ~ /^libc\.so/ {print $3; exit}')
heap_method="none"
heap_note=""
events=()
if [ -n "$libc" ]; then
  for fn in malloc calloc realloc free; do
    if perf probe -q -x "$libc" -a "${probe_prefix}_${fn}=${fn}" >>"$work/probe.log" 2>&1; then
      probes_added=1
      events+=("probe_libc:${probe_prefix}_${fn}")
    fi
  done
fi
if [ ${#events[@]} -gt 0 ]; then
  ev=$(IFS=,; echo "${events[*]}")
  traced malloc "$work/malloc.err" perf stat -x, -e "$ev" -p "$tf" -o "$work/malloc.txt"
  cat "$work/malloc.err" >>"$work/probe.log"
  perf probe -q -d "probe_libc:${probe_prefix}_*" >/dev/null 2>&1 || true
  probes_added=0
  if grep -q "${probe_prefix}_malloc" "$work/malloc.txt" && ! grep -q 'not counted\|not supported' "$work/malloc.txt"; then
    heap_method="perf-uprobes"
  else
    heap_note="perf stat on the uprobes counted nothing: $(head -3 "$work/malloc.txt" "$work/probe.log" | tr '\n' ' ' | cut -c1-300)"
  fi
else
  heap_note="perf probe could not add uprobes on $libc: $(tail -3 "$work/probe.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
fi
if [ "$heap_method" = none ] && command -v ltrace >/dev/null; then
  traced malloc "$work/ltrace.err" ltrace -f -c -e malloc+calloc+realloc+free -o "$work/ltrace.txt" -p "$tf"
  [ -s "$work/ltrace.txt" ] && heap_method="ltrace"
fi
[ "$heap_method" = none ] && log "WARNING: heap allocations not measured: $heap_note"

# ---- perf record ------------------------------------------------------------------------------
traced perf "$work/perf-record.log" perf record -q -e cpu-clock -F 1999 -g -p "$tf" \
  -o "$work/perf.data"
perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null >"$work/perf-dso.txt" || true
perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null >"$work/perf-sym.txt" || true

# ---- report -----------------------------------------------------------------------------------
{
  echo "date	$(date '+%F %T %Z')"
  echo "nproc	$(nproc)"
  echo "kernel	$(uname -sr)"
  echo "cpu	$(lscpu | awk -F': *' '/^Model name/{print $2; exit}')"
  echo "tlsfront	$(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "backend	$BACKEND_DESC"
  echo "client	$client"
  echo "mode	$mode"
  echo "conns	$conns"
  echo "secs	$secs"
  echo "server_cpu	$server_cpu"
  echo "client_cpu	$client_cpu"
  echo "idle_segs_per_s	$idle_segs_per_s"
  echo "heap_method	$heap_method"
  echo "heap_note	$heap_note"
  echo "libc	$libc"
  echo "perf	$(perf version 2>&1 | head -1)"
  echo "strace	$(strace -V | head -1)"
  echo "command	BACKEND=$backend_kind CONNS=$conns SERVER_CPU=$server_cpu CLIENT_CPU=$client_cpu bench/load/profile.sh $mode $([ "$client" = wrk ] || echo "$client ")$secs"
} >"$work/env.txt"

python3 - "$work" "$out_md" "$hz" <<'PY'
import math, os, re, sys
work, out_md, hz = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = dict(l.rstrip("\n").split("\t", 1) for l in open(f"{work}/env.txt") if "\t" in l)
FIELDS = ("thr", "done", "dur", "cpu", "per", "pct", "res", "err", "bad", "ccpu", "p50", "p99")

def phase(name):
    p = f"{work}/{name}.tsv"
    if not os.path.exists(p) or not os.path.getsize(p):
        return None
    d = dict(zip(FIELDS, (float(x) for x in open(p).read().split("\t"))))
    ctx, segs, wall = (float(x) for x in open(f"{work}/{name}.extra").read().split())
    d.update(ctx=ctx, segs=segs, wall=wall)
    return d

def f(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NaN"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"

mode, client = env["mode"], env["client"]
unit = "request" if mode == "wrk-ka" else "connection"
units = unit + "s"
clean = phase("clean")
L = [f"# tlsfront per-{unit} profile: `{mode}`, client {client} — {env['date'].split()[0]}", ""]
L.append(f"tlsfront (release, one worker) alone on CPU {env['server_cpu']}; the backend ({env['backend']}) "
         f"and the client ({client}, {env['conns']} connections) on CPU {env['client_cpu']}. "
         f"{env['nproc']} cores, {env['cpu']}, {env['kernel']}; tlsfront commit `{env['tlsfront']}`. "
         f"Each phase is one client run of {env['secs']} s (after a 1 s warm-up); the counters of a "
         "phase are attached before its client starts and detached after it ends, and divided by "
         f"the {units} that client completed.")
L.append("")
L.append("Reproduce:")
L.append("")
L.append(f"    {env['command']}")
L.append("")

L.append("## Per phase")
L.append("")
L.append(f"| phase | {units}/s | completed | tlsfront CPU % | resumed | errors | tlsfront CPU µs per {unit} |")
L.append("|---|---|---|---|---|---|---|")
for name, what in (("clean", "nothing attached"), ("sys", "perf stat on syscall tracepoints"),
                   ("strace", "strace -f -c"),
                   ("malloc", "perf stat on malloc uprobes" if env["heap_method"] != "ltrace" else "ltrace -c"),
                   ("perf", "perf record -g")):
    d = phase(name)
    if not d:
        continue
    us = 1e6 * d["cpu"] / d["done"] if d["done"] else math.nan
    L.append(f"| {name} ({what}) | {f(d['thr'])} | {f(d['done'])} | {f(d['pct'])} | "
             f"{f(d['res']) if not math.isnan(d['res']) else '–'} | {f(d['err'])} | {f(us)} |")
L.append("")
L.append("Tracing slows tlsfront down (strace most); the counts per " + unit + " barely depend on "
         "the speed, except for `epoll_wait`, which batches more events when the server is behind.")
L.append("")

if clean:
    n = clean["done"]
    L.append(f"## Clean phase: per {unit}")
    L.append("")
    segs = clean["segs"] - float(env["idle_segs_per_s"]) * clean["wall"]
    L.append(f"| tlsfront CPU µs | context switches of tlsfront's threads | TCP segments sent on loopback (all senders) |")
    L.append("|---|---|---|")
    L.append(f"| {f(1e6 * clean['cpu'] / n)} | {f(clean['ctx'] / n)} | {f(segs / n)} |")
    L.append("")
    L.append("TCP segments: the growth of `Tcp: OutSegs` in `/proc/net/snmp` over the run, less the "
             f"idle rate measured just before ({env['idle_segs_per_s']} segments/s from other users "
             "of this network namespace), divided by the " + units + ". It counts every sender on "
             "loopback: client → tlsfront, tlsfront → client, tlsfront → backend and backend → "
             "tlsfront (pure ACKs included); one loopback segment sent is one received.")
    L.append("")

# perf stat -x, on the syscall tracepoints: "count,,event,...", one line per event
d = phase("sys")
L.append(f"## System calls per {unit} (perf stat on the syscall tracepoints)")
L.append("")
sys_counts = {}
if d and os.path.exists(f"{work}/sys.txt"):
    for line in open(f"{work}/sys.txt"):
        t = line.strip().split(",")
        if len(t) >= 3 and re.match(r"^\d+$", t[0]):
            sys_counts[t[2]] = int(t[0])
if d and d["done"] and "raw_syscalls:sys_enter" in sys_counts:
    n = d["done"]
    total = sys_counts.pop("raw_syscalls:sys_enter")
    L.append(f"**{total / n:.2f} system calls per {unit}** (every system call entered by tlsfront's "
             f"threads, {total:,} for {int(n):,} {units}; tracepoints do not slow tlsfront down, so "
             "`epoll_wait` batches as in the clean run).")
    L.append("")
    L.append(f"| system call | per {unit} |")
    L.append("|---|---|")
    for name, calls in sorted(sys_counts.items(), key=lambda kv: -kv[1]):
        if calls:
            L.append(f"| `{name.replace('syscalls:sys_enter_', '')}` | {calls / n:.3f} |")
else:
    L.append("Not measured (perf stat on the syscall tracepoints gave nothing; see sys.err in the temp dir).")
L.append("")

# strace -c: "% time seconds usecs/call calls [errors] syscall", then a total line
d = phase("strace")
rows = []
if d and os.path.exists(f"{work}/strace.txt"):
    for line in open(f"{work}/strace.txt"):
        t = line.split()
        if len(t) < 5 or not re.match(r"^[\d.]+$", t[0]) or t[-1] == "total":
            continue
        calls = int(t[3])
        errors = int(t[4]) if len(t) == 6 else 0
        rows.append((calls, errors, float(t[0]), t[-1]))
L.append(f"## System calls per {unit} under strace -f -c (errors: EAGAIN and the like)")
L.append("")
if rows and d["done"]:
    n = d["done"]
    total = sum(r[0] for r in rows)
    L.append(f"**{total / n:.2f} system calls per {unit}** ({total:,} calls, {int(n):,} {units}).")
    L.append("")
    L.append(f"| system call | per {unit} | errors per {unit} | % of strace's time |")
    L.append("|---|---|---|---|")
    for calls, errors, pct, name in sorted(rows, reverse=True):
        L.append(f"| `{name}` | {calls / n:.3f} | {errors / n:.3f} | {pct:.1f} |")
else:
    L.append("Not measured (strace produced no summary; see the temp dir's strace.err).")
L.append("")

L.append(f"## Heap calls per {unit}")
L.append("")
d = phase("malloc")
method = env["heap_method"]
counts = {}
if method == "perf-uprobes" and d:
    for line in open(f"{work}/malloc.txt"):
        t = line.strip().split(",")
        if len(t) >= 3 and re.match(r"^\d+$", t[0]):
            counts[t[2].split("_")[-1]] = int(t[0])
elif method == "ltrace" and d:
    for line in open(f"{work}/ltrace.txt"):
        t = line.split()
        if len(t) >= 5 and re.match(r"^[\d.]+$", t[0]) and t[-1] in ("malloc", "calloc", "realloc", "free"):
            counts[t[-1]] = int(t[3])
if counts and d["done"]:
    n = d["done"]
    allocs = sum(counts.get(k, 0) for k in ("malloc", "calloc", "realloc"))
    L.append(f"**{allocs / n:.2f} allocations per {unit}** (malloc + calloc + realloc; "
             f"free {counts.get('free', 0) / n:.2f}), counted in tlsfront's threads only, "
             + ("with `perf probe -x " + env["libc"] + "` uprobes and `perf stat -e ... -p PID` "
                "(in the tlsfront executable, operator new and BoringSSL's OPENSSL_malloc are served by its per-thread block cache and reach malloc only when it has no block; libssl allocates its record buffers with malloc directly)."
                if method == "perf-uprobes" else "with `ltrace -f -c -p PID`."))
    L.append("")
    L.append(f"| call | per {unit} | total |")
    L.append("|---|---|---|")
    for k in ("malloc", "calloc", "realloc", "free"):
        if k in counts:
            L.append(f"| `{k}` | {counts[k] / n:.3f} | {counts[k]:,} |")
else:
    L.append("Not measured: " + (env.get("heap_note") or "no counts came back") +
             " (and ltrace is not installed, or counted nothing).")
L.append("")

L.append("## tlsfront's CPU by library (perf record -e cpu-clock -g, --sort dso)")
L.append("")
dso = []
for line in open(f"{work}/perf-dso.txt") if os.path.exists(f"{work}/perf-dso.txt") else []:
    m = re.match(r"^\s+([\d.]+)%\s+(\S.*?)\s*$", line)
    if m:
        dso.append((float(m.group(1)), m.group(2)))
if dso:
    L.append("| share | DSO |")
    L.append("|---|---|")
    for pct, name in dso[:15]:
        L.append(f"| {pct:.1f} % | `{name}` |")
else:
    L.append("No samples (see perf-record.log in the temp dir).")
L.append("")
L.append("Top symbols (`--sort dso,sym`):")
L.append("")
sym = []
for line in open(f"{work}/perf-sym.txt") if os.path.exists(f"{work}/perf-sym.txt") else []:
    m = re.match(r"^\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$", line)
    if m:
        sym.append((float(m.group(1)), m.group(2), m.group(4)))
if sym:
    L.append("| share | DSO | symbol |")
    L.append("|---|---|---|")
    for pct, d_, s in sym[:25]:
        L.append(f"| {pct:.2f} % | `{d_}` | `{s[:80]}` |")
else:
    L.append("No samples.")
L.append("")
L.append(f"Tools: {env['perf']}, {env['strace']}; the VM has no hardware PMU counters, so perf "
         "samples the `cpu-clock` software event.")
open(out_md, "w").write("\n".join(L) + "\n")
print(f"wrote {out_md}")
PY
