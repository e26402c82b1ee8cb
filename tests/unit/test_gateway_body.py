"""The gateway's body checks and the client's key redaction, without a server."""

import pytest

from router.errors import InvalidRequestError
from router.serving.client.failures import redact_values
from router.serving.gateway.body import MAX_DEPTH, json_depth, parse_json


def test_json_depth_skips_strings_and_escapes():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}], "c": "\\"]]]"}') == 3
    assert json_depth(b"[]" * 10) == 1 and json_depth(b"1") == 0


def test_parse_json_accepts_ordinary_bodies_unchanged():
    raw = b'{"model": "auto", "messages": [{"role": "user", "content": "caf\\u00e9 \\ud83d\\ude00 [x]"}], "n": 1.5}'
    assert parse_json(raw)["messages"][0]["content"] == "caf\u00e9 \U0001F600 [x]"
    deep_ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json(deep_ok) == parse_json(deep_ok)  # the limit itself is accepted


@pytest.mark.parametrize("raw, words", [
    (b'{"t": NaN}', "NaN"), (b'{"t": -Infinity}', "-Infinity"), (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested"),
    (b'{"c": "a\\udc00b"}', "surrogate"), (b'{"c": "\\ud800"}', "surrogate"), (b"{", "parse"), (b"\xff\xfe", "parse"),
])
def test_parse_json_refuses_what_would_break_later(raw, words):
    with pytest.raises(InvalidRequestError, match=words):
        parse_json(raw)


def test_redact_values_removes_keys_and_their_quoted_ends():
    key = "upstream-secret-value-0123456789"
    text = f"bad key {key}; we saw {key[:8]}...{key[-8:]}"
    out = redact_values(text, [key, "short"])
    assert key not in out and key[:8] not in out and key[-8:] not in out and out.startswith("bad key [redacted]")
    assert redact_values("a short word", ["short"]) == "a short word"  # too short to be told from text
    assert redact_values(None, [key]) is None
