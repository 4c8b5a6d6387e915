"""The Energy Management System backend: a routing table into `chalicelib`.

Each route declares who may call it and its request and response models (which also make
the OpenAPI document); its body is one call into a bounded context.
"""

import datetime as dt

from chalice import Chalice, Rate, Response

from chalicelib import http, names, openapi
from chalicelib.alerts import models as am
from chalicelib.alerts.service import AlertService
from chalicelib.chat import context as chat_context
from chalicelib.chat import service as chat_models
from chalicelib.chat.service import ChatService
from chalicelib.devices import models as dm
from chalicelib.devices import repository as device_repository
from chalicelib.devices import sync as devices_sync
from chalicelib.devices.service import DeviceService
from chalicelib.http import Access, Call
from chalicelib.identity import events as user_events
from chalicelib.identity import models as im
from chalicelib.identity import repository as user_repository
from chalicelib.identity.service import IdentityService
from chalicelib.monitoring import api_ingest, fleet, history, replica, silent
from chalicelib.monitoring.alerts import DynamoRaisedAlerts
from chalicelib.monitoring.history import History
from chalicelib.monitoring.ingest import Ingestor
from chalicelib.monitoring.totals import DynamoHourTotals
from chalicelib.platform import consumer, events, health, outbox
from chalicelib.platform.consumer import Source
from chalicelib.platform.publisher import SnsPublisher
from chalicelib.realtime import sync as realtime_sync
from chalicelib.realtime.gateway import RealtimeGateway
from chalicelib.realtime.notifications import SOURCE as notifications_source
from chalicelib.realtime.notifications import NotificationHandler
from chalicelib.realtime.push import Pusher
from chalicelib.settings import get_settings

app = Chalice(app_name="ems")
app.experimental_feature_flags.update(["WEBSOCKETS"])
http.install(app)
events.install(app)

identity = IdentityService()
devices = DeviceService(user_exists=identity.exists, user_ids=identity.ids_by_username,
                        has_reported=replica.has_reported)
hours = DynamoHourTotals()
raised_alerts = DynamoRaisedAlerts()
ingestor = Ingestor(hours, raised_alerts)
meter_history = History(hours)
silence = silent.SilenceWatch(hours, raised_alerts)
api = http.Api(app, authenticate=identity.authenticate)
pusher = Pusher(app.websocket_api)
alerts = AlertService(pusher, owners_of=replica.owners_of, device_exists=replica.exists)
chat = ChatService(pusher, context_for=lambda user_id: chat_context.describe(
    devices.of_user_devices(user_id), meter_history.day, dt.datetime.now(dt.UTC)))
realtime = RealtimeGateway(pusher, authenticate=identity.authenticate, current=identity.current, chat=chat)
notifications = NotificationHandler(alerts, pusher, owners_of=replica.owners_of)
fleet_view = fleet.Fleet(alerts.open_by_device, hours=hours)


def upgrade() -> None:
    """Bring data kept by an earlier version up to this one; idempotent. The local runtime runs it
    at each start; after a deploy to AWS run `python -c "import app; app.upgrade()"` once with the
    stage's settings and credentials."""
    user_repository.backfill_listing()
    device_repository.backfill_listing()
    replica.backfill_fleet(hours)


# --- platform -----------------------------------------------------------------------------


@api.route("/health", "GET", summary="Liveness: the API answers (no resource is named or touched)",
           access=Access.PUBLIC, tags=("platform",))
def get_health(call: Call) -> dict:
    return health.liveness()


@api.route("/health/details", "GET", summary="Reachability of every table and queue (admins)",
           access=Access.ADMIN, tags=("platform",))
def get_health_details(call: Call) -> Response:
    report = health.check()
    return Response(body=report.as_dict(), status_code=200 if report.healthy else 503)


@api.route("/openapi.json", "GET", summary="This API's OpenAPI document", access=Access.PUBLIC,
           tags=("platform",))
def get_openapi(call: Call) -> dict:
    return openapi.document(api.operations)


# --- identity: self-service ---------------------------------------------------------------


@api.route("/auth/register", "POST", summary="Create a client account", access=Access.PUBLIC,
           request=im.RegisterRequest, response=im.UserEnvelope, status=201, tags=("auth",), errors=(409,))
def register(call: Call) -> im.UserEnvelope:
    return im.UserEnvelope(user=identity.register(call.body, call.source).out())


@api.route("/auth/login", "POST", summary="Sign in and get an access token", access=Access.PUBLIC,
           request=im.LoginRequest, response=im.LoginResponse, tags=("auth",), errors=(401,))
def login(call: Call) -> im.LoginResponse:
    return identity.login(call.body, call.source)


@api.route("/auth/me", "GET", summary="The signed-in user", access=Access.USER,
           response=im.UserOut, tags=("auth",))
def get_me(call: Call) -> im.UserOut:
    return identity.me(call.user).out()


@api.route("/auth/me", "PUT", summary="Change own name or email", access=Access.USER,
           request=im.UpdateMeRequest, response=im.UserOut, tags=("auth",))
def update_me(call: Call) -> im.UserOut:
    return identity.update_me(call.user, call.body).out()


@api.route("/auth/password", "POST", summary="Change own password (ends every session, this one too)",
           access=Access.USER, request=im.ChangePasswordRequest, status=204, tags=("auth",))
def change_password(call: Call) -> None:
    identity.change_password(call.user, call.body)


@api.route("/auth/logout", "POST", summary="End every session of the signed-in user",
           access=Access.USER, status=204, tags=("auth",))
def logout(call: Call) -> None:
    identity.logout(call.user)


# --- identity: administration -------------------------------------------------------------


@api.route("/users", "GET", summary="List and search users", access=Access.ADMIN,
           query=im.ListUsersQuery, response=im.UserPage, tags=("users",))
def list_users(call: Call) -> im.UserPage:
    return identity.list_users(call.query.limit, call.query.cursor, call.query.q)


@api.route("/users", "POST", summary="Create a user", access=Access.ADMIN,
           request=im.CreateUserRequest, response=im.UserOut, status=201, tags=("users",))
def create_user(call: Call) -> im.UserOut:
    return identity.create_user(call.body).out()


@api.route("/users/{user_id}", "GET", summary="Read a user (a client: only itself)", access=Access.USER,
           response=im.UserOut, tags=("users",))
def get_user(call: Call, user_id: str) -> im.UserOut:
    return identity.get_user(call.user, user_id).out()


@api.route("/users/{user_id}", "PUT", summary="Change a user", access=Access.ADMIN,
           request=im.UpdateUserRequest, response=im.UserOut, tags=("users",))
def update_user(call: Call, user_id: str) -> im.UserOut:
    return identity.update_user(user_id, call.body).out()


@api.route("/users/{user_id}", "DELETE", summary="Delete a user (not the last admin)",
           access=Access.ADMIN, status=204, tags=("users",))
def delete_user(call: Call, user_id: str) -> None:
    identity.delete_user(user_id)


# --- devices ------------------------------------------------------------------------------


@api.route("/devices", "GET", summary="Devices: admins all, clients their own", access=Access.USER,
           query=dm.ListDevicesQuery, response=dm.DevicePage, tags=("devices",))
def list_devices(call: Call) -> dm.DevicePage:
    return devices.list_for(call.user, call.query.limit, call.query.cursor, call.query.q)


@api.route("/fleet", "GET", summary="The fleet: each meter's state, most severe first, and exact counts",
           access=Access.ADMIN, query=fleet.FleetQuery, response=fleet.FleetPage, tags=("metering",))
def get_fleet(call: Call) -> fleet.FleetPage:
    return fleet_view.page(call.query)


@api.route("/devices", "POST", summary="Create a device", access=Access.ADMIN,
           request=dm.CreateDeviceRequest, response=dm.DeviceOut, status=201, tags=("devices",))
def create_device(call: Call) -> dm.DeviceOut:
    return devices.create(call.body)


@api.route("/devices/import", "POST", summary="Import meters from a CSV file (created, updated, rejected rows)",
           access=Access.ADMIN, accepts="text/csv", response=dm.ImportResult, errors=(415,), tags=("devices",))
def import_devices(call: Call) -> dm.ImportResult:
    return devices.import_csv(call.body)


@api.route("/devices/{device_id}", "GET", summary="Read a device (clients: their own)", access=Access.USER,
           response=dm.DeviceOut, tags=("devices",))
def get_device(call: Call, device_id: str) -> dm.DeviceOut:
    return devices.get(call.user, device_id)


@api.route("/devices/{device_id}", "PUT", summary="Change a device", access=Access.ADMIN,
           request=dm.UpdateDeviceRequest, response=dm.DeviceOut, tags=("devices",))
def update_device(call: Call, device_id: str) -> dm.DeviceOut:
    return devices.update(device_id, call.body)


@api.route("/devices/{device_id}", "DELETE", summary="Delete a device and its history", access=Access.ADMIN,
           status=204, tags=("devices",))
def delete_device(call: Call, device_id: str) -> None:
    devices.delete(device_id)


@api.route("/devices/{device_id}/owners/{user_id}", "PUT", summary="Add an owner (idempotent)",
           access=Access.ADMIN, response=dm.DeviceOut, tags=("devices",))
def add_owner(call: Call, device_id: str, user_id: str) -> dm.DeviceOut:
    return devices.add_owner(device_id, user_id)


@api.route("/devices/{device_id}/owners/{user_id}", "DELETE", summary="Remove an owner (idempotent)",
           access=Access.ADMIN, response=dm.DeviceOut, tags=("devices",))
def remove_owner(call: Call, device_id: str, user_id: str) -> dm.DeviceOut:
    return devices.remove_owner(device_id, user_id)


@api.route("/devices/{device_id}/api-keys", "GET", summary="A device's API keys (not their secrets)",
           access=Access.ADMIN, response=dm.ApiKeyPage, tags=("devices",))
def list_api_keys(call: Call, device_id: str) -> dm.ApiKeyPage:
    return devices.list_api_keys(device_id)


@api.route("/devices/{device_id}/api-keys", "POST", summary="Create an API key for a meter (shown once)",
           access=Access.ADMIN, response=dm.ApiKeyCreated, status=201, tags=("devices",))
def create_api_key(call: Call, device_id: str) -> dm.ApiKeyCreated:
    return devices.create_api_key(device_id)


@api.route("/devices/{device_id}/api-keys/{key_id}", "DELETE", summary="Revoke an API key",
           access=Access.ADMIN, status=204, tags=("devices",))
def revoke_api_key(call: Call, device_id: str, key_id: str) -> None:
    devices.revoke_api_key(device_id, key_id)


@api.route("/users/{user_id}/devices", "GET", summary="A user's devices (clients: only their own)",
           access=Access.USER, response=dm.DevicePage, tags=("devices",))
def list_user_devices(call: Call, user_id: str) -> dm.DevicePage:
    return devices.of_user(call.user, user_id)


# --- metering -----------------------------------------------------------------------------


@api.route("/readings", "POST", summary="Readings from a meter, authenticated by its X-Api-Key",
           access=Access.PUBLIC, request=api_ingest.ReadingsRequest, response=api_ingest.ReadingsAccepted,
           status=202, tags=("metering",), errors=(401,))
def post_readings(call: Call) -> api_ingest.ReadingsAccepted:
    headers = call.request.headers
    device_id = devices.device_for_api_key(str(headers.get("x-api-key", "")) if headers else "")
    return api_ingest.accept(device_id, call.body)


@api.route("/devices/{device_id}/consumption", "GET", summary="A day (?date=) or a range (?from=&to=)",
           access=Access.USER, query=history.ConsumptionQuery, response=history.Consumption, tags=("metering",))
def get_consumption(call: Call, device_id: str) -> history.Consumption:
    device = devices.get(call.user, device_id)
    return meter_history.consumption(device, call.query, _today(device.timezone))


@api.route("/devices/{device_id}/readings", "GET", summary="Recent raw readings, newest first",
           access=Access.USER, query=history.ReadingsQuery, response=history.ReadingList, tags=("metering",))
def get_readings(call: Call, device_id: str) -> history.ReadingList:
    device = devices.get(call.user, device_id)
    now = dt.datetime.now(dt.UTC)
    return meter_history.recent_readings(device, call.query.since or now - dt.timedelta(days=1), call.query.limit, now)


@api.route("/devices/{device_id}/consumption.csv", "GET", summary="Hourly consumption of a date range as CSV",
           access=Access.USER, query=history.CsvQuery, content_type="text/csv", tags=("metering",))
def get_consumption_csv(call: Call, device_id: str) -> Response:
    device = devices.get(call.user, device_id)
    body = meter_history.csv_export(device, call.query.from_, call.query.to)
    filename = f"{device.id}_{call.query.from_}_{call.query.to}.csv"
    return Response(body=body, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{filename}"'})


def _today(timezone: str) -> dt.date:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(timezone)).date()


@app.on_sqs_message(queue=names.resource_name("readings"), batch_size=10)
def ingest_readings(event):
    return consumer.consume_batch(ingestor.source, event, ingestor.handle_batch)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def relay_outbox(event):
    """Publish the events whose writer died between its change and their publish."""
    outbox.Outbox(SnsPublisher()).relay(get_settings().outbox_grace_s)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def check_silent_meters(event):
    """Start the silent check: one message a shard of the silence deadlines."""
    silence.start()


@app.on_sqs_message(queue=names.resource_name("silent-checks"), batch_size=10)
def check_silent_shard(event):
    return consumer.consume(silent.SOURCE, event, silence.check)


# --- alerts and chat ----------------------------------------------------------------------


@api.route("/alerts", "GET", summary="My alerts (admins: all), unacknowledged first", access=Access.USER,
           query=am.AlertsQuery, response=am.AlertPage, tags=("alerts",))
def list_alerts(call: Call) -> am.AlertPage:
    return alerts.list_for(call.user, call.query.limit, call.query.cursor, call.query.unacknowledged)


@api.route("/alerts/{alert_id}/ack", "POST", summary="Acknowledge an alert (per user, idempotent)",
           access=Access.USER, response=am.AlertOut, tags=("alerts",))
def acknowledge_alert(call: Call, alert_id: str) -> am.AlertOut:
    return alerts.acknowledge(call.user, alert_id)


@api.route("/chat/conversations", "GET", summary="Chat conversations: clients their own, admins all",
           access=Access.USER, query=chat_models.ListQuery, response=chat_models.ConversationPage, tags=("chat",))
def list_conversations(call: Call) -> chat_models.ConversationPage:
    return chat.conversations(call.user, call.query.limit, call.query.cursor)


@api.route("/chat/conversations/{conversation_id}/messages", "GET", summary="A conversation's messages",
           access=Access.USER, query=chat_models.ListQuery, response=chat_models.MessagePage, tags=("chat",))
def list_messages(call: Call, conversation_id: str) -> chat_models.MessagePage:
    return chat.messages(call.user, conversation_id, call.query.limit, call.query.cursor)


@app.on_sqs_message(queue=names.resource_name("notifications"), batch_size=10)
def deliver_notifications(event):
    return consumer.consume(notifications_source, event, notifications)


@app.on_sqs_message(queue=names.resource_name("realtime-sync"), batch_size=10)
def realtime_sync_consumer(event):
    return consumer.consume(Source("realtime-sync", user_events.parse), event,
                            lambda event: realtime_sync.apply(pusher, event))


# --- sync consumers -----------------------------------------------------------------------


@app.on_sqs_message(queue=names.resource_name("monitoring-sync"), batch_size=10)
def monitoring_sync(event):
    return consumer.consume_batch(replica.SOURCE, event, consumer.together(
        replica.SOURCE.queue, lambda events: replica.apply_batch(events, hours, raised_alerts)))


@app.on_sqs_message(queue=names.resource_name("devices-sync"), batch_size=10)
def devices_sync_consumer(event):
    return consumer.consume(Source("devices-sync", user_events.parse), event,
                            lambda event: devices_sync.apply(devices, event))


# --- WebSocket ----------------------------------------------------------------------------


@app.on_ws_connect()
def ws_connect(event):
    return realtime.connect(event)


@app.on_ws_message()
def ws_message(event):
    realtime.message(event)


@app.on_ws_disconnect()
def ws_disconnect(event):
    realtime.disconnect(event)
