"""Demo data for the local stage: the users (and, as the contexts grow, devices) `make run` shows.

Seeding is idempotent: what exists already is left as it is. Deployed stages seed nothing.
"""

from __future__ import annotations

from chalicelib import errors
from chalicelib.devices.models import CreateDeviceRequest
from chalicelib.devices.repository import DynamoDevices
from chalicelib.devices.service import DeviceService
from chalicelib.identity.models import CreateUserRequest
from chalicelib.identity.repository import DynamoUsers
from chalicelib.identity.service import IdentityService
from chalicelib.observability import logger
from chalicelib.settings import get_settings
from chalicelib.tariffs import Tariff

DEMO_USERS = (
    CreateUserRequest(username="admin", password="admin123", role="admin", name="Ada Admin",
                      email="admin@example.com"),
    CreateUserRequest(username="alice", password="alice123", role="client", name="Alice Example",
                      email="alice@example.com"),
    CreateUserRequest(username="bob", password="bob12345", role="client", name="Bob Example",
                      email="bob@example.com"),
)

# Fixed ids, so that the simulator's demo config (simulator/demo.json) feeds them. The limits
# sit a little above a typical evening hour, so that the evening peak crosses them sometimes.
DEMO_DEVICES = (
    (CreateDeviceRequest(id="demo-meter-1", name="Shared flat", address="12 Linden Street",
                         description="Shared by Alice and Bob", max_hourly_kwh=1.6, timezone="Europe/Bucharest",
                         tariff_per_kwh=0.25, currency="EUR"), ("alice", "bob")),
    (CreateDeviceRequest(id="demo-meter-2", name="Alice's house", address="3 Orchard Lane",
                         max_hourly_kwh=2.2, timezone="Europe/Bucharest", tariff_per_kwh=0.25, currency="EUR",
                         tariffs=[Tariff.model_validate({  # time of use: dearer evenings, cheaper weekends
                             "from": "2026-01-01", "currency": "EUR",
                             "rates": [{"start": "00:00", "price_per_kwh": 0.12}, {"start": "17:00", "price_per_kwh": 0.35},
                                       {"start": "21:00", "price_per_kwh": 0.12}],
                             "weekend_rates": [{"start": "00:00", "price_per_kwh": 0.10}]})]),
     ("alice",)),
    (CreateDeviceRequest(id="demo-meter-3", name="Bob's workshop", address="7 Mill Road",
                         max_hourly_kwh=1.2, timezone="Europe/Bucharest", tariff_per_kwh=0.22, currency="EUR"),
     ("bob",)),
)


def seed() -> list[str]:
    """Create the demo data that is missing; returns what was created."""
    settings = get_settings()
    if settings.stage in ("dev", "prod"):
        raise RuntimeError(f"demo data is for local stages, not {settings.stage}")
    users = DynamoUsers()
    identity = IdentityService(repository=users)
    created = []
    for request in DEMO_USERS:
        if users.find_by_username(request.username) is not None:
            continue
        try:
            identity.create_user(request)
            created.append(f"user {request.username}")
        except errors.ConflictError:
            continue  # created concurrently by another seeder
    device_store = DynamoDevices()
    devices = DeviceService(user_exists=identity.exists, repository=device_store)
    for device, owners in DEMO_DEVICES:
        if device_store.get(str(device.id)) is not None:
            continue
        owner_ids = [u.id for name in owners if (u := users.find_by_username(name)) is not None]
        try:
            devices.create(device.model_copy(update={"owner_ids": owner_ids}))
            created.append(f"device {device.id}")
        except errors.ConflictError:
            continue
    if created:
        logger.info("demo data seeded", extra={"seeded": created})
    return created
