"""RoutedClient / AsyncRoutedClient against a real OpenAI-protocol server (FakeUpstream, loopback).

Every model of the default catalog is served by the FakeUpstream through the client's single
``base_url``; routing is the cold-start regex router (``Router.default()``), so the expected
models follow the catalog's tier tables: a code prompt on ``auto:budget`` goes to
deepseek-chat, then (fallback) gpt-4o-mini; escalation goes to deepseek-v4-pro.
"""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from router import RoutedClient
from router.serving.client import (
    AsyncRoutedClient,
    EscalationPolicy,
    RetryPolicy,
    code_placeholder,
    reasoning_uncertainty,
)
from router.errors import InvalidRequestError, UnknownModelError, UpstreamError
from router.serving.usage.store import UsageStore
from tests.support.chat import CODE, FAST, HELLO, LONG

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path):
    s = UsageStore(f"sqlite:///{tmp_path}/usage.db", store_prompts=True)
    yield s
    s.close()


class Sleeps(list):
    """A recording, non-sleeping ``sleep``."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def make(router_, up, store):
    made = []

    def _make(**kw):
        kw.setdefault("base_url", up.base_url)
        kw.setdefault("api_key", "test")
        kw.setdefault("usage", store)
        kw.setdefault("retry", FAST)
        kw.setdefault("timeout", 5.0)
        c = RoutedClient(router_, **kw)
        made.append(c)
        return c

    yield _make
    for c in made:
        c.close()


def logged(store, n_expected=None):
    assert store.flush(5.0)
    recs = store.records()
    if n_expected is not None:
        assert len(recs) == n_expected, [r.request_id for r in recs]
    return recs


def auth_header(req):
    return {k.lower(): v for k, v in req["headers"].items()}.get("authorization")


# ---- routing and pass-through ---------------------------------------------------------------


def test_auto_routes_to_the_tier_model_and_logs_one_record(make, up, store, router_):
    c = make()
    r = c.chat.completions.create(model="auto:budget", messages=CODE)
    assert r.choices[0].message.content == "echo[deepseek-chat]: " + CODE[0]["content"]
    meta = r.router
    assert meta["model"] == "deepseek-chat" and meta["task"] == "code" and meta["tier"] == "budget"
    assert meta["rule"] == "cheapest_meeting_target"
    assert meta["predicted_quality"] == pytest.approx(0.78)
    assert meta["estimated_cost"] > 0 and meta["request_id"].startswith("req_")
    spec = router_.catalog["deepseek-chat"]
    assert meta["cost_usd"] == pytest.approx(spec.cost(r.usage.prompt_tokens, r.usage.completion_tokens))
    assert [e["status"] for e in meta["chain"]] == ["ok"]
    assert len(up.requests) == 1 and up.requests[0]["body"]["model"] == "deepseek-chat"
    assert auth_header(up.requests[0]) == "Bearer test"
    (rec,) = logged(store, 1)
    assert rec.request_id == meta["request_id"] and rec.model == "deepseek-chat" and rec.status == "ok"
    assert rec.requested_model == "auto:budget" and rec.tier == "budget" and rec.task == "code"
    assert rec.prompt_tokens == r.usage.prompt_tokens and rec.completion_tokens == r.usage.completion_tokens
    assert rec.cost_usd == pytest.approx(meta["cost_usd"]) and rec.latency_ms > 0
    assert rec.chain == meta["chain"] and rec.prompt == CODE[0]["content"] and len(rec.prompt_hash) == 64
    # the response object still serialises like the SDK's, with the metadata as an extra field
    assert r.model_dump()["router"]["model"] == "deepseek-chat"


def test_plain_auto_uses_default_tier_and_router_options_are_not_forwarded(make, up):
    c = make()
    r = c.chat.completions.create(model="auto", messages=CODE, extra_body={"router": {"max_cost": 0.01}},
                                  temperature=0.2)
    assert r.router["tier"] == "balanced" and r.router["model"] == "deepseek-v4-pro"
    body = up.requests[-1]["body"]
    assert "router" not in body and "max_cost" not in body and body["temperature"] == 0.2
    # a top-level max_cost (what the gateway's JSON body carries) works the same
    r = c.chat.completions.create(model="auto:quality", messages=CODE, max_cost=0.0013)
    assert r.router["model"] != "gpt-4o" and "max_cost" not in up.requests[-1]["body"]
    with pytest.raises(InvalidRequestError):
        c.chat.completions.create(model="auto", messages=CODE, router={"bogus": 1})
    with pytest.raises(InvalidRequestError):
        c.chat.completions.create(model="auto:turbo", messages=CODE)


def test_unknown_sdk_params_travel_in_the_body(make, up):
    c = make()
    c.chat.completions.create(model="gpt-4o", messages=HELLO, thinking={"type": "enabled"})
    assert up.requests[-1]["body"]["thinking"] == {"type": "enabled"}


def test_pass_through_and_unknown_model(make, up, store):
    c = make()
    r = c.chat.completions.create(model="glm-5.1", messages=CODE)
    assert r.router["model"] == "glm-5.1" and r.router["rule"] == "explicit" and r.router["task"] is None
    assert up.requests[-1]["body"]["model"] == "glm-5.1"
    with pytest.raises(UnknownModelError):
        c.chat.completions.create(model="gpt-9", messages=CODE)
    with pytest.raises(InvalidRequestError):
        c.chat.completions.create(model="auto", messages=[{"role": "system", "content": "no user turn"}])
    recs = logged(store, 3)  # every call is one row, rejected ones included
    assert sorted(r.status for r in recs) == ["ok", "rejected", "rejected"]
    assert len(up.requests) == 1


def test_injected_clients(router_, up, store):
    inj = openai.OpenAI(base_url=up.base_url, api_key="injected", max_retries=5)
    c = RoutedClient(router_, clients={"*": inj}, usage=store, retry=FAST)
    up.add_fault("status", status=500)
    r = c.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert r.router["model"] == "gpt-4o-mini"
    assert len(up.requests) == 2  # our retry, not the SDK's own 5 retries on top
    assert auth_header(up.requests[-1]) == "Bearer injected"


def test_no_network_at_construction_and_missing_keys(router_, store, monkeypatch):
    for s in router_.catalog:
        monkeypatch.delenv(s.provider.api_key_env, raising=False)
    monkeypatch.delenv("ROUTER_BASE_URL", raising=False)
    c = RoutedClient(router_, usage=store, retry=FAST)  # no endpoint is contacted here
    with pytest.raises(UpstreamError) as exc:
        c.chat.completions.create(model="deepseek-chat", messages=HELLO)
    assert "DEEPSEEK_API_KEY is not set" in str(exc.value)


# ---- streaming ----------------------------------------------------------------------------


def _join(chunks):
    return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)


def test_streaming_deltas_usage_and_log(make, up, store, router_):
    c = make()
    s = c.chat.completions.create(model="auto:budget", messages=CODE, stream=True,
                                  stream_options={"include_usage": True})
    assert s.router["model"] == "deepseek-chat"
    chunks = list(s)
    assert _join(chunks) == "echo[deepseek-chat]: " + CODE[0]["content"]
    n_words = len(_join(chunks).split())
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == n_words
    assert s.router["status"] == "ok"
    spec = router_.catalog["deepseek-chat"]
    assert s.router["cost_usd"] == pytest.approx(spec.cost(chunks[-1].usage.prompt_tokens, n_words))
    # without include_usage the caller gets no usage chunk, but the log still has exact tokens
    s2 = c.chat.completions.create(model="auto:budget", messages=CODE, stream=True)
    chunks2 = list(s2)
    assert all(ch.choices for ch in chunks2)
    assert up.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    recs = logged(store, 2)
    assert all(r.stream and r.status == "ok" and r.completion_tokens == n_words for r in recs)


def test_stream_drop_before_first_token_falls_back(make, up, store):
    c = make()
    up.set_reply("deepseek-chat", "")  # role chunk, an empty delta, then the cut: no token yet
    up.add_fault("drop_mid_stream", model="deepseek-chat", times=3)
    s = c.chat.completions.create(model="auto:budget", messages=CODE, stream=True)
    text = _join(list(s))
    assert text == "echo[gpt-4o-mini]: " + CODE[0]["content"]
    assert s.router["model"] == "gpt-4o-mini"
    assert [(e["model"], e["status"]) for e in s.router["chain"]] == [
        ("deepseek-chat", "error")] * 3 + [("gpt-4o-mini", "ok")]
    (rec,) = logged(store, 1)
    assert rec.status == "ok" and rec.model == "gpt-4o-mini" and len(rec.chain) == 4


def test_stream_drop_after_first_token_ends_with_error_chunk(make, up, store):
    c = make()
    up.add_fault("drop_mid_stream", model="deepseek-chat")
    s = c.chat.completions.create(model="auto:budget", messages=LONG, stream=True)
    chunks = list(s)
    assert _join(chunks).startswith("echo[deepseek-chat]:")
    last = chunks[-1]
    assert last.choices == [] and last.error["type"] == "upstream_error" and "broke" in last.error["message"]
    assert len(up.requests) == 1  # no retry once tokens were delivered
    (rec,) = logged(store, 1)
    assert rec.status == "error" and rec.stream and rec.chain[-1]["status"] == "error"


def test_stream_malformed_event_before_first_token_is_retried(make, up):
    c = make()
    up.add_fault("malformed", model="deepseek-chat")
    s = c.chat.completions.create(model="auto:budget", messages=CODE, stream=True)
    assert _join(list(s)).startswith("echo[deepseek-chat]")
    assert [e["status"] for e in s.router["chain"]] == ["error", "ok"]


# ---- faults -------------------------------------------------------------------------------


def test_429_retry_after_is_honoured_then_success(make, up, store):
    sleeps = Sleeps()
    c = make(sleep=sleeps)
    up.add_fault("status", status=429, retry_after=2)
    r = c.chat.completions.create(model="auto:budget", messages=CODE)
    assert r.router["model"] == "deepseek-chat"
    assert sleeps == [2.0]
    assert [e.get("status_code") for e in r.router["chain"]] == [429, None]
    # capped
    sleeps.clear()
    c2 = make(sleep=sleeps, retry=RetryPolicy(base_delay=0.01, max_retry_after=0.5))
    up.add_fault("status", status=429, retry_after=120)
    c2.chat.completions.create(model="auto:budget", messages=CODE)
    assert sleeps == [0.5]


def test_backoff_is_exponential_with_full_jitter(make, up):
    sleeps = Sleeps()
    c = make(sleep=sleeps, retry=RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0), failure_threshold=10)
    up.add_fault("status", status=503, model="deepseek-chat", times=3)
    c.chat.completions.create(model="auto:budget", messages=CODE)
    assert len(sleeps) == 3
    for s, cap in zip(sleeps, (1.0, 2.0, 3.0)):
        assert 0.0 <= s <= cap
    assert RetryPolicy(jitter=False, base_delay=1.0, max_delay=3.0).delay(5) == 3.0


def test_500_exhausts_retries_then_falls_back_to_next_candidate(make, up, store):
    c = make()
    up.add_fault("status", status=500, model="deepseek-chat", times=3)
    r = c.chat.completions.create(model="auto:budget", messages=CODE)
    assert r.router["model"] == "gpt-4o-mini"  # next cheapest meeting the budget target
    assert [(e["model"], e["status"]) for e in r.router["chain"]] == [
        ("deepseek-chat", "error")] * 3 + [("gpt-4o-mini", "ok")]
    assert len(up.requests_for("deepseek-chat")) == 3 and len(up.requests_for("gpt-4o-mini")) == 1
    (rec,) = logged(store, 1)
    assert rec.model == "gpt-4o-mini" and rec.status == "ok" and len(rec.chain) == 4
    assert store.stats(c.catalog)["fallbacks"] == 1


def test_malformed_json_and_connection_drop_are_retried(make, up):
    c = make()
    up.add_fault("malformed", model="deepseek-chat")
    up.add_fault("drop", model="deepseek-chat")
    r = c.chat.completions.create(model="auto:budget", messages=CODE)
    assert r.router["model"] == "deepseek-chat"
    assert [e["reason"] for e in r.router["chain"]] == ["malformed response", "connection error", "answered"]


def test_no_retry_on_400(make, up, store):
    c = make()
    up.add_fault("status", status=400, message="bad parameter foo")
    with pytest.raises(UpstreamError) as exc:
        c.chat.completions.create(model="auto:budget", messages=CODE)
    assert exc.value.status_code == 400 and "bad parameter foo" in str(exc.value)
    assert len(up.requests) == 1  # neither retried nor sent elsewhere
    (rec,) = logged(store, 1)
    assert rec.status == "error" and rec.model == "deepseek-chat"


def test_401_skips_retries_but_falls_back(make, up):
    c = make()
    up.add_fault("status", status=401, model="deepseek-chat")
    r = c.chat.completions.create(model="auto:budget", messages=CODE)
    assert r.router["model"] == "gpt-4o-mini" and len(up.requests_for("deepseek-chat")) == 1


def test_all_models_fail_raises_upstream_error_with_last_status(make, up, store):
    c = make(retry=RetryPolicy(max_attempts=2, base_delay=0.0, max_fallbacks=1))
    up.add_fault("status", status=500, times=2)
    up.add_fault("status", status=503, times=2)
    with pytest.raises(UpstreamError) as exc:
        c.chat.completions.create(model="auto:budget", messages=CODE)
    assert exc.value.status_code == 503
    assert "deepseek-chat: HTTP 500, HTTP 500" in str(exc.value) and "gpt-4o-mini" in str(exc.value)
    assert len(exc.value.chain) == 4 and exc.value.request_id.startswith("req_")
    (rec,) = logged(store, 1)
    assert rec.status == "error" and rec.model == "gpt-4o-mini" and len(rec.chain) == 4


def test_timeouts_are_retried_and_reported(make, up):
    c = make(timeout=0.3, retry=RetryPolicy(max_attempts=2, base_delay=0.0, max_fallbacks=0))
    up.add_fault("delay", seconds=1.0, times=2)
    with pytest.raises(UpstreamError) as exc:
        c.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert exc.value.kind == "timeout" and exc.value.status_code is None
    assert [e["reason"] for e in exc.value.chain] == ["timeout", "timeout"]


def test_explicit_model_falls_back_only_when_asked(make, up):
    up.add_fault("status", status=500, model="gpt-4o", times=10)
    with pytest.raises(UpstreamError):
        make(retry=RetryPolicy(max_attempts=1)).chat.completions.create(model="gpt-4o", messages=HELLO)
    c = make(retry=RetryPolicy(max_attempts=1, fallback_explicit=True))
    r = c.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert r.router["model"] != "gpt-4o" and r.router["chain"][0]["model"] == "gpt-4o"


def test_cooldown_excludes_a_failing_model_until_it_expires(make, up):
    now = [1000.0]
    c = make(retry=RetryPolicy(max_attempts=1), failure_threshold=2, cooldown_s=30.0, clock=lambda: now[0])
    up.add_fault("status", status=500, model="deepseek-chat", times=2)
    for _ in range(2):
        r = c.chat.completions.create(model="auto:budget", messages=CODE)
        assert r.router["model"] == "gpt-4o-mini"
    assert c.cooling() == {"deepseek-chat"}
    before = len(up.requests_for("deepseek-chat"))
    r = c.chat.completions.create(model="auto:budget", messages=CODE)
    assert r.router["model"] == "gpt-4o-mini" and [e["model"] for e in r.router["chain"]] == ["gpt-4o-mini"]
    assert len(up.requests_for("deepseek-chat")) == before  # not even tried
    now[0] += 31.0
    assert c.cooling() == frozenset()
    r = c.chat.completions.create(model="auto:budget", messages=CODE)
    assert r.router["model"] == "deepseek-chat"


# ---- escalation ---------------------------------------------------------------------------


def test_escalation_on_todo_within_the_cost_cap(make, up, store, router_):
    c = make()
    up.set_reply("deepseek-chat", "def merge_sort(a):\n    # TODO: implement\n    pass")
    r = c.chat.completions.create(model="auto:budget", messages=CODE, max_cost=0.01)
    assert r.router["model"] == "deepseek-v4-pro"  # cheapest candidate with higher predicted quality
    assert r.choices[0].message.content.startswith("echo[deepseek-v4-pro]")
    assert [(e["model"], e["status"]) for e in r.router["chain"]] == [
        ("deepseek-chat", "escalated"), ("deepseek-v4-pro", "ok")]
    assert r.router["escalated"] is True
    first = up.requests_for("deepseek-chat")
    assert len(first) == 1
    (rec,) = logged(store, 1)
    assert rec.escalated and rec.model == "deepseek-v4-pro"
    v4 = router_.catalog["deepseek-v4-pro"]
    assert rec.cost_usd > v4.cost(r.usage.prompt_tokens, r.usage.completion_tokens)  # both answers paid


def test_no_escalation_beyond_the_cost_cap(make, up, store, router_):
    c = make()
    up.set_reply("deepseek-chat", "placeholder implementation, TODO")
    est = router_.route(CODE, tier="budget").estimated_costs["deepseek-v4-pro"]
    # deepseek-v4-pro alone fits the cap, but not on top of what the first answer cost
    r = c.chat.completions.create(model="auto:budget", messages=CODE, max_cost=est + 1e-7)
    assert r.router["model"] == "deepseek-chat" and not r.router["escalated"]
    assert "exceed the cost cap" in r.router["chain"][0]["note"]
    assert not up.requests_for("deepseek-v4-pro")
    (rec,) = logged(store, 1)
    assert not rec.escalated


def test_escalation_custom_checks_and_disable(make, up):
    c = make(escalation=EscalationPolicy(checks=[lambda text, task: "maybe" in text]))
    up.set_reply("deepseek-chat", "maybe this works")
    assert c.chat.completions.create(model="auto:budget", messages=CODE).router["escalated"]
    assert not c.chat.completions.create(model="auto:budget", messages=CODE,
                                         extra_body={"router": {"escalate": False}}).router["escalated"]
    assert not make(escalation=None).chat.completions.create(model="auto:budget", messages=CODE).router["escalated"]
    # pass-through is never escalated
    assert not c.chat.completions.create(model="deepseek-chat", messages=CODE).router["escalated"]


def test_default_checks_are_the_original_designs():
    assert code_placeholder("x = 1  # TODO", "code") and code_placeholder("a Placeholder", "code")
    assert not code_placeholder("TODO", "reasoning")
    for text in ("I might be wrong", "not entirely sure", "it could be 4", "Possibly 5"):
        assert reasoning_uncertainty(text, "reasoning")
    assert not reasoning_uncertainty("possibly", "code") and not reasoning_uncertainty("it is 4", "reasoning")


# ---- adapters -----------------------------------------------------------------------------


def test_adapters_drop_unsupported_params_and_clip_max_tokens(make, up):
    c = make()
    r = c.chat.completions.create(model="deepseek-reasoner", messages=HELLO, temperature=0.7, top_p=0.5,
                                  max_tokens=100_000, seed=1)
    body = up.requests[-1]["body"]
    assert "temperature" not in body and "top_p" not in body and body["seed"] == 1
    assert body["max_tokens"] == 32768
    assert "dropped temperature" in r.router["chain"][0]["adapted"]
    c.chat.completions.create(model="glm-4-flash", messages=HELLO, temperature=0.7, max_completion_tokens=9000)
    body = up.requests[-1]["body"]
    assert body["temperature"] == 0.7 and body["max_completion_tokens"] == 4096


def test_image_parts_are_stripped_for_a_model_without_vision(make, up):
    c = make()
    msgs = [{"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]
    c.chat.completions.create(model="gpt-4o", messages=msgs)
    sent = up.requests[-1]["body"]["messages"][0]["content"]
    assert sent == [{"type": "text", "text": "What is in this picture?"}]
    assert msgs[0]["content"][1]["type"] == "image_url"  # the caller's list is untouched
    r = c.chat.completions.create(model="auto", messages=msgs)  # routing picks the vision model
    assert r.router["model"] == "glm-4v"
    assert up.requests[-1]["body"]["messages"][0]["content"][1]["type"] == "image_url"


# ---- logging ------------------------------------------------------------------------------


def test_logging_never_raises_into_the_caller(make, up):
    class Broken:
        def log(self, record):
            raise RuntimeError("disk on fire")

    r = make(usage=Broken()).chat.completions.create(model="auto", messages=HELLO)
    assert r.choices[0].message.content.startswith("echo[")


def test_every_request_is_logged_exactly_once(make, up, store):
    c = make(retry=RetryPolicy(max_attempts=2, base_delay=0.0))
    ids = []
    up.add_fault("status", status=500, model="deepseek-chat", times=2)  # fallback
    ids.append(c.chat.completions.create(model="auto:budget", messages=CODE).router["request_id"])
    up.set_reply("deepseek-chat", "TODO")  # escalation
    ids.append(c.chat.completions.create(model="auto:budget", messages=CODE).router["request_id"])
    up.clear_replies()
    s = c.chat.completions.create(model="auto", messages=HELLO, stream=True)
    list(s)
    ids.append(s.router["request_id"])
    s = c.chat.completions.create(model="auto", messages=HELLO, stream=True)
    next(s)
    s.close()  # abandoned early
    ids.append(s.router["request_id"])
    up.add_fault("status", status=400)
    with pytest.raises(UpstreamError):
        c.chat.completions.create(model="gpt-4o", messages=HELLO)
    recs = logged(store, 5)
    assert set(ids) <= {r.request_id for r in recs}
    assert len({r.request_id for r in recs}) == 5
    assert sorted(r.status for r in recs) == ["cancelled", "error", "ok", "ok", "ok"]


# ---- async --------------------------------------------------------------------------------


def test_async_client_routes_streams_and_falls_back(router_, up, store):
    async def main():
        sleeps = []

        async def fake_sleep(s):
            sleeps.append(s)

        async with AsyncRoutedClient(router_, base_url=up.base_url, api_key="test", usage=store, retry=FAST,
                                     sleep=fake_sleep) as c:
            rs = await asyncio.gather(*[c.chat.completions.create(model="auto:budget", messages=CODE)
                                        for _ in range(8)])
            assert {r.router["model"] for r in rs} == {"deepseek-chat"}
            up.add_fault("status", status=500, model="deepseek-chat", times=3)
            r = await c.chat.completions.create(model="auto:budget", messages=CODE)
            assert r.router["model"] == "gpt-4o-mini" and len(sleeps) == 2
            s = await c.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
            text = "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])
            assert text == "echo[gpt-4o]: hello there my friend"
            up.add_fault("drop_mid_stream", model="gpt-4o")
            s = await c.chat.completions.create(model="gpt-4o", messages=LONG, stream=True)
            chunks = [ch async for ch in s]
            assert chunks[-1].error["type"] == "upstream_error"
        return [r.router["request_id"] for r in rs]

    asyncio.run(main())
    recs = logged(store, 11)
    assert sorted(r.status for r in recs).count("error") == 1


def test_sync_and_aio_share_cooldowns(make, up):
    c = make(retry=RetryPolicy(max_attempts=1), failure_threshold=1)
    up.add_fault("status", status=500, model="deepseek-chat")
    c.chat.completions.create(model="auto:budget", messages=CODE)

    async def main():
        r = await c.aio.chat.completions.create(model="auto:budget", messages=CODE)
        await c.aio.aclose()
        return r

    assert asyncio.run(main()).router["model"] == "gpt-4o-mini"


def test_provider_messages_never_carry_keys(make, up, store):
    c = make(retry=RetryPolicy(max_attempts=1, max_fallbacks=0))
    up.add_fault("status", status=401, message="Incorrect API key provided: sk-proj-abc123***wxyz. Find yours")
    with pytest.raises(UpstreamError) as exc:
        c.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert "sk-proj" not in str(exc.value) and "[redacted]" in str(exc.value)
    (rec,) = logged(store, 1)
    assert "sk-proj" not in (rec.error or "") and "test" not in json.dumps(rec.chain)


def test_sync_client_over_the_raw_transport(router_, up, store):
    """The same facade over the raw transport: JSON views instead of SDK objects, same routing,
    retries, fallback, stream bookkeeping and log rows."""
    from router.serving.client import RawChunk, RawCompletion, RawTransport

    with RoutedClient(router_, transport=RawTransport(), base_url=up.base_url, api_key="test", usage=store,
                      retry=FAST, failure_threshold=10) as c:
        up.add_fault("status", status=500, model="deepseek-chat", times=3)
        r = c.chat.completions.create(model="auto:budget", messages=CODE)
        assert isinstance(r, RawCompletion) and r.router["model"] == "gpt-4o-mini"
        assert r.choices[0].message.content == "echo[gpt-4o-mini]: " + CODE[0]["content"]
        assert [(e["model"], e["status"]) for e in r.router["chain"]] == [
            ("deepseek-chat", "error")] * 3 + [("gpt-4o-mini", "ok")]
        s = c.chat.completions.create(model="auto:budget", messages=CODE, stream=True)
        chunks = list(s)
        assert all(isinstance(ch, RawChunk) for ch in chunks)
        assert _join(chunks) == "echo[deepseek-chat]: " + CODE[0]["content"] and s.router["status"] == "ok"
    recs = logged(store, 2)
    assert sorted(r.status for r in recs) == ["ok", "ok"] and all(r.completion_tokens > 0 for r in recs)


def test_transport_argument_is_checked(router_):
    from router.serving.client import RawTransport
    from router.serving.gateway import create_app

    with pytest.raises(ValueError, match="not both"):
        RoutedClient(router_, transport=RawTransport(), clients={"*": object()})
    with pytest.raises(TypeError, match="ChatTransport"):
        RoutedClient(router_, transport=object())
    with pytest.raises(ValueError, match="not both"):
        create_app(router_, client=RoutedClient(router_), transport=RawTransport())


def test_client_without_a_router_uses_the_configured_one(monkeypatch, tmp_path, up):
    """No router given: the project's precedence decides ($ROUTER_MODEL here, a saved folder)."""
    from router import ModelCatalog, Router

    catalog = ModelCatalog.load()
    only_cheap = ModelCatalog.from_dict({"models": {"glm-4-flash": catalog.to_dict()["models"]["glm-4-flash"]}})
    folder = Router.default(only_cheap).save(tmp_path / "r")
    monkeypatch.setenv("ROUTER_MODEL", str(folder))
    client = RoutedClient(base_url=up.base_url, api_key="k")
    assert client.router.catalog.names == ("glm-4-flash",)
    r = client.chat.completions.create(model="auto:quality", messages=HELLO)
    assert r.model == "glm-4-flash"
