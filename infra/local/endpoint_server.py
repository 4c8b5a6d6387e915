"""The embedded AWS endpoint: ministack (a LocalStack-compatible emulator) behind a request guard.

Run by the local runtime with the endpoint's own interpreter (`.venv/endpoint`, whose pins
differ from the app's), as a script: it imports nothing of the project. Settings come from
the environment:

- `EMS_ENDPOINT_HOST` / `EMS_ENDPOINT_PORT`: where to listen (loopback only by default);
- `EMS_ENDPOINT_ACCESS_KEY`: the stage's random access key id; a request must be signed with it;
- `EMS_ENDPOINT_LAMBDA_PYTHON`: the interpreter Python functions run on (default: the emulator's own);
- `EMS_ENDPOINT_IAM=1` (the deploy rehearsal): IAM enforced (ministack's `AUTH=true`): the access key
  is the account's root; functions act as their execution roles, whose session keys' signatures the
  emulator verifies and whose policies it evaluates; requests that name no key reach the emulator,
  which serves them only where AWS does (public API Gateway routes), and keys the emulator would take
  as root unchecked (`test`, an account number) are refused;
- `EMS_ENDPOINT_STATE_DIR`: where ministack keeps its state (loaded at start, saved on a clean
  stop and every `EMS_ENDPOINT_SAVE_INTERVAL_S` seconds after a change, so `kill -9` loses at
  most that interval).

With `EMS_ENDPOINT_BULK_LOAD=1` (the benchmarks' runtime), `POST /_ems/bulk-load` puts many
items into an existing table at once (`{"TableName", "Region", "Items": [...]}`, DynamoDB JSON),
what DynamoDB's ImportTable does from S3: a year of hourly history for a fleet in seconds, where
BatchWriteItem takes minutes. It needs the access key like any other request.

The guard refuses what a web page could send: any request with an `Origin` or `Sec-Fetch-*`
header (every current browser adds them; SDKs never do), and any request that does not name
the access key, which a page cannot know. So no page the user visits can read or write the
local tables and queues through the browser. The emulator's CORS answer (`*`) is therefore of
no use to anyone, and the guard drops it from every response: an SDK client then parses the
few headers the service sends, as on AWS, not twice as many (about 4% of a call's CPU in the client).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import os
import re
import shutil
import sys
import time
from typing import Any

HOST = os.environ.get("EMS_ENDPOINT_HOST", "127.0.0.1")
PORT = int(os.environ.get("EMS_ENDPOINT_PORT", "4566"))
ACCESS_KEY = os.environ.get("EMS_ENDPOINT_ACCESS_KEY", "")
STATE_DIR = os.environ.get("EMS_ENDPOINT_STATE_DIR", "")
SAVE_INTERVAL_S = float(os.environ.get("EMS_ENDPOINT_SAVE_INTERVAL_S", "30"))
BULK_LOAD = os.environ.get("EMS_ENDPOINT_BULK_LOAD") == "1"
BULK_LOAD_PATH = "/_ems/bulk-load"
# With `EMS_ENDPOINT_LAMBDA_PYTHON` (the deploy rehearsal), Python functions run on that interpreter
# rather than the emulator's own, whose packages would hide a dependency the deployment zip lacks.
LAMBDA_PYTHON = os.environ.get("EMS_ENDPOINT_LAMBDA_PYTHON", "")
IAM = os.environ.get("EMS_ENDPOINT_IAM") == "1"
# Liveness probes that reveal nothing and change nothing (LocalStack's own path among them).
OPEN_PATHS = ("/_localstack/health", "/_ministack/health")

# Its state files hold password hashes and chats: readable by the owner only.
os.umask(0o077)
# ministack reads its settings at import time.
os.environ["GATEWAY_PORT"] = str(PORT)
os.environ["BIND_HOST"] = HOST
os.environ.setdefault("LOG_LEVEL", "WARNING")
if IAM:
    # ministack takes this key as the account's root (and any `test` or 12-digit key: the guard refuses those).
    os.environ["AUTH"] = "true"
    os.environ["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
if STATE_DIR:
    os.environ["PERSIST_STATE"] = "1"
    os.environ["STATE_DIR"] = STATE_DIR

import uvicorn
from ministack import app as ministack

log = logging.getLogger("ems.endpoint")

# --- Query: only the sort-key range is evaluated ---------------------------------------------
# ministack evaluates a Query's key condition item by item over the whole partition (a day of a
# device with a year of hourly totals took 1.1 s). A query on a base table whose sort key is a
# string, with `pk = :v AND sk <op> ...`, is handed only the partition's items inside that range;
# the emulator then applies the same condition, limit, paging and order to them, so the answer is
# the same and its cost follows the items in range, as on DynamoDB.
_NAME = r"(#?[A-Za-z0-9_]+)"
_VALUE = r"(:[A-Za-z0-9_]+)"
_RANGE_FORMS = [
    (re.compile(rf"^{_NAME}\s+BETWEEN\s+{_VALUE}\s+AND\s+{_VALUE}$", re.IGNORECASE), "between"),
    (re.compile(rf"^{_NAME}\s*(<=|<|>=|>|=)\s*{_VALUE}$"), "compare"),
    (re.compile(rf"^begins_with\s*\(\s*{_NAME}\s*,\s*{_VALUE}\s*\)$", re.IGNORECASE), "prefix"),
]
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


def _strip_parentheses(text: str) -> str:
    """The expression without parentheses that enclose all of it (`(a AND f(b))` -> `a AND f(b)`)."""
    text = text.strip()
    while text.startswith("(") and _closing(text) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _closing(text: str) -> int:
    """Where the parenthesis that opens `text` closes (-1: never)."""
    depth = 0
    for at, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return at
    return -1


def _key_range(data: dict[str, Any], pk_name: str, sk_name: str) -> tuple[str, Any] | None:
    """(partition value, test on a sort-key string) for a simple key condition, else None."""
    names = data.get("ExpressionAttributeNames") or {}
    values = data.get("ExpressionAttributeValues") or {}
    text = _strip_parentheses(data.get("KeyConditionExpression") or "")
    between = re.match(rf"^(.*?)\s+AND\s+({_NAME}\s+BETWEEN\s+{_VALUE}\s+AND\s+{_VALUE})$", text, re.IGNORECASE)
    parts = [between.group(1), between.group(2)] if between else _AND.split(text)
    if len(parts) != 2:
        return None
    first, second = (_strip_parentheses(part) for part in parts)
    pk = re.match(rf"^{_NAME}\s*=\s*{_VALUE}$", first)
    if not pk or names.get(pk.group(1), pk.group(1)) != pk_name:
        return None
    pk_value = values.get(pk.group(2), {}).get("S")
    if pk_value is None:
        return None

    def string(ref: str) -> str | None:
        value = values.get(ref, {})
        return value.get("S") if isinstance(value, dict) else None

    for pattern, kind in _RANGE_FORMS:
        match = pattern.match(second)
        if not match or names.get(match.group(1), match.group(1)) != sk_name:
            continue
        if kind == "between":
            operands, op = [string(match.group(2)), string(match.group(3))], "between"
        elif kind == "prefix":
            operands, op = [string(match.group(2))], "prefix"
        else:
            operands, op = [string(match.group(3))], match.group(2)
        if any(operand is None for operand in operands):
            return None
        return pk_value, _RangeTest(op, [str(operand) for operand in operands])
    return None


class _RangeTest:
    """A sort-key condition: a test of one sort-key string, and the span of sorted keys it holds."""

    def __init__(self, op: str, operands: list[str]) -> None:
        self.op, self.operands = op, operands

    def __call__(self, key: str) -> bool:
        op, first = self.op, (self.operands or [""])[0]
        if op == "between":
            return first <= key <= self.operands[1]
        if op == "prefix":
            return key.startswith(first)
        if op == "<":
            return key < first
        if op == "<=":
            return key <= first
        if op == ">":
            return key > first
        if op == ">=":
            return key >= first
        return key == first if op == "=" else True

    def span(self, rows: list[Any], value: Any) -> tuple[int, int]:
        """[start, end) of the rows, sorted by `value(row)`, whose keys pass: binary searches."""
        op, first = self.op, (self.operands or [""])[0]
        if op == "any":
            return 0, len(rows)
        if op == "prefix":  # the keys cut to the prefix's length are in order too
            cut = len(first)
            return (bisect.bisect_left(rows, first, key=lambda row: value(row)[:cut]),
                    bisect.bisect_right(rows, first, key=lambda row: value(row)[:cut]))
        if op in ("<", "<="):
            low = 0
        elif op == ">":
            low = bisect.bisect_right(rows, first, key=value)
        else:  # >=, =, between
            low = bisect.bisect_left(rows, first, key=value)
        if op in (">", ">="):
            high = len(rows)
        elif op == "<":
            high = bisect.bisect_left(rows, first, key=value)
        else:  # <=, =, between
            high = bisect.bisect_right(rows, self.operands[-1], key=value)
        return low, max(low, high)


# --- ReceiveMessage: cost by what is received, not by queue depth ------------------------------
# ministack's ReceiveMessage walks every message of the queue several times per call (and a long
# poll repeats the call every 0.1 s): with 10,000 messages queued each receive took tens of ms.
# For standard queues, the messages are examined in order only until enough visible ones are
# found; a visible message that has reached maxReceiveCount is never handed out (it asks for the
# dead-letter sweep, which moves it, as SQS does), and the retention sweep runs once a second.
_sweep_due: set[str] = set()
_expired_at: dict[str, float] = {}


def _max_receive_count(queue: dict[str, Any]) -> int:
    try:
        return int(json.loads(queue["attributes"].get("RedrivePolicy") or "{}").get("maxReceiveCount", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def fast_receives() -> None:
    """Wrap ministack's SQS receive helpers as described above."""
    from ministack.services import sqs

    collect, sweep, expire = sqs._collect_msgs, sqs._dlq_sweep, sqs._expire_retained

    def collect_msgs(queue: dict[str, Any], max_n: int, vis_timeout: int) -> list[Any]:
        if queue["is_fifo"]:
            return collect(queue, max_n, vis_timeout)
        now = time.time()
        exhausted_at = _max_receive_count(queue)
        found: list[Any] = []
        for message in queue["messages"]:
            if "sys" not in message or "visible_at" not in message or "md5_body" not in message:
                sqs._ensure_msg_fields(message)
            if message["visible_at"] > now:
                continue
            if exhausted_at and message.get("receive_count", 0) >= exhausted_at:
                _sweep_due.add(queue["attributes"].get("QueueArn", ""))
                continue
            found.append(message)
            if len(found) >= max_n:
                break
        for message in found:
            message.setdefault("message_attributes", {})
            message["receipt_handle"] = sqs.new_uuid()
            message["visible_at"] = now + vis_timeout
            message["receive_count"] = message.get("receive_count", 0) + 1
            if message.get("first_receive_at") is None:
                message["first_receive_at"] = now
        return found

    def dlq_sweep(queue: dict[str, Any]) -> None:
        arn = queue["attributes"].get("QueueArn", "")
        if queue["is_fifo"] or arn in _sweep_due:
            _sweep_due.discard(arn)
            sweep(queue)

    def expire_retained(queue: dict[str, Any]) -> None:
        arn = queue["attributes"].get("QueueArn", "")
        if time.monotonic() - _expired_at.get(arn, 0.0) >= 1.0:
            _expired_at[arn] = time.monotonic()
            expire(queue)

    sqs._collect_msgs, sqs._dlq_sweep, sqs._expire_retained = collect_msgs, dlq_sweep, expire_retained

    # A long poll re-checks its queue every 0.1 s: a message waited 50 ms on average at each hop
    # (readings, then notifications) before its consumer saw it. A send now wakes the polls.
    waker = _Waker(sqs.asyncio)
    sqs.asyncio = waker
    for action in ("SendMessage", "SendMessageBatch"):
        sqs._HANDLERS[action] = _waking(sqs._HANDLERS[action], waker)
    from ministack.services import sns

    sns._deliver_to_sqs = _waking(sns._deliver_to_sqs, waker)


class _Waker:
    """Stands for the `asyncio` module in ministack's SQS: its `sleep` ends early on a send."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._event: Any = None
        self._loop: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        """At most `delay` (the poll's own timeout stays the bound), less when a message is sent."""
        if self._event is None:
            self._loop = self._real.get_running_loop()
            self._event = self._real.Event()
        try:
            await self._real.wait_for(self._event.wait(), delay)
        except TimeoutError:
            pass
        return result

    def wake(self) -> None:
        event, loop = self._event, self._loop
        if event is None:
            return
        self._event = None
        try:
            running = self._real.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:  # a send from one of the emulator's worker threads
            loop.call_soon_threadsafe(event.set)


def _waking(action: Any, waker: _Waker) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        finally:
            waker.wake()
    return wrapped


def narrow_queries() -> None:
    """Wrap ministack's Query as described above."""
    from ministack.services import dynamodb

    query = dynamodb._query

    def narrowed(data: dict[str, Any]) -> Any:
        if data.get("IndexName") and not data.get("KeyConditions"):
            return _narrowed_index_query(dynamodb, query, data)
        table = None if data.get("IndexName") or data.get("KeyConditions") else dynamodb._tables.get(
            dynamodb._normalize_table_name(data.get("TableName")))
        if not table or not table.get("sk_name") or dynamodb._get_attr_type(table, table["sk_name"]) != "S":
            return query(data)
        found = _key_range(data, table["pk_name"], table["sk_name"])
        if found is None:
            return query(data)
        pk_value, inside = found
        items = table["items"]
        partition = items.get(pk_value)
        if not partition:
            return query(data)
        # Synchronous on the event loop: no other request sees the narrowed partition.
        items[pk_value] = {key: item for key, item in partition.items() if inside(key)}
        try:
            return query(data)
        finally:
            items[pk_value] = partition

    dynamodb._query = narrowed
    index_item = dynamodb._index_item

    def counted(table: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table[_WRITES] = table.get(_WRITES, 0) + 1
        return index_item(table, *args, **kwargs)

    dynamodb._index_item = counted


def _hash_only(data: dict[str, Any], pk_name: str) -> str | None:
    """The partition value of a key condition `pk = :v` with no sort-key part, else None."""
    names = data.get("ExpressionAttributeNames") or {}
    text = _strip_parentheses(data.get("KeyConditionExpression") or "")
    pk = re.match(rf"^{_NAME}\s*=\s*{_VALUE}$", text)
    if not pk or names.get(pk.group(1), pk.group(1)) != pk_name:
        return None
    value = (data.get("ExpressionAttributeValues") or {}).get(pk.group(2), {})
    return value.get("S") if isinstance(value, dict) else None


_WRITES = "_ems_writes"  # a table's count of item writes, which any change of an index partition follows
_ordered_cache: dict[tuple[int, str, Any], tuple[int, list[Any]]] = {}


def _ordered_members(table: dict[str, Any], index_name: str, partition_value: Any, entries: Any,
                     range_name: str) -> list[Any] | None:
    """An index partition's members in the index's order (sort key, then the base keys), kept
    until the table is written again; None for a shape this path does not order."""
    key = (id(table), index_name, partition_value)
    cached = _ordered_cache.get(key)
    writes = table.get(_WRITES, 0)
    if cached is not None and cached[0] == writes:
        return cached[1]
    items = table["items"]
    rows = []
    for base_pk, base_sk in entries:
        item = items.get(base_pk, {}).get(base_sk)
        value = item.get(range_name, {}).get("S") if item is not None else None
        if value is None or not isinstance(base_pk, str) or not isinstance(base_sk, str | None):
            return None
        rows.append(((value, base_pk, base_sk or ""), (base_pk, base_sk)))
    rows.sort(key=lambda row: row[0])
    _ordered_cache[key] = (writes, rows)
    return rows


def _narrowed_index_query(dynamodb: Any, query: Any, data: dict[str, Any]) -> Any:
    """An index query handed only the index partition's members it can reach: inside the sort-key
    range, from the ExclusiveStartKey on, and (with a Limit) one more than the page. ministack
    otherwise sorts and evaluates the whole index partition (every meter of the fleet) per page.
    Only a string index sort key and a base table of string keys take this path; the emulator then
    applies the same condition, order, paging and filter to what it is handed."""
    table = dynamodb._tables.get(dynamodb._normalize_table_name(data.get("TableName")))
    index = dynamodb._index_def(table, data["IndexName"]) if table else None
    if index is None:
        return query(data)
    hash_names, range_names = dynamodb._index_key_lists(index)
    if len(hash_names) != 1 or len(range_names) != 1 or dynamodb._get_attr_type(table, range_names[0]) != "S":
        return query(data)
    hash_name, range_name = hash_names[0], range_names[0]
    found = _key_range(data, hash_name, range_name)
    if found is None:
        partition_value = _hash_only(data, hash_name)
        if partition_value is None:
            return query(data)
        found = (partition_value, _RangeTest("any", []))
    partition_value, inside = found
    members = dynamodb._index_members(table).get(data["IndexName"])
    entries = members.get(partition_value) if members is not None else None
    if not entries:
        return query(data)
    ordered = _ordered_members(table, data["IndexName"], partition_value, entries, range_name)
    if ordered is None:
        return query(data)  # a shape this path does not order the emulator's way
    # Binary searches in the ordered members: a page costs what it holds, not the partition's size.
    low, high = inside.span(ordered, lambda row: row[0][0])
    forward = data.get("ScanIndexForward", True)
    start = data.get("ExclusiveStartKey")
    if start:
        try:
            at = (start[range_name]["S"], start[table["pk_name"]]["S"],
                  start[table["sk_name"]]["S"] if table.get("sk_name") else "")
        except (KeyError, TypeError):
            return query(data)  # the emulator answers a malformed key its own way
        if forward:
            low = max(low, bisect.bisect_left(ordered, at, lo=low, hi=high, key=lambda row: row[0]))
        else:
            high = min(high, bisect.bisect_right(ordered, at, lo=low, hi=high, key=lambda row: row[0]))
    limit = data.get("Limit")
    paged = bool(limit) and data.get("Select") != "COUNT" and not data.get("QueryFilter")
    reach = int(limit or 0) + 2 if paged else high - low  # the start key itself, the page, and one to show there is more
    rows = ordered[low:min(high, low + reach)] if forward else ordered[max(low, high - reach):high][::-1]
    # Synchronous on the event loop: no other request sees the narrowed partition.
    members[partition_value] = dict.fromkeys(key for _, key in rows)
    try:
        return query(data)
    finally:
        members[partition_value] = entries


_NAMED_KEY = re.compile(rb"Credential=([^/%,\s&]+)")
_UNCHECKED_ROOT_KEY = re.compile(rb"test|[0-9]{12}")


class Guard:
    """ASGI middleware: only the stage's own SDK clients get through."""

    def __init__(self, inner: Any, access_key: str) -> None:
        self.inner = inner
        self.access_key = access_key.encode()
        self.changes = 0  # requests that may have changed state since the last save

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            reason = self.refusal(scope)
            if reason:
                await self.refuse(scope, send, reason)
                return
            if scope.get("method") != "GET":
                self.changes += 1
            if BULK_LOAD and scope.get("path") == BULK_LOAD_PATH and scope.get("method") == "POST":
                await self.bulk_load(receive, send)
                return
        if scope["type"] == "http":
            send = _without_cors(send)
        await self.inner(scope, receive, send)

    @staticmethod
    async def bulk_load(receive: Any, send: Any) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        status, answer = 200, dict[str, Any]()
        try:
            answer["loaded"] = load_items(json.loads(b"".join(chunks)))
        except (ValueError, KeyError, TypeError) as exc:
            status, answer = 400, {"__type": "ValidationException", "message": str(exc)}
        body = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def refusal(self, scope: dict[str, Any]) -> str:
        headers = dict(scope.get("headers") or [])
        if b"origin" in headers or any(name.startswith(b"sec-fetch-") for name in headers):
            return "browser requests are not served by the local AWS endpoint"
        if scope.get("path") in OPEN_PATHS and scope.get("method") == "GET":
            return ""
        if not self.access_key:
            return ""
        credential = headers.get(b"authorization", b"") + b" " + scope.get("query_string", b"")
        if b"Credential=" + self.access_key + b"/" in credential or b"Credential=" + self.access_key + b"%2F" in credential:
            return ""
        if IAM:
            named = _NAMED_KEY.search(credential)
            if named is None or not _UNCHECKED_ROOT_KEY.fullmatch(named.group(1)):
                return ""  # no key (the emulator decides), or a key whose signature the emulator verifies
        return "requests must be signed with the stage's access key (see the data folder's credentials file)"

    @staticmethod
    async def refuse(scope: dict[str, Any], send: Any, reason: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = ('{"__type": "UnrecognizedClientException", "message": "' + reason + '"}').encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/x-amz-json-1.0"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _without_cors(send: Any) -> Any:
    """`send` with the CORS headers taken out of the response's start (see the module's notes)."""
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [(name, value) for name, value in message.get("headers") or ()
                                              if not name.lower().startswith(b"access-control-")]}
        await send(message)
    return sending


def load_items(request: dict[str, Any]) -> int:
    """Put `request["Items"]` into the existing table `request["TableName"]` (see the module's notes)."""
    from ministack.core.responses import set_request_account_id, set_request_region
    from ministack.services import dynamodb

    set_request_account_id(ACCESS_KEY)
    set_request_region(str(request.get("Region") or "us-east-1"))
    table = dynamodb._tables.get(str(request["TableName"]))
    if table is None:
        raise KeyError(f"no table {request['TableName']}")
    items = request["Items"]
    for item in items:
        if table["pk_name"] not in item or (table["sk_name"] and table["sk_name"] not in item):
            raise ValueError("an item lacks the table's key")
    for item in items:
        pk_value = dynamodb._extract_key_val(item[table["pk_name"]])
        sk_value = dynamodb._extract_key_val(item[table["sk_name"]]) if table["sk_name"] else "__no_sort__"
        dynamodb._set_item(table, pk_value, sk_value, item)
    return len(items)


# A save is one commit of every service's file: written first into SAVING_DIR, then marked complete
# (COMMITTED, written atomically) and only then moved into place. A kill between two files of a
# save would otherwise leave a mix of two saves (a stack recorded complete beside queues from before
# it); `finish_interrupted_save` completes a marked save at the next start and drops an unmarked one.
SAVING_DIR = ".saving"
COMMITTED = ".saving.committed"


def save_all_at_once(services: dict[str, Any]) -> None:
    """ministack's `save_all`, as one commit of every service's file (see SAVING_DIR)."""
    from ministack.core import persistence

    staging = os.path.join(STATE_DIR, SAVING_DIR)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    persistence.STATE_DIR = staging
    try:
        persistence.save_all(services)
    finally:
        persistence.STATE_DIR = STATE_DIR
    files = sorted(name for name in os.listdir(staging) if name.endswith(".json"))
    marker = os.path.join(STATE_DIR, COMMITTED)
    with open(marker + ".tmp", "w") as out:
        json.dump(files, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(marker + ".tmp", marker)
    finish_interrupted_save()


def finish_interrupted_save() -> None:
    """Move a committed save's files into place; drop the files of a save that was never committed."""
    staging = os.path.join(STATE_DIR, SAVING_DIR)
    marker = os.path.join(STATE_DIR, COMMITTED)
    if os.path.exists(marker):
        with open(marker) as committed:
            for name in json.load(committed):
                if os.path.exists(os.path.join(staging, name)):
                    os.replace(os.path.join(staging, name), os.path.join(STATE_DIR, name))
        os.remove(marker)
    shutil.rmtree(staging, ignore_errors=True)


def save_state() -> None:
    """Write every service's state now, as one commit."""
    save_all_at_once(ministack._build_persistence_save_dict())


async def save_periodically(guard: Guard, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), SAVE_INTERVAL_S)
        except TimeoutError:
            pass
        if stop.is_set() or guard.changes == 0:
            continue
        guard.changes = 0
        started = time.monotonic()
        try:
            save_state()  # on the loop: no request changes state while it runs
        except Exception as exc:  # noqa: BLE001 - the next interval tries again
            guard.changes += 1
            log.warning("periodic state save failed: %s", exc)
            continue
        took_s = time.monotonic() - started
        if took_s > 1:
            log.warning("periodic state save took %.1f s", took_s)


# Batch operations AWS authorizes as their one-message action (the SNS and SQS API permission references:
# `sns:Publish` "grants permission to both publish and publish batch"); ministack asks for an action of
# the batch's own name, which no AWS policy grants.
AUTHORIZED_AS = {
    "sns:PublishBatch": "sns:Publish",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


# PartiQL operations are not IAM actions: AWS authorizes each statement as `dynamodb:PartiQL<Verb>` on
# the table it names (the DynamoDB PartiQL IAM reference), as ministack does a transaction's items.
PARTIQL_OPERATIONS = {"dynamodb:ExecuteStatement", "dynamodb:BatchExecuteStatement", "dynamodb:ExecuteTransaction"}
_PARTIQL_TARGET = re.compile(r'^\s*(SELECT\b.*?\bFROM|INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?([\w.-]+)"?',
                             re.IGNORECASE | re.DOTALL)


def partiql_checks(body: bytes, region: str, account_id: str) -> list[tuple[str, str]]:
    """(action, table ARN) for each PartiQL statement of a request; one that names no table is
    checked as `dynamodb:PartiQL` on `*`, which no policy of the stage grants."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    statements = data.get("Statements") or data.get("TransactStatements") or [data]
    checks = []
    for statement in statements:
        text = statement.get("Statement") if isinstance(statement, dict) else None
        found = _PARTIQL_TARGET.match(text) if isinstance(text, str) else None
        if found is None:
            checks.append(("dynamodb:PartiQL", "*"))
        else:
            verb = found.group(1).split()[0].title()
            checks.append((f"dynamodb:PartiQL{verb}", f"arn:aws:dynamodb:{region}:{account_id}:table/{found.group(2)}"))
    return checks


def batch_actions_as_aws() -> None:
    """IAM checks a batch operation as AWS does: with its one-message action (`AUTHORIZED_AS`), and
    each PartiQL statement with its own action on its table (`partiql_checks`)."""
    from ministack.core import iam_actions

    extract = iam_actions.extract_iam_action
    item_checks = iam_actions.dynamodb_transaction_checks

    def extracted(*args: Any, **kwargs: Any) -> str | None:
        action = extract(*args, **kwargs)
        return AUTHORIZED_AS.get(action, action) if action else action

    def checked(iam_action: str, body: bytes, region: str, account_id: str) -> list[tuple[str, str]]:
        if iam_action in PARTIQL_OPERATIONS:
            return partiql_checks(body, region, account_id)
        return list(item_checks(iam_action, body, region, account_id))

    iam_actions.extract_iam_action = extracted
    iam_actions.dynamodb_transaction_checks = checked


def lambda_interpreter(python: str) -> None:
    """Run Python functions' workers on `python` (a bare interpreter: only what a deployment zip holds)."""
    from ministack.core import lambda_runtime

    detect = lambda_runtime._detect_runtime_binary

    def detected(runtime: str) -> tuple[str, str]:
        binary, script = detect(runtime)
        return (python, script) if runtime.startswith("python") else (binary, script)

    lambda_runtime._detect_runtime_binary = detected


async def main() -> None:
    if LAMBDA_PYTHON:
        lambda_interpreter(LAMBDA_PYTHON)
    if IAM:
        batch_actions_as_aws()
    narrow_queries()
    fast_receives()
    if STATE_DIR:
        finish_interrupted_save()  # before the emulator loads the state
        ministack.save_all = save_all_at_once  # the save on a clean stop, too
    guard = Guard(ministack.app, ACCESS_KEY)
    # uvicorn with httptools and uvloop: about half the per-request cost of the emulator's own server.
    server = uvicorn.Server(uvicorn.Config(
        guard, host=HOST, port=PORT, loop="none", http="httptools", lifespan="on",
        log_level="warning", access_log=False, timeout_keep_alive=75, server_header=False,
        date_header=False,  # the emulator sends its own
    ))
    stop = asyncio.Event()
    saver = asyncio.create_task(save_periodically(guard, stop)) if STATE_DIR and SAVE_INTERVAL_S > 0 else None
    # uvicorn stops on SIGTERM/SIGINT; the lifespan shutdown that follows saves the state once more.
    await server.serve()
    stop.set()
    if saver is not None:
        saver.cancel()


if __name__ == "__main__":
    import uvloop

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    uvloop.run(main())
