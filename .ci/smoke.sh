#!/usr/bin/env bash
# End-to-end smoke test of a built warden binary, driven with the real grpcurl.
#
#   bash .ci/smoke.sh path/to/warden
#
# Starts `warden serve --dev` in a fresh temporary directory (so ./warden-dev.db is new) on a free
# port, waits for grpc.health.v1 to report SERVING, runs the grpcurl command line that --dev prints
# exactly as printed, then walks the seeds' role/permission flows and checks every answer, then
# drives the binary's own admin CLI (apply, export, check, prune) against it. A second
# server then serves TLS with client certificates (certificates made with openssl), reached with
# grpcurl -cacert, and with -cert/-key as a SPIFFE identity.
# Any failed assertion makes the script exit non-zero and print the server's output; the server is
# always stopped on exit.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STARTUP_TIMEOUT="${SMOKE_STARTUP_TIMEOUT:-30}"   # seconds to wait for SERVING
STOP_TIMEOUT="${SMOKE_STOP_TIMEOUT:-30}"         # seconds to wait for exit after SIGTERM

die() { echo "smoke: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 BINARY"
BINARY="$1"
if [ ! -f "$BINARY" ] || [ ! -x "$BINARY" ]; then die "$BINARY is not an executable file"; fi
BINARY="$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")"
command -v python3 >/dev/null || die "python3 not found (needed to pick free ports)"

# --- tools -----------------------------------------------------------------------------------------
GRPCURL="$(bash "$ROOT/.ci/install-grpcurl.sh")" || die "cannot install grpcurl"
echo "smoke: using $("$GRPCURL" -version 2>&1) at $GRPCURL"

# JSON assertions use jq, or python3 where jq cannot be had.
if ! command -v jq >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "smoke: installing jq"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq jq >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq jq >/dev/null 2>&1; } \
    || true
fi
command -v jq >/dev/null || echo "smoke: jq not available; using python3 for JSON assertions"

# json_at FILE PATH: the value at PATH (".a.b", ".a[0]" not supported) as compact JSON, "null" if absent.
json_at() {
  if command -v jq >/dev/null; then
    jq -c "$2" "$1"
  else
    # The jq subset the checks use: .a.b, .a[0].b and .a|map(.b).
    python3 - "$1" "$2" <<'PY'
import json, re, sys

def walk(value, path):
    for key in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if key.startswith("["):
            i = int(key[1:-1])
            value = value[i] if isinstance(value, list) and i < len(value) else None
        else:
            value = value.get(key) if isinstance(value, dict) else None
    return value

path, _, mapped = sys.argv[2].partition("|map(")
value = walk(json.load(open(sys.argv[1])), path)
if mapped:
    value = [walk(v, mapped.rstrip(")")) for v in (value or [])]
print(json.dumps(value, separators=(",", ":")))
PY
  fi
}

# --- server ----------------------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/warden-smoke.XXXXXX")"
SERVER_OUT="$WORK/server.stdout"
SERVER_ERR="$WORK/server.stderr"
SERVER_PID=""
TLS_PID=""
PASSED=0
FAILED=0

show_server_log() {
  echo "----- server stdout ($SERVER_OUT) -----" >&2
  cat "$SERVER_OUT" >&2 2>/dev/null || true
  echo "----- server stderr ($SERVER_ERR) -----" >&2
  cat "$SERVER_ERR" >&2 2>/dev/null || true
  echo "----- end of server log -----" >&2
}

cleanup() {
  local status=$?
  for pid in "$SERVER_PID" "$TLS_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ "$status" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
    show_server_log
    echo "smoke: FAILED ($PASSED passed, $FAILED failed); files kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'echo "smoke: unexpected failure at line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(free_port)"
METRICS_PORT="$(free_port)"
while [ "$METRICS_PORT" = "$PORT" ]; do METRICS_PORT="$(free_port)"; done
ADDR="127.0.0.1:$PORT"

# The server must see only what this script sets: no database, secret or listen address from the
# caller's environment (--dev uses a configured database instead of ./warden-dev.db).
server_env=(env)
while IFS= read -r name; do server_env+=(-u "$name"); done < <(compgen -e | grep -E '^(WARDEN_|OTEL_)' || true)
server_env+=("WARDEN_METRICS_ADDR=127.0.0.1:$METRICS_PORT" "RUST_LOG=${RUST_LOG:-info}")
# A known secret (so `warden token` can mint a second admin's token) and that second admin, who
# approves change requests in the Dfns flow below, as the README walkthrough does.
SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
server_env+=("WARDEN_AUTH_HS256_SECRET=$SECRET" "WARDEN_BOOTSTRAP_ADMINS=approver")

echo "smoke: starting $BINARY serve --dev --listen-addr $ADDR in $WORK"
(cd "$WORK" && exec "${server_env[@]}" "$BINARY" serve --dev --listen-addr "$ADDR" \
  >"$SERVER_OUT" 2>"$SERVER_ERR" </dev/null) &
SERVER_PID=$!

# --- assertions ------------------------------------------------------------------------------------
pass() { PASSED=$((PASSED + 1)); echo "  ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL $1" >&2; [ -z "${2:-}" ] || sed 's/^/       | /' "$2" >&2; }

OUT="$WORK/out"   # output (stdout + stderr) of the last call
RC=0              # exit code of the last call

# call ARGS...: run grpcurl -plaintext with ARGS; sets OUT and RC, never exits.
call() {
  RC=0
  "$GRPCURL" -plaintext -connect-timeout 5 -max-time 15 "$@" >"$OUT" 2>&1 || RC=$?
}
# authed ARGS...: call with the admin token.
authed() { call -H "authorization: Bearer $TOKEN" "$@"; }

# expect_ok DESC: the last call succeeded.
expect_ok() {
  if [ "$RC" -eq 0 ]; then pass "$1"; else fail "$1 (grpcurl exit $RC)" "$OUT"; fi
}
# expect_json DESC PATH EXPECTED...: the last call succeeded and PATH holds one of EXPECTED (compact JSON).
expect_json() {
  local desc="$1" path="$2" got
  shift 2
  if [ "$RC" -ne 0 ]; then fail "$desc (grpcurl exit $RC)" "$OUT"; return; fi
  if ! got="$(json_at "$OUT" "$path" 2>&1)"; then fail "$desc (response is not JSON: $got)" "$OUT"; return; fi
  for want in "$@"; do
    if [ "$got" = "$want" ]; then pass "$desc"; return; fi
  done
  fail "$desc ($path is $got, expected $*)" "$OUT"
}
# error_reasons: the ErrorInfo reasons in the last call's details. The server describes
# google.rpc.ErrorInfo through reflection, so grpcurl prints it as JSON; raw base64 "@value"
# details (a server that does not) are decoded too.
error_reasons() {
  { grep -o '"reason":"[A-Z_]*"' "$OUT" || true; } | sed 's/^"reason":"//; s/"$//'
  { grep -o '"@value":"[^"]*"' "$OUT" || true; } | sed 's/^"@value":"//; s/"$//' | while IFS= read -r b64; do
    printf '%s' "$b64" | base64 -d 2>/dev/null | tr -c '[:print:]' '\n'
    echo
  done
}
# expect_error DESC CODE [MESSAGE_REGEX [REASON]]: the last call failed with that gRPC code, message and
# ErrorInfo reason.
expect_error() {
  local desc="$1" code="$2" message="${3:-}" reason="${4:-}"
  if [ "$RC" -eq 0 ]; then fail "$desc (succeeded, expected $code)" "$OUT"; return; fi
  if ! grep -q "^ *Code: $code\$" "$OUT"; then fail "$desc (expected Code: $code)" "$OUT"; return; fi
  if [ -n "$message" ] && ! grep -Eq "^ *Message: .*($message)" "$OUT"; then
    fail "$desc (message does not match /$message/)" "$OUT"; return
  fi
  # (captured first: with pipefail, grep -q closing the pipe early would fail the pipeline)
  if [ -n "$reason" ] && ! grep -qx "$reason" <<<"$(error_reasons)"; then
    fail "$desc (no ErrorInfo reason $reason in the details)" "$OUT"; return
  fi
  pass "$desc"
}

# --- readiness -------------------------------------------------------------------------------------
echo "smoke: waiting up to ${STARTUP_TIMEOUT}s for $ADDR to report SERVING"
deadline=$((SECONDS + STARTUP_TIMEOUT))
until call -max-time 2 -d '{}' "$ADDR" grpc.health.v1.Health/Check && grep -q '"status": "SERVING"' "$OUT"; do
  kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" && rc=0 || rc=$?; SERVER_PID=""; die "the server exited during start-up (exit $rc)"; }
  [ "$SECONDS" -lt "$deadline" ] || { cat "$OUT" >&2; die "the server did not report SERVING within ${STARTUP_TIMEOUT}s"; }
  sleep 0.2
done
pass "health Check reports SERVING after start-up"

# --- the --dev banner ------------------------------------------------------------------------------
echo "smoke: --dev banner"
TOKEN="$(grep -E '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "$SERVER_OUT" || true)"
if [ -n "$TOKEN" ] && [ "$(printf '%s\n' "$TOKEN" | wc -l)" -eq 1 ]; then
  pass "banner prints one admin token (JWT) on its own line"
else
  fail "banner prints one admin token (JWT) on its own line" "$SERVER_OUT"
  die "cannot go on without a token"
fi
if grep -q 'Admin token' "$SERVER_OUT"; then pass "banner announces the admin token"; else fail "banner announces the admin token" "$SERVER_OUT"; fi

PRINTED="$(grep -E '^grpcurl ' "$SERVER_OUT" || true)"
if [ -n "$PRINTED" ] && [ "$(printf '%s\n' "$PRINTED" | wc -l)" -eq 1 ]; then
  pass "banner prints one grpcurl command line"
else
  fail "banner prints one grpcurl command line" "$SERVER_OUT"
  die "cannot go on without the printed command"
fi
case "$PRINTED" in
  *" $ADDR "*) pass "printed command targets the listen address $ADDR" ;;
  *) fail "printed command targets the listen address $ADDR: $PRINTED" ;;
esac
case "$PRINTED" in
  *"Bearer $TOKEN"*) pass "printed command carries the printed token" ;;
  *) fail "printed command carries the printed token: $PRINTED" ;;
esac

# Run it exactly as printed, only with our grpcurl binary in place of the word `grpcurl`.
RC=0
eval "$(printf '%q' "$GRPCURL")${PRINTED#grpcurl}" >"$OUT" 2>&1 || RC=$?
expect_json "printed grpcurl command creates permission docs:read" .name '"docs:read"'

# --- reflection and health -------------------------------------------------------------------------
echo "smoke: reflection and health"
call "$ADDR" list
expect_ok "reflection: list"
for svc in PermissionService RoleService AssignmentService ChangeRequestService GroupService AuthorizationService AuditService; do
  if [ "$RC" -eq 0 ] && grep -qx "warden.v1.$svc" "$OUT"; then pass "reflection lists warden.v1.$svc"; else fail "reflection lists warden.v1.$svc" "$OUT"; fi
done
call "$ADDR" describe warden.v1.RoleService
if [ "$RC" -eq 0 ] && grep -q 'RemovePermissionFromRole' "$OUT"; then pass "reflection describes warden.v1.RoleService"; else fail "reflection describes warden.v1.RoleService" "$OUT"; fi

call -d '{}' "$ADDR" grpc.health.v1.Health/Check
expect_json 'health Check {} is SERVING' .status '"SERVING"'
call -d '{"service":"warden.v1.RoleService"}' "$ADDR" grpc.health.v1.Health/Check
expect_json 'health Check warden.v1.RoleService is SERVING' .status '"SERVING"'

# --- authentication --------------------------------------------------------------------------------
echo "smoke: authentication"
call -d '{}' "$ADDR" warden.v1.PermissionService/ListPermissions
expect_error "a call without a token is Unauthenticated" Unauthenticated
call -H 'authorization: Bearer not.a.jwt' -d '{}' "$ADDR" warden.v1.PermissionService/ListPermissions
expect_error "a call with a garbage token is Unauthenticated" Unauthenticated

# --- permissions and roles (Guardhouse, Heimdall, CompanyFlow) -------------------------------------
echo "smoke: permissions and roles"
for p in docs:write docs:delete; do
  authed -d "{\"name\":\"$p\"}" "$ADDR" warden.v1.PermissionService/CreatePermission
  expect_json "CreatePermission $p" .name "\"$p\""
done
authed -d '{"name":"docs:read"}' "$ADDR" warden.v1.PermissionService/CreatePermission
expect_error "CreatePermission docs:read again is AlreadyExists" AlreadyExists
authed -d '{"permission":{"name":"docs:read"}}' "$ADDR" warden.v1.PermissionService/GetPermission
expect_json "GetPermission docs:read by name" .description '"Read documents"'

authed -d '{"name":"editor","permissions":[{"name":"docs:read"},{"name":"docs:write"},{"name":"docs:delete"}]}' \
  "$ADDR" warden.v1.RoleService/CreateRole
expect_json "CreateRole editor lists its permissions sorted" .permissions '["docs:delete","docs:read","docs:write"]'

authed -d '{"role":{"name":"editor"},"permission":{"name":"docs:delete"}}' "$ADDR" warden.v1.RoleService/RemovePermissionFromRole
expect_json "RemovePermissionFromRole docs:delete returns the role without it" .role.permissions '["docs:read","docs:write"]'

authed -d '{"role":{"name":"editor"},"permission":{"name":"docs:delete"}}' "$ADDR" warden.v1.RoleService/RemovePermissionFromRole
expect_error "RemovePermissionFromRole docs:delete again is FailedPrecondition PERMISSION_NOT_IN_ROLE" \
  FailedPrecondition 'docs:delete' PERMISSION_NOT_IN_ROLE

authed -d '{"role":{"name":"editor"},"permission":{"name":"docs:delete"},"allowMissing":true}' "$ADDR" warden.v1.RoleService/RemovePermissionFromRole
expect_json "RemovePermissionFromRole with allowMissing succeeds" .role.permissions '["docs:read","docs:write"]'

authed -d '{"role":{"name":"editor"},"permissions":[{"name":"docs:read"},{"name":"docs:write"}]}' "$ADDR" warden.v1.RoleService/RemovePermissionsFromRole
expect_json "RemovePermissionsFromRole docs:read, docs:write leaves no permissions" .role.permissions 'null' '[]'

authed -d '{"role":{"name":"editor"},"permissions":[]}' "$ADDR" warden.v1.RoleService/RemovePermissionsFromRole
expect_error "RemovePermissionsFromRole with an empty list is InvalidArgument" InvalidArgument

authed -d '{"role":{"name":"editor"},"permissions":[{"name":"nope:x"}]}' "$ADDR" warden.v1.RoleService/AddPermissionsToRole
expect_error "AddPermissionsToRole with an unknown permission is NotFound" NotFound 'nope:x'

authed -d '{"role":{"name":"editor"}}' "$ADDR" warden.v1.RoleService/GetRole
expect_json "GetRole editor: the failed batch changed nothing" .permissions 'null' '[]'

# --- Dfns flow (assign -> pending -> approve) ---
echo "smoke: Dfns flow (assign -> 202-style pending -> approve)"
APPROVER_TOKEN="$("${server_env[@]}" "$BINARY" token --sub approver --ttl 10m)"
approver() { call -H "authorization: Bearer $APPROVER_TOKEN" "$@"; }

authed -d '{"name":"payments:send"}' "$ADDR" warden.v1.PermissionService/CreatePermission
expect_json "CreatePermission payments:send" .name '"payments:send"'
authed -d '{"name":"payments","permissions":[{"name":"payments:send"}],"requiresApproval":true}' "$ADDR" warden.v1.RoleService/CreateRole
expect_json "CreateRole payments requires approval" .requiresApproval 'true'

authed -d '{"role":{"name":"payments"},"identity":{"id":"alice","kind":"IDENTITY_KIND_USER"},"reason":"quarter close"}' "$ADDR" warden.v1.AssignmentService/AssignRole
expect_json "AssignRole on an approval-gated role answers with a PENDING change request" .changeRequest.status '"CHANGE_REQUEST_STATUS_PENDING"'
CR_ID="$(json_at "$OUT" .changeRequest.id | tr -d '"')"

authed -d '{"identityId":"alice","permission":"payments:send"}' "$ADDR" warden.v1.AuthorizationService/Check
expect_json "Check before approval: alice cannot send payments" .allowed 'null' 'false'

authed -d "{\"changeRequestId\":\"$CR_ID\"}" "$ADDR" warden.v1.ChangeRequestService/ApproveChangeRequest
expect_error "the requester cannot approve its own request" PermissionDenied '' SELF_APPROVAL

approver -d "{\"changeRequestId\":\"$CR_ID\",\"comment\":\"ok\"}" "$ADDR" warden.v1.ChangeRequestService/ApproveChangeRequest
expect_json "a second admin approves: the request is APPLIED" .status '"CHANGE_REQUEST_STATUS_APPLIED"'

authed -d '{"identityId":"alice","permission":"payments:send","explain":true}' "$ADDR" warden.v1.AuthorizationService/Check
expect_json "Check after approval: alice can send payments" .allowed 'true'

authed -d '{"role":{"name":"payments"},"identity":{"id":"alice","kind":"IDENTITY_KIND_USER"}}' "$ADDR" warden.v1.AssignmentService/AssignRole
expect_error "assigning the role again is AlreadyExists" AlreadyExists '' ALREADY_EXISTS

# --- HTTP/JSON (issue 15): the Dfns flow with curl, on the same port ---
echo "smoke: Dfns flow over HTTP/JSON with curl"
# http METHOD PATH [curl args...]: the answer in $OUT, its HTTP status in $HTTP_CODE, RC 0.
http() {
  local method="$1" path="$2"
  shift 2
  RC=0
  HTTP_CODE="$(curl -sS -o "$OUT" -w '%{http_code}' -X "$method" "http://$ADDR$path" "$@")" || { RC=$?; HTTP_CODE=000; }
}
expect_http() {
  if [ "$HTTP_CODE" = "$2" ]; then pass "$1 (HTTP $2)"; else fail "$1 (HTTP $HTTP_CODE, expected $2)" "$OUT"; fi
}
JSON=(-H "authorization: Bearer $TOKEN" -H 'content-type: application/json')

http POST /v1/permissions "${JSON[@]}" -d '{"name":"reports:read"}'
expect_http "POST /v1/permissions creates a permission" 200
http POST /v1/roles "${JSON[@]}" -d '{"name":"viewer","permissions":[{"name":"reports:read"}]}'
expect_http "POST /v1/roles creates a role" 200
VIEWER_ID="$(json_at "$OUT" .id | tr -d '"')"
http POST "/v1/roles/$VIEWER_ID/assignments" "${JSON[@]}" -d '{"identity":{"id":"hugo","kind":"IDENTITY_KIND_USER"}}'
expect_http "Dfns assign: POST /v1/roles/{role_id}/assignments answers the assignment" 200
expect_json "the assignment is hugo's" .assignment.identity.id '"hugo"'
HUGO_ASSIGNMENT="$(json_at "$OUT" .assignment.id | tr -d '"')"

http POST /v1/roles/payments/assignments "${JSON[@]}" -d '{"identity":{"id":"ivy","kind":"IDENTITY_KIND_USER"},"reason":"month end"}'
expect_http "Dfns assign of an approval-gated role answers 202" 202
expect_json "the 202 carries the pending change request" .changeRequest.status '"CHANGE_REQUEST_STATUS_PENDING"'
IVY_CR="$(json_at "$OUT" .changeRequest.id | tr -d '"')"
http POST "/v1/changeRequests/$IVY_CR:approve" -H "authorization: Bearer $APPROVER_TOKEN" -d '{"comment":"ok"}'
expect_http "the approver approves over HTTP" 200
expect_json "the change request is APPLIED" .status '"CHANGE_REQUEST_STATUS_APPLIED"'
http POST /v1/check "${JSON[@]}" -d '{"identityId":"ivy","permission":"payments:send"}'
expect_json "Check over HTTP: ivy can send payments" .allowed 'true'

http DELETE "/v1/roles/payments/assignments/$HUGO_ASSIGNMENT" -H "authorization: Bearer $TOKEN"
expect_http "Dfns revoke under the wrong role is 404" 404
http DELETE "/v1/roles/$VIEWER_ID/assignments/$HUGO_ASSIGNMENT?force=true" -H "authorization: Bearer $TOKEN"
expect_http "Dfns revoke: DELETE /v1/roles/{role_id}/assignments/{assignment_id}?force=true" 200
http POST /v1/check "${JSON[@]}" -d '{"identityId":"hugo","permission":"reports:read"}'
expect_json "Check over HTTP: hugo lost the permission" .allowed 'false'
http GET /v1/roles/payments
expect_http "no token is 401" 401
expect_json "the error body is a google.rpc.Status" .code '16'
http GET /openapi.json
expect_http "the OpenAPI document is served" 200
expect_json "it is OpenAPI 3" .openapi '"3.0.3"'

# --- approval policies (issue 11) ---
echo "smoke: approval policies (2-of-3 quorum from a group, world changed, expiry, ProposeChange)"
token_for() { "${server_env[@]}" "$BINARY" token --sub "$1" --ttl 10m; }
A1_TOKEN="$(token_for a1)"; A2_TOKEN="$(token_for a2)"; A3_TOKEN="$(token_for a3)"
as_a1() { call -H "authorization: Bearer $A1_TOKEN" "$@"; }
as_a2() { call -H "authorization: Bearer $A2_TOKEN" "$@"; }

authed -d '{"name":"wire:send"}' "$ADDR" warden.v1.PermissionService/CreatePermission
expect_json "CreatePermission wire:send" .name '"wire:send"'
# Approvers hold what they grant (they are the ones granting it at the quorum).
authed -d '{"name":"wire-approver","permissions":[{"name":"warden:change_requests:approve"},{"name":"wire:send"},{"name":"warden:assignments:read"}]}' \
  "$ADDR" warden.v1.RoleService/CreateRole
expect_ok "CreateRole wire-approver"
for who in a1 a2 a3; do
  authed -d "{\"role\":{\"name\":\"wire-approver\"},\"identity\":{\"id\":\"$who\",\"kind\":\"IDENTITY_KIND_USER\"}}" "$ADDR" warden.v1.AssignmentService/AssignRole
  expect_json "AssignRole wire-approver to $who" .assignment.roleName '"wire-approver"'
done
authed -d '{"name":"treasury"}' "$ADDR" warden.v1.GroupService/CreateGroup
TREASURY="$(json_at "$OUT" .id | tr -d '"')"
authed -d "{\"groupId\":\"$TREASURY\",\"identityIds\":[\"a1\",\"a2\",\"a3\"]}" "$ADDR" warden.v1.GroupService/AddGroupMembers
expect_json "group treasury has the three approvers" .memberCount '"3"' '3'
authed -d "{\"name\":\"wires\",\"permissions\":[{\"name\":\"wire:send\"}],\"approvalPolicy\":{\"quorum\":2,\"approverGroupId\":\"$TREASURY\"}}" \
  "$ADDR" warden.v1.RoleService/CreateRole
expect_json "CreateRole wires with a 2-of-treasury policy" .approvalPolicy.quorum '2'

authed -d '{"role":{"name":"wires"},"identity":{"id":"bob","kind":"IDENTITY_KIND_USER"}}' "$ADDR" warden.v1.AssignmentService/AssignRole
expect_json "AssignRole wires to bob is PENDING under the policy" .changeRequest.policy.quorum '2'
WIRE_CR="$(json_at "$OUT" .changeRequest.id | tr -d '"')"
as_a1 -d "{\"changeRequestId\":\"$WIRE_CR\"}" "$ADDR" warden.v1.ChangeRequestService/ApproveChangeRequest
expect_json "a1's approval is recorded; the request stays PENDING" .status '"CHANGE_REQUEST_STATUS_PENDING"'
authed -d '{"identityId":"bob","permission":"wire:send"}' "$ADDR" warden.v1.AuthorizationService/Check
expect_json "one approval of two grants nothing" .allowed 'null' 'false'
as_a1 -d "{\"changeRequestId\":\"$WIRE_CR\"}" "$ADDR" warden.v1.ChangeRequestService/ApproveChangeRequest
expect_error "a1 cannot approve twice" FailedPrecondition '' ALREADY_APPROVED
approver -d "{\"changeRequestId\":\"$WIRE_CR\"}" "$ADDR" warden.v1.ChangeRequestService/ApproveChangeRequest
expect_error "an admin outside the approver group cannot approve" PermissionDenied '' NOT_AN_APPROVER
as_a2 -d "{\"changeRequestId\":\"$WIRE_CR\",\"comment\":\"second\"}" "$ADDR" warden.v1.ChangeRequestService/ApproveChangeRequest
expect_json "a2's approval reaches the quorum: APPLIED" .status '"CHANGE_REQUEST_STATUS_APPLIED"'
authed -d '{"identityId":"bob","permission":"wire:send"}' "$ADDR" warden.v1.AuthorizationService/Check
expect_json "bob can send wires after two approvals" .allowed 'true'

# A request that fails at apply time because the world changed meanwhile.
authed -d '{"role":{"name":"wires"},"identity":{"id":"carol","kind":"IDENTITY_KIND_USER"}}' "$ADDR" warden.v1.AssignmentService/AssignRole
CHANGED_CR="$(json_at "$OUT" .changeRequest.id | tr -d '"')"
as_a1 -d "{\"changeRequestId\":\"$CHANGED_CR\"}" "$ADDR" warden.v1.ChangeRequestService/ApproveChangeRequest
expect_json "first approval of carol's request" .status '"CHANGE_REQUEST_STATUS_PENDING"'
authed -d '{"role":{"name":"wires"},"identity":{"id":"carol","kind":"IDENTITY_KIND_USER"},"force":true}' "$ADDR" warden.v1.AssignmentService/AssignRole
expect_json "meanwhile a bypass holder assigns wires to carol directly" .assignment.roleName '"wires"'
as_a2 -d "{\"changeRequestId\":\"$CHANGED_CR\"}" "$ADDR" warden.v1.ChangeRequestService/ApproveChangeRequest
expect_json "the quorum is reached but the world changed: FAILED" .status '"CHANGE_REQUEST_STATUS_FAILED"'

# Expiry: a policy that leaves a request pending for 2 s; the sweeper auto-rejects it.
authed -d '{"name":"audit:export"}' "$ADDR" warden.v1.PermissionService/CreatePermission
authed -d '{"name":"auditors","permissions":[{"name":"audit:export"}],"approvalPolicy":{"expireAfter":"2s"}}' "$ADDR" warden.v1.RoleService/CreateRole
expect_json "CreateRole auditors with a 2 s expiry" .approvalPolicy.expireAfter '"2s"'
authed -d '{"role":{"name":"auditors"},"identity":{"id":"dave","kind":"IDENTITY_KIND_USER"}}' "$ADDR" warden.v1.AssignmentService/AssignRole
EXPIRING_CR="$(json_at "$OUT" .changeRequest.id | tr -d '"')"
sleep 3
approver -d "{\"changeRequestId\":\"$EXPIRING_CR\"}" "$ADDR" warden.v1.ChangeRequestService/ApproveChangeRequest
# CHANGE_REQUEST_EXPIRED, or CHANGE_REQUEST_NOT_PENDING once the sweeper (every 5 s) got there first.
expect_error "approving after the policy's expiry is refused" FailedPrecondition '[Ee]xpired'
status='""'
for _ in $(seq 1 40); do
  authed -d "{\"changeRequestId\":\"$EXPIRING_CR\"}" "$ADDR" warden.v1.ChangeRequestService/GetChangeRequest
  status="$(json_at "$OUT" .status)"
  [ "$status" = '"CHANGE_REQUEST_STATUS_EXPIRED"' ] && break
  sleep 0.5
done
expect_json "the sweeper auto-rejects it: EXPIRED" .status '"CHANGE_REQUEST_STATUS_EXPIRED"'

# Recruiting an approver is itself gated: proposed instead of made.
authed -d "{\"addGroupMembers\":{\"groupId\":\"$TREASURY\",\"identityIds\":[\"mallory\"]},\"reason\":\"new approver\"}" \
  "$ADDR" warden.v1.ChangeRequestService/ProposeChange
expect_json "ProposeChange of a new approver files a CHANGE request under the wires policy" .kind '"CHANGE_REQUEST_KIND_CHANGE"'
expect_json "... governed by role wires" .role.name '"wires"'

# --- scopes and composite roles (README "Scopes" and "Composite roles") -----------------------------
echo "smoke: scopes and composite roles"
authed -d '{"name":"dept:manage"}' "$ADDR" warden.v1.PermissionService/CreatePermission
authed -d '{"name":"department-manager","permissions":[{"name":"dept:manage"},{"name":"docs:read"}]}' "$ADDR" warden.v1.RoleService/CreateRole
for d in eng sales; do
  authed -d "{\"role\":{\"name\":\"department-manager\"},\"identity\":{\"id\":\"alice\",\"kind\":\"IDENTITY_KIND_USER\"},\"scope\":\"departments/$d\"}" \
    "$ADDR" warden.v1.AssignmentService/AssignRole
  expect_json "alice manages departments/$d" .assignment.scope "\"departments/$d\""
done
authed -d '{"identityId":"alice","permission":"dept:manage","resource":"departments/eng/projects/apollo","explain":true}' \
  "$ADDR" warden.v1.AuthorizationService/Check
expect_json "Check on a project of eng: allowed through departments/eng" .grants[0].scope '"departments/eng"'
authed -d '{"identityId":"alice","permission":"dept:manage","resource":"departments/engineering","explain":true}' \
  "$ADDR" warden.v1.AuthorizationService/Check
expect_json "departments/engineering is another department: explain says where she holds it" \
  '.heldElsewhere|map(.scope)' '["departments/eng","departments/sales"]'
authed -d '{"identityId":"alice","permission":"dept:manage"}' "$ADDR" warden.v1.AuthorizationService/ListGrantedScopes
expect_json "which departments may alice manage" .scopes '["departments/eng","departments/sales"]'
authed -d '{"role":{"name":"department-manager"},"identity":{"id":"alice","kind":"IDENTITY_KIND_USER"},"scope":"departments//x"}' \
  "$ADDR" warden.v1.AssignmentService/AssignRole
expect_error "a malformed scope is InvalidArgument" InvalidArgument 'scope'

authed -d '{"name":"eng-admin","permissions":[{"name":"warden:assignments:write"},{"name":"warden:assignments:read"},{"name":"docs:read"}]}' \
  "$ADDR" warden.v1.RoleService/CreateRole
authed -d '{"role":{"name":"eng-admin"},"identity":{"id":"dana","kind":"IDENTITY_KIND_USER"},"scope":"departments/eng"}' "$ADDR" warden.v1.AssignmentService/AssignRole
DANA_TOKEN="$(token_for dana)"
as_dana() { call -H "authorization: Bearer $DANA_TOKEN" "$@"; }
authed -d '{"name":"reader","permissions":[{"name":"docs:read"}]}' "$ADDR" warden.v1.RoleService/CreateRole
as_dana -d '{"role":{"name":"reader"},"identity":{"id":"bob","kind":"IDENTITY_KIND_USER"},"scope":"departments/eng/projects/apollo"}' \
  "$ADDR" warden.v1.AssignmentService/AssignRole
expect_json "the delegated admin assigns inside her scope" .assignment.scope '"departments/eng/projects/apollo"'
as_dana -d '{"role":{"name":"reader"},"identity":{"id":"bob","kind":"IDENTITY_KIND_USER"},"scope":"departments/sales"}' \
  "$ADDR" warden.v1.AssignmentService/AssignRole
expect_error "... and not outside it" PermissionDenied 'departments/sales' PERMISSION_DENIED
as_dana -d '{"role":{"name":"department-manager"},"identity":{"id":"bob","kind":"IDENTITY_KIND_USER"},"scope":"departments/eng"}' \
  "$ADDR" warden.v1.AssignmentService/AssignRole
expect_error "... nor a role granting what she lacks there" PermissionDenied 'dept:manage' PERMISSION_DENIED

authed -d '{"name":"head-of-eng","includedRoles":[{"name":"department-manager"}]}' "$ADDR" warden.v1.RoleService/CreateRole
expect_json "a composite role includes department-manager" '.includedRoles|map(.name)' '["department-manager"]'
authed -d '{"role":{"name":"department-manager"},"includedRoles":{"roles":[{"name":"head-of-eng"}]}}' "$ADDR" warden.v1.RoleService/UpdateRole
expect_error "a cycle is refused" FailedPrecondition '' ROLE_CYCLE
authed -d '{"role":{"name":"head-of-eng"},"identity":{"id":"erin","kind":"IDENTITY_KIND_USER"}}' "$ADDR" warden.v1.AssignmentService/AssignRole
authed -d '{"identityId":"erin","permission":"dept:manage","explain":true}' "$ADDR" warden.v1.AuthorizationService/Check
expect_json "the composite role grants what it includes, explain shows the path" '.grants[0].inclusionPath|map(.name)' '["department-manager"]'

# --- the admin CLI and configuration as code (README "Administering from the command line") ------
echo "smoke: the admin CLI (warden apply, export, check)"
# cli ARGS...: run the binary as an admin client of the smoke server; sets OUT and RC.
cli() {
  RC=0
  env -u WARDEN_CACERT WARDEN_SERVER="http://$ADDR" WARDEN_TOKEN="$TOKEN" "$BINARY" "$@" >"$OUT" 2>&1 || RC=$?
}
# expect_cli DESC EXIT [REGEX]: the last warden call exited EXIT, and printed a line matching REGEX.
expect_cli() {
  local desc="$1" want="$2" pattern="${3:-}"
  if [ "$RC" -ne "$want" ]; then fail "$desc (exit $RC, expected $want)" "$OUT"; return; fi
  if [ -n "$pattern" ] && ! grep -Eq "$pattern" "$OUT"; then fail "$desc (no line matches /$pattern/)" "$OUT"; return; fi
  pass "$desc"
}
cat >"$WORK/cac.yaml" <<'YAML'
permissions:
  - name: cac:read
  - name: cac:write
roles:
  - name: cac-reader
    permissions: [cac:read]
  - name: cac-writer
    permissions: [cac:write]
    included_roles: [cac-reader]
assignments:
  - role: cac-writer
    identity_id: zoe
    scope: departments/eng
YAML
cli apply -f "$WORK/cac.yaml" --plan
expect_cli "warden apply --plan prints the plan" 0 '^\+ create role cac-writer \(\+cac:write\)$'
cli roles get cac-writer
expect_cli "... and changes nothing (roles get cac-writer exits 2, NOT_FOUND)" 2 'NOT_FOUND'
cli apply -f "$WORK/cac.yaml"
expect_cli "warden apply makes the whole file at one revision" 0 '^applied [0-9]+ changes at revision [0-9]+$'
cli check zoe cac:read --resource departments/eng/projects/apollo
expect_cli "warden check exits 0 when allowed (through the included role, in scope)" 0 '^allowed'
cli check zoe cac:read
expect_cli "warden check exits 7 when denied (tenant-wide)" 7 '^denied'
RC=0
env -u WARDEN_CACERT WARDEN_SERVER="http://$ADDR" WARDEN_TOKEN="$TOKEN" "$BINARY" export >"$WORK/exported.yaml" 2>"$OUT" || RC=$?
[ "$RC" -eq 0 ] || fail "warden export" "$OUT"
cli apply -f "$WORK/exported.yaml"
expect_cli "warden export, applied back, makes no changes" 0 '^no changes'
# The same tenant less cac-writer (its role, permission and assignment), applied with --prune.
RC=0
env -u WARDEN_CACERT WARDEN_SERVER="http://$ADDR" WARDEN_TOKEN="$TOKEN" "$BINARY" -o json export >"$WORK/exported.json" 2>"$OUT" || RC=$?
[ "$RC" -eq 0 ] || fail "warden -o json export" "$OUT"
python3 - "$WORK/exported.json" "$WORK/smaller.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["permissions"] = [p for p in doc["permissions"] if p["name"] != "cac:write"]
doc["roles"] = [r for r in doc["roles"] if r["name"] != "cac-writer"]
doc["assignments"] = [a for a in doc["assignments"] if a["role"] != "cac-writer"]
json.dump(doc, open(sys.argv[2], "w"))
PY
cli apply -f "$WORK/smaller.json" --prune
expect_cli "warden apply --prune of a smaller file deletes what it no longer lists" 0 '^- delete role cac-writer$'
cli roles get cac-writer
expect_cli "... cac-writer is gone (exit 2)" 2 'NOT_FOUND'

# --- TLS and client certificates (README "TLS and mTLS") ------------------------------------------
echo "smoke: TLS and client certificates on a second server"
command -v openssl >/dev/null || die "openssl not found (needed to make the TLS certificates)"
TLS_DIR="$WORK/tls"
mkdir -p "$TLS_DIR"
SPIFFE_ID="spiffe://example.org/ns/prod/sa/billing"
# issue NAME SERIAL EXTENSIONS: NAME.key and NAME.pem signed by the CA.
issue() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TLS_DIR/$1.key" \
    -out "$TLS_DIR/$1.csr" -subj "/CN=$1" 2>/dev/null
  printf '%b' "$3" >"$TLS_DIR/$1.ext"
  openssl x509 -req -in "$TLS_DIR/$1.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" -set_serial "$2" \
    -days 1 -extfile "$TLS_DIR/$1.ext" -out "$TLS_DIR/$1.pem" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
  -days 1 -subj "/CN=smoke CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null \
  || die "openssl cannot make the CA"
issue server 2 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' || die "openssl cannot make the server certificate"
issue billing 3 "subjectAltName=URI:$SPIFFE_ID\nextendedKeyUsage=clientAuth\n" || die "openssl cannot make the client certificate"

TLS_PORT="$(free_port)"
TLS_METRICS_PORT="$(free_port)"
TLS_ADDR="127.0.0.1:$TLS_PORT"
tls_env=("${server_env[@]}" "WARDEN_METRICS_ADDR=127.0.0.1:$TLS_METRICS_PORT"
  "WARDEN_TLS_CERT_FILE=$TLS_DIR/server.pem" "WARDEN_TLS_KEY_FILE=$TLS_DIR/server.key"
  "WARDEN_TLS_CLIENT_CA_FILE=$TLS_DIR/ca.pem")
(cd "$TLS_DIR" && exec "${tls_env[@]}" "$BINARY" serve --dev --listen-addr "$TLS_ADDR" \
  >"$TLS_DIR/server.stdout" 2>"$TLS_DIR/server.stderr" </dev/null) &
TLS_PID=$!
# tls_call ARGS...: grpcurl over TLS trusting the smoke CA; sets OUT and RC.
tls_call() {
  RC=0
  "$GRPCURL" -cacert "$TLS_DIR/ca.pem" -connect-timeout 5 -max-time 15 "$@" >"$OUT" 2>&1 || RC=$?
}
deadline=$((SECONDS + STARTUP_TIMEOUT))
until tls_call -max-time 2 -d '{}' "$TLS_ADDR" grpc.health.v1.Health/Check && grep -q '"status": "SERVING"' "$OUT"; do
  if ! kill -0 "$TLS_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    fail "the TLS server reports SERVING within ${STARTUP_TIMEOUT}s" "$OUT"
    sed 's/^/       | /' "$TLS_DIR/server.stderr" >&2
    break
  fi
  sleep 0.2
done
if [ "$RC" -eq 0 ]; then
  pass "grpcurl -cacert: health Check over TLS is SERVING"
  call -max-time 5 -d '{}' "$TLS_ADDR" grpc.health.v1.Health/Check
  if [ "$RC" -ne 0 ]; then pass "plaintext is refused on the TLS port"; else fail "plaintext is refused on the TLS port" "$OUT"; fi
  # The same secret signs both servers' tokens; --dev made dev-admin an admin on each.
  tls_call -H "authorization: Bearer $TOKEN" -d '{"name":"billing:read"}' "$TLS_ADDR" warden.v1.PermissionService/CreatePermission
  expect_json "a call with a token over TLS: CreatePermission billing:read" .name '"billing:read"'
  RC=0
  env WARDEN_TOKEN="$TOKEN" "$BINARY" --server "https://$TLS_ADDR" --cacert "$TLS_DIR/ca.pem" \
    permissions get billing:read >"$OUT" 2>&1 || RC=$?
  expect_cli "warden --server https://... --cacert: the CLI over TLS" 0 '^name: +billing:read$'
  tls_call -H "authorization: Bearer $TOKEN" -d '{"name":"billing-reader","permissions":[{"name":"billing:read"}]}' \
    "$TLS_ADDR" warden.v1.RoleService/CreateRole
  tls_call -H "authorization: Bearer $TOKEN" -d "{\"role\":{\"name\":\"billing-reader\"},\"identity\":{\"id\":\"$SPIFFE_ID\",\"kind\":\"IDENTITY_KIND_SERVICE_ACCOUNT\"}}" \
    "$TLS_ADDR" warden.v1.AssignmentService/AssignRole
  expect_json "AssignRole billing-reader to the SPIFFE ID" .assignment.roleName '"billing-reader"'
  tls_call -cert "$TLS_DIR/billing.pem" -key "$TLS_DIR/billing.key" \
    -d "{\"identityId\":\"$SPIFFE_ID\",\"permission\":\"billing:read\"}" "$TLS_ADDR" warden.v1.AuthorizationService/Check
  expect_json "no token, a client certificate (grpcurl -cert): its SPIFFE ID is the caller, allowed" .allowed 'true'
fi
kill -TERM "$TLS_PID" 2>/dev/null || true
wait "$TLS_PID" 2>/dev/null || true
TLS_PID=""

# --- shutdown --------------------------------------------------------------------------------------
echo "smoke: shutdown"
kill -TERM "$SERVER_PID"
deadline=$((SECONDS + STOP_TIMEOUT))
while kill -0 "$SERVER_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
  fail "server exits within ${STOP_TIMEOUT}s of SIGTERM"
else
  rc=0; wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  if [ "$rc" -eq 0 ]; then pass "server exits 0 on SIGTERM"; else fail "server exits 0 on SIGTERM (exit $rc)"; fi
fi

echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
