"""Domain errors, defined once; `chalicelib.http` maps them to HTTP responses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of the input."""

    field: str
    message: str


@dataclass
class AppError(Exception):
    """Base of every error the API answers with a 4xx/503 status."""

    message: str
    details: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    status = 400
    code = "bad_request"

    def __str__(self) -> str:
        return self.message


class InvalidJsonError(AppError):
    status, code = 400, "invalid_json"


class ValidationError(AppError):
    status, code = 422, "validation_error"


class UnauthorizedError(AppError):
    status, code = 401, "unauthorized"


class ForbiddenError(AppError):
    status, code = 403, "forbidden"


class NotFoundError(AppError):
    status, code = 404, "not_found"


class ConflictError(AppError):
    status, code = 409, "conflict"


class PayloadTooLargeError(AppError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaTypeError(AppError):
    status, code = 415, "unsupported_media_type"


class ThrottledError(AppError):
    status, code = 429, "too_many_requests"


class DependencyUnavailableError(AppError):
    """A table, queue or topic is missing or unreachable."""

    status, code = 503, "service_unavailable"
