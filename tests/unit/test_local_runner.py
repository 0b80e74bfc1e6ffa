"""The local runner's reading of chunked request bodies (RFC 9112 7.1), framing errors included."""

from __future__ import annotations

import io

import pytest

from runstop_dev.local_api import BodyTooLarge, build_event, read_chunked
from tests.helpers import route_for


def test_given_chunks_with_extensions_and_trailers_when_read_then_the_whole_body_and_the_stream_at_the_next_request():
    # Given
    stream = io.BytesIO(b'4;ext=1\r\n{"a"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\nGET / HTTP/1.1\r\n')
    # When
    body = read_chunked(stream, 1024)
    # Then
    assert body == b'{"a": 1}'
    assert stream.read() == b"GET / HTTP/1.1\r\n"


@pytest.mark.parametrize(
    "raw",
    [b"zz\r\n", b"4\r\nab", b"4\r\nabcdEXTRA\r\n0\r\n\r\n", b"2\r\nab\r\n", b"-1\r\n", b"\r\n"],
    ids=["not-hex", "truncated-chunk", "chunk-longer-than-its-size", "no-last-chunk", "negative", "empty-size"],
)
def test_given_bad_chunk_framing_when_read_then_value_error(raw: bytes):
    # When / Then
    with pytest.raises(ValueError, match=r"chunk|trailer"):
        read_chunked(io.BytesIO(raw), 1024)


def test_given_chunks_past_the_limit_when_read_then_refused_before_the_chunk_is_buffered():
    # Given: a chunk announcing 1 MiB on a stream that holds none of it
    stream = io.BytesIO(b"100000\r\n")
    # When / Then
    with pytest.raises(BodyTooLarge):
        read_chunked(stream, 1024)


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "Application/Problem+JSON", "TEXT/plain"])
def test_given_a_text_media_type_in_any_case_when_the_event_is_built_then_the_body_is_text(content_type: str):
    # Given
    route, params = route_for("POST", "/runs")
    # When
    event = build_event(route, "POST", "/runs", "", {"Content-Type": content_type}, b"{}", params, "t", "127.0.0.1")
    # Then
    assert (event["body"], event["isBase64Encoded"]) == ("{}", False)
    assert event["headers"]["content-type"] == content_type
