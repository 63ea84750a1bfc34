#!/usr/bin/env bash
# Instructions per Check (and per GetRole), counted by callgrind: Warden beside the bare tonic floor
# of ../shared/bench, sent its own body, and the floor sent Warden's bearer header too. Unlike req/s,
# the count does not move with whatever else the machine is doing, so it tells whether a change
# to the hot path made it cheaper.
#
#   bash benches/instructions.sh                          release build, 20,000 Checks per target
#   WARDEN_BIN=/path/to/warden N=5000 bash benches/instructions.sh
#
# Each server runs under `valgrind --tool=callgrind` with instrumentation off; h2load sends 2,000
# untimed requests (connections, caches, the token's verification), then instrumentation goes on
# for N requests at 1 connection x 64 streams and the dump is divided by N. Warden is `warden
# serve` with its defaults on SQLite, seeded through the API with grpcurl as benches/run.sh does;
# every request carries `authorization: Bearer <token>` (an admin checking user:alice). Needs
# valgrind, h2load (nghttp2-client), python3, cargo; the dumps stay in OUT for callgrind_annotate.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED_BENCH=${SHARED_BENCH:-"$ROOT/../shared/bench"}
CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authz-bench}
OUT=${BENCH_OUT:-"$CACHE/warden-instructions/$(date -u +%Y%m%dT%H%M%SZ)"}
N=${N:-20000}
WARMUP_N=2000
SECRET=bench-only-hs256-secret-0123456789abcdef

# shellcheck source=benches/common.sh
source "$HERE/common.sh"  # log, die, free_port, wait_port

for tool in valgrind callgrind_control callgrind_annotate h2load python3 cargo; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y valgrind nghttp2-client)"
done
mkdir -p "$OUT"

if [[ -z ${WARDEN_BIN:-} ]]; then
  log "cargo build --release --bin warden"
  (cd "$ROOT" && cargo build --release --bin warden -q)
  WARDEN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/warden"
fi
FLOOR_BIN="$CACHE/target/release/tonic-floor"
log "cargo build --release --locked (tonic-floor from $SHARED_BENCH)"
CARGO_TARGET_DIR="$CACHE/target" cargo build --release --locked -q --manifest-path "$SHARED_BENCH/tonic-floor/Cargo.toml"
GRPCURL="$(bash "$ROOT/.ci/install-grpcurl.sh")"
python3 "$SHARED_BENCH/encode_requests.py" encode "$OUT/bodies" > /dev/null
python3 "$HERE/wire.py" encode "$OUT/bodies" > /dev/null

PORT=$(free_port)
DB="sqlite://$OUT/check.db?mode=rwc"
# Warden's required settings only, as benches/run.sh gives them (no RUST_LOG: its default, info).
unset RUST_LOG WARDEN_LOG_FORMAT
WARDEN_ENV=("WARDEN_DATABASE_URL=$DB" "WARDEN_AUTH_HS256_SECRET=$SECRET"
  WARDEN_AUTH_ISSUER=warden-bench WARDEN_AUTH_AUDIENCE=warden WARDEN_BOOTSTRAP_ADMINS=admin
  "WARDEN_LISTEN_ADDR=127.0.0.1:$PORT" "WARDEN_METRICS_ADDR=127.0.0.1:$(free_port)")
WENV=(env "${WARDEN_ENV[@]}")
TOKEN=$("${WENV[@]}" "$WARDEN_BIN" token --sub admin --ttl 24h)

log "seeding Warden through the API"
"${WENV[@]}" "$WARDEN_BIN" serve > "$OUT/seed.log" 2>&1 &
SEED_PID=$!
trap 'kill "$SEED_PID" 2>/dev/null || true' EXIT
wait_port "$PORT"
while IFS='|' read -r rpc body; do
  "$GRPCURL" -plaintext -H "authorization: Bearer $TOKEN" -d "$body" "127.0.0.1:$PORT" "$rpc" > /dev/null \
    || die "seed: $rpc failed"
done <<'EOF'
warden.v1.PermissionService/CreatePermission|{"name":"document.read"}
warden.v1.RoleService/CreateRole|{"name":"reader","permissions":[{"name":"document.read"}]}
warden.v1.AssignmentService/AssignRole|{"role":{"name":"reader"},"identity":{"id":"user:alice","kind":"IDENTITY_KIND_USER"},"force":true}
EOF
kill "$SEED_PID"; wait "$SEED_PID" 2>/dev/null || true
trap - EXIT

# count NAME PATH BODY TOKEN COMMAND...: prints "NAME instructions-per-request". The command runs
# under callgrind with SERVER_ENV (NAME=VALUE...) as its environment's additions.
SERVER_ENV=()
count() {
  local name=$1 path=$2 body=$3 token=$4 auth=() pid
  shift 4
  [[ -n $token ]] && auth=(-H "authorization: Bearer $token")
  env "${SERVER_ENV[@]}" valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$OUT/$name.callgrind" "$@" > "$OUT/$name.log" 2>&1 &
  pid=$!
  trap 'kill -9 "$pid" 2>/dev/null || true' EXIT
  wait_port "$PORT" 600  # a server under valgrind starts slowly
  local load=(h2load -c 1 -m 64 -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}"
    "http://127.0.0.1:$PORT$path")
  "${load[@]}" -n "$WARMUP_N" > "$OUT/$name.warmup.txt"
  callgrind_control -i on "$pid" > /dev/null 2>&1
  "${load[@]}" -n "$N" > "$OUT/$name.h2load.txt"
  callgrind_control -i off "$pid" > /dev/null 2>&1
  grep -q "$N succeeded, 0 failed, 0 errored" "$OUT/$name.h2load.txt" || die "$name: not all $N requests succeeded"
  callgrind_control -d "$pid" > /dev/null 2>&1
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  trap - EXIT
  local total
  total=$(callgrind_annotate "$OUT/$name.callgrind".* 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}')
  [[ -n $total ]] || die "$name: no callgrind dump"
  echo "$name $((total / N))"
}

{
  echo "# instructions per request, $N requests at 1 x 64 after $WARMUP_N untimed"
  count tonic-floor /authz.v1.Authz/Check "$OUT/bodies/tonic_check.bin" "" "$FLOOR_BIN" "127.0.0.1:$PORT"
  count tonic-floor+bearer /authz.v1.Authz/Check "$OUT/bodies/tonic_check.bin" "$TOKEN" "$FLOOR_BIN" "127.0.0.1:$PORT"
  SERVER_ENV=("${WARDEN_ENV[@]}")
  count warden /warden.v1.AuthorizationService/Check "$OUT/bodies/warden_check.bin" "$TOKEN" "$WARDEN_BIN" serve
  count warden-getrole /warden.v1.RoleService/GetRole "$OUT/bodies/warden_getrole.bin" "$TOKEN" "$WARDEN_BIN" serve
} | tee "$OUT/instructions.txt"
awk '/^tonic-floor / {f = $2} /^tonic-floor\+bearer / {b = $2} /^warden / {w = $2} /^warden-getrole / {g = $2}
  END {printf "Check: floor / warden = %.3f, floor+bearer / warden = %.3f; GetRole: floor / warden = %.3f\n", f / w, b / w, f / g}' \
  "$OUT/instructions.txt" | tee -a "$OUT/instructions.txt"
log "callgrind dumps in $OUT"
