"""The bench's sizes: full (`make bench`) or smoke (`--smoke`), each overridable by BENCH_* variables."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class BenchConfig:
    repeats: int = 3
    """Repeats of rows 1, 2 and 5 (designs alternate within each)."""
    concurrency: int = 32
    storm_duplicates: int = 1000
    """Row 2: duplicate cancels of one running run."""
    storm_runs: int = 100
    storm_runs_duplicates: int = 10
    """Row 2, second scenario: storm_runs runs x storm_runs_duplicates duplicates."""
    race_runs: int = 20
    race_duplicates: int = 10
    """Row 1, under concurrency: runs x duplicates through the counting proxy."""
    cold_repeats: int = 15
    """Row 3: fresh processes per candidate (interleaved)."""
    cold_all_functions: int = 1
    """Row 3: every function of the template (1), or only the floor and the cancel function (0)."""
    importtime_runs: int = 3
    warm_iterations: int = 1000
    warm_rounds: int = 9
    throughput_requests: int = 1500
    """Row 5: distinct runs cancelled per measurement, per side."""
    workers: int = 4
    """Execution environments (worker processes) per function in the local runner."""
    client_procs: int = 2
    """Processes the concurrent clients are spread over."""
    sweeper_repeats: int = 3
    sweeper_small: int = 0
    """1 for the sweeper row's small sizes (seconds); 0, the default, for the issue's full ones
    (1,000 stale among 1,000 vs among 100,000 runs: about a minute, loading included)."""
    smoke: bool = False

    @classmethod
    def smoke_sizes(cls) -> BenchConfig:
        return cls(
            repeats=1,
            concurrency=8,
            storm_duplicates=40,
            storm_runs=5,
            storm_runs_duplicates=4,
            race_runs=3,
            race_duplicates=4,
            cold_repeats=1,
            cold_all_functions=0,
            importtime_runs=1,
            warm_iterations=40,
            warm_rounds=2,
            throughput_requests=40,
            workers=1,
            client_procs=1,
            sweeper_repeats=1,
            sweeper_small=1,
            smoke=True,
        )

    def with_env(self, environ: dict[str, str] | None = None) -> BenchConfig:
        """Override any size with BENCH_<NAME> (e.g. BENCH_REPEATS=3, BENCH_COLD_REPEATS=30)."""
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for f in fields(self):
            raw = env.get(f"BENCH_{f.name.upper()}")
            if raw and f.name != "smoke":
                changes[f.name] = int(raw)
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
