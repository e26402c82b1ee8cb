"""The usage log on a real PostgreSQL server: round trip, concurrency, stats, migrations.

Set ``ROUTER_TEST_POSTGRES_URL`` (e.g. ``postgresql+psycopg://router:router@127.0.0.1:5432/router``;
needs the ``psycopg[binary]`` driver). Each test works in a fresh schema that it drops afterwards.
"""

import os
import uuid

import pytest
import sqlalchemy as sa

from router import ModelCatalog
from router.errors import ArtifactError
from router.serving.usage.store import UsageStore
from tests.support.usage_records import CATALOG, log_from_threads, make_record

pytestmark = pytest.mark.integration
ENV = "ROUTER_TEST_POSTGRES_URL"


@pytest.fixture
def pg_url():
    url = os.environ.get(ENV)
    if not url:
        pytest.skip(f"{ENV} is not set (e.g. postgresql+psycopg://user:pass@127.0.0.1:5432/db)")
    schema = f"router_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no driver, refused, bad credentials...
        pytest.skip(f"PostgreSQL at {ENV} is unreachable: {type(exc).__name__}: {exc}")
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_round_trip_of_every_field(pg_url):
    recs = [make_record("r1"),
            make_record("r2", created_at=1_700_000_001.5, task=None, tier=None, predicted_quality=None,
                        status="error", error="upstream 503", chain=[], escalated=False, stream=False,
                        client=None, prompt="¿qué tal? 日本語")]
    with UsageStore(pg_url, store_prompts=True) as s:
        for r in recs:
            s.log(r)
        assert s.flush()
        assert s.records() == recs and s.get("r2") == recs[1] and s.count() == 2
        fid = s.add_feedback("r1", 0.5, "fine")
        assert s.feedback("r1")[0]["id"] == fid
    with UsageStore(pg_url) as s:  # reopening a version-1 database
        assert s.count() == 2


def test_concurrent_logging_loses_nothing(pg_url):
    with UsageStore(pg_url) as s:
        expected = log_from_threads(s)
        assert s.flush(10)
        ids = {r.request_id for r in s.records()}
        assert s.count() == 400 and ids == expected
        assert (s.failed_writes, s.dropped) == (0, 0)


def test_stats(pg_url):
    one = [{"model": "cheap", "status": "ok", "reason": "routed", "latency_ms": 1.0}]
    two = one + [{"model": "dear", "status": "ok", "reason": "escalated", "latency_ms": 2.0}]
    with UsageStore(pg_url) as s:
        s.log(make_record("a", model="cheap", task="code", prompt_tokens=1000, completion_tokens=500,
                          cost_usd=0.00015, latency_ms=100, chain=one, escalated=False))
        s.log(make_record("b", model="dear", task="math", prompt_tokens=100, completion_tokens=100,
                          cost_usd=0.004, latency_ms=300, chain=two, escalated=True, status="error"))
        assert s.flush()
        st = s.stats(ModelCatalog.from_dict(CATALOG), baseline_model="dear")
    assert (st["requests"], st["ok"], st["errors"], st["escalations"], st["fallbacks"]) == (2, 1, 1, 1, 1)
    assert st["baseline_cost"] == pytest.approx(0.025)  # the failed request is not in the baseline
    assert st["actual_cost"] == pytest.approx(0.00415) and st["failed_cost"] == pytest.approx(0.004)
    assert st["latency_ms"] == pytest.approx({"p50": 200.0, "p95": 290.0})
    assert st["model_distribution"] == {"cheap": 1, "dear": 1}


def test_a_newer_database_is_refused(pg_url):
    UsageStore(pg_url).close()
    eng = sa.create_engine(pg_url)
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_version VALUES (99, 0, 'from the future')"))
    eng.dispose()
    with pytest.raises(ArtifactError, match="schema version 99"):
        UsageStore(pg_url)


def test_learning_loop_schema_import_and_training_rows(pg_url, tmp_path):
    import json

    import router.serving.usage.migrations as migrations
    from router.serving.usage.importer import import_feedback
    from router.training.loop.rows import outcome_rows

    eng = sa.create_engine(pg_url)  # a version-1 database, as the previous package left it
    with eng.begin() as conn:
        migrations.migrate(conn, "pg", migrations.MIGRATIONS[:1])
        conn.execute(sa.text("INSERT INTO feedback (request_id, created_at, score) VALUES ('old', 1.0, 0.5)"))
    eng.dispose()
    lines = [{"prompt_id": "p1", "prompt": "Compute 2 plus 2.", "model": "cheap", "score": 1, "propensity": 0.9},
             {"prompt_id": "p1", "prompt": "Compute 2 plus 2.", "model": "dear", "score": 5}]
    path = tmp_path / "fb.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with UsageStore(pg_url, store_prompts=True) as s:
        assert s.feedback()[0]["origin"] == "human"  # upgraded in place
        rep = import_feedback(s, path)
        assert rep.imported == 1 and rep.errors[0][0] == 2
        s.log(make_record("r1", model="cheap", routed_model="cheap", propensity=0.8, chain=[],
                          classifier_text="Compute 1 plus 1."))
        assert s.flush()
        s.add_feedback("r1", 1.0, origin="human")
        df, rows = outcome_rows(s, ["cheap", "dear"])
    assert rows.feedback_rows == 3 and rows.orphaned == 1 and rows.used == 2
    assert sorted(df.propensity) == [0.8, 0.9]


def test_a_version_2_database_upgrades_to_version_3(pg_url):
    import router.serving.usage.migrations as migrations

    eng = sa.create_engine(pg_url)
    with eng.begin() as conn:
        migrations.migrate(conn, "pg", migrations.MIGRATIONS[:2])
        for rid, chain in (("req_1", '[{"model": "cheap"}, {"model": "dear"}]'), ("sim-1", '[{"model": "cheap"}]')):
            conn.execute(sa.text(
                "INSERT INTO requests (request_id, created_at, model, requested_model, prompt_tokens, "
                "completion_tokens, cost_usd, latency_ms, status, chain, escalated, stream, prompt_hash) "
                "VALUES (:r, 1.0, 'cheap', 'auto', 10, 10, 0.001, 5.0, 'ok', :c, false, false, '')"),
                {"r": rid, "c": chain})
    eng.dispose()
    with UsageStore(pg_url) as s:
        s.probe_write()
        assert s.get("sim-1").origin == "simulated"
        st = s.stats(ModelCatalog.from_dict(CATALOG), baseline_model="dear")
        assert (st["requests"], st["fallbacks"], st["not_traffic"]) == (1, 1, {"simulated": 1})
        s.log(make_record("req_1"))  # already there: not duplicated, not an error
        s.log(make_record("r2"))
        assert s.flush() and s.count() == 3 and (s.duplicates, s.failed_writes, s.lost) == (1, 0, 0)
