"""The usage log's learning-loop side: migration 2 on an old database, the new record fields and
their privacy, decision_fields, feedback origins, bulk import, and outcome rows for training."""

import dataclasses
import json
import sqlite3

import numpy as np
import pytest
import sqlalchemy as sa

import router.serving.usage.migrations as migrations
from router import ModelCatalog, Router
from router.errors import DataError, InvalidRequestError
from router.learning import explore
from router.serving.usage.importer import import_feedback, parse_feedback_line
from router.serving.usage.record import decision_fields, score_from
from router.serving.usage.store import UsageStore
from router.training.loop.rows import outcome_rows
from tests.support.loop_data import CATALOG
from tests.support.usage_records import make_record


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'usage.db'}"


def _versions(url):
    with sqlite3.connect(sa.make_url(url).database) as raw:
        return [v for (v,) in raw.execute("SELECT version FROM schema_version ORDER BY version")]


def test_a_version_1_database_upgrades_in_place(url):
    # what the previous package wrote: the version-1 layout, a request and a feedback row
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        migrations.migrate(conn, url, migrations.MIGRATIONS[:1])
        row = {k: v for k, v in make_record("old").to_dict().items() if k in {c.name for c in sa.Table(
            "requests", sa.MetaData(), autoload_with=conn).c}}
        row["chain"] = json.dumps(row["chain"])
        conn.execute(sa.Table("requests", sa.MetaData(), autoload_with=conn).insert(), [row])
        conn.execute(sa.text("INSERT INTO feedback (request_id, created_at, score, comment) "
                             "VALUES ('old', 1.0, 0.5, 'v1 feedback')"))
    engine.dispose()
    assert _versions(url) == [1]
    with UsageStore(url, store_prompts=True) as s:
        assert _versions(url) == [1, 2, 3]
        old = s.get("old")
        assert old == dataclasses.replace(make_record("old"))  # new fields: their empty defaults
        assert (old.propensity, old.candidates, old.router_version) == (None, [], None)
        fb = s.feedback("old")
        assert fb[0]["origin"] == "human" and fb[0]["comment"] == "v1 feedback"
        s.log(make_record("new", propensity=0.85, routed_model="cheap", explored=True, router_version="llm-router/3",
                          target_quality=0.8, candidates=[{"model": "cheap", "quality": 0.7, "cost": 1e-4}],
                          classifier_text="What is 2 + 2?", answer="4"))
        assert s.flush()
        new = s.get("new")
        assert (new.propensity, new.routed_model, new.explored, new.router_version) == (0.85, "cheap", True,
                                                                                          "llm-router/3")
        assert new.candidates == [{"model": "cheap", "quality": 0.7, "cost": 1e-4}]
        assert new.classifier_text == "What is 2 + 2?" and new.answer is None  # responses not stored


def test_texts_follow_the_privacy_switches(url):
    rec = make_record("r", classifier_text="secret", answer="the answer")
    with UsageStore(url) as s:
        s.log(rec)
        assert s.flush()
        assert (s.get("r").prompt, s.get("r").classifier_text, s.get("r").answer) == (None, None, None)
    with UsageStore(url, store_prompts=True, store_responses=True) as s:
        s.log(dataclasses.replace(rec, request_id="r2"))
        assert s.flush()
        assert (s.get("r2").classifier_text, s.get("r2").answer) == ("secret", "the answer")


def test_decision_fields_from_a_decision_and_a_draw():
    r = Router.default(ModelCatalog.from_dict(CATALOG))
    d = r.route("Compute 3 plus 4.", max_cost=0.005)
    f = decision_fields(d, router_version="abc")
    assert (f["routed_model"], f["propensity"], f["explored"]) == (d.model, 1.0, False)
    assert [c["model"] for c in f["candidates"]] == list(d.candidates) and "dear" not in d.candidates
    assert f["target_quality"] == d.target_quality and f["router_version"] == "abc"
    e = explore(d, 1.0, np.random.default_rng(3))
    g = decision_fields(d, e, classifier_text="Compute 3 plus 4.")
    assert g["routed_model"] == e.model and g["propensity"] == pytest.approx(0.5) and g["explored"] is True
    assert make_record("x", **{k: v for k, v in g.items()}).propensity == pytest.approx(0.5)


def test_scores_map_from_thumbs_and_ratings():
    assert score_from(thumbs="up") == 1.0 and score_from(thumbs="down") == 0.0
    assert score_from(rating=1) == 0.0 and score_from(rating=10) == 1.0 and score_from(rating=8) == pytest.approx(7 / 9)
    assert score_from(score=0.25) == 0.25
    for bad in ({"score": 1.2}, {"thumbs": "meh"}, {"rating": 11}, {}, {"score": 1, "thumbs": "up"}):
        with pytest.raises(InvalidRequestError):
            score_from(**bad)


def test_feedback_origin_is_validated(url):
    with UsageStore(url) as s:
        s.log(make_record("r1"))
        fid = s.add_feedback("r1", 0.0, origin="implicit", model="cheap")
        assert s.feedback("r1")[0]["id"] == fid and s.feedback("r1")[0]["origin"] == "implicit"
        with pytest.raises(InvalidRequestError, match="origin"):
            s.add_feedback("r1", 1.0, origin="robot")


def _write(tmp_path, lines):
    p = tmp_path / "fb.jsonl"
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return p


GOOD = {"prompt_id": "p1", "prompt": "Compute 2 plus 2.", "model": "cheap", "score": 1, "cost": 0.0001,
        "propensity": 0.85, "task": "math", "created_at": 1000.0, "answer": "4"}
BAD = [
    '{"prompt_id": "p2", "prompt": "x", "model": "cheap"',               # 2 malformed JSON
    {"prompt_id": "p3", "model": "cheap", "score": 1},                  # 3 missing prompt
    {"prompt_id": "p4", "prompt": "y", "model": "cheap", "score": 1.5},  # 4 score out of range
    {"prompt_id": "p5", "prompt": "z", "model": "gpt-9", "score": 1},   # 5 unknown model
    {"request_id": "nope", "score": 1},                                 # 6 unknown request
    {"prompt_id": "p7", "prompt": "w", "model": "cheap", "score": 1, "propensity": 0},  # 7 bad propensity
]


def test_import_reports_bad_lines_by_number_and_keeps_the_good(url, tmp_path):
    path = _write(tmp_path, [GOOD] + BAD + [{"request_id": "r1", "thumbs": "down", "origin": "human"}])
    with UsageStore(url) as s:
        s.log(make_record("r1"))
        assert s.flush()
        rep = import_feedback(s, path, models={"cheap", "mid", "dear"})
        assert [n for n, _ in rep.errors] == [2, 3, 4, 5, 6, 7]
        msgs = dict(rep.errors)
        assert "malformed JSON" in msgs[2] and "prompt" in msgs[3] and "[0, 1]" in msgs[4]
        assert "gpt-9" in msgs[5] and "nope" in msgs[6] and "propensity" in msgs[7]
        assert (rep.rows, rep.imported) == (8, 2) and rep.by_kind == {"outcome": 1, "request": 1}
        rows = s.feedback()
        assert [(r["origin"], r["score"]) for r in rows] == [("import", 1.0), ("human", 0.0)]
        assert rows[0]["request_id"] == "import:p1:cheap" and rows[0]["propensity"] == 0.85
        assert rows[0]["outcome_at"] == 1000.0 and rows[0]["answer"] == "4"


def test_strict_import_refuses_the_whole_file(url, tmp_path):
    path = _write(tmp_path, [GOOD, BAD[2]])
    with UsageStore(url) as s:
        with pytest.raises(DataError, match=r"fb.jsonl: 1 bad line.*line 2: .*\[0, 1\]"):
            import_feedback(s, path, strict=True)
        assert s.feedback() == []
        with pytest.raises(DataError, match="no such feedback file"):
            import_feedback(s, tmp_path / "missing.jsonl")


def test_a_failing_insert_stores_nothing(url):
    row = {"prompt_id": "p1", "prompt": "Compute 2 plus 2.", "model": "cheap", "score": 1.0}
    with UsageStore(url) as s:
        with pytest.raises(sa.exc.IntegrityError):  # the second row breaks NOT NULL: one transaction
            s.add_feedback_rows([row, dict(row, prompt_id="p2", score=None)])
        assert s.feedback() == []
        with pytest.raises(InvalidRequestError, match="unknown feedback column"):
            s.add_feedback_rows([dict(row, colour="red")])
        assert s.add_feedback_rows([row]) == 1


def test_outcome_rows_count_hash_only_unknown_and_fallback_rows(url):
    with UsageStore(url, store_prompts=True) as s:
        s.log(make_record("seen", model="cheap", routed_model="cheap", propensity=0.9, chain=[],
                          classifier_text="Compute 1 plus 1."))
        s.log(make_record("fell", model="dear", routed_model="cheap", propensity=0.9))  # a fallback answered
        s.log(make_record("stranger", model="gpt-9"))
        assert s.flush()
    with UsageStore(url) as s:  # this one keeps hashes only
        s.log(make_record("private", model="cheap", prompt="hidden"))
        assert s.flush()
        for rid in ("seen", "fell", "stranger", "private"):
            s.add_feedback(rid, 1.0)
        s.add_feedback_rows([{"prompt_id": "p1", "prompt": "Compute 5 plus 5.", "model": "mid", "score": 0.0}])
        df, rep = outcome_rows(s, ["cheap", "mid", "dear"])
    assert rep.feedback_rows == 5 and rep.used == 3 and rep.hash_only == 1
    assert rep.unknown_models == {"gpt-9": 1} and rep.answered_by_other == 1
    assert rep.by_origin == {"human": 2, "import": 1}
    seen = df[df.request_id == "seen"].iloc[0]
    assert seen.prompt == "Compute 1 plus 1." and seen.propensity == 0.9  # the classifier's text
    assert df[df.request_id == "fell"].propensity.isna().all()  # left out of off-policy estimates
    assert set(df.model) == {"cheap", "dear", "mid"}


def test_simulated_traffic_logs_propensities_and_the_classifier_text(url):
    from router.training.loop.simulate import simulate_traffic

    r = Router.default(context_turns=2)
    with UsageStore(url, store_prompts=True) as s:
        fb = simulate_traffic(r, s, 60, 0.5, np.random.default_rng(1), "v-test", t0=100.0)
        recs = s.records()
    assert len(recs) == len(fb) == 60 and {f["request_id"] for f in fb} == {x.request_id for x in recs}
    k = len(r.models)
    for rec in recs:
        d = r.route(rec.prompt)  # the policy's own choice: 1 - eps + eps/k, any other eps/k
        want = 0.5 + 0.5 / len(d.candidates) if rec.model == d.model else 0.5 / len(d.candidates)
        assert rec.propensity == pytest.approx(want) and rec.routed_model == rec.model
        assert rec.classifier_text == r.classifier_text(rec.prompt) and rec.router_version == "v-test"
        assert rec.model in {c["model"] for c in rec.candidates} and len(rec.candidates) <= k
    assert any(rec.explored for rec in recs) and not all(rec.explored for rec in recs)


def test_an_escalation_is_stored_as_implicit_feedback_on_the_first_model(url):
    chain = [{"model": "cheap", "status": "escalated", "reason": "check short fired; escalated to dear",
              "latency_ms": 1.0}, {"model": "dear", "status": "ok", "reason": "escalation", "latency_ms": 2.0}]
    with UsageStore(url) as s:
        s.log(make_record("esc", model="dear", escalated=True, chain=chain))
        s.log(make_record("plain", escalated=False, chain=chain[1:]))
        assert s.flush() and s.written == 2
        fb = s.feedback()
    assert [(f["request_id"], f["model"], f["score"], f["origin"]) for f in fb] == [("esc", "cheap", 0.0, "implicit")]


def test_a_client_cannot_claim_the_judge_origin():
    from router.serving.usage.record import client_feedback

    assert client_feedback({"request_id": "r", "thumbs": "up"}) == {
        "request_id": "r", "score": 1.0, "comment": None, "origin": "human", "model": None}
    assert client_feedback({"request_id": "r", "rating": 10, "origin": "implicit"})["origin"] == "implicit"
    with pytest.raises(InvalidRequestError, match="judge grades come from"):
        client_feedback({"request_id": "r", "score": 1, "origin": "judge"})
    for bad, what in (({"score": 1}, "request_id"), ({"request_id": "r"}, "exactly one"),
                      ({"request_id": "r", "score": 1, "comment": 3}, "comment"), ([], "JSON object")):
        with pytest.raises(InvalidRequestError, match=what):
            client_feedback(bad)


def test_import_refuses_judge_rows(url, tmp_path):
    """Judge grades carry their judge model and rubric; a file cannot claim them."""
    path = _write(tmp_path, [{**GOOD, "origin": "judge"}])
    with UsageStore(url) as s:
        rep = import_feedback(s, path, models={"cheap", "mid", "dear"})
        assert rep.imported == 0 and "router judge" in dict(rep.errors)[1]
        with pytest.raises(InvalidRequestError, match="not importable"):
            parse_feedback_line(GOOD, default_origin="judge")
        assert s.feedback() == []
