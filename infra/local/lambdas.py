"""Lambda execution environments: worker processes that each run the unchanged app.

A function (the REST API, the WebSocket handlers, one SQS consumer, the schedules) gets its
own pool of processes, as Lambda gives each function its own environments: one invocation
at a time per process, state (cached clients) kept between invocations, workers started on
demand. Processes come from a fork server that has imported the app once, so a cold start
costs a fork, not an import. A handler that raises is reported as Lambda reports it; a
worker that dies is replaced and the runtime goes on.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import json
import multiprocessing
import os
import signal
import sys
import traceback
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import forkserver
from pathlib import Path
from threading import Lock
from typing import Any

from chalice.local import LambdaContext

from infra.local.logs import connect_worker_output

REST_HANDLER = "__rest__"


class InvocationError(Exception):
    """The function raised, or its environment died; carries Lambda's error fields."""

    def __init__(self, error_type: str, message: str, stack: str = "") -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.error_message = message
        self.stack = stack


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to load the app: where it is, where logs go, its name."""

    app_dir: str
    log_socket: str | None
    function_name: str
    memory_mb: int
    timeout_s: int


_SETUP: WorkerSetup | None = None


def die_with_parent() -> None:
    """Have the kernel end this process when its parent ends (Linux), so none is orphaned.

    Strictly, when the parent *thread* that created it ends: create children from long-lived
    threads only.
    """
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the fork server's own shutdown still ends its workers


def _init_worker(setup: WorkerSetup) -> None:
    global _SETUP
    _SETUP = setup
    # Ctrl-C in the terminal reaches the whole process group; the runtime stops us itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = setup.function_name
    os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(setup.memory_mb)
    if setup.log_socket:
        connect_worker_output(setup.log_socket, setup.function_name)
    if "app" not in sys.modules:  # the fork server normally imported it already
        if not sys.path or sys.path[0] != setup.app_dir:
            sys.path.insert(0, setup.app_dir)
        importlib.import_module("app")


def _invoke(handler_name: str, event: dict[str, Any]) -> tuple[bool, Any]:
    """Run one invocation in this worker; (True, result) or (False, Lambda's error)."""
    assert _SETUP is not None
    module = sys.modules["app"]
    context = LambdaContext(
        function_name=_SETUP.function_name,
        memory_size=_SETUP.memory_mb,
        max_runtime_ms=_SETUP.timeout_s * 1000,
    )
    context.aws_request_id = str(uuid.uuid4())
    context.invoked_function_arn = (
        f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:000000000000:"
        f"function:{_SETUP.function_name}"
    )
    try:
        if ":" in handler_name:  # "module:function", a task of the runtime's (e.g. seeding)
            module_name, _, function_name = handler_name.partition(":")
            return True, getattr(importlib.import_module(module_name), function_name)()
        handler = module.app if handler_name == REST_HANDLER else getattr(module, handler_name)
        return True, handler(event, context)
    except Exception as exc:  # noqa: BLE001 - reported to the caller as Lambda reports it
        stack = traceback.format_exc()
        # Lambda writes an unhandled error to the function's log, as one record; so do we.
        record = {
            "level": "ERROR",
            "message": "Unhandled exception in handler",
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "exception": stack,
        }
        print(json.dumps(record), flush=True)
        return False, {"errorType": type(exc).__name__, "errorMessage": str(exc), "stack": stack}


class FunctionPool:
    """The execution environments of one function."""

    def __init__(
        self,
        setup: WorkerSetup,
        concurrency: int,
        mp_context: multiprocessing.context.BaseContext,
    ) -> None:
        self.setup = setup
        self.concurrency = concurrency
        self._context = mp_context
        self._lock = Lock()
        self._executor = self._new_executor()
        self._closed = False

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.concurrency,
            mp_context=self._context,  # type: ignore[arg-type]
            initializer=_init_worker,
            initargs=(self.setup,),
        )

    def submit(self, handler_name: str, event: dict[str, Any]) -> Future[tuple[bool, Any]]:
        with self._lock:
            if self._closed:
                raise InvocationError("RuntimeStopping", "the local runtime is stopping")
            try:
                return self._executor.submit(_invoke, handler_name, event)
            except BrokenProcessPool:
                self._executor = self._new_executor()
                return self._executor.submit(_invoke, handler_name, event)

    def _result(self, future: Future[tuple[bool, Any]]) -> Any:
        try:
            ok, value = future.result()
        except BrokenProcessPool as exc:
            with self._lock:
                if not self._closed:
                    self._executor = self._new_executor()
            raise InvocationError(
                "Runtime.ExitError", "the execution environment exited unexpectedly"
            ) from exc
        except Exception as exc:
            raise InvocationError(type(exc).__name__, str(exc)) from exc
        if not ok:
            raise InvocationError(value["errorType"], value["errorMessage"], value["stack"])
        return value

    def invoke(self, handler_name: str, event: dict[str, Any]) -> Any:
        """Invoke and wait (for threads): the handler's result, or InvocationError."""
        return self._result(self.submit(handler_name, event))

    async def invoke_async(self, handler_name: str, event: dict[str, Any]) -> Any:
        """Invoke from the event loop without blocking it."""
        future = self.submit(handler_name, event)
        await asyncio.wrap_future(future)
        return self._result(future)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor = self._executor
        executor.shutdown(wait=True, cancel_futures=True)


def fork_server_context(app_dir: str) -> multiprocessing.context.BaseContext:
    """A fork server that has imported the app in `app_dir`, so workers start as forks."""
    from infra.local import preload

    os.environ[preload.APP_DIR_ENV] = app_dir
    project_dir = str(Path(__file__).resolve().parents[2])
    paths = [project_dir, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload.__name__])
    # Start it now, from this (the main) thread: the fork server ends when the thread that
    # started it ends (see die_with_parent), and a request thread would end too soon.
    forkserver.ensure_running()
    return context
