"""`Client`: one channel to Warden, its services' stubs, the bearer token and typed errors."""
from __future__ import annotations

import collections
import json
import os
import threading
import uuid
from typing import Callable, Optional

import grpc

from . import errors
from ._gen.warden.v1 import (
    assignments_pb2_grpc,
    audit_pb2_grpc,
    authorization_pb2,
    authorization_pb2_grpc,
    change_requests_pb2_grpc,
    configuration_pb2_grpc,
    groups_pb2_grpc,
    permissions_pb2_grpc,
    roles_pb2_grpc,
    tenants_pb2_grpc,
)

IDEMPOTENCY_KEY = "idempotency-key"

# What the server counts as a read (src/grpc/edge/methods.rs): every other warden.v1 method
# changes something and accepts an idempotency key.
_READ_PREFIXES = ("Get", "List", "Watch", "Check", "BatchCheck", "Export")

# UNAVAILABLE (database unreachable, index stale, replica draining) is retried by the channel
# itself, with the same metadata: writes are safe to retry because each attempt carries the
# same idempotency key, and the server answers a replay with the first response.
_SERVICE_CONFIG = json.dumps({
    "methodConfig": [{
        "name": [{"service": f"warden.v1.{s}"} for s in (
            "AuthorizationService", "PermissionService", "RoleService", "AssignmentService",
            "GroupService", "ChangeRequestService", "AuditService", "ConfigurationService",
            "TenantService",
        )],
        "retryPolicy": {
            "maxAttempts": 4,
            "initialBackoff": "0.2s",
            "maxBackoff": "2s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }],
})


class _TokenFile:
    """A token file read again whenever it changes: a Kubernetes projected ServiceAccount
    token is replaced (through a symlink swap) well before it expires."""

    def __init__(self, path: str):
        self._path = path
        self._lock = threading.Lock()
        self._seen = None
        self._token = ""

    def __call__(self) -> str:
        st = os.stat(self._path)  # follows the symlink: a swap shows as a new inode
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if seen != self._seen:
                with open(self._path) as f:
                    self._token = f.read().strip()
                self._seen = seen
            return self._token


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


class _Metadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer` to every call on the channel. An interceptor rather than
    call credentials, which grpcio sends only over TLS: in-cluster Warden is often plaintext."""

    def __init__(self, token: Optional[Callable[[], str]]):
        self._token = token

    def _details(self, details):
        if self._token is None:
            return details
        metadata = [(k, v) for k, v in details.metadata or () if k != "authorization"]
        metadata.append(("authorization", f"Bearer {self._token()}"))
        return _CallDetails(
            details.method, details.timeout, metadata, details.credentials,
            details.wait_for_ready, details.compression,
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)


class _Method:
    """One RPC: raises `errors.WardenError` subclasses instead of `grpc.RpcError`, and gives a
    write an idempotency key (fresh per call unless `idempotency_key=` names one, which is how a
    caller retries a write across attempts of its own)."""

    def __init__(self, multicallable, name: str, auto_key: bool):
        self._inner = multicallable
        self._writes = not name.startswith(_READ_PREFIXES)
        self._auto_key = auto_key

    def _metadata(self, metadata, key):
        metadata = list(metadata or ())
        if key is not None and not self._writes:
            raise TypeError("idempotency_key is for writes; this method changes nothing")
        if self._writes and not any(k == IDEMPOTENCY_KEY for k, _ in metadata):
            if key is None and self._auto_key:
                key = str(uuid.uuid4())
            if key is not None:
                metadata.append((IDEMPOTENCY_KEY, key))
        return metadata

    def __call__(self, request, timeout=None, metadata=None, *, idempotency_key=None, **kwargs):
        metadata = self._metadata(metadata, idempotency_key)
        try:
            result = self._inner(request, timeout=timeout, metadata=metadata, **kwargs)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from e
        return _Stream(result) if isinstance(self._inner, grpc.UnaryStreamMultiCallable) else result

    def with_call(self, request, timeout=None, metadata=None, *, idempotency_key=None, **kwargs):
        """The response and the `grpc.Call` (its headers carry the `x-request-id`)."""
        metadata = self._metadata(metadata, idempotency_key)
        try:
            return self._inner.with_call(request, timeout=timeout, metadata=metadata, **kwargs)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from e

    def future(self, request, timeout=None, metadata=None, *, idempotency_key=None, **kwargs):
        """grpcio's future: its errors stay `grpc.RpcError` (`errors.from_rpc_error` types them)."""
        metadata = self._metadata(metadata, idempotency_key)
        return self._inner.future(request, timeout=timeout, metadata=metadata, **kwargs)


class _Stream:
    """A server stream whose errors come out typed; the rest (cancel, trailers) is grpcio's."""

    def __init__(self, call):
        self._call = call

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._call)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from e

    def __getattr__(self, name):
        return getattr(self._call, name)


class _Service:
    """A generated stub's methods, each wrapped in `_Method`."""

    def __init__(self, stub, auto_key: bool):
        for name, multicallable in vars(stub).items():
            setattr(self, name, _Method(multicallable, name, auto_key))


class Client:
    """A connection to Warden.

        with Client("warden.auth:50051", token_file="/var/run/secrets/tokens/warden") as warden:
            if warden.check("alice", "docs:write", resource="departments/eng"):
                ...
            role = warden.roles.GetRole(roles_pb2.GetRoleRequest(role=common_pb2.RoleRef(name="editor")))

    The token is one of `token` (a fixed string), `token_file` (read again when it changes) or
    `token_callback` (called for every RPC; cache inside it); none sends no token (health and
    reflection need none). TLS is on with `tls=True` or any of the certificate files: `ca_file`
    (PEM roots; default the system's), `cert_file`/`key_file` for a client certificate.

    Each service is an attribute (`authorization`, `permissions`, `roles`, `assignments`,
    `groups`, `change_requests`, `audit`, `configuration`, `tenants`) whose methods are the
    generated stub's, raising `WardenError` subclasses. Writes get a fresh `idempotency-key`
    unless `idempotency_keys=False`; pass `idempotency_key=` to reuse one.
    """

    def __init__(
        self,
        target: str,
        *,
        token: Optional[str] = None,
        token_file: Optional[str] = None,
        token_callback: Optional[Callable[[], str]] = None,
        tls: bool = False,
        ca_file: Optional[str] = None,
        cert_file: Optional[str] = None,
        key_file: Optional[str] = None,
        idempotency_keys: bool = True,
        retries: bool = True,
        options: tuple = (),
    ):
        given = [t for t in (token, token_file, token_callback) if t is not None]
        if len(given) > 1:
            raise ValueError("pass at most one of token, token_file, token_callback")
        if token is not None:
            source = lambda: token  # noqa: E731
        elif token_file is not None:
            source = _TokenFile(token_file)
            source()  # a missing or unreadable file fails here, not on the first RPC
        else:
            source = token_callback

        options = list(options)
        if retries:
            options += [("grpc.enable_retries", 1), ("grpc.service_config", _SERVICE_CONFIG)]
        if tls or ca_file or cert_file or key_file:
            if (cert_file is None) != (key_file is None):
                raise ValueError("cert_file and key_file go together")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file),
                private_key=_read(key_file),
                certificate_chain=_read(cert_file),
            )
            channel = grpc.secure_channel(target, credentials, options=options)
        else:
            channel = grpc.insecure_channel(target, options=options)
        self.channel = grpc.intercept_channel(channel, _Metadata(source))
        self._raw_channel = channel

        def service(stub_class):
            return _Service(stub_class(self.channel), idempotency_keys)

        self.authorization = service(authorization_pb2_grpc.AuthorizationServiceStub)
        self.permissions = service(permissions_pb2_grpc.PermissionServiceStub)
        self.roles = service(roles_pb2_grpc.RoleServiceStub)
        self.assignments = service(assignments_pb2_grpc.AssignmentServiceStub)
        self.groups = service(groups_pb2_grpc.GroupServiceStub)
        self.change_requests = service(change_requests_pb2_grpc.ChangeRequestServiceStub)
        self.audit = service(audit_pb2_grpc.AuditServiceStub)
        self.configuration = service(configuration_pb2_grpc.ConfigurationServiceStub)
        self.tenants = service(tenants_pb2_grpc.TenantServiceStub)

    def check(
        self,
        identity: str,
        permission: str,
        resource: str = "",
        *,
        at_least_revision: int = 0,
        timeout: Optional[float] = None,
    ) -> bool:
        """May `identity` use `permission` on `resource` (empty: tenant-wide grants only)?
        An unknown permission is False, not an error. Pass a write's `revision` as
        `at_least_revision` to read your own write on any replica."""
        response = self.authorization.Check(
            authorization_pb2.CheckRequest(
                identity_id=identity,
                permission=permission,
                resource=resource,
                at_least_revision=at_least_revision,
            ),
            timeout=timeout,
        )
        return response.allowed

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()
