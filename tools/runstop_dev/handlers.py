"""Load a function's handler exactly as the template names it (CodeUri + Handler)."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from uuid import uuid4

from runstop_dev.template import Function, function


def load_module(logical_id: str, fresh: bool = False) -> ModuleType:
    """Import the function's module under a name of its own (every function has an app.py).

    fresh=True imports it anew, as a new Lambda execution environment would.
    """
    return load_function_module(function(logical_id), fresh=fresh)


def load_function_module(fn: Function, *, name: str | None = None, fresh: bool = False) -> ModuleType:
    """Import `fn`'s module by path (CodeUri + Handler) under `name` (default: one per function).

    The one loader of tools, tests and bench: the local runner's workers, the OpenAPI export
    (a private copy under its own name) and `make invoke` all come through here.
    """
    name = name or f"runstop_functions.{fn.logical_id}"
    if not fresh and name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, fn.code_dir / f"{fn.module}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {fn.code_dir}/{fn.module}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # as Python's own import does: no half-made module is found later
        raise
    return module


def load_handler(logical_id: str, fresh: bool = False) -> Callable[[dict[str, Any], Any], Any]:
    handler: Callable[[dict[str, Any], Any], Any] = getattr(
        load_module(logical_id, fresh), function(logical_id).attribute
    )
    return handler


@dataclass
class LambdaContext:
    """Enough of the Lambda context object for Powertools and the handlers."""

    function_name: str = "runstop-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:runstop-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid4()))
    log_group_name: str = "/aws/lambda/runstop-local"
    log_stream_name: str = "local"
    timeout_ms: int = 10_000
    clock: Callable[[], float] = time.monotonic
    """The monotonic clock the invocation's time runs on (tests pass a fake timer's)."""
    started: float | None = None

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    def get_remaining_time_in_millis(self) -> int:
        assert self.started is not None
        return max(0, self.timeout_ms - int((self.clock() - self.started) * 1000))
