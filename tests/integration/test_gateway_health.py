"""``/health`` says ``degraded`` with its reasons (a failing usage log, rows journalled, every
model cooling down), feedback on a locked log answers 503, and ``router serve`` refuses an
unwritable usage log or journal unless ``--no-usage``."""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from router import RoutedClient
from router.cli.main import main as cli_main
from router.serving.client import RetryPolicy
from router.serving.gateway import create_app
from router.serving.usage.store import UsageStore
from tests.support.chat import HELLO
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.integration

FAST_LOG = dict(busy_timeout_ms=100, retries=1, backoff=0.01, probe=0.05, max_probe=0.2)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_health_is_degraded_while_the_usage_log_fails_and_ok_after(router_, tmp_path):
    url = f"sqlite:///{tmp_path / 'u.db'}"
    with FakeUpstream(api_key="k") as up, UsageStore(url, journal=tmp_path / "j", **FAST_LOG) as store:
        client = RoutedClient(router_, base_url=up.base_url, api_key="k", usage=store)
        with TestClient(create_app(router_, client=client, usage=store)) as c:
            assert c.get("/health").json()["status"] == "ok" and c.get("/health").json()["reasons"] == []
            locker = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            r = c.post("/v1/chat/completions", json={"model": "auto", "messages": HELLO})
            assert r.status_code == 200
            assert store.flush()
            h = c.get("/health")
            assert h.status_code == 200 and h.json()["status"] == "degraded"
            assert "locked" in h.json()["reasons"][0] and "journalled" in h.json()["reasons"][0]
            assert h.json()["usage"]["journalled"] == 1 and h.json()["usage"]["lost"] == 0
            fb = c.post("/v1/feedback", json={"request_id": r.headers["x-router-request-id"], "score": 1})
            assert fb.status_code == 503 and fb.json()["error"]["code"] == "usage_unavailable"
            locker.execute("ROLLBACK")
            locker.close()
            deadline = time.monotonic() + 10
            while store.replayed < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert c.get("/health").json() | {"usage": None} == {
                "status": "ok", "reasons": [], "models": len(router_.catalog), "cooling": [], "usage": None}
            assert store.get(r.headers["x-router-request-id"]) is not None
        client.close()


def test_health_is_degraded_when_every_model_cools_down(router_):
    client = RoutedClient(router_, base_url=f"http://127.0.0.1:{_closed_port()}/v1", api_key="k",
                          retry=RetryPolicy(max_attempts=1, base_delay=0.0, max_delay=0.0), failure_threshold=1, cooldown_s=60)
    with TestClient(create_app(router_, client=client)) as c:
        assert c.get("/health").json()["status"] == "ok"
        for _ in range(len(router_.catalog)):
            assert c.post("/v1/chat/completions", json={"model": "auto", "messages": HELLO}).status_code == 502
            if set(router_.catalog.names) <= client.cooling():
                break
        h = c.get("/health")
        assert h.status_code == 200 and h.json()["status"] == "degraded"
        assert any("every model is cooling down" in x for x in h.json()["reasons"])
    client.close()


def test_serve_refuses_an_unwritable_usage_log_unless_no_usage(tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("")
    base = ["serve", "--port", str(_closed_port()), "--router", "cold-start"]
    assert cli_main(base + ["--usage-db", f"sqlite:///{tmp_path / 'afile' / 'u.db'}"]) == 1
    err = capsys.readouterr().err
    assert "cannot open usage database" in err and "--no-usage" in err
    assert cli_main(base + ["--usage-db", f"sqlite:///{tmp_path / 'u.db'}", "--usage-journal",
                            str(tmp_path / "afile")]) == 1
    err = capsys.readouterr().err
    assert "usage journal" in err and "--no-usage" in err

    import uvicorn
    ran = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.append(kw))
    assert cli_main(base + ["--usage-db", f"sqlite:///{tmp_path / 'afile' / 'u.db'}", "--no-usage"]) == 0
    assert len(ran) == 1
