"""`python -m infra apply|package|lint|configure|dlq`: apply, package, lint and configure the stack,
and inspect or redrive its dead-letter queues.

Defaults come from the backend settings (`EMS_STAGE`, `AWS_ENDPOINT_URL`, the region).
Bad arguments exit with status 2, a failed command with status 1, each with one message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra import PROJECT_ROOT, TEMPLATE_PATH, InfraError, load_template
from infra.bootstrap import STAGE_PATTERN


def _stage(value: str) -> str:
    if not STAGE_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"invalid stage {value!r}: use 1-16 lowercase letters, digits or '-', "
            "starting with a letter"
        )
    return value


def _parameter(value: str) -> tuple[str, str]:
    key, sep, setting = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid parameter {value!r}: expected Key=Value")
    return key, setting


def _settings() -> Any:
    """The backend settings, for defaults; None when the environment holds invalid ones."""
    try:
        from chalicelib.settings import get_settings

        return get_settings()
    except Exception:  # noqa: BLE001 - a bad environment only loses the defaults
        return None


def build_parser() -> argparse.ArgumentParser:
    settings = _settings()
    default_stage = settings.stage if settings else "local"
    default_region = settings.region if settings else "us-east-1"
    default_endpoint = settings.aws_endpoint_url if settings else None

    parser = argparse.ArgumentParser(
        prog="python -m infra", description="Apply, package, lint and configure the EMS stack."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser, *, endpoint: bool) -> None:
        sub.add_argument("--stage", type=_stage, default=default_stage, help="default: %(default)s")
        sub.add_argument("--region", default=default_region, help="default: %(default)s")
        if endpoint:
            sub.add_argument(
                "--endpoint",
                default=default_endpoint,
                help="AWS-compatible endpoint URL (default: %(default)s; none means AWS)",
            )

    apply = commands.add_parser("apply", help="create or update the stage's tables, queues, topics")
    apply.set_defaults(subparser=apply)
    common(apply, endpoint=True)
    apply.add_argument(
        "--param",
        type=_parameter,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter, e.g. VisibilityTimeoutSeconds=5 (repeatable)",
    )

    package = commands.add_parser("package", help="chalice package with the template merged in")
    package.add_argument("--stage", type=_stage, default=default_stage, help="default: %(default)s")
    package.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "build" / "package", help="default: %(default)s"
    )
    package.add_argument(
        "--template-only",
        action="store_true",
        help="skip the Lambda dependencies: same template, zip not deployable; fast, offline",
    )

    lint = commands.add_parser("lint", help="cfn-lint infra/template.yaml")
    lint.add_argument("--template", type=Path, default=TEMPLATE_PATH, help=argparse.SUPPRESS)

    configure = commands.add_parser(
        "configure", help="after `chalice deploy`: the settings Chalice cannot make"
    )
    common(configure, endpoint=True)
    configure.add_argument(
        "--stack", default=None, metavar="NAME",
        help="the CloudFormation stack deployed from `make package` (default: what `chalice deploy` recorded)",
    )

    from infra.dlq import add_parser as add_dlq_parser

    add_dlq_parser(
        commands,
        stage_type=_stage,
        default_stage=default_stage,
        default_region=default_region,
        default_endpoint=default_endpoint,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "apply":
            return _apply(args.subparser, args)
        if args.command == "package":
            from infra.package import package

            package(
                stage=args.stage, out_dir=args.out, with_dependencies=not args.template_only
            )
            return 0
        if args.command == "lint":
            return _lint(args.template)
        if args.command == "configure":
            from infra.deploy import configure

            configure(stage=args.stage, region=args.region, endpoint_url=args.endpoint, stack_name=args.stack)
            return 0
        if args.command == "dlq":
            from infra.dlq import run as run_dlq

            return run_dlq(args)
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2  # unreachable: parser.error exits


def _apply(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from infra.bootstrap import apply_stack

    declared = set(load_template().get("Parameters") or {}) - {"Stage"}
    parameters = dict(args.param)
    unknown = sorted(set(parameters) - declared)
    if unknown:
        parser.error(
            f"unknown parameter(s) {', '.join(unknown)}; choose from {', '.join(sorted(declared))}"
            " (the stage is --stage)"
        )
    result = apply_stack(
        stage=args.stage, endpoint_url=args.endpoint, region=args.region, parameters=parameters
    )
    for title, names in (("tables", result.tables), ("queues", result.queues), ("topics", result.topics)):
        print(f"{title}:")
        width = max(map(len, names), default=0)
        for logical, physical in names.items():
            print(f"  {logical:<{width}}  {physical}")
    return 0


def _lint(template: Path) -> int:
    from infra.package import lint_template

    errors = lint_template(template)
    for line in errors:
        print(f"lint error: {line}", file=sys.stderr)
    if errors:
        return 1
    print(f"{template.name}: no lint errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
