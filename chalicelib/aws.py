"""Cached AWS clients, created on first use from the settings (never at import).

boto3 sessions are not thread-safe while they create clients, so creation is serialised;
the clients themselves are safe to share between threads.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import boto3
import botocore
from aws_lambda_powertools.utilities.parameters import SSMProvider
from botocore.config import Config

from chalicelib.settings import get_settings

# A fixed User-Agent: botocore then skips assembling its standard one (sanitised component by
# component on every call, about a sixth of a call's client-side CPU).
USER_AGENT = f"ems Botocore/{botocore.__version__}"
_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[str, Any] = {}


def session() -> boto3.session.Session:
    """The process-wide boto3 session in the configured region."""
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session(region_name=get_settings().region)
        return _session


def client(service: str) -> Any:
    """A client for `service` at the configured endpoint (LocalStack/moto or AWS). DynamoDB's is the
    one every pynamodb model sends through (chalicelib.platform.persistence): its requests are built
    by pynamodb, so, as pynamodb's own clients do, it skips botocore's parameter validation (about
    6% of the readings consumer's CPU)."""
    found = _clients.get(service)
    if found is not None:
        return found
    current = session()
    with _lock:
        if service not in _clients:
            _clients[service] = current.client(
                service,
                endpoint_url=get_settings().aws_endpoint_url,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                              max_pool_connections=32, user_agent=USER_AGENT,
                              parameter_validation=service != "dynamodb"),
            )
        return _clients[service]


def create_client(service: str, **kwargs: Any) -> Any:
    """A client made from the shared session with other options (serialised like the rest)."""
    current = session()
    with _lock:
        return current.client(service, **kwargs)


SECRET_MAX_AGE_S = 300  # a rotated secret is picked up within five minutes


@functools.cache
def _ssm() -> SSMProvider:
    return SSMProvider(boto3_client=client("ssm"))


def secure_parameter(name: str) -> str:
    """A SecureString of SSM Parameter Store, decrypted and cached for SECRET_MAX_AGE_S (powertools)."""
    return str(_ssm().get(name, decrypt=True, max_age=SECRET_MAX_AGE_S))
