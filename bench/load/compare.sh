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

secs="${1:-5}"
rounds="${2:-3}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ && "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_CELL] [ROUNDS]   (positive integers; defaults 5 and 3)" >&2
  exit 2
fi
die() {
  echo "compare.sh: $*" >&2
  exit 1
}
log() { echo "[$(date +%T)] $*" >&2; }

# ---- settings ---------------------------------------------------------------------------------
variant=${VARIANT:-pinned}
pin=${PIN:-1}
server_cpu=${SERVER_CPU:-1}
client_cpu=${CLIENT_CPU:-0}
case $variant in
  pinned)
    workers=1
    if [ "$pin" = 0 ]; then variant=1w; fi
    ;;
  1w) workers=1 pin=0 ;;
  2w) workers=2 pin=0 ;;
  *) die "VARIANT must be pinned, 1w or 2w (got '$variant')" ;;
esac
srv_cpus="" cli_cpus=""
if [ "$pin" = 1 ]; then
  [ "$(nproc)" -ge 2 ] || die "the pinned variant needs 2 CPUs (nproc is $(nproc)); use VARIANT=1w"
  [ "$server_cpu" != "$client_cpu" ] || die "SERVER_CPU and CLIENT_CPU must differ"
  srv_cpus=$server_cpu
  cli_cpus=$client_cpu
fi
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
hz=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/tlsfront-compare-XXXXXX)
cleanup() {
  local rc=$?
  bench_stop_all
  bench_drop_work compare.sh "$work" "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The Debian packages start system services; they would compete for the CPUs.
if command -v service >/dev/null 2>&1; then
  for svc in nginx haproxy h2o hitch; do
    if service "$svc" status >/dev/null 2>&1; then
      log "stopping the system service $svc"
      service "$svc" stop >/dev/null 2>&1 || log "WARNING: could not stop the system service $svc"
    fi
  done
fi

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
idle0=$(bench_cpu_busy "")
sleep 1
idle1=$(bench_cpu_busy "")
busy_before=$(awk -v x="$idle0" -v y="$idle1" 'BEGIN{split(x, a, " "); split(y, b, " ");
  d = b[2] - a[2]; if (d > 0) printf "%.0f", 100 * (b[1] - a[1]) / d; else print 0}')
if [ "$busy_before" -gt 10 ]; then
  log "WARNING: the machine is ${busy_before} % busy before the run (other users' processes): the results will be noisy; the report says how much of the server's CPU others took in each cell"
fi

# ---- certificate: one ECDSA P-256 self-signed cert for all servers ----------------------------
scripts/gen-self-signed "$work/cert.pem" "$work/key.pem" localhost
cat "$work/cert.pem" "$work/key.pem" >"$work/combined.pem"
chmod 600 "$work/combined.pem"

# ---- backend ----------------------------------------------------------------------------------
bench_start_backend "$backend_kind" "$work" "$cli_cpus" || die "the backend did not start"
bport=$BACKEND_PORT
expect_body=$BACKEND_EXPECT
log "backend: $BACKEND_DESC on 127.0.0.1:$bport (pid $BACKEND_PID)"

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

start_nginx() {
  local d=$work/nginx
  PORT[nginx]=$(free_port)
  mkdir -p "$d/logs"
  cat >"$d/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes $workers;
user root;
pid $d/nginx.pid;
error_log $work/nginx-error.log warn;
events {
    worker_connections 8192;
}
http {
    access_log off;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    # nginx closes a keep-alive connection after 1000 requests by default; the other servers
    # do not, so lift the limit on both sides to keep the servers configured alike.
    keepalive_requests 1000000;
    upstream backend {
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
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
  CONF[nginx]=$d/nginx.conf
  bench_spawn "$srv_cpus" "$work/nginx.out" "$work/nginx.err" \
    nginx -p "$d" -e "$work/nginx-error.log" -c "$d/nginx.conf"
  PID[nginx]=$SPAWNED_PID
}

start_haproxy() {
  PORT[haproxy]=$(free_port)
  cat >"$work/haproxy.cfg" <<CONF
global
    nbthread $workers
    maxconn 8192
    # tune.ssl.cachesize: default (20000 sessions, shared by the threads); tickets: on by default
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
    bind 127.0.0.1:${PORT[haproxy]} ssl crt $work/combined.pem alpn http/1.1
    default_backend backend

backend backend
    server b1 127.0.0.1:$bport
CONF
  CONF[haproxy]=$work/haproxy.cfg
  bench_spawn "$srv_cpus" "$work/haproxy.out" "$work/haproxy-error.log" \
    haproxy -f "$work/haproxy.cfg" -db
  PID[haproxy]=$SPAWNED_PID
}

start_h2o() {
  PORT[h2o]=$(free_port)
  # neverbleed OFF: by default H2O 2.2 signs in a separate helper process (privilege
  # separation); the other servers sign in-process, so this is H2O at its fastest.
  # ssl-session-resumption mode all: OpenSSL's internal session cache (one process, shared by
  # its threads) and tickets with internally generated and rotated keys.
  cat >"$work/h2o.conf" <<CONF
user: root
num-threads: $workers
error-log: $work/h2o-error.log
pid-file: $work/h2o.pid
ssl-session-resumption:
  mode: all
  cache-store: internal
  ticket-store: internal
listen:
  host: 127.0.0.1
  port: ${PORT[h2o]}
  ssl:
    certificate-file: $work/cert.pem
    key-file: $work/key.pem
    minimum-version: TLSv1.2
    ocsp-update-interval: 0
    neverbleed: OFF
proxy.timeout.keepalive: 60000
proxy.emit-via-header: OFF
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://127.0.0.1:$bport/
CONF
  CONF[h2o]=$work/h2o.conf
  bench_spawn "$srv_cpus" "$work/h2o.out" "$work/h2o.err" h2o -m worker -c "$work/h2o.conf"
  PID[h2o]=$SPAWNED_PID
}

start_hitch() {
  PORT[hitch]=$(free_port)
  # Debian's hitch is built without --enable-sessioncache (its shared cache across workers), so
  # 'session-cache' is refused; OpenSSL's built-in server cache (per worker process, 20,480
  # sessions) and tickets (OpenSSL's default; the keys are made before the workers fork, so they
  # share them) are on. TCP mode: each client connection gets its own backend connection.
  cat >"$work/hitch.conf" <<CONF
frontend = "[127.0.0.1]:${PORT[hitch]}"
backend = "[127.0.0.1]:$bport"
pem-file = "$work/combined.pem"
tls-protos = TLSv1.2 TLSv1.3
alpn-protos = "http/1.1"
workers = $workers
backlog = 1024
daemon = off
user = "root"
group = "root"
log-level = 1
ocsp-dir = ""
CONF
  CONF[hitch]=$work/hitch.conf
  bench_spawn "$srv_cpus" "$work/hitch.out" "$work/hitch-error.log" hitch --config="$work/hitch.conf"
  PID[hitch]=$SPAWNED_PID
}

for s in "${servers[@]}"; do
  UP[$s]=0
  "start_$s"
done

# ---- health checks: one curl each, then what each negotiates and resumes ----------------------
for s in "${servers[@]}"; do
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
    mapfile -t tree < <(bench_tree "${PID[$s]}")
    AFF[$s]=$(bench_affinity "${tree[@]}")
    if [ "$pin" = 1 ] && [ "${AFF[$s]}" != "$server_cpu" ]; then
      # hitch binds its worker N to CPU N itself, after taskset: move it back
      bench_repin "$server_cpu" "${tree[@]}"
      log "$s had set its own CPU affinity (its threads on CPUs '${AFF[$s]}'): re-pinned to CPU $server_cpu"
      REPINNED[$s]=${AFF[$s]}
      AFF[$s]=$(bench_affinity "${tree[@]}")
      [ "${AFF[$s]}" = "$server_cpu" ] || log "WARNING: $s still runs on CPUs '${AFF[$s]}', not $server_cpu alone"
    fi
    log "$s up on 127.0.0.1:${PORT[$s]} (pids ${tree[*]}, CPUs ${AFF[$s]})"
  else
    if [ -z "${WHY[$s]:-}" ]; then
      WHY[$s]="does not answer '$expect_body' on port ${PORT[$s]}: $({ cat "$work/$s"*.err "$work/$s-error.log" 2>/dev/null || true; } | sed '/^$/d' | tail -2 | tr '\n' ' ' | cut -c1-300)"
    fi
    log "WARNING: $s is skipped (its cells record NaN): ${WHY[$s]}"
  fi
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

# times(1) prints the shell's and its waited-for children's user and system time; the child
# part's growth over a client run is the client's CPU (its timeout and taskset wrappers exec or
# sleep).
children_cpu() {  # file written by `times` -> seconds
  awk 'NR == 2 {
    n = split($0, f, " "); s = 0
    for (i = 1; i <= n; i++) { split(f[i], a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] }
    print s }' "$1"
}
busy_pct() {  # "b0 t0" "b1 t1" -> percent
  awk -v x="$1" -v y="$2" 'BEGIN{split(x, a, " "); split(y, b, " ");
    d = b[2] - a[2]; if (d > 0) printf "%.1f", 100 * (b[1] - a[1]) / d; else print "NaN"}'
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
  local pids bpids out=$work/$tag.out
  mapfile -t pids < <(bench_tree "${PID[$s]}")
  mapfile -t bpids < <(bench_tree "$BACKEND_PID")
  local before bbefore sb0 cb0 t0 after bafter sb1 cb1 t1
  before=$(bench_cpu_ticks "${pids[@]}")
  bbefore=$(bench_cpu_ticks "${bpids[@]}")
  sb0=$(bench_cpu_busy "$srv_cpus")
  cb0=$(bench_cpu_busy "$cli_cpus")
  t0=$(date +%s.%N)
  times >"$work/times0"
  bench_run_client "$client" "$mode" "$port" "$secs" "$conns" "$out" "$cli_cpus" "$client_threads" || rc=$?
  times >"$work/times1"
  t1=$(date +%s.%N)
  after=$(bench_cpu_ticks "${pids[@]}")
  bafter=$(bench_cpu_ticks "${bpids[@]}")
  sb1=$(bench_cpu_busy "$srv_cpus")
  cb1=$(bench_cpu_busy "$cli_cpus")
  local cpu bcpu wall ccpu sbusy cbusy
  cpu=$(awk -v a="$before" -v b="$after" -v hz="$hz" 'BEGIN{printf "%.3f", (b - a) / hz}')
  bcpu=$(awk -v a="$bbefore" -v b="$bafter" -v hz="$hz" 'BEGIN{printf "%.3f", (b - a) / hz}')
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
  ccpu=$(awk -v a="$(children_cpu "$work/times0")" -v b="$(children_cpu "$work/times1")" 'BEGIN{printf "%.3f", b - a}')
  sbusy=$(busy_pct "$sb0" "$sb1")
  cbusy=NaN
  [ "$pin" = 1 ] && cbusy=$(busy_pct "$cb0" "$cb1")
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
  echo "haproxy	HAProxy $(haproxy -v | head -1 | awk '{print $3}')"
  echo "h2o	H2O $(h2o --version | awk '/^h2o version/{print $3}')"
  echo "hitch	$(hitch --version 2>&1 | head -1)"
  echo "libssl3	$(dpkg-query -W -f='${Version}' libssl3 2>/dev/null || echo unknown)"
  echo "tlsfront	$(git describe --always --dirty 2>/dev/null || echo unknown)"
  if [[ " ${servers[*]} " == *" tlsfront-b "* ]]; then
    echo "tlsfront_b	$B_BIN/src/tlsfront ($(grep -E '^(CMAKE_BUILD_TYPE|TLSFRONT_IO_URING):' "$B_BIN/CMakeCache.txt" 2>/dev/null | tr '\n' ' '))"
  fi
  echo "openssl	$(openssl version)"
  echo "boringssl	$(dpkg-query -W -f='${Version}' android-libboringssl 2>/dev/null || echo unknown)"
  echo "wrk	$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
  echo "sysctl	tcp_tw_reuse=$(sysctl -n net.ipv4.tcp_tw_reuse 2>/dev/null), ip_local_port_range=$(sysctl -n net.ipv4.ip_local_port_range 2>/dev/null | tr '\t' '-')"
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
: >"$errlogs"
for f in tlsfront-error.log tlsfront.err nginx-error.log nginx.err haproxy-error.log h2o-error.log \
  h2o.err hitch-error.log backend.err backend-nginx/error.log; do
  if [ -s "$work/$f" ]; then
    echo "== $f ($(wc -l <"$work/$f") lines)" >>"$errlogs"
    head -5 "$work/$f" | cut -c1-200 >>"$errlogs"
  fi
done

# ---- report -----------------------------------------------------------------------------------
desc_file=$work/cells.txt
: >"$desc_file"
for c in "${cells[@]}"; do printf '%s\t%s\n' "$c" "${CELL_DESC[${c%%/*}]}" >>"$desc_file"; done
why_file=$work/why.tsv
: >"$why_file"
for s in "${servers[@]}"; do
  [ "${UP[$s]}" = 1 ] || [ -z "${WHY[$s]:-}" ] || printf '%s\t%s\n' "$s" "${WHY[$s]}" >>"$why_file"
done
conf_file=$work/confs.txt
: >"$conf_file"
for s in "${servers[@]}"; do
  [ -n "${CONF[$s]:-}" ] && printf '%s\t%s\n' "$s" "${CONF[$s]}" >>"$conf_file"
done
[ "$backend_kind" = nginx ] && printf 'backend nginx\t%s\n' "$work/backend-nginx/nginx.conf" >>"$conf_file"
plot_dat=$work/plot.dat

python3 - "$raw_tsv" "$env_file" "$desc_file" "$work/negotiated.tsv" "$errlogs" "$out_md" \
  "$plot_dat" "$out_png" "$out_tsv" "$why_file" "$conf_file" <<'PY'
import csv, math, statistics, sys
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

def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan

def runs(cell, server):
    return [r for r in rows if r["cell"] == cell and r["server"] == server]

def vals(cell, server, key):
    v = [num(r[key]) for r in runs(cell, server)]
    return [x for x in v if not math.isnan(x)]

def med(v):
    return statistics.median(v) if v else math.nan

def f(x, digits=3):
    if x is None or math.isnan(x):
        return "NaN"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"

def rng(v):
    return f" ({f(min(v))}–{f(max(v))})" if len(v) > 1 else ""

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

CLIENT_BOUND = 90.0   # server CPU % under which a pinned run is called client-bound
OTHER_LOAD = 10.0     # % of the server's CPU used by others above which a pinned run is noisy

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
L.append("Reproduce (from the repository root, release build):")
L.append("")
L.append("    " + env["command"])
L.append("")
L.append(f"tlsfront commit `{env['tlsfront']}`; wall time {int(env['elapsed'])//60} min "
         f"{int(env['elapsed'])%60} s.")
L.append("")
if why:
    L.append("**Servers that could not be measured:**")
    L.append("")
    for s, w in why.items():
        L.append(f"- {s}: {w}")
    L.append("")

# ---- set-up ----
L.append("## Set-up")
L.append("")
L.append(f"- Date: {env['date']}")
if "tlsfront_b" in env:
    L.append(f"- tlsfront-b (the only \"peer\" when listed: ratios read tlsfront ÷ tlsfront-b): "
             f"{env['tlsfront_b']}, same config as tlsfront")
L.append(f"- Machine: {env['nproc']} cores, {env['cpu']}, {env['memory']} memory, {env['kernel']}; "
         f"{env['sysctl']}; {env['busy_before']} % busy over the second before the run started")
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
L.append("Cells:")
L.append("")
for c, d in cells:
    L.append(f"- `{c}`: {d}" + (f"; client {client_of(c)}" if "/" in c else ""))
L.append("")
L.append("loadgen (both clients, the same flags): `tlsfront-loadgen[-openssl] --host 127.0.0.1 "
         f"--port PORT --sni localhost --mode MODE [--tls V] --connections {env['conns']} "
         f"--threads {env['client_threads']} --duration S --expect TEXT --json OUT`: each "
         "connection does connect, handshake, one `GET /` with `Connection: close`, reads the "
         "response until the server closes and checks it. wrk: "
         f"`wrk -t{env['client_threads']} -c{env['conns']} -dSs --latency [-H 'Connection: close'] "
         "https://127.0.0.1:PORT/`.")
L.append("")
neg = [l.rstrip("\n").split("\t") for l in open(negf)]
if neg:
    L.append("Checked before measuring with `openssl s_client` (cipher, key exchange, ALPN; "
             "resumption: a second connection offering the first one's session) and one `curl`:")
    L.append("")
    L.append("| server | TLS 1.2 | TLS 1.3 | session-ID resumption | TLS 1.2 ticket | TLS 1.3 ticket | CPUs of its threads |")
    L.append("|---|---|---|---|---|---|---|")
    for n in neg:
        n += [""] * (7 - len(n))
        L.append(f"| {n[0]} | {n[1]} | {n[2]} | {n[3]} | {n[4]} | {n[5]} | {n[6] or '–'} |")
    L.append("")

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
    L.append("All empty (level warn or error).")
L.append("")
L.append("## Configurations")
L.append("")
L.append("As written for this run (paths are the run's temp dir).")
L.append("")
for name, path in confs:
    try:
        text = open(path).read().rstrip()
    except OSError:
        continue
    L.append(f"<details><summary>{name}</summary>")
    L.append("")
    L.append("```")
    L.append(text)
    L.append("```")
    L.append("")
    L.append("</details>")
    L.append("")
L.append(f"Chart: `{out_png.split('/')[-1]}` (median per server CPU-second, log scale). "
         f"Raw runs, one line each: `{out_tsv.split('/')[-1]}`.")
open(out_md, "w").write("\n".join(L) + "\n")

with open(plot_dat, "w") as o:
    o.write("cell\t" + "\t".join(servers) + "\n")
    for c, _ in cells:
        o.write(c + "\t" + "\t".join(
            ("NaN" if math.isnan(S[(c, s)]["per_server_cpu_s"]) or S[(c, s)]["per_server_cpu_s"] <= 0
             else f"{S[(c, s)]['per_server_cpu_s']:.6g}") for s in servers) + "\n")

# Short stdout summary.
print(f"{'cell':<16}" + "".join(f"{s + ' /CPU-s':>17}{'cpu%':>6}" for s in servers) + f"{'ratio':>8}")
for c, _ in cells:
    print(f"{c:<16}" + "".join(f"{f(S[(c, s)]['per_server_cpu_s']):>17}{f(S[(c, s)]['server_cpu_pct']):>6}"
                               for s in servers) + f"{f(ratios[c]):>8}")
PY

# gnuplot lists its terminals on stderr; pngcairo (gnuplot-nox has it) draws better than png.
if gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo; then
  term="pngcairo size 1400,650 font 'sans,10'"
else
  term="png size 1400,650"
fi
colors=('#1b9e77' '#d95f02' '#7570b3' '#e7298a' '#66a61e')
plot_cmd=""
for i in "${!servers[@]}"; do
  col=$((i + 2))
  if [ "$i" = 0 ]; then
    plot_cmd="'$plot_dat' using $col:xtic(1) title columnheader($col) lc rgb '${colors[$i]}'"
  else
    plot_cmd+=", '' using $col title columnheader($col) lc rgb '${colors[$i]}'"
  fi
done
if ! gnuplot <<GP 2>"$work/gnuplot.err"; then
set terminal $term
set output '$out_png'
set title "tlsfront vs peers ($variant, $workers worker(s) each, backend $backend_kind): median handshakes or requests per server CPU-second\n$day, ${secs} s x ${rounds} rounds, $(nproc) cores, $conns connections, log scale"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [*:*]
set xtics rotate by -30
set ylabel "handshakes or requests per server CPU-second"
set grid ytics
set key top left
set datafile separator "\t"
set datafile missing "NaN"
plot $plot_cmd
GP
  log "WARNING: gnuplot failed: $(head -3 "$work/gnuplot.err")"
fi

echo
echo "wrote $out_md"
echo "wrote $out_tsv"
[ -s "$out_png" ] && echo "wrote $out_png"
failed=$(awk -F'\t' 'NR > 1 && $8 == "NaN"' "$out_tsv" | wc -l)
if [ "$failed" != 0 ]; then
  echo "WARNING: $failed of $(($(wc -l <"$out_tsv") - 1)) runs failed (NaN); see the notes in $out_md"
fi
