"""docs/client.md's Python examples run, on the local runner (its console blocks run in test_docs.py).

Every ```python block must carry a `<!-- python: NAME -->` marker naming it, so none escapes this
test. A block runs as written, with what it leaves to the reader (`process`, `work`) supplied here.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import pytest

from runstop_client import Client
from runstop_dev.template import REPO_ROOT
from tests.integration.client_support import runstop_env

pytestmark = pytest.mark.integration

DOC = REPO_ROOT / "docs" / "client.md"
BLOCK = re.compile(r"(?:<!-- (?P<marker>[^>]*) -->\n)?```python\n(?P<body>.*?)```", re.S)


@dataclass
class Block:
    marker: str
    body: str


def _blocks() -> list[Block]:
    return [Block(m["marker"] or "", m["body"]) for m in BLOCK.finditer(DOC.read_text())]


def _block(marker: str) -> Block:
    found = [block for block in _blocks() if block.marker == marker]
    assert len(found) == 1, f"docs/client.md has {len(found)} blocks marked {marker!r}"
    return found[0]


@pytest.fixture
def doc_env(api: Any, tenant: str) -> dict[str, str]:
    return runstop_env(api.url, tenant)


def test_every_python_example_in_the_document_is_run_here():
    assert [block.marker for block in _blocks()] == ["python: worker", "python: async-worker"]


def _worker_example(monkeypatch: pytest.MonkeyPatch, doc_env: dict[str, str], name: str) -> tuple[str, dict[str, Any]]:
    monkeypatch.setenv("RUNSTOP_URL", doc_env["RUNSTOP_URL"])
    monkeypatch.setenv("RUNSTOP_TENANT", doc_env["RUNSTOP_TENANT"])
    return _block(f"python: {name}").body, {"__name__": "docs_example"}


def test_the_worker_example_completes_its_run(monkeypatch, capsys, doc_env):
    code, namespace = _worker_example(monkeypatch, doc_env, "worker")
    namespace["process"] = lambda batch: None
    exec(compile(code, str(DOC), "exec"), namespace)
    run_id, status = capsys.readouterr().out.split()
    assert status == "success"
    with Client() as client:
        assert client.get(run_id).metadata == {"job": "nightly"}


def test_the_worker_example_stops_when_cancelled(monkeypatch, capsys, doc_env):
    # Given: another caller cancels the run at batch 3; the worker's next heartbeat is sent at once
    code, namespace = _worker_example(monkeypatch, doc_env, "worker")
    processed: list[int] = []

    def process(batch: int) -> None:
        processed.append(batch)
        if batch == 3:
            run = namespace["run"]
            with Client() as other:
                other.cancel(run.run_id, reason="user pressed Stop")
            run.heartbeat()

    namespace["process"] = process
    # When
    exec(compile(code, str(DOC), "exec"), namespace)
    # Then: check() stopped the loop at batch 4; the block acknowledged the stop
    run_id, status = capsys.readouterr().out.split()
    assert status == "interrupted"
    assert processed == [0, 1, 2, 3]
    with Client() as client:
        assert client.get(run_id).stopped_at is not None


def test_the_async_example_is_cancelled_at_its_await(monkeypatch, capsys, doc_env):
    code, namespace = _worker_example(monkeypatch, doc_env, "async-worker")

    async def work(run: Any) -> None:
        with Client() as other:
            await asyncio.get_running_loop().run_in_executor(None, lambda: other.cancel(run.run_id))
        await run.heartbeat()  # what the background heartbeat does within 10 s
        await asyncio.sleep(600)

    namespace["work"] = work
    exec(compile(code, str(DOC), "exec"), namespace)
    run_id, outcome = capsys.readouterr().out.split()
    assert outcome == "cancelled"
    with Client() as client:
        stored = client.get(run_id)
    assert stored.status == "interrupted"
    assert stored.stopped_at is not None
