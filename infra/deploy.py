"""The settings `chalice deploy` cannot make, applied to what it deployed.

Run after every `chalice deploy --stage STAGE` (which resets each function's environment):
- every SQS event source mapping of the app gets `FunctionResponseTypes:
  [ReportBatchItemFailures]`, so the consumers' `batchItemFailures` are honoured;
- every SQS consumer gets `EMS_WEBSOCKET_API_ID` and `EMS_WEBSOCKET_STAGE` (merged into its
  environment), so it can push frames to WebSocket clients, when the app has a WebSocket API.
What Chalice deployed is read from `.chalice/deployed/{stage}.json`; with `--stack NAME`, from the
resources of the CloudFormation stack deployed from `make package` (whose template already holds
both settings: the step then checks them and changes nothing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra import PROJECT_ROOT, InfraError, aws_session

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
API_GATEWAY_STAGE = "api"


class ConfigureError(InfraError):
    """The deployed app could not be configured; the message says why."""


@dataclass(frozen=True)
class Deployed:
    """What `chalice deploy` recorded for a stage, as far as this step needs it."""

    sqs_event_sources: tuple[tuple[str, str], ...]  # (mapping UUID, function ARN)
    websocket_api_id: str | None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Deployed:
        resources = record.get("resources") or []
        sources = tuple(
            (str(r["event_uuid"]), str(r["lambda_arn"]))
            for r in resources
            if r.get("resource_type") == "sqs_event"
        )
        websocket_ids = [
            str(r["websocket_api_id"])
            for r in resources
            if r.get("resource_type") == "websocket_api" and r.get("websocket_api_id")
        ]
        return cls(sources, websocket_ids[0] if websocket_ids else None)


def read_stack(cloudformation: Any, lambda_client: Any, stack_name: str) -> Deployed:
    """What a CloudFormation stack deployed: its SQS event source mappings and WebSocket API."""
    sources: list[tuple[str, str]] = []
    websocket_ids: list[str] = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for resource in page["StackResourceSummaries"]:
            kind, physical = resource["ResourceType"], resource.get("PhysicalResourceId") or ""
            if kind == "AWS::Lambda::EventSourceMapping" and physical:
                mapping = lambda_client.get_event_source_mapping(UUID=physical)
                if ":sqs:" in str(mapping.get("EventSourceArn")):
                    sources.append((physical, str(mapping["FunctionArn"])))
            elif kind == "AWS::ApiGatewayV2::Api" and physical:
                websocket_ids.append(physical)
    return Deployed(tuple(sorted(sources)), websocket_ids[0] if websocket_ids else None)


def deployed_record_path(stage: str, project_dir: Path = PROJECT_ROOT) -> Path:
    return project_dir / ".chalice" / "deployed" / f"{stage}.json"


def read_deployed(stage: str, project_dir: Path = PROJECT_ROOT) -> Deployed:
    """What Chalice deployed for `stage` (an error when it deployed nothing)."""
    path = deployed_record_path(stage, project_dir)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigureError(
            f"{path} does not exist: run `chalice deploy --stage {stage}` first."
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigureError(f"Cannot read {path}: {exc}") from exc
    return Deployed.from_record(record)


def configure(
    *,
    stage: str,
    region: str,
    endpoint_url: str | None = None,
    project_dir: Path = PROJECT_ROOT,
    stack_name: str | None = None,
    log: Callable[[str], None] = print,
) -> Deployed:
    """Apply the settings above to the app Chalice deployed for `stage` (or to the stack `stack_name`)."""
    session = aws_session(region, endpoint_url, stage)
    lambda_client = session.client("lambda", endpoint_url=endpoint_url)
    if stack_name is None:
        deployed = read_deployed(stage, project_dir)
    else:
        with _step(stage):
            cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
            deployed = read_stack(cloudformation, lambda_client, stack_name)
        if not deployed.sqs_event_sources:
            raise ConfigureError(f"Stack {stack_name} has no SQS event sources: is it the app's stack?")
    with _step(stage):
        for uuid, _ in deployed.sqs_event_sources:
            report_batch_item_failures(lambda_client, uuid, log=log)
        if deployed.websocket_api_id is None:
            log("no WebSocket API deployed: consumers' environment left as is")
        else:
            consumers = sorted({arn for _, arn in deployed.sqs_event_sources})
            for function_arn in consumers:
                merge_environment(
                    lambda_client,
                    function_arn,
                    {
                        "EMS_WEBSOCKET_API_ID": deployed.websocket_api_id,
                        "EMS_WEBSOCKET_STAGE": API_GATEWAY_STAGE,
                    },
                    log=log,
                )
    return deployed


def report_batch_item_failures(
    lambda_client: Any, uuid: str, *, log: Callable[[str], None] = print
) -> bool:
    """Turn on partial batch responses for one event source mapping; whether it changed."""
    mapping = lambda_client.get_event_source_mapping(UUID=uuid)
    if REPORT_BATCH_ITEM_FAILURES in (mapping.get("FunctionResponseTypes") or []):
        return False
    lambda_client.update_event_source_mapping(
        UUID=uuid, FunctionResponseTypes=[REPORT_BATCH_ITEM_FAILURES]
    )
    log(f"event source {uuid}: {REPORT_BATCH_ITEM_FAILURES}")
    return True


def merge_environment(
    lambda_client: Any,
    function_arn: str,
    variables: dict[str, str],
    *,
    log: Callable[[str], None] = print,
) -> bool:
    """Add `variables` to a function's environment, keeping the rest; whether it changed."""
    # A function still being updated by the deploy refuses another update.
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_arn)
    current = lambda_client.get_function_configuration(FunctionName=function_arn)
    existing = (current.get("Environment") or {}).get("Variables") or {}
    merged = {**existing, **variables}
    if merged == existing:
        return False
    lambda_client.update_function_configuration(
        FunctionName=function_arn, Environment={"Variables": merged}
    )
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_arn)
    log(f"function {function_arn.rsplit(':', 1)[-1]}: set {', '.join(sorted(variables))}")
    return True


@contextmanager
def _step(stage: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ConfigureError(
            f"Failed configuring stage {stage}: {error.get('Code')}: {error.get('Message')}"
        ) from exc
    except BotoCoreError as exc:  # WaiterError included
        raise ConfigureError(f"Failed configuring stage {stage}: {exc}") from exc
