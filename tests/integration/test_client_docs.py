"""docs/client.md runs: its Python examples and its two-terminal console session, on the local runner.

Every ```console and ```python block must carry a marker comment saying how it is run, so none
escapes this test. A console block is a transcript: `$ ` lines are commands, the lines after each
are its output (stdout and stderr together). Ids, process groups and times differ from run to run:
an id in the document is bound to the id the first output shows in its place and substituted into
later commands; times, process groups and worker ids match any value. The document's lines must appear
in order in the real output, which may hold more (fields a later service version adds).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runstop_client import Client
from runstop_dev.template import REPO_ROOT
from tests.integration.client_support import PROCESS_TIMEOUT, eventually, runstop_env

pytestmark = pytest.mark.integration

DOC = REPO_ROOT / "docs" / "client.md"
BLOCK = re.compile(r"(?:<!-- (?P<marker>[^>]*) -->\n)?```(?P<lang>console|python)\n(?P<body>.*?)```", re.S)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
GROUP = re.compile(r"process group \d+")
WORKER = re.compile(r"worker_id {7}\S+")
"""host:pid of whoever ran the example."""


@dataclass
class Block:
    marker: str
    lang: str
    body: str


def _blocks() -> list[Block]:
    return [Block(m["marker"] or "", m["lang"], m["body"]) for m in BLOCK.finditer(DOC.read_text())]


def _block(marker: str) -> Block:
    found = [block for block in _blocks() if block.marker == marker]
    assert len(found) == 1, f"docs/client.md has {len(found)} blocks marked {marker!r}"
    return found[0]


def _transcript(body: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


class Bindings:
    """Document ids -> real ids, learnt from outputs in the order they are checked."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def command(self, text: str) -> str:
        return UUID.sub(lambda m: self.ids.get(m.group(0), m.group(0)), text)

    def _pattern(self, expected: str) -> tuple[re.Pattern[str], list[str]]:
        names: list[str] = []
        parts: list[str] = []
        position = 0
        tokens = re.compile(f"{UUID.pattern}|{TIME.pattern}|{GROUP.pattern}|{WORKER.pattern}")
        for found in tokens.finditer(expected):
            parts.append(re.escape(expected[position : found.start()]))
            token = found.group(0)
            if UUID.fullmatch(token):
                if token in self.ids:
                    parts.append(re.escape(self.ids[token]))
                else:
                    names.append(token)
                    parts.append(f"({UUID.pattern})")
            elif TIME.fullmatch(token):
                parts.append(TIME.pattern)
            elif WORKER.fullmatch(token):
                parts.append(WORKER.pattern)
            else:
                parts.append(GROUP.pattern)
            position = found.end()
        parts.append(re.escape(expected[position:]))
        return re.compile(re.sub(r"(\\ )+", r"\\s+", "".join(parts))), names

    def match(self, expected: list[str], actual: str) -> None:
        """Each expected line matches a later actual line than the previous one did."""
        lines = actual.splitlines()
        at = 0
        for line in expected:
            pattern, names = self._pattern(line)
            while at < len(lines) and not (found := pattern.fullmatch(lines[at].rstrip())):
                at += 1
            assert at < len(lines), f"{line!r} not found in order in:\n{actual}"
            self.ids.update(zip(names, found.groups(), strict=True))
            at += 1


def _shell(command: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-c", command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    return done.stdout


@pytest.fixture
def doc_env(api: Any, tenant: str) -> dict[str, str]:
    env = runstop_env(api.url, tenant)
    env.pop("RUNSTOP_DEADLINE")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_every_example_in_the_document_is_run_here():
    markers = {block.marker for block in _blocks()}
    assert all(block.marker for block in _blocks()), "a code block in docs/client.md has no run marker"
    assert markers == {"python: worker", "python: async-worker", "terminal 1, in the background", "terminal 2"}


def test_runstop_run_cancelled_from_a_second_terminal(doc_env):
    # Terminal 1: `runstop run -- sleep 600`, then `echo $?`, as one shell session in the background
    first = _transcript(_block("terminal 1, in the background").body)
    script = "\n".join(command for command, _ in first)
    background = subprocess.Popen(
        ["bash", "-c", script],
        env=doc_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(background.stdout or []), daemon=True)
    reader.start()
    try:
        with Client(doc_env["RUNSTOP_URL"], tenant=doc_env["RUNSTOP_TENANT"]) as client:
            eventually(lambda: list(client.list(status="running")))
        # Terminal 2, command by command
        bindings = Bindings()
        for command, expected in _transcript(_block("terminal 2").body):
            bindings.match(expected, _shell(bindings.command(command), doc_env))
        background.wait(PROCESS_TIMEOUT)
        reader.join(PROCESS_TIMEOUT)
    finally:
        if background.poll() is None:
            os.killpg(background.pid, 9)
    bindings.match([line for _, lines in first for line in lines], "".join(output))


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


def test_the_transcript_matcher_binds_ids_and_rejects_other_output():
    doc_id, real_id = "79a4f3c1-4c66-5f12-b239-6929aaf604b4", "0b7e1a52-9c1f-5d0e-8a43-2f5d2c7b9e10"
    bindings = Bindings()
    bindings.match(
        [f"{doc_id}  running      -   2026-11-30T07:00:26Z"], f"HEADER\n{real_id}  running  -  2026-01-01T00:00:00Z"
    )
    assert bindings.command(f"runstop cancel {doc_id}") == f"runstop cancel {real_id}"
    with pytest.raises(AssertionError):
        bindings.match([f"{doc_id}  interrupted"], f"{real_id}  already_interrupted")
    with pytest.raises(AssertionError):
        bindings.match(["b", "a"], "a\nb")
