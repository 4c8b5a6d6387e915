"""Every table, queue and topic of a stage, declared once in `template.yaml`, and the tools
that apply it: `bootstrap` (to an endpoint, at local start-up), `package` (merged into
`chalice package` for deploys) and `deploy` (the settings `chalice deploy` cannot make).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = Path(__file__).resolve().parent / "template.yaml"


class InfraError(Exception):
    """A failure of an infra command, with a message meant for the person who ran it."""


# libyaml's loader parses the template ten times faster than the pure-Python one, which
# matters at every local start-up.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[valid-type,misc,unused-ignore]
    """A YAML loader that reads CloudFormation's short-form tags (`!Ref`, `!Sub`, ...)."""


def _construct_intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{tag_suffix}")
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def parse_template(text: str) -> dict[str, Any]:
    """A CloudFormation YAML template as plain data, short-form tags in their long form."""
    document = yaml.load(text, Loader=_CfnLoader)
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise InfraError("The template has no Resources section.")
    return document


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template at `path` as plain data (see `parse_template`)."""
    return parse_template(path.read_text(encoding="utf-8"))


def aws_session(region: str, endpoint_url: str | None, stage: str = "local") -> boto3.session.Session:
    """A session in `region`; against a custom endpoint with no keys configured, the local
    runtime's keys for `stage` (its data folder's), else dummy ones."""
    if endpoint_url is None:
        return boto3.session.Session(region_name=region)
    core = botocore.session.Session()
    # Instance and container roles mean nothing to a local endpoint, and probing the
    # metadata service for them can stall start-up for seconds off EC2.
    resolver = core.get_component("credential_provider")
    for provider in ("iam-role", "container-role"):
        resolver.remove(provider)
    local_keys = PROJECT_ROOT / ".data" / stage / "aws-credentials"
    if core.get_credentials() is None and local_keys.exists():
        # The keys of the local runtime's embedded endpoint (made in its data folder).
        core.set_config_variable("credentials_file", str(local_keys))
    if core.get_credentials() is None:
        return boto3.session.Session(
            region_name=region, aws_access_key_id="test", aws_secret_access_key="test"
        )
    return boto3.session.Session(region_name=region, botocore_session=core)


@contextmanager
def failing_as(error: Callable[[str], InfraError], description: str,
               reasons: dict[str, str] | None = None) -> Iterator[None]:
    """Turn the endpoint's errors into `error("Failed <description>: <reason>")`; `reasons` words
    some error codes in plain terms."""
    try:
        yield
    except ClientError as exc:
        found = exc.response.get("Error", {})
        code = found.get("Code", "error")
        reason = (reasons or {}).get(code) or f"{code}: {found.get('Message', exc)}"
        raise error(f"Failed {description}: {reason}") from exc
    except ResponseParserError as exc:
        # moto answers some failures (a table that already exists) with a body botocore
        # cannot parse; the body still carries the endpoint's reason.
        message = re.search(r'"message":\s*"([^"]*)"', str(exc))
        raise error(f"Failed {description}: {message.group(1) if message else exc}") from exc
    except BotoCoreError as exc:
        raise error(f"Failed {description}: {exc}") from exc
