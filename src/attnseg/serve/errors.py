"""Errors a client's request can cause, each with its HTTP status and gRPC code.

Every one is answered with ``{"error": "..."}`` (REST) or the code and the same sentence (gRPC);
none of them is ever a 5xx. ``RequestError`` subclasses kserve's ``InvalidInput`` so kserve's own
handlers would still answer 400 if one escaped ours.
"""

from __future__ import annotations

import grpc
from kserve.errors import InvalidInput

from attnseg.errors import AttnsegError


class RequestError(InvalidInput):
    """A malformed request: 400 / INVALID_ARGUMENT."""

    status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class TooLarge(RequestError):
    """Over a budget (image, request or response size): 413 / RESOURCE_EXHAUSTED."""

    status = 413
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unauthorized(RequestError):
    """Missing or wrong bearer token: 401 / UNAUTHENTICATED."""

    status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class Forbidden(RequestError):
    """A route switched off (model control): 403 / PERMISSION_DENIED."""

    status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(RequestError):
    """No such model version or route: 404 / NOT_FOUND."""

    status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


def from_attnseg(exc: AttnsegError) -> RequestError:
    """An ``AttnsegError`` raised while reading a posted image -> the request error of its status."""
    status = int(getattr(exc, "http_status", 400))
    cls = TooLarge if status == 413 else RequestError
    return cls(str(exc))


__all__ = ["Forbidden", "NotFound", "RequestError", "TooLarge", "Unauthorized", "from_attnseg"]
