"""The loop at scale: the log is read in chunks with bounded memory (SQLite, and PostgreSQL when
``ROUTER_TEST_POSTGRES_URL`` is set), equal prompts are held once, and ``sample`` thins rows per
(task, model) stratum with compensating weights."""

from __future__ import annotations

import os
import tracemalloc
import uuid

import pytest
import sqlalchemy as sa

from router.errors import DataError
from router.serving.usage.store import UsageStore
from router.training.loop.rows import outcome_rows, stratum_rates
from tests.support.usage_records import make_record

PG = "ROUTER_TEST_POSTGRES_URL"
N, TEXT = 2000, 3000  # 2,000 rows of ~3 KB: ~6 MB of text


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'u.db'}"
        return
    base = os.environ.get(PG)
    if not base:
        pytest.skip(f"{PG} is not set")
    schema = f"router_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(base, connect_args={"connect_timeout": 3})
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {PG} is unreachable: {type(exc).__name__}: {exc}")
    try:
        yield sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _text(i: int) -> str:
    return f"prompt {i:05d} " + "lorem ipsum dolor sit amet " * (TEXT // 27)


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _drain(chunks) -> int:
    n = 0
    for chunk in chunks:
        n += len(chunk)
    return n


def test_reading_in_chunks_keeps_memory_bounded(url):
    with UsageStore(url, store_prompts=True) as s:
        s.add_feedback_rows([{"prompt_id": f"p{i}", "prompt": _text(i), "model": "cheap", "score": 1.0}
                             for i in range(N)])
        for i in range(N):
            s.log(make_record(f"r{i}", created_at=1000.0 + i, prompt=_text(i), classifier_text=_text(i)))
        assert s.flush(30)
        full_fb = _peak(lambda: s.feedback())
        full_req = _peak(lambda: s.records())
        counted = []
        chunked_fb = _peak(lambda: counted.append(_drain(s.training_rows(chunk_size=50))))
        chunked_req = _peak(lambda: counted.append(_drain(s.record_chunks(chunk_size=50))))
    assert counted == [N, N]
    assert full_fb > N * TEXT and full_req > 2 * N * TEXT  # a full read holds every text at once
    bound = 3_000_000  # 50 rows a chunk: well under a tenth of the full reads
    assert chunked_fb < bound < full_fb / 2 and chunked_req < bound < full_req / 4, (chunked_fb, chunked_req)


def test_equal_prompts_are_held_once(url):
    with UsageStore(url) as s:
        s.add_feedback_rows([{"prompt_id": f"p{i % 20}", "prompt": _text(i % 20), "model": m, "score": 1.0,
                              "request_id": f"x{i}:{m}"} for i in range(200) for m in ("cheap", "dear")])
        df, rep = outcome_rows(s, ["cheap", "dear"], chunk_size=37)
    assert len(df) == 400 and rep.unique_prompts == 20
    assert df.prompt.dtype == "category" and len(df.prompt.cat.categories) == 20  # 400 rows, 20 texts held


def test_stratum_rates_water_filling():
    assert stratum_rates({"a": 10, "b": 100, "c": 1000}, 310) == {"a": 1.0, "b": 1.0, "c": 0.2}
    assert stratum_rates({"a": 10, "b": 20}, 100) == {"a": 1.0, "b": 1.0}
    r = stratum_rates({"a": 400, "b": 400}, 100)
    assert r == {"a": 0.125, "b": 0.125}
    with pytest.raises(DataError, match="cap"):
        stratum_rates({"a": 1}, 0)


def test_sample_thins_big_strata_and_keeps_their_weight(tmp_path):
    rows = [{"prompt_id": f"c{i}", "prompt": f"code {i}", "model": "cheap", "score": float(i % 2), "task": "code"}
            for i in range(3000)]
    rows += [{"prompt_id": f"m{i}", "prompt": f"math {i}", "model": "dear", "score": 1.0, "task": "math"}
             for i in range(40)]
    with UsageStore(f"sqlite:///{tmp_path / 'u.db'}") as s:
        s.add_feedback_rows(rows)
        full, _ = outcome_rows(s, ["cheap", "dear"])
        df, rep = outcome_rows(s, ["cheap", "dear"], sample=500)
        again, _ = outcome_rows(s, ["cheap", "dear"], sample=500)
        with pytest.raises(DataError):
            outcome_rows(s, ["cheap"], sample=0)
    assert rep.sampled["of"] == 3040 and rep.sampled["strata"] == 2 and 400 < rep.sampled["kept"] < 600
    assert (df.task == "math").sum() == 40  # the rare stratum is kept whole, weight 1
    assert df[df.task == "math"].weight.eq(1.0).all()
    code = df[df.task == "code"]
    assert code.weight.sum() == pytest.approx(full[full.task == "code"].weight.sum(), rel=0.15)
    assert list(again.request_id) == list(df.request_id)  # the same rows on every run
