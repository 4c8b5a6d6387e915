"""Apply `template.yaml` to an AWS endpoint (moto, LocalStack or AWS), idempotently.

The stack `ems-{stage}` is created, or updated when the template or its parameters changed.
Then whatever an endpoint's CloudFormation may skip is applied through the service APIs,
on every endpoint alike (each step is a no-op where CloudFormation already did it):
TTL on tables, SNS→SQS subscriptions, and queue attributes (moto's stack update changes
only a queue's visibility timeout, never its redrive policy). Tables whose keys or indexes
differ from the template are reported, since moto's CloudFormation never updates a table.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from infra import TEMPLATE_PATH, InfraError, aws_session, failing_as, parse_template

__all__ = [
    "TEMPLATE_PATH",
    "BootstrapError",
    "StackResult",
    "apply_stack",
    "stack_name",
]

STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
NAME_PREFIX = "ems"
STACK_TIMEOUT_S = 3600.0

_STABLE_STATUSES = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}
# Queue properties of the template that are SQS attributes of the same name.
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
)
_NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
}


class BootstrapError(InfraError):
    """The stack could not be applied; the message says why."""


@dataclass(frozen=True)
class StackResult:
    """What a stage has, by logical name (`users`, `readings`, `readings-dlq`, `alarms`)."""

    tables: dict[str, str]  # logical name → table name
    queues: dict[str, str]  # logical name → queue URL
    topics: dict[str, str]  # logical name → topic ARN


def stack_name(stage: str) -> str:
    """The CloudFormation stack of a stage."""
    return f"{NAME_PREFIX}-{stage}"


def apply_stack(
    *,
    stage: str,
    endpoint_url: str | None,
    region: str,
    parameters: dict[str, str] | None = None,
    template_path: Path = TEMPLATE_PATH,
    log: Callable[[str], None] = print,
) -> StackResult:
    """Create or update the stage's stack at the endpoint, then apply what it may skip."""
    if not STAGE_PATTERN.fullmatch(stage):
        raise BootstrapError(
            f"Invalid stage {stage!r}: use 1-16 lowercase letters, digits or '-', "
            "starting with a letter."
        )
    try:
        body = template_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BootstrapError(f"Cannot read the template {template_path}: {exc}") from exc
    try:
        template = parse_template(body)
    except (InfraError, yaml.YAMLError) as exc:
        raise BootstrapError(f"Cannot parse the template {template_path}: {exc}") from exc
    if endpoint_url is not None and "FrontendHosting" in (template.get("Parameters") or {}):
        # A local endpoint serves no CloudFront (moto fails on it); the local runtime serves the app.
        parameters = {"FrontendHosting": "disabled", **(parameters or {})}
    values = _stack_parameters(template, stage, parameters)
    session = aws_session(region, endpoint_url, stage)
    clients = _Clients(session, endpoint_url)
    name = stack_name(stage)

    with _step(f"applying stack {name} at {endpoint_url or 'AWS'}"):
        _apply_template(clients.cloudformation, name, body, values, log)
    endpoint = _Endpoint(clients, template, values, name)
    with _step(f"completing stack {name}"):
        _check_tables(endpoint)
        _enable_time_to_live(endpoint, log)
        _reconcile_queues(endpoint, log)
        _subscribe_queues(endpoint, log)
        _upgrade_alert_inbox(endpoint, log)
        return _result(endpoint, stage)


def _stack_parameters(
    template: dict[str, Any], stage: str, parameters: dict[str, str] | None
) -> dict[str, str]:
    """Every parameter of the template with its value: given, else the template's default."""
    declared: dict[str, Any] = template.get("Parameters") or {}
    if parameters and parameters.get("Stage", stage) != stage:
        raise BootstrapError("The Stage parameter is the stage: pass it as `stage` only.")
    given = {**(parameters or {}), "Stage": stage}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise BootstrapError(
            f"Unknown template parameter(s): {', '.join(unknown)}; "
            f"the template declares {', '.join(declared)}."
        )
    values: dict[str, str] = {}
    for key, spec in declared.items():
        if key in given:
            values[key] = str(given[key])
        elif "Default" in spec:
            values[key] = str(spec["Default"])
        else:
            raise BootstrapError(f"The template parameter {key} has no default; give a value.")
    return values


def _step(description: str) -> AbstractContextManager[None]:
    """The endpoint's errors as a `BootstrapError` saying what was being done."""
    return failing_as(BootstrapError, description)


class _Clients:
    """The service clients of one apply, created when first needed."""

    def __init__(self, session: boto3.session.Session, endpoint_url: str | None) -> None:
        self._session = session
        self._endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}
        self.region = session.region_name or "us-east-1"

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service,
                endpoint_url=self._endpoint_url,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
            )
        return self._clients[service]

    @property
    def cloudformation(self) -> Any:
        return self._client("cloudformation")

    @property
    def dynamodb(self) -> Any:
        return self._client("dynamodb")

    @property
    def sqs(self) -> Any:
        return self._client("sqs")

    @property
    def sns(self) -> Any:
        return self._client("sns")


# --- the stack ---------------------------------------------------------------------------


def _apply_template(
    cfn: Any, name: str, body: str, values: dict[str, str], log: Callable[[str], None]
) -> None:
    """Create the stack, or update it when its template or parameters differ."""
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]
    stack = _describe_stack(cfn, name)
    if stack is None:
        stack_id = cfn.create_stack(
            StackName=name, TemplateBody=body, Parameters=parameters, OnFailure="DELETE"
        )["StackId"]
        _wait(cfn, stack_id, name, "CREATE_COMPLETE")
        log(f"stack {name}: created")
        return

    status = stack["StackStatus"]
    if status.endswith("_IN_PROGRESS"):
        raise BootstrapError(f"Stack {name} is busy ({status}); apply again when it settles.")
    if status not in _STABLE_STATUSES:
        raise BootstrapError(
            f"Stack {name} is in {status} and cannot be updated; delete it and apply again."
        )
    if _is_unchanged(cfn, stack, body, values):
        log(f"stack {name}: up to date")
        return
    try:
        cfn.update_stack(StackName=stack["StackId"], TemplateBody=body, Parameters=parameters)
    except ClientError as exc:
        if "No updates are to be performed" in exc.response.get("Error", {}).get("Message", ""):
            log(f"stack {name}: up to date")
            return
        raise
    _wait(cfn, stack["StackId"], name, "UPDATE_COMPLETE")
    log(f"stack {name}: updated")


def _describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return None
        raise
    return stacks[0] if stacks else None


def _is_unchanged(cfn: Any, stack: dict[str, Any], body: str, values: dict[str, str]) -> bool:
    """Whether the stack already holds this template body with these parameter values.

    Skipping the update then is what CloudFormation would do ("No updates are to be
    performed"); moto instead runs it, and its update of a table loses track of the table.
    """
    current = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    if current != values:
        return False
    stored = cfn.get_template(StackName=stack["StackId"], TemplateStage="Original")
    return bool(stored.get("TemplateBody") == body)


def _wait(cfn: Any, stack_id: str, name: str, expected: str) -> None:
    """Poll until the stack settles; a status other than `expected` is an error."""
    deadline = time.monotonic() + STACK_TIMEOUT_S
    delay_s = 0.1
    while True:
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise BootstrapError(f"Stack {name} still {status} after {STACK_TIMEOUT_S:.0f} s.")
        time.sleep(delay_s)
        delay_s = min(delay_s * 2, 5.0)
    if status != expected:
        reasons = _failure_reasons(cfn, stack_id)
        if stack.get("StackStatusReason"):
            reasons.append(stack["StackStatusReason"])
        detail = "; ".join(reasons) or "no reason given"
        raise BootstrapError(f"Stack {name} ended in {status}: {detail}")


def _failure_reasons(cfn: Any, stack_id: str) -> list[str]:
    """The reasons of the failed resource events of the stack's last operation, oldest first."""
    reasons: list[str] = []
    pages = cfn.get_paginator("describe_stack_events").paginate(StackName=stack_id)
    for page in pages:
        for event in page["StackEvents"]:
            reason = event.get("ResourceStatusReason") or ""
            if event.get("PhysicalResourceId") == stack_id and reason == "User Initiated":
                return list(reversed(reasons))
            if event.get("ResourceStatus", "").endswith("FAILED") and reason:
                reasons.append(f"{event.get('LogicalResourceId')}: {reason}")
    return list(reversed(reasons))


# --- what the endpoint's CloudFormation may skip -----------------------------------------


class _Endpoint:
    """The template's resources at the endpoint: names resolved, lookups cached."""

    def __init__(
        self, clients: _Clients, template: dict[str, Any], values: dict[str, str], name: str
    ) -> None:
        self.clients = clients
        self.template = template
        self.values = values
        self.stack_name = name
        self._conditions: dict[str, bool] = {}
        self._queue_urls: dict[str, str] = {}
        self._queue_attributes: dict[str, dict[str, str]] = {}
        self._topic_arns: dict[str, str] | None = None

    def resources(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(logical id, properties) of the template's resources of a type that exist."""
        for logical_id, resource in self.template["Resources"].items():
            if resource.get("Type") != resource_type:
                continue
            condition = resource.get("Condition")
            if condition is not None and not self.condition(condition):
                continue
            yield logical_id, resource.get("Properties") or {}

    def physical_name(self, logical_id: str) -> str:
        """The name (TableName, QueueName, TopicName) a resource of ours is given."""
        resource = self.template["Resources"].get(logical_id)
        if resource is None:
            raise BootstrapError(f"The template has no resource {logical_id}.")
        prop = _NAME_PROPERTIES.get(resource.get("Type", ""))
        properties = resource.get("Properties") or {}
        if prop is None or prop not in properties:
            raise BootstrapError(f"Resource {logical_id} has no name this tool can resolve.")
        return str(self.resolve(properties[prop]))

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise BootstrapError(f"The template has no condition {name}.")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def queue_url(self, queue_name: str) -> str:
        if queue_name not in self._queue_urls:
            self._queue_urls[queue_name] = self.clients.sqs.get_queue_url(QueueName=queue_name)[
                "QueueUrl"
            ]
        return self._queue_urls[queue_name]

    def queue_attributes(self, queue_name: str, *, refresh: bool = False) -> dict[str, str]:
        if refresh or queue_name not in self._queue_attributes:
            self._queue_attributes[queue_name] = self.clients.sqs.get_queue_attributes(
                QueueUrl=self.queue_url(queue_name), AttributeNames=["All"]
            )["Attributes"]
        return self._queue_attributes[queue_name]

    def topic_arn(self, topic_name: str) -> str:
        if self._topic_arns is None:
            arns: dict[str, str] = {}
            for page in self.clients.sns.get_paginator("list_topics").paginate():
                for topic in page["Topics"]:
                    arns[topic["TopicArn"].rsplit(":", 1)[-1]] = topic["TopicArn"]
            self._topic_arns = arns
        if topic_name not in self._topic_arns:
            raise BootstrapError(f"Topic {topic_name} does not exist at the endpoint.")
        return self._topic_arns[topic_name]

    # The intrinsic functions the template uses, evaluated against the endpoint.
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            resource, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._get_att(resource, attribute)
        if function == "Fn::Sub":
            return self._sub(argument)
        if function == "Fn::Join":
            separator, items = argument
            return str(separator).join(str(item) for item in self.resolve(items))
        if function == "Fn::If":
            name, if_true, if_false = argument
            return self.resolve(if_true if self.condition(name) else if_false)
        if function == "Fn::Equals":
            left, right = self.resolve(argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self.resolve(argument[0])
        if function == "Fn::And":
            return all(self.resolve(item) for item in argument)
        if function == "Fn::Or":
            return any(self.resolve(item) for item in argument)
        if function == "Condition":
            return self.condition(argument)
        if function.startswith("Fn::"):
            raise BootstrapError(f"Cannot evaluate {function} outside CloudFormation.")
        return {function: self.resolve(argument)}

    def _ref(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        pseudo = {
            "AWS::Region": self.clients.region,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": _partition(self.clients.region),
        }
        if name in pseudo:
            return pseudo[name]
        resource_type = self.template["Resources"].get(name, {}).get("Type")
        if resource_type == "AWS::DynamoDB::Table":
            return self.physical_name(name)
        if resource_type == "AWS::SQS::Queue":
            return self.queue_url(self.physical_name(name))
        if resource_type == "AWS::SNS::Topic":
            return self.topic_arn(self.physical_name(name))
        raise BootstrapError(f"Cannot resolve Ref {name} outside CloudFormation.")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        resource_type = self.template["Resources"].get(logical_id, {}).get("Type")
        if resource_type == "AWS::SQS::Queue":
            queue_name = self.physical_name(logical_id)
            if attribute == "QueueName":
                return queue_name
            if attribute == "QueueUrl":
                return self.queue_url(queue_name)
            if attribute == "Arn":
                return self.queue_attributes(queue_name)["QueueArn"]
        if resource_type == "AWS::SNS::Topic":
            topic_name = self.physical_name(logical_id)
            if attribute == "TopicName":
                return topic_name
            if attribute == "TopicArn":
                return self.topic_arn(topic_name)
        raise BootstrapError(f"Cannot resolve GetAtt {logical_id}.{attribute} here.")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return self._get_att(resource, attribute)
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _check_tables(endpoint: _Endpoint) -> None:
    """Fail when a table's keys or indexes differ from the template.

    moto's CloudFormation never updates a table, so a table kept from an older template
    would otherwise fail later, at the first query on a missing index.
    """
    problems: list[str] = []
    for logical_id, properties in endpoint.resources("AWS::DynamoDB::Table"):
        table_name = endpoint.physical_name(logical_id)
        try:
            table = endpoint.clients.dynamodb.describe_table(TableName=table_name)["Table"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                problems.append(f"table {table_name} is missing")
                continue
            raise
        if _key_schema(properties.get("KeySchema")) != _key_schema(table.get("KeySchema")):
            problems.append(f"table {table_name} has other keys")
        wanted = {
            index["IndexName"]: _key_schema(index.get("KeySchema"))
            for index in properties.get("GlobalSecondaryIndexes") or []
        }
        actual = {
            index["IndexName"]: _key_schema(index.get("KeySchema"))
            for index in table.get("GlobalSecondaryIndexes") or []
        }
        for index_name, keys in wanted.items():
            if index_name not in actual:
                problems.append(f"table {table_name} lacks index {index_name}")
            elif actual[index_name] != keys:
                problems.append(f"index {index_name} of {table_name} has other keys")
    if problems:
        raise BootstrapError(
            "The endpoint's tables differ from the template ("
            + "; ".join(problems)
            + "). Its CloudFormation did not change them: delete those tables, or reset the "
            "endpoint's state, and apply again."
        )


INBOX_UPGRADE_MARK = {"user_id": {"S": "#schema"}, "alert_id": {"S": "inbox-by-time"}}


def _upgrade_alert_inbox(endpoint: _Endpoint, log: Callable[[str], None]) -> None:
    """Give inbox items written before the inbox was paged by time the attributes its indexes read
    (`at`, `device_id`, `pending_at` while unacknowledged; an admin's acknowledgement, a copy of the
    alert). Once per stage: a mark item records that it ran."""
    if not any(logical_id == "AlertInboxTable" for logical_id, _ in endpoint.resources("AWS::DynamoDB::Table")):
        return
    table = endpoint.physical_name("AlertInboxTable")
    dynamodb = endpoint.clients.dynamodb
    if dynamodb.get_item(TableName=table, Key=INBOX_UPGRADE_MARK, ConsistentRead=True).get("Item"):
        return
    upgraded = 0
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True,
                                                        FilterExpression="attribute_not_exists(#at)",
                                                        ExpressionAttributeNames={"#at": "at"}):
        for item in page.get("Items", []):
            key = {"user_id": item["user_id"], "alert_id": item["alert_id"]}
            source = item if "alert" in item else dynamodb.get_item(
                TableName=table, Key={"user_id": {"S": "#admins"}, "alert_id": item["alert_id"]}).get("Item")
            if not source or "alert" not in source:
                continue  # an acknowledgement of a feed alert that is gone
            alert = json.loads(source["alert"]["S"])
            at = {"S": f"{alert['created_at']}#{alert['id']}"}
            values = {":at": at, ":d": {"S": alert["device_id"]}, ":a": source["alert"]}
            expression = "SET #at = :at, device_id = :d, #alert = :a"
            if "acknowledged_at" not in item and item["user_id"]["S"] != "#admins":
                expression += ", pending_at = :at"
            dynamodb.update_item(TableName=table, Key=key, UpdateExpression=expression,
                                 ExpressionAttributeNames={"#at": "at", "#alert": "alert"},
                                 ExpressionAttributeValues=values)
            upgraded += 1
    dynamodb.put_item(TableName=table, Item=INBOX_UPGRADE_MARK)
    if upgraded:
        log(f"alert inbox: {upgraded} items given their place in time")


def _key_schema(schema: Any) -> list[tuple[str, str]]:
    return [(key["AttributeName"], key["KeyType"]) for key in schema or []]


def _enable_time_to_live(endpoint: _Endpoint, log: Callable[[str], None]) -> None:
    """Turn on the TTL the template declares (moto's CloudFormation leaves it off)."""
    dynamodb = endpoint.clients.dynamodb
    for logical_id, properties in endpoint.resources("AWS::DynamoDB::Table"):
        spec = endpoint.resolve(properties.get("TimeToLiveSpecification"))
        if not spec or str(spec.get("Enabled")).lower() != "true":
            continue
        table_name = endpoint.physical_name(logical_id)
        attribute = spec["AttributeName"]
        current = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        status = current.get("TimeToLiveStatus", "DISABLED")
        if status in ("ENABLED", "ENABLING"):
            if current.get("AttributeName") != attribute:
                raise BootstrapError(
                    f"Table {table_name} expires items by {current.get('AttributeName')!r}, "
                    f"the template says {attribute!r}; change it by hand (AWS allows one TTL "
                    "change per hour)."
                )
            continue
        dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )
        log(f"table {table_name}: TTL on {attribute}")


def _reconcile_queues(endpoint: _Endpoint, log: Callable[[str], None]) -> None:
    """Give each queue the attributes the template declares (moto's update skips some)."""
    sqs = endpoint.clients.sqs
    for logical_id, properties in endpoint.resources("AWS::SQS::Queue"):
        queue_name = endpoint.physical_name(logical_id)
        current = endpoint.queue_attributes(queue_name)
        changes: dict[str, str] = {}
        for attribute in _QUEUE_ATTRIBUTES:
            if attribute not in properties:
                continue
            wanted = endpoint.resolve(properties[attribute])
            if attribute == "RedrivePolicy":
                wanted_policy = {
                    "deadLetterTargetArn": str(wanted["deadLetterTargetArn"]),
                    "maxReceiveCount": int(wanted["maxReceiveCount"]),
                }
                if _redrive_policy(current.get(attribute)) != wanted_policy:
                    changes[attribute] = json.dumps(wanted_policy)
            elif str(current.get(attribute)) != str(wanted):
                changes[attribute] = str(wanted)
        if changes:
            sqs.set_queue_attributes(QueueUrl=endpoint.queue_url(queue_name), Attributes=changes)
            endpoint.queue_attributes(queue_name, refresh=True)
            log(f"queue {queue_name}: set {', '.join(sorted(changes))}")


def _redrive_policy(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    policy = json.loads(raw)
    return {
        "deadLetterTargetArn": str(policy.get("deadLetterTargetArn")),
        "maxReceiveCount": int(policy.get("maxReceiveCount", 0)),
    }


def _subscribe_queues(endpoint: _Endpoint, log: Callable[[str], None]) -> None:
    """Subscribe each queue to its topic with raw delivery (moto's CloudFormation skips it)."""
    sns = endpoint.clients.sns
    for _, properties in endpoint.resources("AWS::SNS::Subscription"):
        if endpoint.resolve(properties.get("Protocol")) != "sqs":
            continue
        topic_arn = endpoint.resolve(properties["TopicArn"])
        queue_arn = endpoint.resolve(properties["Endpoint"])
        raw = str(endpoint.resolve(properties.get("RawMessageDelivery", False))).lower()
        existing = [
            subscription["SubscriptionArn"]
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=topic_arn
            )
            for subscription in page["Subscriptions"]
            if subscription.get("Protocol") == "sqs" and subscription.get("Endpoint") == queue_arn
        ]
        queue_name = queue_arn.rsplit(":", 1)[-1]
        topic_name = topic_arn.rsplit(":", 1)[-1]
        if not existing:
            sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={"RawMessageDelivery": raw},
                ReturnSubscriptionArn=True,
            )
            log(f"queue {queue_name}: subscribed to {topic_name}")
            continue
        for subscription_arn in existing:
            attributes = sns.get_subscription_attributes(SubscriptionArn=subscription_arn)
            if attributes["Attributes"].get("RawMessageDelivery", "false").lower() != raw:
                sns.set_subscription_attributes(
                    SubscriptionArn=subscription_arn,
                    AttributeName="RawMessageDelivery",
                    AttributeValue=raw,
                )
                log(f"queue {queue_name}: raw delivery {raw} from {topic_name}")


def _result(endpoint: _Endpoint, stage: str) -> StackResult:
    prefix = f"{NAME_PREFIX}-{stage}-"

    def logical(physical: str) -> str:
        return physical.removeprefix(prefix)

    tables = {
        logical(name): name
        for name in (
            endpoint.physical_name(lid) for lid, _ in endpoint.resources("AWS::DynamoDB::Table")
        )
    }
    queues = {
        logical(name): endpoint.queue_url(name)
        for name in (endpoint.physical_name(lid) for lid, _ in endpoint.resources("AWS::SQS::Queue"))
    }
    topics = {
        logical(name): endpoint.topic_arn(name)
        for name in (endpoint.physical_name(lid) for lid, _ in endpoint.resources("AWS::SNS::Topic"))
    }
    return StackResult(tables=tables, queues=queues, topics=topics)
