"""Load a function's handler exactly as the template names it (CodeUri + Handler), and the fake
Lambda context handlers are called with: the one copy for the local runner, tools, tests and bench."""

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

Handler = Callable[[dict[str, Any], Any], Any]


def load_source(fn: Function, fresh: bool = False) -> ModuleType:
    """Import `fn`'s module by path under a name of its own (every function has an app.py).

    Works for any Function, including ones outside the template (the benchmark's designs);
    fresh=True imports it anew, as a new Lambda execution environment would.
    """
    name = f"runstop_functions.{fn.logical_id}"
    if not fresh and name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, fn.code_dir / f"{fn.module}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {fn.code_dir}/{fn.module}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def handler_of(fn: Function, fresh: bool = False) -> Handler:
    handler: Handler = getattr(load_source(fn, fresh), fn.attribute)
    return handler


def load_module(logical_id: str, fresh: bool = False) -> ModuleType:
    """The template function's module (see load_source)."""
    return load_source(function(logical_id), fresh)


def load_handler(logical_id: str, fresh: bool = False) -> Handler:
    return handler_of(function(logical_id), fresh)


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
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))
