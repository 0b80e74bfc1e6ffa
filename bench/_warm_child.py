# Warm per-invocation cost of the cancel handler, run as `python -c <this file's text> ...` in
# the Lambda-like environment with the cancel function's code directory as the working one.
#
# The function's own cached client gets a botocore Stubber, so no I/O happens: what is left is
# the handler's work (event parsing, validation, the cancel decision, serialization, logging,
# the metrics flush) plus the SDK's client-side work for one UpdateItem. The bare figure is
# the very same UpdateItem (parameters captured from the handler) on the same stub.
# argv: the event (JSON), the run as DynamoDB JSON, iterations, rounds, the output file (JSON).
import cProfile
import gc
import inspect
import json
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

event_text, item_text, iterations_text, rounds_text, out_path = sys.argv[1:6]
event, item = json.loads(event_text), json.loads(item_text)
tenant_id, run_id = item["tenant_id"]["S"], item["run_id"]["S"]
iterations, rounds = int(iterations_text), int(rounds_text)

# Powertools prints a log line and the EMF metrics on every invocation: to /dev/null, as
# the Lambda log pipe costs a write too. The Logger binds sys.stdout when it is created.
devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as this process
os.dup2(devnull.fileno(), 1)
sys.stdout = devnull

import app  # type: ignore[import-not-found,unused-ignore]  # noqa: E402 - after the redirection, see above
from botocore.stub import Stubber  # noqa: E402

from runstop.store import dynamodb_client  # noqa: E402
from runstop_dev.handlers import LambdaContext  # noqa: E402 - the tools directory is on this child's path

Check = Callable[[object], bool]

context = LambdaContext(function_name="runstop-bench")
client = dynamodb_client()
stub = Stubber(client)
stub.activate()
captured: dict[str, Any] = {}


def _capture(params: dict[str, Any], **_: object) -> None:
    captured.update(params)


client.meta.events.register("provide-client-params.dynamodb.UpdateItem", _capture)
stub.add_response("update_item", {"Attributes": item})
assert app.lambda_handler(event, context)["statusCode"] == 202
client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", _capture)


def add_interrupted() -> None:
    stub.add_response("update_item", {"Attributes": item})


def add_already() -> None:
    stub.add_client_error(
        "update_item",
        service_error_code="ConditionalCheckFailedException",
        service_message="The conditional request failed",
        http_status_code=400,
        modeled_fields={"Item": item},
    )


def handler() -> object:
    return app.lambda_handler(event, context)


def bare() -> object:
    try:
        return client.update_item(**captured)
    except client.exceptions.ConditionalCheckFailedException as error:
        return error


def per_call_us(call: Callable[[], object], add: Callable[[], None], expect: Check) -> float:
    for _ in range(iterations):
        add()
    first = call()
    assert expect(first), first
    gc.collect()
    started = time.perf_counter()
    for _ in range(iterations - 1):
        call()
    return (time.perf_counter() - started) / (iterations - 1) * 1e6


def is_status(code: int) -> Check:
    def check(result: object) -> bool:
        if not isinstance(result, dict):
            return False
        return bool(result.get("statusCode") == code)

    return check


def has_attributes(result: object) -> bool:
    return isinstance(result, dict) and "Attributes" in result


def is_condition_failure(result: object) -> bool:
    return isinstance(result, client.exceptions.ConditionalCheckFailedException)


cases = {
    ("interrupted", "handler"): (handler, add_interrupted, is_status(202)),
    ("interrupted", "bare"): (bare, add_interrupted, has_attributes),
    ("already_interrupted", "handler"): (handler, add_already, is_status(202)),
    ("already_interrupted", "bare"): (bare, add_already, is_condition_failure),
}
results: dict[str, list[float]] = {f"{o}/{w}": [] for o, w in cases}
for r in range(rounds):
    order = list(cases) if r % 2 == 0 else list(reversed(cases))
    for key in order:
        results["/".join(key)].append(per_call_us(*cases[key]))


# Where the handler's time goes (interrupted path), for the report's profile section.
# 1. Layers peeled off one by one, timed like the rows above.
def domain() -> object:
    from runstop.cancel import cancel_run
    from runstop.store import run_store

    return cancel_run(run_store(), tenant_id, run_id, reason="warm")


undecorated_handler = inspect.unwrap(app.lambda_handler)  # without Powertools' decorators
layers = {
    "bare UpdateItem": (bare, add_interrupted, has_attributes),
    "runstop.cancel.cancel_run (domain only)": (domain, add_interrupted, lambda d: d is not None),
    "handler without Powertools decorators": (
        lambda: undecorated_handler(event, context),
        add_interrupted,
        is_status(202),
    ),
    "full handler": (handler, add_interrupted, is_status(202)),
}
layer_us: dict[str, list[float]] = {name: [] for name in layers}
for r in range(max(3, rounds // 2)):
    for name in layers if r % 2 == 0 else reversed(layers):
        layer_us[name].append(per_call_us(*layers[name]))


# 2. Single pieces of the handler's own work, each alone (optional: skipped if renamed).
def _pieces() -> dict[str, Callable[[], object]]:
    from aws_lambda_powertools.logging import correlation_paths

    from runstop import ids, item_codec, schemas
    from runstop import lean_http as http
    from runstop.cancel import CancelDecision, CancelOutcome

    decision_item = item_codec.deserialize_item(item)
    injected = app.logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
        lambda event, context: None
    )
    from aws_lambda_powertools import Metrics

    from runstop import emf

    powertools_metrics = Metrics()  # what runstop.emf stands in for on this path, for comparison
    found: dict[str, Callable[[], object]] = {
        "Logger.info, one structured line": lambda: app.logger.info(
            "cancel decided", run_id=run_id, tenant_id=tenant_id, outcome="interrupted"
        ),
        "the EMF line (runstop.emf.count, with the decision as metadata)": lambda: emf.count(
            "Cancel.interrupted",
            {"trigger": "api"},
            {"run_id": run_id, "tenant_id": tenant_id, "outcome": "interrupted"},
        ),
        "the same through Powertools Metrics (add_dimension, add_metric, 3 add_metadata, flush)": lambda: (
            powertools_metrics.add_dimension(name="trigger", value="api"),
            powertools_metrics.add_metric(name="Cancel.interrupted", unit="Count", value=1),
            powertools_metrics.add_metadata(key="run_id", value=run_id),
            powertools_metrics.add_metadata(key="tenant_id", value=tenant_id),
            powertools_metrics.add_metadata(key="outcome", value="interrupted"),
            powertools_metrics.flush_metrics(),
        ),
        "JSON Schema validation of the body": lambda: schemas.validate("cancel_request", {"reason": "warm"}),
        "event parsing (tenant, run id, JSON body)": lambda: (
            http.tenant_from_event(event),
            ids.require_run_id(run_id),
            http.json_body(event),
        ),
        "deserialize_item of the ALL_NEW run": lambda: item_codec.deserialize_item(item),
        "the answer: cancel_body + response (JSON)": lambda: http.response(
            202, http.cancel_body(CancelDecision(run_id, CancelOutcome.INTERRUPTED, decision_item))
        ),
        "Logger.inject_lambda_context around a no-op": lambda: injected(event, context),
        "serialize the update's values": lambda: [item_codec.serialize(v) for v in decision_item.values()],
    }
    return found


pieces_us: dict[str, float] = {}
try:
    pieces = _pieces()
except Exception as error:  # a renamed helper must not sink the whole row
    pieces, pieces_us["unavailable: " + type(error).__name__] = {}, 0.0
for name, piece in pieces.items():
    try:
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(iterations):
                piece()
            samples.append((time.perf_counter() - started) / iterations * 1e6)
        pieces_us[name] = sorted(samples)[1]
    except Exception as error:
        pieces_us[f"{name} (failed: {type(error).__name__})"] = float("nan")


# 3. What removing one piece saves, measured in the full handler (each piece replaced by a
# stand-in; a renamed piece is skipped). Says what a budget miss would take, in context.
def _without(target: object, attribute: str, stand_in: object) -> Callable[[], float]:
    def run() -> float:
        original = getattr(target, attribute)
        setattr(target, attribute, stand_in)
        try:
            return per_call_us(handler, add_interrupted, is_status(202))
        finally:
            setattr(target, attribute, original)

    return run


def _removals() -> dict[str, Callable[[], float]]:
    from runstop import item_codec, store

    plain = item_codec.deserialize_item(item)
    return {
        "the structured log line (logger.info)": _without(app.logger, "info", lambda *a, **k: None),
        "the metric (the EMF line, runstop.emf.count)": _without(app.emf, "count", lambda *a, **k: None),
        "deserializing the returned run (store.deserialize_item)": _without(
            store, "deserialize_item", lambda raw: plain
        ),
    }


saves_us: dict[str, list[float]] = {}
try:
    removals = _removals()
except Exception:  # a renamed piece must not sink the whole row
    removals = {}
broken: set[str] = set()
for _ in range(max(3, rounds // 2)):
    full = per_call_us(handler, add_interrupted, is_status(202))
    for name, run in removals.items():
        if name in broken:
            continue
        try:
            saves_us.setdefault(name, []).append(full - run())
        except Exception:
            broken.add(name)

# 4. Self time by package under cProfile (shares only: profiling inflates small calls).
for _ in range(iterations):
    add_interrupted()
profiler = cProfile.Profile()
profiler.enable()
for _ in range(iterations):
    handler()
profiler.disable()
by_package: dict[str, float] = {}
for (filename, _line, _name), row in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
    path = filename.replace("\\", "/")
    if "site-packages/" in path:
        package = path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    elif "/layers/runstop/" in path:
        package = "runstop"
    elif "/functions/" in path:
        package = "app (the function)"
    elif filename.startswith("~") or filename.startswith("<"):
        package = "builtins"
    else:
        package = "stdlib: " + Path(path).stem
    by_package[package] = by_package.get(package, 0.0) + row[2]
total = sum(by_package.values()) or 1.0
shares = sorted(((k, v / total) for k, v in by_package.items()), key=lambda kv: -kv[1])

with open(out_path, "w") as out:
    json.dump(
        {
            "iterations": iterations,
            "rounds": rounds,
            "per_call_us": results,
            "layers_us": layer_us,
            "pieces_us": pieces_us,
            "saves_us": saves_us,
            "profile_shares": shares[:14],
        },
        out,
    )
