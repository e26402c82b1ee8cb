"""``router drift`` on a synthetic log: a traffic-mix shift says "retrain advised: yes", the same
mix says no; feedback falling for one model is flagged; the statistics on hand-checkable cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from router import Router
from router.cli.main import main
from router.errors import DataError
from router.serving.usage.store import UsageStore
from router.training.loop.drift import centroid_cosine, drift_report, mmd2, tv_distance
from tests.support.loop_data import prompt
from tests.support.usage_records import make_record

DAY = 86400.0
T0 = 1_700_000_000.0


def _log(store, kinds, start, rng, prefix, model="gpt-4o-mini"):
    for i, kind in enumerate(kinds):
        text = prompt(kind, i, rng)
        store.log(make_record(f"{prefix}{i}", created_at=start + i * 60, prompt=text, classifier_text=text,
                              model=model, routed_model=model, escalated=False, chain=[]))
    assert store.flush()


@pytest.fixture(scope="module")
def router_():
    return Router.default()


def _db(tmp_path, recent_kinds, name="u.db"):
    url = f"sqlite:///{tmp_path / name}"
    rng = np.random.default_rng(0)
    with UsageStore(url, store_prompts=True) as s:
        _log(s, ["arith", "hist"] * 100, T0, rng, "old")  # the reference: half arithmetic, half essays
        _log(s, recent_kinds, T0 + 20 * DAY, rng, "new")
    return url


def test_a_traffic_mix_shift_advises_a_retrain(tmp_path, router_):
    url = _db(tmp_path, ["hist"] * 150)  # recent traffic: essays only
    with UsageStore(url) as s:
        rep = drift_report(router_, s, since=T0 + 10 * DAY, sample=200)
    v = rep["verdict"]
    assert v["retrain"] and v["text"].startswith("retrain advised: yes, because ")
    assert rep["recent_rows"] == 150 and "the log before" in rep["reference"]
    assert rep["checks"]["task_mix"]["tv"] > 0.4
    assert any("task mix" in r for r in v["reasons"]) and any("embeddings" in r for r in v["reasons"])
    e = rep["checks"]["embedding"]
    assert e["mmd2"] > 3 * max(e["mmd2_noise_floor"], 0) and e["centroid_cosine_recent"] < e["centroid_cosine_reference"]


def test_the_same_mix_does_not(tmp_path, router_):
    url = _db(tmp_path, ["arith", "hist"] * 75)
    with UsageStore(url) as s:
        rep = drift_report(router_, s, since=T0 + 10 * DAY, sample=200)
    assert not rep["verdict"]["retrain"], rep["verdict"]
    assert rep["verdict"]["text"].startswith("retrain advised: no, because no check passed")
    assert rep["checks"]["task_mix"]["tv"] < 0.1


def test_falling_feedback_for_a_model_is_flagged(tmp_path, router_):
    url = _db(tmp_path, ["arith", "hist"] * 75)
    with UsageStore(url) as s:
        for i in range(100):
            s.add_feedback(f"old{i}", 1.0 if i % 10 else 0.0)  # 0.9 before
        for i in range(100):
            s.add_feedback(f"new{i}", 1.0 if i % 2 else 0.0)  # 0.5 after
        rep = drift_report(router_, s, since=T0 + 10 * DAY, sample=200)
    fb = rep["checks"]["feedback"]
    assert fb["per_model"]["gpt-4o-mini"]["earlier"] == {"mean": 0.9, "n": 100}
    assert fb["drop"]["gpt-4o-mini"] == pytest.approx(0.4)
    assert rep["verdict"]["retrain"] and "feedback on gpt-4o-mini fell by 0.40" in rep["verdict"]["text"]


def test_reference_texts_and_errors(tmp_path, router_):
    url = _db(tmp_path, ["hist"] * 40)
    rng = np.random.default_rng(1)
    ref = [prompt("hist", i, rng) for i in range(60)]  # trained on essays: essays are no shift
    with UsageStore(url) as s:
        rep = drift_report(router_, s, since=T0 + 10 * DAY, reference_texts=ref, sample=100)
        assert rep["reference"].startswith("the base's training prompts") and rep["checks"]["task_mix"]["tv"] < 0.1
        with pytest.raises(DataError, match="no requests"):
            drift_report(router_, s, since=T0 + 100 * DAY)
        with pytest.raises(DataError, match="too little reference"):
            drift_report(router_, s, since=T0 - DAY)


def test_statistics():
    assert tv_distance({"a": 0.5, "b": 0.5}, {"a": 1.0}) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(100, 5)), rng.normal(size=(100, 5))
    same, bw = mmd2(X, Y)
    moved, _ = mmd2(X, Y + 2.0, bw)
    assert abs(same) < 0.02 < moved
    shift = np.eye(5)
    R = X + 5 * shift[0]
    assert centroid_cosine(R, Y + 5 * shift[0]) > 0.8 > centroid_cosine(R, Y + 5 * shift[4])
    with pytest.raises(DataError):
        mmd2(X[:1], Y)


def test_cli_drift_writes_a_png_and_json(tmp_path, router_, capsys):
    url = _db(tmp_path, ["hist"] * 150)
    base = router_.save(tmp_path / "base")
    png = tmp_path / "drift.png"
    code = main(["drift", "--usage-db", url, "--router", str(base), "--since", str(T0 + 10 * DAY), "--plot", str(png),
                 "--json", "--quiet", "--sample", "200", "--cache", "", "--exit-code"])
    out = json.loads(capsys.readouterr().out)
    assert code == 4 and out["verdict"]["retrain"] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = main(["drift", "--usage-db", url, "--router", str(base), "--since", "yesterday-ish", "--quiet"])
    assert code == 1 and "ISO 8601" in capsys.readouterr().err
