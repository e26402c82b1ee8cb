"""The learning loop through the gateway: the app factory under uvicorn on loopback, driven by the
real ``openai`` SDK, every upstream call answered by the FakeUpstream; ``router serve``'s flags
through its own settings; champion reload against a sqlite MLflow store in tmp."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient

from router import Router
from router.cli.main import build_parser
from router.cli.serve import _settings, build_app, resolve_for_serve
from router.serving.gateway import create_app
from router.serving.usage.store import UsageStore
from tests.support.chat import CODE, FAST, HELLO

pytestmark = pytest.mark.integration


class Served:
    """uvicorn in a background thread on an ephemeral loopback port."""

    def __init__(self, app):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "gateway did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        return self

    def __exit__(self, *exc):
        self.sdk.close()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def store(tmp_path):
    s = UsageStore(f"sqlite:///{tmp_path}/usage.db", store_prompts=True, store_responses=True)
    yield s
    s.close()


def _app(router_, up, store, **kw):
    return create_app(router_, usage=store, base_url=up.base_url, api_key="test", retry=FAST, timeout=5.0, **kw)


def test_exploration_and_its_opt_out_over_http(router_, up, store):
    d = router_.route(HELLO)
    k = len(d.candidates)
    app = _app(router_, up, store, exploration=1.0, rng=np.random.default_rng(3), router_version="r/3")
    with Served(app) as gw:
        raw = gw.sdk.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
        h = raw.headers
        assert h["x-router-explored"] == "true" and h["x-router-version"] == "r/3"
        assert h["x-router-routed-model"] == h["x-router-model"] and h["x-router-model"] in d.candidates
        assert float(h["x-router-propensity"]) == pytest.approx(1 / k)
        raw = gw.sdk.chat.completions.with_raw_response.create(model="auto", messages=HELLO,
                                                               extra_body={"explore": False})
        assert raw.headers["x-router-model"] == d.model and "x-router-explored" not in raw.headers
        assert float(raw.headers["x-router-propensity"]) == 1.0
    assert store.flush(5.0)
    first, second = store.records()
    assert first.explored and first.propensity == pytest.approx(1 / k) and first.router_version == "r/3"
    assert first.answer == raw.parse().choices[0].message.content.replace(d.model, first.model)
    assert not second.explored and second.propensity == 1.0 and second.routed_model == d.model


def test_cascade_over_http_is_in_the_headers_and_the_log(router_, up, store):
    with Served(_app(router_, up, store)) as gw:
        raw = gw.sdk.chat.completions.with_raw_response.create(
            model="auto:budget", messages=CODE, extra_body={"router": {"escalate": {"target": 0.75}}})
        steps = json.loads(raw.headers["x-router-cascade"])
        assert [(s["step"], s["action"], s["models"]) for s in steps] == [
            (1, "call", ["glm-4-flash"]), (2, "call", ["gpt-4o"]), (2, "accept", ["gpt-4o"])]
        assert steps[0]["scores"] == {"glm-4-flash": 0.55}
        assert raw.headers["x-router-model"] == "gpt-4o" and raw.headers["x-router-routed-model"] == "glm-4-flash"
        rid = raw.headers["x-router-request-id"]
        # a stream never cascades, whatever it asks for
        chunks = list(gw.sdk.chat.completions.create(
            model="auto:budget", messages=CODE, stream=True, extra_body={"router": {"escalate": {"target": 0.75}}}))
        assert chunks and {c.model for c in chunks if c.choices} == {router_.route(CODE, tier="budget").model}
        for bad in ("always", {"target": -1}, {"max_steps": 0}, {"agree": 1}, {"depth": 2}):
            with pytest.raises(openai.BadRequestError) as e:
                gw.sdk.chat.completions.create(model="auto", messages=HELLO,
                                               extra_body={"router": {"escalate": bad}})
            assert e.value.body["param"] == "escalate" and e.value.status_code == 400
    assert store.flush(5.0)
    rec = store.get(rid)
    assert [(e["model"], e["status"], e["step"]) for e in rec.chain] == [
        ("glm-4-flash", "escalated", 1), ("gpt-4o", "ok", 2)]
    assert [(f["origin"], f["model"], f["score"]) for f in store.feedback(rid)] == [("implicit", "glm-4-flash", 0.0)]
    streamed = [r for r in store.records() if r.stream]
    assert len(streamed) == 1 and len(streamed[0].chain) == 1 and not streamed[0].escalated
    assert len(up.requests) == 3


def test_feedback_maps_ratings_and_refuses_a_claimed_judge(router_, up, store):
    with TestClient(_app(router_, up, store)) as http:
        rid = http.post("/v1/chat/completions", json={"model": "auto", "messages": HELLO}).headers[
            "x-router-request-id"]
        r = http.post("/v1/feedback", json={"request_id": rid, "rating": 10, "comment": "great"})
        assert r.status_code == 200 and r.json()["score"] == 1.0 and r.json()["origin"] == "human"
        assert http.post("/v1/feedback", json={"request_id": rid, "thumbs": "down", "origin": "implicit"}).json()[
            "origin"] == "implicit"
        bad = http.post("/v1/feedback", json={"request_id": rid, "score": 0.5, "origin": "judge"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "origin"
        assert "judge" in bad.json()["error"]["message"]
        for body, param in (({"request_id": rid, "rating": 0}, "rating"), ({"request_id": rid}, "score"),
                            ({"score": 1}, "request_id")):
            r = http.post("/v1/feedback", json=body)
            assert r.status_code == 400 and r.json()["error"]["param"] == param, r.json()
        r = http.post("/v1/feedback", json={"request_id": "req_unknown", "score": 1})
        assert r.status_code == 404 and r.json()["error"]["param"] == "request_id"
        both = http.post("/v1/feedback", json={"request_id": rid, "score": 0.5, "thumbs": "up"}).json()
        assert both["score"] == 0.5 and both["used"] == "score" and both["ignored"] == ["thumbs"]
    assert [(f["score"], f["origin"]) for f in store.feedback(rid)] == [(1.0, "human"), (0.0, "implicit"),
                                                                      (0.5, "human")]


def test_serve_flags_reach_the_log(router_, up, tmp_path, monkeypatch):
    monkeypatch.setenv("GW_KEY", "test")
    db = f"sqlite:///{tmp_path}/u.db"
    args = build_parser().parse_args([
        "serve", "--base-url", up.base_url, "--api-key-env", "GW_KEY", "--usage-db", db, "--exploration", "0.5",
        "--store-prompts", "--store-responses", "--reload-interval", "0"])
    settings = _settings(args)
    assert settings["exploration"] == 0.5 and settings["store_responses"] and settings["reload_interval"] == 0
    router, pinned, _line = resolve_for_serve(settings)
    assert pinned["router_version"] == "cold-start" and pinned["watch"] is None
    app, store = build_app(pinned, router)
    try:
        with TestClient(app) as http:
            r = http.post("/v1/chat/completions", json={"model": "auto", "messages": CODE})
            assert r.status_code == 200 and r.headers["x-router-version"] == "cold-start"
        assert store.flush(5.0)
        (rec,) = store.records()
        assert rec.classifier_text == router.classifier_text(CODE) and rec.answer.startswith("echo[")
        assert rec.propensity in (pytest.approx(1 - 0.5 + 0.5 / len(rec.candidates)),
                                  pytest.approx(0.5 / len(rec.candidates)))
    finally:
        store.close()
    for bad in ("1.5", "-0.1", "x"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--exploration", bad])


def test_a_promoted_champion_is_served_without_a_restart(router_, up, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from router import PolicyConfig
    from router.training.tracking.runs import connect, load_settings, log_training

    cfg = tmp_path / "mlflow.yaml"
    cfg.write_text(f"tracking_uri: sqlite:///{tmp_path}/m.db\nexperiment: reload\nregistered_model: r-reload\n")
    monkeypatch.setenv("ROUTER_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("ROUTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ROUTER_MODEL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("GW_KEY", "test")
    ms = load_settings(cfg)
    catalog = router_.catalog
    log_training(ms, Router.default(catalog), params={}, data_files=[], metrics={})  # v1: the champion
    # v2 sends everything to its budget table's choice: a different decision for the code prompt
    v2 = Router.default(catalog, policy=PolicyConfig(tiers={"budget": 0.5, "balanced": 0.5, "quality": 0.5}))
    log_training(ms, v2, params={}, data_files=[], metrics={})
    args = build_parser().parse_args([
        "serve", "--router", "models:/r-reload@champion", "--base-url", up.base_url, "--api-key-env", "GW_KEY",
        "--usage-db", f"sqlite:///{tmp_path}/u.db", "--reload-interval", "3600"])
    router, pinned, line = resolve_for_serve(_settings(args))
    assert pinned["router_version"] == "r-reload/1" and pinned["watch"] == "models:/r-reload@champion"
    app, store = build_app(pinned, router)
    try:
        with TestClient(app) as http:
            before = http.post("/v1/chat/completions", json={"model": "auto", "messages": CODE})
            assert before.headers["x-router-version"] == "r-reload/1"
            reloader = app.state.watcher
            assert reloader.ready()  # the check made at startup is done
            assert reloader.watcher.check_now() is False  # nothing moved yet
            connect(ms).set_registered_model_alias("r-reload", "champion", "2")  # promote v2
            assert reloader.watcher.check_now() is True
            after = http.post("/v1/chat/completions", json={"model": "auto", "messages": CODE})
            assert after.headers["x-router-version"] == "r-reload/2"
            assert after.headers["x-router-model"] == v2.route(CODE).model != before.headers["x-router-model"]
        assert store.flush(5.0)
        assert [r.router_version for r in store.records()] == ["r-reload/1", "r-reload/2"]
        assert reloader.watcher._thread is None  # stopped on shutdown
    finally:
        store.close()
