"""`make bench` keeps working: its seconds-long smoke run, on DynamoDB Local, as part of `make test`.

The smoke sizes are too small for meaningful timings, so only what must hold at any size is
asserted, and nothing about speed: every row is in the report; requests and capacity units per
cancel at the wire are what DynamoDB's rules say for each design; a storm of duplicates never
answers 409 except from the pre-fix design; a hot run's duplicates are answered 202 or 503,
never anything else, and read-first, which only reads them, is never throttled.
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
    "## 1. DynamoDB requests and capacity units per cancel",
    "## 2. Storms: duplicate cancels through the local HTTP API",
    "## 3. Cold init of each function",
    "## 4. Warm per-invocation cost (stubbed DynamoDB)",
    "## 5. A hot run: duplicate cancels beyond one item's write capacity",
    "## 6. What a million cancels cost (on-demand)",
    "## Sweeper",
)
CHARTS = ("requests_per_cancel", "storm_latency", "storm_answers", "cold_start", "warm_invocation", "hot_run")


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
    for chart in CHARTS:
        assert f"]({chart}.png)" in report
        assert (out / f"{chart}.png").stat().st_size > 1000


def test_given_the_smoke_run_then_each_design_makes_the_requests_its_design_says(smoke_run):
    # Given / When
    _, results, _ = smoke_run
    rows = results["rows"]["requests"]

    def most(design: str) -> dict[str, int]:
        return {outcome: max(entry["requests"]) for outcome, entry in rows[design].items()}

    # Then: counted at the wire, per outcome (interrupted, already, conflict, absent)
    assert most("runstop") == {"interrupted": 1, "already_interrupted": 1, "conflict": 1, "absent": 2}
    assert most("read_first") == {"interrupted": 2, "already_interrupted": 1, "conflict": 1, "absent": 3}
    assert most("seed_fix") == {"interrupted": 2, "already_interrupted": 3, "conflict": 3, "absent": 1}
    assert most("pre_fix") == {"interrupted": 2, "already_interrupted": 1, "conflict": 1, "absent": 1}


def test_given_the_smoke_run_then_a_duplicate_costs_a_failed_write_or_half_a_read(smoke_run):
    # Given / When
    _, results, _ = smoke_run
    rows = results["rows"]["requests"]
    runstop, read_first = rows["runstop"]["already_interrupted"], rows["read_first"]["already_interrupted"]
    # Then: DynamoDB's rules, as the proxy counts them (a failed conditional write: one write unit)
    assert (max(runstop["read_units"]), max(runstop["write_units"])) == (0, 1)
    assert (max(read_first["read_units"]), max(read_first["write_units"])) == (0.5, 0)
    assert min(rows["runstop"]["interrupted"]["write_units"]) >= 1


def test_given_a_storm_of_duplicate_cancels_then_only_the_pre_fix_design_answers_409(smoke_run):
    # Given / When
    _, results, _ = smoke_run
    storm = results["rows"]["storm"]
    # Then
    assert storm, "no storm scenario ran"
    for name, scenario in storm.items():
        designs = scenario["designs"]
        for design in ("runstop", "read_first", "seed_fix"):
            assert sum(designs[design]["spurious_409"]) == 0, (name, design)
            assert designs[design]["interrupted"] == [scenario["runs"]] * len(designs[design]["interrupted"])
        assert sum(designs["pre_fix"]["spurious_409"]) > 0, name


def test_given_a_hot_run_then_duplicates_are_answered_202_or_503_and_read_first_is_never_throttled(smoke_run):
    # Given / When
    _, results, _ = smoke_run
    hot = results["rows"]["hot"]
    configs = hot["configs"]
    # Then
    for name, entry in configs.items():
        assert set(entry["answers"]) <= {"already_interrupted", "503"}, (name, entry["answers"])
    assert sum(configs["read_first"]["503"]) == 0
    assert not any(key.endswith("throttled") for key in configs["read_first"]["by_result"])
    if hot["fallback_available"]:  # issue 14's fallback: a final state read answers the throttled cancel
        assert sum(configs["runstop"]["503"]) == 0
