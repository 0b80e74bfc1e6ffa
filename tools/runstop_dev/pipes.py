"""A local stand-in for an EventBridge Pipe of the template: its filter and its input template.

Both are read from template.yaml (never copied), so a test or `runstop_dev invoke
InterruptedPipe -e ...` checks the very pattern and template that get deployed. The filter
is evaluated with moto's EventBridge pattern matcher (the pattern language Pipes uses).

The input template is rendered as Pipes documents it: `<$.path>` placeholders in dot
notation; a placeholder inside quotes takes the value as JSON string content, one outside
quotes takes it as JSON. A path that is absent renders as an empty string inside quotes and
as null outside; that is this emulator's choice, and consumers of the events treat an empty
field as absent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from runstop_dev.template import resource

_PLACEHOLDER = re.compile(r'"<\$\.([A-Za-z0-9_.\-/\[\]]+)>"|<\$\.([A-Za-z0-9_.\-/\[\]]+)>')
_MISSING = object()


@dataclass(frozen=True)
class PipeEvent:
    """What the pipe puts on its event bus for one source record."""

    source: str
    detail_type: str
    detail: Any


def filter_patterns(logical_id: str) -> list[dict[str, Any]]:
    """The pipe's FilterCriteria patterns (a record passes if any of them matches)."""
    props = resource(logical_id)["Properties"]
    filters = props.get("SourceParameters", {}).get("FilterCriteria", {}).get("Filters", [])
    return [json.loads(f["Pattern"]) for f in filters]


def input_template(logical_id: str) -> str | None:
    template: str | None = resource(logical_id)["Properties"].get("TargetParameters", {}).get("InputTemplate")
    return template


def matches(record: dict[str, Any], patterns: list[dict[str, Any]]) -> bool:
    from moto.events.models import EventPattern

    matcher: Any = EventPattern
    plain = json.loads(json.dumps(record, default=str))  # records read with boto3 carry datetimes
    return not patterns or any(matcher(None, pattern).matches_event(plain) for pattern in patterns)


def _lookup(document: Any, path: str) -> Any:
    node = document
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return _MISSING
            node = node[index]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def render(template: str, record: dict[str, Any]) -> Any:
    """The target input for `record`: the template with its placeholders filled, as JSON."""

    def fill(match: re.Match[str]) -> str:
        quoted, bare = match.group(1), match.group(2)
        value = _lookup(record, quoted or bare)
        if quoted is not None:
            text = "" if value is _MISSING or value is None else value if isinstance(value, str) else json.dumps(value)
            return json.dumps(text)
        return "null" if value is _MISSING else json.dumps(value)

    rendered = _PLACEHOLDER.sub(fill, template)
    try:
        return json.loads(rendered)
    except ValueError:
        return rendered


def emulate(logical_id: str, records: list[dict[str, Any]]) -> list[PipeEvent]:
    """The events the pipe would put on its bus for these source records, in order."""
    props = resource(logical_id)["Properties"]
    bus = props.get("TargetParameters", {}).get("EventBridgeEventBusParameters", {})
    patterns = filter_patterns(logical_id)
    template = input_template(logical_id)
    events = []
    for record in records:
        if not matches(record, patterns):
            continue
        detail = render(template, record) if template else record
        events.append(PipeEvent(str(bus.get("Source", "")), str(bus.get("DetailType", "")), detail))
    return events
