"""``router judge``, ``router drift`` and a sampled ``router retrain`` on a PostgreSQL usage log
(set ``ROUTER_TEST_POSTGRES_URL``; each test works in a fresh schema it drops afterwards)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from router import ModelCatalog, Router
from router.cli.main import main
from router.serving.usage.store import UsageStore
from tests.integration.test_usage_postgres import pg_url  # noqa: F401 - the fixture
from tests.support.fake_upstream import FakeUpstream
from tests.support.loop_data import CATALOG, outcome_rows, prompt, write_jsonl
from tests.support.usage_records import make_record

pytestmark = pytest.mark.integration


def test_judge_drift_and_sampled_retrain_on_postgres(pg_url, tmp_path, capsys):  # noqa: F811
    rng = np.random.default_rng(0)
    with UsageStore(pg_url, store_prompts=True, store_responses=True) as s:
        for i in range(120):
            kind = "arith" if i < 60 or i % 4 == 0 else "hist"  # the newer half is mostly essays
            text = prompt(kind, i, rng)
            s.log(make_record(f"r{i}", created_at=1000.0 + i, model="gpt-4o-mini", escalated=False, chain=[],
                              prompt=text, classifier_text=text, answer="42"))
        assert s.flush()
    with FakeUpstream() as up:
        up.set_reply("gpt-4o", "Right.\nSCORE: 10")
        code = main(["judge", "--usage-db", pg_url, "--judge-model", "gpt-4o", "--sample", "3", "--max-cost", "1",
                     "--base-url", up.base_url, "--json", "--quiet"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["graded"] == 3 and rep["gradable"] == 120
    base = Router.default().save(tmp_path / "base")
    code = main(["drift", "--usage-db", pg_url, "--router", str(base), "--since", "1060", "--json", "--quiet",
                 "--cache", ""])
    drift = json.loads(capsys.readouterr().out)
    assert code == 0 and drift["verdict"]["retrain"] and drift["recent_rows"] == 60
    assert main(["feedback", "import", str(write_jsonl(outcome_rows(100, seed=1), tmp_path / "o.jsonl")),
                 "--usage-db", pg_url, "--quiet"]) == 0
    capsys.readouterr()
    loop_base = Router.default(ModelCatalog.from_dict(CATALOG)).save(tmp_path / "loop_base")
    code = main(["retrain", "--usage-db", pg_url, "--router", str(loop_base), "--out", str(tmp_path / "cand"),
                 "--no-track", "--json", "--quiet", "--sample", "150", "--embedder", "hashing", "--cache", ""])
    captured = capsys.readouterr()
    assert code in (0, 3), captured.err
    out = json.loads(captured.out)
    assert code in (0, 3) and out["rows"]["sampled"]["cap"] == 150 and out["stages"]["read_log"]["rows_per_s"] > 0
