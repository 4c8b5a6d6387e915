"""The simulator: pure generation (pattern, CSV, register differences), the sender against fakes,
and `python -m simulator` as a subprocess against a moto server.

Given a moto server (one for the module) with the queue `ems-simtest-readings`, emptied before
each test, a run must leave exactly the expected reading messages in it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto.server import ThreadedMotoServer

from simulator.cli import build_meters
from simulator.cli import main as simulator_main
from simulator.clock import Stopper, floor_to_interval, parse_duration
from simulator.config import ConfigError, build_config, read_config_file
from simulator.csv_source import CsvFormatError, CsvMeter, CsvRow, parse_rows, read_rows, rows_for_device
from simulator.cumulative import RegisterMeter, register_differences
from simulator.messages import Reading, format_timestamp, parse_timestamp
from simulator.patterns import DAILY_PATTERN, SyntheticMeter, hour_multiplier
from simulator.sender import Retrier, Sender, SenderError

PROJECT_DIR = Path(__file__).resolve().parents[2]
SAMPLE_CSV = PROJECT_DIR / "simulator" / "samples" / "sample.csv"
DEMO_JSON = PROJECT_DIR / "simulator" / "demo.json"
REGION = "us-east-1"
QUEUE = "ems-simtest-readings"
UTC = dt.UTC
JAN_1 = dt.datetime(2026, 1, 1, tzinfo=UTC)


def at(text: str) -> dt.datetime:
    return parse_timestamp(text)


# --- the daily pattern --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "multiplier"),
    [(range(6), 0.5), (range(6, 9), 1.2), (range(9, 17), 0.8), (range(17, 22), 1.5), (range(22, 24), 0.7)],
)
def test_each_local_hour_has_its_multiplier(hours: range, multiplier: float) -> None:
    for hour in hours:
        assert hour_multiplier(hour) == multiplier


def test_the_pattern_covers_every_hour_once() -> None:
    covered = [hour for first, last, _ in DAILY_PATTERN for hour in range(first, last + 1)]
    assert covered == list(range(24))
    with pytest.raises(ValueError):
        hour_multiplier(24)


def test_without_noise_a_meter_uses_base_load_times_the_local_hour_multiplier() -> None:
    # Given a meter in Bucharest (UTC+2 in winter) and no noise
    meter = SyntheticMeter("m", 0.2, seed="s", noise=0.0, timezone="Europe/Bucharest")
    # Then 16:00 UTC is 18:00 local (evening), 04:00 UTC is 06:00 local (morning)
    assert meter.kwh_at(at("2026-01-05T16:00:00Z")) == pytest.approx(0.3)
    assert meter.kwh_at(at("2026-01-05T04:00:00Z")) == pytest.approx(0.24)
    assert meter.kwh_at(at("2026-01-05T02:50:00Z")) == pytest.approx(0.1)


def test_noise_never_makes_a_value_negative() -> None:
    meter = SyntheticMeter("m", 0.1, seed="wild", noise=2.0)
    values = [meter.kwh_at(JAN_1 + dt.timedelta(minutes=10 * i)) for i in range(2000)]
    assert min(v for v in values if v is not None) == 0.0  # the floor is reached, never crossed
    assert all(v is not None and v >= 0 for v in values)


def test_a_seed_reproduces_the_values_in_any_order() -> None:
    moments = [JAN_1 + dt.timedelta(minutes=10 * i) for i in range(50)]
    first = [SyntheticMeter("m", 0.1, seed="7").kwh_at(m) for m in moments]
    backwards = [SyntheticMeter("m", 0.1, seed="7").kwh_at(m) for m in reversed(moments)]
    assert first == list(reversed(backwards))
    assert first != [SyntheticMeter("m", 0.1, seed="8").kwh_at(m) for m in moments]
    assert first != [SyntheticMeter("other", 0.1, seed="7").kwh_at(m) for m in moments]


def test_the_demo_evening_crosses_the_demo_limits_sometimes_not_always() -> None:
    # The numbers documented in simulator/README.md, against the limits the backend seeds.
    raw = read_config_file(DEMO_JSON)
    config = build_config(raw, seed="demo")
    limits = {"demo-meter-1": 1.6, "demo-meter-2": 2.2, "demo-meter-3": 1.2}
    assert [d.id for d in config.devices] == list(limits)
    for device in config.devices:
        meter = SyntheticMeter(device.id, config.device_value(device, "base_load_kwh"), "demo", config.noise,
                               config.timezone)
        evenings = crossed = 0
        for day in range(30):
            for utc_hour in range(15, 20):  # 17-21 h in Bucharest in January
                start = JAN_1 + dt.timedelta(days=day, hours=utc_hour)
                total = sum(meter.kwh_at(start + dt.timedelta(minutes=10 * i)) or 0 for i in range(6))
                evenings += 1
                crossed += total > limits[device.id]
        assert 0.03 < crossed / evenings < 0.4, device.id


# --- messages, durations --------------------------------------------------------------------


def test_a_reading_message_has_the_contract_format() -> None:
    body = json.loads(Reading(at("2026-11-23T20:10:00+02:00"), "d1", 0.12345678).to_message())
    assert body == {"timestamp": "2026-11-23T18:10:00Z", "device_id": "d1", "measurement_value": 0.123457}


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("10m", 600), ("6h", 21600), ("2d", 172800), ("1d12h", 129600)]
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "6", "h", "6x", "0h", "-1h", "1h 2"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_moments_floor_to_the_interval_grid() -> None:
    assert floor_to_interval(at("2026-01-01T10:27:31Z"), dt.timedelta(minutes=10)) == at("2026-01-01T10:20:00Z")


# --- CSV ------------------------------------------------------------------------------------


def test_csv_rows_parse_with_naive_offset_and_epoch_timestamps() -> None:
    text = "timestamp,device_id,value\n2026-01-01T00:00:00Z,a,0.5\n2026-01-01T02:10:00+02:00,b,1\n\n1767226200,a,0\n"
    assert parse_rows(text) == [
        CsvRow(at("2026-01-01T00:00:00Z"), "a", 0.5),
        CsvRow(at("2026-01-01T00:10:00Z"), "b", 1.0),
        CsvRow(at("2026-01-01T00:10:00Z"), "a", 0.0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,device,value\n", ":1: expected the header"),
        ("timestamp,device_id,value\n2026-01-01T00:00:00Z,a\n", ":2: expected 3 fields"),
        ("timestamp,device_id,value\nyesterday,a,1\n", ":2: timestamp 'yesterday' is not ISO-8601"),
        ("timestamp,device_id,value\n2026-01-01T00:00:00Z,a,lots\n", ":2: value 'lots' is not a number"),
        ("timestamp,device_id,value\n2026-01-01T00:00:00Z,a,1\n2026-01-01T00:10:00Z,a,-1\n", ":3: value '-1'"),
        ("timestamp,device_id,value\n2026-01-01T00:00:00Z,,1\n", ":2: empty device_id"),
    ],
)
def test_a_bad_csv_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(CsvFormatError, match=message):
        parse_rows(text, source="f.csv")


def test_the_sample_is_a_day_of_one_device() -> None:
    rows = read_rows(SAMPLE_CSV)
    assert len(rows) == 144 and {row.device_id for row in rows} == {"sample-meter"}
    assert rows[0].timestamp == at("2026-01-15T00:00:00Z") and rows[-1].timestamp == at("2026-01-15T23:50:00Z")


def test_a_csv_meter_answers_by_time_of_day_and_gaps_stay_gaps() -> None:
    rows = parse_rows("timestamp,device_id,value\n2026-01-15T20:10:00Z,x,0.4\n2026-01-15T20:30:00Z,x,0.6\n")
    meter = CsvMeter.from_rows("any", rows_for_device(rows, "any"))
    assert meter.kwh_at(at("2026-03-02T20:10:00Z")) == 0.4
    assert meter.kwh_at(at("2026-03-02T20:20:00Z")) is None


def test_a_csv_device_uses_its_own_rows_or_refuses_an_ambiguous_file() -> None:
    rows = parse_rows("timestamp,device_id,value\n2026-01-15T00:00:00Z,x,1\n2026-01-15T00:00:00Z,y,2\n")
    assert [row.value for row in rows_for_device(rows, "y")] == [2.0]
    with pytest.raises(CsvFormatError, match="no rows for device 'z'"):
        rows_for_device(rows, "z")


# --- cumulative registers -------------------------------------------------------------------


def rows(*items: tuple[str, str, float]) -> list[CsvRow]:
    return [CsvRow(at(moment), device, value) for moment, device, value in items]


def test_register_readings_become_differences_stamped_at_the_interval_start() -> None:
    given = rows(("2026-01-01T00:00:00Z", "a", 100.0), ("2026-01-01T00:10:00Z", "a", 100.5),
                 ("2026-01-01T00:20:00Z", "a", 101.25))
    assert register_differences(given) == rows(("2026-01-01T00:00:00Z", "a", 0.5), ("2026-01-01T00:10:00Z", "a", 0.75))


def test_a_register_reset_counts_the_new_value_and_nothing_is_negative() -> None:
    # Given a register that drops from 250.0 to 0.3 (reset) and then grows again
    given = rows(("2026-01-01T00:00:00Z", "a", 249.5), ("2026-01-01T00:10:00Z", "a", 250.0),
                 ("2026-01-01T00:20:00Z", "a", 0.3), ("2026-01-01T00:30:00Z", "a", 0.9))
    differences = register_differences(given)
    assert [round(row.value, 6) for row in differences] == [0.5, 0.3, 0.6]
    assert all(row.value >= 0 for row in differences)


def test_differences_are_per_device_in_time_order_and_a_repeated_reading_counts_once() -> None:
    given = rows(("2026-01-01T00:10:00Z", "a", 12.0), ("2026-01-01T00:00:00Z", "b", 5.0),
                 ("2026-01-01T00:00:00Z", "a", 10.0), ("2026-01-01T00:10:00Z", "a", 99.0),
                 ("2026-01-01T00:10:00Z", "b", 6.0))
    assert register_differences(given) == rows(("2026-01-01T00:00:00Z", "a", 2.0), ("2026-01-01T00:00:00Z", "b", 1.0))
    assert register_differences(rows(("2026-01-01T00:00:00Z", "a", 3.0))) == []


def test_a_register_meter_sends_its_running_register_whose_differences_are_the_use() -> None:
    # Given a synthetic meter, and the same meter sending its register from 48,000 kWh
    interval = dt.timedelta(minutes=10)
    inner = SyntheticMeter("r1", 0.2, "seed", 0.25)
    meter = RegisterMeter(inner, 48_000.0, interval)
    moments = [JAN_1 + i * interval for i in range(30)]
    # When a day's intervals are asked in order
    registers = [meter.kwh_at(m) for m in moments]
    # Then the first is the starting register, and each difference is the use of the interval before
    assert registers[0] == 48_000.0
    differences = [round(b - a, 6) for a, b in itertools.pairwise(registers)]  # type: ignore[operator]
    assert differences == [round(inner.kwh_at(m), 6) for m in moments[:-1]]  # type: ignore[arg-type]
    assert meter.kwh_at(moments[3]) == registers[3]  # asked again: the same register
    with pytest.raises(ValueError):
        meter.kwh_at(moments[0] - interval)


def test_registers_flag_turns_a_cumulative_csv_back_into_its_registers(tmp_path: Path) -> None:
    # Given a CSV of registers of one day and the --registers device flag with --cumulative
    path = tmp_path / "registers.csv"
    path.write_text("timestamp,device_id,value\n2026-01-01T00:00:00Z,reg,1200.0\n2026-01-01T00:10:00Z,reg,1200.5\n"
                    "2026-01-01T00:20:00Z,reg,1201.25\n")
    config = build_config({"devices": [{"id": "reg"}]}, source="csv", csv=path, cumulative=True, registers=True)
    meter = build_meters(config, "seed")[0]
    # Then the meter sends the file's registers (its last reading has no next one, so no use after it)
    assert [meter.kwh_at(JAN_1 + dt.timedelta(minutes=m)) for m in (0, 10, 20)] == [1200.0, 1200.5, 1201.25]


# --- settings -------------------------------------------------------------------------------


def test_flags_win_over_the_file_and_every_device() -> None:
    raw = {"base_load_kwh": 0.1, "stage": "x", "devices": [{"id": "a", "base_load_kwh": 0.5, "seed": 3}, {"id": "b"}]}
    config = build_config(raw, device_ids=["b", "c"], base_load_kwh=0.2, seed="9", stage="simtest")
    assert [device.id for device in config.devices] == ["b", "c"]
    assert {config.device_value(device, "base_load_kwh") for device in config.devices} == {0.2}
    assert config.resolved_queue_name() == "ems-simtest-readings"
    assert build_config(raw, queue_name="q").resolved_queue_name() == "q"


@pytest.mark.parametrize(
    "raw",
    [{}, {"devices": [{"id": "bad id!"}]}, {"devices": [{"id": "a"}], "speed": 0},
     {"devices": [{"id": "a"}], "timezone": "Mars/Olympus"}, {"devices": [{"id": "a"}], "colour": "red"},
     {"devices": [{"id": "a"}, {"id": "a"}]}],
)
def test_invalid_settings_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        build_config(raw)


# --- the sender against a fake SQS ------------------------------------------------------------


class FakeSqs:
    """Answers send_message_batch from a script of outcomes, then accepts everything."""

    def __init__(self, script: list[Any] | None = None, depths: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.depths = list(depths or [])
        self.bodies: list[str] = []
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        outcome = self.script.pop(0) if self.script else "ok"
        if isinstance(outcome, Exception):
            raise outcome
        failing = set(outcome) if isinstance(outcome, list) else set()
        self.bodies.extend(entry["MessageBody"] for entry in Entries if entry["Id"] not in failing)
        return {
            "Successful": [{"Id": entry["Id"]} for entry in Entries if entry["Id"] not in failing],
            "Failed": [{"Id": key, "SenderFault": False, "Code": "InternalError"} for key in failing],
        }

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        depth = self.depths.pop(0) if self.depths else 0
        return {"Attributes": {"ApproximateNumberOfMessages": str(depth)}}


def make_sender(sqs: FakeSqs, **options: Any) -> tuple[Sender, list[float], list[str]]:
    slept: list[float] = []
    notes: list[str] = []
    retrier = Retrier(Stopper(sleep=slept.append), notes.append)
    return Sender(sqs, "url", retrier, **options), slept, notes


def readings(count: int) -> list[Reading]:
    return [Reading(JAN_1 + dt.timedelta(minutes=10 * i), "d", 0.1) for i in range(count)]


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendMessageBatch")


def test_readings_go_out_ten_per_batch() -> None:
    sqs = FakeSqs()
    sender, _, _ = make_sender(sqs)
    for reading in readings(23):
        sender.add(reading)
    assert sqs.calls == 2 and sender.pending == 3
    sender.flush()
    assert sqs.calls == 3 and len(sqs.bodies) == 23 and sender.stats.sent == 23


def test_an_unreachable_or_throttling_endpoint_is_retried_with_growing_waits_and_nothing_is_lost() -> None:
    sqs = FakeSqs([EndpointConnectionError(endpoint_url="http://x"), EndpointConnectionError(endpoint_url="http://x"),
                   throttled()])
    sender, slept, notes = make_sender(sqs)
    for reading in readings(10):
        sender.add(reading)
    assert len(sqs.bodies) == 10 and sender.stats.sent == 10 and sender.stats.failed == 0
    assert sum(slept) == pytest.approx(0.25 + 0.5 + 1.0)
    assert len(notes) == 4 and "answered again" in notes[-1]


def test_failed_entries_of_a_batch_are_resent_alone() -> None:
    sqs = FakeSqs([["3", "7"]])
    sender, _, _ = make_sender(sqs)
    for reading in readings(10):
        sender.add(reading)
    assert sqs.calls == 2 and len(sqs.bodies) == 10 and len(set(sqs.bodies)) == 10
    assert sender.stats.sent == 10


def test_entries_failing_every_time_are_counted_as_failed() -> None:
    sqs = FakeSqs([["1"]] * 5)
    sender, _, notes = make_sender(sqs, max_entry_attempts=5)
    for reading in readings(10):
        sender.add(reading)
    assert sender.stats.sent == 9 and sender.stats.failed == 1 and "gave up on 1" in notes[-1]


def test_a_missing_queue_stops_sending_with_a_clear_error() -> None:
    missing = ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "no"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendMessageBatch")
    sender, _, _ = make_sender(FakeSqs([missing]))
    with pytest.raises(SenderError, match="queue does not exist"):
        for reading in readings(10):
            sender.add(reading)
    assert sender.stats.failed == 10


def test_a_deep_queue_makes_the_sender_wait() -> None:
    sqs = FakeSqs(depths=[1500, 1200, 900])
    sender, slept, _ = make_sender(sqs, max_queue_depth=1000, depth_poll_s=0.5)
    for reading in readings(10):
        sender.add(reading)
    assert sum(slept) == pytest.approx(1.0) and sender.stats.sent == 10


# --- python -m simulator against a moto server ----------------------------------------------------


@pytest.fixture
def sqs(endpoint: str) -> Any:
    """The SQS client of the endpoint, with an empty `ems-simtest-readings`."""
    client = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id="test", aws_secret_access_key="test")
    existing = client.list_queues(QueueNamePrefix=QUEUE).get("QueueUrls", [])
    for url in existing:
        client.delete_queue(QueueUrl=url)  # moto allows one purge a minute; a new queue is empty
    client.create_queue(QueueName=QUEUE)
    return client


def drain_messages(sqs: Any) -> list[dict[str, Any]]:
    """Every message body in the readings queue (they are consumed)."""
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(json.loads(message["Body"]) for message in messages)


def drain(sqs: Any) -> list[dict[str, Any]]:
    """Every reading in the readings queue, whether sent alone or in batch messages (they are consumed)."""
    return [reading for body in drain_messages(sqs) for reading in body.get("readings", [body])]


def queue_depth(sqs: Any) -> int:
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def simulator_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EMS_"))}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION,
               PYTHONUNBUFFERED="1")
    return env


def simulate(endpoint: str, *args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", "--endpoint-url", endpoint, "--stage", "simtest", *args],
        cwd=PROJECT_DIR, env=simulator_env(), capture_output=True, text=True, timeout=timeout_s, check=False,
    )


def start_simulator(endpoint: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simulator", "--endpoint-url", endpoint, "--stage", "simtest", *args],
        cwd=PROJECT_DIR, env=simulator_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_line(stream: Any, needle: str, timeout_s: float) -> list[str]:
    """Lines of `stream` up to the first containing `needle`; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.1)
        if ready:
            line = stream.readline()
            if not line:
                break
            lines.append(line)
            if needle in line:
                return lines
    raise AssertionError(f"no line with {needle!r} within {timeout_s} s; got {lines}")


def assert_reading_format(body: dict[str, Any]) -> None:
    assert set(body) == {"timestamp", "device_id", "measurement_value"}
    assert body["timestamp"].endswith("Z") and parse_timestamp(body["timestamp"]).second == 0
    assert isinstance(body["measurement_value"], float) and body["measurement_value"] >= 0


def test_an_hour_in_real_time_sends_every_interval_of_every_device(sqs: Any, endpoint: str) -> None:
    # When an hour of two devices runs at 3600x
    result = simulate(endpoint, "--device", "d1", "--device", "d2", "--start", "2026-01-01T00:00:00Z",
                      "--duration", "1h", "--speed", "3600", "--seed", "1")
    # Then it ends on its own with a summary, and the queue holds exactly 2 x 6 readings
    assert result.returncode == 0, result.stderr
    assert "summary: sent 12, failed 0" in result.stdout
    bodies = drain(sqs)
    assert len(bodies) == 12
    for body in bodies:
        assert_reading_format(body)
    expected = {
        (format_timestamp(JAN_1 + dt.timedelta(minutes=10 * i)), device) for i in range(6) for device in ("d1", "d2")
    }
    assert {(body["timestamp"], body["device_id"]) for body in bodies} == expected
    # And the values are those of the seed, whatever process computes them
    for body in bodies:
        meter = SyntheticMeter(body["device_id"], 0.1, seed="1")
        assert body["measurement_value"] == round(meter.kwh_at(at(body["timestamp"])) or 0, 6)


def test_readings_due_together_share_one_batch_message_unless_one_per_message_is_asked(
        sqs: Any, endpoint: str) -> None:
    # When a backfill of 3 devices x 4 hours is sent with the defaults
    args = ("--device", "d1", "--device", "d2", "--device", "d3", "--start", "2026-01-01T00:00:00Z",
            "--duration", "4h", "--interval-minutes", "60", "--speed", "1000000")
    assert simulate(endpoint, *args, "--max-queue-depth", "0").returncode == 0
    # Then they travel as batch messages of many readings each
    messages = drain_messages(sqs)
    assert all(set(body) == {"readings"} for body in messages) and len(messages) < 12
    readings = [reading for body in messages for reading in body["readings"]]
    assert len(readings) == 12 and all(assert_reading_format(r) is None for r in readings)
    # And with --per-message 1, each reading is a message of its own in the original format
    assert simulate(endpoint, *args, "--per-message", "1").returncode == 0
    singles = drain_messages(sqs)
    assert len(singles) == 12 and all(set(body) == {"timestamp", "device_id", "measurement_value"} for body in singles)


def test_a_backfill_sends_the_past_days_up_to_now(sqs: Any, endpoint: str) -> None:
    before = dt.datetime.now(UTC)
    result = simulate(endpoint, "--device", "d1", "--backfill", "1", "--backfill-only", "--interval-minutes", "60",
                      "--max-queue-depth", "5")
    after = dt.datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    assert "summary: sent 24, failed 0" in result.stdout
    stamps = sorted(at(body["timestamp"]) for body in drain(sqs))
    assert len(stamps) == 24 and len(set(stamps)) == 24
    assert stamps[-1] + dt.timedelta(hours=1) <= after and stamps[0] >= before - dt.timedelta(days=1, hours=1)


def test_a_csv_replay_of_its_own_day_sends_the_sample_rows(sqs: Any, endpoint: str) -> None:
    result = simulate(endpoint, "--device", "sample-meter", "--csv", str(SAMPLE_CSV),
                      "--start", "2026-01-15T00:00:00Z", "--duration", "1d", "--speed", "864000")
    assert result.returncode == 0, result.stderr
    sent = {(body["timestamp"], body["device_id"], body["measurement_value"]) for body in drain(sqs)}
    assert sent == {(format_timestamp(row.timestamp), row.device_id, row.value) for row in read_rows(SAMPLE_CSV)}


def test_a_cumulative_replay_sends_differences_never_negative(sqs: Any, endpoint: str, tmp_path: Path) -> None:
    # Given a register that is reset to zero at 00:30
    registers = tmp_path / "registers.csv"
    registers.write_text("timestamp,device_id,value\n2026-02-01T00:00:00Z,m,500.0\n2026-02-01T00:10:00Z,m,500.4\n"
                         "2026-02-01T00:20:00Z,m,501.0\n2026-02-01T00:30:00Z,m,0.2\n2026-02-01T00:40:00Z,m,0.5\n")
    result = simulate(endpoint, "--device", "m", "--csv", str(registers), "--cumulative",
                      "--start", "2026-02-01T00:00:00Z", "--duration", "1h", "--speed", "36000")
    assert result.returncode == 0, result.stderr
    values = {body["timestamp"]: body["measurement_value"] for body in drain(sqs)}
    assert values == {"2026-02-01T00:00:00Z": 0.4, "2026-02-01T00:10:00Z": 0.6, "2026-02-01T00:20:00Z": 0.2,
                      "2026-02-01T00:30:00Z": 0.3}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_endpoint_down_at_start_is_waited_for_and_then_gets_everything(sqs: Any) -> None:
    # Given no endpoint listening yet (moto servers of one process share their state, so the
    # queue created on the module's server is there once this one starts)
    port = free_port()
    process = start_simulator(f"http://127.0.0.1:{port}", "--device", "d1", "--device", "d2",
                              "--start", "2026-01-01T00:00:00Z", "--duration", "1h", "--speed", "3600")
    late = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        # When the simulator has retried at least twice, the endpoint comes up
        lines = wait_for_line(process.stderr, "retry 2", timeout_s=15)
        assert "retry 1" in "".join(lines)
        late.start()
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        late.stop()
    # Then every reading was delivered
    assert process.returncode == 0, stderr
    assert "answered again" in stderr and "summary: sent 12, failed 0" in stdout
    assert len(drain(sqs)) == 12


def test_ctrl_c_stops_cleanly_with_a_summary(sqs: Any, endpoint: str) -> None:
    # Given a backfill that went on in real time (nothing due for the next hour)
    process = start_simulator(endpoint, "--device", "d1", "--device", "d2", "--backfill", "1",
                              "--interval-minutes", "60")
    try:
        wait_for_line(process.stderr, "caught up", timeout_s=20)
        # When Ctrl-C arrives
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    # Then it exits 0 with a summary of what it sent, which is all in the queue
    assert process.returncode == 0, stderr
    assert "summary: sent 48, failed 0" in stdout and "stopped on request" in stdout
    assert "Traceback" not in stderr
    assert len(drain(sqs)) == 48


@pytest.mark.parametrize(
    "args",
    [["--speed", "0"], ["--duration", "6"], ["--start", "soon"], ["--backfill", "1", "--start", "2026-01-01"],
     ["--backfill-only"], ["--device", "bad id!"], ["--csv", "/nonexistent.csv"], ["--interval-minutes", "0"]],
)
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        simulator_main(["--device", "d1", *args, "--count", "1", "--endpoint-url", "http://127.0.0.1:9"])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_missing_queue_exits_1_with_a_message(endpoint: str) -> None:
    result = simulate(endpoint, "--device", "d1", "--queue-name", "ems-simtest-nothing", "--count", "1", timeout_s=10)
    assert result.returncode == 1 and "queue does not exist" in result.stderr
    assert "Traceback" not in result.stderr
