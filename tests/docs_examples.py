"""The console examples of the docs: finding them, and comparing what they show with what ran.

The rule (stated once here; `tests/integration/test_docs.py` runs the examples, `tests/test_docs_shape.py`
checks this module and the docs' shape):

- Only ```console blocks run. ```bash, ```text, ```json and every other block never do: they hold
  what cannot run locally (deploying, the aws CLI, `make run` itself) or is not a command.
- In a console block a line starting with `$ ` is a command; a line ending in a backslash continues
  it. The lines up to the next `$ ` are what the command prints on stdout (blank lines are
  ignored; stderr, where progress and log lines go, is never compared).
- A file's commands run in order, in one bash session in the repository's root, against empty
  tables; they must exit 0. `make sweep` and `make invoke` run for real, with `DYNAMODB_ENDPOINT`
  naming the test's DynamoDB Local; no AWS credentials are set.
- A file holding the line `<!-- docs test: RUNSTOP_AUTH=jwt -->` runs against the runner in JWT
  mode (`RUNSTOP_AUTH=jwt make run`), whose issuer's key `runstop_dev token` signs with.
- `http://127.0.0.1:3000` and `localhost:3000` are the local runner, `http://127.0.0.1:8000` its
  DynamoDB Local: the test rewrites them to its own, in commands and in shown output alike.
  The runner is `make run`'s; a block right after the line `<!-- runner: jwt -->` runs against
  `RUNSTOP_AUTH=jwt make run`'s instead (tokens from `python -m runstop_dev token`).
- Shown output is a sequence of items, compared with the printed output item by item:
  an `HTTP/1.1 NNN` line by its code, and each `Name: value` line under it by that header's value;
  a JSON document as a subset (every key shown is there with that value; arrays are as long as
  shown); any other line as text. A string `"..."` matches any value, `...` inside a string or a
  text line matches any text, and an ISO timestamp or a UUID matches any other one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JWT_MODE = "<!-- docs test: RUNSTOP_AUTH=jwt -->"
"""A doc's examples need the local runner in JWT mode."""
RUNNER_URLS = ("http://127.0.0.1:3000", "http://localhost:3000", "localhost:3000")
DYNAMODB_URL = "http://127.0.0.1:8000"

_MARKER = re.compile(r"^<!--\s*(.*?)\s*-->$")
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_STATUS = re.compile(r"^HTTP/\d(?:\.\d)? (\d{3})\b")
_HEADER = re.compile(r"^([A-Za-z0-9-]+):\s*(.*)$")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ANY = "..."
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Example:
    """One command of a console block and the output the docs show for it."""

    path: Path
    line: int
    command: str
    shown: str
    marker: str = ""
    """The HTML comment on the line before the block (`runner: jwt`), if any."""

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclass(frozen=True)
class Status:
    code: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Json:
    value: Any


@dataclass(frozen=True)
class Text:
    line: str


Item = Status | Json | Text


def console_examples(path: Path) -> list[Example]:
    """Every command of every ```console block of a Markdown file, in order."""
    examples: list[Example] = []
    fence: str | None = None
    command: list[str] = []
    shown: list[str] = []
    start = 0

    marker = previous = ""

    def flush() -> None:
        if command:
            examples.append(Example(path, start, "\n".join(command), "\n".join(shown), marker))
        command.clear()
        shown.clear()

    continued = False
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        opened = _FENCE.match(raw)
        if fence is None:
            if opened:
                fence = opened[2] if opened[3] == "console" else f"skip:{opened[2]}"
                comment = _MARKER.match(previous.strip())
                marker = comment[1] if comment else ""
            previous = raw
            continue
        if raw.strip() == fence.removeprefix("skip:"):
            if not fence.startswith("skip:"):
                flush()
            fence, continued, previous = None, False, ""
            continue
        if fence.startswith("skip:"):
            continue
        if continued:
            command.append(raw)
        elif raw.startswith("$ "):
            flush()
            start = number
            command.append(raw[2:])
        elif not command:
            if raw.strip():
                raise ValueError(f"{path.name}:{number}: output before any `$ ` command in a console block")
            continue
        else:
            shown.append(raw)
            continue
        continued = raw.endswith("\\")
    if fence is not None:
        raise ValueError(f"{path.name}: a code block is never closed")
    return examples


def parse_output(text: str) -> list[Item]:
    """What a command printed (or what the docs show it printing), as items to compare."""
    text = text.replace("\r\n", "\n")
    items: list[Item] = []
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end == -1 else end
        line = text[pos:end].strip()
        if not line:
            pos = end + 1
            continue
        status = _STATUS.match(line)
        if status:
            headers: dict[str, str] = {}
            pos = end + 1
            while pos < len(text):
                end = text.find("\n", pos)
                end = len(text) if end == -1 else end
                header = _HEADER.match(text[pos:end].strip())
                if not header:
                    break
                headers[header[1].lower()] = header[2]
                pos = end + 1
            items.append(Status(int(status[1]), headers))
            continue
        if line[0] in "{[":
            start = text.index(line[0], pos)
            try:
                value, after = _DECODER.raw_decode(text, start)
            except json.JSONDecodeError:
                pass
            else:
                items.append(Json(value))
                end = text.find("\n", after)
                end = len(text) if end == -1 else end
                rest = text[after:end].strip()
                if rest:
                    items.append(Text(rest))
                pos = end + 1
                continue
        items.append(Text(line))
        pos = end + 1
    return items


def _text_matches(shown: str, real: str) -> bool:
    if ANY not in shown:
        return shown == real
    pattern = ".*".join(re.escape(part) for part in shown.split(ANY))
    return re.fullmatch(pattern, real, re.DOTALL) is not None


def json_differences(shown: Any, real: Any, where: str = "$") -> list[str]:
    """Where `real` fails to show what `shown` shows, by JSON path; empty when it matches."""
    if shown == ANY:
        return []
    if isinstance(shown, dict):
        if not isinstance(real, dict):
            return [f"{where}: shown an object, got {json.dumps(real)}"]
        missing = [f"{where}.{key}: shown, but absent" for key in shown if key not in real]
        return missing + [
            problem
            for key in shown
            if key in real
            for problem in json_differences(shown[key], real[key], f"{where}.{key}")
        ]
    if isinstance(shown, list):
        if not isinstance(real, list) or len(real) != len(shown):
            return [f"{where}: shown {len(shown)} items, got {json.dumps(real)}"]
        return [
            p for i, (s, r) in enumerate(zip(shown, real, strict=True)) for p in json_differences(s, r, f"{where}[{i}]")
        ]
    if isinstance(shown, str) and isinstance(real, str):
        for shape in (_TIMESTAMP, _UUID):
            if shape.fullmatch(shown):
                return [] if shape.fullmatch(real) else [f"{where}: shown {shown!r}, got {real!r}"]
        return [] if _text_matches(shown, real) else [f"{where}: shown {shown!r}, got {real!r}"]
    if type(shown) is type(real) and shown == real:
        return []
    if isinstance(shown, int | float) and isinstance(real, int | float) and not isinstance(real, bool):
        return [] if shown == real and not isinstance(shown, bool) else [f"{where}: shown {shown!r}, got {real!r}"]
    return [f"{where}: shown {json.dumps(shown)}, got {json.dumps(real)}"]


def differences(shown: str, printed: str) -> list[str]:
    """Every way the printed output differs from the shown one; empty when they agree."""
    expected, actual = parse_output(shown), parse_output(printed)
    problems: list[str] = []
    for index, want in enumerate(expected):
        if index >= len(actual):
            problems.append(f"item {index + 1} shown ({_describe(want)}), but nothing more was printed")
            break
        got = actual[index]
        if type(want) is not type(got):
            problems.append(f"item {index + 1}: shown {_describe(want)}, printed {_describe(got)}")
            break
        if isinstance(want, Status) and isinstance(got, Status):
            if want.code != got.code:
                problems.append(f"status: shown {want.code}, got {got.code}")
            for name, value in want.headers.items():
                if name not in got.headers or not _text_matches(value, got.headers[name]):
                    problems.append(f"header {name}: shown {value!r}, got {got.headers.get(name)!r}")
        elif isinstance(want, Json) and isinstance(got, Json):
            problems += json_differences(want.value, got.value)
        elif isinstance(want, Text) and isinstance(got, Text) and not _text_matches(want.line, got.line):
            problems.append(f"line: shown {want.line!r}, printed {got.line!r}")
    if len(actual) > len(expected) and not problems:
        problems.append(f"printed more than shown: {', '.join(_describe(item) for item in actual[len(expected) :])}")
    return problems


def _describe(item: Item) -> str:
    if isinstance(item, Status):
        return f"HTTP {item.code}"
    if isinstance(item, Json):
        return f"JSON {json.dumps(item.value)[:120]}"
    return f"text {item.line[:120]!r}"


def local(text: str, runner_url: str, dynamodb_url: str) -> str:
    """The docs' fixed local addresses replaced by the test's own."""
    for url in RUNNER_URLS:
        text = text.replace(url, runner_url if url.startswith("http") else runner_url.removeprefix("http://"))
    return text.replace(DYNAMODB_URL, dynamodb_url)
