"""Warden's errors as typed exceptions.

Every non-OK status Warden sends carries a `google.rpc.Status` in the `grpc-status-details-bin`
trailer: an `ErrorInfo` (domain `warden`, a machine-readable `reason`, metadata), a
`RequestInfo` (the request id), a `BadRequest` with field violations on INVALID_ARGUMENT and a
`RetryInfo` on UNAVAILABLE. `from_rpc_error` turns a `grpc.RpcError` into the `WardenError`
subclass for its code with those details decoded.
"""
from __future__ import annotations

import enum
from typing import NamedTuple, Optional

import grpc
from google.rpc import error_details_pb2, status_pb2

from ._gen.warden.v1 import errors_pb2

DOMAIN = "warden"
_DETAILS_TRAILER = "grpc-status-details-bin"


# The reasons come from the contract (`warden.v1.ErrorReason`, which the server builds every
# ErrorInfo from), so this list cannot fall behind the server it was generated with. A str enum,
# so `err.reason == Reason.NOT_FOUND` holds; `err.reason` itself stays a plain str, because a
# newer server may send a reason this list does not know yet.
Reason = enum.Enum(
    "Reason",
    {name: name for name in errors_pb2.ErrorReason.keys() if name != "ERROR_REASON_UNSPECIFIED"},
    type=str,
    module=__name__,
)
Reason.__str__ = lambda self: self.value


class FieldViolation(NamedTuple):
    field: str
    description: str


class WardenError(Exception):
    """A failed Warden RPC. `reason` is None only when the status did not come from Warden
    (the connection failed, a proxy answered)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: Optional[str] = None,
        domain: Optional[str] = None,
        metadata: Optional[dict] = None,
        field_violations: tuple = (),
        retry_after: Optional[float] = None,
        request_id: Optional[str] = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.field_violations = list(field_violations)
        self.retry_after = retry_after  # seconds, from RetryInfo
        self.request_id = request_id  # quote it when asking about a failure in the server's logs

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason and self.reason != self.code.name else ""
        return f"{self.code.name}{reason}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.reason!r}, {self.message!r})"


class InvalidArgument(WardenError): ...
class NotFound(WardenError): ...
class AlreadyExists(WardenError): ...
class PermissionDenied(WardenError): ...
class Unauthenticated(WardenError): ...
class FailedPrecondition(WardenError): ...
class Aborted(WardenError): ...
class OutOfRange(WardenError): ...
class ResourceExhausted(WardenError): ...
class Unavailable(WardenError): ...
class DeadlineExceeded(WardenError): ...
class Internal(WardenError): ...


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.INTERNAL: Internal,
}


def from_rpc_error(err: grpc.RpcError) -> WardenError:
    """The typed exception for a failed call (an `RpcError` that is also a `grpc.Call`, as
    grpcio raises them). Details that do not decode are left out rather than failing."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = (err.details() if hasattr(err, "details") else None) or str(err)
    fields = {}
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == _DETAILS_TRAILER:
            try:
                fields = _decode_details(status_pb2.Status.FromString(value))
            except Exception:  # a malformed trailer must not hide the error itself
                fields = {}
    return _BY_CODE.get(code, WardenError)(code, message, **fields)


def _decode_details(status: status_pb2.Status) -> dict:
    fields = {}
    for any_ in status.details:
        if any_.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            any_.Unpack(info)
            fields.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
        elif any_.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            any_.Unpack(bad)
            fields["field_violations"] = tuple(
                FieldViolation(v.field, v.description) for v in bad.field_violations
            )
        elif any_.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            any_.Unpack(retry)
            fields["retry_after"] = retry.retry_delay.ToTimedelta().total_seconds()
        elif any_.Is(error_details_pb2.RequestInfo.DESCRIPTOR):
            req = error_details_pb2.RequestInfo()
            any_.Unpack(req)
            fields["request_id"] = req.request_id
    return fields
