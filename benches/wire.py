#!/usr/bin/env python3
"""Warden request bodies for h2load, and checks of Warden's answers (standard library only).

The protobuf wire format is written by hand, as ../shared/bench/encode_requests.py does for the
tonic floor and Cerbos, so h2load can send the exact bytes from a file.

  wire.py encode OUTDIR
      OUTDIR/warden_check.bin  warden.v1.CheckRequest {identity_id:"user:alice", permission:"document.read"}
      OUTDIR/warden_batch.bin  warden.v1.BatchCheckRequest with BATCH_ITEMS items: even items ask
                               for user:alice (allowed), odd items for user:bob (denied: bob holds
                               another role), all for document.read
      OUTDIR/warden_getrole.bin warden.v1.GetRoleRequest {role: {name: "reader"}} (an admin read)
      OUTDIR/warden_check_scoped.bin  CheckRequest {identity_id:"user:carol", permission:"document.read",
                               resource:"a/1/b/2/c/3/d/4"}: carol holds reader at a/1, a/1/b/2 and
                               a/1/b/2/c/3 (run.sh's seed_api), nothing tenant-wide
      OUTDIR/warden_check_composite.bin  CheckRequest {identity_id:"user:dave", permission:"report.read"}:
                               dave holds composite.l0 tenant-wide, which grants report.read only
                               through 4 levels of inclusion (l0 > l1 > l2 > l3 > l4 = report.read)
      OUTDIR/warden_check_scopes_scale.bin  CheckRequest {identity_id:"user:alice",
                               permission:"document.read", resource:SCOPED_RESOURCE}: in the
                               scopes-scale databases alice holds reader at SCOPED_GRANT only
  wire.py check-check BODY     exits 0 only if BODY (a raw gRPC response body, as curl saves it)
                               is one uncompressed CheckResponse frame with allowed=true; prints its size
  wire.py check-batch BODY     same for a BatchCheckResponse: BATCH_ITEMS results, each allowed
                               exactly as encode intended (alternating true/false)
  wire.py check-getrole BODY   same for a Role: name "reader", granting document.read

Field numbers (proto/warden/v1/authorization.proto):
  CheckRequest  { identity_id=1; permission=2; at_least_revision=3; explain=4; resource=5; }
  CheckResponse { allowed=1; revision=2; reason=3; ... }   reason GRANTED=1 NO_GRANT=2
  BatchCheckRequest { repeated CheckRequest items=1; }  BatchCheckResponse { repeated CheckResponse results=1; }
(proto/warden/v1/roles.proto, common.proto):
  GetRoleRequest { RoleRef role=1; }  RoleRef { oneof ref { id=1; name=2; } }
  Role { id=1; name=2; description=3; is_system=4; requires_approval=5; repeated permissions=6;
         tenant_id=7; create_time=8; update_time=9; revision=10; etag=11; }
"""
import os
import struct
import sys
from pathlib import Path

BATCH_ITEMS = int(os.environ.get("BATCH_ITEMS", "100"))
ALLOWED = ("user:alice", "document.read")
DENIED = ("user:bob", "document.read")
ROLE = "reader"  # seeded by run.sh's seed_api, granting document.read
# Issue 13: a resource 4 pairs deep, asked about by an identity holding reader at 3 levels of it.
SCOPED = ("user:carol", "document.read", "a/1/b/2/c/3/d/4")
# A permission held only through a role with 4 levels of inclusion.
COMPOSITE = ("user:dave", "report.read")
# The scopes-scale databases (benches/seed.sql with scopes > 0): alice holds reader at
# SCOPED_GRANT in tenant `default`; the Check asks about a resource under it.
SCOPED_GRANT = "departments/d0/projects/p42"
SCOPED_RESOURCE = SCOPED_GRANT + "/documents/doc1"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def ld(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def frame(msg: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(msg)) + msg


def check_request(identity: str, permission: str, resource: str = "") -> bytes:
    out = ld(1, identity.encode()) + ld(2, permission.encode())
    if resource:
        out += ld(5, resource.encode())
    return out


def get_role_request(name: str) -> bytes:
    return ld(1, ld(2, name.encode()))


def batch_expectation():
    return [(ALLOWED if i % 2 == 0 else DENIED) for i in range(BATCH_ITEMS)]


def decode(buf: bytes):
    out, i = [], 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i : i + n], i + n
        elif wt == 1:
            v, i = buf[i : i + 8], i + 8
        elif wt == 5:
            v, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unexpected wire type {wt}")
        out.append((field, wt, v))
    return out


def read_varint(buf: bytes, i: int):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def unframe(body: bytes) -> bytes:
    if len(body) < 5:
        raise SystemExit(f"response body too short for a gRPC frame ({len(body)} bytes): a gRPC error?")
    flag, n = body[0], struct.unpack(">I", body[1:5])[0]
    if flag != 0 or len(body) != 5 + n:
        raise SystemExit(f"not one uncompressed frame: flag={flag} len={n} body={len(body)}")
    return body[5:]


def check_response(msg: bytes) -> dict:
    fields = {f: v for f, wt, v in decode(msg) if wt == 0}
    return {"allowed": fields.get(1, 0) == 1, "revision": fields.get(2, 0), "reason": fields.get(3, 0)}


def main(argv):
    if len(argv) == 3 and argv[1] == "encode":
        out = Path(argv[2])
        out.mkdir(parents=True, exist_ok=True)
        single = frame(check_request(*ALLOWED))
        batch = frame(b"".join(ld(1, check_request(*item)) for item in batch_expectation()))
        get_role = frame(get_role_request(ROLE))
        bodies = (("warden_check.bin", single), ("warden_batch.bin", batch), ("warden_getrole.bin", get_role),
                  ("warden_check_scoped.bin", frame(check_request(*SCOPED))),
                  ("warden_check_composite.bin", frame(check_request(*COMPOSITE))),
                  ("warden_check_scopes_scale.bin", frame(check_request(*ALLOWED, SCOPED_RESOURCE))))
        for name, body in bodies:
            (out / name).write_bytes(body)
            print(f"{name}: {len(body)} bytes")
        return 0
    if len(argv) == 3 and argv[1] == "check-check":
        body = Path(argv[2]).read_bytes()
        r = check_response(unframe(body))
        if not r["allowed"] or r["reason"] != 1:
            raise SystemExit(f"warden Check: not allowed/GRANTED: {r}")
        print(f"warden Check: allowed=true reason=GRANTED revision={r['revision']} (response frame {len(body)} bytes)")
        return 0
    if len(argv) == 3 and argv[1] == "check-batch":
        body = Path(argv[2]).read_bytes()
        results = [check_response(v) for f, wt, v in decode(unframe(body)) if f == 1 and wt == 2]
        want = [item == ALLOWED for item in batch_expectation()]
        got = [r["allowed"] for r in results]
        if got != want:
            raise SystemExit(f"warden BatchCheck: expected {want}, got {got}")
        print(f"warden BatchCheck: {len(results)} results, {sum(got)} allowed and {len(got) - sum(got)} denied "
              f"as expected (response frame {len(body)} bytes)")
        return 0
    if len(argv) == 3 and argv[1] == "check-getrole":
        body = Path(argv[2]).read_bytes()
        fields = decode(unframe(body))
        name = [v.decode() for f, wt, v in fields if f == 2 and wt == 2]
        perms = [v.decode() for f, wt, v in fields if f == 6 and wt == 2]
        role_id = next((v.decode() for f, wt, v in fields if f == 1 and wt == 2), "")
        if name != [ROLE] or ALLOWED[1] not in perms:
            raise SystemExit(f"warden GetRole: expected name {ROLE!r} granting {ALLOWED[1]}, got name={name} permissions={perms}")
        print(f"warden GetRole: name={ROLE} id={role_id} permissions={perms} (response frame {len(body)} bytes)")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
