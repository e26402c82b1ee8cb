"""The gateway over HTTP: uvicorn on 127.0.0.1 (ephemeral port, background thread) driven by the
real ``openai`` SDK, plus FastAPI's TestClient for edge cases. Every upstream call goes to a
FakeUpstream on loopback; routing is ``Router.default()``.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from router import RoutedClient
from router.cli.main import main as cli_main
from router.errors import InvalidRequestError
from router.serving.client import AsyncRoutedClient, RawTransport, RetryPolicy
from router.serving.gateway import create_app
from router.serving.usage.store import UsageStore
from tests.support.chat import CODE, FAST, HELLO, LONG
from tests.support.fake_upstream import FakeUpstream
from tests.support.server import ServerThread

pytestmark = pytest.mark.integration

KEY = "gw-test-key"


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream(api_key="upstream-key") as up:
        yield up


@pytest.fixture(scope="module")
def db_url(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('gw')}/usage.db"


@pytest.fixture(scope="module")
def store(db_url):
    s = UsageStore(db_url)
    yield s
    s.close()


@pytest.fixture(scope="module", params=["sdk", "raw"])
def transport(request):
    """Every gateway test runs over both transports: the SDK (the reference) and the raw one."""
    return RawTransport() if request.param == "raw" else None


@pytest.fixture(scope="module")
def gateway(router_, upstream, store, transport):
    client = RoutedClient(router_, base_url=upstream.base_url, api_key="upstream-key", usage=store, retry=FAST,
                          timeout=5.0, failure_threshold=1000, transport=transport)
    app = create_app(router_, client=client, usage=store, api_keys=[KEY])
    with ServerThread(app) as srv:
        yield srv
    client.close()


@pytest.fixture
def sdk(gateway):
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0, timeout=20) as c:
        yield c


@pytest.fixture
def http(gateway):
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=20) as c:
        yield c


def new_rows(store, before_ids: set[str]):
    assert store.flush(5.0)
    return [r for r in store.records() if r.request_id not in before_ids]


def ids_of(store):
    assert store.flush(5.0)
    return {r.request_id for r in store.records()}


# ---- chat completions through the real SDK -------------------------------------------------


def test_auto_routing_headers_and_body(sdk, up, store):
    before = ids_of(store)
    raw = sdk.chat.completions.with_raw_response.create(model="auto:budget", messages=CODE)
    h = raw.headers
    assert h["x-router-model"] == "deepseek-chat" and h["x-router-task"] == "code" and h["x-router-tier"] == "budget"
    assert h["x-router-request-id"].startswith("req_") and float(h["x-router-cost"]) > 0
    r = raw.parse()
    assert r.choices[0].message.content == "echo[deepseek-chat]: " + CODE[0]["content"]
    body = json.loads(raw.http_response.text)
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage"} and "router" not in body
    assert up.requests[-1]["body"]["model"] == "deepseek-chat"
    (row,) = new_rows(store, before)
    assert row.request_id == h["x-router-request-id"] and row.cost_usd == pytest.approx(float(h["x-router-cost"]))
    assert row.client and row.client.startswith("key:") and KEY not in row.client


def test_pass_through_and_router_options(sdk, up):
    raw = sdk.chat.completions.with_raw_response.create(model="glm-5.1", messages=HELLO, temperature=0.3)
    assert raw.headers["x-router-model"] == "glm-5.1" and "x-router-tier" not in raw.headers
    assert up.requests[-1]["body"]["temperature"] == 0.3
    raw = sdk.chat.completions.with_raw_response.create(
        model="auto:quality", messages=CODE, extra_body={"router": {"max_cost": 0.0013}})
    assert raw.headers["x-router-model"] != "gpt-4o"
    assert "router" not in up.requests[-1]["body"]


def test_adapters_through_the_gateway(sdk, up):
    sdk.chat.completions.create(model="deepseek-reasoner", messages=HELLO, temperature=0.9, max_tokens=99_999)
    body = up.requests[-1]["body"]
    assert "temperature" not in body and body["max_tokens"] == 32768


def test_streaming_deltas_and_usage(sdk, up, store):
    before = ids_of(store)
    with sdk.chat.completions.with_streaming_response.create(
            model="auto", messages=HELLO, stream=True, stream_options={"include_usage": True}) as raw:
        assert raw.headers["x-router-model"] == "deepseek-chat"
        assert raw.headers["content-type"].startswith("text/event-stream")
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo[deepseek-chat]: hello there my friend"
    assert chunks[-1].usage.completion_tokens == len(text.split())
    (row,) = new_rows(store, before)
    assert row.stream and row.status == "ok" and row.completion_tokens == len(text.split())


def test_sse_wire_format_is_openais(http, up):
    with http.stream("POST", "/v1/chat/completions",
                     json={"model": "gpt-4o", "messages": HELLO, "stream": True}) as resp:
        assert resp.status_code == 200
        raw = resp.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(p["choices"] for p in payloads)  # the usage chunk we asked for is not passed on


def test_stream_error_after_first_token_is_an_error_event(sdk, http, up, store):
    before = ids_of(store)
    up.add_fault("drop_mid_stream", model="deepseek-chat")
    got = []
    with pytest.raises(openai.APIError) as exc:
        for c in sdk.chat.completions.create(model="auto:budget", messages=LONG, stream=True):
            got.append(c)
    assert got and "broke" in str(exc.value)
    up.add_fault("drop_mid_stream", model="deepseek-chat")
    with http.stream("POST", "/v1/chat/completions",
                     json={"model": "auto:budget", "messages": LONG, "stream": True}) as resp:
        events = resp.read().decode().split("\n\n")
    assert json.loads(events[-3][len("data: "):])["error"]["type"] == "upstream_error"
    assert events[-2] == "data: [DONE]"
    rows = new_rows(store, before)
    assert [r.status for r in rows] == ["error", "error"]


def test_stream_drop_before_first_token_falls_back(sdk, up):
    up.set_reply("deepseek-chat", "")
    up.add_fault("drop_mid_stream", model="deepseek-chat", times=3)
    with sdk.chat.completions.with_streaming_response.create(model="auto:budget", messages=CODE,
                                                             stream=True) as raw:
        assert raw.headers["x-router-model"] == "gpt-4o-mini"
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text.startswith("echo[gpt-4o-mini]")


# ---- faults -------------------------------------------------------------------------------


def test_429_then_success(sdk, up):
    up.add_fault("status", status=429, retry_after=0)
    raw = sdk.chat.completions.with_raw_response.create(model="auto:budget", messages=CODE)
    assert raw.headers["x-router-model"] == "deepseek-chat" and len(up.requests) == 2


def test_500s_fall_back_to_the_next_candidate(sdk, up, store):
    before = ids_of(store)
    up.add_fault("status", status=500, model="deepseek-chat", times=3)
    raw = sdk.chat.completions.with_raw_response.create(model="auto:budget", messages=CODE)
    assert raw.headers["x-router-model"] == "gpt-4o-mini"
    (row,) = new_rows(store, before)
    assert [e["model"] for e in row.chain] == ["deepseek-chat"] * 3 + ["gpt-4o-mini"]


def test_malformed_json_and_drop_are_retried(sdk, up):
    up.add_fault("malformed", model="deepseek-chat")
    up.add_fault("drop", model="deepseek-chat")
    raw = sdk.chat.completions.with_raw_response.create(model="auto:budget", messages=CODE)
    assert raw.headers["x-router-model"] == "deepseek-chat" and len(up.requests) == 3


@pytest.mark.parametrize("fault, params", [
    ("status", {"status": 503}), ("malformed", {}), ("drop", {}), ("error_event", {}), ("drop_mid_stream", {}),
])
def test_stream_failures_before_the_first_token_are_retried(sdk, up, store, fault, params):
    """On the gateway's raw stream path as on the SDK path: a failure before any output (HTTP
    error, a non-JSON event, a dropped connection, an error event, a drop before content) is
    retried on the same model; the caller sees one clean stream and one log row."""
    before = ids_of(store)
    if fault == "drop_mid_stream":
        up.set_reply("deepseek-chat", "")  # the drop comes before any content
    up.add_fault(fault, model="deepseek-chat", **params)
    with sdk.chat.completions.with_streaming_response.create(model="deepseek-chat", messages=HELLO,
                                                             stream=True) as raw:
        assert raw.headers["x-router-model"] == "deepseek-chat"
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == ("" if fault == "drop_mid_stream" else "echo[deepseek-chat]: hello there my friend")
    assert len(up.requests) == 2
    (row,) = new_rows(store, before)
    assert row.stream and row.status == "ok"
    assert [e["status"] for e in row.chain] == ["error", "ok"]


def test_upstream_failure_is_502_and_400_is_not_retried(sdk, up, store):
    before = ids_of(store)
    up.add_fault("status", status=500, model="gpt-4o", times=3)
    with pytest.raises(openai.InternalServerError) as exc:
        sdk.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert exc.value.status_code == 502
    assert exc.value.body["type"] == "server_error" and exc.value.body["code"] == "upstream_error"
    assert exc.value.response.headers["x-router-request-id"].startswith("req_")
    up.reset()
    up.add_fault("status", status=400, message="unsupported value for foo")
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.chat.completions.create(model="auto", messages=HELLO)
    assert "unsupported value for foo" in exc.value.body["message"]
    assert len(up.requests) == 1
    assert [r.status for r in new_rows(store, before)] == ["error", "error"]


def test_escalation_through_the_gateway(sdk, up):
    up.set_reply("deepseek-chat", "def f():\n    pass  # TODO")
    raw = sdk.chat.completions.with_raw_response.create(model="auto:budget", messages=CODE,
                                                        extra_body={"max_cost": 0.01})
    assert raw.headers["x-router-model"] == "deepseek-v4-pro"


@pytest.mark.parametrize("raw", [False, True])
def test_upstream_timeout_is_504(router_, up, tmp_path, raw):
    client = RoutedClient(router_, base_url=up.base_url, api_key="upstream-key", timeout=0.3,
                          retry=RetryPolicy(max_attempts=1, max_fallbacks=0),
                          transport=RawTransport() if raw else None)
    up.add_fault("delay", seconds=1.0)
    with TestClient(create_app(router_, client=client)) as tc:
        r = tc.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO})
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout" and r.json()["error"]["type"] == "server_error"


# ---- concurrency --------------------------------------------------------------------------


def test_40_parallel_requests_give_40_log_rows(sdk, up, store):
    before = ids_of(store)

    def one(i):
        raw = sdk.chat.completions.with_raw_response.create(
            model="auto" if i % 2 else "gpt-4o-mini", messages=[{"role": "user", "content": f"hello number {i}"}])
        assert raw.parse().choices[0].message.content.endswith(f"hello number {i}")
        return raw.headers["x-router-request-id"]

    with ThreadPoolExecutor(40) as pool:
        ids = list(pool.map(one, range(40)))
    assert len(set(ids)) == 40
    rows = new_rows(store, before)
    assert len(rows) == 40 and {r.request_id for r in rows} == set(ids)


# ---- auth, errors, limits -----------------------------------------------------------------


def test_auth(gateway, up):
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as exc:
            bad.chat.completions.create(model="auto", messages=HELLO)
    assert exc.value.body["code"] == "invalid_api_key" and set(exc.value.body) == {"message", "type", "param", "code"}
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "auto", "messages": HELLO})
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(gateway.url + "/v1/models").status_code == 401
    assert httpx.get(gateway.url + "/health").status_code == 200  # health needs no key
    assert not up.requests


def test_models_endpoint(sdk, router_):
    ids = [m.id for m in sdk.models.list().data]
    assert ids[:4] == ["auto", "auto:budget", "auto:balanced", "auto:quality"]
    assert set(ids[4:]) == set(router_.catalog.names)
    assert sdk.models.retrieve("auto:budget").id == "auto:budget"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-9")


@pytest.fixture(scope="module")
def tc(router_, upstream, tmp_path_factory, transport):
    store = UsageStore(f"sqlite:///{tmp_path_factory.mktemp('tc')}/usage.db")
    client = RoutedClient(router_, base_url=upstream.base_url, api_key="upstream-key", usage=store, retry=FAST,
                          transport=transport)
    with TestClient(create_app(router_, client=client, usage=store, max_body_bytes=2000)) as c:
        yield c
    store.close()


def _err(resp, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_error_bodies(tc, up):
    post = lambda **kw: tc.post("/v1/chat/completions", **kw)  # noqa: E731
    e = _err(post(content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert e["type"] == "invalid_request_error"
    _err(post(json=[1, 2]), 400)
    assert _err(post(json={"model": "auto"}), 400)["param"] == "messages"
    assert _err(post(json={"model": "auto", "messages": "hi"}), 400)["param"] == "messages"
    assert _err(post(json={"model": "auto", "messages": []}), 400)["param"] == "messages"
    e = _err(post(json={"model": "auto", "messages": [{"role": "system", "content": "x"}]}), 400)
    assert "no user message" in e["message"]
    e = _err(post(json={"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}), 400)
    assert e["param"] == "messages"
    e = _err(post(json={"model": "gpt-9", "messages": HELLO}), 404)
    assert e["code"] == "model_not_found" and e["param"] == "model"
    _err(post(json={"model": "auto:turbo", "messages": HELLO}), 400)
    _err(post(json={"model": "auto", "messages": HELLO, "max_cost": 1e-12}), 400)
    _err(post(json={"messages": HELLO}), 400)
    assert _err(tc.get("/v1/nope"), 404)["code"] == "not_found"
    _err(tc.get("/v1/chat/completions"), 405)
    assert not up.requests


def test_body_size_limit_is_413(tc, up):
    big = {"model": "auto", "messages": [{"role": "user", "content": "x" * 5000}]}
    assert _err(tc.post("/v1/chat/completions", json=big), 413)["code"] == "request_too_large"

    def chunked():  # no Content-Length: the limit holds while reading
        yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}]}'

    _err(tc.post("/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"}), 413)
    assert not up.requests


def test_sdk_only_keys_are_not_forwarded(tc, up):
    r = tc.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO,
                                              "extra_headers": {"Authorization": "Bearer stolen"},
                                              "extra_body": {"x": 1}, "timeout": 0.0001})
    assert r.status_code == 200
    sent = up.requests[-1]
    assert {k.lower(): v for k, v in sent["headers"].items()}["authorization"] == "Bearer upstream-key"
    assert "extra_body" not in sent["body"] and "x" not in sent["body"]


# ---- feedback, stats, health, CLI ---------------------------------------------------------


def test_feedback_and_stats(sdk, http, store):
    rid = sdk.chat.completions.with_raw_response.create(model="auto", messages=HELLO).headers["x-router-request-id"]
    r = http.post("/v1/feedback", json={"request_id": rid, "score": 0.75, "comment": "fine"})
    assert r.status_code == 200 and r.json()["score"] == 0.75
    assert http.post("/v1/feedback", json={"request_id": rid, "thumbs": "down"}).json()["score"] == 0.0
    assert [f["score"] for f in store.feedback(rid)] == [0.75, 0.0]
    assert _err(http.post("/v1/feedback", json={"request_id": "req_nope", "thumbs": "up"}), 404)["param"] == "request_id"
    _err(http.post("/v1/feedback", json={"request_id": rid, "score": 1.5}), 400)
    _err(http.post("/v1/feedback", json={"request_id": rid, "thumbs": "sideways"}), 400)
    _err(http.post("/v1/feedback", json={"request_id": rid}), 400)
    _err(http.post("/v1/feedback", content=b"[", headers={"content-type": "application/json"}), 400)
    s = http.get("/v1/stats").json()
    assert s["requests"] >= 1 and s["baseline_model"] == "gpt-4o" and 0 < s["savings_pct"] < 100
    assert "deepseek-chat" in s["model_distribution"] and s["latency_ms"]["p50"] > 0
    assert http.get("/v1/stats", params={"baseline": "glm-5.1"}).json()["baseline_model"] == "glm-5.1"
    _err(http.get("/v1/stats", params={"baseline": "gpt-9"}), 400)
    _err(http.get("/v1/stats", params={"since": "yesterday"}), 400)
    h = http.get("/health").json()
    assert h["status"] == "ok" and h["usage"]["dropped"] == 0


def test_router_stats_cli(sdk, store, db_url, capsys, tmp_path):
    sdk.chat.completions.create(model="auto", messages=HELLO)
    assert store.flush(5.0)
    assert cli_main(["stats", "--usage-db", db_url]) == 0
    out = capsys.readouterr().out
    for word in ("requests:", "savings:", "all on gpt-4o", "p50", "p95", "models:", "cost by task:", "deepseek-chat"):
        assert word in out
    assert cli_main(["stats", "--usage-db", db_url, "--json", "--baseline", "glm-5.1",
                     "--plot", str(tmp_path / "plots")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["baseline_model"] == "glm-5.1" and data["requests"] == store.count()
    assert sorted(Path(p).name for p in data["plots"]) == ["cost_by_task.png", "cost_vs_baseline.png",
                                                           "model_distribution.png"]
    assert cli_main(["stats", "--usage-db", f"sqlite:///{tmp_path}/missing.db"]) == 1
    assert "no usage log" in capsys.readouterr().err


def test_router_serve_builds_the_app(router_, upstream, tmp_path, monkeypatch):
    from router.cli.main import build_parser
    from router.cli.serve import _settings, build_app

    monkeypatch.setenv("GW_UPSTREAM_KEY", "upstream-key")
    args = build_parser().parse_args([
        "serve", "--port", "0", "--base-url", upstream.base_url, "--api-key-env", "GW_UPSTREAM_KEY",
        "--usage-db", f"sqlite:///{tmp_path}/u.db", "--auth-key", "k1", "k2"])
    app, store = build_app(_settings(args))
    try:
        with TestClient(app) as c:
            r = c.post("/v1/chat/completions", json={"model": "auto", "messages": HELLO},
                       headers={"Authorization": "Bearer k2"})
            assert r.status_code == 200 and r.headers["x-router-model"]
            assert c.get("/v1/models").status_code == 401
    finally:
        store.close()


def test_client_disconnect_mid_stream_is_logged_once(gateway, up, store):
    before = ids_of(store)
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=20) as c:
        with c.stream("POST", "/v1/chat/completions",
                      json={"model": "auto", "messages": LONG, "stream": True}) as resp:
            assert resp.status_code == 200
            next(resp.iter_raw())  # read a little, then hang up
    deadline = time.monotonic() + 5
    rows = new_rows(store, before)
    while not rows and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = new_rows(store, before)
    assert len(rows) == 1 and rows[0].status in ("ok", "cancelled") and rows[0].stream


# ---- the raw transport against the SDK transport, through the gateway's interface ----------


def test_raw_transport_matches_the_sdk_transport(router_, up, tmp_path):
    """``create_json`` / ``stream_json`` over the raw transport send the same request and give the
    same JSON, metadata and log row as over the SDK transport (the reference)."""
    import asyncio

    store = UsageStore(f"sqlite:///{tmp_path}/raw.db")
    common = dict(base_url=up.base_url, api_key="upstream-key", usage=store, retry=FAST)
    sdk_client = AsyncRoutedClient(router_, **common)
    raw_client = AsyncRoutedClient(router_, transport=RawTransport(), **common)
    kw = dict(model="auto:budget", messages=CODE, temperature=0.2, max_tokens=50, seed=7, foo="bar",
              extra_body={"baz": 1, "router": {"max_cost": 1.0}})

    async def one(client, rid):
        answer = await client.create_json(dict(kw), request_id=rid)
        sent = up.requests[-1]
        stream = await client.stream_json({**kw, "stream": True}, request_id=rid + "_stream")
        events = [e async for e in stream]
        return answer, sent, stream, events, up.requests[-1]

    async def both():
        try:
            return await one(sdk_client, "req_sdk"), await one(raw_client, "req_raw")
        finally:
            await sdk_client.aclose()
            await raw_client.aclose()

    (a, sent_a, sa, ev_a, ssent_a), (b, sent_b, sb, ev_b, ssent_b) = asyncio.run(both())
    try:
        strip = lambda d: {k: v for k, v in d.items() if k not in ("id", "created")}  # noqa: E731
        assert sent_a["body"] == sent_b["body"] and sent_b["body"]["foo"] == "bar" and sent_b["body"]["baz"] == 1
        assert ssent_a["body"] == ssent_b["body"] and ssent_b["body"]["stream"] is True
        ha = {k.lower(): v for k, v in sent_a["headers"].items()}
        hb = {k.lower(): v for k, v in sent_b["headers"].items()}
        assert hb["authorization"] == ha["authorization"] == "Bearer upstream-key"
        assert not any(k.startswith("x-stainless") for k in hb)  # the raw transport is not the SDK
        ja, jb = json.loads(a.body), json.loads(b.body)
        assert set(ja) == set(jb) and jb["choices"] and jb["usage"] and "router" not in jb
        assert strip(ja) == strip(jb)
        assert ev_a and [strip(json.loads(e)) for e in ev_a] == [strip(json.loads(e)) for e in ev_b]
        skip = {"request_id", "latency_ms", "chain"}
        for x, y in ((a.router, b.router), (sa.router, sb.router)):
            assert {k: v for k, v in x.items() if k not in skip} == {k: v for k, v in y.items() if k not in skip}
            assert [{k: v for k, v in e.items() if k != "latency_ms"} for e in x["chain"]] == \
                   [{k: v for k, v in e.items() if k != "latency_ms"} for e in y["chain"]]
        assert store.flush(5.0)
        rows = {r.request_id: r for r in store.records()}
        for x, y in (("req_sdk", "req_raw"), ("req_sdk_stream", "req_raw_stream")):
            ra, rb = rows[x], rows[y]
            for f in ("model", "task", "tier", "prompt_tokens", "completion_tokens", "cost_usd", "status",
                      "prompt_hash", "stream"):
                assert getattr(ra, f) == getattr(rb, f), (x, f)
        assert rows["req_raw_stream"].stream and rows["req_raw_stream"].status == "ok"
    finally:
        store.close()


def test_the_gateway_interface_checks_the_stream_flag(router_, up):
    import asyncio

    client = AsyncRoutedClient(router_, base_url=up.base_url, api_key="upstream-key", transport=RawTransport())

    async def main():
        with pytest.raises(InvalidRequestError, match="stream_json"):
            await client.create_json({"model": "gpt-4o", "messages": HELLO, "stream": True})
        with pytest.raises(InvalidRequestError, match="stream: true"):
            await client.stream_json({"model": "gpt-4o", "messages": HELLO})
        await client.aclose()

    asyncio.run(main())
    assert not up.requests
