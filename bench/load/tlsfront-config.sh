# Sourced by the load scripts: the tlsfront config they benchmark, one worker, no admin, no
# access log, TLS 1.2 and 1.3, session cache and tickets at their defaults (cache on, 5m; memory
# ticket keys), a keep-alive pool to the echo backend.
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
