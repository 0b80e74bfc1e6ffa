"""Row 4: warm per-invocation cost of the cancel handler on a stubbed client, vs a bare call.

Run in the Lambda-like environment (bench/_warm_child.py): many invocations per batch
(timeit-style), batches of the handler and of the bare UpdateItem alternating, both
outcomes that cost one request (interrupted, already_interrupted).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench import lambda_env
from bench.api_rows import Tick
from bench.cold import _event_for
from bench.fixtures import run_item
from runstop.item_codec import serialize
from runstop.status import RunStatus
from runstop_dev.stack import CREDENTIALS, REGION
from runstop_dev.template import function, function_environment, load_template

CHILD_SOURCE = Path(__file__).with_name("_warm_child.py").read_text()
OUTCOMES = ("interrupted", "already_interrupted")


def warm_cost(tenant_id: str, iterations: int, rounds: int, tick: Tick) -> dict[str, Any]:
    python = lambda_env.ensure()
    fn = function("CancelRunFunction")
    run_id = "warm-run"
    event = _event_for(fn, "POST", f"/runs/{run_id}/cancel", tenant_id, b'{"reason":"warm"}')
    stored = run_item(tenant_id, run_id, RunStatus.INTERRUPTED)
    stored["cancel"] = {"reason": "warm", "requested_at": stored["updated_at"], "source": "api"}
    item = {k: serialize(v) for k, v in stored.items()}
    refs = {rid: rid for rid in load_template()["Resources"]}
    env = {
        **function_environment(fn.logical_id, refs),
        **CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": fn.logical_id,
    }
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
        args = [str(python), "-c", CHILD_SOURCE, json.dumps(event), json.dumps(item), str(iterations), str(rounds)]
        done = subprocess.run(
            [*args, out.name],
            env=lambda_env.child_env(env, fn.code_dir, tools=True),
            cwd=str(fn.code_dir),
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(f"warm benchmark failed ({done.returncode}):\n{done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(Path(out.name).read_text())
    tick("warm invocations")
    per = figures["per_call_us"]
    figures["ratios"] = {
        o: [h / b for h, b in zip(per[f"{o}/handler"], per[f"{o}/bare"], strict=True)] for o in OUTCOMES
    }
    return figures
