"""The product app's platform edge over real HTTP: health, error bodies, CORS, logs."""

from __future__ import annotations

import json
import socket

import requests

from tests.accounts import Account, api, new_client
from tests.harness import RuntimeProcess, wait_for


def test_public_health_is_a_liveness_answer_that_names_nothing(ems: RuntimeProcess) -> None:
    response = requests.get(f"{ems.rest_url}/health", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "stage": ems.stage}


def test_the_detailed_health_is_for_admins_only(ems: RuntimeProcess, admin: Account) -> None:
    assert requests.get(f"{ems.rest_url}/health/details", timeout=10).status_code == 401
    client = new_client(ems)
    assert api(ems, "GET", "/health/details", client).status_code == 403
    response = api(ems, "GET", "/health/details", admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["stage"] == ems.stage
    assert ems.name("hourly-totals") in body["tables"]
    assert ems.name("readings-dlq") in body["queues"]
    assert all(body["tables"].values()) and all(body["queues"].values())


def test_unknown_route_and_wrong_method_get_the_contract_error_body(ems: RuntimeProcess) -> None:
    missing = requests.get(f"{ems.rest_url}/nothing/here", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = requests.delete(f"{ems.rest_url}/health", timeout=10)
    assert wrong.status_code == 405
    assert wrong.json() == {"error": {"code": "method_not_allowed", "message": "Unsupported method: DELETE"}}


def test_any_other_method_and_a_malformed_request_get_the_contract_error_body(ems: RuntimeProcess) -> None:
    for method in ("TRACE", "CONNECT", "PROPFIND"):
        answer = requests.request(method, f"{ems.rest_url}/health", timeout=10)
        assert answer.status_code in (404, 405), (method, answer.status_code, answer.text)
        assert answer.json()["error"]["code"] in ("not_found", "method_not_allowed"), method
    with socket.create_connection(("127.0.0.1", ems.rest_port), timeout=10) as raw:
        too_many = b"".join(b"X-H%d: v\r\n" % n for n in range(120))
        raw.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + too_many + b"\r\n")
        answer = raw.recv(65536)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 431"), answer[:200]
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "headers_too_large"


def test_an_oversized_body_gets_413_not_a_500(ems: RuntimeProcess) -> None:
    response = requests.post(f"{ems.rest_url}/health", data=b"x" * (300 * 1024), timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_cors_preflight_and_responses_allow_the_configured_origin(ems: RuntimeProcess) -> None:
    preflight = requests.options(
        f"{ems.rest_url}/health",
        headers={"Origin": "http://localhost:8000", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:8000"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    response = requests.get(f"{ems.rest_url}/health", timeout=10)
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8000"


def test_each_request_logs_one_json_line_with_its_request_id(ems: RuntimeProcess) -> None:
    response = requests.get(f"{ems.rest_url}/health", timeout=10)
    assert response.status_code == 200

    def handled() -> list[dict]:
        found = []
        for line in ems.lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message") == "request handled" and record.get("route") == "GET /health":
                found.append(record)
        return found

    lines = wait_for(handled, what="a 'request handled' log line")
    assert all(r["request_id"] and r["correlation_id"] == r["request_id"] for r in lines)
    assert lines[-1]["status"] == 200


def test_detailed_health_answers_503_naming_a_missing_table(ems: RuntimeProcess, admin: Account) -> None:
    table = ems.name("chat-messages")
    dynamodb = ems.client("dynamodb")
    description = dynamodb.describe_table(TableName=table)["Table"]
    dynamodb.delete_table(TableName=table)
    try:
        response = api(ems, "GET", "/health/details", admin)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded"
        assert body["tables"][table] is False
        assert requests.get(f"{ems.rest_url}/health", timeout=10).status_code == 200  # still alive
    finally:
        dynamodb.create_table(
            TableName=table,
            KeySchema=description["KeySchema"],
            AttributeDefinitions=description["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
    assert api(ems, "GET", "/health/details", admin).status_code == 200
