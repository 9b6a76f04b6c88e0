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
# bench_tlsfront_config DIR BACKEND_PORT [THREADS]: writes DIR/tlsfront.toml (cert and key in DIR).
bench_tlsfront_config() {
  local dir="$1" bport="$2" threads="${3:-1}"
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
max_idle = 64

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
      mkdir -p "$p/logs" "$p/tmp"
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

# bench_start_tlsfront DIR BACKEND_PORT THREADS CPUS [BUILD_DIR]: writes DIR/tlsfront.toml (cert.pem
# and key.pem in DIR) and starts BUILD_DIR/src/tlsfront (default: $BENCH_BIN, the release build)
# on a free port, pinned to CPUS when non-empty. Sets TLSFRONT_PID and TLSFRONT_PORT; on failure
# prints why and returns 1.
bench_start_tlsfront() {
  local dir=$1 bport=$2 threads=$3 cpus=$4 bin=${5:-$BENCH_BIN}
  bench_tlsfront_config "$dir" "$bport" "$threads"
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
