"""Domain errors, free of transport concerns.

Domain code raises these; the server interceptor maps each to the gRPC status
code of the same name in one place. Messages are for humans: name the field
and say what is wrong with it.
"""

from __future__ import annotations


class RxcastError(Exception):
    """Base of all domain errors. `code` is a grpc.StatusCode member name;
    `dependency_code` the status a dependency answered, when that caused it."""

    code = "INTERNAL"

    def __init__(self, message: str, dependency_code: str = ""):
        super().__init__(message)
        self.message = message
        self.dependency_code = dependency_code


class InvalidArgument(RxcastError):
    """The request is malformed: a field is missing, of the wrong shape or out of range."""

    code = "INVALID_ARGUMENT"


class NotFound(RxcastError):
    """The request names something that does not exist (a version, a job, a run)."""

    code = "NOT_FOUND"


class AlreadyExists(RxcastError):
    """The request would create something that exists already."""

    code = "ALREADY_EXISTS"


class FailedPrecondition(RxcastError):
    """The system is not in a state to do this (no model loaded, gate refused, wrong mode)."""

    code = "FAILED_PRECONDITION"


class Unavailable(RxcastError):
    """A dependency cannot be reached right now; retrying later may succeed."""

    code = "UNAVAILABLE"


class DeadlineExceeded(RxcastError):
    """The work could not finish within the caller's deadline."""

    code = "DEADLINE_EXCEEDED"


class ResourceExhausted(RxcastError):
    """A limit was hit (batch size, queue capacity, disk)."""

    code = "RESOURCE_EXHAUSTED"


class Aborted(RxcastError):
    """A concurrent change won; the caller may retry the whole operation."""

    code = "ABORTED"


class Unauthenticated(RxcastError):
    """No credentials, or credentials the server does not know."""

    code = "UNAUTHENTICATED"


class PermissionDenied(RxcastError):
    """Known caller, lacking the role the call needs."""

    code = "PERMISSION_DENIED"
