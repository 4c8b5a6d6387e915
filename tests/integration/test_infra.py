"""The template, its bootstrap onto an endpoint, the packaged app and the post-deploy step.

Given a moto server (one for the module; each test uses its own stage), `apply_stack` must
leave every table, queue, topic and subscription the app relies on, idempotently.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from chalicelib import names
from infra import TEMPLATE_PATH, load_template
from infra.__main__ import main
from infra.bootstrap import BootstrapError, StackResult, apply_stack
from infra.deploy import ConfigureError, configure
from infra.package import (
    PackageError,
    dump_template,
    lint_template,
    merge_templates,
    package,
)

# moto's CloudFormation warns for each resource type it skips (alarms, queue policies,
# subscriptions); that is expected here, and the bootstrap makes up for the subscriptions.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse .* not supported by moto:UserWarning")

PROJECT_DIR = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

# Indexes read for their keys only (all others hold whole items).
KEYS_ONLY_INDEXES = {("alert-inbox", "by_device"): "KEYS_ONLY", ("hourly-totals", "silent_due"): "KEYS_ONLY",
                     **{("meters", index): "INCLUDE" for index in ("by_name", "never_reported", "silent", "over_limit")}}

# What the app's repositories expect of each table: (key schema, global secondary indexes).
EXPECTED_TABLES: dict[str, tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]]]] = {
    "users": ([("id", "HASH")], {"by_username": [("listing", "HASH"), ("username_key", "RANGE")]}),
    "usernames": ([("username_key", "HASH")], {}),
    "login-attempts": ([("username_key", "HASH")], {}),
    "devices": ([("id", "HASH")], {"by_name": [("listing", "HASH"), ("name_key", "RANGE")]}),
    "device-owners": (
        [("device_id", "HASH"), ("user_id", "RANGE")],
        {"by_user": [("user_id", "HASH"), ("device_id", "RANGE")]},
    ),
    "device-serials": ([("serial", "HASH")], {}),
    "api-keys": (
        [("key_id", "HASH")],
        {"by_device": [("device_id", "HASH"), ("key_id", "RANGE")]},
    ),
    "meters": ([("device_id", "HASH")], {
        "by_name": [("listing", "HASH"), ("name_key", "RANGE")],
        "never_reported": [("never", "HASH"), ("name_key", "RANGE")],
        "silent": [("silenced", "HASH"), ("name_key", "RANGE")],
        "over_limit": [("over_hour", "HASH"), ("name_key", "RANGE")],
    }),
    "hourly-totals": ([("device_id", "HASH"), ("hour_start", "RANGE")],
                      {"silent_due": [("silent_shard", "HASH"), ("silent_at", "RANGE")]}),
    "alerts": ([("id", "HASH")], {"by_device": [("device_id", "HASH"), ("hour_start", "RANGE")]}),
    "alert-inbox": ([("user_id", "HASH"), ("alert_id", "RANGE")], {
        "by_time": [("user_id", "HASH"), ("at", "RANGE")],
        "pending": [("user_id", "HASH"), ("pending_at", "RANGE")],
        "by_device": [("device_id", "HASH"), ("at", "RANGE")],
    }),
    "outbox": ([("topic", "HASH"), ("key", "RANGE")], {}),
    "connections": ([("connection_id", "HASH")], {}),
    "presence": ([("user_id", "HASH")], {}),
    "conversations": (
        [("id", "HASH")],
        {
            "by_client": [("client_id", "HASH"), ("updated_at", "RANGE")],
            "by_status": [("status", "HASH"), ("updated_at", "RANGE")],
        },
    ),
    "chat-messages": ([("conversation_id", "HASH"), ("message_id", "RANGE")], {}),
}
EXPECTED_TTL = {"login-attempts": "expires_at", "connections": "expires_at"}
EXPECTED_SUBSCRIPTIONS = {
    ("devices-events", "monitoring-sync"),
    ("identity-events", "devices-sync"),
    ("identity-events", "realtime-sync"),
}


def unique_stage(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws(endpoint: str) -> Any:
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )

    class Clients:
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        sqs = session.client("sqs", endpoint_url=endpoint)
        sns = session.client("sns", endpoint_url=endpoint)
        awslambda = session.client("lambda", endpoint_url=endpoint)
        iam = session.client("iam", endpoint_url=endpoint)

    return Clients


@pytest.fixture(scope="module")
def applied(endpoint: str) -> tuple[str, StackResult]:
    """One stage applied with short queue settings, shared by the read-only tests."""
    stage = unique_stage("apply")
    result = apply_stack(
        stage=stage,
        endpoint_url=endpoint,
        region=REGION,
        parameters={"VisibilityTimeoutSeconds": "7", "MaxReceiveCount": "3"},
        log=lambda line: None,
    )
    return stage, result


def queue_attributes(aws: Any, url: str) -> dict[str, str]:
    attributes: dict[str, str] = aws.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["All"]
    )["Attributes"]
    return attributes


def subscriptions(aws: Any, stage: str) -> list[dict[str, Any]]:
    prefix = f":ems-{stage}-"
    return [
        s for s in aws.sns.list_subscriptions()["Subscriptions"] if prefix in s["TopicArn"]
    ]


# --- the template ------------------------------------------------------------------------


def test_template_declares_exactly_the_registered_tables_queues_and_topics() -> None:
    resources = load_template()["Resources"].values()

    def declared(resource_type: str, name_property: str) -> set[str]:
        return {
            r["Properties"][name_property]["Fn::Sub"].removeprefix("ems-${Stage}-")
            for r in resources
            if r["Type"] == resource_type
        }

    assert declared("AWS::DynamoDB::Table", "TableName") == set(names.TABLES)
    assert declared("AWS::SQS::Queue", "QueueName") == set(names.QUEUES) | {
        names.dead_letter_queue(q) for q in names.QUEUES
    }
    assert declared("AWS::SNS::Topic", "TopicName") == set(names.TOPICS)


def test_template_passes_cfn_lint() -> None:
    assert lint_template(TEMPLATE_PATH, log=lambda line: None) == []


def test_template_alarms_on_every_dead_letter_queue() -> None:
    resources = load_template()["Resources"]
    alarmed = {
        r["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    dead_letter_queues = {
        logical_id
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::SQS::Queue" and r["Properties"]["QueueName"]["Fn::Sub"].endswith("-dlq")
    }
    assert alarmed == dead_letter_queues


# --- apply_stack -------------------------------------------------------------------------


def test_apply_creates_every_table_with_its_keys_and_indexes(
    applied: tuple[str, StackResult], aws: Any
) -> None:
    stage, result = applied
    assert result.tables == {name: names.resource_name(name, stage) for name in names.TABLES}
    for name, (keys, indexes) in EXPECTED_TABLES.items():
        table = aws.dynamodb.describe_table(TableName=result.tables[name])["Table"]
        assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == keys, name
        actual_indexes = {
            index["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]]
            for index in table.get("GlobalSecondaryIndexes", [])
        }
        assert actual_indexes == indexes, name
        assert all(
            index["Projection"]["ProjectionType"] == KEYS_ONLY_INDEXES.get((name, index["IndexName"]), "ALL")
            for index in table.get("GlobalSecondaryIndexes", [])
        ), name
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST", name


def test_apply_enables_ttl_where_the_template_declares_it(
    applied: tuple[str, StackResult], aws: Any
) -> None:
    _, result = applied
    for name, table in result.tables.items():
        ttl = aws.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if name in EXPECTED_TTL:
            assert ttl["TimeToLiveStatus"] == "ENABLED", name
            assert ttl["AttributeName"] == EXPECTED_TTL[name], name
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED", name


def test_apply_creates_every_queue_with_a_dead_letter_queue_and_the_given_redrive(
    applied: tuple[str, StackResult], aws: Any
) -> None:
    stage, result = applied
    expected = set(names.QUEUES) | {names.dead_letter_queue(q) for q in names.QUEUES}
    assert set(result.queues) == expected
    for queue in names.QUEUES:
        dlq = queue_attributes(aws, result.queues[names.dead_letter_queue(queue)])
        main_queue = queue_attributes(aws, result.queues[queue])
        assert main_queue["QueueArn"].endswith(f":{names.resource_name(queue, stage)}")
        assert dlq["MessageRetentionPeriod"] == "1209600"
        assert main_queue["VisibilityTimeout"] == "7"
        assert json.loads(main_queue["RedrivePolicy"]) == {
            "deadLetterTargetArn": dlq["QueueArn"],
            "maxReceiveCount": 3,
        }


def test_apply_creates_the_topics_and_subscribes_sync_queues_with_raw_delivery(
    applied: tuple[str, StackResult], aws: Any
) -> None:
    stage, result = applied
    assert set(result.topics) == set(names.TOPICS)
    found = set()
    for subscription in subscriptions(aws, stage):
        topic = subscription["TopicArn"].rsplit(":", 1)[-1].removeprefix(f"ems-{stage}-")
        queue = subscription["Endpoint"].rsplit(":", 1)[-1].removeprefix(f"ems-{stage}-")
        assert subscription["Protocol"] == "sqs"
        attributes = aws.sns.get_subscription_attributes(
            SubscriptionArn=subscription["SubscriptionArn"]
        )["Attributes"]
        assert attributes["RawMessageDelivery"] == "true"
        found.add((topic, queue))
    assert found == EXPECTED_SUBSCRIPTIONS


def test_an_identity_event_arrives_raw_in_the_queues_subscribed_to_it(
    applied: tuple[str, StackResult], aws: Any
) -> None:
    _, result = applied
    event = json.dumps({"type": "user.deleted", "event_id": str(uuid.uuid4()), "data": {}})

    aws.sns.publish(TopicArn=result.topics["identity-events"], Message=event)

    for queue in ("devices-sync", "realtime-sync"):
        received = aws.sqs.receive_message(
            QueueUrl=result.queues[queue], MaxNumberOfMessages=10, WaitTimeSeconds=2
        ).get("Messages", [])
        assert [m["Body"] for m in received] == [event], queue
    stray = aws.sqs.receive_message(QueueUrl=result.queues["monitoring-sync"]).get("Messages", [])
    assert stray == []


def test_applying_again_skips_the_stack_keeps_the_data_and_adds_no_subscription(
    endpoint: str, aws: Any
) -> None:
    stage = unique_stage("again")
    parameters = {"VisibilityTimeoutSeconds": "5"}
    first = apply_stack(
        stage=stage, endpoint_url=endpoint, region=REGION, parameters=parameters, log=lambda _: None
    )
    aws.dynamodb.put_item(TableName=first.tables["users"], Item={"id": {"S": "u-1"}})
    lines: list[str] = []

    second = apply_stack(
        stage=stage, endpoint_url=endpoint, region=REGION, parameters=parameters, log=lines.append
    )

    assert second == first
    assert lines == [f"stack ems-{stage}: up to date"]  # no stack update, nothing re-applied
    item = aws.dynamodb.get_item(TableName=first.tables["users"], Key={"id": {"S": "u-1"}})
    assert item.get("Item") == {"id": {"S": "u-1"}}
    assert len(subscriptions(aws, stage)) == len(EXPECTED_SUBSCRIPTIONS)


def test_applying_other_parameters_updates_the_queues_and_keeps_the_data(
    endpoint: str, aws: Any
) -> None:
    stage = unique_stage("param")
    first = apply_stack(
        stage=stage,
        endpoint_url=endpoint,
        region=REGION,
        parameters={"VisibilityTimeoutSeconds": "5", "MaxReceiveCount": "2"},
        log=lambda _: None,
    )
    aws.dynamodb.put_item(TableName=first.tables["devices"], Item={"id": {"S": "d-1"}})

    apply_stack(
        stage=stage,
        endpoint_url=endpoint,
        region=REGION,
        parameters={"VisibilityTimeoutSeconds": "9", "MaxReceiveCount": "4"},
        log=lambda _: None,
    )

    attributes = queue_attributes(aws, first.queues["readings"])
    assert attributes["VisibilityTimeout"] == "9"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 4
    item = aws.dynamodb.get_item(TableName=first.tables["devices"], Key={"id": {"S": "d-1"}})
    assert "Item" in item


def test_apply_refuses_tables_that_no_longer_match_the_template(
    endpoint: str, tmp_path: Path
) -> None:
    stage = unique_stage("drift")
    older = TEMPLATE_PATH.read_text().replace("IndexName: by_device", "IndexName: by_owner", 1)
    assert older != TEMPLATE_PATH.read_text()
    (tmp_path / "older.yaml").write_text(older)
    apply_stack(
        stage=stage,
        endpoint_url=endpoint,
        region=REGION,
        template_path=tmp_path / "older.yaml",
        log=lambda _: None,
    )

    with pytest.raises(BootstrapError, match="lacks index by_device"):
        apply_stack(stage=stage, endpoint_url=endpoint, region=REGION, log=lambda _: None)


def test_apply_reports_the_endpoints_reason_when_the_stack_cannot_be_created(
    endpoint: str, aws: Any
) -> None:
    stage = unique_stage("taken")
    aws.dynamodb.create_table(
        TableName=names.resource_name("users", stage),
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    with pytest.raises(BootstrapError, match="already exists"):
        apply_stack(stage=stage, endpoint_url=endpoint, region=REGION, log=lambda _: None)


@pytest.mark.parametrize(
    ("stage", "parameters", "message"),
    [
        ("Bad_Stage", None, "Invalid stage"),
        ("ok", {"VisibilityTimeout": "5"}, "Unknown template parameter"),
    ],
)
def test_apply_rejects_bad_input_before_calling_the_endpoint(
    stage: str, parameters: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(BootstrapError, match=message):
        apply_stack(
            stage=stage,
            endpoint_url="http://127.0.0.1:9",
            region=REGION,
            parameters=parameters,
            log=lambda _: None,
        )


# --- the command line --------------------------------------------------------------------


def test_cli_apply_prints_the_names_it_created(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = unique_stage("cli")

    status = main(["apply", "--stage", stage, "--endpoint", endpoint, "--param", "MaxReceiveCount=2"])

    out = capsys.readouterr().out
    assert status == 0
    assert "  users" in out and names.resource_name("users", stage) in out
    assert f"/{names.resource_name('readings-dlq', stage)}" in out
    assert f":{names.resource_name('identity-events', stage)}" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["apply", "--stage", "Not A Stage"], "invalid stage"),
        (["apply", "--param", "MaxReceiveCount"], "expected Key=Value"),
        (["apply", "--param", "Nope=1"], "unknown parameter(s) Nope"),
        (["deploy"], "invalid choice"),
        ([], "required"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_failure_exits_1_with_a_message_and_no_traceback(endpoint: str, aws: Any) -> None:
    stage = unique_stage("fail")
    aws.dynamodb.create_table(
        TableName=names.resource_name("meters", stage),
        KeySchema=[{"AttributeName": "device_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "device_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    completed = subprocess.run(
        [sys.executable, "-m", "infra", "apply", "--stage", stage, "--endpoint", endpoint],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 1
    assert completed.stderr.startswith("error: ")
    assert "already exists" in completed.stderr
    assert "Traceback" not in completed.stderr


# --- package -----------------------------------------------------------------------------


def test_packaged_app_passes_lint_and_answers_gateway_errors_in_the_contract(
    tmp_path: Path,
) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "infra", "package", "--stage", "dev", "--template-only",
         "--out", str(tmp_path)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    template = yaml.safe_load((tmp_path / "sam.yaml").read_text())
    resources = template["Resources"]
    assert template["Parameters"]["Stage"]["Default"] == "dev"
    assert {names.resource_name(t, "dev") for t in names.TABLES} == {
        r["Properties"]["TableName"]["Fn::Sub"].replace("${Stage}", "dev")
        for r in resources.values()
        if r["Type"] == "AWS::DynamoDB::Table"
    }
    # Stage throttling on every route, from parameters
    assert resources["RestAPI"]["Properties"]["MethodSettings"] == [{
        "ResourcePath": "/*", "HttpMethod": "*",
        "ThrottlingRateLimit": {"Ref": "ApiRateLimit"}, "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"}}]
    assert template["Parameters"]["ApiRateLimit"]["Default"] == 500
    responses = resources["RestAPI"]["Properties"]["GatewayResponses"]
    assert set(responses) == {
        "DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN", "UNAUTHORIZED",
        "ACCESS_DENIED", "THROTTLED", "REQUEST_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
        "BAD_REQUEST_BODY", "INTEGRATION_TIMEOUT",
    }
    not_found = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert not_found["StatusCode"] == "404"
    assert json.loads(not_found["ResponseTemplates"]["application/json"])["error"]["code"] == "not_found"
    assert responses["REQUEST_TOO_LARGE"]["ResponseTemplates"]["application/json"] == (
        '{"error": {"code": "payload_too_large", "message": $context.error.messageString}}'
    )
    assert responses["THROTTLED"]["ResponseParameters"]["Headers"] == {
        "Access-Control-Allow-Origin": "'https://dev.ems.example.com'",
        "Retry-After": "'1'",
    }
    functions = [r for r in resources.values() if r["Type"] == "AWS::Serverless::Function"]
    assert functions
    for function in functions:
        assert function["Properties"]["Environment"]["Variables"]["EMS_WEBSOCKET_STAGE"] == "api"


def make_consumer_app(project_dir: Path) -> None:
    """A copy of the project whose app reads the readings queue and serves WebSockets."""
    (project_dir / ".chalice").mkdir(parents=True)
    for config in (PROJECT_DIR / ".chalice").glob("*.json"):
        (project_dir / ".chalice" / config.name).write_bytes(config.read_bytes())
    for source in (PROJECT_DIR / "chalicelib").rglob("*.py"):
        target = project_dir / source.relative_to(PROJECT_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    (project_dir / "requirements.txt").write_text("")
    (project_dir / "app.py").write_text(
        "from chalice import Chalice\n"
        "from chalicelib import names\n"
        "app = Chalice(app_name='ems')\n"
        "app.experimental_feature_flags.update(['WEBSOCKETS'])\n"
        "@app.route('/health')\n"
        "def health():\n"
        "    return {}\n"
        "@app.on_sqs_message(queue=names.resource_name('readings'), batch_size=10)\n"
        "def on_readings(event):\n"
        "    return None\n"
        "@app.on_sqs_message(queue_arn='arn:aws:sqs:us-east-1:123456789012:someone-elses')\n"
        "def on_foreign(event):\n"
        "    return None\n"
        "@app.on_ws_message()\n"
        "def on_message(event):\n"
        "    return None\n"
    )


def test_packaging_points_sqs_consumers_at_our_queues_and_reports_item_failures(
    tmp_path: Path,
) -> None:
    make_consumer_app(tmp_path / "project")

    path = package(
        stage="dev",
        out_dir=tmp_path / "out",
        project_dir=tmp_path / "project",
        with_dependencies=False,
        log=lambda _: None,
    )

    resources = yaml.safe_load(path.read_text())["Resources"]
    ours = resources["OnReadings"]["Properties"]["Events"]["OnReadingsSqsEventSource"]["Properties"]
    assert ours["Queue"] == {"Fn::GetAtt": ["ReadingsQueue", "Arn"]}
    assert ours["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    foreign = resources["OnForeign"]["Properties"]["Events"]["OnForeignSqsEventSource"]["Properties"]
    assert foreign["Queue"] == "arn:aws:sqs:us-east-1:123456789012:someone-elses"
    assert foreign["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for function in ("OnReadings", "OnForeign", "WebsocketMessage", "APIHandler"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables["EMS_WEBSOCKET_API_ID"] == {"Ref": "WebsocketAPI"}, function
        assert variables["EMS_WEBSOCKET_STAGE"] == "api", function


def test_merge_refuses_a_logical_id_in_both_templates() -> None:
    app = {"Resources": {"UsersTable": {"Type": "AWS::SNS::Topic"}}}

    with pytest.raises(PackageError, match="UsersTable"):
        merge_templates(app, load_template(), stage="dev")


def test_merged_template_with_a_bad_sqs_event_fails_lint(tmp_path: Path) -> None:
    app = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Consumer": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "./deployment.zip",
                    "Handler": "app.consumer",
                    "Runtime": "python3.11",
                    "Events": {
                        "Source": {
                            "Type": "SQS",
                            "Properties": {"Queue": "not-an-arn", "BatchSize": "many"},
                        }
                    },
                },
            }
        },
    }
    path = tmp_path / "sam.yaml"
    path.write_text(dump_template(merge_templates(app, load_template(), stage="dev")))

    assert lint_template(path, log=lambda _: None) != []


# --- configure (after chalice deploy) ----------------------------------------------------


def deploy_consumer(aws: Any, stage: str) -> tuple[str, str]:
    """A function reading a queue, as `chalice deploy` leaves it: (mapping UUID, function ARN)."""
    role = aws.iam.create_role(
        RoleName=f"{stage}-role", AssumeRolePolicyDocument=json.dumps({"Statement": []})
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    function_arn = aws.awslambda.create_function(
        FunctionName=f"ems-{stage}-on_readings",
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"EMS_STAGE": stage}},
    )["FunctionArn"]
    queue_url = aws.sqs.create_queue(QueueName=f"ems-{stage}-configure")["QueueUrl"]
    queue_arn = queue_attributes(aws, queue_url)["QueueArn"]
    uuid_ = aws.awslambda.create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName=function_arn, BatchSize=10
    )["UUID"]
    return uuid_, function_arn


def write_deployed_record(project_dir: Path, stage: str, resources: list[dict[str, Any]]) -> None:
    deployed = project_dir / ".chalice" / "deployed"
    deployed.mkdir(parents=True)
    (deployed / f"{stage}.json").write_text(
        json.dumps({"resources": resources, "schema_version": "2.0", "backend": "api"})
    )


def test_configure_reports_batch_item_failures_and_gives_consumers_the_websocket_api(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    stage = unique_stage("conf")
    mapping_uuid, function_arn = deploy_consumer(aws, stage)
    write_deployed_record(
        tmp_path,
        stage,
        [
            {"name": "on_readings", "resource_type": "lambda_function", "lambda_arn": function_arn},
            {
                "name": "on_readings-sqs-event-source",
                "resource_type": "sqs_event",
                "queue_arn": "arn:aws:sqs:us-east-1:123456789012:whatever",
                "event_uuid": mapping_uuid,
                "queue": f"ems-{stage}-configure",
                "lambda_arn": function_arn,
            },
            {"name": "websocket_api", "resource_type": "websocket_api", "websocket_api_id": "abc123"},
        ],
    )

    configure(stage=stage, region=REGION, endpoint_url=endpoint, project_dir=tmp_path, log=lambda _: None)

    mapping = aws.awslambda.get_event_source_mapping(UUID=mapping_uuid)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    variables = aws.awslambda.get_function_configuration(FunctionName=function_arn)["Environment"][
        "Variables"
    ]
    assert variables == {
        "EMS_STAGE": stage,
        "EMS_WEBSOCKET_API_ID": "abc123",
        "EMS_WEBSOCKET_STAGE": "api",
    }
    lines: list[str] = []
    configure(stage=stage, region=REGION, endpoint_url=endpoint, project_dir=tmp_path, log=lines.append)
    assert lines == []


def test_configure_without_a_deploy_says_to_deploy_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigureError, match="chalice deploy --stage dev"):
        configure(stage="dev", region=REGION, project_dir=tmp_path, log=lambda _: None)


def test_a_second_apply_gives_inbox_items_of_an_earlier_version_their_place_in_time(endpoint: str, aws: Any) -> None:
    # Given a stage whose inbox holds items written before the inbox was paged by time
    stage = unique_stage("inbox")
    result = apply_stack(stage=stage, endpoint_url=endpoint, region=REGION, log=lambda line: None)
    table = result.tables["alert-inbox"]
    alert = {"id": "m-1:2026-01-01T10:00:00Z", "kind": "over_consumption", "device_id": "m-1", "device_name": "M",
             "hour_start": "2026-01-01T10:00:00Z", "total_kwh": 2.0, "max_hourly_kwh": 1.0,
             "created_at": "2026-01-01T10:59:00+00:00"}
    body = {"S": json.dumps(alert)}
    key_of = {"alert_id": {"S": alert["id"]}}
    old = [
        {"user_id": {"S": "owner-1"}, **key_of, "alert": body, "pushed": {"BOOL": True}},
        {"user_id": {"S": "owner-2"}, **key_of, "alert": body, "acknowledged_at": {"S": "2026-01-02T00:00:00+00:00"}},
        {"user_id": {"S": "#admins"}, **key_of, "alert": body},
        {"user_id": {"S": "admin-1"}, **key_of, "acknowledged_at": {"S": "2026-01-02T00:00:00+00:00"}},
    ]
    for item in old:
        aws.dynamodb.put_item(TableName=table, Item=item)
    aws.dynamodb.delete_item(TableName=table, Key={"user_id": {"S": "#schema"}, "alert_id": {"S": "inbox-by-time"}})
    # When the stack is applied again (as every start of the runtime does)
    lines: list[str] = []
    apply_stack(stage=stage, endpoint_url=endpoint, region=REGION, log=lines.append)
    # Then each item has its place in time; only the owner's unacknowledged copy is pending; the admin's
    # acknowledgement holds a copy of the alert
    at = "2026-01-01T10:59:00+00:00#m-1:2026-01-01T10:00:00Z"
    items = {i["user_id"]["S"]: i for i in aws.dynamodb.scan(TableName=table)["Items"]}
    for user in ("owner-1", "owner-2", "#admins", "admin-1"):
        assert items[user]["at"] == {"S": at} and items[user]["device_id"] == {"S": "m-1"}, user
        assert ("pending_at" in items[user]) == (user == "owner-1"), user
    assert items["admin-1"]["alert"] == body
    assert "alert inbox: 4 items given their place in time" in lines
    # And a third apply changes nothing
    lines.clear()
    apply_stack(stage=stage, endpoint_url=endpoint, region=REGION, log=lines.append)
    assert not any("alert inbox" in line for line in lines)
