"""Imported by the fork server before it forks workers: loads the app named by the runtime.

The fork server does not inherit the runtime's `sys.path`, so the app folder travels in
`EMS_LOCAL_APP_DIR` and goes first on the path here.
"""

import importlib
import os
import sys

APP_DIR_ENV = "EMS_LOCAL_APP_DIR"


def load_app() -> None:
    """Import the app module (`app.py` of the app folder) as `app`."""
    app_dir = os.environ.get(APP_DIR_ENV)
    if app_dir and (not sys.path or sys.path[0] != app_dir):
        sys.path.insert(0, app_dir)
    importlib.import_module("app")


if __name__ != "__main__":
    from infra.local.lambdas import die_with_parent

    die_with_parent()  # the fork server ends with the runtime that started it
load_app()
