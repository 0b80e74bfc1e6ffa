"""`make bench` keeps working: its seconds-long smoke run, on DynamoDB Local, as part of `make test`.

The smoke sizes are too small for meaningful timings, so only what must hold at any size is
asserted: every row is in the report, runstop's requests per cancel are 1, 1, 1, <=2 at the
wire, and a storm of duplicates never answers runstop's clients 409 (while the naive
baseline does, which shows the storm really exercised the difference).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runstop_dev.template import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROW_HEADINGS = (
    "## Summary",
    "## 1. DynamoDB requests per cancel",
    "## 2. Storm: duplicate cancels through the local HTTP API",
    "## 3. Cold init of each function",
    "## 4. Warm per-invocation cost (stubbed DynamoDB)",
    "## 5. Throughput at the same concurrency",
    "## Sweeper",
)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], Path]:
    """Run `python -m bench --smoke` once into a temporary directory (never bench/results)."""
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-4000:]}"
    report = (out / "REPORT.md").read_text()
    results = json.loads((out / "raw" / "results.json").read_text())
    return report, results, out


def test_given_the_smoke_sizes_when_the_bench_runs_then_the_report_has_every_row_and_its_charts(smoke_run):
    # Given / When
    report, _, out = smoke_run
    # Then
    missing = [heading for heading in ROW_HEADINGS if heading not in report]
    assert missing == []
    for chart in (
        "requests_per_cancel",
        "storm_latency",
        "storm_answers",
        "cold_start",
        "warm_invocation",
        "throughput",
    ):
        assert f"]({chart}.png)" in report
        assert (out / f"{chart}.png").stat().st_size > 1000


def test_given_the_smoke_run_then_runstop_makes_one_request_per_cancel_and_two_only_when_absent(smoke_run):
    # Given / When
    _, results, _ = smoke_run
    sequential = results["rows"]["requests"]["sequential"]
    # Then: counted at the wire, per outcome
    runstop = {outcome: max(entry["requests"]) for outcome, entry in sequential["runstop"].items()}
    assert runstop["interrupted"] == 1
    assert runstop["already_interrupted"] == 1
    assert runstop["conflict"] == 1
    assert 1 <= runstop["absent"] <= 2
    # and the naive baseline pays its existence check on top of the write
    assert max(sequential["baseline"]["interrupted"]["requests"]) == 2


def test_given_a_storm_of_duplicate_cancels_then_runstop_never_answers_409_and_the_baseline_does(smoke_run):
    # Given / When
    _, results, _ = smoke_run
    storm = results["rows"]["storm"]
    # Then
    assert storm, "no storm scenario ran"
    for name, scenario in storm.items():
        runstop, baseline = scenario["designs"]["runstop"], scenario["designs"]["baseline"]
        assert sum(runstop["spurious_409"]) == 0, name
        assert runstop["interrupted"] == [scenario["runs"]] * len(runstop["interrupted"]), name
        assert sum(baseline["spurious_409"]) > 0, name
