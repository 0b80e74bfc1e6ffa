"""CPU time per group of processes (from /proc), to say where a request's CPU goes.

On a 2-core machine every component -- clients, the runner, its workers, DynamoDB Local --
competes for the same cores, so CPU per request explains a throughput ratio better than
the ratio alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15)


def find_pids(*needles: str) -> list[int]:
    """Processes whose command line contains every needle (e.g. the DynamoDB Local JVM)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(needle in cmdline for needle in needles):
            found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU seconds consumed by named groups of processes between two snapshots."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups

    def snapshot(self) -> dict[str, float]:
        return {name: sum(process_cpu_s(pid) for pid in pids()) for name, pids in self.groups.items()}

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: after[name] - before.get(name, 0.0) for name in after}
