"""warden_client against a live server: the binary named by WARDEN_BIN, started here on free
loopback ports with a fresh SQLite database, and stopped at the end.

    WARDEN_BIN=/path/to/warden python -m pytest tests

Without WARDEN_BIN every test fails (never skips): CI must not pass by testing nothing.
"""
import os
import secrets
import socket
import subprocess
import time
import uuid

import grpc
import pytest

import warden_client as w
from warden_client import common_pb2, permissions_pb2, roles_pb2, assignments_pb2

STARTUP_TIMEOUT = 30.0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unique(prefix):
    """Names unique to one test: every test shares the one server."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Server:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.addr = f"127.0.0.1:{_free_port()}"
        self.env = dict(
            os.environ,
            WARDEN_DATABASE_URL=f"sqlite://{workdir}/warden.db?mode=rwc",
            WARDEN_LISTEN_ADDR=self.addr,
            WARDEN_METRICS_ADDR=f"127.0.0.1:{_free_port()}",
            WARDEN_AUTH_HS256_SECRET=secrets.token_hex(32),
            WARDEN_AUTH_ISSUER="warden-client-tests",
            WARDEN_AUTH_AUDIENCE="warden",
            WARDEN_BOOTSTRAP_ADMINS="admin",
        )
        self.stderr_path = os.path.join(workdir, "server.stderr")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "serve"], env=self.env, cwd=workdir,
            stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr,
        )

    def log_tail(self, lines=30):
        with open(self.stderr_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def wait_serving(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with grpc.insecure_channel(self.addr) as channel:
            health = channel.unary_unary("/grpc.health.v1.Health/Check")  # raw bytes in and out
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"warden exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if health(b"", timeout=1.0) == b"\x08\x01":  # HealthCheckResponse{SERVING}
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"warden not SERVING within {STARTUP_TIMEOUT}s:\n{self.log_tail()}")
                time.sleep(0.05)

    def token(self, sub, **env):
        """A token minted by the binary itself (`warden token`), with the server's secret
        unless `env` overrides it."""
        out = subprocess.run(
            [self.binary, "token", "--sub", sub, "--ttl", "1h"], env=dict(self.env, **env),
            check=True, capture_output=True, text=True, timeout=30,
        )
        return out.stdout.strip()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = os.environ.get("WARDEN_BIN")
    if not binary:
        pytest.fail("WARDEN_BIN is not set: it must name the warden binary these tests start")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"WARDEN_BIN={binary} is not an executable file")
    srv = Server(os.path.abspath(binary), str(tmp_path_factory.mktemp("warden")))
    try:
        srv.wait_serving()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def admin_token(server):
    return server.token("admin")


@pytest.fixture
def admin(server, admin_token):
    with w.Client(server.addr, token=admin_token) as client:
        yield client


def _create_permission(client, name, **kwargs):
    return client.permissions.CreatePermission(permissions_pb2.CreatePermissionRequest(name=name), **kwargs)


def test_grant_then_check_allows_and_denies(admin):
    read, write = _unique("docs") + ":read", _unique("docs") + ":write"
    _create_permission(admin, read)
    _create_permission(admin, write)
    role = _unique("reader")
    admin.roles.CreateRole(roles_pb2.CreateRoleRequest(
        name=role, permissions=[common_pb2.PermissionRef(name=read)]))
    alice = _unique("alice")
    assigned = admin.assignments.AssignRole(assignments_pb2.AssignRoleRequest(
        role=common_pb2.RoleRef(name=role), identity=common_pb2.Identity(id=alice, kind=common_pb2.IDENTITY_KIND_USER),
        scope="departments/eng"))
    assert assigned.WhichOneof("result") == "assignment"

    # Read-your-write: answered once the index has the assignment's revision.
    rev = assigned.revision
    assert admin.check(alice, read, "departments/eng/projects/apollo", at_least_revision=rev) is True
    assert admin.check(alice, read, "departments/sales", at_least_revision=rev) is False
    assert admin.check(alice, read, at_least_revision=rev) is False  # tenant-wide: no grant
    assert admin.check(alice, write, "departments/eng", at_least_revision=rev) is False
    assert admin.check(_unique("bob"), read, "departments/eng", at_least_revision=rev) is False
    assert admin.check(alice, "no-such:permission", "departments/eng") is False


def test_not_found_is_typed_with_reason_and_metadata(admin):
    missing = _unique("ghost")
    with pytest.raises(w.NotFound) as caught:
        admin.roles.GetRole(roles_pb2.GetRoleRequest(role=common_pb2.RoleRef(name=missing)))
    err = caught.value
    assert isinstance(err, w.WardenError)
    assert err.code == grpc.StatusCode.NOT_FOUND
    assert err.reason == w.Reason.NOT_FOUND
    assert err.domain == "warden"
    assert err.metadata == {"kind": "role", "missing": missing}
    assert err.request_id  # RequestInfo, on every error
    assert isinstance(err.__cause__, grpc.RpcError)  # the original stays reachable


def test_invalid_argument_names_the_field(admin):
    with pytest.raises(w.InvalidArgument) as caught:
        _create_permission(admin, "not a valid name!")
    err = caught.value
    assert err.reason == w.Reason.INVALID_ARGUMENT
    assert [v.field for v in err.field_violations] == ["name"]
    assert err.field_violations[0].description


def test_already_exists(admin):
    name = _unique("dup") + ":x"
    first = _create_permission(admin, name)
    # A second call gets its own idempotency key, so it is a new request, not a replay.
    with pytest.raises(w.AlreadyExists) as caught:
        _create_permission(admin, name)
    err = caught.value
    assert err.reason == w.Reason.ALREADY_EXISTS
    assert err.metadata["kind"] == "permission"
    assert err.metadata["key"] == name
    assert first.id


def test_permission_denied_names_what_is_missing(server):
    with w.Client(server.addr, token=server.token(_unique("nobody"))) as client:
        with pytest.raises(w.PermissionDenied) as caught:
            _create_permission(client, _unique("x") + ":y")
    assert caught.value.reason == w.Reason.PERMISSION_DENIED
    assert "missing_permissions" in caught.value.metadata


@pytest.mark.parametrize("kind", ["garbage", "wrong-secret"])
def test_bad_token_is_unauthenticated(server, kind):
    token = "not-a-jwt" if kind == "garbage" else server.token("admin", WARDEN_AUTH_HS256_SECRET=secrets.token_hex(32))
    with w.Client(server.addr, token=token) as client:
        with pytest.raises(w.Unauthenticated) as caught:
            client.check("admin", "docs:read")
    assert caught.value.reason == w.Reason.UNAUTHENTICATED
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_token_file_rotation_is_picked_up(server, admin_token, tmp_path):
    # As the kubelet rotates a projected token: a new file moved over the old one.
    path = tmp_path / "token"

    def rotate(token):
        staged = tmp_path / "token.new"
        staged.write_text(token + "\n")
        os.replace(staged, path)

    rotate("expired-or-garbage")
    with w.Client(server.addr, token_file=str(path)) as client:
        with pytest.raises(w.Unauthenticated):
            client.check("admin", "docs:read")
        rotate(admin_token)
        assert client.check("admin", "docs:read") is False  # authenticated: an answer, not an error
        rotate("garbage-again")
        with pytest.raises(w.Unauthenticated):
            client.check("admin", "docs:read")
        path.write_text(admin_token)  # rewritten in place works too
        assert client.check("admin", "docs:read") is False


def test_token_callback_is_asked_per_call(server, admin_token):
    calls = []

    def token():
        calls.append(1)
        return admin_token

    with w.Client(server.addr, token_callback=token) as client:
        client.check("admin", "docs:read")
        client.check("admin", "docs:read")
    assert len(calls) == 2


def test_idempotent_retry_replays_the_first_response(admin):
    key = str(uuid.uuid4())
    name = _unique("idem") + ":write"
    first = _create_permission(admin, name, idempotency_key=key)
    # The retry of a write whose answer was lost: same key, same body.
    again = _create_permission(admin, name, idempotency_key=key)
    assert again == first  # the same permission, at the same revision: nothing changed
    listed = admin.permissions.ListPermissions(permissions_pb2.ListPermissionsRequest(page_size=1000))
    assert [p.name for p in listed.permissions].count(name) == 1

    with pytest.raises(w.FailedPrecondition) as caught:
        _create_permission(admin, _unique("other") + ":write", idempotency_key=key)
    assert caught.value.reason == w.Reason.IDEMPOTENCY_KEY_REUSED


def test_writes_get_an_idempotency_key_reads_do_not(admin):
    def keys(method):
        return [v for k, v in method._metadata(None, None) if k == w.IDEMPOTENCY_KEY]

    first, second = keys(admin.permissions.CreatePermission), keys(admin.permissions.CreatePermission)
    assert len(first) == 1 and len(second) == 1 and first != second
    assert keys(admin.authorization.Check) == []
    assert keys(admin.authorization.BatchCheck) == []
    assert keys(admin.roles.ListRoles) == []
    with pytest.raises(TypeError):
        admin.roles.ListRoles(roles_pb2.ListRolesRequest(), idempotency_key="k")
    with w.Client("127.0.0.1:1", idempotency_keys=False) as client:
        assert keys(client.permissions.CreatePermission) == []


def test_client_side_failure_is_typed_without_a_reason():
    port = _free_port()  # nothing listens there
    with w.Client(f"127.0.0.1:{port}", token="t", retries=False) as client:
        with pytest.raises(w.Unavailable) as caught:
            client.check("a", "b", timeout=5)
    assert caught.value.reason is None  # not Warden's answer
