"""The bench's sizes: full (`make bench`) or smoke (`--smoke`), each overridable by BENCH_* variables."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class BenchConfig:
    repeats: int = 3
    """Repeats of rows 1, 2 and 5 (the designs alternate within each)."""
    request_runs: int = 10
    """Row 1: runs per outcome, design and repeat (each cancel sent alone)."""
    concurrency: int = 32
    storm_duplicates: int = 1000
    """Row 2: duplicate cancels of one running run."""
    storm_runs: int = 100
    storm_runs_duplicates: int = 10
    """Row 2, second scenario: storm_runs runs x storm_runs_duplicates duplicates."""
    workers: int = 4
    """Rows 1 and 2: execution environments (worker processes) per design in the local runner."""
    hot_write_units: float = 4.0
    """Row 5: the per-item cap, write units a second (a scaled stand-in for DynamoDB's 1,000)."""
    hot_storm_factor: float = 5.0
    """Row 5: the storm's rate as a multiple of the cap."""
    hot_seconds: float = 10.0
    """Row 5: how long each paced storm lasts."""
    hot_workers: int = 48
    """Row 5: execution environments per runstop configuration. Throttled cancels wait in backoff
    for seconds, so rate x latency (20/s x up to 3 s) must fit with room; read_first gets a quarter."""
    hot_concurrency: int = 96
    """Row 5: client threads of the paced storm (never all busy, or requests would go out late)."""
    cold_repeats: int = 15
    """Row 3: fresh processes per candidate (interleaved)."""
    cold_all_functions: int = 1
    """Row 3: every function of the template (1), or only the floor and the cancel function (0)."""
    importtime_runs: int = 3
    warm_iterations: int = 1000
    warm_rounds: int = 15
    """Row 4: rounds of handler and bare batches (each round gives one ratio)."""
    client_procs: int = 2
    """Processes the concurrent clients are spread over."""
    write_usd_per_million: float = 0.625
    read_usd_per_million: float = 0.125
    """Row 6: on-demand prices, USD per million write / read request units (us-east-1, Standard
    table class, as of the November 2024 price cut); set BENCH_*_USD_PER_MILLION for another."""
    sweeper_repeats: int = 3
    sweeper_small: int = 0
    """1 for the sweeper row's small sizes (seconds); 0, the default, for the issue's full ones
    (1,000 stale among 1,000 vs among 100,000 runs: about a minute, loading included)."""
    smoke: bool = False

    @classmethod
    def smoke_sizes(cls) -> BenchConfig:
        return cls(
            repeats=1,
            request_runs=1,
            concurrency=8,
            storm_duplicates=40,
            storm_runs=5,
            storm_runs_duplicates=4,
            workers=1,
            hot_write_units=2.0,
            hot_seconds=0.6,
            hot_workers=3,
            hot_concurrency=6,
            cold_repeats=1,
            cold_all_functions=0,
            importtime_runs=1,
            warm_iterations=40,
            warm_rounds=2,
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
                changes[f.name] = float(raw) if f.type in (float, "float") else int(raw)
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
