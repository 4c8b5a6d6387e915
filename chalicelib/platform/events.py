"""Middleware for every kind of event: log correlation and the WebSocket API's setup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Chalice
from chalice.app import CloudWatchEvent, SQSEvent, WebsocketEvent

from chalicelib.observability import bind_request
from chalicelib.platform import websocket


def install(app: Chalice) -> None:
    """Register the middleware that runs before every non-REST handler."""

    def prepare(event: Any, get_response: Callable[[Any], Any]) -> Any:
        websocket.configure(app.websocket_api)
        if isinstance(event, WebsocketEvent):
            context = event.to_dict().get("requestContext", {})
            bind_request(
                str(context.get("requestId", "")),
                request_id=context.get("requestId"),
                connection_id=event.connection_id,
                route=context.get("routeKey"),
            )
        elif isinstance(event, SQSEvent):
            records = event.to_dict().get("Records", [])
            first = records[0]["messageId"] if records else ""
            bind_request(first, route="sqs", batch_size=len(records))
        elif isinstance(event, CloudWatchEvent):
            bind_request(str(event.to_dict().get("id", "")), route="schedule")
        return get_response(event)

    for event_type in ("websocket", "sqs", "scheduled"):
        app.register_middleware(prepare, event_type)
