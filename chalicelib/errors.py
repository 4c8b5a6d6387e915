"""The domain's errors and the caller it acts for, defined once; they know nothing of HTTP.

`chalicelib.http` maps each error to a status code and headers at the edge (and the WebSocket
gateway to an error frame); services only say what went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, with their current role."""

    user_id: str
    username: str
    role: str
    name: str = ""  # the display name, when the user gave one

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of the input."""

    field: str
    message: str


@dataclass
class AppError(Exception):
    """Base of every error a caller is answered with (never a server fault)."""

    message: str
    details: list[FieldError] = field(default_factory=list)

    code = "bad_request"

    def __str__(self) -> str:
        return self.message


class InvalidJsonError(AppError):
    code = "invalid_json"


class ValidationError(AppError):
    code = "validation_error"


@dataclass
class UnauthorizedError(AppError):
    """No valid credentials; `invalid_token` when a token was given but is not (or no longer) valid."""

    invalid_token: bool = False
    code = "unauthorized"


class ForbiddenError(AppError):
    code = "forbidden"


class NotFoundError(AppError):
    code = "not_found"


class ConflictError(AppError):
    code = "conflict"


class PayloadTooLargeError(AppError):
    code = "payload_too_large"


class UnsupportedMediaTypeError(AppError):
    code = "unsupported_media_type"


@dataclass
class ThrottledError(AppError):
    """Too many attempts: the caller may try again after `retry_after_s` seconds."""

    retry_after_s: int = 1
    code = "too_many_requests"


class DependencyUnavailableError(AppError):
    """A table, queue or topic is missing or unreachable."""

    code = "service_unavailable"


def validate(model: type[ModelT], data: Any) -> ModelT:
    """`data` validated against `model`; schema errors as a ValidationError with one detail per field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        details = [FieldError(".".join(str(p) for p in err["loc"]) or "body", err["msg"]) for err in exc.errors()]
        raise ValidationError("The request is not valid.", details) from exc
