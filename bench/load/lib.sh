# Sourced by the load scripts (from the repository root): helpers they share.

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for_file FILE [TRIES]: waits (0.05 s per try, 200 by default) until FILE is non-empty.
wait_for_file() {
  for _ in $(seq "${2:-200}"); do [ -s "$1" ] && return 0; sleep 0.05; done
  return 1
}

# The tlsfront config the load scripts benchmark: one worker, no admin, no access log, TLS 1.2
# and 1.3, session cache and tickets at their defaults (cache on, 5m; memory ticket keys), a
# keep-alive pool to the echo backend.
# bench_tlsfront_config DIR BACKEND_PORT: writes DIR/tlsfront.toml (cert and key in DIR).
bench_tlsfront_config() {
  local dir="$1" bport="$2"
  cat >"$dir/tlsfront.toml" <<CONF
[server]
threads = 1

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
