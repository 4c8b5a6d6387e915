"""Deploy rehearsal: the packaged CloudFormation template, deployed to a local endpoint.

`make rehearse` (the tests in `tests/rehearsal/`) uses this module to:
1. start an embedded ministack with IAM enforced (`AUTH=true`: every request's SigV4 signature
   is verified, each function acts as its execution role with the stage's hand-written policy)
   and Python functions run on a bare interpreter (`.venv/lambda`: the standard library only,
   so the functions import only what the deployment zip holds);
2. package the app (`infra.package`, dependencies included: the zip a deploy uploads);
3. upload the zip and the template, as `aws cloudformation package` does, and deploy a copy of
   the template through a CloudFormation change set (the SAM transform runs in the endpoint),
   with the adjustments the emulator needs (`EMULATOR_ADJUSTMENTS`; the packaged file is left
   as it is);
4. run the deploy steps of the README against the stack: the secrets, the settings step
   (`python -m infra configure --stack`), the data upgrade and the first admin
   (`python -m chalicelib.identity create-admin`), each as its own command;
5. delete the stack and stop the endpoint when done.

Every failure raises `RehearsalError` with what failed and the tail of the endpoint's log.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from infra import PROJECT_ROOT, InfraError, parse_template
from infra.local.endpoint import Credentials, EmbeddedEndpoint, EndpointError
from infra.package import dump_template, package

STAGE = "dev"
REGION = "us-east-1"
STACK_NAME = f"ems-{STAGE}-rehearsal"
ARTIFACT_BUCKET = f"ems-{STAGE}-rehearsal-artifacts"
LAMBDA_PYTHON = PROJECT_ROOT / ".venv" / "lambda" / "bin" / "python"
WEBSOCKET_API = "WebsocketAPI"
WEBSOCKET_DEPLOYMENT = "WebsocketAPIDeployment"
WEBSOCKET_STAGE = "WebsocketAPIStage"
API_STAGE = "api"

# What the deployed copy changes in the packaged template, and why (README, "Deploy rehearsal").
EMULATOR_ADJUSTMENTS = (
    ("the functions' code is the uploaded deployment.zip (`CodeUri` an S3 URL, as `aws cloudformation "
     "package` writes it)"),
    (f"`{WEBSOCKET_DEPLOYMENT}` (AWS::ApiGatewayV2::Deployment, which the emulator's CloudFormation lacks) "
     f"is left out and `{WEBSOCKET_STAGE}` deploys itself (`AutoDeploy: true`)"),
    ("every function gets `EMS_WEBSOCKET_MANAGEMENT_URL`, the emulator's `@connections` URL of the stack's "
     "WebSocket API (the `execute-api` host Chalice derives from the API id resolves only on AWS)"),
)


class RehearsalError(InfraError):
    """A step of the rehearsal failed; the message says which and why."""


@dataclass
class Endpoint:
    """The rehearsal's ministack: loopback only, IAM enforced, state in memory."""

    port: int
    access_key_id: str
    secret_access_key: str
    log_path: Path
    server: EmbeddedEndpoint | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of a command acting as the account's administrator (root keys)."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=REGION,
        ).client(service, endpoint_url=self.url, config=Config(retries={"max_attempts": 3, "mode": "standard"}))

    def start(self, timeout_s: float = 60.0) -> None:
        if not LAMBDA_PYTHON.exists():
            raise RehearsalError(f"{LAMBDA_PYTHON} is missing: run `make setup`")
        environment = {
            # A clean environment: nothing of the caller's (EMS_* settings, AWS keys) reaches the functions.
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.log_path.parent),
            "MINISTACK_REGION": REGION,
            "EMS_ENDPOINT_IAM": "1",
            "EMS_ENDPOINT_LAMBDA_PYTHON": str(LAMBDA_PYTHON),
        }
        self.server = EmbeddedEndpoint("127.0.0.1", self.port, self.log_path,
                                       Credentials(self.access_key_id, self.secret_access_key), state_dir=None,
                                       environment=environment)
        try:
            self.server.start(timeout_s)
        except EndpointError as exc:
            raise RehearsalError(str(exc)) from exc  # its message ends with the endpoint's log

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout_s=30)

    def log_tail(self, lines: int = 40) -> str:
        return self.server.log_tail(lines) if self.server is not None else "(no endpoint log)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_endpoint(work_dir: Path) -> Endpoint:
    return Endpoint(
        port=free_port(),
        access_key_id="LKIA" + secrets.token_hex(8).upper(),
        secret_access_key=secrets.token_urlsafe(30),
        log_path=work_dir / "endpoint.log",
    )


# --- the template's copy (pure) ------------------------------------------------------------


def adapt_template(template: dict[str, Any], *, code_uri: str, endpoint_url: str) -> dict[str, Any]:
    """A copy of the packaged template with `EMULATOR_ADJUSTMENTS` made (the argument is not changed)."""
    import json

    adapted: dict[str, Any] = json.loads(json.dumps(template))
    resources = adapted["Resources"]
    if WEBSOCKET_DEPLOYMENT in resources:
        del resources[WEBSOCKET_DEPLOYMENT]
        stage = resources[WEBSOCKET_STAGE]["Properties"]
        stage.pop("DeploymentId", None)
        stage["AutoDeploy"] = True
    management_url = {"Fn::Sub": f"{endpoint_url}/_aws/execute-api/${{{WEBSOCKET_API}}}/{API_STAGE}"}
    for resource in resources.values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        properties["CodeUri"] = code_uri
        if WEBSOCKET_API in resources:
            variables = properties.setdefault("Environment", {}).setdefault("Variables", {})
            variables["EMS_WEBSOCKET_MANAGEMENT_URL"] = management_url
    return adapted


# --- the deploy ---------------------------------------------------------------------------------


@dataclass
class Deployment:
    """A deployed stack: its outputs, URLs and the admin the rehearsal created."""

    endpoint: Endpoint
    outputs: dict[str, str]
    resources: int
    admin_username: str
    admin_password: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rest_url(self) -> str:
        """The REST API's base URL through the emulator's execute-api data plane (ends in /api)."""
        return f"{self.endpoint.url}/_aws/execute-api/{self.outputs['RestAPIId']}/{API_STAGE}"

    @property
    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.endpoint.port}/_aws/execute-api/{self.outputs['WebsocketAPIId']}/{API_STAGE}"


def _timed(timings: dict[str, float], name: str, log: Callable[[str], None]) -> Callable[[Callable[[], Any]], Any]:
    def run(step: Callable[[], Any]) -> Any:
        started = time.monotonic()
        result = step()
        timings[name] = round(time.monotonic() - started, 1)
        log(f"rehearsal: {name} ({timings[name]} s)")
        return result

    return run


def deploy(endpoint: Endpoint, work_dir: Path, *, project_dir: Path = PROJECT_ROOT,
           log: Callable[[str], None] = print) -> Deployment:
    """Package the app of `project_dir`, deploy the stack to `endpoint` (started) and run the deploy steps."""
    timings: dict[str, float] = {}
    package_dir = work_dir / "package"
    template_path = _timed(timings, "package", log)(
        lambda: package(stage=STAGE, out_dir=package_dir, project_dir=project_dir, log=log))
    packaged = template_path.read_text(encoding="utf-8")
    s3 = endpoint.client("s3")
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    code_key = f"{uuid.uuid4().hex}.zip"
    _timed(timings, "upload", log)(
        lambda: s3.upload_file(str(package_dir / "deployment.zip"), ARTIFACT_BUCKET, code_key))
    adapted = adapt_template(parse_template(packaged), code_uri=f"s3://{ARTIFACT_BUCKET}/{code_key}",
                             endpoint_url=endpoint.url)
    for adjustment in EMULATOR_ADJUSTMENTS:
        log(f"rehearsal: in the deployed copy: {adjustment}")
    template_key = f"{uuid.uuid4().hex}.template"
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=template_key, Body=dump_template(adapted).encode())
    if template_path.read_text(encoding="utf-8") != packaged:
        raise RehearsalError(f"{template_path} changed while it was deployed")
    cloudformation = endpoint.client("cloudformation")
    outputs, count = _timed(timings, "stack", log)(lambda: _create_stack(
        cloudformation, f"{endpoint.url}/{ARTIFACT_BUCKET}/{template_key}", endpoint))
    log(f"rehearsal: stack {STACK_NAME}: {count} resources")
    env = endpoint.env()
    ssm = endpoint.client("ssm")
    ssm.put_parameter(Name=f"/ems/{STAGE}/jwt-secret", Type="SecureString", Value=secrets.token_urlsafe(48))
    configured = _timed(timings, "settings step", log)(lambda: _command(
        [sys.executable, "-m", "infra", "configure", "--stage", STAGE, "--stack", STACK_NAME,
         "--endpoint", endpoint.url], env, endpoint))
    for line in configured.splitlines():
        log(f"rehearsal: settings step: {line}")
    _timed(timings, "data upgrade", log)(lambda: _command(
        [sys.executable, "-c", "import app; app.upgrade()"], {**env, "EMS_STAGE": STAGE}, endpoint))
    password = secrets.token_urlsafe(18)
    _timed(timings, "first admin", log)(lambda: _command(
        [sys.executable, "-m", "chalicelib.identity", "create-admin", "--username", "admin", "--password-stdin"],
        {**env, "EMS_STAGE": STAGE}, endpoint, stdin=password + "\n"))
    return Deployment(endpoint, outputs, count, "admin", password, timings)


def _create_stack(cloudformation: Any, template_url: str, endpoint: Endpoint) -> tuple[dict[str, str], int]:
    change_set = cloudformation.create_change_set(
        StackName=STACK_NAME, ChangeSetName="rehearsal", ChangeSetType="CREATE", TemplateURL=template_url,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    try:
        cloudformation.get_waiter("change_set_create_complete").wait(
            ChangeSetName=change_set["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    except Exception as exc:
        described = cloudformation.describe_change_set(ChangeSetName=change_set["Id"])
        raise RehearsalError(f"change set failed: {described.get('StatusReason')}") from exc
    cloudformation.execute_change_set(ChangeSetName=change_set["Id"])
    try:
        cloudformation.get_waiter("stack_create_complete").wait(
            StackName=STACK_NAME, WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    except Exception as exc:
        failed = [
            f"{event['LogicalResourceId']} ({event['ResourceType']}): {event.get('ResourceStatusReason')}"
            for event in cloudformation.describe_stack_events(StackName=STACK_NAME)["StackEvents"]
            if event["ResourceStatus"].endswith("FAILED")
        ]
        raise RehearsalError("the stack was not created:\n" + "\n".join(failed or [str(exc)])
                             + f"\nendpoint log:\n{endpoint.log_tail()}") from exc
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    resources = cloudformation.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME)
    count = sum(len(page["StackResourceSummaries"]) for page in resources)
    return outputs, count


def _command(argv: list[str], env: dict[str, str], endpoint: Endpoint, stdin: str | None = None) -> str:
    """A project command as an operator runs it: the root keys and the stage, nothing else of ours."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("EMS_", "AWS_"))}
    completed = subprocess.run(argv, cwd=PROJECT_ROOT, env={**clean, **env}, input=stdin, capture_output=True,
                               text=True, timeout=300, check=False)
    if completed.returncode != 0:
        raise RehearsalError(
            f"`{' '.join(argv[1:])}` failed (exit {completed.returncode}):\n{completed.stdout}{completed.stderr}"
            f"\nendpoint log:\n{endpoint.log_tail()}")
    return completed.stdout


def delete_stack(endpoint: Endpoint, *, log: Callable[[str], None] = print) -> None:
    """Delete the stack (its tables, queues, functions and APIs); an error when it is not deleted."""
    cloudformation = endpoint.client("cloudformation")
    started = time.monotonic()
    cloudformation.delete_stack(StackName=STACK_NAME)
    try:
        cloudformation.get_waiter("stack_delete_complete").wait(
            StackName=STACK_NAME, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    except Exception as exc:
        raise RehearsalError(f"the stack was not deleted: {exc}\nendpoint log:\n{endpoint.log_tail()}") from exc
    left = [name for name in endpoint.client("dynamodb").list_tables()["TableNames"] if name.startswith(f"ems-{STAGE}-")]
    left += [url.rsplit("/", 1)[-1] for url in endpoint.client("sqs").list_queues().get("QueueUrls", [])]
    left += [f["FunctionName"] for f in endpoint.client("lambda").list_functions()["Functions"]]
    if left:
        raise RehearsalError(f"the stack was deleted but left {', '.join(sorted(left))}")
    log(f"rehearsal: stack deleted ({time.monotonic() - started:.1f} s)")


def clean_work_dir(work_dir: Path) -> None:
    shutil.rmtree(work_dir, ignore_errors=True)
