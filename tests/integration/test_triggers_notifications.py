"""Stop notifications from live stream records: DynamoDB Local's stream of the runs table,
through the template's own pipe filter and input template (runstop_dev.pipes).

Every way a run can end up interrupted (HTTP, a queue message, the sweeper, from pending or
running) gives exactly one Run Interrupted event with the run's reason, source and end time;
nothing else that happens to runs (create, start, heartbeat, complete, a repeated cancel, the
worker's stop acknowledgement) gives any.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from runstop import clock, runs
from runstop.cancel import cancel_run
from runstop.status import RunStatus
from runstop.store import ActivePage, RunStore
from runstop.sweeper import SweepPolicy, sweep
from runstop_dev.pipes import emulate
from tests.integration.support import TABLE

pytestmark = pytest.mark.integration


class OneTenant(RunStore):
    """The store as the sweeper sees it, limited to one tenant: other tests' runs share the table."""

    def __init__(self, inner: RunStore, tenant: str) -> None:
        super().__init__(inner.client, inner.table_name)
        self.tenant = tenant

    def active_page(self, partition: str, **kwargs: Any) -> ActivePage:
        page = super().active_page(partition, **kwargs)
        mine = [(k, p) for k, p in zip(page.keys, page.positions, strict=True) if k[0] == self.tenant]
        return ActivePage([k for k, _ in mine], page.next_key, page.read_units, [p for _, p in mine])


class StreamTail:
    """The records written to the table's stream from now on (every shard, oldest first)."""

    def __init__(self, stack: Any) -> None:
        import boto3

        self.streams = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        ).client("dynamodbstreams", endpoint_url=stack.endpoint)
        self.arn = stack.client().describe_table(TableName=stack.refs[TABLE])["Table"]["LatestStreamArn"]
        self.iterators = {
            shard["ShardId"]: self.streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            for shard in self.shards()
        }

    def shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        return shards

    def read(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for shard in self.shards():  # shards opened meanwhile are read from their start
            iterator = (
                self.iterators.get(shard["ShardId"])
                or self.streams.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records.extend(page["Records"])
                iterator = page.get("NextShardIterator") if page["Records"] else None
        return sorted(records, key=lambda r: r["dynamodb"]["SequenceNumber"])


def test_given_every_way_a_run_changes_when_the_stream_goes_through_the_pipe_then_one_event_per_interruption(
    stack, store, tenant
):
    # Given: the stream from now on
    tail = StreamTail(stack)
    # When: runs go through everything that can happen to them
    for run_id in ("by-api", "by-queue", "finished", "acknowledged", "stale"):
        runs.create_run(store, tenant, run_id, {})
    runs.create_run(store, tenant, "pending-cancelled", {})
    for run_id in ("by-api", "by-queue", "finished", "acknowledged", "stale"):
        runs.start_run(store, tenant, run_id)
        runs.heartbeat_run(store, tenant, run_id)
    cancel_run(store, tenant, "by-api", reason='user said "stop"')
    cancel_run(store, tenant, "by-api", reason="again")  # a repeat changes nothing
    cancel_run(store, tenant, "by-queue", reason="cleanup", source="sqs", idempotency_key="sqs:m-1")
    cancel_run(store, tenant, "pending-cancelled")  # no reason at all
    runs.complete_run(store, tenant, "finished", RunStatus.SUCCESS)
    cancel_run(store, tenant, "finished")  # 409: nothing written
    cancel_run(store, tenant, "acknowledged", reason="user")
    runs.acknowledge_stop(store, tenant, "acknowledged")  # interrupted -> interrupted
    # the sweeper, as if ten minutes had passed without a heartbeat from "stale"
    runs.acknowledge_stop(store, tenant, "by-api")
    future = clock.now() + timedelta(minutes=10)
    policy = SweepPolicy(heartbeat_timeout=timedelta(minutes=5), pending_timeout=timedelta(days=365))
    swept = sweep(OneTenant(store, tenant), policy, now=future)
    # Then
    mine = [r for r in tail.read() if r["dynamodb"]["Keys"]["tenant_id"]["S"] == tenant]
    events = emulate("InterruptedPipe", mine)
    assert {e.detail_type for e in events} == {"Run Interrupted"}
    assert {e.source for e in events} == {"runstop"}
    details = {e.detail["run_id"]: e.detail for e in events}
    assert len(events) == len(details), "one event per interrupted run"
    assert "stale" in {r.run_id for r in swept.stopped}
    expected_reasons = {
        "by-api": ('user said "stop"', "api"),
        "by-queue": ("cleanup", "sqs"),
        "pending-cancelled": ("", "api"),
        "acknowledged": ("user", "api"),
        "stale": ("heartbeat_timeout", "sweeper"),
    }
    assert {run_id: (d["reason"], d["source"]) for run_id, d in details.items()} == expected_reasons
    for run_id, detail in details.items():
        run = store.get(tenant, run_id)
        assert run is not None
        assert detail["tenant_id"] == tenant
        assert detail["interrupted_at"] == run["ended_at"]
    # and the stream did carry the other changes, which the filter dropped
    assert len(mine) > len(events) + 10
