#!/usr/bin/env bash
# System-level comparison of tlsfront with nginx and HAProxy as TLS-terminating reverse proxies in
# front of the same echo backend, all on 127.0.0.1, each server with one worker and the same
# ECDSA P-256 certificate, session cache and tickets on, keep-alive upstream pools, no access log.
#
# Usage: bench/load/compare.sh [SECONDS_PER_CELL] [ROUNDS]        (defaults 5 and 3)
#   env CELLS="full12 wrk-ka ..."  run only these cells (default: all seven, see CELL_DESC below)
#   env KEEP_TMP=1                 keep the temp dir (configs, error logs, raw client output)
#   env OUT=/tmp/try               write /tmp/try.{md,tsv,png} instead of the dated results
#                                  (for partial runs that must not replace the published ones)
#
# Cells: tlsfront-loadgen modes (full TLS 1.2, full TLS 1.3, TLS 1.2 session-ID resumption,
# TLS 1.2 ticket resumption, TLS 1.3 PSK resumption; 32 connections, one handshake per
# connection) and wrk (-t1 -c64) keep-alive and Connection: close. Rounds are interleaved (for
# round, for cell, for server, the server order rotating each round). For every run the server's
# CPU seconds are read from /proc/<pid>/stat (utime+stime of all its processes) before and after,
# so the main figure is work done per server CPU-second, which stays meaningful on a small
# machine where client, server and backend share the cores.
#
# Needs a release build (scripts/build release: src/tlsfront, tools/tlsfront-echo-backend,
# tools/tlsfront-loadgen) and the packages from scripts/install-deps (nginx, haproxy, wrk,
# gnuplot-nox, openssl, curl). Builds and installs nothing.
# Writes bench/results/<date>-load.md, -load.tsv (raw, one line per run) and -load.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/load/lib.sh

secs="${1:-5}"
rounds="${2:-3}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ && "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_CELL] [ROUNDS]   (positive integers; defaults 5 and 3)" >&2
  exit 2
fi

bin=build/release
tlsfront_bin=$bin/src/tlsfront
backend_bin=$bin/tools/tlsfront-echo-backend
loadgen_bin=$bin/tools/tlsfront-loadgen
for t in nginx haproxy wrk gnuplot openssl curl python3 pgrep timeout; do
  if ! command -v "$t" >/dev/null; then
    echo "compare.sh: '$t' not found: run scripts/install-deps first" >&2
    exit 1
  fi
done

all_cells=(full12 full13 id ticket12 ticket13 wrk-ka wrk-close)
declare -A CELL_DESC=(
  [full12]="full handshake, TLS 1.2 (loadgen --mode full --tls 1.2)"
  [full13]="full handshake, TLS 1.3 (loadgen --mode full --tls 1.3)"
  [id]="TLS 1.2 session-ID resumption, no tickets (loadgen --mode id)"
  [ticket12]="TLS 1.2 ticket resumption (loadgen --mode ticket12)"
  [ticket13]="TLS 1.3 PSK resumption (loadgen --mode ticket13)"
  [wrk-ka]="HTTP/1.1 keep-alive requests (wrk -t1 -c64)"
  [wrk-close]="one request per connection (wrk -t1 -c64 -H 'Connection: close'); wrk's OpenSSL client re-offers its last session on each reconnect, so nearly every connection is a TLS 1.3 ticket resumption"
)
if [ -n "${CELLS:-}" ]; then
  read -r -a cells <<<"$CELLS"
  for c in "${cells[@]}"; do
    if [ -z "${CELL_DESC[$c]+x}" ]; then
      echo "compare.sh: unknown cell '$c' (known: ${all_cells[*]})" >&2
      exit 2
    fi
  done
else
  cells=("${all_cells[@]}")
fi
need=("$tlsfront_bin" "$backend_bin")
for c in "${cells[@]}"; do
  [[ "$c" == wrk-* ]] || { need+=("$loadgen_bin"); break; }
done
for b in "${need[@]}"; do
  if [ ! -x "$b" ]; then
    echo "compare.sh: $b is missing: run scripts/build release first" >&2
    exit 1
  fi
done
servers=(tlsfront nginx haproxy)
conns_loadgen=32
conns_wrk=64
client_limit=$((secs + 30))   # hard limit on one client run
hz=$(getconf CLK_TCK)

day=$(date +%F)
results=bench/results
mkdir -p "$results"
out_base=${OUT:-$results/$day-load}
out_md=$out_base.md
out_tsv=$out_base.tsv
out_png=$out_base.png

work=$(mktemp -d /tmp/tlsfront-compare-XXXXXX)
declare -A PID=() PORT=() UP=()
bg_pids=()
cleanup() {
  local rc=$?
  for p in "${bg_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for p in "${bg_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP_TMP:-0}" = 1 ] || [ "$rc" != 0 ]; then
    echo "compare.sh: temp dir kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%T)] $*" >&2; }

# ---- certificate: one ECDSA P-256 self-signed cert for all servers ----------------------------
scripts/gen-self-signed "$work/cert.pem" "$work/key.pem" localhost
cat "$work/cert.pem" "$work/key.pem" >"$work/haproxy.pem"
chmod 600 "$work/haproxy.pem"

# ---- echo backend -----------------------------------------------------------------------------
"$backend_bin" --listen 127.0.0.1:0 --threads 1 --port-file "$work/backend.port" \
  >"$work/backend.out" 2>"$work/backend.err" &
bg_pids+=($!)
if ! wait_for_file "$work/backend.port" 200; then
  echo "compare.sh: echo backend did not start:" >&2
  cat "$work/backend.err" >&2
  exit 1
fi
bport=$(cat "$work/backend.port")
expect_body="hello from tlsfront-echo-backend"
if ! curl -s --max-time 5 "http://127.0.0.1:$bport/" | grep -q "$expect_body"; then
  echo "compare.sh: echo backend on port $bport does not answer '$expect_body'" >&2
  exit 1
fi

# ---- tlsfront ---------------------------------------------------------------------------------
bench_tlsfront_config "$work" "$bport"
"$tlsfront_bin" -c "$work/tlsfront.toml" --ports-file "$work/tlsfront.ports" \
  >"$work/tlsfront.out" 2>"$work/tlsfront.err" &
PID[tlsfront]=$!
bg_pids+=($!)
if wait_for_file "$work/tlsfront.ports" 200; then
  PORT[tlsfront]=$(awk '/^https /{n=split($2,a,":"); print a[n]}' "$work/tlsfront.ports")
else
  log "tlsfront did not write its ports file: $(tail -3 "$work/tlsfront.err" "$work/tlsfront-error.log" 2>/dev/null | tr '\n' ' ')"
  PORT[tlsfront]=0
fi

# ---- nginx ------------------------------------------------------------------------------------
PORT[nginx]=$(free_port)
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $work/nginx/nginx.pid;
error_log $work/nginx-error.log warn;
events {
    worker_connections 8192;
}
http {
    access_log off;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    # nginx closes a keep-alive connection after 1000 requests by default; HAProxy and tlsfront
    # do not, so lift the limit on both sides to keep the servers configured alike.
    keepalive_requests 1000000;
    upstream echo {
        server 127.0.0.1:$bport;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} ssl;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 5m;
        ssl_session_tickets on;
        location / {
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
nginx -p "$work/nginx" -e "$work/nginx-error.log" -c "$work/nginx/nginx.conf" \
  >"$work/nginx.out" 2>"$work/nginx.err" &
PID[nginx]=$!
bg_pids+=($!)

# ---- HAProxy ----------------------------------------------------------------------------------
PORT[haproxy]=$(free_port)
cat >"$work/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 8192
    # tune.ssl.cachesize: default (20000 sessions); tickets: on by default
    ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend https
    bind 127.0.0.1:${PORT[haproxy]} ssl crt $work/haproxy.pem alpn http/1.1
    default_backend echo

backend echo
    server echo1 127.0.0.1:$bport
CONF
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.out" 2>"$work/haproxy-error.log" &
PID[haproxy]=$!
bg_pids+=($!)

# ---- health checks ----------------------------------------------------------------------------
for s in "${servers[@]}"; do
  UP[$s]=0
  [ "${PORT[$s]}" = 0 ] && continue
  for _ in $(seq 100); do
    if curl -sk --max-time 2 "https://127.0.0.1:${PORT[$s]}/" 2>/dev/null | grep -q "$expect_body"; then
      UP[$s]=1
      break
    fi
    kill -0 "${PID[$s]}" 2>/dev/null || break
    sleep 0.1
  done
  if [ "${UP[$s]}" = 1 ]; then
    log "$s up on 127.0.0.1:${PORT[$s]} (pid ${PID[$s]})"
  else
    log "WARNING: $s does not answer '$expect_body' on port ${PORT[$s]}; its cells record NaN"
  fi
done
if [ "${UP[tlsfront]}${UP[nginx]}${UP[haproxy]}" = 000 ]; then
  echo "compare.sh: no server came up; see the error logs in $work" >&2
  exit 1
fi

# What each server negotiates (checks that the set-ups are alike).
: >"$work/negotiated.tsv"
for s in "${servers[@]}"; do
  for v in 1.2 1.3; do
    line=NaN
    if [ "${UP[$s]}" = 1 ]; then
      line=$(timeout 10 openssl s_client -connect "127.0.0.1:${PORT[$s]}" -servername localhost \
        "-tls${v/./_}" -alpn http/1.1 </dev/null 2>/dev/null |
        awk -F': ' '/^New, /{split($0,a,"Cipher is "); c=a[2]} /Server Temp Key/{k=$2}
                    /ALPN protocol/{p=$2} END{printf "%s, %s, ALPN %s", c, k, p}') || line=NaN
    fi
    printf '%s\t%s\t%s\n' "$s" "$v" "$line" >>"$work/negotiated.tsv"
  done
done

# ---- measurement ------------------------------------------------------------------------------
server_pids() {  # all processes of server $1 (nginx: master + workers)
  local p=${PID[$1]}
  echo "$p"
  pgrep -P "$p" || true
}
cpu_ticks() {  # utime+stime (fields 14, 15) summed over the given pids
  local total=0 p f
  for p in "$@"; do
    # drop "pid (comm) " so a comm with spaces cannot shift the fields: field 14 is then $12
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || f=0
    total=$((total + ${f:-0}))
  done
  echo "$total"
}

tsv_header="round	cell	server	position	throughput_per_s	completed	duration_s	server_cpu_s	per_server_cpu_s	resumed_share	errors	bad_responses	client_cpu_s	p50_us	p99_us	note"
raw_tsv=$work/runs.tsv
echo "$tsv_header" >"$raw_tsv"

nan_row() {  # round cell server position note
  printf '%s\t%s\t%s\t%s\tNaN\tNaN\tNaN\tNaN\tNaN\tNaN\tNaN\tNaN\tNaN\tNaN\tNaN\t%s\n' "$@" >>"$raw_tsv"
}

# Turns one client output (loadgen JSON or wrk text) plus the server CPU seconds into the
# throughput fields of a TSV row; prints nothing and fails when the output is unusable.
parse_client() {  # kind file cpu_s
  python3 - "$@" <<'PY'
import json, math, re, sys
kind, path, cpu = sys.argv[1], sys.argv[2], float(sys.argv[3])
nan = float("nan")
def fmt(x):
    return "NaN" if x is None or (isinstance(x, float) and math.isnan(x)) else (
        f"{x:.6g}" if isinstance(x, float) else str(x))
if kind == "loadgen":
    d = json.load(open(path))
    done = d["handshakes"]
    thr = d["handshakes_per_s"]
    dur = d.get("duration_s", nan)
    res = d.get("resumed_share", nan)
    err = d.get("errors", nan)
    bad = d.get("bad_responses", nan)
    ccpu = d.get("client_cpu_s", nan)
    lat = d.get("latency_us", {}) or {}
    p50, p99 = lat.get("p50", nan), lat.get("p99", nan)
else:
    t = open(path).read()
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", t)
    r = re.search(r"Requests/sec:\s*([\d.]+)", t)
    if not m or not r:
        sys.exit(1)
    done = int(m.group(1))
    dur = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    thr = float(r.group(1))
    err, bad = 0, 0
    s = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    if s:
        err += sum(int(x) for x in s.groups())
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    if n:
        bad = int(n.group(1))
    def us(v, unit):
        return float(v) * {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]
    p = dict((k, us(v, u)) for k, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", t, re.M))
    p50, p99 = p.get("50", nan), p.get("99", nan)
    res, ccpu = nan, nan
per = done / cpu if cpu > 0 else nan
print("\t".join(fmt(x) for x in (float(thr), done, float(dur), cpu, per, res, err, bad, ccpu, p50, p99)))
PY
}

run_one() {  # round cell server position
  local round=$1 cell=$2 s=$3 pos=$4
  local port=${PORT[$s]} tag="r${round}-${cell}-${s}" out kind rc=0 note=ok
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
  local pids
  mapfile -t pids < <(server_pids "$s")
  local before after
  before=$(cpu_ticks "${pids[@]}")
  case $cell in
    wrk-ka | wrk-close)
      kind=wrk
      out=$work/$tag.txt
      local hdr=()
      [ "$cell" = wrk-close ] && hdr=(-H 'Connection: close')
      timeout -k 5 "$client_limit" wrk -t1 -c"$conns_wrk" -d"${secs}s" --latency "${hdr[@]}" \
        "https://127.0.0.1:$port/" >"$out" 2>&1 || rc=$?
      ;;
    *)
      kind=loadgen
      out=$work/$tag.json
      local mode=$cell tls=()
      case $cell in
        full12) mode=full tls=(--tls 1.2) ;;
        full13) mode=full tls=(--tls 1.3) ;;
      esac
      timeout -k 5 "$client_limit" "$loadgen_bin" --host 127.0.0.1 --port "$port" --sni localhost \
        --mode "$mode" "${tls[@]}" --connections "$conns_loadgen" --duration "$secs" \
        --json "$out" >"$work/$tag.out" 2>&1 || rc=$?
      ;;
  esac
  after=$(cpu_ticks "${pids[@]}")
  local cpu
  cpu=$(awk -v a="$before" -v b="$after" -v hz="$hz" 'BEGIN{printf "%.3f", (b - a) / hz}')
  [ "$rc" != 0 ] && note="client exit $rc"
  local fields
  if [ -s "$out" ] && fields=$(parse_client "$kind" "$out" "$cpu" 2>"$work/$tag.parse-err"); then
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$cell" "$s" "$pos" "$fields" "$note" >>"$raw_tsv"
  else
    log "WARNING: $tag: no usable client output ($note); recorded NaN (see $out)"
    nan_row "$round" "$cell" "$s" "$pos" "no output; $note"
  fi
  if ! kill -0 "${PID[$s]}" 2>/dev/null; then
    UP[$s]=0
    log "WARNING: $s exited during $tag"
  fi
  log "$(tail -1 "$raw_tsv" | awk -F'\t' '{printf "round %s %-9s %-8s %10s/s  %8s per server CPU-s  cpu %ss  errors %s  %s", $1, $2, $3, $5, $9, $8, $11 "+" $12, $16}')"
}

start=$(date +%s)
log "cells: ${cells[*]}; ${secs}s each, ${rounds} rounds, servers ${servers[*]}"
log "estimated time: $((${#cells[@]} * ${#servers[@]} * rounds * (secs + 1) / 60 + 1)) min"
for round in $(seq "$rounds"); do
  off=$(((round - 1) % ${#servers[@]}))
  order=("${servers[@]:off}" "${servers[@]:0:off}")
  for cell in "${cells[@]}"; do
    pos=0
    for s in "${order[@]}"; do
      pos=$((pos + 1))
      run_one "$round" "$cell" "$s" "$pos"
      sleep 0.5   # let TIME_WAIT and the servers' deferred work settle between runs
    done
  done
done
elapsed=$(($(date +%s) - start))
cp "$raw_tsv" "$out_tsv"

# ---- environment ------------------------------------------------------------------------------
env_file=$work/env.txt
{
  echo "date	$(date '+%F %T %Z')"
  echo "nproc	$(nproc)"
  echo "cpu	$(lscpu | awk -F': *' '/^Model name/{print $2; exit}')"
  echo "memory	$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel	$(uname -sr)"
  echo "nginx	$(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "haproxy_line	$(haproxy -v | head -1)"
  echo "haproxy	HAProxy $(haproxy -v | head -1 | awk '{print $3}')"
  echo "haproxy_ssl	$(haproxy -vv | awk -F': ' '/Running on OpenSSL version/{print $2}')"
  echo "tlsfront	$(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "openssl	$(openssl version)"
  echo "boringssl	$(dpkg-query -W android-libboringssl 2>/dev/null | awk '{print $2}' || echo unknown)"
  echo "wrk	$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
  echo "sysctl	tcp_tw_reuse=$(sysctl -n net.ipv4.tcp_tw_reuse 2>/dev/null), ip_local_port_range=$(sysctl -n net.ipv4.ip_local_port_range 2>/dev/null | tr '\t' '-')"
  echo "command	bench/load/compare.sh $secs $rounds${CELLS:+ (CELLS=\"$CELLS\")}"
  echo "elapsed	$elapsed"
} >"$env_file"

errlogs=$work/errlogs.txt
: >"$errlogs"
for f in tlsfront-error.log tlsfront.err nginx-error.log nginx.err haproxy-error.log backend.err; do
  if [ -s "$work/$f" ]; then
    echo "== $f ($(wc -l <"$work/$f") lines)" >>"$errlogs"
    head -5 "$work/$f" | cut -c1-200 >>"$errlogs"
  fi
done

# ---- report -----------------------------------------------------------------------------------
desc_file=$work/cells.txt
: >"$desc_file"
for c in "${cells[@]}"; do printf '%s\t%s\n' "$c" "${CELL_DESC[$c]}" >>"$desc_file"; done
plot_dat=$work/plot.dat

python3 - "$raw_tsv" "$env_file" "$desc_file" "$work/negotiated.tsv" "$errlogs" "$out_md" \
  "$plot_dat" "$out_png" "$out_tsv" <<'PY'
import csv, math, statistics, sys
raw, envf, descf, negf, errf, out_md, plot_dat, out_png, out_tsv = sys.argv[1:]
servers = ["tlsfront", "nginx", "haproxy"]
env = dict(l.rstrip("\n").split("\t", 1) for l in open(envf) if "\t" in l)
cells = [l.rstrip("\n").split("\t", 1) for l in open(descf)]
rows = list(csv.DictReader(open(raw), delimiter="\t"))

def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan

def vals(cell, server, key):
    v = [num(r[key]) for r in rows if r["cell"] == cell and r["server"] == server]
    return [x for x in v if not math.isnan(x)]

def med(v):
    return statistics.median(v) if v else math.nan

def f(x, digits=3):
    if math.isnan(x):
        return "NaN"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"

def runs(cell, server):
    return [r for r in rows if r["cell"] == cell and r["server"] == server]

L = []
L.append(f"# Load comparison: tlsfront vs nginx vs HAProxy — {env['date'].split()[0]}")
L.append("")
L.append("TLS-terminating reverse proxies in front of the same plain-HTTP echo backend "
         "(`tlsfront-echo-backend --threads 1`), everything on 127.0.0.1. Each server runs one "
         "worker (nginx `worker_processes 1`, HAProxy `nbthread 1`, tlsfront `threads = 1`), "
         "TLS 1.2 and 1.3, the same ECDSA P-256 self-signed certificate, session cache and "
         "session tickets on, keep-alive upstream connections to the backend, access logs off.")
L.append("")
L.append("The machine's cores are shared by the client, the server and the backend, so raw "
         "throughput is partly a measure of the client. The main figure is **work per server "
         "CPU-second**: handshakes (or requests) completed divided by the server's user+system "
         "CPU time during the run (`/proc/<pid>/stat` fields 14+15 of every process of the "
         "server, nginx master and worker included).")
L.append("")
L.append("## Set-up")
L.append("")
L.append(f"- Date: {env['date']}")
L.append(f"- Machine: {env['nproc']} cores, {env['cpu']}, {env['memory']} memory, {env['kernel']}; "
         f"{env['sysctl']}")
L.append(f"- {env['nginx']} (`nginx -v`), `{env['haproxy_line']}` (`haproxy -v`); both on "
         f"{env['haproxy_ssl']} (`{env['openssl']}`)")
L.append(f"- tlsfront commit `{env['tlsfront']}` (release preset), BoringSSL "
         f"`android-libboringssl` {env['boringssl']}; clients: tlsfront-loadgen (same build), {env['wrk']}")
L.append(f"- Command: `{env['command']}` (wall time {int(env['elapsed'])//60} min "
         f"{int(env['elapsed'])%60} s)")
L.append("- Rounds are interleaved: for each round, for each cell, for each server, the server "
         "order rotating each round. Medians over rounds; range is min–max.")
L.append("")
L.append("Cells:")
L.append("")
for c, d in cells:
    L.append(f"- `{c}`: {d}")
L.append("")
L.append("loadgen: `tlsfront-loadgen --host 127.0.0.1 --port PORT --sni localhost --mode MODE "
         "[--tls V] --connections 32 --duration S --json OUT`; wrk: `wrk -t1 -c64 -dSs --latency "
         "[-H 'Connection: close'] https://127.0.0.1:PORT/`. Each loadgen connection does "
         "connect, handshake, one `GET /` with `Connection: close` and checks the echo body; "
         "loadgen runs one thread.")
L.append("")
neg = [l.rstrip("\n").split("\t") for l in open(negf)]
if neg:
    L.append("Negotiated by `openssl s_client` (cipher, key exchange, ALPN):")
    L.append("")
    L.append("| server | TLS 1.2 | TLS 1.3 |")
    L.append("|---|---|---|")
    for s in servers:
        d = {v: t for (srv, v, t) in neg if srv == s}
        L.append(f"| {s} | {d.get('1.2', 'NaN')} | {d.get('1.3', 'NaN')} |")
    L.append("")

L.append("## Throughput")
L.append("")
L.append("Per cell and server: median throughput (handshakes/s or requests/s) with its range "
         "over rounds, and median completed per server CPU-second.")
L.append("")
hdr = ["cell"]
for s in servers:
    hdr += [f"{s} /s (range)", f"{s} per CPU-s"]
L.append("| " + " | ".join(hdr) + " |")
L.append("|" + "---|" * len(hdr))
summary = {}
for c, _ in cells:
    line = [f"`{c}`"]
    for s in servers:
        t = vals(c, s, "throughput_per_s")
        p = vals(c, s, "per_server_cpu_s")
        summary[(c, s)] = med(p)
        rng = f" ({f(min(t))}–{f(max(t))})" if t else ""
        line += [f"{f(med(t))}{rng}", f"{f(med(p))}"]
    L.append("| " + " | ".join(line) + " |")
L.append("")

L.append("## tlsfront relative to the better of nginx and HAProxy (per server CPU-second)")
L.append("")
L.append("| cell | tlsfront per CPU-s | best other | ratio tlsfront / best |")
L.append("|---|---|---|---|")
ratios = {}
for c, _ in cells:
    t = summary[(c, "tlsfront")]
    others = [(summary[(c, s)], s) for s in ("nginx", "haproxy") if not math.isnan(summary[(c, s)])]
    if others:
        bv, bs = max(others)
        r = t / bv if bv > 0 and not math.isnan(t) else math.nan
        ratios[c] = r
        L.append(f"| `{c}` | {f(t)} | {f(bv)} ({bs}) | **{f(r)}** |")
    else:
        ratios[c] = math.nan
        L.append(f"| `{c}` | {f(t)} | NaN | NaN |")
L.append("")

L.append("## Resumption, errors and CPU")
L.append("")
L.append("Per cell and server: median resumed share (loadgen), errors summed over rounds "
         "(loadgen: failed connections or handshakes; wrk: socket errors), bad responses summed "
         "(loadgen: response without the echo body; wrk: non-2xx), median server and client "
         "CPU seconds per run (client: loadgen only), median p50 and p99 latency (loadgen: "
         "connect + handshake + one request; wrk: per request).")
L.append("")
L.append("| cell | server | resumed | errors | bad responses | server CPU s | client CPU s | p50 µs | p99 µs |")
L.append("|---|---|---|---|---|---|---|---|---|")
for c, _ in cells:
    for s in servers:
        e = vals(c, s, "errors")
        b = vals(c, s, "bad_responses")
        failed = sum(1 for r in runs(c, s) if math.isnan(num(r["throughput_per_s"])))
        err = f"{int(sum(e))}" if e else "NaN"
        if failed:
            err += f" ({failed} failed runs)"
        res = med(vals(c, s, "resumed_share"))
        L.append(f"| `{c}` | {s} | " + " | ".join([
            f"{res:.3f}" if not math.isnan(res) else "–", err,
            f"{int(sum(b))}" if b else "NaN",
            f(med(vals(c, s, "server_cpu_s"))), f(med(vals(c, s, "client_cpu_s"))),
            f(med(vals(c, s, "p50_us"))), f(med(vals(c, s, "p99_us")))]) + " |")
L.append("")

odd = [r for r in rows if r["note"] != "ok"]
if odd:
    L.append("Runs with notes:")
    L.append("")
    for r in odd:
        L.append(f"- round {r['round']} `{r['cell']}` {r['server']}: {r['note']}")
    L.append("")
errtxt = open(errf).read().strip()
L.append("## Server error logs")
L.append("")
if errtxt:
    L.append("First lines of each non-empty log:")
    L.append("")
    L.append("```")
    L.append(errtxt)
    L.append("```")
else:
    L.append("All empty (level warn).")
L.append("")
L.append(f"Chart: `{out_png.split('/')[-1]}` (median per server CPU-second, log scale). "
         f"Raw runs, one line each: `{out_tsv.split('/')[-1]}`.")
open(out_md, "w").write("\n".join(L) + "\n")

with open(plot_dat, "w") as o:
    o.write("cell\t" + "\t".join(servers) + "\n")
    for c, _ in cells:
        o.write(c + "\t" + "\t".join(
            ("NaN" if math.isnan(summary[(c, s)]) or summary[(c, s)] <= 0 else f"{summary[(c, s)]:.6g}")
            for s in servers) + "\n")

# Short stdout summary.
print(f"{'cell':<10}" + "".join(f"{s + ' /CPU-s':>18}" for s in servers) + f"{'ratio':>8}")
for c, _ in cells:
    print(f"{c:<10}" + "".join(f"{f(summary[(c, s)]):>18}" for s in servers) + f"{f(ratios[c]):>8}")
PY

# gnuplot lists its terminals on stderr; pngcairo (gnuplot-nox has it) draws better than png.
if gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo; then
  term="pngcairo size 1100,600 font 'sans,10'"
else
  term="png size 1100,600"
fi
if ! gnuplot <<GP 2>"$work/gnuplot.err"; then
set terminal $term
set output '$out_png'
set title "tlsfront vs nginx vs HAProxy (one worker each): median handshakes or requests per server CPU-second\n$day, ${secs} s x ${rounds} rounds, $(nproc) cores, log scale"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [*:*]
set ylabel "handshakes or requests per server CPU-second"
set grid ytics
set key top left
set datafile separator "\t"
set datafile missing "NaN"
plot '$plot_dat' using 2:xtic(1) title columnheader(2) lc rgb '#1b9e77', \
     '' using 3 title columnheader(3) lc rgb '#d95f02', \
     '' using 4 title columnheader(4) lc rgb '#7570b3'
GP
  log "WARNING: gnuplot failed: $(head -3 "$work/gnuplot.err")"
fi

echo
echo "wrote $out_md"
echo "wrote $out_tsv"
[ -s "$out_png" ] && echo "wrote $out_png"
failed=$(awk -F'\t' 'NR > 1 && $5 == "NaN"' "$out_tsv" | wc -l)
if [ "$failed" != 0 ]; then
  echo "WARNING: $failed of $(($(wc -l <"$out_tsv") - 1)) runs failed (NaN); see the notes in $out_md"
fi
