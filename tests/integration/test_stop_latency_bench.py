"""`python -m bench.stop_latency` keeps working: its small run against the session's local runner.

Only what must hold at any size is asserted (no speed): every command stopped with 130, the
SIGTERM-ignoring one was killed, and no process of any trial is left.
"""

from __future__ import annotations

import pytest

from bench.stop_latency import run_stop_latency_bench

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_stop_latency_row_runs_and_leaves_no_process(api):
    result = run_stop_latency_bench(api.url, small=True)
    (row,) = result["intervals"]
    assert row["trials"] == 3
    assert row["exit_130"] == 3
    assert len(result["sigterm_ignored"]["after_deadline_s"]) == 1
    assert result["orphans"] == 0
    assert "| heartbeat interval |" in result["markdown"]
