"""The docs' shape: a short README, links that resolve, and a comparison that really catches a stale example.

Running the examples is `tests/integration/test_docs.py`; this module checks, without a stack,
that the comparison it relies on fails when an example's shown answer differs from reality.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runstop_dev.template import REPO_ROOT
from tests.docs_examples import console_examples, differences, local

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "bench" / "README.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")

CURL_202 = """HTTP/1.1 202 Accepted\r
Server: BaseHTTP/0.6 Python/3.13.0\r
Content-Type: application/json\r
Content-Length: 84\r
\r
{"run_id":"never-was","status":null,"outcome":"absent","cancel":null,"version":null,"at":"2026-11-30T06:28:18.501745Z"}"""


def test_the_readme_is_read_in_five_minutes():
    assert len((REPO_ROOT / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(REPO_ROOT)) for p in DOCS])
def test_every_relative_link_of_the_docs_resolves(doc: Path):
    broken = [
        target
        for target in LINK.findall(doc.read_text())
        if not target.startswith(("http://", "https://", "mailto:")) and not (doc.parent / target).exists()
    ]
    assert broken == []


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(REPO_ROOT)) for p in DOCS])
def test_every_console_block_is_commands_with_their_output(doc: Path):
    for example in console_examples(doc):
        assert example.command.strip(), example.where
        assert "\n$ " not in example.shown, example.where


def test_given_a_console_block_then_commands_continuation_lines_and_output_are_told_apart(tmp_path: Path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n\n```bash\n$ make run\n```\n\n```console\n$ curl -s one \\\n    -d x\nout 1\n\n$ curl two\n```\n"
    )
    examples = console_examples(doc)
    assert [(e.line, e.command, e.shown.strip()) for e in examples] == [
        (8, "curl -s one \\\n    -d x", "out 1"),
        (12, "curl two", ""),
    ]


def test_given_the_real_answer_when_the_docs_show_its_fields_then_they_agree():
    shown = (
        "HTTP/1.1 202 Accepted\nContent-Type: application/json\n"
        '{"run_id": "never-was", "outcome": "absent",\n "at": "2026-11-23T21:59:07.498393Z"}'
    )
    assert differences(shown, CURL_202) == []


@pytest.mark.parametrize(
    ("shown", "caught"),
    [
        ('HTTP/1.1 409 Conflict\n{"outcome": "absent"}', "status: shown 409, got 202"),
        ('HTTP/1.1 202 Accepted\n{"outcome": "interrupted"}', "$.outcome: shown 'interrupted', got 'absent'"),
        ('HTTP/1.1 202 Accepted\n{"outcome": "absent", "reason": null}', "$.reason: shown, but absent"),
        ('HTTP/1.1 202 Accepted\n{"version": 0}', "$.version: shown 0, got null"),
        ('HTTP/1.1 202 Accepted\nContent-Type: application/problem+json\n{"outcome": "absent"}', "header content-type"),
        ('HTTP/1.1 202 Accepted\n{"at": "not-a-time"}', "$.at: shown 'not-a-time'"),
        ("HTTP/1.1 202 Accepted", "printed more than shown"),
        ('HTTP/1.1 202 Accepted\n{"outcome": "absent"}\n202', "nothing more was printed"),
    ],
)
def test_given_a_stale_example_then_the_comparison_says_what_differs(shown: str, caught: str):
    assert any(caught in problem for problem in differences(shown, CURL_202)), differences(shown, CURL_202)


def test_given_several_answers_then_json_lines_and_trailing_status_codes_are_compared_in_order():
    printed = '{"outcome":"already_interrupted","version":3} 202\n{"outcome":"interrupted","version":3} 202\n'
    assert differences('{"outcome": "already_interrupted"} 202\n{"outcome": "interrupted"} 202', printed) == []
    assert differences('{"outcome": "interrupted"} 202\n{"outcome": "already_interrupted"} 202', printed) != []
    assert differences('{"outcome": "already_interrupted"} 409\n{"outcome": "interrupted"} 202', printed) != []


def test_given_placeholders_then_they_match_any_value_but_only_where_shown():
    printed = (
        '{"next_cursor": "eyJhIjoxfQ", "id": "6c09229d-df47-54e5-9d94-825b26aa0f8b", "items": [1, 2]}\n'
        "stopped local/x (y)"
    )
    assert (
        differences(
            '{"next_cursor": "...", "id": "00000000-0000-0000-0000-000000000000"}\nstopped .../x (...)', printed
        )
        == []
    )
    assert differences('{"items": [1]}\nstopped local/x (y)', printed) != []
    assert differences('{"next_cursor": "..."}\nstarted ...', printed) != []


def test_the_docs_addresses_become_the_tests_own():
    command = "curl http://127.0.0.1:3000/runs localhost:3000/runs; sweep http://127.0.0.1:8000"
    assert local(command, "http://127.0.0.1:41000", "http://127.0.0.1:42000") == (
        "curl http://127.0.0.1:41000/runs 127.0.0.1:41000/runs; sweep http://127.0.0.1:42000"
    )
