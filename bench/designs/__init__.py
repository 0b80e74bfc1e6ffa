"""The cancel designs the bench serves side by side on one local runner, and how each is loaded.

- runstop: the template's CancelRunFunction as it is (update first, one request per outcome);
- read_first: the same handler deciding from an eventually consistent read first (read_first.py);
- seed_fix: the seed's fix -- existence check, cancel, re-read, 202 when interrupted or gone;
- pre_fix: the seed before its fix -- an interrupted run is refused 409 (seed.py has both).

Every design runs with CancelRunFunction's environment from the template (same table, tenant
claim, client settings) plus its own `env`, in worker processes of its own, on the route
`POST /<name>/runs/{run_id}/cancel`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from runstop_dev.template import REPO_ROOT, Function, function

CANCEL_FUNCTION = "CancelRunFunction"
FALLBACK_FLAG = "RUNSTOP_THROTTLE_FALLBACK"
"""The domain's switch for answering a throttled cancel from a read (issue 14 item 1): "1"
(the default) on, "0" off. The bench sets it per design to measure with and without."""
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Design:
    name: str
    summary: str
    function: Function
    env: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"/{self.name}"

    def cancel_path(self, run_id: str) -> str:
        return f"{self.prefix}/runs/{run_id}/cancel"


def _runstop(name: str, summary: str, env: dict[str, str] | None = None) -> Design:
    return Design(name, summary, replace(function(CANCEL_FUNCTION), logical_id=f"Bench_{name}"), env or {})


def _wrapping(name: str, summary: str) -> Design:
    """runstop's handler with its decision replaced by the module `name` (see read_first.py)."""
    wrapped = function(CANCEL_FUNCTION)
    named = {"logical_id": CANCEL_FUNCTION, "code_dir": str(wrapped.code_dir), "module": wrapped.module}
    env = {"BENCH_WRAPS_FUNCTION": json.dumps({**named, "attribute": wrapped.attribute})}
    return Design(name, summary, Function(f"Bench_{name}", HERE, name, "lambda_handler"), env)


def _seed(name: str, summary: str, attribute: str) -> Design:
    return Design(name, summary, Function(f"Bench_{name}", HERE, "seed", attribute))


def designs() -> dict[str, Design]:
    """Every design by name, in the order the report shows them."""
    found = [
        _runstop("runstop", "runstop: one conditional update; the item it returns on failure decides"),
        _wrapping("read_first", "runstop reading first: an eventually consistent read; only active/absent update"),
        _seed("seed_fix", "the seed's fix: check, update, re-read; 202 when interrupted or gone", "seed_fix_handler"),
        _seed("pre_fix", "the seed before its fix: 409 unless active, update, re-read", "pre_fix_handler"),
        _runstop(
            "runstop_no_fallback",
            f"runstop with {FALLBACK_FLAG}=0: a throttled cancel is 503 once retries run out",
            {FALLBACK_FLAG: "0"},
        ),
    ]
    return {d.name: d for d in found}


COMPARED = ("runstop", "read_first", "seed_fix", "pre_fix")
"""The designs of the request, capacity and storm rows."""


def fallback_available() -> bool:
    """Whether the domain reads the fallback switch yet (issue 14 item 1 lands on main separately).

    Without it, runstop with and without the flag behave the same, and the report says so.
    """
    layer = REPO_ROOT / "layers" / "runstop" / "runstop"
    return any(FALLBACK_FLAG in path.read_text() for path in layer.rglob("*.py"))
