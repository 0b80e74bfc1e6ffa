"""Run trees on DynamoDB Local's real transactions: children created while their parent is being
cancelled. A trial is one child's create racing its parent's cancel (five children per parent,
all released together with the cancel); in every trial the child either committed before the
cancel (and the cascade interrupts it) or was refused with the parent's status, and none is ever
left active, including when the index that lists children lags (every other round lists through
an index that hides the newest child at first).

RUNSTOP_TREE_TRIALS sets the number of trials (default 1,000; `make race-trees` runs 10,000).
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from runstop import runs, trees
from runstop.cancel import cancel_run
from runstop.errors import ParentNotActive
from runstop.links import Links
from runstop.status import ACTIVE
from runstop.store import RunStore
from tests.helpers import LaggingIndex
from tests.integration.support import new_run_id, race

pytestmark = pytest.mark.integration

TRIALS = int(os.environ.get("RUNSTOP_TREE_TRIALS", "1000"))
PARENTS_PER_ROUND = 20
CHILDREN_PER_PARENT = 5


def _child_or_refusal(store: RunStore, tenant: str, run_id: str, parent: str) -> Any:
    try:
        return runs.create_run(store, tenant, run_id, {}, links=Links(parent_run_id=parent))
    except ParentNotActive as refused:
        return refused


def _no_wait(attempt: int) -> float:
    return 0.0


def _parent(store: RunStore, tenant: str, running: bool) -> str:
    run_id = new_run_id()
    runs.create_run(store, tenant, run_id, {})
    if running:
        runs.start_run(store, tenant, run_id)
    return run_id


def _cascade_and_check(
    store: RunStore, tenant: str, parent: str, children: list[str], answers: list[Any], reason: str, lagging: bool
) -> Counter[str]:
    """The parent's cascade (as the stream delivers it), then what its tree looks like."""
    trees.cascade(LaggingIndex(store, hidden=1, lagging=1) if lagging else store, tenant, parent, backoff=_no_wait)
    tally: Counter[str] = Counter()
    stored_parent = store.get(tenant, parent)
    assert stored_parent is not None
    assert stored_parent["status"] == "interrupted"
    created = {child for child, answer in zip(children, answers, strict=True) if isinstance(answer, dict)}
    assert int(stored_parent.get("children", 0)) == len(created)
    for answer in answers:
        if isinstance(answer, ParentNotActive):
            tally["refused"] += 1
            assert answer.run_status == "interrupted"
        else:
            tally["created, then interrupted by the cascade"] += 1
    # Every child that exists is one that was created (a refused one left nothing), and none is active.
    listed = {item["run_id"]: item for page in trees.children_pages(store, tenant, parent) for item in page}
    assert set(listed) == created
    for child, item in listed.items():
        assert item["status"] not in ACTIVE, f"child {child} left {item['status']}"
        assert item["cancel"]["source"] == "cascade"
        assert item["cancel"]["root_run_id"] == parent
        assert item["cancel"]["reason"] == reason
    return tally


def test_given_children_created_while_their_parent_is_cancelled_then_no_descendant_is_left_active(
    quiet_store: RunStore, tenant: str
) -> None:
    store = quiet_store
    tally: Counter[str] = Counter()
    trials = 0
    round_ = 0
    with ThreadPoolExecutor(max_workers=PARENTS_PER_ROUND) as pool:
        while trials < TRIALS:
            # Given: parents, half of them running, half still pending
            parents = list(pool.map(lambda i: _parent(store, tenant, i % 2 == 1), range(PARENTS_PER_ROUND)))
            children = {parent: [new_run_id() for _ in range(CHILDREN_PER_PARENT)] for parent in parents}
            reason = f"round {round_}"
            # When: each parent's children are created while the parent is cancelled, all at once
            calls: list[Any] = []
            for parent in parents:
                calls += [partial(_child_or_refusal, store, tenant, child, parent) for child in children[parent]]
                calls.append(partial(cancel_run, store, tenant, parent, reason=reason))
            results = iter(race(calls))
            answers = {parent: [next(results) for _ in range(CHILDREN_PER_PARENT + 1)][:-1] for parent in parents}
            # Then: after each parent's cascade (every other round on a lagging index), nothing is active
            checks = [
                pool.submit(_cascade_and_check, store, tenant, p, children[p], answers[p], reason, round_ % 2 == 1)
                for p in parents
            ]
            for check in checks:
                tally.update(check.result())
            trials += len(parents) * CHILDREN_PER_PARENT
            round_ += 1
    print(
        f"\nchild create vs its parent's cancel x {trials} trials ({round_ * PARENTS_PER_ROUND} parents): {dict(tally)}"
    )
    assert tally["refused"], "some children must lose to the cancel"
    assert tally["created, then interrupted by the cascade"], "some children must win"


def test_given_a_deep_tree_when_the_root_is_cancelled_then_every_level_is_interrupted(
    quiet_store: RunStore, tenant: str
) -> None:
    store = quiet_store
    # Given: a chain of 20 runs, each the child of the one before
    chain = [new_run_id()]
    runs.create_run(store, tenant, chain[0], {})
    for _ in range(19):
        chain.append(new_run_id())
        runs.create_run(store, tenant, chain[-1], {}, links=Links(parent_run_id=chain[-2]))
    # When: the root is cancelled and each interruption's cascade runs, as the stream delivers them
    cancel_run(store, tenant, chain[0], reason="deep")
    for run_id in chain[:-1]:
        trees.cascade(store, tenant, run_id, backoff=_no_wait)
    # Then
    for run_id in chain[1:]:
        run = store.get(tenant, run_id)
        assert run is not None
        assert (run["status"], run["cancel"]["root_run_id"], run["cancel"]["reason"]) == (
            "interrupted",
            chain[0],
            "deep",
        )
