"""The REST edge: error bodies, request parsing and the wrapper every route goes through.

Every error leaves as `{"error": {"code", "message", "details"?}}`, whether a domain error
raised by a service, a schema error, or one that Chalice produces itself (405, 415).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from botocore.exceptions import ClientError
from chalice import Chalice, CORSConfig, Response
from chalice.app import Request

from chalicelib import errors, names
from chalicelib.observability import bind_request, logger
from chalicelib.platform import jsontext
from chalicelib.settings import get_settings

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
View = Callable[..., Any]

# Chalice's own error codes and the codes of our contract they stand for.
_CHALICE_CODES = {
    "BadRequestError": "bad_request",
    "BadRequest": "bad_request",
    "MethodNotAllowedError": "method_not_allowed",
    "UnsupportedMediaType": "unsupported_media_type",
    "NotFoundError": "not_found",
    "TooManyRequestsError": "too_many_requests",
    "RequestTimeoutError": "request_timeout",
    "InternalServerError": "internal_error",
}
# AWS error codes that mean a table, queue or topic of ours is missing.
_MISSING_RESOURCE_CODES = {
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFound",
    "NotFoundException",
}


def error_body(
    code: str, message: str, details: list[errors.FieldError] | None = None
) -> dict[str, Any]:
    """The contract's error body."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = [{"field": d.field, "message": d.message} for d in details]
    return {"error": error}


# Each domain error's status code; a subclass answers with its nearest listed ancestor's.
STATUS: dict[type[errors.AppError], int] = {
    errors.AppError: 400,
    errors.InvalidJsonError: 400,
    errors.ValidationError: 422,
    errors.UnauthorizedError: 401,
    errors.ForbiddenError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.PayloadTooLargeError: 413,
    errors.UnsupportedMediaTypeError: 415,
    errors.ThrottledError: 429,
    errors.DependencyUnavailableError: 503,
}


def status_of(error: errors.AppError) -> int:
    return next(STATUS[kind] for kind in type(error).__mro__ if kind in STATUS)


def error_headers(error: errors.AppError) -> dict[str, str | list[str]]:
    """What HTTP says beside the body: when to try again, why a token was refused."""
    if isinstance(error, errors.ThrottledError):
        return {"Retry-After": str(max(error.retry_after_s, 1))}
    if isinstance(error, errors.UnauthorizedError) and error.invalid_token:
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return {}


def error_response(error: errors.AppError) -> Response:
    """A domain error as an HTTP response."""
    return Response(
        body=error_body(error.code, error.message, error.details),
        status_code=status_of(error),
        headers=error_headers(error),
    )


def is_missing_resource(exc: BaseException) -> bool:
    """Whether an AWS error says one of our tables, queues or topics does not exist."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "") in _MISSING_RESOURCE_CODES
    # pynamodb wraps botocore errors; its exceptions keep the cause.
    cause = getattr(exc, "cause", None) or exc.__cause__
    return isinstance(cause, BaseException) and cause is not exc and is_missing_resource(cause)


def endpoint(view: View) -> View:
    """Wrap a route so that every exception becomes a contract error body, never a bare 500."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except errors.AppError as exc:
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001 - the edge turns every failure into a body
            if is_missing_resource(exc):
                logger.exception("a table or queue is missing")
                return error_response(
                    errors.DependencyUnavailableError("A backing table or queue is unavailable.")
                )
            logger.exception("unhandled error in route")
            return Response(
                body=error_body("internal_error", "An internal error occurred."),
                status_code=500,
            )

    return wrapper


def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    """The request's JSON body validated against `model` (400 bad JSON, 422 bad fields)."""
    raw = request.raw_body or b""
    try:
        data = jsontext.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise errors.InvalidJsonError(f"The request body is not valid JSON: {exc}") from exc
    return errors.validate(model, data)


def rest_middleware(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """Bind the request id to the logs, bound the body size, and reshape Chalice's errors."""
    context = request.context or {}
    bind_request(
        str(context.get("requestId", "")),
        request_id=context.get("requestId"),
        route=f"{request.method} {context.get('resourcePath', '')}",
    )
    limit = get_settings().max_request_body_bytes
    if request.raw_body and len(request.raw_body) > limit:
        response = error_response(
            errors.PayloadTooLargeError(f"The request body is larger than {limit} bytes.")
        )
    else:
        response = get_response(request)
    response = _reshape_chalice_error(response)
    logger.info("request handled", extra={"status": response.status_code})
    return response


def _reshape_chalice_error(response: Response) -> Response:
    body = response.body
    if response.status_code < 400 or not isinstance(body, dict) or "Code" not in body:
        return response
    code = _CHALICE_CODES.get(str(body["Code"]), "bad_request")
    response.body = error_body(code, str(body.get("Message", "")))
    response.headers.pop("Content-Type", None)
    return response


def install(app: Chalice) -> None:
    """Register the REST middleware and the CORS policy of every route on the app.

    The allowed origin is bound at import because API Gateway's preflight answers are
    generated from it when the app is packaged.
    """
    app.api.cors = CORSConfig(
        allow_origin=names.cors_allow_origin(),
        allow_headers=["Authorization", "Content-Type", "X-Api-Key"],
        max_age=600,
    )
    app.register_middleware(rest_middleware, "http")


# --- declared routes ----------------------------------------------------------------------


class Access:
    """Who may call a route: anyone, any signed-in user, or admins only."""

    PUBLIC = "public"
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True)
class Operation:
    """One route as the OpenAPI document describes it."""

    path: str
    method: str
    name: str
    summary: str
    access: str
    request: type[pydantic.BaseModel] | None
    response: type[pydantic.BaseModel] | None
    status: int
    query: type[pydantic.BaseModel] | None
    tags: tuple[str, ...]
    content_type: str = "application/json"
    errors: tuple[int, ...] = ()  # statuses this route may answer beyond those of its access level
    accepts: str | None = None  # a body of this media type, given to the route as it came (not JSON)


@dataclass
class Call:
    """What a route body gets: the caller, the parsed body and query, the raw request."""

    request: Request
    principal: errors.Principal | None
    body: Any = None
    query: Any = None

    @property
    def source(self) -> str:
        """The caller's address as API Gateway saw it (for per-source throttles)."""
        identity = (self.request.context or {}).get("identity") or {}
        return str(identity.get("sourceIp") or "unknown")

    @property
    def user(self) -> errors.Principal:
        """The caller of a route that requires sign-in."""
        assert self.principal is not None, "route declared public"
        return self.principal


Authenticator = Callable[[str], errors.Principal]


class Api:
    """Declares routes once: Chalice routing, auth, parsing, serialising and the OpenAPI entry."""

    def __init__(self, app: Chalice, authenticate: Authenticator) -> None:
        self.app = app
        self._authenticate = authenticate
        self.operations: list[Operation] = []

    def route(
        self,
        path: str,
        method: str,
        *,
        summary: str,
        access: str,
        request: type[pydantic.BaseModel] | None = None,
        response: type[pydantic.BaseModel] | None = None,
        status: int = 200,
        query: type[pydantic.BaseModel] | None = None,
        tags: tuple[str, ...] = (),
        content_type: str = "application/json",
        errors: tuple[int, ...] = (),
        accepts: str | None = None,
    ) -> Callable[[View], View]:
        def decorator(view: View) -> View:
            operation = Operation(
                path, method, view.__name__, summary, access, request, response, status, query, tags,
                content_type, errors, accepts,
            )
            self.operations.append(operation)

            @functools.wraps(view)
            def handler(**path_params: str) -> Any:
                return self._handle(operation, view, path_params)

            self.app.route(path, methods=[method], content_types=[accepts or "application/json"])(endpoint(handler))
            return view

        return decorator

    def _handle(self, operation: Operation, view: View, path_params: dict[str, str]) -> Any:
        request = self.app.current_request
        assert request is not None
        principal = None
        if operation.access != Access.PUBLIC:
            principal = self._authenticate(bearer_token(request))
            if operation.access == Access.ADMIN and not principal.is_admin:
                raise errors.ForbiddenError("This needs the admin role.")
        call = Call(request=request, principal=principal)
        if operation.request is not None:
            call.body = parse_body(request, operation.request)
        elif operation.accepts is not None:
            call.body = request.raw_body or b""
        if operation.query is not None:
            call.query = errors.validate(operation.query, dict(request.query_params or {}))
        result = view(call, **path_params)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(body="", status_code=204)
        if isinstance(result, pydantic.BaseModel):
            return Response(body=result.model_dump(mode="json", by_alias=True), status_code=operation.status)
        return Response(body=result, status_code=operation.status)


def bearer_token(request: Request) -> str:
    """The token of an `Authorization: Bearer …` header (401 when there is none)."""
    header = str(request.headers.get("authorization", "")) if request.headers else ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.UnauthorizedError("Sign in: send Authorization: Bearer <access token>.")
    return token.strip()
