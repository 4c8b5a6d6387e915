"""`chalice package`, with the infra template merged in and what Chalice cannot declare added.

The result is one SAM template (`sam.yaml` next to Chalice's `deployment.zip`) that holds the
functions and APIs Chalice generates and every table, queue and topic of `template.yaml`, plus:
- `FunctionResponseTypes: [ReportBatchItemFailures]` on every SQS event source, so a batch
  item the consumer reports as failed is retried alone;
- SQS event sources pointed at our queue resources (`!GetAtt`), so the stack creates a queue
  before the event source mapping that reads it;
- API Gateway responses in the contract's error body, for the errors the gateway answers
  itself (unknown route, 413, 415, throttling, ...);
- `EMS_WEBSOCKET_API_ID` / `EMS_WEBSOCKET_STAGE` on every function, for consumers that push
  frames (Chalice configures `app.websocket_api` only inside WebSocket handlers).
The merged template is then linted; an error fails the command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra import PROJECT_ROOT, TEMPLATE_PATH, InfraError, load_template

CHALICE_TEMPLATE_NAME = "sam.yaml"
WEBSOCKET_API_RESOURCE = "WebsocketAPI"
REST_API_RESOURCE = "RestAPI"
API_GATEWAY_STAGE = "api"
_SECTIONS = ("Parameters", "Conditions", "Resources", "Outputs")
# The REST stage's throttling (every route): a flood of requests gets 429s from API Gateway before it
# costs a Lambda invocation. Steady requests/s and burst; template parameters, so a stage can set its own.
API_RATE_LIMIT = 500
API_BURST_LIMIT = 1000


class PackageError(InfraError):
    """Packaging failed; the message says why."""


@dataclass(frozen=True)
class GatewayError:
    """An error API Gateway answers itself, and how it is written in the contract."""

    response_type: str
    code: str
    status: str | None = None  # None keeps the gateway's own status (DEFAULT_4XX/5XX)
    message: str | None = None  # None passes the gateway's message through
    headers: dict[str, str] = field(default_factory=dict)


GATEWAY_ERRORS = (
    GatewayError("DEFAULT_4XX", "bad_request"),
    GatewayError("DEFAULT_5XX", "internal_error"),
    # API Gateway answers an unknown route (or method) with a 403 "Missing Authentication
    # Token", which misleads: the contract says 404.
    GatewayError("MISSING_AUTHENTICATION_TOKEN", "not_found", "404", "No such route."),
    GatewayError("UNAUTHORIZED", "unauthorized", "401"),
    GatewayError("ACCESS_DENIED", "forbidden", "403"),
    GatewayError("THROTTLED", "too_many_requests", "429", headers={"Retry-After": "'1'"}),
    GatewayError("REQUEST_TOO_LARGE", "payload_too_large", "413"),
    GatewayError("UNSUPPORTED_MEDIA_TYPE", "unsupported_media_type", "415"),
    GatewayError("BAD_REQUEST_BODY", "validation_error", "400"),
    GatewayError("INTEGRATION_TIMEOUT", "gateway_timeout", "504"),
)


# --- the command -------------------------------------------------------------------------


def package(
    *,
    stage: str,
    out_dir: Path,
    project_dir: Path = PROJECT_ROOT,
    template_path: Path = TEMPLATE_PATH,
    with_dependencies: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Package the app of `project_dir` for `stage` into `out_dir`; the merged template's path.

    Without dependencies, Chalice runs on a copy of the app with an empty requirements file:
    the template is the same, but `deployment.zip` holds only the app (not deployable). That
    takes about a second and no network, where a dependency build takes ten and downloads
    wheels again whenever a file of the app changes (Chalice's build cache is keyed on them).
    """
    out_dir = out_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="ems-package-") as scratch:
        source = project_dir if with_dependencies else _app_only_copy(project_dir, Path(scratch))
        chalice_template_path = run_chalice_package(stage=stage, out_dir=out_dir, project_dir=source)
    app_template = _read_yaml(chalice_template_path)
    merged = merge_templates(app_template, load_template(template_path), stage=stage)
    chalice_template_path.write_text(dump_template(merged), encoding="utf-8")
    kind = "" if with_dependencies else " (template only: the zip lacks the dependencies)"
    log(f"packaged {stage} into {chalice_template_path}{kind}")
    errors = lint_template(chalice_template_path, log=log)
    if errors:
        raise PackageError(
            f"The packaged template {chalice_template_path} has lint errors:\n" + "\n".join(errors)
        )
    return chalice_template_path


def _app_only_copy(project_dir: Path, scratch: Path) -> Path:
    """What `chalice package` reads of the project, with an empty requirements file."""
    copy = scratch / "project"
    (copy / ".chalice").mkdir(parents=True)
    shutil.copy2(project_dir / "app.py", copy / "app.py")
    if (project_dir / "chalicelib").is_dir():
        shutil.copytree(
            project_dir / "chalicelib",
            copy / "chalicelib",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    for config in (project_dir / ".chalice").glob("*.json"):
        shutil.copy2(config, copy / ".chalice" / config.name)
    (copy / "requirements.txt").write_text("", encoding="utf-8")
    return copy


def run_chalice_package(*, stage: str, out_dir: Path, project_dir: Path) -> Path:
    """Run `chalice package` (CloudFormation flavour, YAML) and return its template's path.

    Chalice keeps each build in `.chalice/deployments/`, keyed by a hash of the requirements
    and of every file of `app.py` and `chalicelib/` (compiled `.pyc` files included), so a
    build is reused only while none of those changed.
    """
    command = [
        _chalice_executable(),
        "package",
        "--stage",
        stage,
        "--pkg-format",
        "cloudformation",
        "--template-format",
        "yaml",
        str(out_dir),
    ]
    env = dict(os.environ)
    if not (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")):
        # Chalice opens a session while packaging; the template itself names no region.
        env["AWS_DEFAULT_REGION"] = "us-east-1"
    completed = subprocess.run(
        command, cwd=project_dir, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        raise PackageError(
            f"chalice package --stage {stage} failed (exit {completed.returncode}):\n"
            + "\n".join(output[-20:])
        )
    template = out_dir / CHALICE_TEMPLATE_NAME
    if not template.is_file():
        raise PackageError(f"chalice package wrote no {CHALICE_TEMPLATE_NAME} in {out_dir}.")
    return template


def _chalice_executable() -> str:
    beside_python = Path(sys.executable).parent / "chalice"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("chalice")
    if found is None:
        raise PackageError("The chalice command is not installed in this environment.")
    return found


def lint_template(path: Path, *, log: Callable[[str], None] = print) -> list[str]:
    """cfn-lint on a template: warnings are logged, errors returned."""
    from cfnlint.api import lint_file  # imported here: cfn-lint is slow to import

    errors: list[str] = []
    for match in lint_file(path):
        line = f"{match.rule.id} {match.message} ({path.name}:{match.linenumber})"
        if match.rule.severity == "error":
            errors.append(line)
        else:
            log(f"lint {match.rule.severity}: {line}")
    return errors


# --- the merge (pure) --------------------------------------------------------------------


def merge_templates(app: dict[str, Any], infra: dict[str, Any], *, stage: str) -> dict[str, Any]:
    """Chalice's template with the infra template merged in and the additions above."""
    # A JSON round trip makes plain, unshared data: Chalice's YAML uses anchors, and editing
    # one function's dict must not edit another's.
    merged: dict[str, Any] = json.loads(json.dumps(app))
    infra = json.loads(json.dumps(infra))
    if "Description" in infra and "Description" not in merged:
        merged["Description"] = infra["Description"]
    for section in _SECTIONS:
        ours = infra.get(section) or {}
        theirs = merged.setdefault(section, {})
        clashes = sorted(set(ours) & set(theirs))
        if clashes:
            raise PackageError(
                f"Logical ids in both Chalice's template and ours ({section}): "
                + ", ".join(clashes)
            )
        theirs.update(ours)
    _pin_stage(merged, stage)
    queues = _queue_ids_by_name(infra, stage)
    resources = merged["Resources"]
    functions = [
        resource
        for resource in resources.values()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    for function in functions:
        _configure_sqs_events(function, queues)
        _set_websocket_environment(function, has_websocket=WEBSOCKET_API_RESOURCE in resources)
    if REST_API_RESOURCE in resources:
        _add_gateway_responses(resources[REST_API_RESOURCE], _cors_origin(resources))
        _add_stage_throttling(merged, resources[REST_API_RESOURCE])
    return {key: merged[key] for key in _ordered_keys(merged) if merged[key] != {}}


def dump_template(template: dict[str, Any]) -> str:
    """A template as YAML (long-form intrinsics, no anchors)."""

    class _Dumper(yaml.SafeDumper):  # type: ignore[misc,unused-ignore]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    text = yaml.dump(
        template, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000
    )
    return str(text)


def _ordered_keys(template: dict[str, Any]) -> list[str]:
    first = ["AWSTemplateFormatVersion", "Transform", "Description", *_SECTIONS]
    return [k for k in first if k in template] + [k for k in template if k not in first]


def _pin_stage(template: dict[str, Any], stage: str) -> None:
    """Default the Stage parameter to the Chalice stage, and allow only it.

    The functions' `EMS_STAGE` and the queue names Chalice binds are fixed when packaging;
    a stack given another Stage would name its tables apart from what the code reads.
    """
    parameter = template.get("Parameters", {}).get("Stage")
    if parameter is not None:
        parameter["Default"] = stage
        parameter["AllowedValues"] = [stage]


def _queue_ids_by_name(infra: dict[str, Any], stage: str) -> dict[str, str]:
    """Our queues' physical names for `stage` → their logical ids."""
    queues: dict[str, str] = {}
    for logical_id, resource in (infra.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::SQS::Queue":
            continue
        name = (resource.get("Properties") or {}).get("QueueName")
        if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
            name = name["Fn::Sub"].replace("${Stage}", stage)
        if isinstance(name, str) and "${" not in name:
            queues[name] = logical_id
    return queues


def _configure_sqs_events(function: dict[str, Any], queues: dict[str, str]) -> None:
    """Report batch item failures, and read our queues by `!GetAtt` rather than a fixed ARN.

    The `!GetAtt` orders the event source mapping after its queue; an explicit `DependsOn`
    on the function would add nothing (cfn-lint flags it as W3005).
    """
    events = (function.get("Properties") or {}).get("Events") or {}
    for event in events.values():
        if event.get("Type") != "SQS":
            continue
        properties = event.setdefault("Properties", {})
        properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
        queue_id = queues.get(_queue_name(properties.get("Queue")) or "")
        if queue_id is not None:
            properties["Queue"] = {"Fn::GetAtt": [queue_id, "Arn"]}


def _queue_name(queue: Any) -> str | None:
    """The queue name in an event source's ARN: a literal, or Chalice's `Fn::Sub` form."""
    if isinstance(queue, dict) and isinstance(queue.get("Fn::Sub"), str):
        queue = queue["Fn::Sub"]
    if not isinstance(queue, str) or not queue.startswith("arn:") or ":sqs:" not in queue:
        return None
    name = queue.rsplit(":", 1)[-1]
    return None if "${" in name else name


def _set_websocket_environment(function: dict[str, Any], *, has_websocket: bool) -> None:
    properties = function.setdefault("Properties", {})
    variables = properties.setdefault("Environment", {}).setdefault("Variables", {})
    variables["EMS_WEBSOCKET_STAGE"] = API_GATEWAY_STAGE
    if has_websocket:
        variables["EMS_WEBSOCKET_API_ID"] = {"Ref": WEBSOCKET_API_RESOURCE}


def _cors_origin(resources: dict[str, Any]) -> str:
    """The allowed browser origin the API handler is configured with."""
    for resource in resources.values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        variables = (resource.get("Properties") or {}).get("Environment", {}).get("Variables", {})
        origin = variables.get("EMS_CORS_ALLOW_ORIGIN")
        if isinstance(origin, str) and origin:
            return origin
    return "*"


def _add_stage_throttling(template: dict[str, Any], rest_api: dict[str, Any]) -> None:
    """Throttling for every method of the REST stage, from two template parameters."""
    parameters = template.setdefault("Parameters", {})
    parameters["ApiRateLimit"] = {"Type": "Number", "Default": API_RATE_LIMIT, "MinValue": 1,
                                  "Description": "Steady requests per second the REST stage serves"}
    parameters["ApiBurstLimit"] = {"Type": "Number", "Default": API_BURST_LIMIT, "MinValue": 1,
                                   "Description": "Requests the REST stage serves in a burst"}
    rest_api.setdefault("Properties", {})["MethodSettings"] = [{
        "ResourcePath": "/*", "HttpMethod": "*",
        "ThrottlingRateLimit": {"Ref": "ApiRateLimit"}, "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"},
    }]


def _add_gateway_responses(rest_api: dict[str, Any], origin: str) -> None:
    """Error bodies for the errors API Gateway answers itself.

    Set through the SAM API's `GatewayResponses` (which writes them into the API definition)
    rather than as `AWS::ApiGateway::GatewayResponse` resources: those are not part of the
    deployment SAM makes, and are known to be lost or left out when it redeploys the API.
    """
    responses: dict[str, Any] = {}
    for error in GATEWAY_ERRORS:
        message = (
            json.dumps(error.message) if error.message is not None else "$context.error.messageString"
        )
        response: dict[str, Any] = {
            "ResponseParameters": {
                "Headers": {"Access-Control-Allow-Origin": f"'{origin}'", **error.headers}
            },
            "ResponseTemplates": {
                "application/json": (
                    f'{{"error": {{"code": "{error.code}", "message": {message}}}}}'
                )
            },
        }
        if error.status is not None:
            response["StatusCode"] = error.status
        responses[error.response_type] = response
    rest_api.setdefault("Properties", {})["GatewayResponses"] = responses


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PackageError(f"Cannot read {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise PackageError(f"{path} is not a template.")
    return document
