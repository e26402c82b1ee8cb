"""InvalidRequestError declares the request field at fault (``param``), and the gateway's
OpenAI-style body reports that field, not a guess from the message's words."""

from __future__ import annotations

import pytest

from router.errors import InvalidRequestError
from router.policy import Constraints
from router.serving.client.learning import parse_escalate, parse_explore
from router.serving.gateway.errors import map_exception
from router.serving.usage.record import client_feedback
from router.text.request import parse_request


def _param(call) -> str | None:
    with pytest.raises(InvalidRequestError) as e:
        call()
    status, _, type_, _, param = map_exception(e.value)
    assert (status, type_) == (400, "invalid_request_error")
    assert param == e.value.param
    return param


def test_param_is_declared_and_defaults_to_none():
    assert InvalidRequestError("x").param is None
    err = InvalidRequestError("bad", param="max_cost")
    assert err.param == "max_cost" and str(err) == "bad" and isinstance(err, ValueError)
    # a message that happens to name a field is not read for one
    assert map_exception(InvalidRequestError("messages were fine; max_cost was not"))[4] is None


@pytest.mark.parametrize("call, param", [
    (lambda: parse_request([]), "messages"),
    (lambda: parse_request("   "), "messages"),
    (lambda: parse_request([{"role": "user", "content": [{"type": "nope"}]}]), "messages"),
    (lambda: Constraints(max_cost=-1.0), "max_cost"),
    (lambda: Constraints(min_quality=2.0), "min_quality"),
    (lambda: Constraints(max_quality_gap=-0.5), "max_quality_gap"),
    (lambda: Constraints(max_tokens=0), "max_tokens"),
    (lambda: parse_escalate("sometimes"), "escalate"),
    (lambda: parse_escalate({"max_steps": 0}), "escalate"),
    (lambda: parse_explore("yes"), "explore"),
    (lambda: client_feedback({"request_id": "r", "thumbs": "sideways"}), "thumbs"),
    (lambda: client_feedback({"request_id": "r", "rating": 11}), "rating"),
    (lambda: client_feedback({"request_id": "r"}), "score"),
    (lambda: client_feedback({"score": 1.0}), "request_id"),
    (lambda: client_feedback({"request_id": "r", "score": 1.0, "origin": "judge"}), "origin"),
    (lambda: client_feedback({"request_id": "r", "score": 1.0, "comment": 3}), "comment"),
])
def test_request_errors_name_their_field(call, param):
    assert _param(call) == param
