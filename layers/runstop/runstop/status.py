"""The run status machine: the one place that says which transitions exist."""

from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"


ACTIVE: frozenset[RunStatus] = frozenset({RunStatus.PENDING, RunStatus.RUNNING})
"""A cancel may interrupt only these; they are also the only ones the sweeper sees."""

FINISHED: frozenset[RunStatus] = frozenset({RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.TIMEOUT})
"""Terminal states a worker reports itself; cancelling one of these is a conflict."""

TRANSITIONS: dict[str, tuple[frozenset[RunStatus], frozenset[RunStatus]]] = {
    # action: (statuses it may start from, statuses it may lead to)
    "start": (frozenset({RunStatus.PENDING}), frozenset({RunStatus.RUNNING})),
    "heartbeat": (frozenset({RunStatus.RUNNING}), frozenset({RunStatus.RUNNING})),
    "complete": (frozenset({RunStatus.RUNNING}), FINISHED),
    "cancel": (ACTIVE, frozenset({RunStatus.INTERRUPTED})),
}


def sources(action: str) -> frozenset[RunStatus]:
    """Statuses from which `action` is allowed (the condition of its conditional update)."""
    return TRANSITIONS[action][0]
