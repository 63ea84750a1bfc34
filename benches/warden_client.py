#!/usr/bin/env python3
"""gRPC client helpers for benches/run.sh (grpcio; stubs generated from proto/ at run time).

  warden_client.py spawn --addr HOST:PORT --stdout F --stderr F [--timeout S] -- CMD ARGS...
      Starts CMD (a `warden serve`), polls its port every 2 ms and then grpc.health.v1.Health/Check
      until SERVING, and prints one JSON line {"pid", "port_open_s", "serving_s"}: seconds from
      just before the process was started. The server is left running (stop it by pid).

  warden_client.py propagation --a HOST:PORT --b HOST:PORT --token T --rounds N --stubs DIR --out TSV
      Two replicas on one PostgreSQL. Per round: AssignRole on A, poll Check on B until it allows,
      RevokeAssignment on A, then poll Check on B (no at_least_revision) every --poll-ms until it
      denies. Writes one TSV row per round and prints a JSON summary: p50/p90/p99/max of the
      revoke -> deny delay measured from the moment RevokeAssignment returned on A to the moment
      the first denying Check returned from B.

  warden_client.py batch --addr HOST:PORT --token T [--items 1000] [--rounds 5] --stubs DIR
      times BatchAssignRoles of ITEMS distinct identities, ROUNDS times; prints the median and max
  warden_client.py writes --addr HOST:PORT --tokens T1,T2,... --clients N --duration S --stubs DIR
      Write throughput: N client threads, each with its own channel, call AssignRole with distinct
      identities for S seconds (after a 1 s warm-up); client i writes in the tenant of token
      i mod len(tokens). Prints one JSON line {"clients", "tenants", "ok", "errors", "per_s"}.

  warden_client.py granted-scopes --addr HOST:PORT --token T --grants N --page-size P --stubs DIR
                   (--seed | --case check|first|all|under --calls C [--rep R])
      ListGrantedScopes latency (issue 13). --seed: BatchAssignRoles (1,000 items a call) of role
      `reader` (granting document.read; created beforehand) to user:lister at N distinct scopes
      departments/d<k/100>/projects/p<k%100>, and reader to user:alice tenant-wide; then walks
      every page of ListGrantedScopes and checks it lists exactly those N scopes, sorted.
      --case: C sequential calls on one channel, each timed from just before the call to its
      answer (after 50 untimed warm-up calls), and prints one JSON line with p50/p90/p99/p99.9/max
      in ms: `first` the first page (page_size P); `all` walks of every page (each page a call;
      also the walk's total); `under` under departments/d42 (100 scopes); `check` a tenant-wide
      Check of user:alice from the same client, the cost of the client and the RPC by themselves.
      With --server-pid, also the server's CPU (utime + stime) per call over the timed calls.
"""
import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = math.ceil(p / 100.0 * len(sorted_vals))  # nearest rank, as ../shared/bench/summarize.py
    return sorted_vals[max(0, min(len(sorted_vals), k) - 1)]


# --------------------------------------------------------------------------------------- spawn
def spawn(args):
    import grpc  # imported before the clock starts

    host, port = args.addr.rsplit(":", 1)
    out = open(args.stdout, "ab")
    err = open(args.stderr, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(args.cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    deadline = t0 + args.timeout

    def dead_or_late(what):
        if proc.poll() is not None:
            raise SystemExit(f"spawn: the server exited (status {proc.returncode}) before {what}; see {args.stderr}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"spawn: no {what} within {args.timeout}s; see {args.stderr}")

    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                break
        except OSError:
            dead_or_late("open port")
            time.sleep(0.002)
    port_open = time.monotonic() - t0
    if args.cacert:  # a TLS server: health over TLS, its certificate checked against the CA
        with open(args.cacert, "rb") as f:
            channel = grpc.secure_channel(args.addr, grpc.ssl_channel_credentials(root_certificates=f.read()))
    else:
        channel = grpc.insecure_channel(args.addr)
    health = channel.unary_unary("/grpc.health.v1.Health/Check")  # raw bytes in and out
    while True:
        try:
            if health(b"", timeout=1.0) == b"\x08\x01":  # HealthCheckResponse{status: SERVING}
                break
        except grpc.RpcError:
            pass
        dead_or_late("SERVING")
        time.sleep(0.002)
    serving = time.monotonic() - t0
    channel.close()
    print(json.dumps({"pid": proc.pid, "port_open_s": round(port_open, 4), "serving_s": round(serving, 4)}))
    return 0


# --------------------------------------------------------------------------------- propagation
def load_stubs(stubs_dir, proto_root):
    """Generates the Python stubs for proto/warden/v1/*.proto into stubs_dir and imports them."""
    from grpc_tools import protoc
    import grpc_tools

    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    protos = sorted(
        os.path.join("warden", "v1", f) for f in os.listdir(os.path.join(proto_root, "warden", "v1")) if f.endswith(".proto")
    )
    # The googleapis files the contract imports (HTTP annotations) and the error details, from
    # third_party/googleapis: this throwaway stub directory has no googleapis package to lean on.
    googleapis = os.path.join(proto_root, "..", "third_party", "googleapis")
    protos += [os.path.join("google", "api", "annotations.proto"), os.path.join("google", "api", "http.proto"),
               os.path.join("google", "rpc", "error_details.proto")]
    os.makedirs(stubs_dir, exist_ok=True)
    rc = protoc.main(["protoc", f"-I{proto_root}", f"-I{googleapis}", f"-I{wkt}", f"--python_out={stubs_dir}",
                      f"--grpc_python_out={stubs_dir}", *protos])
    if rc != 0:
        raise SystemExit(f"protoc failed ({rc})")
    sys.path.insert(0, stubs_dir)
    from warden.v1 import assignments_pb2, assignments_pb2_grpc, authorization_pb2, authorization_pb2_grpc
    from warden.v1 import common_pb2, permissions_pb2, permissions_pb2_grpc, roles_pb2, roles_pb2_grpc
    return {
        "assignments_pb2": assignments_pb2, "assignments_grpc": assignments_pb2_grpc,
        "authorization_pb2": authorization_pb2, "authorization_grpc": authorization_pb2_grpc,
        "common_pb2": common_pb2, "permissions_pb2": permissions_pb2, "permissions_grpc": permissions_pb2_grpc,
        "roles_pb2": roles_pb2, "roles_grpc": roles_pb2_grpc,
    }


def propagation(args):
    import grpc

    s = load_stubs(args.stubs, args.proto)
    md = (("authorization", f"Bearer {args.token}"),)
    ch_a = grpc.insecure_channel(args.a)
    ch_b = grpc.insecure_channel(args.b)
    perms = s["permissions_grpc"].PermissionServiceStub(ch_a)
    roles = s["roles_grpc"].RoleServiceStub(ch_a)
    assign_a = s["assignments_grpc"].AssignmentServiceStub(ch_a)
    authz_b = s["authorization_grpc"].AuthorizationServiceStub(ch_b)
    common = s["common_pb2"]

    def ignore_exists(call):
        try:
            call()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise

    ignore_exists(lambda: perms.CreatePermission(s["permissions_pb2"].CreatePermissionRequest(name="prop.read"), metadata=md))
    ignore_exists(lambda: roles.CreateRole(
        s["roles_pb2"].CreateRoleRequest(name="prop.reader", permissions=[common.PermissionRef(name="prop.read")]), metadata=md))

    identity = "user:prop"
    check_req = s["authorization_pb2"].CheckRequest(identity_id=identity, permission="prop.read")
    poll = args.poll_ms / 1000.0

    def wait_on_b(want_allowed, since, min_revision):
        """Polls B until Check says want_allowed; returns (delay from `since` to the answer, polls, revision)."""
        polls = 0
        while True:
            r = authz_b.Check(check_req, metadata=md, timeout=5)
            polls += 1
            done = time.monotonic()
            if r.allowed == want_allowed:
                return done - since, polls, r.revision
            if done - since > args.round_timeout:
                return None, polls, r.revision
            time.sleep(poll)

    # a leftover assignment from an interrupted run would make the first wait for "denied" fail
    rows, revoke_delays, assign_delays, timeouts, early = [], [], [], 0, 0
    warm = max(10, args.rounds // 100)
    t_start = time.monotonic()
    for i in range(warm + args.rounds):
        t = time.monotonic()
        ar = assign_a.AssignRole(s["assignments_pb2"].AssignRoleRequest(
            role=common.RoleRef(name="prop.reader"), identity=common.Identity(id=identity, kind=common.IDENTITY_KIND_USER), force=True),
            metadata=md, timeout=10)
        assigned = time.monotonic()
        a_delay, a_polls, _ = wait_on_b(True, assigned, ar.revision)
        rr = assign_a.RevokeAssignment(s["assignments_pb2"].RevokeAssignmentRequest(
            assignment_id=ar.assignment.id, force=True), metadata=md, timeout=10)
        revoked = time.monotonic()
        r_delay, r_polls, seen_rev = wait_on_b(False, revoked, rr.revision)
        if i < warm:
            continue
        if r_delay is None or a_delay is None:
            timeouts += 1
        else:
            revoke_delays.append(r_delay)
            assign_delays.append(a_delay)
            if seen_rev < rr.revision:
                early += 1  # denied at an older revision than the revoke's: would be a bug
        rows.append((i - warm, (assigned - t) * 1e3, (a_delay or -1) * 1e3, a_polls,
                     (revoked - assigned - (a_delay or 0)) * 1e3, (r_delay or -1) * 1e3, r_polls, rr.revision, seen_rev))
    elapsed = time.monotonic() - t_start
    with open(args.out, "w") as f:
        f.write("round\tassign_rpc_ms\tassign_visible_on_b_ms\tassign_polls\trevoke_rpc_ms\trevoke_visible_on_b_ms\trevoke_polls\trevoke_revision\tdeny_revision\n")
        for row in rows:
            f.write("\t".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + "\n")
    rd = sorted(d * 1e3 for d in revoke_delays)
    ad = sorted(d * 1e3 for d in assign_delays)
    revoke_rpc = sorted(r[4] for r in rows)
    first_poll_denied = sum(1 for r in rows if r[6] == 1)
    summary = {
        "rounds": len(rows), "warmup_rounds": warm, "timeouts": timeouts, "denied_below_revoke_revision": early,
        "revoke_to_deny_ms": {"p50": pct(rd, 50), "p90": pct(rd, 90), "p99": pct(rd, 99), "max": rd[-1] if rd else None,
                              "mean": sum(rd) / len(rd) if rd else None},
        "assign_to_allow_ms": {"p50": pct(ad, 50), "p99": pct(ad, 99), "max": ad[-1] if ad else None},
        "revoke_rpc_ms": {"p50": pct(revoke_rpc, 50), "p99": pct(revoke_rpc, 99)},
        "rounds_denied_on_first_poll": first_poll_denied,
        "poll_interval_ms": args.poll_ms, "elapsed_s": round(elapsed, 1),
    }
    print(json.dumps(summary))
    return 0


def writes(args):
    import threading

    import grpc

    s = load_stubs(args.stubs, args.proto)
    common = s["common_pb2"]
    tokens = args.tokens.split(",")
    for tok in tokens:
        md = (("authorization", f"Bearer {tok}"),)
        ch = grpc.insecure_channel(args.addr)
        for call in (
            lambda: s["permissions_grpc"].PermissionServiceStub(ch).CreatePermission(
                s["permissions_pb2"].CreatePermissionRequest(name="writes.read"), metadata=md),
            lambda: s["roles_grpc"].RoleServiceStub(ch).CreateRole(s["roles_pb2"].CreateRoleRequest(
                name="writes.reader", permissions=[common.PermissionRef(name="writes.read")]), metadata=md),
        ):
            try:
                call()
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise
        ch.close()

    run = f"{os.getpid()}-{int(time.time())}"
    start = time.monotonic() + 1.0  # warm-up: calls before this are not counted
    stop = start + args.duration
    counts = [[0, 0] for _ in range(args.clients)]

    def client(i):
        md = (("authorization", f"Bearer {tokens[i % len(tokens)]}"),)
        stub = s["assignments_grpc"].AssignmentServiceStub(grpc.insecure_channel(args.addr))
        k = 0
        while True:
            now = time.monotonic()
            if now >= stop:
                return
            k += 1
            req = s["assignments_pb2"].AssignRoleRequest(
                role=common.RoleRef(name="writes.reader"), identity=common.Identity(id=f"w-{run}-{i}-{k}", kind=common.IDENTITY_KIND_USER))
            try:
                stub.AssignRole(req, metadata=md, timeout=30)
                ok = True
            except grpc.RpcError:
                ok = False
            if time.monotonic() >= start and time.monotonic() < stop:
                counts[i][0 if ok else 1] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = sum(c[0] for c in counts)
    errors = sum(c[1] for c in counts)
    print(json.dumps({"clients": args.clients, "tenants": len(tokens), "ok": ok, "errors": errors,
                      "per_s": round(ok / args.duration, 1)}))
    return 0


LISTER = "user:lister"
UNDER = "departments/d42"


def granted_scope_names(n):
    return [f"departments/d{k // 100}/projects/p{k % 100}" for k in range(n)]


def granted_scopes(args):
    """ListGrantedScopes for an identity holding --grants scoped grants: --seed, or time --case."""
    import grpc

    s = load_stubs(args.stubs, args.proto)
    common, az = s["common_pb2"], s["authorization_pb2"]
    md = (("authorization", f"Bearer {args.token}"),)
    ch = grpc.insecure_channel(args.addr)
    authz = s["authorization_grpc"].AuthorizationServiceStub(ch)
    scopes = granted_scope_names(args.grants)
    want_all = sorted(scopes)
    want_under = sorted(x for x in scopes if x.startswith(UNDER + "/"))

    def walk(revision=0, under=""):
        """Every page; returns (scopes, per-call seconds)."""
        out, times, token = [], [], ""
        while True:
            req = az.ListGrantedScopesRequest(identity_id=LISTER, permission="document.read", under=under,
                                              page_size=args.page_size, page_token=token, at_least_revision=revision)
            t0 = time.perf_counter()
            r = authz.ListGrantedScopes(req, metadata=md, timeout=30)
            times.append(time.perf_counter() - t0)
            out.extend(r.scopes)
            token = r.next_page_token
            if not token:
                return out, times

    if args.seed:
        assign = s["assignments_grpc"].AssignmentServiceStub(ch)
        t0 = time.monotonic()
        revision = 0
        items = [s["assignments_pb2"].AssignmentItem(role=common.RoleRef(name="reader"),
                                                     identity=common.Identity(id=LISTER, kind=common.IDENTITY_KIND_USER), scope=x, force=True)
                 for x in scopes]
        items.append(s["assignments_pb2"].AssignmentItem(role=common.RoleRef(name="reader"),
                                                         identity=common.Identity(id="user:alice", kind=common.IDENTITY_KIND_USER), force=True))
        for i in range(0, len(items), 1000):
            r = assign.BatchAssignRoles(s["assignments_pb2"].BatchAssignRolesRequest(items=items[i:i + 1000]),
                                        metadata=md, timeout=120)
            bad = [k for k, x in enumerate(r.results) if not x.HasField("assignment")]
            if len(r.results) != len(items[i:i + 1000]) or bad:
                raise SystemExit(f"granted-scopes seed: batch at {i}: {len(r.results)} results, not assigned: {bad[:5]}")
            revision = max(revision, r.revision)
        seeded = time.monotonic() - t0
        got, _ = walk(revision)
        if got != want_all:
            raise SystemExit(f"granted-scopes: listed {len(got)} scopes, want the {len(want_all)} seeded")
        got_under, _ = walk(revision, UNDER)
        if got_under != want_under:
            raise SystemExit(f"granted-scopes: under {UNDER} listed {got_under[:3]}..., want {want_under[:3]}...")
        print(json.dumps({"seeded_grants": len(scopes), "identity": LISTER, "seed_s": round(seeded, 2),
                          "revision": revision, "listed": len(got), "pages": -(-len(got) // args.page_size),
                          "under": UNDER, "listed_under": len(got_under)}))
        return 0

    check_req = az.CheckRequest(identity_id="user:alice", permission="document.read")
    first_req = az.ListGrantedScopesRequest(identity_id=LISTER, permission="document.read", page_size=args.page_size)
    under_req = az.ListGrantedScopesRequest(identity_id=LISTER, permission="document.read", under=UNDER,
                                            page_size=args.page_size)
    want_first = want_all[: args.page_size]

    def one(case):
        """One timed unit: a list of per-call seconds, and the items answered."""
        if case == "check":
            t0 = time.perf_counter()
            r = authz.Check(check_req, metadata=md, timeout=30)
            dt = time.perf_counter() - t0
            if not r.allowed:
                raise SystemExit("granted-scopes: alice's Check denied")
            return [dt], 1
        if case == "first":
            t0 = time.perf_counter()
            r = authz.ListGrantedScopes(first_req, metadata=md, timeout=30)
            dt = time.perf_counter() - t0
            if len(r.scopes) != len(want_first) or r.scopes[0] != want_first[0] or r.scopes[-1] != want_first[-1]:
                raise SystemExit(f"granted-scopes: first page has {len(r.scopes)} scopes")
            return [dt], len(r.scopes)
        if case == "under":
            t0 = time.perf_counter()
            r = authz.ListGrantedScopes(under_req, metadata=md, timeout=30)
            dt = time.perf_counter() - t0
            if len(r.scopes) != len(want_under[: args.page_size]):
                raise SystemExit(f"granted-scopes: under {UNDER} has {len(r.scopes)} scopes")
            return [dt], len(r.scopes)
        got, times = walk()
        if len(got) != len(want_all):
            raise SystemExit(f"granted-scopes: the walk listed {len(got)} scopes")
        return times, len(got)

    def server_cpu_s():
        if not args.server_pid:
            return 0.0
        with open(f"/proc/{args.server_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    for _ in range(50):
        one(args.case)
    calls, walks, items = [], [], 0
    cpu0 = server_cpu_s()
    while len(calls) < args.calls:
        times, n = one(args.case)
        calls.extend(times)
        walks.append(sum(times))
        items = n
    cpu1 = server_cpu_s()
    ms = sorted(x * 1e3 for x in calls)
    out = {"case": args.case, "rep": args.rep, "calls": len(ms), "items_per_unit": items,
           "page_size": args.page_size, "grants": args.grants,
           "p50_ms": round(pct(ms, 50), 3), "p90_ms": round(pct(ms, 90), 3), "p99_ms": round(pct(ms, 99), 3),
           "p999_ms": round(pct(ms, 99.9), 3), "max_ms": round(ms[-1], 3), "mean_ms": round(sum(ms) / len(ms), 3)}
    if args.server_pid:
        out["server_cpu_ms_per_call"] = round((cpu1 - cpu0) * 1e3 / len(ms), 3)
    if args.case == "all":
        w = sorted(x * 1e3 for x in walks)
        out.update(walks=len(w), pages_per_walk=len(calls) // len(w), walk_p50_ms=round(pct(w, 50), 3),
                   walk_p99_ms=round(pct(w, 99), 3), walk_max_ms=round(w[-1], 3))
    print(json.dumps(out))
    return 0


def batch(args):
    """Times BatchAssignRoles of --items distinct identities, --rounds times, one after another."""
    import grpc

    s = load_stubs(args.stubs, args.proto)
    common = s["common_pb2"]
    md = (("authorization", f"Bearer {args.token}"),)
    ch = grpc.insecure_channel(args.addr)
    try:
        s["permissions_grpc"].PermissionServiceStub(ch).CreatePermission(
            s["permissions_pb2"].CreatePermissionRequest(name="batch.read"), metadata=md)
        s["roles_grpc"].RoleServiceStub(ch).CreateRole(s["roles_pb2"].CreateRoleRequest(
            name="batch.reader", permissions=[common.PermissionRef(name="batch.read")]), metadata=md)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    stub = s["assignments_grpc"].AssignmentServiceStub(ch)
    run = f"{os.getpid()}-{int(time.time())}"
    times = []
    for r in range(args.rounds):
        items = [s["assignments_pb2"].AssignmentItem(
            role=common.RoleRef(name="batch.reader"), identity=common.Identity(id=f"b-{run}-{r}-{k}", kind=common.IDENTITY_KIND_USER))
            for k in range(args.items)]
        req = s["assignments_pb2"].BatchAssignRolesRequest(items=items)
        t0 = time.monotonic()
        resp = stub.BatchAssignRoles(req, metadata=md, timeout=60)
        times.append(time.monotonic() - t0)
        if len(resp.results) != args.items:
            raise SystemExit(f"batch answered {len(resp.results)} results for {args.items} items")
    times.sort()
    print(json.dumps({"items": args.items, "rounds": args.rounds,
                      "median_s": round(times[len(times) // 2], 3), "max_s": round(times[-1], 3)}))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd_name", required=True)
    sp = sub.add_parser("spawn")
    sp.add_argument("--addr", required=True)
    sp.add_argument("--stdout", required=True)
    sp.add_argument("--stderr", required=True)
    sp.add_argument("--timeout", type=float, default=120)
    sp.add_argument("--cacert", help="the server speaks TLS: CA certificate (PEM) to check it with")
    sp.add_argument("cmd", nargs=argparse.REMAINDER)
    pp = sub.add_parser("propagation")
    pp.add_argument("--a", required=True)
    pp.add_argument("--b", required=True)
    pp.add_argument("--token", required=True)
    pp.add_argument("--rounds", type=int, default=1000)
    pp.add_argument("--poll-ms", type=float, default=0.5)
    pp.add_argument("--round-timeout", type=float, default=5.0)
    pp.add_argument("--stubs", default=os.path.join(tempfile.gettempdir(), "warden-bench-stubs"))
    pp.add_argument("--proto", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto"))
    pp.add_argument("--out", required=True)
    wp = sub.add_parser("writes")
    wp.add_argument("--addr", required=True)
    wp.add_argument("--tokens", required=True)
    wp.add_argument("--clients", type=int, default=1)
    wp.add_argument("--duration", type=float, default=5)
    wp.add_argument("--stubs", default=os.path.join(tempfile.gettempdir(), "warden-bench-stubs"))
    wp.add_argument("--proto", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto"))
    bp = sub.add_parser("batch")
    bp.add_argument("--addr", required=True)
    bp.add_argument("--token", required=True)
    bp.add_argument("--items", type=int, default=1000)
    bp.add_argument("--rounds", type=int, default=5)
    bp.add_argument("--stubs", default=os.path.join(tempfile.gettempdir(), "warden-bench-stubs"))
    bp.add_argument("--proto", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto"))
    gp = sub.add_parser("granted-scopes")
    gp.add_argument("--addr", required=True)
    gp.add_argument("--token", required=True)
    gp.add_argument("--grants", type=int, default=10000)
    gp.add_argument("--page-size", type=int, default=1000)
    gp.add_argument("--seed", action="store_true")
    gp.add_argument("--case", choices=("check", "first", "all", "under"))
    gp.add_argument("--calls", type=int, default=2000)
    gp.add_argument("--rep", type=int, default=1)
    gp.add_argument("--server-pid", type=int, default=0)
    gp.add_argument("--stubs", default=os.path.join(tempfile.gettempdir(), "warden-bench-stubs"))
    gp.add_argument("--proto", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto"))
    args = p.parse_args()
    if args.cmd_name == "granted-scopes":
        if not args.seed and not args.case:
            p.error("granted-scopes: --seed or --case")
        return granted_scopes(args)
    if args.cmd_name == "batch":
        return batch(args)
    if args.cmd_name == "writes":
        return writes(args)
    if args.cmd_name == "spawn":
        if args.cmd and args.cmd[0] == "--":
            args.cmd = args.cmd[1:]
        if not args.cmd:
            p.error("spawn: no command")
        return spawn(args)
    return propagation(args)


if __name__ == "__main__":
    sys.exit(main())
