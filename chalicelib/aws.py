"""Cached AWS clients, created on first use from the settings (never at import)."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.settings import get_settings


@lru_cache(maxsize=1)
def session() -> boto3.session.Session:
    """The process-wide boto3 session in the configured region."""
    return boto3.session.Session(region_name=get_settings().region)


@cache
def client(service: str) -> Any:
    """A client for `service` at the configured endpoint (LocalStack/moto or AWS)."""
    return session().client(
        service,
        endpoint_url=get_settings().aws_endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
    )
