"""The raw transport's SSE decoder (sans-I/O): events however the bytes are split."""

from __future__ import annotations

import random

import pytest

from router.serving.client.sse import ServerSentEvent, SSEDecoder

STREAM = (b": a comment\n"
          b"data: {\"a\": 1}\n\n"
          b"event: error\ndata: {\"error\": {\"message\": \"x\"}}\n\n"
          b"data: line one\ndata: line two\n\n"
          b"data:no-space\nid: 7\nretry: 10\nunknown: y\n\n"
          b"data: caf\xc3\xa9\n\n"
          b"\n\n"  # blank lines without data dispatch nothing
          b"data: [DONE]\n\n")
EXPECTED = [
    ServerSentEvent('{"a": 1}'),
    ServerSentEvent('{"error": {"message": "x"}}', event="error"),
    ServerSentEvent("line one\nline two"),
    ServerSentEvent("no-space", id="7"),
    ServerSentEvent("café", id="7"),  # the last event id carries over, as the SSE spec says
    ServerSentEvent("[DONE]", id="7"),
]


def decode(parts):
    dec = SSEDecoder()
    return [e for p in parts for e in dec.feed(p)] + dec.flush()


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_events_whole_and_split_at_every_byte(newline):
    data = STREAM.replace(b"\n", newline)
    assert decode([data]) == EXPECTED
    assert decode([data[i:i + 1] for i in range(len(data))]) == EXPECTED


def test_random_splits_give_the_same_events():
    rng = random.Random(0)
    data = STREAM.replace(b"\n", b"\r\n")
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(data)), 6))
        parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        assert decode(parts) == EXPECTED


def test_an_unterminated_event_is_not_returned():
    dec = SSEDecoder()
    assert dec.feed(b"data: partial") == []
    assert dec.feed(b"\n") == []
    assert dec.flush() == []
    assert dec.feed(b"data: next\n\n") == [ServerSentEvent("next")]
