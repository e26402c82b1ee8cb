"""The raw transport against the SDK transport (the reference), on the FakeUpstream: the same
request body, the same answers and chunks (as the gateway's JSON), and every failure mapped to
the same :class:`UpstreamError` fields. Sync and async."""

from __future__ import annotations

import asyncio
import json

import pytest

from router.errors import UpstreamError
from router.serving.client import ChatCall, ChatTransport, Endpoint, RawTransport, SDKTransport
from tests.support.chat import HELLO, LONG

pytestmark = pytest.mark.integration

PARAMS = {"model": "gpt-4o-mini", "messages": LONG, "temperature": 0.2, "seed": 7,
          "extra_body": {"thinking": {"type": "enabled"}}}
STREAM = {**PARAMS, "stream": True, "stream_options": {"include_usage": True}}


@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


def _strip(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("id", "created")}


def _call(up, params, timeout=5.0, key="test"):
    return ChatCall("gpt-4o-mini", params, Endpoint(up.base_url, key, "TEST_KEY"), timeout)


def run(mode, transport, what, call):
    """(JSON of the answer or of each chunk, the exception raised or None)."""
    async def acollect():
        try:
            if what == "complete":
                return [transport.completion_json(await transport.acomplete(call))], None
            out = []
            s = await transport.astream(call)
            try:
                async for c in s:
                    out.append(transport.chunk_json(c))
            finally:
                await s.aclose()
            return out, None
        except UpstreamError as exc:
            return None, exc
        finally:
            await transport.aclose()

    if mode == "async":
        return asyncio.run(acollect())
    try:
        if what == "complete":
            return [transport.completion_json(transport.complete(call))], None
        s = transport.stream(call)
        try:
            return [transport.chunk_json(c) for c in s], None
        finally:
            s.close()
    except UpstreamError as exc:
        return None, exc
    finally:
        transport.close()


def both(up, mode, what, params, fault=None, **kw):
    out = {}
    for name, transport in (("sdk", SDKTransport()), ("raw", RawTransport())):
        assert isinstance(transport, ChatTransport)
        up.reset()
        if fault is not None:
            up.add_fault(fault[0], **fault[1])
        out[name] = (*run(mode, transport, what, _call(up, params, **kw)), up.requests)
    return out["sdk"], out["raw"]


@pytest.mark.parametrize("what, params", [("complete", PARAMS), ("stream", STREAM)])
def test_same_body_and_same_answer(up, mode, what, params):
    (sdk_json, sdk_err, sdk_sent), (raw_json, raw_err, raw_sent) = both(up, mode, what, params)
    assert sdk_err is None and raw_err is None
    assert len(sdk_sent) == len(raw_sent) == 1
    assert sdk_sent[0]["body"] == raw_sent[0]["body"]  # extra_body merged into the top level
    assert raw_sent[0]["body"]["thinking"] == {"type": "enabled"} and "extra_body" not in raw_sent[0]["body"]
    auth = lambda r: {k.lower(): v for k, v in r["headers"].items()}["authorization"]  # noqa: E731
    assert auth(sdk_sent[0]) == auth(raw_sent[0]) == "Bearer test"
    a = [_strip(json.loads(x)) for x in sdk_json]
    b = [_strip(json.loads(x)) for x in raw_json]
    assert a == b and (len(a) == 1 if what == "complete" else len(a) > 3)
    if what == "stream":
        assert b[-1]["usage"]["completion_tokens"] > 0 and b[-2]["choices"][0]["finish_reason"] == "stop"


FAULTS = [
    ("status", {"status": 429, "retry_after": 2}),
    ("status", {"status": 503, "headers": {"retry-after-ms": "1500"}}),
    ("status", {"status": 400, "message": "bad parameter foo"}),
    ("status", {"status": 401, "message": "Incorrect API key provided: sk-proj-abc123***wxyz."}),
    ("status", {"status": 500}),
    ("malformed", {}),
    ("drop", {}),
    ("error_event", {}),
]


def _fields(exc: UpstreamError) -> tuple:
    return exc.kind, exc.status_code, exc.retry_after, exc.upstream_message, exc.model


@pytest.mark.parametrize("what, params", [("complete", PARAMS), ("stream", STREAM)])
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f[0]}-{f[1].get('status', '')}")
def test_same_errors(up, mode, what, params, fault):
    (_, sdk_err, _), (_, raw_err, _) = both(up, mode, what, params, fault)
    assert isinstance(sdk_err, UpstreamError) and isinstance(raw_err, UpstreamError)
    assert _fields(sdk_err) == _fields(raw_err)
    kind = {"status": "status", "malformed": "malformed", "drop": "connection",
            "error_event": "stream_error" if what == "stream" else "status"}[fault[0]]
    assert raw_err.kind == kind
    if fault[0] == "status":
        assert raw_err.status_code == fault[1]["status"]
        assert "sk-proj" not in raw_err.upstream_message
    if fault[1].get("status") == 429:
        assert raw_err.retry_after == 2.0
    if fault[1].get("status") == 503:
        assert raw_err.retry_after == 1.5


def test_same_error_for_a_drop_mid_stream(up, mode):
    (sdk_json, sdk_err, _), (raw_json, raw_err, _) = both(up, mode, "stream", STREAM, ("drop_mid_stream", {}))
    assert sdk_err is not None and raw_err is not None and _fields(sdk_err) == _fields(raw_err)
    assert raw_err.kind == "connection"


def test_same_error_for_a_timeout(up, mode):
    (_, sdk_err, _), (_, raw_err, _) = both(up, mode, "complete", PARAMS, ("delay", {"seconds": 1.0}), timeout=0.2)
    assert _fields(sdk_err) == _fields(raw_err) and raw_err.kind == "timeout"


def test_a_missing_key_is_a_config_error_before_anything_is_sent(up, mode):
    for transport in (SDKTransport(), RawTransport()):
        up.reset()
        _, err = run(mode, transport, "complete", _call(up, PARAMS, key=None))
        assert err.kind == "config" and "$TEST_KEY is not set" in str(err)
        assert not up.requests


def test_error_chunks_are_the_same_json():
    err = {"message": "broke", "type": "upstream_error", "param": None, "code": "connection"}
    a = SDKTransport().error_chunk(id="x", created=1, model="m", error=err)
    b = RawTransport().error_chunk(id="x", created=1, model="m", error=err)
    assert SDKTransport().chunk_json(a) == RawTransport().chunk_json(b) == json.dumps({"error": err}).encode()
    assert a.choices == b.choices == [] and a.error == b.error.data == err


def test_a_transport_is_injected_and_its_close_cannot_swallow_cancellation(router_, up, tmp_path):
    """A custom ChatTransport is used as given; a stream whose close is cancelled propagates the
    cancellation (it is not swallowed) and the request is still logged once."""
    from router.serving.client import AsyncRoutedClient
    from router.serving.usage.store import UsageStore

    class CancelledOnClose(RawTransport):
        calls = 0

        async def astream(self, call):
            CancelledOnClose.calls += 1
            inner = await super().astream(call)

            class S:
                def __aiter__(self):
                    return inner.__aiter__()

                async def aclose(self):
                    await inner.aclose()
                    raise asyncio.CancelledError

            return S()

    store = UsageStore(f"sqlite:///{tmp_path}/u.db")
    client = AsyncRoutedClient(router_, base_url=up.base_url, api_key="test", usage=store,
                               transport=CancelledOnClose())

    async def main():
        s = await client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
        await s.__anext__()
        with pytest.raises(asyncio.CancelledError):
            await s.aclose()
        await client.aclose()

    try:
        asyncio.run(main())
        assert CancelledOnClose.calls == 1
        assert store.flush(5.0)
        (row,) = store.records()
        assert row.stream and row.status == "cancelled"
    finally:
        store.close()
