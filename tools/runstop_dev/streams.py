"""The template's stream pipes into queues, and those queues' Lambda consumers, run locally.

For every AWS::Pipes::Pipe whose source is a table's stream and whose target is one of the
template's queues, a thread tails DynamoDB Local's stream of that table, applies the pipe's own
filter and input template (runstop_dev.pipes), and puts the messages on an in-process stand-in
of the queue. The queue hands them, in batches of the event source's BatchSize, to the function
the template subscribes to it, in worker processes of its own (runstop_dev.local_api's pools),
as SQS events; the records a batch reports failed (ReportBatchItemFailures) come back after a
short visibility timeout, and after the queue's maxReceiveCount they are dead-lettered (kept
in `dead_letters` and logged). As deployed: at least once, retried, dead-lettered.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from runstop_dev.pipes import emulate
from runstop_dev.stack import CREDENTIALS, REGION
from runstop_dev.template import load_template, resource

log = logging.getLogger("runstop.local.streams")

POLL_SECONDS = 0.05
"""Pause between reads of a stream that had nothing new (DynamoDB Local answers in ~1 ms)."""
REDELIVERY_SECONDS = 1.0
"""The local visibility timeout: a failed record comes back this much later (deployed: minutes)."""

STOP_SECONDS = 3.0
"""How long stopping waits for the pipes' threads. They are daemons: one still inside botocore's
retries (DynamoDB Local gone first, as Ctrl-C stops the whole process group) dies with the runner."""


@dataclass(frozen=True)
class StreamRoute:
    """A pipe from a table's stream into a queue, and the function the queue feeds."""

    pipe_id: str
    table_id: str
    queue_id: str
    function_id: str
    batch_size: int
    max_receives: int


def _get_att(value: Any, attribute: str) -> str | None:
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        logical_id, name = target if isinstance(target, list) else target.split(".", 1)
        return str(logical_id) if name == attribute else None
    return None


def stream_routes() -> list[StreamRoute]:
    """Every stream -> pipe -> queue -> function route of the template."""
    resources = load_template()["Resources"]
    consumers: dict[str, tuple[str, int]] = {}
    for rid, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for event in (res["Properties"].get("Events") or {}).values():
            queue = _get_att(event["Properties"].get("Queue"), "Arn") if event["Type"] == "SQS" else None
            if queue is not None:
                consumers[queue] = (rid, int(event["Properties"].get("BatchSize", 10)))
    routes = []
    for rid, res in resources.items():
        if res["Type"] != "AWS::Pipes::Pipe":
            continue
        table = _get_att(res["Properties"]["Source"], "StreamArn")
        queue = _get_att(res["Properties"]["Target"], "Arn")
        if table is None or queue is None or queue not in consumers:
            continue
        redrive = resource(queue)["Properties"].get("RedrivePolicy") or {}
        function_id, batch_size = consumers[queue]
        routes.append(StreamRoute(rid, table, queue, function_id, batch_size, int(redrive.get("maxReceiveCount", 3))))
    return routes


class StreamTail:
    """New records of a table's stream, every shard, from the moment it is made."""

    def __init__(self, endpoint: str, table_name: str) -> None:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        config = Config(retries={"mode": "standard", "max_attempts": 5})
        self.streams = session.client("dynamodbstreams", endpoint_url=endpoint, config=config)
        self.dynamodb = session.client("dynamodb", endpoint_url=endpoint, config=config)
        self.table_name = table_name
        self.checked = time.monotonic()
        self._follow(str(self.dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]), "LATEST")

    def _follow(self, arn: str, position: str) -> None:
        self.arn = arn
        self.iterators: dict[str, str | None] = {}
        self.last: dict[str, str] = {}
        """Per shard, the sequence number of the last record read (to resume an iterator that expired)."""
        self.known: set[str] = set()
        self._refresh(position)

    def recheck(self, every: float = 1.0) -> None:
        """Follow the table's new stream if the table was made again (the docs test does, per file):
        everything in a new table's stream is new."""
        if time.monotonic() - self.checked < every:
            return
        self.checked = time.monotonic()
        arn = str(self.dynamodb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"])
        if arn != self.arn:
            self._follow(arn, "TRIM_HORIZON")

    def _refresh(self, position: str) -> None:
        """Start reading shards not seen before: the open ones at `position`, later ones from their start."""
        for shard in self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id in self.known:
                continue
            self.known.add(shard_id)
            if position == "LATEST" and "EndingSequenceNumber" in shard.get("SequenceNumberRange", {}):
                continue  # closed before we started: nothing of ours in it
            self.iterators[shard_id] = self.streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard_id, ShardIteratorType=position
            )["ShardIterator"]

    def _resumed(self, shard_id: str) -> str:
        """A new iterator right after the last record read (DynamoDB Local lets idle iterators lapse)."""
        last = self.last.get(shard_id)
        where: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last}
            if last
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator: str = self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, **where)["ShardIterator"]
        return iterator

    def read(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        lapsed = (self.streams.exceptions.TrimmedDataAccessException, self.streams.exceptions.ExpiredIteratorException)
        for shard_id, iterator in list(self.iterators.items()):
            while iterator:
                try:
                    page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                except lapsed:
                    iterator = self._resumed(shard_id)
                    continue
                records.extend(page["Records"])
                if page["Records"]:
                    self.last[shard_id] = page["Records"][-1]["dynamodb"]["SequenceNumber"]
                iterator = page.get("NextShardIterator")
                if not page["Records"]:
                    break
            if iterator is None:  # the shard closed: its children are new shards
                del self.iterators[shard_id]
                self._refresh("TRIM_HORIZON")
            else:
                self.iterators[shard_id] = iterator
        return records


@dataclass
class Message:
    body: str
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    receives: int = 0
    sent_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    visible_at: float = 0.0


def sqs_event(messages: list[Message], queue_id: str) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping delivers it."""
    return {
        "Records": [
            {
                "messageId": m.message_id,
                "receiptHandle": f"local-{m.message_id}-{m.receives}",
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": str(m.receives),
                    "SentTimestamp": str(m.sent_ms),
                    "SenderId": "runstop-local",
                    "ApproximateFirstReceiveTimestamp": str(m.sent_ms),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(m.body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{queue_id}",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class LocalQueue:
    """An in-process queue with SQS's delivery rules (see the module doc), feeding `submit`."""

    def __init__(
        self,
        route: StreamRoute,
        submit: Callable[[dict[str, Any]], Future[Any]],
        concurrency: int,
        redelivery_seconds: float = REDELIVERY_SECONDS,
    ) -> None:
        self.route = route
        self.submit = submit
        self.redelivery_seconds = redelivery_seconds
        self.ready: deque[Message] = deque()
        self.later: list[Message] = []
        self.dead_letters: list[Message] = []
        self.in_flight = 0
        self.slots = threading.Semaphore(concurrency)
        self.changed = threading.Condition()
        self.stopping = False
        self.delivered = 0

    def send(self, bodies: list[str]) -> None:
        with self.changed:
            self.ready.extend(Message(body) for body in bodies)
            self.changed.notify_all()

    def idle(self) -> bool:
        with self.changed:
            return not self.ready and not self.later and self.in_flight == 0

    def _batch(self) -> list[Message] | None:
        with self.changed:
            while not self.stopping:
                now = time.monotonic()
                due = [m for m in self.later if m.visible_at <= now]
                if due:
                    self.later = [m for m in self.later if m.visible_at > now]
                    self.ready.extend(due)
                if self.ready:
                    batch = [self.ready.popleft() for _ in range(min(self.route.batch_size, len(self.ready)))]
                    self.in_flight += 1
                    return batch
                self.changed.wait(timeout=POLL_SECONDS)
            return None

    def run(self) -> None:
        while True:
            self.slots.acquire()
            batch = self._batch()
            if batch is None:
                self.slots.release()
                return
            for message in batch:
                message.receives += 1
            try:
                future = self.submit(sqs_event(batch, self.route.queue_id))
            except RuntimeError:  # the pool shut down under us
                self.slots.release()
                return
            future.add_done_callback(functools.partial(self._settle, batch))

    def _settle(self, batch: list[Message], done: Future[Any]) -> None:
        try:
            result = done.result()
            failed_ids = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception as error:  # a crashed invocation: every record of it comes back
            log.warning("%s: invocation failed (%s); its batch comes back", self.route.function_id, error)
            failed_ids = {m.message_id for m in batch}
        with self.changed:
            for message in batch:
                if message.message_id not in failed_ids:
                    self.delivered += 1
                elif message.receives >= self.route.max_receives:
                    self.dead_letters.append(message)
                    log.error(
                        "%s: dead-lettered after %d receives: %s", self.route.queue_id, message.receives, message.body
                    )
                else:
                    message.visible_at = time.monotonic() + self.redelivery_seconds
                    self.later.append(message)
            self.in_flight -= 1
            self.changed.notify_all()
        self.slots.release()

    def stop(self) -> None:
        with self.changed:
            self.stopping = True
            self.changed.notify_all()


class StreamPipe:
    """One route: a thread tailing the table's stream into the queue, one feeding the function."""

    def __init__(
        self, route: StreamRoute, endpoint: str, table_name: str, queue: LocalQueue, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.route = route
        self.tail = StreamTail(endpoint, table_name)
        self.queue = queue
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()
        self.records = 0
        self.threads = [
            threading.Thread(target=self._pump, name=f"pipe-{route.pipe_id}", daemon=True),
            threading.Thread(target=queue.run, name=f"queue-{route.queue_id}", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _pump(self) -> None:
        while not self.stopping.is_set():
            try:
                records = self.tail.read()
                if not records:
                    self.tail.recheck()
            except Exception as error:  # DynamoDB Local stopping, a table made again, a hiccup: retry
                if self.stopping.is_set():
                    return
                log.debug("%s: reading the stream failed: %s", self.route.pipe_id, error)
                records = []
                self.stopping.wait(self.poll_seconds * 10)
                with contextlib.suppress(Exception):
                    self.tail.recheck(every=0)
            if records:
                self.records += len(records)
                events = emulate(self.route.pipe_id, records)
                self.queue.send([json.dumps(e.detail) if not isinstance(e.detail, str) else e.detail for e in events])
            else:
                self.stopping.wait(self.poll_seconds)


def stop_stream_pipes(pipes: Sequence[StreamPipe], timeout: float = STOP_SECONDS) -> None:
    """Tell every pipe to stop at once, then wait for their threads together, `timeout` at most."""
    for pipe in pipes:
        pipe.stopping.set()
        pipe.queue.stop()
    deadline = time.monotonic() + timeout
    for thread in (thread for pipe in pipes for thread in pipe.threads):
        thread.join(timeout=max(0.0, deadline - time.monotonic()))


Submit = Callable[[dict[str, Any]], Future[Any]]


def start_stream_pipes(
    endpoint: str, refs: dict[str, str], submit_for: Callable[[str], tuple[Submit, int]]
) -> list[StreamPipe]:
    """Start every stream route of the template; `submit_for(function_id)` gives the function's
    submit and how many invocations may run at once."""
    pipes = []
    for route in stream_routes():
        submit, concurrency = submit_for(route.function_id)
        pipe = StreamPipe(route, endpoint, refs[route.table_id], LocalQueue(route, submit, concurrency))
        pipe.start()
        pipes.append(pipe)
    return pipes
