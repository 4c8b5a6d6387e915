"""A stage's tables in moto's in-process fake (`mock_aws`), made from the project's template."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import aws, names
from chalicelib.settings import get_settings
from infra import load_template

REGION = "us-east-1"


def create_stage_tables(client: Any, stage: str) -> None:
    """Every table of the stage, as infra/template.yaml declares it (keys and indexes)."""
    for resource in load_template()["Resources"].values():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        properties = resource["Properties"]
        table: dict[str, Any] = {
            "TableName": properties["TableName"]["Fn::Sub"].replace("${Stage}", stage),
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if "GlobalSecondaryIndexes" in properties:
            table["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        client.create_table(**table)


def forget_clients() -> None:
    """Drop chalicelib's cached clients and settings (a test that swaps the endpoint or the stage);
    the models send through `aws.client`, so they follow."""
    aws._clients.clear()
    aws._ssm.cache_clear()
    aws._session = None
    get_settings.cache_clear()


@contextmanager
def faked_stage() -> Iterator[str]:
    """The current stage's tables in a fresh fake; yields the stage."""
    with pytest.MonkeyPatch.context() as env:
        for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
            env.delenv(variable, raising=False)
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        stage = names.current_stage()
        with mock_aws():
            create_stage_tables(boto3.client("dynamodb", region_name=REGION), stage)
            forget_clients()
            try:
                yield stage
            finally:
                forget_clients()
