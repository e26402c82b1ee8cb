"""Train -> register -> promote (gate) -> load by alias -> rollback, against a sqlite tracking
store and against a real `mlflow server` on 127.0.0.1. Hashing embedder: no model download."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from router import ArtifactError, Router, TrackingError
from router.cli.main import main
PROJECT_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration
PROMPTS = PROJECT_ROOT / "data" / "prompts"


def write_config(tmp: Path, uri: str, gate_rows: list[dict]) -> Path:
    gate = tmp / "gate.jsonl"
    gate.write_text("\n".join(json.dumps(r) for r in gate_rows) + "\n")
    cfg = tmp / "mlflow.yaml"
    cfg.write_text(f"tracking_uri: {uri}\nexperiment: test\nregistered_model: r-test\n"
                   f"gate:\n  metrics: [task_accuracy]\n  tolerance: 0.0\n  tasks: {gate}\n")
    return cfg


def gate_rows():
    rows = []
    for f in ("own_en_work.jsonl",):
        for line in (PROMPTS / f).read_text().splitlines()[::6]:
            r = json.loads(line)
            rows.append({"prompt": r["prompt"], "task": r["task"]})
    return rows


def small_data(tmp: Path, name: str, tasks: set[str] | None, every: int) -> Path:
    out = tmp / f"{name}.jsonl"
    lines = []
    for f in ("own_en_chat.jsonl", "own_en_instruct.jsonl", "own_multilingual.jsonl"):
        for line in (PROMPTS / f).read_text().splitlines()[::every]:
            if tasks is None or json.loads(line)["task"] in tasks:
                lines.append(line)
    out.write_text("\n".join(lines) + "\n")
    return out


def train(cfg: Path, tmp: Path, data: Path, name: str) -> int:
    return main(["train", "--out", str(tmp / name), "--data", str(data), "--no-shared", "--embedder", "hashing",
                 "--cache", "", "--threshold", "0", "--mlflow-config", str(cfg)])


def run_lifecycle(tmp: Path, uri: str, capsys) -> None:
    cfg = write_config(tmp, uri, gate_rows())
    good = small_data(tmp, "good", None, 1)
    poor = small_data(tmp, "poor", {"code", "general"}, 3)
    assert train(cfg, tmp, small_data(tmp, "first", None, 3), "v1") == 0
    assert "@champion (first version)" in capsys.readouterr().err  # progress goes to stderr
    # a better challenger passes the gate
    assert train(cfg, tmp, good, "v2") == 0
    assert main(["promote", "--mlflow-config", str(cfg), "--json"]) == 0
    assert "promoted" in capsys.readouterr().out
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        champ = Router.load("models:/r-test@champion")
        assert champ.classify(["write a python function that reverses a string"])[0].task == "code"
        import mlflow

        model = mlflow.pyfunc.load_model("models:/r-test@champion")
        prompts = ["write a python function that reverses a string", "hello!"]
        out = model.predict(pd.DataFrame({"prompt": prompts}), params={"tier": "budget"})
        assert list(out.columns[:2]) == ["model", "task"] and len(out) == 2
        expected = [d.model for d in champ.route_many(prompts, tier="budget")]
        assert out.model.tolist() == expected and set(out.tier) == {"budget"}
        assert model.predict(pd.DataFrame({"prompt": prompts})).tier.tolist() == ["balanced", "balanced"]
        # a worse challenger (two classes only) is refused, then forced, then rolled back
        assert train(cfg, tmp, poor, "v3") == 0
        capsys.readouterr()
        assert main(["promote", "--mlflow-config", str(cfg)]) == 3
        assert "refused" in capsys.readouterr().out
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        assert client.get_model_version_by_alias("r-test", "champion").version in ("2", 2)
        assert main(["promote", "--force", "--mlflow-config", str(cfg)]) == 0
        assert str(client.get_model_version_by_alias("r-test", "champion").version) == "3"
        assert main(["rollback", "--mlflow-config", str(cfg)]) == 0
        assert str(client.get_model_version_by_alias("r-test", "champion").version) == "2"
        runs = mlflow.search_runs(experiment_names=["test"])
        assert {"promoted", "refused", "rollback"} <= set(runs["tags.decision"].dropna())
        assert runs["metrics.task_accuracy"].notna().sum() == 3  # every training run logged the gate metric
        with pytest.raises(ArtifactError):
            Router.load("models:/r-test@nonexistent")
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_lifecycle_on_sqlite(tmp_path, capsys):
    run_lifecycle(tmp_path, f"sqlite:///{tmp_path}/mlflow.db", capsys)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lifecycle_against_a_tracking_server(tmp_path, capsys):
    port = _free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path}/server.db", "--artifacts-destination", str(tmp_path / "art")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)
        run_lifecycle(tmp_path, uri, capsys)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_bad_inputs(tmp_path, capsys):
    from router.training.tracking.runs import load_settings, promote

    settings = load_settings(write_config(tmp_path, f"sqlite:///{tmp_path}/m.db", gate_rows()))
    with pytest.raises(TrackingError, match="no registered model named 'r-test'"):
        promote(settings)
    code = main(["train", "--out", str(tmp_path / "x"), "--data", str(PROMPTS / "own_en_chat.jsonl"), "--no-shared",
                 "--embedder", "hashing", "--cache", "", "--tracking-uri", "http://127.0.0.1:9"])
    assert code == 1 and "unreachable" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # failed before training: nothing written
    assert main(["train", "--out", str(tmp_path / "y"), "--data", str(tmp_path / "missing.jsonl"), "--no-track"]) == 1
    assert "no such data file" in capsys.readouterr().err


def test_failed_registration_leaves_no_version_behind(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from router import ModelCatalog
    from router.training.tracking import runs as tracking

    settings = tracking.load_settings(write_config(tmp_path, f"sqlite:///{tmp_path}/m.db", gate_rows()))
    router = Router.default(ModelCatalog.load())

    def broken(self, *a, **k):
        raise RuntimeError("alias service down")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", broken)
    with pytest.raises(TrackingError, match="alias service down"):
        tracking.log_training(settings, router, params={}, data_files=[], metrics={})
    monkeypatch.undo()
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    assert client.search_model_versions("name='r-test'") == []


def test_connecting_leaves_the_environment_alone(tmp_path, monkeypatch):
    """mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI into os.environ; left there, it would
    outrank the mlflow.yaml of every later run in the same process (a later run registered its
    model in an earlier run's store)."""
    import os

    from router.training.tracking.runs import connect, load_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = load_settings(write_config(tmp_path / "a", f"sqlite:///{tmp_path}/a.db", gate_rows()))
    connect(first)
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    second = load_settings(write_config(tmp_path / "b", f"sqlite:///{tmp_path}/b.db", gate_rows()))
    assert second.tracking_uri == f"sqlite:///{tmp_path}/b.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/user.db")
    connect(second)
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/user.db"  # the user's own value stays


def test_a_champion_this_installation_cannot_load_is_replaced(tmp_path, capsys, monkeypatch):
    """A champion this installation cannot load (here: a file of its stored copy changed since it
    was registered, so its manifest refuses it) is replaced by the challenger, and promote says
    why instead of failing. (An upgrade that ships a different packaged encoder no longer does
    this: a router carries its own copy of the encoder.)"""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the sqlite store's artifacts go to ./mlruns
    uri = f"sqlite:///{tmp_path}/m.db"
    cfg = write_config(tmp_path, uri, gate_rows()[:20])
    data = small_data(tmp_path, "d", None, 6)

    def train(name: str) -> int:
        return main(["train", "--out", str(tmp_path / name), "--data", str(data), "--no-shared",
                     "--embedder", "task-minilm", "--cache", "", "--threshold", "0", "--mlflow-config", str(cfg)])

    assert train("v1") == 0
    stored = list((tmp_path / "mlruns").rglob("classifier/encoders/*/model.int8.onnx"))
    assert len(stored) == 1  # v1's copy of the encoder, in the registry's artifact store
    stored[0].write_bytes(stored[0].read_bytes()[:-1] + b"\0")
    assert train("v2") == 0
    capsys.readouterr()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        with pytest.raises(ArtifactError, match="changed after the router was saved"):
            Router.load("models:/r-test/1")
        assert main(["promote", "--mlflow-config", str(cfg), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["promoted"] and "champion v1 cannot be loaded" in out["reason"]
        assert out["comparison"]["task_accuracy"]["champion"] is None
        assert out["comparison"]["task_accuracy"]["challenger"] is not None
        assert str(MlflowClient(uri).get_model_version_by_alias("r-test", "champion").version) == "2"
        assert Router.load("models:/r-test@champion").classify(["write a python function"])[0].task == "code"
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
