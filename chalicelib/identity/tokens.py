"""Access tokens: HS256 JWTs with every registered claim verified.

The signing secret comes from `EMS_JWT_SECRET`, else from the SSM parameter named by
`EMS_JWT_SECRET_PARAMETER` (deployed stages), else from a file generated once in the data
folder (local stage). It is never in the repository.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from chalicelib import aws, errors
from chalicelib.settings import Settings, get_settings

ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "username", "role", "iat", "exp", "iss", "aud"]
_secret_lock = threading.Lock()
_secret_cache: dict[str, str] = {}


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    username: str
    role: str
    issued_at: float


def signing_secret(settings: Settings | None = None) -> str:
    """The HS256 secret: the setting, else the SSM parameter (cached a few minutes), else the local
    file (read once per process)."""
    settings = settings or get_settings()
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.jwt_secret_parameter:
        return aws.secure_parameter(settings.jwt_secret_parameter)
    key = str(settings.data_dir)
    with _secret_lock:
        if key not in _secret_cache:
            _secret_cache[key] = _local_secret(settings.data_dir / "jwt-secret")
        return _secret_cache[key]


def _local_secret(path: Path) -> str:
    """Read the local secret, creating it first if no process has yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it this instant
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.01)
        raise
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    return secret


_DIGITS = 6  # a token's issue time is kept to the microsecond


def _to_the_tick(moment: float) -> float:
    return round(moment, _DIGITS)


def sessions_end_now(now: float | None = None) -> float:
    """The `tokens_valid_after` that ends every session issued until now: the next microsecond.
    A token issued in the same microsecond as the change ends too (it may have come first); any
    later one is valid. Rounded like issue times, so the two compare exactly."""
    return _to_the_tick(_to_the_tick(time.time() if now is None else now) + 10 ** -_DIGITS)


def issue(user_id: str, username: str, role: str, now: float | None = None) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    settings = get_settings()
    issued_at = _to_the_tick(now if now is not None else time.time())
    claims = {
        "sub": user_id,
        "username": username,
        "role": role,
        "iat": issued_at,
        "exp": int(issued_at) + settings.access_token_ttl_s,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    return jwt.encode(claims, signing_secret(settings), algorithm=ALGORITHM), settings.access_token_ttl_s


def verify(token: str) -> TokenClaims:
    """The token's claims, or UnauthorizedError for any token that is not ours and current."""
    settings = get_settings()
    try:
        claims = jwt.decode(
            token,
            signing_secret(settings),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("The access token has expired; sign in again.") from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("The access token is not valid.") from exc
    fields = (claims["sub"], claims["username"], claims["role"])
    if not all(isinstance(value, str) for value in fields) or not isinstance(claims["iat"], int | float):
        raise _unauthorized("The access token is not valid.")
    return TokenClaims(claims["sub"], claims["username"], claims["role"], float(claims["iat"]))


def _unauthorized(message: str) -> errors.UnauthorizedError:
    return errors.UnauthorizedError(message, invalid_token=True)
