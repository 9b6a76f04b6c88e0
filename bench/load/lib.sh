# Sourced by the load scripts (from the repository root): helpers they share.
# shellcheck shell=bash
# Globals set here for the scripts that source this file:
# shellcheck disable=SC2034

BENCH_BIN=${BENCH_BIN:-build/release}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for_file FILE [TRIES]: waits (0.05 s per try, 200 by default) until FILE is non-empty.
wait_for_file() {
  for _ in $(seq "${2:-200}"); do [ -s "$1" ] && return 0; sleep 0.05; done
  return 1
}

# The tlsfront config the load scripts benchmark: THREADS workers (default 1), no admin, no access
# log, TLS 1.2 and 1.3, session cache and tickets at their defaults (cache on, 5m; memory ticket
# keys), a keep-alive pool to the backend.
# bench_tlsfront_config DIR BACKEND_PORT [THREADS] [MAX_IDLE]: writes DIR/tlsfront.toml (cert and
# key in DIR); MAX_IDLE (default 64) is the pool's cap on idle backend connections per worker.
bench_tlsfront_config() {
  local dir="$1" bport="$2" threads="${3:-1}" max_idle="${4:-64}"
  cat >"$dir/tlsfront.toml" <<CONF
[server]
threads = $threads

[admin]
enabled = false

[log]
level = "warn"
error_log = "$dir/tlsfront-error.log"
access_log = "off"

[[listener]]
name = "https"
listen = "127.0.0.1:0"
min_tls = "1.2"
max_tls = "1.3"
  [[listener.certificate]]
  cert = "$dir/cert.pem"
  key = "$dir/key.pem"

[[pool]]
name = "echo"
servers = ["127.0.0.1:$bport"]
max_idle = $max_idle

[[route]]
pool = "echo"
CONF
}

# ---- processes --------------------------------------------------------------------------------
# Every long-running process a script starts goes through bench_spawn: it runs in its own session
# and process group (setsid), so a server's workers and helpers (nginx workers, h2o's neverbleed,
# hitch's children) are one group that bench_stop_all ends, and a server under test never shares a
# group with the backend.
BENCH_PIDS=()

# bench_spawn CPUS OUT ERR CMD...: starts CMD in the background, pinned with `taskset -c CPUS`
# when CPUS is non-empty (children and threads inherit the affinity), stdout to OUT, stderr to ERR.
# Sets SPAWNED_PID (also its process group id) and adds it to BENCH_PIDS.
bench_spawn() {
  local cpus=$1 out=$2 err=$3
  shift 3
  local wrap=()
  [ -n "$cpus" ] && wrap=(taskset -c "$cpus")
  setsid "${wrap[@]}" "$@" >"$out" 2>"$err" </dev/null &
  SPAWNED_PID=$!
  BENCH_PIDS+=("$SPAWNED_PID")
}

# bench_stop_all: SIGTERM to every group bench_spawn started, up to 5 s to go, then SIGKILL.
bench_stop_all() {
  local p alive live
  [ ${#BENCH_PIDS[@]} = 0 ] && return 0
  for p in "${BENCH_PIDS[@]}"; do
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    # a group is alive while one of its processes is not a zombie (our children stay zombies
    # until the final wait)
    live=" $(ps -e -o pgid=,stat= | awk '$2 !~ /^Z/ {print $1}' | sort -u | paste -sd' ') "
    alive=0
    for p in "${BENCH_PIDS[@]}"; do
      [[ "$live" == *" $p "* ]] && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${BENCH_PIDS[@]}"; do
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  BENCH_PIDS=()
}

# bench_tree PID: PID and all its descendants, one a line.
bench_tree() {
  local c
  echo "$1"
  for c in $(pgrep -P "$1" 2>/dev/null || true); do bench_tree "$c"; done
}

# bench_cpu_ticks PID...: user+system CPU time (all threads) summed over the given processes, in
# clock ticks (getconf CLK_TCK); a process that has gone counts 0.
bench_cpu_ticks() {
  local total=0 p f
  for p in "$@"; do
    # drop "pid (comm) " so a comm with spaces cannot shift the fields: field 14 is then $12
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || f=0
    total=$((total + ${f:-0}))
  done
  echo "$total"
}

# bench_cpu_busy CPU: "BUSY TOTAL" clock ticks of one CPU since boot, from /proc/stat (busy: user,
# nice, system, irq, softirq, steal; total adds idle and iowait). Two readings give the CPU's
# busy share over an interval, whoever ran on it.
bench_cpu_busy() {
  awk -v c="cpu$1" '$1 == c {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat
}

# bench_affinity PID...: the CPU lists the given processes' threads may run on, deduplicated
# (e.g. "1" or "0-1"), from /proc/PID/task/*/status.
bench_affinity() {
  local p
  for p in "$@"; do
    cat /proc/"$p"/task/*/status 2>/dev/null | awk '/^Cpus_allowed_list/{print $2}'
  done | sort -u | paste -sd' '
}

# bench_repin CPUS PID...: moves every thread of the given processes onto CPUS (taskset -a -p), for
# a server that sets its own affinity after start (hitch binds worker N to CPU N).
bench_repin() {
  local cpus=$1 p
  shift
  for p in "$@"; do taskset -a -p -c "$cpus" "$p" >/dev/null 2>&1 || true; done
}

# ---- backend ----------------------------------------------------------------------------------
# bench_start_backend KIND DIR CPUS: starts the plain-HTTP backend every server proxies to, on a
# free port of 127.0.0.1, one worker, pinned to CPUS when non-empty:
#   echo   tlsfront-echo-backend --threads 1 (body "hello from tlsfront-echo-backend ...")
#   nginx  a separate nginx (prefix DIR/backend-nginx, its own process group): `return 200
#          "ok\n"`, keep-alive on (1,000,000 requests a connection), access_log off
# Both answer GET /bytes/4096 with a 4096-byte body (echo: its /bytes/N route; nginx: a file).
# Sets BACKEND_PORT, BACKEND_PID, BACKEND_EXPECT (text every answer contains; the loadgens'
# --expect) and BACKEND_DESC. On failure prints why and returns 1.
bench_start_backend() {
  local kind=$1 dir=$2 cpus=$3
  case $kind in
    echo)
      bench_spawn "$cpus" "$dir/backend.out" "$dir/backend.err" \
        "$BENCH_BIN/tools/tlsfront-echo-backend" --listen 127.0.0.1:0 --threads 1 \
        --port-file "$dir/backend.port"
      BACKEND_PID=$SPAWNED_PID
      if ! wait_for_file "$dir/backend.port" 200; then
        echo "echo backend did not start: $(tail -3 "$dir/backend.err")" >&2
        return 1
      fi
      BACKEND_PORT=$(cat "$dir/backend.port")
      BACKEND_EXPECT="hello from tlsfront-echo-backend"
      BACKEND_DESC="tlsfront-echo-backend --threads 1"
      ;;
    nginx)
      local p=$dir/backend-nginx
      mkdir -p "$p/logs" "$p/tmp" "$p/www/bytes"
      head -c 4096 /dev/zero | tr '\0' x >"$p/www/bytes/4096"
      BACKEND_PORT=$(free_port)
      cat >"$p/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $p/nginx.pid;
error_log $p/error.log warn;
events {
    worker_connections 16384;
}
http {
    access_log off;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$BACKEND_PORT backlog=4096;
        location / {
            return 200 "ok\n";
        }
        # a 4 KiB body (4096 'x') for the larger-response cells, served from a file
        location = /bytes/4096 {
            root $p/www;
        }
    }
}
CONF
      bench_spawn "$cpus" "$dir/backend.out" "$dir/backend.err" \
        nginx -p "$p" -e "$p/error.log" -c "$p/nginx.conf"
      BACKEND_PID=$SPAWNED_PID
      BACKEND_EXPECT="ok"
      BACKEND_DESC="nginx (separate instance, 1 worker, keep-alive, access_log off, return 200 \"ok\\n\")"
      ;;
    *)
      echo "unknown backend '$kind' (echo or nginx)" >&2
      return 1
      ;;
  esac
  for _ in $(seq 100); do
    if curl -s --max-time 2 "http://127.0.0.1:$BACKEND_PORT/" 2>/dev/null | grep -q "$BACKEND_EXPECT"; then
      return 0
    fi
    kill -0 "$BACKEND_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "$kind backend on port $BACKEND_PORT does not answer '$BACKEND_EXPECT': $(tail -3 "$dir/backend.err" "$dir/backend-nginx/error.log" 2>/dev/null | tr '\n' ' ')" >&2
  return 1
}

# bench_start_tlsfront DIR BACKEND_PORT THREADS CPUS [BUILD_DIR] [MAX_IDLE]: writes DIR/tlsfront.toml
# (cert.pem and key.pem in DIR; MAX_IDLE as bench_tlsfront_config) and starts BUILD_DIR/src/tlsfront
# (default: $BENCH_BIN, the release build) on a free port, pinned to CPUS when non-empty. Sets
# TLSFRONT_PID and TLSFRONT_PORT; on failure prints why and returns 1.
bench_start_tlsfront() {
  local dir=$1 bport=$2 threads=$3 cpus=$4 bin=${5:-$BENCH_BIN} max_idle=${6:-64}
  bench_tlsfront_config "$dir" "$bport" "$threads" "$max_idle"
  bench_spawn "$cpus" "$dir/tlsfront.out" "$dir/tlsfront.err" \
    "$bin/src/tlsfront" -c "$dir/tlsfront.toml" --ports-file "$dir/tlsfront.ports"
  TLSFRONT_PID=$SPAWNED_PID
  TLSFRONT_PORT=0
  if ! wait_for_file "$dir/tlsfront.ports" 200; then
    echo "tlsfront did not write its ports file: $(tail -3 "$dir/tlsfront.err" "$dir/tlsfront-error.log" 2>/dev/null | tr '\n' ' ')" >&2
    return 1
  fi
  TLSFRONT_PORT=$(awk '/^https /{n=split($2,a,":"); print a[n]}' "$dir/tlsfront.ports")
}

# ---- peers: nginx, HAProxy, H2O, hitch ---------------------------------------------------------
# Each peer as the load scripts configure it: WORKERS workers/threads, the certificate in
# WORK/cert.pem and WORK/key.pem (HAProxy and hitch: WORK/combined.pem, both in one file), TLS 1.2
# and 1.3, session cache and tickets on, keep-alive to the backend on 127.0.0.1:BPORT, no access
# log. PROTO says what it offers clients: h1 (ALPN http/1.1 where the server lets it be chosen;
# H2O offers h2 as well, by default) or h2 (ALPN h2 and http/1.1, at least 128 concurrent streams
# per connection). IDLE is the cap on idle keep-alive backend connections where the server has
# one (nginx `keepalive`; HAProxy's pool and H2O 2.2's have none: see below).
# bench_start_peer SERVER WORK BPORT WORKERS CPUS PROTO IDLE: starts SERVER (nginx, haproxy, h2o or
# hitch; hitch is h1 only) on a free port, pinned to CPUS when non-empty; its config, error log
# and output go to WORK. Sets PEER_PORT, PEER_PID and PEER_CONF; does not wait for it to answer.
bench_start_peer() {
  local s=$1 work=$2 bport=$3 workers=$4 cpus=$5 proto=$6 idle=$7
  PEER_PORT=$(free_port)
  "bench_peer_conf_$s" "$work" "$bport" "$workers" "$proto" "$idle"
  case $s in
    nginx) bench_spawn "$cpus" "$work/nginx.out" "$work/nginx.err" \
      nginx -p "$work/nginx" -e "$work/nginx-error.log" -c "$PEER_CONF" ;;
    haproxy) bench_spawn "$cpus" "$work/haproxy.out" "$work/haproxy-error.log" \
      haproxy -f "$PEER_CONF" -db ;;
    h2o) bench_spawn "$cpus" "$work/h2o.out" "$work/h2o.err" h2o -m worker -c "$PEER_CONF" ;;
    hitch) bench_spawn "$cpus" "$work/hitch.out" "$work/hitch-error.log" hitch --config="$PEER_CONF" ;;
  esac
  PEER_PID=$SPAWNED_PID
}

bench_peer_conf_nginx() {
  local work=$1 bport=$2 workers=$3 proto=$4 idle=$5 d=$1/nginx listen_opts="ssl" h2_conf=""
  if [ "$proto" = h2 ]; then
    listen_opts="ssl http2"   # nginx 1.22: `http2` on the listen line
    h2_conf=$'\n        http2_max_concurrent_streams 128;'
  fi
  mkdir -p "$d/logs"
  PEER_CONF=$d/nginx.conf
  cat >"$PEER_CONF" <<CONF
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
        keepalive $idle;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PEER_PORT $listen_opts;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 5m;
        ssl_session_tickets on;$h2_conf
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
}

bench_peer_conf_haproxy() {
  local work=$1 bport=$2 workers=$3 proto=$4 alpn=http/1.1 h2_conf=""
  if [ "$proto" = h2 ]; then
    alpn=h2,http/1.1
    # HAProxy's default is 100; 128 as tlsfront, nginx and H2O
    h2_conf=$'\n    tune.h2.max-concurrent-streams 128'
  fi
  PEER_CONF=$work/haproxy.cfg
  # http-reuse always: any idle backend connection serves any request; the server's idle pool
  # has no cap by default (pool-max-conn -1) and idle connections live pool-purge-delay (5 s)
  cat >"$PEER_CONF" <<CONF
global
    nbthread $workers
    maxconn 8192$h2_conf
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
    bind 127.0.0.1:$PEER_PORT ssl crt $work/combined.pem alpn $alpn
    default_backend backend

backend backend
    server b1 127.0.0.1:$bport
CONF
}

bench_peer_conf_h2o() {
  local work=$1 bport=$2 workers=$3 proto=$4 h2_conf=""
  # H2O's default is 100 concurrent requests per HTTP/2 connection; 128 as the others
  [ "$proto" = h2 ] && h2_conf=$'\nhttp2-max-concurrent-requests-per-connection: 128'
  PEER_CONF=$work/h2o.conf
  # neverbleed OFF: by default H2O 2.2 signs in a separate helper process (privilege
  # separation); the other servers sign in-process, so this is H2O at its fastest.
  # ssl-session-resumption mode all: OpenSSL's internal session cache (one process, shared by
  # its threads) and tickets with internally generated and rotated keys. Its proxy pool keeps
  # idle backend connections for proxy.timeout.keepalive with no count cap (2.2 has no
  # proxy.max-connections; it refuses the key).
  cat >"$PEER_CONF" <<CONF
user: root
num-threads: $workers
error-log: $work/h2o-error.log
pid-file: $work/h2o.pid$h2_conf
ssl-session-resumption:
  mode: all
  cache-store: internal
  ticket-store: internal
listen:
  host: 127.0.0.1
  port: $PEER_PORT
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
}

bench_peer_conf_hitch() {
  local work=$1 bport=$2 workers=$3
  PEER_CONF=$work/hitch.conf
  # Debian's hitch is built without --enable-sessioncache (its shared cache across workers), so
  # 'session-cache' is refused; OpenSSL's built-in server cache (per worker process, 20,480
  # sessions) and tickets (OpenSSL's default; the keys are made before the workers fork, so they
  # share them) are on. TCP mode: each client connection gets its own backend connection.
  cat >"$PEER_CONF" <<CONF
frontend = "[127.0.0.1]:$PEER_PORT"
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
}

# ---- clients ----------------------------------------------------------------------------------
# Handshake modes (one request per connection, loadgen) and wrk modes.
BENCH_HANDSHAKE_MODES=(full12 full13 id ticket12 ticket13)
BENCH_WRK_MODES=(wrk-ka wrk-close)

# bench_client_bin CLIENT: the loadgen binary of CLIENT (boringssl or openssl).
bench_client_bin() {
  case $1 in
    boringssl) echo "$BENCH_BIN/tools/tlsfront-loadgen" ;;
    openssl) echo "$BENCH_BIN/tools/tlsfront-loadgen-openssl" ;;
    *) return 1 ;;
  esac
}

# bench_run_client CLIENT MODE PORT SECS CONNS OUT CPUS [THREADS]: one client run, in the foreground,
# pinned to CPUS when non-empty, against https://127.0.0.1:PORT/ with SNI localhost.
#   CLIENT boringssl|openssl with MODE full12|full13|id|ticket12|ticket13: the loadgen, --json OUT
#     (its text output next to it, OUT.log), --expect "$BACKEND_EXPECT";
#   CLIENT wrk with MODE wrk-ka|wrk-close: wrk -tTHREADS -cCONNS --latency, its text output in OUT.
# A hard limit of SECS + 30 s applies. Returns the client's exit status.
bench_run_client() {
  local client=$1 mode=$2 port=$3 secs=$4 conns=$5 out=$6 cpus=$7 threads=${8:-1}
  local wrap=() rc=0
  [ -n "$cpus" ] && wrap=(taskset -c "$cpus")
  local limit=$((secs + 30))
  case $mode in
    wrk-ka | wrk-close)
      local hdr=()
      [ "$mode" = wrk-close ] && hdr=(-H 'Connection: close')
      timeout -k 5 "$limit" "${wrap[@]}" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "${hdr[@]}" \
        "https://127.0.0.1:$port/" >"$out" 2>&1 || rc=$?
      ;;
    *)
      local lmode=$mode tls=()
      case $mode in
        full12) lmode=full tls=(--tls 1.2) ;;
        full13) lmode=full tls=(--tls 1.3) ;;
      esac
      local bin
      bin=$(bench_client_bin "$client") || return 2
      timeout -k 5 "$limit" "${wrap[@]}" "$bin" --host 127.0.0.1 --port "$port" --sni localhost \
        --mode "$lmode" "${tls[@]}" --connections "$conns" --threads "$threads" --duration "$secs" \
        --expect "${BACKEND_EXPECT:-hello from tlsfront-echo-backend}" --json "$out" \
        >"$out.log" 2>&1 || rc=$?
      ;;
  esac
  return "$rc"
}

# bench_parse_client KIND FILE CPU_S WALL_S: one client output (KIND loadgen: its JSON; wrk: its text)
# plus the server CPU seconds and the wall seconds over which they were read, as one tab-separated
# line: throughput_per_s completed duration_s server_cpu_s per_server_cpu_s server_cpu_pct
# resumed_share errors bad_responses client_cpu_s p50_us p99_us. Fails (prints nothing) when the
# output is unusable.
bench_parse_client() {
  python3 - "$@" <<'PY'
import json, math, re, sys
kind, path, cpu, wall = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
nan = float("nan")
def fmt(x):
    return "NaN" if x is None or (isinstance(x, float) and math.isnan(x)) else (
        f"{x:.6g}" if isinstance(x, float) else str(x))
if kind == "loadgen":
    d = json.load(open(path))
    done = int(d["handshakes"])
    thr = float(d["handshakes_per_s"])
    dur = float(d.get("duration_s", nan))
    res = float(d.get("resumed_share", nan))
    err = d.get("errors", nan)
    bad = d.get("bad_responses", nan)
    ccpu = float(d.get("client_cpu_s", nan))
    lat = d.get("latency_us", {}) or {}
    p50, p99 = float(lat.get("p50", nan)), float(lat.get("p99", nan))
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
pct = 100.0 * cpu / wall if wall > 0 else nan
print("\t".join(fmt(x) for x in (thr, done, dur, cpu, per, pct, res, err, bad, ccpu, p50, p99)))
PY
}

# bench_args NAME [SECONDS_PER_CELL] [ROUNDS]: the load scripts' command line: sets BENCH_NAME
# (die and log below name the script by it), secs (default 5) and rounds (default 3); exits 2
# with the usage line when either is not a positive integer.
bench_args() {
  BENCH_NAME=$1
  secs="${2:-5}"
  rounds="${3:-3}"
  if ! [[ "$secs" =~ ^[1-9][0-9]*$ && "$rounds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bench/load/$1.sh [SECONDS_PER_CELL] [ROUNDS]   (positive integers; defaults 5 and 3)" >&2
    exit 2
  fi
}
die() {
  echo "$BENCH_NAME.sh: $*" >&2
  exit 1
}
log() { echo "[$(date +%T)] $*" >&2; }

# ---- run set-up shared by compare.sh and h2.sh -----------------------------------------------
# die MESSAGE prints "NAME.sh: MESSAGE" and exits 1; log MESSAGE prints it timestamped (stderr).

# bench_variant: reads VARIANT (pinned, default; 1w; 2w), PIN (1), SERVER_CPU (1) and CLIENT_CPU
# (0) from the environment and sets variant, workers, pin, server_cpu, client_cpu, srv_cpus and
# cli_cpus (the taskset CPU lists of the server under test and of clients and backend; empty when
# nothing is pinned). Dies on a bad value or, pinned, on a machine with one CPU.
bench_variant() {
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
}

# bench_stop_services SERVICE...: stops those Debian system services that run (the packages
# start them; they would compete for the CPUs).
bench_stop_services() {
  command -v service >/dev/null 2>&1 || return 0
  local svc
  for svc in "$@"; do
    if service "$svc" status >/dev/null 2>&1; then
      log "stopping the system service $svc"
      service "$svc" stop >/dev/null 2>&1 || log "WARNING: could not stop the system service $svc"
    fi
  done
}

# bench_busy_before: the whole machine's busy % over one second, before any of our processes
# start (so anyone else's), in busy_before; warns above 10 %.
bench_busy_before() {
  local idle0 idle1
  idle0=$(bench_cpu_busy "")
  sleep 1
  idle1=$(bench_cpu_busy "")
  busy_before=$(awk -v x="$idle0" -v y="$idle1" 'BEGIN{split(x, a, " "); split(y, b, " ");
    d = b[2] - a[2]; if (d > 0) printf "%.0f", 100 * (b[1] - a[1]) / d; else print 0}')
  if [ "$busy_before" -gt 10 ]; then
    log "WARNING: the machine is ${busy_before} % busy before the run (other users' processes): the results will be noisy; the report says how much of the server's CPU others took in each cell"
  fi
}

# bench_await_server S PROTO: waits (up to 10 s) until server S answers GET / over TLS on port
# PORT[S] with a body containing $BACKEND_EXPECT (PROTO h2: and over HTTP/2, ALPN h2), then
# checks that every thread of its process tree runs on $server_cpu alone when pinned (re-pinning
# a server that set its own affinity). Uses the caller's associative arrays PID, PORT, UP, WHY,
# AFF and REPINNED and its pin, server_cpu and work; sets UP[S]=1 when it answers, else WHY[S].
# the arrays are the caller's (SC2153), indexed by server name (SC2004 mistakes them for indexed ones)
# shellcheck disable=SC2004,SC2153
bench_await_server() {
  local s=$1 proto=$2 copt=() got tree
  [ "$proto" = h2 ] && copt=(--http2)
  for _ in $(seq 100); do
    got=$(curl -sk --max-time 2 "${copt[@]}" -w '\n%{http_version}' "https://127.0.0.1:${PORT[$s]}/" 2>/dev/null) || true
    if grep -q "$BACKEND_EXPECT" <<<"$got" && { [ "$proto" != h2 ] || [ "${got##*$'\n'}" = 2 ]; }; then
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
      if [ "$proto" = h2 ] && grep -q "$BACKEND_EXPECT" <<<"$got"; then
        WHY[$s]="answers on port ${PORT[$s]}, but not over HTTP/2 (curl --http2 got HTTP version '${got##*$'\n'}')"
      else
        WHY[$s]="does not answer '$BACKEND_EXPECT' on port ${PORT[$s]}: $({ cat "$work/$s"*.err "$work/$s-error.log" 2>/dev/null || true; } | sed '/^$/d' | tail -2 | tr '\n' ' ' | cut -c1-300)"
      fi
    fi
    log "WARNING: $s is skipped (its cells record NaN): ${WHY[$s]}"
  fi
}

# bench_workdir: makes the run's temp dir /tmp/tlsfront-NAME-XXXXXX (NAME: bench_args') in work and
# sets the traps: on exit every spawned group is stopped and the dir dropped (bench_drop_work), an
# interrupt exits 130.
bench_workdir() {
  work=$(mktemp -d "/tmp/tlsfront-$BENCH_NAME-XXXXXX")
  trap 'bench_cleanup $?' EXIT
  trap 'exit 130' INT TERM
}
bench_cleanup() {
  bench_stop_all
  bench_drop_work "$BENCH_NAME.sh" "$work" "$1"
}

# bench_cert_and_backend KIND CPUS: the run's certificate (one ECDSA P-256 self-signed cert for
# every server: WORK/cert.pem, key.pem and both in combined.pem) and the backend
# (bench_start_backend KIND WORK CPUS; its port also in bport). Dies when the backend does not
# start.
bench_cert_and_backend() {
  scripts/gen-self-signed "$work/cert.pem" "$work/key.pem" localhost
  cat "$work/cert.pem" "$work/key.pem" >"$work/combined.pem"
  chmod 600 "$work/combined.pem"
  bench_start_backend "$1" "$work" "$2" || die "the backend did not start"
  bport=$BACKEND_PORT
  log "backend: $BACKEND_DESC on 127.0.0.1:$bport (pid $BACKEND_PID)"
}

# bench_rounds FN: the interleaved measurement order: for each of $rounds rounds, for each of the
# caller's cells, for each of its servers (the order rotating by one each round), calls
# FN ROUND CELL SERVER POSITION, then waits 0.5 s (TIME_WAIT and the servers' deferred work).
# shellcheck disable=SC2154  # rounds, servers and cells are the caller's
bench_rounds() {
  local round off cell pos s order
  for round in $(seq "$rounds"); do
    off=$(((round - 1) % ${#servers[@]}))
    order=("${servers[@]:off}" "${servers[@]:0:off}")
    for cell in "${cells[@]}"; do
      pos=0
      for s in "${order[@]}"; do
        pos=$((pos + 1))
        "$1" "$round" "$cell" "$s" "$pos"
        sleep 0.5
      done
    done
  done
}

# bench_report_lists BACKEND_KIND: for the report, WORK/why.tsv (server TAB why it is not up, from
# the caller's UP and WHY) and WORK/confs.txt (server TAB config file, from CONF, and the nginx
# backend's), over the caller's servers.
bench_report_lists() {
  local s
  : >"$work/why.tsv"
  : >"$work/confs.txt"
  for s in "${servers[@]}"; do
    [ "${UP[$s]}" = 1 ] || [ -z "${WHY[$s]:-}" ] || printf '%s\t%s\n' "$s" "${WHY[$s]}" >>"$work/why.tsv"
    [ -z "${CONF[$s]:-}" ] || printf '%s\t%s\n' "$s" "${CONF[$s]}" >>"$work/confs.txt"
  done
  [ "$1" != nginx ] || printf 'backend nginx\t%s\n' "$work/backend-nginx/nginx.conf" >>"$work/confs.txt"
}

# bench_wrote MD TSV PNG: says which report files were written (PNG only when it is there).
bench_wrote() {
  echo
  echo "wrote $1"
  echo "wrote $2"
  [ ! -s "$3" ] || echo "wrote $3"
}

# ---- one measured run ------------------------------------------------------------------------
# bench_measure DIR SERVER_PID SRV_CPUS CLI_CPUS CMD...: runs CMD in the foreground and reads,
# before and after it, the CPU time of SERVER_PID's process tree and of $BACKEND_PID's (apart),
# the busy share of SRV_CPUS (the whole machine when empty) and of CLI_CPUS (only when non-empty),
# and the CPU time of CMD itself (times(1): the shell's waited-for children; a timeout or taskset
# wrapper execs or sleeps). Sets M_RC (CMD's exit status), M_WALL, M_CPU (server CPU seconds),
# M_BCPU (backend), M_CCPU (client), M_SBUSY and M_CBUSY (percent; NaN when not read). DIR holds
# its scratch files.
bench_measure() {
  local dir=$1 spid=$2 scpus=$3 ccpus=$4
  shift 4
  local hz pids bpids before bbefore sb0 cb0 t0 after bafter sb1 cb1 t1
  hz=$(getconf CLK_TCK)
  mapfile -t pids < <(bench_tree "$spid")
  mapfile -t bpids < <(bench_tree "$BACKEND_PID")
  before=$(bench_cpu_ticks "${pids[@]}")
  bbefore=$(bench_cpu_ticks "${bpids[@]}")
  sb0=$(bench_cpu_busy "$scpus")
  cb0=$(bench_cpu_busy "$ccpus")
  t0=$(date +%s.%N)
  times >"$dir/times0"
  M_RC=0
  "$@" || M_RC=$?
  times >"$dir/times1"
  t1=$(date +%s.%N)
  after=$(bench_cpu_ticks "${pids[@]}")
  bafter=$(bench_cpu_ticks "${bpids[@]}")
  sb1=$(bench_cpu_busy "$scpus")
  cb1=$(bench_cpu_busy "$ccpus")
  M_CPU=$(awk -v a="$before" -v b="$after" -v hz="$hz" 'BEGIN{printf "%.3f", (b - a) / hz}')
  M_BCPU=$(awk -v a="$bbefore" -v b="$bafter" -v hz="$hz" 'BEGIN{printf "%.3f", (b - a) / hz}')
  M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
  M_CCPU=$(awk -v a="$(bench_times_children "$dir/times0")" -v b="$(bench_times_children "$dir/times1")" \
    'BEGIN{printf "%.3f", b - a}')
  M_SBUSY=$(bench_busy_pct "$sb0" "$sb1")
  M_CBUSY=NaN
  [ -n "$ccpus" ] && M_CBUSY=$(bench_busy_pct "$cb0" "$cb1")
  return 0
}

# bench_times_children FILE: the children's user+system seconds from the output of `times`.
bench_times_children() {
  awk 'NR == 2 {
    n = split($0, f, " "); s = 0
    for (i = 1; i <= n; i++) { split(f[i], a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] }
    print s }' "$1"
}

# bench_busy_pct "B0 T0" "B1 T1": percent busy between two bench_cpu_busy readings (NaN if none).
bench_busy_pct() {
  awk -v x="$1" -v y="$2" 'BEGIN{split(x, a, " "); split(y, b, " ");
    d = b[2] - a[2]; if (d > 0) printf "%.1f", 100 * (b[1] - a[1]) / d; else print "NaN"}'
}

# ---- report inputs ---------------------------------------------------------------------------
# bench_env_versions: tab-separated "key<TAB>value" lines on the machine and the software the load
# scripts compare (date, nproc, cpu, memory, kernel, nginx, haproxy, h2o, hitch, libssl3,
# tlsfront, openssl, boringssl, sysctl).
bench_env_versions() {
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
  echo "openssl	$(openssl version)"
  echo "boringssl	$(dpkg-query -W -f='${Version}' android-libboringssl 2>/dev/null || echo unknown)"
  echo "sysctl	tcp_tw_reuse=$(sysctl -n net.ipv4.tcp_tw_reuse 2>/dev/null), ip_local_port_range=$(sysctl -n net.ipv4.ip_local_port_range 2>/dev/null | tr '\t' '-')"
}

# bench_errlogs DIR OUT: the first 5 lines (200 characters each) of every non-empty server and
# backend error log in DIR, under a "== NAME (N lines)" line each, into OUT.
bench_errlogs() {
  local f
  : >"$2"
  for f in tlsfront-error.log tlsfront.err nginx-error.log nginx.err haproxy-error.log h2o-error.log \
    h2o.err hitch-error.log backend.err backend-nginx/error.log; do
    if [ -s "$1/$f" ]; then
      echo "== $f ($(wc -l <"$1/$f") lines)" >>"$2"
      head -5 "$1/$f" | cut -c1-200 >>"$2"
    fi
  done
}

# bench_plot DAT PNG TITLE YLABEL ERR: a clustered histogram, log scale, of DAT (tab-separated; a
# header line "cell<TAB>server...", then one line per cell, NaN for none) into PNG; gnuplot's
# complaints go to ERR. Returns 1 when gnuplot fails.
bench_plot() {
  local dat=$1 png=$2 title=$3 ylabel=$4 err=$5 term n i col plot_cmd=""
  # gnuplot lists its terminals on stderr; pngcairo (gnuplot-nox has it) draws better than png.
  if gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo; then
    term="pngcairo size 1400,650 font 'sans,10'"
  else
    term="png size 1400,650"
  fi
  local colors=('#1b9e77' '#d95f02' '#7570b3' '#e7298a' '#66a61e')
  n=$(($(head -1 "$dat" | awk -F'\t' '{print NF}') - 1))
  for ((i = 0; i < n; i++)); do
    col=$((i + 2))
    if [ "$i" = 0 ]; then
      plot_cmd="'$dat' using $col:xtic(1) title columnheader($col) lc rgb '${colors[$i]}'"
    else
      plot_cmd+=", '' using $col title columnheader($col) lc rgb '${colors[$((i % 5))]}'"
    fi
  done
  gnuplot <<GP 2>"$err"
set terminal $term
set output '$png'
set title "$title"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [*:*]
set xtics rotate by -30
set ylabel "$ylabel"
set grid ytics
set key top left
set datafile separator "\t"
set datafile missing "NaN"
plot $plot_cmd
GP
}

# ---- TLS checks -------------------------------------------------------------------------------
BENCH_HTTP_REQUEST=$'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'

# bench_negotiated PORT VERSION(1.2|1.3): "cipher, key exchange, ALPN x" as openssl s_client sees it.
bench_negotiated() {
  timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername localhost "-tls${2/./_}" \
    -alpn http/1.1 </dev/null 2>/dev/null |
    awk -F': ' '/^New, /{split($0,a,"Cipher is "); c=a[2]} /Server Temp Key/{k=$2}
                /ALPN protocol/{p=$2} END{printf "%s, %s, ALPN %s", c, k, p}'
}

# bench_resumes PORT KIND(id|ticket12|ticket13) DIR: "yes" when a second openssl s_client
# connection resumes the session of the first (id: TLS 1.2 without the ticket extension; ticket12:
# TLS 1.2 and the server issued a ticket; ticket13: TLS 1.3 PSK), "no (...)" otherwise.
bench_resumes() {
  local port=$1 kind=$2 dir=$3 opts=()
  case $kind in
    id) opts=(-tls1_2 -no_ticket) ;;
    ticket12) opts=(-tls1_2) ;;
    ticket13) opts=(-tls1_3) ;;
  esac
  local sess=$dir/sess-$port-$kind.pem first second
  first=$(printf '%s' "$BENCH_HTTP_REQUEST" | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
    -servername localhost "${opts[@]}" -ign_eof -sess_out "$sess" 2>/dev/null) || true
  if [ ! -s "$sess" ]; then
    echo "no (no session)"
    return
  fi
  if [ "$kind" = ticket12 ] && ! grep -q 'TLS session ticket:' <<<"$first"; then
    echo "no (no ticket issued)"
    return
  fi
  second=$(printf '%s' "$BENCH_HTTP_REQUEST" | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
    -servername localhost "${opts[@]}" -ign_eof -sess_in "$sess" 2>/dev/null) || true
  if grep -q '^Reused,' <<<"$second"; then
    echo yes
  else
    echo "no (full handshake)"
  fi
}

# bench_drop_work NAME DIR RC: after bench_stop_all, removes the temp dir DIR of script NAME, or
# keeps it (and says where) when KEEP_TMP=1 or the script failed (RC != 0).
bench_drop_work() {
  if [ "${KEEP_TMP:-0}" = 1 ] || [ "$3" != 0 ]; then
    echo "$1: temp dir kept: $2" >&2
  else
    rm -rf "$2"
  fi
}
