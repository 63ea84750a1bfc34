# Helpers shared by the benchmark scripts (sourced, not run).

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_port PORT [TRIES]: until something listens on 127.0.0.1:PORT, polled every 0.1 s (200 tries).
wait_port() {
  local i
  for i in $(seq 1 "${2:-200}"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "port $1 did not open"
}
