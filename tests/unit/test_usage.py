"""The usage log on SQLite files: round trip, privacy, WAL, feedback, stats, dropped and failed
writes, concurrency, migrations and plots."""

import dataclasses
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

import router.serving.usage.migrations as usage
from router import ModelCatalog
from router.errors import ArtifactError, InvalidRequestError, UnknownModelError
from router.serving.usage.store import Migration, UsageStore, hash_prompt, plot_stats
from tests.support.usage_records import CATALOG, log_from_threads, make_record


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'logs' / 'usage.db'}"


@pytest.fixture
def store(url):
    with UsageStore(url, store_prompts=True) as s:
        yield s


def test_round_trip_of_every_field(store):
    recs = [make_record("r1"),
            make_record("r2", created_at=1_700_000_001.5, task=None, tier=None, predicted_quality=None,
                        status="error", error="upstream 503", chain=[], escalated=False, stream=False,
                        client=None, prompt="¿qué tal? 日本語")]
    for r in recs:
        store.log(r)
    assert store.flush()
    assert store.get("r1") == recs[0] and store.get("r2") == recs[1]
    assert store.get("missing") is None
    assert store.records() == recs and store.records(limit=1) == recs[:1]
    assert store.records(since=1_700_000_001.0) == recs[1:]
    assert store.count() == 2 and store.written == 2
    assert (store.failed_writes, store.dropped, store.last_error) == (0, 0, None)


def test_prompts_are_private_by_default(url):
    with UsageStore(url) as s:
        s.log(make_record("r1", prompt="secret text"))
        s.log(make_record("r2", prompt="other", prompt_hash=""))  # the store fills in a missing hash
        assert s.flush()
        assert s.get("r1").prompt is None and s.get("r1").prompt_hash == hash_prompt("secret text")
        assert s.get("r2").prompt is None and s.get("r2").prompt_hash == hash_prompt("other")
    with sqlite3.connect(sa.make_url(url).database) as raw:
        assert raw.execute("SELECT count(*) FROM requests WHERE prompt IS NOT NULL").fetchone() == (0,)


def test_sqlite_file_uses_wal_and_parent_dirs_are_created(store, url):
    path = sa.make_url(url).database
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_sqlite_is_refused():
    with pytest.raises(ValueError, match="SQLite file"):
        UsageStore("sqlite://")


def test_feedback_is_validated_and_stored(store):
    store.log(make_record("r1"))  # not flushed: add_feedback waits for the queued request
    fid = store.add_feedback("r1", 0.75, "good")
    store.add_feedback("r1", 1)
    assert [(f["id"], f["request_id"], f["score"], f["comment"]) for f in store.feedback("r1")] == [
        (fid, "r1", 0.75, "good"), (fid + 1, "r1", 1.0, None)]
    assert store.feedback("other") == [] and len(store.feedback()) == 2
    for bad in (1.5, -0.01, float("nan"), True, "0.5", None):
        with pytest.raises(InvalidRequestError, match=r"\[0, 1\]"):
            store.add_feedback("r1", bad)
    with pytest.raises(InvalidRequestError, match="'nope'"):
        store.add_feedback("nope", 0.5)
    assert len(store.feedback()) == 2


def test_stats_are_hand_computed(store):
    catalog = ModelCatalog.from_dict(CATALOG)
    one = [{"model": "cheap", "status": "ok", "reason": "routed", "latency_ms": 1.0}]
    two = one + [{"model": "dear", "status": "ok", "reason": "escalated", "latency_ms": 2.0}]
    store.log(make_record("a", created_at=100.0, model="cheap", task="code", prompt_tokens=1000,
                          completion_tokens=500, cost_usd=0.00015, latency_ms=100, chain=one, escalated=False))
    store.log(make_record("b", created_at=101.0, model="cheap", task="code", prompt_tokens=2000,
                          completion_tokens=1000, cost_usd=0.0003, latency_ms=200, chain=two, escalated=False))
    store.log(make_record("c", created_at=102.0, model="dear", task="math", prompt_tokens=100,
                          completion_tokens=100, cost_usd=0.004, latency_ms=300, chain=two, escalated=True))
    store.log(make_record("d", created_at=103.0, model="cheap", task=None, prompt_tokens=50,
                          completion_tokens=0, cost_usd=0.0001, latency_ms=400, chain=one, escalated=False,
                          status="error", error="boom"))
    # rejected before routing: listed apart by what was asked for, never as a model
    store.log(make_record("e", created_at=104.0, model="auto:premium", requested_model="auto:premium", task=None,
                          prompt_tokens=0, completion_tokens=0, cost_usd=0.0, latency_ms=0.0, chain=[],
                          escalated=False, status="rejected", error="unknown tier"))
    # the learning loop's simulated traffic is not traffic
    store.log(make_record("sim-1", created_at=105.0, model="cheap", prompt_tokens=10**6, cost_usd=1.0,
                          chain=one, origin="simulated"))
    assert store.flush()
    store.add_feedback("a", 1.0)
    store.add_feedback_rows([{"prompt_id": "p1", "prompt": "x", "model": "cheap", "score": 1.0}])
    s = store.stats(catalog, baseline_model="dear")
    # the baseline prices the answered requests a, b, c at dear's own prices ($10 in, $30 out per
    # 1M tokens): 0.025 + 0.05 + 0.004 = 0.079; they cost 0.00445; the failed d cost 0.0001
    assert (s["requests"], s["ok"], s["errors"], s["rejected"]) == (5, 3, 1, 1)
    assert s["statuses"] == {"ok": 3, "error": 1, "rejected": 1}
    assert (s["total_prompt_tokens"], s["total_completion_tokens"]) == (3150, 1600)
    assert s["actual_cost"] == pytest.approx(0.00455) and s["failed_cost"] == pytest.approx(0.0001)
    assert s["answered_cost"] == pytest.approx(0.00445)
    assert s["baseline_cost"] == pytest.approx(0.079)
    assert s["savings_usd"] == pytest.approx(0.07455)
    assert s["savings_pct"] == pytest.approx(100 * 0.07455 / 0.079)
    assert s["model_distribution"] == {"cheap": 3, "dear": 1}
    assert s["rejected_requests"] == {"auto:premium": 1}
    assert s["cost_by_task"] == pytest.approx({"math": 0.004, "code": 0.00045, "unknown": 0.0001})
    assert s["latency_ms"] == pytest.approx({"p50": 250.0, "p95": 385.0})
    assert (s["escalations"], s["fallbacks"], s["failed_writes"]) == (1, 2, 0)
    assert s["not_traffic"] == {"simulated": 1}
    # feedback by origin; the imported outcome is listed apart
    assert s["feedback"] == {"human": 1} and s["imported_outcomes"] == 1
    later = store.stats(catalog, baseline_model="dear", since=102.0)
    assert later["requests"] == 3 and later["baseline_cost"] == pytest.approx(0.004)
    assert later["latency_ms"] == pytest.approx({"p50": 350.0, "p95": 395.0})
    empty = store.stats(catalog, baseline_model="dear", since=1e12)
    assert empty["requests"] == 0 and empty["savings_pct"] == 0.0 and empty["latency_ms"]["p50"] is None
    with pytest.raises(UnknownModelError, match="gpt-4o"):
        store.stats(catalog)


def test_a_log_where_every_request_failed_saves_nothing(store):
    for i in range(3):
        store.log(make_record(f"f{i}", status="error", error="upstream 502", completion_tokens=0, cost_usd=0.0))
    store.log(make_record("r", model="claude-9", requested_model="claude-9", status="rejected", chain=[]))
    assert store.flush()
    s = store.stats(ModelCatalog.from_dict(CATALOG), baseline_model="dear")
    assert (s["ok"], s["errors"], s["rejected"]) == (0, 3, 1)
    assert s["baseline_cost"] == 0.0 and s["savings_usd"] == 0.0 and s["savings_pct"] == 0.0
    assert "claude-9" not in s["model_distribution"] and s["rejected_requests"] == {"claude-9": 1}


def test_invalid_and_duplicate_records_are_counted_and_never_raise(url):
    with UsageStore(url, store_prompts=True, retries=1, backoff=0.0) as store:
        store.log(make_record("a"))
        store.log(make_record("a"))  # duplicate id: not inserted twice, and not its batch lost
        store.log(make_record("b"))
        store.log("not a record")  # type: ignore[arg-type]
        assert store.flush()
        assert store.count() == 2 and (store.failed_writes, store.duplicates, store.lost) == (1, 1, 0)
        with sqlite3.connect(sa.make_url(url).database) as raw:  # the table vanishes under the store
            raw.execute("DROP TABLE requests")
        store.log(make_record("c"))
        assert store.flush()
        # retried, then (no journal) counted lost, with the cause
        assert store.lost == 1 and "no such table" in store.last_error
        assert any("no such table" in r for r in store.health())
        assert store.dropped == 0


def test_a_full_queue_drops_and_counts(url):
    with UsageStore(url, queue_size=2) as s:
        entered, release = threading.Event(), threading.Event()
        real = s._insert_rows

        def slow(rows):
            entered.set()
            release.wait(5)
            return real(rows)

        s._insert_rows = slow
        s.log(make_record("r0"))
        assert entered.wait(5)  # the writer holds r0
        for i in range(1, 6):
            s.log(make_record(f"r{i}"))  # r1, r2 fill the queue; r3..r5 are dropped
        assert s.dropped == 3 and "queue full" in s.last_error
        release.set()
        assert s.flush()
        assert [r.request_id for r in s.records()] == ["r0", "r1", "r2"]
    s.log(make_record("late"))  # after close: dropped, no exception
    assert s.dropped == 4


def test_concurrent_logging_loses_nothing(url):
    with UsageStore(url) as s:
        expected = log_from_threads(s)
        assert s.flush()
        ids = [r.request_id for r in s.records()]
        assert s.count() == 400 and len(set(ids)) == 400
        assert set(ids) == expected
        assert (s.failed_writes, s.dropped) == (0, 0)


def _versions(url):
    with sqlite3.connect(sa.make_url(url).database) as raw:
        return [v for (v,) in raw.execute("SELECT version FROM schema_version ORDER BY version")]


def test_a_database_reopens_and_a_later_migration_applies(url, monkeypatch):
    with UsageStore(url) as s:
        s.log(make_record("r1"))
    assert _versions(url) == [1, 2, 3]
    with UsageStore(url) as s:  # reopening applies nothing
        assert s.get("r1") == dataclasses.replace(make_record("r1"), prompt=None, classifier_text=None, answer=None)
    assert _versions(url) == [1, 2, 3]

    def add_region(conn):
        conn.execute(sa.text("ALTER TABLE requests ADD COLUMN region VARCHAR(64)"))

    monkeypatch.setattr(usage, "MIGRATIONS", usage.MIGRATIONS + (Migration(4, "add region", add_region),))
    with UsageStore(url) as s:
        s.log(make_record("r2"))
        assert s.flush() and s.count() == 2 and s.failed_writes == 0
    assert _versions(url) == [1, 2, 3, 4]
    cols = {c["name"] for c in sa.inspect(sa.create_engine(url)).get_columns("requests")}
    assert "region" in cols


def test_a_version_2_database_upgrades_in_place_to_version_3(url, monkeypatch):
    path = sa.make_url(url).database
    Path(path).parent.mkdir(parents=True)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a database as version 2 of the package left it
        usage.migrate(conn, url, usage.MIGRATIONS[:2])
    engine.dispose()
    assert _versions(url) == [1, 2]
    chain3 = '[{"model": "cheap"}, {"model": "dear"}, {"model": "dear"}]'
    with sqlite3.connect(sa.make_url(url).database) as raw:  # rows as version 2 wrote them
        for rid, chain in (("req_1", chain3), ("sim-abc", '[{"model": "cheap"}]'), ("req_2", "[]")):
            raw.execute("INSERT INTO requests (request_id, created_at, model, requested_model, prompt_tokens, "
                        "completion_tokens, cost_usd, latency_ms, status, chain, escalated, stream, prompt_hash) "
                        "VALUES (?, 1.0, 'cheap', 'auto', 10, 10, 0.001, 5.0, 'ok', ?, 0, 0, '')", (rid, chain))
    with UsageStore(url) as s:
        assert _versions(url) == [1, 2, 3]
        assert s.get("sim-abc").origin == "simulated" and s.get("req_1").origin == "traffic"
        st = s.stats(ModelCatalog.from_dict(CATALOG), baseline_model="dear")
        assert st["requests"] == 2 and st["fallbacks"] == 1 and st["not_traffic"] == {"simulated": 1}
    with sqlite3.connect(sa.make_url(url).database) as raw:
        attempts = dict(raw.execute("SELECT request_id, attempts FROM requests"))
        indexes = {r[1] for r in raw.execute("PRAGMA index_list(requests)")}
    assert attempts == {"req_1": 3, "sim-abc": 1, "req_2": 0}
    assert {"ix_requests_stats", "ix_requests_latency"} <= indexes


def test_a_failing_migration_changes_nothing(url, monkeypatch):
    UsageStore(url).close()

    def broken(conn):
        conn.execute(sa.text("ALTER TABLE requests ADD COLUMN region VARCHAR(64)"))
        raise RuntimeError("half way")

    monkeypatch.setattr(usage, "MIGRATIONS", usage.MIGRATIONS + (Migration(4, "broken", broken),))
    with pytest.raises(ArtifactError, match="half way"):
        UsageStore(url)
    assert _versions(url) == [1, 2, 3]
    cols = {c["name"] for c in sa.inspect(sa.create_engine(url)).get_columns("requests")}
    assert "region" not in cols


def test_a_newer_database_is_refused_untouched(url):
    with UsageStore(url) as s:
        s.log(make_record("r1"))
    with sqlite3.connect(sa.make_url(url).database) as raw:
        raw.execute("INSERT INTO schema_version VALUES (99, 0, 'from the future')")
    with pytest.raises(ArtifactError, match=r"schema version 99.*versions up to 3"):
        UsageStore(url)
    assert _versions(url) == [1, 2, 3, 99]
    with sqlite3.connect(sa.make_url(url).database) as raw:
        assert raw.execute("SELECT count(*) FROM requests").fetchone() == (1,)


def test_plot_stats_writes_pngs(store, tmp_path):
    store.log(make_record("a"))
    store.log(make_record("b", model="cheap", task="code"))
    assert store.flush()
    stats = store.stats(ModelCatalog.from_dict(CATALOG), baseline_model="dear")
    paths = plot_stats(stats, tmp_path / "plots")
    assert [p.name for p in paths] == ["model_distribution.png", "cost_by_task.png", "cost_vs_baseline.png"]
    for p in paths + plot_stats({}, tmp_path / "empty"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_record_is_frozen_and_serialisable():
    r = make_record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.model = "x"  # type: ignore[misc]
    assert r.to_dict()["chain"][1]["model"] == "dear"


def test_router_stats_lists_rejections_apart_and_claims_no_savings_without_answers(url, tmp_path, capsys):
    from router.cli.main import main as cli_main

    with UsageStore(url) as s:
        s.log(make_record("f1", model="cheap", status="error", cost_usd=0.0))
        s.log(make_record("r1", model="claude-9", requested_model="claude-9", status="rejected", chain=[]))
        s.log(make_record("sim-1", origin="simulated"))
    catalog = tmp_path / "catalog.json"
    catalog.write_text(__import__("json").dumps(CATALOG))
    assert cli_main(["stats", "--usage-db", url, "--catalog", str(catalog), "--baseline", "dear"]) == 0
    out = capsys.readouterr().out
    assert "savings:  n/a (no answered requests" in out and "(100.0%)" not in out
    models = out.split("models:")[1].split("rejected before routing")[0]
    assert "claude-9" not in models and "cheap" in models
    assert "rejected before routing (by requested model):\n  claude-9" in out
    assert "not traffic (not counted above): simulated 1" in out
