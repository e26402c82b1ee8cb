"""``router judge`` against the FakeUpstream: grades stored as origin=judge feedback with the
rubric recorded, the spending cap, retries through the client, agreement with human feedback."""

from __future__ import annotations

import json

import pytest

from router import Router
from router.cli.main import main
from router.errors import InvalidRequestError, UnknownModelError
from router.serving.client import RoutedClient
from router.serving.judge import (DEFAULT_RUBRIC, Rubric, agreement, estimate_call_cost, parse_grade,
                                  run_judge)
from router.serving.usage.store import UsageStore
from tests.support.chat import FAST
from tests.support.fake_upstream import FakeUpstream
from tests.support.usage_records import make_record

pytestmark = pytest.mark.integration

REPLY = "The answer is correct and complete.\nSCORE: 8"


@pytest.fixture
def up():
    with FakeUpstream() as u:
        u.set_reply("gpt-4o", REPLY)
        yield u


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path}/usage.db"
    with UsageStore(url, store_prompts=True, store_responses=True) as s:
        for i in range(5):
            s.log(make_record(f"r{i}", created_at=1000.0 + i, model="gpt-4o-mini", escalated=False,
                              chain=[{"model": "gpt-4o-mini", "status": "ok", "reason": "routed", "latency_ms": 1}],
                              prompt=f"What is {i} + {i}?", answer=f"It is {2 * i}."))
        s.log(make_record("hidden", created_at=2000.0, model="gpt-4o-mini", escalated=False, answer="x",
                          prompt=None, prompt_hash="ab" * 32))  # no text: not gradable
        assert s.flush()
    return url


@pytest.fixture
def client(up):
    c = RoutedClient(Router.default(), base_url=up.base_url, api_key="test", retry=FAST, escalation=None, timeout=5)
    yield c
    c.close()


def test_grades_are_stored_as_judge_feedback_with_the_rubric(up, db, client):
    with UsageStore(db) as store:
        rep = run_judge(client, store, "gpt-4o", sample=3)
        fb = store.feedback()
    assert (rep.gradable, rep.sampled, rep.graded, rep.failed, rep.unparsed) == (5, 3, 3, 0, 0)
    assert len(fb) == 3 and {f["origin"] for f in fb} == {"judge"}
    assert all(f["score"] == pytest.approx(7 / 9) and f["model"] == "gpt-4o-mini" for f in fb)
    meta = [json.loads(f["meta"]) for f in fb]
    assert {m["rubric_version"] for m in meta} == {"default-v1"}
    assert {m["rubric_sha256"] for m in meta} == {DEFAULT_RUBRIC.sha256}
    assert {m["judge_model"] for m in meta} == {"gpt-4o"} and {m["raw_grade"] for m in meta} == {8.0}
    sent = up.requests_for("gpt-4o")
    assert len(sent) == 3 and sent[0]["body"]["messages"][0]["content"] == DEFAULT_RUBRIC.text
    assert "ASSISTANT ANSWER:\nIt is" in sent[0]["body"]["messages"][1]["content"]
    assert sent[0]["body"]["max_tokens"] == 256 and rep.spent_usd > 0


def test_a_rubric_grades_each_answer_once_and_a_new_version_regrades(up, db, client):
    with UsageStore(db) as store:
        assert run_judge(client, store, "gpt-4o", sample=3).graded == 3
        again = run_judge(client, store, "gpt-4o", sample=10)
        assert (again.gradable, again.graded) == (2, 2)  # only the two not yet graded
        v2 = Rubric("strict-v2", DEFAULT_RUBRIC.text + "\nBe strict.")
        assert run_judge(client, store, "gpt-4o", sample=10, rubric=v2).graded == 5
        versions = [json.loads(f["meta"])["rubric_version"] for f in store.feedback()]
    assert versions.count("default-v1") == 5 and versions.count("strict-v2") == 5


def test_the_cap_is_estimated_before_and_enforced_during(up, db, client):
    with UsageStore(db) as store:
        est = run_judge(client, store, "gpt-4o", sample=5, dry_run=True, max_output_tokens=16)
        assert up.requests == [] and est.graded == 0
        one = estimate_call_cost(client.catalog["gpt-4o"], DEFAULT_RUBRIC, "What is 1 + 1?", "It is 2.", 16)
        assert est.estimated_cost_usd == pytest.approx(5 * one, rel=0.05)
        # a cap below one call's estimate: nothing is sent
        rep = run_judge(client, store, "gpt-4o", sample=5, max_cost=0.5 * one, max_output_tokens=16)
        assert (rep.graded, rep.stopped_by_cap) == (0, 5) and up.requests == []
        cap = 2.5 * one
        rep = run_judge(client, store, "gpt-4o", sample=5, max_cost=cap, max_output_tokens=16)
    calls = len(up.requests)
    assert 1 < rep.graded == calls < 5 and rep.stopped_by_cap == 5 - calls
    assert rep.spent_usd <= cap < rep.spent_usd + one  # stopped because the next call could pass the cap


def test_retries_go_through_the_client_and_failures_are_counted(up, db, client):
    up.add_fault("status", model="gpt-4o", status=500, times=1)  # retried: still graded
    with UsageStore(db) as store:
        rep = run_judge(client, store, "gpt-4o", sample=1)
        assert rep.graded == 1 and len(up.requests) == 2
        up.add_fault("status", model="gpt-4o", status=503, times=3)  # every attempt fails
        rep = run_judge(client, store, "gpt-4o", sample=1, seed=1)
        assert (rep.graded, rep.failed) == (0, 1) and "r" in rep.errors[0]
        up.add_fault("reply", model="gpt-4o", content="I cannot grade this.")
        rep = run_judge(client, store, "gpt-4o", sample=1, seed=2)
        assert (rep.graded, rep.unparsed) == (0, 1)
        assert len(store.feedback()) == 1


def test_bad_inputs_are_named(db, client):
    with UsageStore(db) as store:
        with pytest.raises(UnknownModelError, match="not-a-model"):
            run_judge(client, store, "not-a-model", sample=1)
        with pytest.raises(InvalidRequestError, match="sample"):
            run_judge(client, store, "gpt-4o", sample=0)
        with pytest.raises(InvalidRequestError, match="provenance"):
            store.add_feedback("r1", 1.0, origin="judge")  # a judge grade without its rubric
    with pytest.raises(InvalidRequestError, match="SCORE"):
        Rubric("v", "grade it")
    with pytest.raises(ValueError, match="outside"):
        parse_grade("SCORE: 11")
    assert parse_grade("fine\nSCORE: 4\nactually\nSCORE: **10**") == (10.0, 1.0)


def test_agreement_on_hand_computed_pairs():
    a = agreement([(1.0, 1.0), (0.0, 0.0), (1.0, 0.0), (0.0, 0.0)])
    assert a["n"] == 4 and a["agree_rate"] == 0.75
    assert a["kappa"] == pytest.approx(0.5)  # po 0.75, pe 0.5*0.25 + 0.5*0.75 = 0.5
    assert a["pearson"] == pytest.approx(0.5 / 0.75 ** 0.5, abs=1e-4)
    assert agreement([]) == {"n": 0, "agree_rate": None, "kappa": None, "pearson": None}


def test_agreement_is_reported_where_human_and_judge_both_scored(up, db, client):
    with UsageStore(db) as store:
        for i, s in enumerate([1.0, 1.0, 0.0, 0.0, 1.0]):
            store.add_feedback(f"r{i}", s)
        rep = run_judge(client, store, "gpt-4o", sample=5)  # judge says 7/9 everywhere
    assert rep.agreement["n"] == 5 and rep.agreement["agree_rate"] == 0.6
    assert rep.agreement["kappa"] == 0.0 and rep.agreement["pearson"] is None  # a constant judge


def test_cli_judge(up, db, capsys):
    code = main(["judge", "--usage-db", db, "--judge-model", "gpt-4o", "--sample", "2", "--max-cost", "1",
                 "--base-url", up.base_url, "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["graded"] == 2 and out["rubric"]["rubric_version"] == "default-v1"
    code = main(["judge", "--usage-db", db, "--judge-model", "gpt-4o", "--sample", "9", "--dry-run",
                 "--base-url", up.base_url])
    text = capsys.readouterr().out
    assert code == 0 and "sampled 3 of 3 gradable" in text and "dry run" in text
    assert len(up.requests) == 2
