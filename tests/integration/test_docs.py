"""Every console example of the docs runs, and prints what the docs say it prints.

The rule, in short (in full in `tests/docs_examples.py`): only ```console blocks run, ```bash
blocks never do (put deploy and aws CLI commands there). A console block is `$ command` lines,
each followed by the output it shows. Each file runs in one bash session, in order, on empty
tables, against the session's DynamoDB Local and local runner (what `make run` serves), with
`http://127.0.0.1:3000` and `http://127.0.0.1:8000` rewritten to them; `make sweep` and
`make invoke` run for real, pointed at that DynamoDB Local by `DYNAMODB_ENDPOINT`. A block
right after `<!-- runner: jwt -->` talks to the runner in JWT mode (`RUNSTOP_AUTH=jwt make run`).
docs/client.md is left to its own test (OWN_TEST).
A shown status code, header, JSON field or line that differs from what the command really prints
on stdout fails the test, and so does a command that exits non-zero;
timestamps and UUIDs match any timestamp and UUID, `...` matches anything.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runstop_dev.ddb_local import ensure_tables
from runstop_dev.jwt_auth import LocalIssuer
from runstop_dev.local_api import LocalApi
from runstop_dev.stack import LocalStack
from runstop_dev.template import REPO_ROOT
from tests.docs_examples import Example, console_examples, differences, local

pytestmark = pytest.mark.integration

OWN_TEST = {REPO_ROOT / "docs" / "client.md": "tests/integration/test_client_docs.py (a two-terminal session)"}
"""Files whose examples another test runs, and which one."""
DOCS = [
    path
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "bench" / "README.md"]
    if path not in OWN_TEST
]
JWT_RUNNER = "runner: jwt"
"""The marker of a block for `RUNSTOP_AUTH=jwt make run`."""
COMMAND_TIMEOUT = 120.0
"""Generous: a command takes a second or two (an invoke imports moto), but the machine is shared."""

SHELL_SETUP = "set -o pipefail"
"""As in the Makefile: a pipeline fails when any part of it does."""


class Shell:
    """One bash session for one doc file: commands run in order and share shell state."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.workdir = workdir
        self.count = 0
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.send(SHELL_SETUP)

    def send(self, script: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(script + "\n")
        self.process.stdin.flush()

    def run(self, command: str) -> tuple[int, str, str]:
        """Run one command; its exit code, stdout and stderr."""
        # Files of its own per command: a job it leaves in the background keeps writing to them.
        self.count += 1
        out, err = self.workdir / f"{self.count}.out", self.workdir / f"{self.count}.err"
        marker = f"__docs_done_{uuid.uuid4().hex}"
        redirect = f">{shlex.quote(str(out))} 2>{shlex.quote(str(err))} </dev/null"
        self.send(f"{{\n{command}\n}} {redirect}; echo {marker} $?")
        code = self._exit_code(marker)
        return code, out.read_text(), err.read_text()

    def _exit_code(self, marker: str) -> int:
        """The exit code bash echoes after the marker (raw reads: a buffered reader hides lines from select)."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        seen = b""
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"the bash session ended: {seen.decode(errors='replace')}")
            seen += chunk
            done = re.search(rf"{marker} (\d+)\n", seen.decode(errors="replace"))
            if done:
                return int(done[1])
        raise AssertionError(f"no answer within {COMMAND_TIMEOUT:g}s")

    def close(self) -> None:
        """Ends the session and whatever it left in the background (its process group only)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=10)


def fresh_tables(stack: LocalStack) -> None:
    """Every template table dropped and made again: each doc file starts on empty tables."""
    client = stack.client()
    existing = set(client.list_tables()["TableNames"])
    for name in stack.refs.values():
        if name in existing:
            client.delete_table(TableName=name)
            client.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    ensure_tables(client, stack.refs)


def shell_env(stack: LocalStack) -> dict[str, str]:
    """A developer's terminal: no AWS credentials (the examples must not need any), and not inside
    `make test`: no make variables (a nested make prints "Entering directory" lines) and no
    virtualenv on PATH (the Makefile's `python3 -m uv` is the system Python's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAKE", "MFLAGS")) and k != "TABLE_NAME"}
    venv = env.pop("VIRTUAL_ENV", None)
    venv_bin = {str(Path(sys.prefix) / "bin"), *([str(Path(venv) / "bin")] if venv else [])}
    path = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p.rstrip("/") not in venv_bin)
    return {
        **env,
        "PATH": path,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "DYNAMODB_ENDPOINT": stack.endpoint,
        "DDB_PORT": stack.endpoint.rsplit(":", 1)[-1],
    }


@pytest.fixture
def shell(stack: LocalStack, tmp_path: Path) -> Iterator[Shell]:
    fresh_tables(stack)
    session = Shell(shell_env(stack), tmp_path)
    try:
        yield session
    finally:
        session.close()


def report(example: Example, problems: list[str], printed: str, errors: str) -> str:
    return "\n".join(
        [
            f"{example.where}: $ {example.command}",
            *(f"  - {problem}" for problem in problems),
            "  printed:",
            *(f"    {line}" for line in printed.splitlines()),
            *(["  stderr (last lines):", *(f"    {line}" for line in errors.splitlines()[-8:])] if errors else []),
        ]
    )


@pytest.fixture(scope="module")
def jwt_runner(stack: LocalStack) -> Iterator[LocalApi]:
    """`RUNSTOP_AUTH=jwt make run`: the local issuer's own key in .local/jwt, which the
    documented `python -m runstop_dev token` signs with (made on first use, as the runner does)."""
    with LocalApi(stack.refs, stack.env, port=0, workers=1, quiet=True, issuer=LocalIssuer()) as served:
        served.warm()
        yield served


def runner_for(example: Example, request: pytest.FixtureRequest) -> LocalApi:
    """The session's runner (`make run`), or the JWT-mode one for a block marked so."""
    if example.marker == JWT_RUNNER:
        runner: LocalApi = request.getfixturevalue("jwt_runner")
        return runner
    assert not example.marker, f"{example.where}: unknown marker <!-- {example.marker} --> (only {JWT_RUNNER!r})"
    api: LocalApi = request.getfixturevalue("api")
    return api


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(REPO_ROOT)) for p in DOCS])
def test_every_console_example_prints_what_the_docs_show(
    doc: Path, stack: LocalStack, shell: Shell, request: pytest.FixtureRequest
):
    # Given: the file's examples, in order, on empty tables
    examples = console_examples(doc)
    failures: list[str] = []
    for example in examples:
        # When: the command runs against the local runner
        url = runner_for(example, request).url
        code, printed, errors = shell.run(local(example.command, url, stack.endpoint))
        # Then: it succeeds and prints what the docs show
        problems = [] if code == 0 else [f"exit code {code}"]
        problems += differences(local(example.shown, url, stack.endpoint), printed)
        if problems:
            failures.append(report(example, problems, printed, errors))
    assert not failures, f"{len(failures)} of {len(examples)} examples differ from the docs:\n\n" + "\n\n".join(
        failures
    )
