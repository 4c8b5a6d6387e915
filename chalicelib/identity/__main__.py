"""`python -m chalicelib.identity create-admin --username NAME`: the first admin of a stage.

Deployed stages seed no users, and only an admin may create one, so the first admin is made
with this command, run with credentials for the stage's account (`EMS_STAGE`, the usual AWS
variables; `AWS_ENDPOINT_URL` for a local endpoint). The password is read from the terminal,
or from standard input with `--password-stdin`; it is never an argument.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from chalicelib import errors
from chalicelib.identity.models import CreateUserRequest
from chalicelib.identity.service import IdentityService
from chalicelib.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.identity")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-admin", help="create an admin user in the current stage")
    create.add_argument("--username", required=True)
    create.add_argument("--name", default="")
    create.add_argument("--email", default=None)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    args = parser.parse_args(argv)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 1
    try:
        request = CreateUserRequest(username=args.username, password=password, role="admin",
                                    name=args.name, email=args.email)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        user = IdentityService().create_user(request)
    except errors.AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"created admin {user.username} ({user.id}) in stage {get_settings().stage}")
    print(user.id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
