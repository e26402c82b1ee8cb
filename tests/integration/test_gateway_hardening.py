"""Issue 13, the gateway and client parts: deadlines, cancelled callers, big prompts off the event
loop, cooldowns that do not cut retries, inputs that were 500s, tools, key redaction, feedback.

Every upstream call goes to a FakeUpstream on loopback; routing is ``Router.default()`` unless a
test builds its own. No test asserts on wall-clock time: waits are polls with a generous limit
for an event the fix makes happen (and that never happens without it).
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from router import Router
from router.errors import UpstreamError
from router.serving.client import AsyncRoutedClient, RawTransport, RetryPolicy, RoutedClient
from router.serving.gateway import create_app
from router.serving.usage.store import UsageStore
from router.tasks.taxonomy import RegexTaskClassifier
from tests.support.chat import CODE, FAST, HELLO
from tests.support.server import ServerThread

pytestmark = pytest.mark.integration

REASONING = [{"role": "user", "content": "Prove step by step that the square root of 2 is irrational"}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture
def store(tmp_path):
    s = UsageStore(f"sqlite:///{tmp_path}/usage.db")
    yield s
    s.close()


def rows(store):
    assert store.flush(5.0)
    return store.records()


def wait_for(predicate, limit=10.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    return predicate()


def _err(resp, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def _app(router, up, store=None, **kw):
    client_kw = {k: kw.pop(k) for k in ("deadline", "timeout", "retry", "failure_threshold") if k in kw}
    client = AsyncRoutedClient(router, base_url=up.base_url, api_key="upstream-key", usage=store,
                               transport=RawTransport(), **{"retry": FAST, **client_kw})
    return create_app(router, client=client, usage=store, **kw)


# ---- 1. the deadline ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["client", "request"])
def test_a_hung_upstream_ends_at_the_deadline_with_504_and_a_row(router_, up, store, where):
    """Without a deadline, 3 attempts x 4 models x the 60 s timeout: the hung upstream (held 8 s
    per attempt here) would answer 200 long after; with one, 504 and a logged row."""
    up.add_fault("hang", seconds=8.0, times=20)
    app = _app(router_, up, store, deadline=0.4 if where == "client" else 120.0)
    body = {"model": "auto", "messages": HELLO}
    if where == "request":
        body["deadline"] = 0.4
    with TestClient(app) as tc:
        r = tc.post("/v1/chat/completions", json=body)
        e = _err(r, 504)
    assert e["code"] == "deadline_exceeded" and "deadline of 0.4 s passed" in e["message"]
    up.release()
    (row,) = rows(store)
    assert row.request_id == r.headers["x-router-request-id"]
    assert row.status == "error" and "deadline" in row.error


def test_router_serve_takes_a_deadline(router_, up, tmp_path, monkeypatch):
    from router.cli.main import build_parser
    from router.cli.serve import _settings, build_app

    monkeypatch.setenv("GW_UPSTREAM_KEY", "upstream-key")
    args = build_parser().parse_args(["serve", "--base-url", up.base_url, "--api-key-env", "GW_UPSTREAM_KEY",
                                      "--no-usage", "--deadline", "0.3", "--max-header-bytes", "16384"])
    settings = _settings(args)
    assert settings["deadline"] == 0.3 and settings["max_header_bytes"] == 16384
    app, _ = build_app(settings, router_)
    up.add_fault("hang", seconds=8.0, times=20)
    with TestClient(app) as tc:
        assert _err(tc.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO}), 504)["code"] \
            == "deadline_exceeded"
    up.release()


def test_invalid_deadlines_are_400(router_, up):
    with TestClient(_app(router_, up)) as tc:
        for bad in (0, -1, "soon", True):
            e = _err(tc.post("/v1/chat/completions", json={"model": "auto", "messages": HELLO, "deadline": bad}), 400)
            assert "deadline" in e["message"]
    assert not up.requests
    with pytest.raises(ValueError, match="deadline"):
        AsyncRoutedClient(router_, base_url=up.base_url, deadline=0)


def test_a_stream_is_bounded_before_its_first_output_and_between_chunks(router_, up, store):
    app = _app(router_, up, store, deadline=0.4)
    with TestClient(app) as tc:
        up.add_fault("hang", seconds=8.0, times=20)  # nothing at all: 504 before any byte is sent
        r = tc.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, "stream": True})
        assert _err(r, 504)["code"] == "deadline_exceeded"
        up.reset()
        up.add_fault("hang", chunks=1, seconds=8.0)  # one chunk, then silence: the stream ends with an error
        with tc.stream("POST", "/v1/chat/completions",
                       json={"model": "gpt-4o", "messages": HELLO, "stream": True}) as resp:
            assert resp.status_code == 200
            events = resp.read().decode().split("\n\n")
    up.release()
    assert events[-2] == "data: [DONE]"
    err = json.loads(events[-3][len("data: "):])["error"]
    assert "stalled" in err["message"] and err["code"] == "timeout"
    assert [r.status for r in rows(store)] == ["error", "error"]


# ---- 2. a caller that hangs up cancels the upstream call ------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_caller_that_disconnects_cancels_the_upstream_call(router_, up, store, stream):
    """The upstream holds the request until released (never, here): without cancellation the
    gateway would keep its connection open and log nothing until then."""
    up.add_fault("hang", seconds=30.0)
    with ServerThread(_app(router_, up, store)) as srv:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(srv.url + "/v1/chat/completions", timeout=httpx.Timeout(10.0, read=0.5),
                       json={"model": "gpt-4o", "messages": HELLO, "stream": stream})
        assert wait_for(lambda: up.hung_up == 1), "the upstream call was not cancelled"
        got = wait_for(lambda: rows(store))
    up.release()
    (row,) = got
    assert row.status == "cancelled" and row.model == "gpt-4o" and row.stream is stream


# ---- 3. big prompts never block the event loop ----------------------------------------------


def test_the_size_limit_is_applied_before_parsing(router_, up, store):
    """A body over the limit that is not JSON is a 413, not a 400: the size check came first."""
    with TestClient(_app(router_, up, store, max_body_bytes=1000)) as tc:
        r = tc.post("/v1/chat/completions", content=b"{not json" + b" " * 2000,
                    headers={"content-type": "application/json"})
        assert _err(r, 413)["code"] == "request_too_large"
    (row,) = rows(store)
    assert row.status == "rejected" and row.request_id == r.headers["x-router-request-id"]


class _Gate:
    """Blocks the classifier on chosen calls until released; says when it is blocked."""

    def __init__(self, block_on):
        self.block_on, self.calls = block_on, 0
        self.entered, self.release = threading.Event(), threading.Event()

    def wait_here(self, texts):
        self.calls += 1
        if self.block_on(self.calls, texts):
            self.entered.set()
            assert self.release.wait(20)


class _BlockingLearned:
    """A stand-in for a learned classifier (not the regex one): the regex's answers, gated."""

    source = "learned"

    def __init__(self, gate):
        self.gate, self.inner = gate, RegexTaskClassifier()

    def to_config(self):
        return {"type": "stub"}

    def featurize(self, texts):
        self.gate.wait_here(texts)
        return None

    def predict_features(self, X, texts):
        return self.inner.predict(texts)

    def predict(self, texts):
        return self.inner.predict(texts)


class _BlockingRegex(RegexTaskClassifier):
    def __init__(self, gate):
        self.gate = gate

    def featurize(self, texts):
        self.gate.wait_here(texts)
        return None


def _health_while_blocked(router, up, request_body):
    gate = router.classifier.gate
    app = _app(router, up, retry=RetryPolicy(max_attempts=1, base_delay=0.0))
    result = {}
    with ServerThread(app) as srv:
        def call():
            result["r"] = httpx.post(srv.url + "/v1/chat/completions", json=request_body, timeout=30)

        t = threading.Thread(target=call)
        t.start()
        try:
            assert gate.entered.wait(20), "the classifier was never called"
            health = httpx.get(srv.url + "/health", timeout=5)  # the loop must be free meanwhile
        finally:
            gate.release.set()
            t.join(30)
    assert health.status_code == 200
    return result["r"]


def test_a_learned_routers_fallback_routing_runs_off_the_loop(catalog, up):
    """The first routing already ran in a thread; the fallback's ran on the event loop."""
    router = Router(catalog, classifier=_BlockingLearned(_Gate(lambda n, texts: n == 2)))
    up.add_fault("status", status=500, model="deepseek-chat")
    r = _health_while_blocked(router, up, {"model": "auto:budget", "messages": CODE})
    assert r.status_code == 200 and r.headers["x-router-model"] != "deepseek-chat"


def test_a_big_prompt_is_routed_off_the_loop(catalog, up):
    router = Router(catalog, classifier=_BlockingRegex(_Gate(lambda n, texts: len(texts[0]) > 50_000)))
    big = [{"role": "user", "content": "word " * 20_000}]
    r = _health_while_blocked(router, up, {"model": "auto", "messages": big})
    assert r.status_code == 200


# ---- 4. a cooldown does not cut a named model's retries short --------------------------------


def test_a_cooldown_tripped_mid_request_does_not_cut_retries(router_, up, store):
    up.add_fault("status", status=500, model="gpt-4o", times=2)
    client = RoutedClient(router_, base_url=up.base_url, api_key="k", retry=FAST, failure_threshold=1,
                          usage=store, transport=RawTransport())
    r = client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert r.router["model"] == "gpt-4o" and [e["status"] for e in r.router["chain"]] == ["error", "error", "ok"]
    assert "gpt-4o" not in client.cooling()  # the success ended the count
    up.add_fault("status", status=500, model="deepseek-chat", times=5)  # routed: the cooldown still falls back
    r = client.chat.completions.create(model="auto:budget", messages=CODE)
    assert [e["model"] for e in r.router["chain"]] == ["deepseek-chat", r.router["model"]]
    client.close()


# ---- 6. inputs that were 500s are 400s with a row -------------------------------------------


@pytest.mark.parametrize("name, body", [
    ("stream_options", b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": true, '
                       b'"stream_options": "yes"}'),
    ("nested", b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 900
     + b"]" * 900 + b"}"),
    ("too deep for json", b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "x": '
     + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("surrogate", b'{"model": "auto", "messages": [{"role": "user", "content": "hi \\ud800 there"}]}'),
    ("nan", b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}'),
    ("malformed", b'{"model": "auto", "messages": ['),
    ("not an object", b"[1, 2]"),
    ("no messages", b'{"model": "auto"}'),
], ids=lambda v: v.replace(" ", "_") if isinstance(v, str) else "")
def test_bad_inputs_are_400_with_a_log_row(router_, up, store, name, body):
    with TestClient(_app(router_, up, store)) as tc:
        r = tc.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    e = _err(r, 400)
    assert e["type"] == "invalid_request_error"
    (row,) = rows(store)
    assert row.status == "rejected" and row.request_id == r.headers["x-router-request-id"]
    assert not up.requests


def test_a_nan_passed_to_the_library_is_refused_before_sending(router_, up):
    client = RoutedClient(router_, base_url=up.base_url, api_key="k", retry=FAST, transport=RawTransport())
    with pytest.raises(Exception, match="temperature"):
        client.chat.completions.create(model="gpt-4o", messages=HELLO, temperature=float("nan"))
    assert not up.requests


# ---- 7. tools go to tools-capable models and are never dropped ------------------------------


def test_a_request_with_tools_goes_to_a_tools_capable_model(router_, up):
    assert router_.route(REASONING, tier="budget").model == "deepseek-reasoner"  # no tools capability
    d = router_.route(REASONING, tier="budget", require_tools=True)
    assert "tools" in router_.catalog[d.model].capabilities
    assert d.excluded["deepseek-reasoner"] == "request has tools; model has no tools capability"
    with TestClient(_app(router_, up)) as tc:
        for extra in ({"tools": TOOLS}, {"tools": TOOLS, "tool_choice": "auto"}):
            r = tc.post("/v1/chat/completions", json={"model": "auto:budget", "messages": REASONING, **extra})
            assert r.status_code == 200 and r.headers["x-router-model"] == d.model
            sent = up.requests[-1]["body"]
            assert sent["model"] == d.model and all(sent[k] == v for k, v in extra.items())
        # a named model keeps them too (its catalog entry lists them as unsupported)
        r = tc.post("/v1/chat/completions", json={"model": "deepseek-reasoner", "messages": REASONING,
                                                  "tools": TOOLS, "tool_choice": "auto", "temperature": 0.5})
        sent = up.requests[-1]["body"]
        assert r.status_code == 200 and sent["tools"] == TOOLS and sent["tool_choice"] == "auto"
        assert "temperature" not in sent


def test_provider_errors_are_redacted_of_the_configured_key(router_, up, store):
    secret = "upstream-secret-value-0123456789"  # no sk- prefix: the patterns alone miss it
    client = AsyncRoutedClient(router_, base_url=up.base_url, api_key=secret, usage=store, transport=RawTransport(),
                               retry=FAST)
    up.add_fault("status", status=401, message=f"Incorrect API key provided: {secret}. Or {secret[-10:]}?",
                 times=5)
    with TestClient(create_app(router_, client=client, usage=store)) as tc:
        r = tc.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO})
    assert r.status_code == 502 and "Incorrect API key" in r.text
    assert secret not in r.text and secret[-10:] not in r.text
    (row,) = rows(store)
    assert "Incorrect API key" in row.error and secret not in row.error and secret[-10:] not in row.error


@pytest.mark.parametrize("raw", [False, True])
def test_an_error_event_mid_stream_is_redacted_too(router_, up, raw):
    secret = "stream-secret-value-0123456789"
    client = RoutedClient(router_, base_url=up.base_url, api_key=secret, retry=FAST,
                          transport=RawTransport() if raw else None)
    up.add_fault("error_event", chunks=2, message=f"overloaded; your key {secret} is fine")
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=CODE, stream=True))
    err = chunks[-1].error
    message = err.message if raw else err["message"]  # a JSON view of the raw event, or the SDK's dict
    assert chunks[1].choices and message.endswith("overloaded; your key [redacted] is fine")
    client.close()


def test_a_sync_client_redacts_the_key_too(router_, up):
    secret = "another-secret-value-abcdefghij"
    client = RoutedClient(router_, base_url=up.base_url, api_key=secret, retry=FAST)
    up.add_fault("status", status=403, message=f"key {secret} is not allowed", times=5)
    with pytest.raises(UpstreamError) as exc:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert "is not allowed" in str(exc.value) and secret not in str(exc.value)
    assert secret not in (exc.value.upstream_message or "")


# ---- 8. feedback edges ------------------------------------------------------------------------


def test_feedback_read_back_long_comments_and_which_field_won(router_, up, store):
    with TestClient(_app(router_, up, store)) as tc:
        rid = tc.post("/v1/chat/completions", json={"model": "auto", "messages": HELLO}).headers["x-router-request-id"]
        assert store.flush(5.0)
        assert tc.get(f"/v1/feedback/{rid}").json() == {"object": "list", "request_id": rid, "data": []}
        r = tc.post("/v1/feedback", json={"request_id": rid, "score": 0.25, "thumbs": "up", "comment": "meh"})
        assert r.status_code == 200
        assert r.json()["score"] == 0.25 and r.json()["used"] == "score" and r.json()["ignored"] == ["thumbs"]
        r = tc.post("/v1/feedback", json={"request_id": rid, "thumbs": "up"})
        assert r.json()["used"] == "thumbs" and "ignored" not in r.json()
        e = _err(tc.post("/v1/feedback", json={"request_id": rid, "score": 1, "comment": "x" * 4001}), 413)
        assert e["param"] == "comment" and e["code"] == "comment_too_long"
        got = tc.get(f"/v1/feedback/{rid}").json()
        assert [f["score"] for f in got["data"]] == [0.25, 1.0] and got["data"][0]["comment"] == "meh"
        assert _err(tc.get("/v1/feedback/req_unknown"), 404)["code"] == "request_not_found"


# ---- 5. request headers are bounded on the fast protocol ------------------------------------


def _raw_exchange(port, data, read=True):
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(data)
        except OSError:  # the server closed first: what it sent before is still readable
            pass
        got = b""
        while read:
            try:
                part = s.recv(65536)
            except OSError:
                break
            if not part:
                break
            got += part
        return got


def test_unfinished_huge_headers_get_431_and_a_closed_connection(router_, up):
    from router.serving.gateway.headers import uvicorn_header_settings

    app = _app(router_, up, max_body_bytes=2_000_000)
    with ServerThread(app, **uvicorn_header_settings(16_384)) as srv:
        # 200 KB of a header that never ends: without the bound the server keeps reading
        got = _raw_exchange(srv.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000)
        assert got.startswith(b"HTTP/1.1 431 ") and b"headers_too_large" in got
        # normal requests pass: 10 KB of headers, and a body of 600 KB sent with its headers
        with httpx.Client(base_url=srv.url, timeout=20) as c:
            r = c.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO},
                       headers={"x-pad": "p" * 10_000})
            assert r.status_code == 200
            big = [{"role": "user", "content": "word " * 120_000}]
            assert c.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": big}).status_code == 200
            assert c.get("/health").status_code == 200  # the same keep-alive connection, the count reset
