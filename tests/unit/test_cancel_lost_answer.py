"""A cancel whose first UpdateItem applied but whose answer was lost is still reported as ours."""

from datetime import timedelta
from typing import Any

from runstop.cancel import CancelOutcome, cancel_run
from runstop.store import RunStore
from tests.unit.support import T0, TENANT, seed_run


class LostAnswerStore(RunStore):
    """What the SDK sees after a lost response: the write applied, and the retry meets it."""

    def apply(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        super().apply(*args, **kwargs)
        return super().apply(*args, **kwargs)


def test_given_the_first_attempt_applied_when_the_retry_finds_it_then_the_outcome_is_interrupted(store):
    # Given a running run, and a store whose first answer is lost after the write applied
    seed_run(store, "lost-1", "running")
    lossy = LostAnswerStore(store.client, store.table_name)
    # When the cancel is decided through it
    decision = cancel_run(lossy, TENANT, "lost-1", reason="user", at=T0)
    # Then the caller learns that its own request stopped the run
    assert decision.outcome is CancelOutcome.INTERRUPTED
    assert decision.run is not None
    assert decision.run["cancel"]["reason"] == "user"


def test_given_a_run_interrupted_by_another_request_when_cancelled_then_it_is_already_interrupted(store):
    # Given a run that another request interrupted with the same reason
    seed_run(store, "lost-2", "running")
    first = cancel_run(store, TENANT, "lost-2", reason="user", at=T0)
    # When a second, distinct request cancels it a moment later
    second = cancel_run(store, TENANT, "lost-2", reason="user", at=T0 + timedelta(milliseconds=1))
    # Then only the first is reported as the one that interrupted it
    assert (first.outcome, second.outcome) == (CancelOutcome.INTERRUPTED, CancelOutcome.ALREADY_INTERRUPTED)
