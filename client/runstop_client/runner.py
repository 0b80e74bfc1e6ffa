"""`runstop run -- CMD ARGS...`: any command as a run, stopped for real when the run is cancelled.

CMD runs in a process group of its own while a worker heartbeats. A refused heartbeat (the run
was interrupted) sends SIGTERM to the whole group and, if anything in it is still alive at the
run's stop_deadline (or now + the stop grace when the service gives none), SIGKILL; the stop is
acknowledged only once the group is empty, and the command exits 130. When CMD ends by itself
the run is completed (`success` for exit 0, else `error`) and runstop exits with CMD's code.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import FrameType
from typing import TYPE_CHECKING, Any

from runstop_client.client import DEFAULT_HEARTBEAT_INTERVAL
from runstop_client.errors import InvalidRequest, RunCancelled, RunConflict, RunNotFound, RunstopError
from runstop_client.models import Run
from runstop_client.worker import Worker

if TYPE_CHECKING:
    from runstop_client.client import Client

EXIT_CANCELLED = 130
"""What a shell reports for a command stopped by Ctrl-C: the run was cancelled."""
DEFAULT_STOP_GRACE = 60.0
"""Seconds between SIGTERM and SIGKILL when the service gives no stop_deadline (its own default)."""
LEFTOVER_GRACE = 10.0
"""At most this long for processes CMD left behind in its group when it exited by itself."""
KILL_WAIT = 10.0
"""How long SIGKILL may take to empty the group before runstop gives up waiting (never seen)."""
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
"""Signals sent to runstop itself (Ctrl-C, `docker stop`) are passed on to CMD's group."""
POLL = 0.01
"""Seconds between checks that the group is empty (a check is one kill(2) call)."""


@dataclass(frozen=True)
class Options:
    run_id: str | None = None
    worker_id: str | None = None
    stop_grace: int | None = None
    """Sent as the new run's stop_grace_seconds, and the local SIGKILL delay when the service gives no deadline."""
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    quiet: bool = False


def _new_group() -> dict[str, Any]:
    """Popen arguments for a process group of its own (process_group exists from Python 3.11)."""
    if sys.version_info >= (3, 11):
        return {"process_group": 0}
    return {"preexec_fn": os.setpgrp}


def exit_code(returncode: int) -> int:
    """A shell's convention: 128 + N for a command killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """On Linux, make CMD's orphaned descendants runstop's children instead of init's.

    A killed process's children become zombies until their new parent reaps them; under an init
    that reaps slowly (measured: over 1 s in a microVM) they kept the group "alive" after SIGKILL.
    As their subreaper, runstop reaps them itself the moment it looks (waitpid on the group).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class ProcessGroup:
    """CMD and everything it starts in its group; `alive` is true while any of them exists."""

    def __init__(self, argv: Sequence[str]) -> None:
        become_subreaper()
        self.process = subprocess.Popen(list(argv), **_new_group())
        self.pgid = self.process.pid

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)

    def alive(self) -> bool:
        if self.process.poll() is None:
            return True
        self._reap_others()
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _reap_others(self) -> None:
        """Reap members that became our children (runstop is their subreaper, or PID 1), which
        would otherwise linger as zombies in the group. Only after Popen reaped CMD itself, so
        CMD's exit status is never taken from it."""
        while True:
            try:
                pid, _ = os.waitpid(-self.pgid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def wait_gone(self, until: float, clock: Callable[[], float] = time.monotonic) -> bool:
        """Wait until the group is empty or the monotonic time `until`; whether it is empty."""
        while self.alive():
            if clock() >= until:
                return False
            time.sleep(POLL)
        return True

    def stop(self, until: float, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        """SIGTERM now, SIGKILL at `until` if anything is left; returns once the group is empty."""
        self.signal(signal.SIGTERM)
        if self.wait_gone(until, clock):
            return
        say(f"process group {self.pgid} still alive at the stop deadline: SIGKILL")
        self.signal(signal.SIGKILL)
        if not self.wait_gone(clock() + KILL_WAIT, clock):
            say(f"process group {self.pgid} survived SIGKILL for {KILL_WAIT:.0f}s")


class CommandRun:
    """One `runstop run`: the run, the process group, and the decision at the end."""

    def __init__(
        self,
        client: Client,
        argv: Sequence[str],
        options: Options,
        *,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.client = client
        self.argv = list(argv)
        self.options = options
        self._say = say or (lambda message: print(f"runstop: {message}", file=sys.stderr, flush=True))
        self._clock = clock
        self._now = now
        self._wake = threading.Event()
        self.worker = Worker(
            client,
            options.run_id,
            worker_id=options.worker_id,
            heartbeat_interval=options.heartbeat_interval,
            on_cancel=lambda _: self._wake.set(),
        )

    def say(self, message: str) -> None:
        if not self.options.quiet:
            self._say(message)

    def __call__(self) -> int:
        """Run it; the exit code (CMD's, or 130 once cancelled). Service errors raise RunstopError."""
        worker = self.worker
        if not worker.run_id:
            worker.run_id = self._create(None).run_id
        try:
            self._start()
        except RunCancelled as cancelled:
            worker.acknowledge()
            self.say(f"run {worker.run_id} was cancelled before it started ({_why(cancelled)})")
            return EXIT_CANCELLED
        # Handlers first: a signal that arrives while CMD is being started is passed on, not lost.
        with _ForwardedSignals() as forwarded:
            try:
                group = ProcessGroup(self.argv)
            except OSError as error:
                self.say(f"run {worker.run_id} cannot start {self.argv[0]!r}: {error.strerror}")
                worker.complete("error")
                return 127 if isinstance(error, FileNotFoundError) else 126
            forwarded.to(group)
            self.say(f"run {worker.run_id} started: {self.argv[0]} is process group {group.pgid}")
            threading.Thread(target=self._wait_exit, args=(group,), name="runstop-cmd", daemon=True).start()
            worker.start_heartbeats()
            self._wake.wait()
            if worker.cancelled.is_set():
                return self._stopped(group)
            worker.stop_heartbeats()
            return self._exited(group)

    def _start(self) -> None:
        """Start the run; one given by --run-id that does not exist yet is created with that id
        first (a cron line can name its run), and one created meanwhile by someone else is adopted."""
        try:
            self.worker.start()
        except RunNotFound:
            if self.options.run_id is None:
                raise
            with contextlib.suppress(RunConflict):  # created in between: adopt it
                self._create(self.options.run_id)
            self.worker.start()

    def _create(self, run_id: str | None) -> Run:
        """A new run with the stop grace; a service without stop deadlines refuses the field (422),
        and then the grace is runstop's own (SIGKILL at now + grace once the cancel is seen)."""
        grace = self.options.stop_grace
        try:
            return self.client.create(run_id, stop_grace_seconds=grace)
        except InvalidRequest as error:
            if grace is None or not _field_unknown(error, "stop_grace_seconds"):
                raise
        self.say("the service takes no stop_grace_seconds yet: --stop-grace applies from when the cancel is seen")
        return self.client.create(run_id)

    def _wait_exit(self, group: ProcessGroup) -> None:
        group.process.wait()
        self._wake.set()

    def _stop_at(self) -> tuple[float, datetime]:
        """When to SIGKILL, as a monotonic time and as the wall-clock deadline it stands for:
        the run's stop_deadline, else now + the stop grace."""
        now = self._now()
        deadline = self.worker.stop_deadline
        if deadline is None:
            deadline = now + timedelta(seconds=self.options.stop_grace or DEFAULT_STOP_GRACE)
        return self._clock() + max(0.0, (deadline - now).total_seconds()), deadline

    def _stopped(self, group: ProcessGroup) -> int:
        """The run was interrupted (or taken away): empty the group, then acknowledge the stop."""
        until, deadline = self._stop_at()
        why = _why(RunCancelled(self.worker.run_id, self.worker.cancel, self.worker.stopped_status))
        at = deadline.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.say(f"run {self.worker.run_id} {why}; SIGTERM to process group {group.pgid}, SIGKILL at {at}")
        group.stop(until, self.say, self._clock)
        try:
            acknowledged = self.worker.acknowledge()
        except RunstopError as error:
            self.say(f"stopped, but the stop could not be acknowledged: {error}")
        else:
            if acknowledged is not None:
                self.say(f"run {self.worker.run_id}: stop acknowledged")
        return EXIT_CANCELLED

    def _exited(self, group: ProcessGroup) -> int:
        """CMD ended by itself: nothing of it may outlive the run, then complete with its code."""
        code = exit_code(group.process.returncode)
        if group.alive():
            grace = min(self.options.stop_grace or DEFAULT_STOP_GRACE, LEFTOVER_GRACE)
            self.say(f"{self.argv[0]} exited {code} leaving processes in group {group.pgid}: stopping them")
            group.stop(self._clock() + grace, self.say, self._clock)
        status = "success" if code == 0 else "error"
        try:
            self.worker.complete(status)
        except RunCancelled:  # the cancel reached the service before the completion: it won
            self.worker.acknowledge()
            self.say(f"run {self.worker.run_id} was cancelled as {self.argv[0]} exited {code}; stop acknowledged")
            return EXIT_CANCELLED
        self.say(f"run {self.worker.run_id} {status} ({self.argv[0]} exited {code})")
        return code


def _field_unknown(error: InvalidRequest, name: str) -> bool:
    """Whether a 422 refused the body only because the service does not know field `name`."""
    return any(
        isinstance(item, dict) and item.get("type") == "extra_forbidden" and list(item.get("loc", []))[-1:] == [name]
        for item in error.errors
    )


def _why(cancelled: RunCancelled) -> str:
    cancel = cancelled.cancel
    if cancelled.run_status not in (None, "interrupted"):
        return f"is {cancelled.run_status}"
    if cancel is None:
        return "was cancelled"
    return f"was cancelled by {cancel.source or 'someone'}" + (f": {cancel.reason}" if cancel.reason else "")


class _ForwardedSignals:
    """While CMD runs, a signal to runstop goes to CMD's group; CMD decides what it means.

    Signals that arrive before the group exists are kept and passed on as soon as it does.
    """

    def __init__(self) -> None:
        self.group: ProcessGroup | None = None
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        if self.group is None:
            self.pending.append(signum)
        else:
            self.group.signal(signum)

    def to(self, group: ProcessGroup) -> None:
        self.group = group
        for signum in self.pending:
            group.signal(signum)

    def __enter__(self) -> _ForwardedSignals:
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            for signum in FORWARDED:
                self.previous[signum] = signal.signal(signum, self._forward)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
