"""`router train --finetune-encoder DIR`: the task encoder fine-tuned on the run's own labelled
data in the same command, exported, bundled with the router and read for English prompts. A
one-layer, one-epoch recipe on 60 prompts keeps it to seconds; the shipped recipe is the same
code with the defaults (BENCHMARKS.md)."""

import json

import pytest

from router import Router
from router.cli.main import main
from router.embedders import GatedEmbedder
from router.embedders.finetuned import FinetunedEmbedder
from router.embedders.finetuned import fingerprint
from tests.support.routerbench_files import write_task_file

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.integration


def test_train_fine_tunes_the_encoder_then_routes_english_prompts_with_it(tmp_path, capsys):
    data, enc, out = write_task_file(tmp_path / "t.jsonl"), tmp_path / "enc", tmp_path / "router"
    assert main(["train", "--out", str(out), "--data", str(data), "--no-shared", "--finetune-encoder", str(enc),
                 "--finetune-epochs", "1", "--finetune-layers", "1", "--cache", "", "--no-track", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["seconds"]["finetune"] > 0
    cfg = json.loads((enc / "encoder.json").read_text())
    assert cfg["rows"] == 60 and cfg["recipe"]["layers"] == 1 and cfg["recipe"]["epochs"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".enc-")] == []  # no temporary left
    plain = tmp_path / "plain"
    plain.mkdir()  # built in a staging folder, renamed: readable as a plain folder is, not 0700
    assert enc.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777

    router = Router.load(out)
    emb = router.classifier.embedder
    assert isinstance(emb, GatedEmbedder) and isinstance(emb.english, FinetunedEmbedder)
    assert emb.english.fingerprint == fingerprint(enc) and not emb.english.packaged
    assert emb.english.folder.is_relative_to(out.resolve())  # a bundled copy travels with the router
    assert router.classifier.encoder_head is not None
    assert router.route("solve the equation 5x + 1 = 11").task == "math"
    assert router.route("hi, how is your day going today?").task == "general"


def test_a_used_encoder_folder_or_an_embedder_next_to_it_is_refused_before_training(tmp_path, capsys):
    data, out = write_task_file(tmp_path / "t.jsonl"), tmp_path / "router"
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert main(["train", "--out", str(out), "--data", str(data), "--no-shared", "--finetune-encoder", str(used),
                 "--no-track"]) == 1
    assert "must be new or empty" in capsys.readouterr().err
    assert (used / "keep.txt").read_text() == "mine" and not out.exists()
    assert main(["train", "--out", str(out), "--data", str(data), "--no-shared", "--finetune-encoder",
                 str(tmp_path / "new"), "--embedder", "hashing", "--no-track"]) == 1
    assert "do not name an embedder" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and not out.exists()
