"""The learning loop end to end through the CLI: import full outcome rows into a fresh usage log,
``router retrain`` from the cold-start router, and the candidate beats it on held-out prompts of
the same kind (AIQ by the project's evaluation code); poisoned feedback is refused by the gate;
a base naming a missing training file fails with its name. Hashing embedder: seconds."""

import json

import pandas as pd
import pytest

from router import ModelCatalog, Router
from router.cli.main import main
from router.training.evaluate.routing import evaluate_routing, outcome_matrix
from tests.support.loop_data import CATALOG, outcome_rows, write_jsonl

FAST = ["--embedder", "hashing", "--cache", ""]


@pytest.fixture
def base(tmp_path):
    return Router.default(ModelCatalog.from_dict(CATALOG)).save(tmp_path / "base")


def _aiq(paths, rows):
    m = outcome_matrix(pd.DataFrame(rows), list(CATALOG["models"]))
    preds = {}
    for name, p in paths.items():
        r = Router.load(p)
        est = r.predict(m.prompts)
        cols = [r.models.index(x) for x in m.models]
        preds[name] = (est.quality[:, cols], est.cost[:, cols])
    return {k: v["aiq"] for k, v in evaluate_routing(m, preds)["routers"].items()}


def test_import_then_retrain_beats_the_cold_start_router(tmp_path, base, capsys):
    db = f"sqlite:///{tmp_path / 'u.db'}"
    src = write_jsonl(outcome_rows(300, seed=1), tmp_path / "outcomes.jsonl")
    assert main(["feedback", "import", str(src), "--usage-db", db]) == 0
    assert "imported 900 of 900 rows" in capsys.readouterr().out
    code = main(["retrain", "--usage-db", db, "--router", str(base), "--out", str(tmp_path / "cand"),
                 "--no-track", "--json", *FAST])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["gate"]["verdict"] == "promote"  # full information: direct estimates
    assert report["rows"]["by_origin"] == {"import": 900} and report["rows"]["hash_only"] == 0
    assert report["gate"]["full_information_prompts"] == 60 and report["gate"]["bandit_entries"] == 0
    g = report["gate"]
    assert g["candidate"]["cost"]["dr"]["value"] <= g["base"]["cost"]["dr"]["value"]
    aiq = _aiq({"base": base, "retrained": tmp_path / "cand"}, outcome_rows(200, seed=7, prefix="h"))
    assert aiq["retrained"] > aiq["base"] + 0.03


def test_the_gate_refuses_a_candidate_trained_on_poisoned_feedback(tmp_path, base, capsys):
    db = f"sqlite:///{tmp_path / 'u.db'}"
    poisoned = [dict(r, score=1.0 - r["score"]) for r in outcome_rows(240, seed=2, prefix="bad")]
    honest = outcome_rows(60, seed=3, prefix="new")  # the newest: held back for the gate
    assert main(["feedback", "import", str(write_jsonl(poisoned + honest, tmp_path / "o.jsonl")),
                 "--usage-db", db]) == 0
    out = tmp_path / "cand"
    code = main(["retrain", "--usage-db", db, "--router", str(base), "--out", str(out), "--no-track", *FAST])
    text = capsys.readouterr().out
    assert code == 3 and "gate: REFUSE" in text and "below the base's" in text
    assert Router.load(out).models == Router.load(base).models  # written whatever the gate says


def test_a_base_naming_a_missing_training_file_fails_with_its_name(tmp_path, base, capsys):
    db = f"sqlite:///{tmp_path / 'u.db'}"
    extra = write_jsonl(outcome_rows(40, seed=4, prefix="x"), tmp_path / "base_outcomes.jsonl")
    assert main(["feedback", "import", str(write_jsonl(outcome_rows(60, seed=5), tmp_path / "o.jsonl")),
                 "--usage-db", db]) == 0
    assert main(["retrain", "--usage-db", db, "--router", str(base), "--out", str(tmp_path / "v1"),
                 "--outcomes", str(extra), "--no-track", *FAST]) in (0, 3)
    extra.unlink()
    capsys.readouterr()
    assert main(["retrain", "--usage-db", db, "--router", str(tmp_path / "v1"), "--out", str(tmp_path / "v2"),
                 "--no-track", "--cache", ""]) == 1
    assert "base_outcomes.jsonl" in capsys.readouterr().err


def _json(out: str) -> dict:
    """The --json report: mlflow prints its run links to stdout before it."""
    lines = out.splitlines()
    return json.loads("\n".join(lines[lines.index("{"):]))


@pytest.mark.integration
def test_retrain_with_mlflow_registers_a_challenger_and_promotes_on_a_pass(tmp_path, base, capsys):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = tmp_path / "mlflow.yaml"
    cfg.write_text(f"tracking_uri: {uri}\nexperiment: loop\nregistered_model: r-loop\n"
                   "gate:\n  metrics: [routing_aiq]\n  tolerance: 0.0\n")
    db = f"sqlite:///{tmp_path / 'u.db'}"
    assert main(["feedback", "import", str(write_jsonl(outcome_rows(200, seed=1), tmp_path / "a.jsonl")),
                 "--usage-db", db]) == 0
    assert main(["retrain", "--usage-db", db, "--router", str(base), "--out", str(tmp_path / "v1"),
                 "--mlflow-config", str(cfg), "--json", *FAST]) == 0
    first = _json(capsys.readouterr().out)["registry"]
    assert (first["version"], first["champion"], first["promoted"]) == ("1", "1", True)
    assert main(["retrain", "--usage-db", db, "--router", "models:/r-loop@champion", "--out", str(tmp_path / "v2"),
                 "--mlflow-config", str(cfg), "--json", "--cache", ""]) in (0, 3)
    second = _json(capsys.readouterr().out)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = str(client.get_model_version_by_alias("r-loop", "champion").version)
    challenger = str(client.get_model_version_by_alias("r-loop", "challenger").version)
    assert challenger == "2"
    assert champion == ("2" if second["gate"]["verdict"] == "promote" else "1")


def test_retrain_with_a_sample_cap_reports_rows_per_second_per_stage(tmp_path, base, capsys):
    db = f"sqlite:///{tmp_path / 'u.db'}"
    assert main(["feedback", "import", str(write_jsonl(outcome_rows(300, seed=1), tmp_path / "o.jsonl")),
                 "--usage-db", db]) == 0
    capsys.readouterr()
    code = main(["retrain", "--usage-db", db, "--router", str(base), "--out", str(tmp_path / "cand"),
                 "--no-track", "--json", "--sample", "450", *FAST])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code in (0, 3) and report["rows"]["sampled"]["of"] == 900 and report["rows"]["sampled"]["cap"] == 450
    assert 350 < report["rows"]["used"] < 550 and 200 < report["rows"]["unique_prompts"] <= 300
    stages = report["stages"]
    assert set(stages) == {"read_log", "task_classifier", "embed", "fit", "write", "gate"} and stages["read_log"]["rows"] == 900
    assert all(s["rows_per_s"] > 0 for s in stages.values())
    assert "stage embed:" in captured.err and "rows/s" in captured.err
