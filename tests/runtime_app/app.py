"""A test-only Chalice app that exercises the local runtime (not part of the product).

It records what it handled in a table of its own (`ems-{stage}-runtime-test-records`, made on
first use; the product's template has no table for it) so that tests can read it back through
the AWS endpoint.
"""

import json
import uuid

from chalice import Chalice, Rate, Response

from chalicelib import aws, names
from chalicelib.observability import logger
from chalicelib.platform import events, websocket

app = Chalice(app_name="runtime-test")
events.install(app)

TOKEN = "let-me-in"


RECORDS = "runtime-test-records"


def _records_table() -> str:
    """The records table, made the first time (concurrent handlers may race to make it)."""
    name = names.resource_name(RECORDS)
    dynamodb = aws.client("dynamodb")
    try:
        dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    except dynamodb.exceptions.ResourceInUseException:
        pass
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    return name


def _record(kind: str, **fields: object) -> None:
    aws.client("dynamodb").put_item(
        TableName=_records_table(),
        Item={
            "id": {"S": f"{kind}#{uuid.uuid4()}"},
            "kind": {"S": kind},
            "data": {"S": json.dumps(fields, sort_keys=True)},
        },
    )


@app.route("/ping")
def ping() -> dict:
    return {"pong": True, "stage": app.current_request.context.get("stage")}


@app.route("/echo/{value}")
def echo(value: str) -> dict:
    return {"value": value}


@app.on_ws_connect()
def connect(event):
    query = event.to_dict().get("queryStringParameters") or {}
    if query.get("token") != TOKEN:
        return Response(status_code=401, body="")
    _record("connect", connection_id=event.connection_id)
    return None


@app.on_ws_message()
def message(event):
    body = json.loads(event.body)
    action = body.get("action")
    if action == "echo":
        frame = {"echo": body.get("text"), "connection_id": event.connection_id}
        websocket.send(app.websocket_api, event.connection_id, json.dumps(frame))
    elif action == "send_to":
        try:
            websocket.send(app.websocket_api, body["connection_id"], json.dumps({"hello": True}))
            outcome = {"sent": body["connection_id"]}
        except websocket.ConnectionGoneError as exc:
            outcome = {"gone": exc.connection_id}
        websocket.send(app.websocket_api, event.connection_id, json.dumps(outcome))
    elif action == "crash":
        raise RuntimeError("crash requested by the test")
    logger.info("frame handled", extra={"action": action})


@app.on_ws_disconnect()
def disconnect(event):
    _record("disconnect", connection_id=event.connection_id)


@app.on_sqs_message(queue=names.resource_name("readings"), batch_size=5)
def consume(event):
    failures = []
    for record in event:
        message_id = record.to_dict()["messageId"]
        body = json.loads(record.body)
        if body.get("raise"):
            raise RuntimeError("the test asked this batch to fail")
        if body.get("fail"):
            _record("failed", value=body.get("value"))
            failures.append({"itemIdentifier": message_id})
            continue
        if body.get("push_to"):
            frame = {"from": "sqs", "value": body.get("value")}
            websocket.send(app.websocket_api, body["push_to"], json.dumps(frame))
        _record("processed", value=body.get("value"))
    logger.info("batch consumed", extra={"failed": len(failures)})
    return {"batchItemFailures": failures}


@app.on_sqs_message(queue=names.resource_name("notifications"), batch_size=30,
                    maximum_batching_window_in_seconds=2)
def consume_windowed(event):
    _record("windowed batch", size=len(list(event)))


@app.schedule(Rate(1, unit=Rate.MINUTES))
def heartbeat(event):
    _record("heartbeat", time=event.time)
