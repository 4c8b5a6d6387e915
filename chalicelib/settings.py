"""All configuration of the backend, read from the environment in one place.

Every field has a default so that `chalice package` can import the app with an empty
environment. Settings are read when first asked for (never at import time), except the
resource names in `chalicelib.names`, which Chalice and pynamodb bind at import.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from chalicelib import names


class Settings(BaseSettings):
    """Backend settings; environment variables are the field names prefixed with `EMS_`."""

    model_config = SettingsConfigDict(env_prefix="EMS_", extra="ignore", frozen=True)

    stage: str = Field(default=names.DEFAULT_STAGE, pattern=r"^[a-z][a-z0-9-]{0,15}$")
    region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("EMS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        validation_alias="AWS_ENDPOINT_URL",
        description="AWS-compatible endpoint (LocalStack, moto); unset means real AWS. botocore "
        "reads the same variable, so pynamodb's clients follow it too.",
    )
    data_dir: Path = Field(default=Path(".data"), description="Local stage state folder.")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_request_body_bytes: int = Field(default=256 * 1024, gt=0)

    # Identity: tokens, passwords, login throttling.
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 signing secret; deployed stages may use the SSM parameter instead."
    )
    jwt_secret_parameter: str | None = Field(
        default=None, description="SSM SecureString parameter holding the signing secret."
    )
    jwt_issuer: str = "ems"
    jwt_audience: str = "ems-api"
    access_token_ttl_s: int = Field(default=3600, gt=0)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    login_max_failures: int = Field(default=5, ge=1, description="Attempts of one source for one username a window.")
    login_lockout_s: int = Field(default=300, ge=1, description="The window of the sign-in throttles.")
    login_max_failures_per_user_hour: int = Field(default=100, ge=1, description="Failures for a username, all sources.")
    login_max_failures_per_source: int = Field(default=100, ge=1, description="Failures of a source, all usernames.")
    register_max_per_source_hour: int = Field(default=20, ge=1, description="Accounts created from one source an hour.")

    max_reading_kwh: float = Field(default=100.0, gt=0, description="Largest accepted reading value.")
    max_clock_skew_s: int = Field(default=300, ge=0, description="How far past now a reading's timestamp may be.")
    reading_interval_s: int = Field(default=600, gt=0, description="How often meters send a reading.")
    silent_after_intervals: int = Field(default=3, ge=1, description="Missed intervals before a silent-meter alert.")
    default_timezone: str = Field(default="UTC", description="Time zone of a device created without one.")

    outbox_grace_s: float = Field(default=60.0, ge=0, description="Age at which the outbox relay publishes an "
                                  "event its writer did not (the writer died, or the bus refused it).")

    # Support chat: Gemini through the google-genai SDK (unset key: no AI answers).
    gemini_api_key: SecretStr | None = None
    gemini_api_key_parameter: str | None = Field(default=None, description="SSM parameter with the key.")
    gemini_model: str = "gemini-2.5-flash"
    gemini_timeout_s: float = Field(default=8.0, gt=0)
    gemini_base_url: str | None = Field(default=None, description="Another endpoint for the Gemini API.")
    chat_max_messages_per_minute: int = Field(default=10, ge=1, description="A client's chat messages a minute.")

    # WebSocket management API, used by handlers and consumers that push frames.
    websocket_api_id: str | None = None
    websocket_domain: str | None = None
    websocket_stage: str = "api"
    websocket_management_url: str | None = Field(
        default=None,
        description="Local runtime only: URL of the emulated @connections API, e.g. "
        "http://127.0.0.1:8001/api. Overrides the URL Chalice derives from the API id.",
    )

    def resource_name(self, name: str) -> str:
        """The physical name of a table, queue or topic of this stage."""
        return names.resource_name(name, self.stage)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
