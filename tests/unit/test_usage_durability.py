"""The usage log loses no row silently: retries with backoff, a bounded fsync'd journal replayed
idempotently when the database returns, counted losses with a logged cause, and feedback writes
that retry or say they failed. Real SQLite faults: an exclusive lock held by another connection,
SQLITE_FULL (``max_page_count``), a deleted database folder."""

import json
import logging
import shutil
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from router.errors import ArtifactError, UsageLogError
from router.serving.usage.journal import Journal
from router.serving.usage.store import UsageStore
from tests.support.usage_records import make_record

FAST = dict(busy_timeout_ms=100, retries=1, backoff=0.01, probe=0.05, max_probe=0.2)


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'db' / 'usage.db'}"


def _ids(url):
    with sqlite3.connect(sa.make_url(url).database) as raw:
        return [r for (r,) in raw.execute("SELECT request_id FROM requests ORDER BY request_id")]


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_rows_written_under_an_exclusive_lock_are_journalled_then_replayed(url, tmp_path, caplog):
    caplog.set_level(logging.WARNING, "router.serving.usage")
    with UsageStore(url, journal=tmp_path / "journal", **FAST) as s:
        s.log(make_record("before"))
        assert s.flush()
        locker = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        for i in range(50):
            s.log(make_record(f"locked-{i:02d}"))
        assert s.flush()
        assert s.journalled == 50 and s.lost == 0
        assert any("failing" in r and "locked" in r for r in s.health())
        lines = s.journal_path.read_text().splitlines()
        assert {json.loads(x)["request_id"] for x in lines} == {f"locked-{i:02d}" for i in range(50)}
        locker.execute("ROLLBACK")
        locker.close()
        assert _wait(lambda: s.replayed == 50)
        assert s.health() == [] and s.journal_path.read_bytes() == b""
        s.log(make_record("after"))
        assert s.flush()
        assert s.count() == 52 and (s.lost, s.dropped, s.duplicates) == (0, 0, 0)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "database is locked" in messages and "replayed 50" in messages and "writable again" in messages


def test_a_full_database_journals_and_replays_when_space_returns(url, tmp_path):
    with UsageStore(url, journal=tmp_path / "journal", **FAST) as s:
        s.log(make_record("r0"))
        assert s.flush()
        pages = {"max": 0}

        @sa.event.listens_for(s._engine, "connect")
        def _limit(dbapi_conn, _rec):  # new connections of the pool honour the current limit
            if pages["max"]:
                dbapi_conn.execute(f"PRAGMA max_page_count={pages['max']}")

        s._engine.dispose()
        with sqlite3.connect(sa.make_url(url).database) as raw:
            pages["max"] = raw.execute("PRAGMA page_count").fetchone()[0]
        big = "x" * 20000
        for i in range(20):
            s.log(make_record(f"full-{i}", error=big))
        assert s.flush()
        assert s.journalled == 20 and s.lost == 0
        assert any("full" in r for r in s.health())
        pages["max"] = 0
        s._engine.dispose()
        assert _wait(lambda: s.replayed == 20)
        assert s.count() == 21 and s.health() == []


def test_a_deleted_database_folder_is_noticed_and_a_restart_replays_the_journal(url, tmp_path):
    journal = tmp_path / "journal"
    s = UsageStore(url, journal=journal, **FAST)
    s.log(make_record("r0"))
    assert s.flush()
    shutil.rmtree(tmp_path / "db")
    s.log(make_record("r1"))
    s.log(make_record("r2"))
    assert s.flush()
    assert s.journalled == 2 and s.lost == 0
    assert any("deleted or replaced" in r for r in s.health())
    s.close()
    assert [p.name for p in journal.iterdir()] and sum(len(p.read_text().splitlines()) for p in journal.iterdir()) == 2
    with UsageStore(url, journal=journal, **FAST) as again:  # a new database: the journal goes in
        assert _wait(lambda: again.replayed == 2)
        assert _ids(url) == ["r1", "r2"]
    assert [p for p in journal.iterdir() if p.stat().st_size] == []


def test_replay_is_idempotent_on_request_id(url, tmp_path):
    journal = tmp_path / "journal"
    with UsageStore(url) as s:
        s.log(make_record("a"))
        s.log(make_record("b"))
        assert s.flush()
        rows = [s._to_row(make_record(x)) for x in ("a", "b", "c")]  # a and b are in the table already
    orphan = Journal(journal)
    orphan.append(rows)
    orphan.append(rows[2:])  # c twice: a replay that was cut half way and journalled again
    orphan.close()  # rows kept, lock released: as a process that died would leave it
    with UsageStore(url, journal=journal, **FAST) as s:
        assert _wait(lambda: s.replayed == 4)
        assert (s.written, s.duplicates) == (1, 3)
        assert _ids(url) == ["a", "b", "c"]


def test_when_database_and_journal_both_fail_the_loss_is_counted_and_logged(url, tmp_path, caplog):
    caplog.set_level(logging.WARNING, "router.serving.usage")
    with UsageStore(url, journal=tmp_path / "journal", journal_max_bytes=5000, **FAST) as s:
        locker = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        for i in range(10):  # one batch each: about 1.5 kB a row, the first three fit
            s.log(make_record(f"r{i}", error="y" * 1000))
            assert s.flush()
        locker.execute("ROLLBACK")
        locker.close()
        assert s.journalled + s.lost == 10 and s.lost > 0 and s.journalled > 0
        assert any("lost" in r for r in s.health())
        assert _wait(lambda: s.replayed == s.journalled)
    assert "would exceed its bound" in " ".join(r.getMessage() for r in caplog.records)


def test_without_a_journal_a_failing_database_loses_counted_rows_and_recovers(url):
    with UsageStore(url, **FAST) as s:
        locker = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        s.log(make_record("lost"))
        assert s.flush()
        assert s.lost == 1 and "no journal" in s.health()[0]
        locker.execute("ROLLBACK")
        locker.close()
        time.sleep(0.1)
        s.log(make_record("kept"))
        assert s.flush()
        assert _ids(url) == ["kept"]


def test_feedback_waits_out_a_short_lock_and_says_so_when_it_cannot(url):
    with UsageStore(url, **FAST) as s:
        s.log(make_record("r1"))
        assert s.flush()
        locker = sqlite3.connect(sa.make_url(url).database, isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN EXCLUSIVE")
        threading.Timer(0.3, lambda: locker.execute("ROLLBACK")).start()
        assert s.add_feedback("r1", 1.0) >= 1  # retried past the lock
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(UsageLogError, match="locked.*not stored") as e:
            s.add_feedback("r1", 0.0)
        assert "locked" in e.value.cause
        locker.execute("ROLLBACK")
        locker.close()
        assert [f["score"] for f in s.feedback("r1")] == [1.0]


def test_probe_write_and_unopenable_logs_name_the_problem(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(ArtifactError, match="cannot open usage database"):
        UsageStore(f"sqlite:///{tmp_path / 'afile' / 'usage.db'}")
    with pytest.raises(ArtifactError, match="usage journal"):
        UsageStore(f"sqlite:///{tmp_path / 'ok.db'}", journal=tmp_path / "afile")
    with UsageStore(f"sqlite:///{tmp_path / 'ok.db'}", **FAST) as s:
        s.probe_write()
        locker = sqlite3.connect(tmp_path / "ok.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(ArtifactError, match="not writable.*locked"):
            s.probe_write()
        locker.execute("ROLLBACK")
        locker.close()


def test_closing_on_a_locked_database_journals_the_queue_instead_of_dropping_it(url, tmp_path):
    journal = tmp_path / "journal"
    s = UsageStore(url, journal=journal, busy_timeout_ms=200, retries=5, backoff=2.0)  # slow retries
    locker = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    for i in range(300):
        s.log(make_record(f"r{i:03d}"))
    time.sleep(0.5)  # the first batch is now waiting out a retry's backoff
    # five retries at up to 2 s each would outlast close's 5 s and lose the queue; closing stops
    # retrying and journals what the database refuses
    s.close(timeout=5)
    assert (s.lost, s.journalled + s.written) == (0, 300)
    locker.execute("ROLLBACK")
    locker.close()
    with UsageStore(url, journal=journal, **FAST) as again:
        assert _wait(lambda: again.replayed == s.journalled)
    assert len(_ids(url)) == 300


def test_health_says_when_a_write_is_being_retried(url):
    with UsageStore(url, busy_timeout_ms=100, retries=50, backoff=0.05) as s:
        locker = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        s.log(make_record("r1"))
        assert _wait(lambda: s.health() != [])
        assert "being retried" in s.health()[0] and "locked" in s.health()[0]
        locker.execute("ROLLBACK")
        locker.close()
        assert s.flush() and s.health() == [] and s.count() == 1 and s.journalled == 0
