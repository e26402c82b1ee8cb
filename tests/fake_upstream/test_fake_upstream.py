"""The test upstream (tests/support/fake_upstream.py) driven by the real ``openai`` SDK over HTTP."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.integration

MSGS = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture
def client(up):
    with openai.OpenAI(base_url=up.base_url, api_key="test", max_retries=0, timeout=5) as c:
        yield c


def _stream_text(stream) -> tuple[str, list]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


# ---- normal answers -----------------------------------------------------------------------


def test_completion_content_and_usage(up, client):
    r = client.chat.completions.create(model="small-model", messages=MSGS)
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-") and r.created > 0
    assert r.model == "small-model"
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "echo[small-model]: What is the capital of France?"
    assert choice.finish_reason == "stop"
    # 3 + 6 words, + 4 per message
    assert r.usage.prompt_tokens == 3 + 6 + 2 * 4
    assert r.usage.completion_tokens == len(choice.message.content.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_content_parts_are_joined(client):
    msgs = [{"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "world"}]}]
    r = client.chat.completions.create(model="m", messages=msgs)
    assert r.choices[0].message.content == "echo[m]: hello world"
    assert r.usage.prompt_tokens == 2 + 4


def test_last_user_message_is_echoed(client):
    msgs = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second one"}]
    r = client.chat.completions.create(model="m", messages=msgs)
    assert r.choices[0].message.content == "echo[m]: second one"


def test_streaming_matches_non_streaming(client):
    plain = client.chat.completions.create(model="m", messages=MSGS)
    stream = client.chat.completions.create(model="m", messages=MSGS, stream=True,
                                            stream_options={"include_usage": True})
    text, chunks = _stream_text(stream)
    assert text == plain.choices[0].message.content
    assert all(c.object == "chat.completion.chunk" and c.model == "m" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 3
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finish] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_without_usage(client):
    text, chunks = _stream_text(client.chat.completions.create(model="m", messages=MSGS, stream=True))
    assert text == "echo[m]: What is the capital of France?"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_raw_sse_wire_format(up):
    """The exact bytes: `data: {json}\\n\\n` events ending with `data: [DONE]\\n\\n`."""
    import urllib.request

    body = json.dumps({"model": "m", "messages": MSGS, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    req = urllib.request.Request(up.base_url + "/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = resp.read().decode()
    assert raw.endswith("data: [DONE]\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(e.startswith("data: ") for e in events)
    payloads = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["prompt_tokens"] > 0
    assert payloads[-2]["choices"][0]["finish_reason"] == "stop"


def test_models_endpoint(client):
    ids = [m.id for m in client.models.list()]
    assert ids and all(isinstance(i, str) for i in ids)


def test_keep_alive(up, client):
    """Sequential requests reuse one connection (the latency without Nagle stalls is measured in
    bench/bench_fake_upstream.py, not asserted here)."""
    for _ in range(5):
        client.chat.completions.create(model="m", messages=MSGS)
    assert len({r["peer"] for r in up.requests[-5:]}) == 1


# ---- scripted replies ---------------------------------------------------------------------


def test_set_reply_is_per_model_and_persistent(up, client):
    up.set_reply("weak", "TODO: finish this later")
    for _ in range(2):
        r = client.chat.completions.create(model="weak", messages=MSGS)
        assert r.choices[0].message.content == "TODO: finish this later"
        assert r.usage.completion_tokens == 4
    assert client.chat.completions.create(model="strong", messages=MSGS).choices[0].message.content.startswith(
        "echo[strong]:")
    text, _ = _stream_text(client.chat.completions.create(model="weak", messages=MSGS, stream=True))
    assert text == "TODO: finish this later"
    up.clear_replies()
    assert client.chat.completions.create(model="weak", messages=MSGS).choices[0].message.content.startswith(
        "echo[weak]:")


def test_reply_fault_is_one_shot(up, client):
    up.add_fault("reply", content="TODO")
    assert client.chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "TODO"
    assert client.chat.completions.create(model="m", messages=MSGS).choices[0].message.content.startswith("echo")


# ---- faults -------------------------------------------------------------------------------


def test_delay(up, client):
    up.add_fault("delay", seconds=0.3)
    t = time.perf_counter()
    r = client.chat.completions.create(model="m", messages=MSGS)
    assert time.perf_counter() - t >= 0.3
    assert r.choices[0].message.content.startswith("echo[m]:")


def test_delay_triggers_client_timeout(up):
    up.add_fault("delay", seconds=0.6)
    with openai.OpenAI(base_url=up.base_url, api_key="test", max_retries=0, timeout=0.2) as c:
        with pytest.raises(openai.APITimeoutError):
            c.chat.completions.create(model="m", messages=MSGS)


def test_429_with_retry_after(up, client):
    up.add_fault("status", status=429, retry_after=7)
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model="m", messages=MSGS)
    err = ei.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "7"
    assert err.body["type"] == "rate_limit_error" and err.body["code"] == "rate_limit_exceeded"
    assert isinstance(err.body["message"], str)
    # one fault, one request: the next one is answered
    assert client.chat.completions.create(model="m", messages=MSGS).choices[0].finish_reason == "stop"


@pytest.mark.parametrize(("status", "exc"), [
    (500, openai.InternalServerError),
    (503, openai.InternalServerError),
    (400, openai.BadRequestError),
])
def test_status_faults(up, client, status, exc):
    up.add_fault("status", status=status, message="boom")
    with pytest.raises(exc) as ei:
        client.chat.completions.create(model="m", messages=MSGS)
    assert ei.value.status_code == status
    assert ei.value.body["message"] == "boom"
    assert "retry-after" not in ei.value.response.headers


def test_status_fault_on_stream_request(up, client):
    up.add_fault("status", status=503)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=MSGS, stream=True)


def test_malformed(up, client):
    # The SDK does not wrap a 200 body that is not JSON: the stdlib's JSONDecodeError escapes.
    up.add_fault("malformed")
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="m", messages=MSGS)
    assert not issubclass(json.JSONDecodeError, openai.APIError)


def test_malformed_stream(up, client):
    up.add_fault("malformed")
    stream = client.chat.completions.create(model="m", messages=MSGS, stream=True)
    with pytest.raises(json.JSONDecodeError):
        list(stream)


@pytest.mark.parametrize("stream", [False, True])
def test_drop(up, client, stream):
    up.add_fault("drop")
    with pytest.raises(openai.APIConnectionError) as ei:
        client.chat.completions.create(model="m", messages=MSGS, stream=stream)
    assert not isinstance(ei.value, openai.APITimeoutError)
    # the client recovers on a fresh connection
    assert client.chat.completions.create(model="m", messages=MSGS).choices[0].message.content.startswith("echo")


def test_drop_mid_stream(up, client):
    up.add_fault("drop_mid_stream")
    stream = client.chat.completions.create(model="m", messages=MSGS, stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert len(received) == 2
    assert "".join(received) == "echo[m]: What"
    assert client.chat.completions.create(model="m", messages=MSGS).choices[0].message.content.startswith("echo")


def test_drop_mid_stream_non_streaming(up, client):
    up.add_fault("drop_mid_stream")
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=MSGS)


def test_faults_are_fifo_and_times(up, client):
    up.add_fault("status", status=500, times=2)
    up.add_fault("status", status=429)
    for exc in (openai.InternalServerError, openai.InternalServerError, openai.RateLimitError):
        with pytest.raises(exc):
            client.chat.completions.create(model="m", messages=MSGS)
    assert client.chat.completions.create(model="m", messages=MSGS).choices[0].finish_reason == "stop"


def test_model_scoped_faults(up, client):
    up.add_fault("status", status=503, model="flaky")
    up.add_fault("reply", content="for anyone")
    # "steady" skips the fault scoped to "flaky" and takes the next unscoped one
    assert client.chat.completions.create(model="steady", messages=MSGS).choices[0].message.content == "for anyone"
    assert client.chat.completions.create(model="steady", messages=MSGS).choices[0].message.content.startswith(
        "echo[steady]")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="flaky", messages=MSGS)
    assert client.chat.completions.create(model="flaky", messages=MSGS).choices[0].message.content.startswith(
        "echo[flaky]")


def test_unknown_fault_kind_rejected(up):
    with pytest.raises(ValueError):
        up.add_fault("explode")


def test_reset_clears_faults_and_requests(up, client):
    client.chat.completions.create(model="m", messages=MSGS)
    up.add_fault("status", status=500)
    assert len(up.requests) == 1 and len(up.pending_faults) == 1
    up.reset()
    assert up.pending_faults == []
    assert up.requests == []
    assert client.chat.completions.create(model="m", messages=MSGS).choices[0].finish_reason == "stop"


# ---- recording ----------------------------------------------------------------------------


def test_requests_are_recorded(up, client):
    client.chat.completions.create(model="a", messages=MSGS, temperature=0.25)
    up.add_fault("status", status=500)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="b", messages=MSGS, stream=True)
    reqs = up.requests
    assert [r["model"] for r in reqs] == ["a", "b"]
    assert reqs[0]["body"]["messages"] == MSGS and reqs[0]["body"]["temperature"] == 0.25
    assert reqs[1]["body"]["stream"] is True
    headers = {k.lower(): v for k, v in reqs[0]["headers"].items()}
    assert headers["authorization"] == "Bearer test"
    assert reqs[0]["time"] <= reqs[1]["time"] <= time.time()


# ---- api key ------------------------------------------------------------------------------


def test_api_key_check():
    with FakeUpstream(api_key="sk-right") as up:
        with openai.OpenAI(base_url=up.base_url, api_key="sk-wrong", max_retries=0, timeout=5) as bad:
            with pytest.raises(openai.AuthenticationError) as ei:
                bad.chat.completions.create(model="m", messages=MSGS)
            assert ei.value.status_code == 401
            assert ei.value.body["code"] == "invalid_api_key"
        with openai.OpenAI(base_url=up.base_url, api_key="sk-right", max_retries=0, timeout=5) as good:
            assert good.chat.completions.create(model="m", messages=MSGS).choices[0].finish_reason == "stop"
            assert [m.id for m in good.models.list()]


# ---- concurrency and lifecycle ------------------------------------------------------------


def test_concurrent_requests(up):
    up.add_fault("delay", seconds=0.2, times=30)
    with openai.OpenAI(base_url=up.base_url, api_key="test", max_retries=0, timeout=10) as c:
        def call(i):
            stream = i % 3 == 0
            msgs = [{"role": "user", "content": f"question {i}"}]
            if stream:
                return _stream_text(c.chat.completions.create(model=f"m{i}", messages=msgs, stream=True))[0]
            return c.chat.completions.create(model=f"m{i}", messages=msgs).choices[0].message.content

        with ThreadPoolExecutor(max_workers=30) as pool:
            results = list(pool.map(call, range(30)))
    assert results == [f"echo[m{i}]: question {i}" for i in range(30)]
    assert len(up.requests) == 30
    assert len({r["peer"] for r in up.requests}) > 1  # many connections at once (timing: the bench)


def test_stop_is_prompt_and_closes_socket():
    up = FakeUpstream().start()
    port = up.port
    with openai.OpenAI(base_url=up.base_url, api_key="test", max_retries=0, timeout=5) as c:
        c.chat.completions.create(model="m", messages=MSGS)  # leaves a keep-alive connection open
        up.stop()  # returns although a keep-alive connection is open (its time: the bench)
        with pytest.raises(openai.APIConnectionError):
            c.chat.completions.create(model="m", messages=MSGS)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    up.stop()  # idempotent
