"""Demo data for the local stage: the users (and, as the contexts grow, devices) `make run` shows.

Seeding is idempotent: what exists already is left as it is. Deployed stages seed nothing.
"""

from __future__ import annotations

from chalicelib import errors
from chalicelib.identity import repository as users
from chalicelib.identity.models import CreateUserRequest
from chalicelib.identity.service import IdentityService
from chalicelib.observability import logger
from chalicelib.settings import get_settings

DEMO_USERS = (
    CreateUserRequest(username="admin", password="admin123", role="admin", name="Ada Admin",
                      email="admin@example.com"),
    CreateUserRequest(username="alice", password="alice123", role="client", name="Alice Example",
                      email="alice@example.com"),
    CreateUserRequest(username="bob", password="bob12345", role="client", name="Bob Example",
                      email="bob@example.com"),
)


def seed() -> list[str]:
    """Create the demo data that is missing; returns what was created."""
    settings = get_settings()
    if settings.stage in ("dev", "prod"):
        raise RuntimeError(f"demo data is for local stages, not {settings.stage}")
    identity = IdentityService()
    created = []
    for request in DEMO_USERS:
        if users.find_by_username(request.username) is not None:
            continue
        try:
            identity.create_user(request)
            created.append(f"user {request.username}")
        except errors.ConflictError:
            continue  # created concurrently by another seeder
    if created:
        logger.info("demo data seeded", extra={"seeded": created})
    return created
