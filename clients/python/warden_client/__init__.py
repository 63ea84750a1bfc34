"""Python client for Warden's gRPC API (warden.v1).

`Client` holds the channel and the token; its services' methods raise `WardenError` subclasses
(see `warden_client.errors`). The request and response messages are the generated modules
re-exported here: `from warden_client import roles_pb2, common_pb2`.
"""
from ._gen.warden.v1 import (
    assignments_pb2,
    audit_pb2,
    authorization_pb2,
    change_requests_pb2,
    common_pb2,
    configuration_pb2,
    groups_pb2,
    permissions_pb2,
    roles_pb2,
    tenants_pb2,
)
from .client import IDEMPOTENCY_KEY, Client
from .errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    Reason,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    WardenError,
    from_rpc_error,
)

__all__ = [
    "Client", "IDEMPOTENCY_KEY", "Reason", "FieldViolation", "WardenError", "from_rpc_error",
    "Aborted", "AlreadyExists", "DeadlineExceeded", "FailedPrecondition", "Internal",
    "InvalidArgument", "NotFound", "OutOfRange", "PermissionDenied", "ResourceExhausted",
    "Unauthenticated", "Unavailable",
    "assignments_pb2", "audit_pb2", "authorization_pb2", "change_requests_pb2", "common_pb2",
    "configuration_pb2", "groups_pb2", "permissions_pb2", "roles_pb2", "tenants_pb2",
]
