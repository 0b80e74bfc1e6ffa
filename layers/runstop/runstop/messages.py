"""The contract of event-driven cancels: an SQS message body or an EventBridge detail.

Both carry the same `{tenant_id, run_id, reason?}`, validated as strictly as the HTTP API
validates its requests (same id pattern, same reason limit, unknown fields refused), so a
cancel means the same thing whichever door it comes through. Pydantic lives here, never on
the lean HTTP cancel path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from runstop.ids import RUN_ID_PATTERN
from runstop.models import Force, Reason

CANCEL_REQUESTED = "Run Cancel Requested"
"""detail-type of the EventBridge events the cancel-events rule matches."""

RUN_INTERRUPTED = "Run Interrupted"
"""detail-type of the stop notifications the table's stream becomes (template: InterruptedPipe)."""

Identifier = Annotated[str, Field(pattern=RUN_ID_PATTERN, examples=["run-2026-11-23.001"])]


class CancelMessage(BaseModel):
    """Please stop this run: the body of a CancelRequests message, or a Run Cancel Requested detail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: Identifier
    run_id: Identifier
    reason: Reason = None
    force: Force = False


class CancelRequestedEvent(EventBridgeModel):
    """A Run Cancel Requested event as EventBridge delivers it to the rule's target.

    The rule already matches on detail-type; checking it again keeps a direct invocation
    with some other event from being read as a cancel.
    """

    detail_type: Literal["Run Cancel Requested"] = Field(alias="detail-type")
    detail: CancelMessage


def validation_summary(error: Exception) -> str:
    """A short, log-safe account of why a message was refused (never the payload itself).

    Field names come from the input, so anything unprintable is replaced: the text also goes
    into an SQS message attribute, which refuses control characters.
    """
    errors = getattr(error, "errors", None)
    if callable(errors):
        parts = [f"{'.'.join(map(str, e.get('loc', ()))) or '<root>'}: {e.get('msg', '')}" for e in errors()]
        text = "; ".join(parts)
    else:
        text = str(error)
    return "".join(char if char.isprintable() else "?" for char in text[:1000])
