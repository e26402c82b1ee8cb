"""The newcomer's path on a fresh MLflow store: `router train` -> `router promote` -> `router
route` with no --router routes with the champion; `router serve` refuses a configured router
that cannot load. Tiny data and the hashing embedder: no model download, a few seconds."""

import json
from pathlib import Path

import pytest

from router import Router
from router.cli.main import main
from router.persistence import registry, resolve
from router.routing import load_configured

pytestmark = pytest.mark.integration
PROMPTS = Path(__file__).resolve().parents[2] / "data" / "prompts"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project folder: its own mlflow.yaml and sqlite store, nothing configured else."""
    rows = []
    for f in ("own_en_chat.jsonl", "own_en_instruct.jsonl", "own_multilingual.jsonl"):
        rows += (PROMPTS / f).read_text().splitlines()[::2]
    (tmp_path / "tasks.jsonl").write_text("\n".join(rows) + "\n")
    gate = [json.loads(line) for line in (PROMPTS / "own_en_work.jsonl").read_text().splitlines()[::6]]
    (tmp_path / "gate.jsonl").write_text("\n".join(json.dumps({"prompt": r["prompt"], "task": r["task"]})
                                                   for r in gate) + "\n")
    (tmp_path / "mlflow.yaml").write_text(
        f"tracking_uri: sqlite:///{tmp_path}/mlflow.db\nexperiment: newcomer\nregistered_model: newcomer-router\n"
        f"gate:\n  metrics: [task_accuracy]\n  tolerance: 0.0\n  tasks: {tmp_path / 'gate.jsonl'}\n")
    monkeypatch.setenv("ROUTER_PROJECT_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in ("ROUTER_MODEL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ROUTER_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_train_promote_then_route_uses_the_champion(project, capsys, monkeypatch):
    # before training: no store yet -> cold start, with one line that says so, and no store created
    assert main(["route", "--json", "write a python function that reverses a string"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)[0]["task_source"] == "regex"
    notice = [line for line in out.err.splitlines() if line.strip()]
    assert len(notice) == 1 and "cold-start router" in notice[0] and "no MLflow store" in notice[0]
    assert not (project / "mlflow.db").exists()

    assert main(["train", "--out", str(project / "artifacts" / "router"), "--data", str(project / "tasks.jsonl"),
                 "--no-shared", "--embedder", "hashing", "--cache", "", "--threshold", "0", "--quiet"]) == 0
    assert capsys.readouterr().err == ""  # --quiet: no progress
    assert main(["promote", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["champion_after"] == "1"

    # no --router, no $ROUTER_MODEL: the champion of the project's mlflow.yaml
    assert main(["route", "--json", "write a python function that reverses a string"]) == 0
    out = capsys.readouterr()
    decision = json.loads(out.out)[0]
    assert decision["task_source"] == "learned"  # the champion's head, not the regex
    assert "cold-start" not in out.err

    resolved = load_configured()
    assert resolved.pinned == "models:/newcomer-router/1" and resolved.fallback is None
    assert resolved.folder.is_relative_to(project / ".cache" / "routers")
    assert "models:/newcomer-router/1 (models:/newcomer-router@champion)" in resolved.describe()
    assert type(Router.from_config().classifier).__name__ == "LearnedTaskClassifier"

    # serve: the alias is pinned once; the workers' settings name that version's folder
    from router.cli.serve import resolve_for_serve

    router, settings, line = resolve_for_serve({"router": None})
    assert settings["router"] == str(resolved.folder) and "models:/newcomer-router/1" in line
    assert type(router.classifier).__name__ == "LearnedTaskClassifier"

    # a registry version is downloaded once: the next load reads the cache, never the store's artifacts
    def no_download(*a, **k):
        raise AssertionError("downloaded a cached version again")

    monkeypatch.setattr(registry, "download_router", no_download)
    assert resolve.fetch(resolved.pinned, resolved.choice.tracking_uri) == resolved.folder

    # $ROUTER_MODEL outranks mlflow.yaml, --router outranks both
    monkeypatch.setenv("ROUTER_MODEL", "cold-start")
    assert Router.from_config().classifier.__class__.__name__ == "RegexTaskClassifier"
    assert type(Router.from_config(str(resolved.folder)).classifier).__name__ == "LearnedTaskClassifier"


def test_serve_refuses_an_unloadable_configured_router(project, capsys, monkeypatch):
    from router.cli.serve import resolve_for_serve

    monkeypatch.setenv("ROUTER_MODEL", str(project / "no-such-router"))
    assert main(["serve", "--port", "0", "--no-usage"]) == 1
    err = capsys.readouterr().err
    assert "refusing to serve" in err and "no-such-router" in err and "--allow-cold-start" in err

    monkeypatch.delenv("ROUTER_MODEL")  # the default: the champion of a store that does not exist
    assert main(["serve", "--port", "0", "--no-usage"]) == 1
    assert "no MLflow store" in capsys.readouterr().err
    assert not (project / "mlflow.db").exists()

    router, settings, line = resolve_for_serve({"router": None, "allow_cold_start": True})
    assert type(router.classifier).__name__ == "RegexTaskClassifier"
    assert settings["router"] == "cold-start" and "cannot load" in line
