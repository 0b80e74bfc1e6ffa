"""Domain exceptions. Handlers map each class to one HTTP answer; nothing matches on text."""


class RunstopError(Exception):
    """Base class for every error the domain raises on purpose."""


class RunNotFound(RunstopError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} not found")
        self.run_id = run_id


class RunAlreadyExists(RunstopError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} already exists")
        self.run_id = run_id


class TransitionConflict(RunstopError):
    """The run's current status does not allow the requested transition."""

    def __init__(self, run_id: str, action: str, run_status: str) -> None:
        super().__init__(f"cannot {action} run {run_id!r}: it is {run_status}")
        self.run_id = run_id
        self.action = action
        self.run_status = run_status


class StoreUnavailable(RunstopError):
    """DynamoDB throttled or was unreachable after the SDK's own retries.

    Nothing can be said about the write, so the caller must retry rather than guess.
    """

    retry_after_seconds = 1


class InvalidInput(RunstopError):
    """Input the domain rejects before any I/O (the HTTP layer answers 400)."""


class InvalidBody(InvalidInput):
    """A well-formed JSON body that breaks the contract (the HTTP layer answers 422)."""

    def __init__(self, detail: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class InvalidCursor(InvalidInput):
    def __init__(self) -> None:
        super().__init__("cursor is not a cursor of this listing; start again without it")


class Unauthorized(RunstopError):
    """No usable tenant claim on the request."""


class UnsupportedMediaType(RunstopError):
    """A body that is not declared as JSON."""


class IdempotencyKeyReused(RunstopError):
    """An Idempotency-Key sent again with a different request: which one was meant is unknowable."""


class RequestInProgress(RunstopError):
    """The first request with this Idempotency-Key is still running; retry to get its answer."""

    retry_after_seconds = 1
