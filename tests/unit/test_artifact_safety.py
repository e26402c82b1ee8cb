"""Loading a router folder safely: paths confined to the folder, the SHA-256 manifest checked
before anything is unpickled, typed heads, clear errors for edited fields, and ``--out`` checked
before any training."""

import hashlib
import json
import logging
import os

import joblib
import numpy as np
import pytest

from router import ArtifactError, Router
from router.cli.main import main
from router.persistence.artifact import check_destination
from router.persistence.checks import build_manifest
from tests.unit.test_artifact_fuzz import tiny_learned_router


class _Marker:
    """Unpickling this writes a file: proof that a pickle's code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def router():
    return tiny_learned_router()


@pytest.fixture
def saved(router, tmp_path):
    return router.save(tmp_path / "r")


def _config(folder):
    return json.loads((folder / "router.json").read_text())


def _write(folder, cfg):
    (folder / "router.json").write_text(json.dumps(cfg))


def _resign(folder):
    """What a tamperer who also rewrites the manifest does."""
    cfg = _config(folder)
    cfg["manifest"] = build_manifest(folder)
    _write(folder, cfg)


def test_save_records_every_file_in_a_sha256_manifest(saved):
    assert (saved / "classifier" / "complexity.npz").is_file()  # every kind of head is there
    manifest = _config(saved)["manifest"]
    assert manifest["algorithm"] == "sha256"
    on_disk = sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file())
    assert sorted(manifest["files"]) == [n for n in on_disk if n != "router.json"]
    assert "classifier/head.npz" in manifest["files"] and "answer_scorer/head.joblib" in manifest["files"]
    # linear heads are arrays, not pickles
    assert {"classifier/complexity.npz", "cost/cost_0.npz", "quality/quality_0.npz"} <= set(manifest["files"])
    assert "classifier/head.joblib" not in manifest["files"]
    assert all(len(h) == 64 for h in manifest["files"].values())


@pytest.mark.parametrize("name", ["ABSOLUTE", "../outside.joblib", "sub/../../outside.joblib"])
def test_a_head_path_outside_the_folder_is_refused_before_it_runs(saved, tmp_path, name):
    marker = tmp_path / "ran"
    evil = tmp_path / "outside.joblib"
    joblib.dump(_Marker(marker), evil)
    cfg = _config(saved)
    cfg["quality"]["files"]["cheap"] = str(evil) if name == "ABSOLUTE" else name
    _write(saved, cfg)
    with pytest.raises(ArtifactError, match=r"quality: files\['cheap'\]"):
        Router.load(saved)
    del cfg["manifest"]  # not even a folder without a manifest reads it
    _write(saved, cfg)
    with pytest.raises(ArtifactError, match=r"quality: files\['cheap'\]"):
        Router.load(saved)
    assert not marker.exists()


def test_a_symlink_leaving_the_folder_is_refused(saved, tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "outside.joblib"
    joblib.dump(_Marker(marker), evil)
    head = saved / "answer_scorer" / "head.joblib"
    head.unlink()
    os.symlink(evil, head)
    cfg = _config(saved)  # even with the manifest naming the outside file's own digest
    cfg["manifest"]["files"]["answer_scorer/head.joblib"] = hashlib.sha256(evil.read_bytes()).hexdigest()
    _write(saved, cfg)
    with pytest.raises(ArtifactError, match="head.joblib is a symlink leaving the router folder"):
        Router.load(saved)
    assert not marker.exists()


def test_a_changed_added_or_removed_file_is_refused_before_unpickling(saved, tmp_path):
    marker = tmp_path / "ran"
    joblib.dump(_Marker(marker), saved / "answer_scorer" / "head.joblib")
    with pytest.raises(ArtifactError, match="head.joblib was changed after the router was saved"):
        Router.load(saved)
    assert not marker.exists()
    _resign(saved)  # back to a consistent folder with a bad head: the type check below catches it
    (saved / "answer_scorer" / "head.joblib").unlink()
    _resign(saved)
    (saved / "quality" / "extra.joblib").write_bytes(b"x")
    with pytest.raises(ArtifactError, match=r"\['quality/extra.joblib'\] are not in the manifest"):
        Router.load(saved)
    (saved / "quality" / "extra.joblib").unlink()
    (saved / "cost" / "cost_1.npz").unlink()
    with pytest.raises(ArtifactError, match="cost_1.npz is listed in the manifest .* but missing"):
        Router.load(saved)


@pytest.mark.parametrize("payload", [{"not": "a head"}, np.zeros(3), "a string"])
def test_what_comes_out_of_a_pickle_is_type_checked(saved, payload):
    joblib.dump(payload, saved / "answer_scorer" / "head.joblib")
    _resign(saved)
    with pytest.raises(ArtifactError, match=r"answer_scorer/head.joblib holds a .*, not a fitted scikit-learn"):
        Router.load(saved)


@pytest.mark.parametrize("role, file", [("classifier", "head.npz"), ("classifier", "complexity.npz"),
                                        ("quality", "quality_0.npz"), ("cost", "cost_0.npz")])
def test_linear_heads_are_read_as_arrays_never_unpickled(saved, tmp_path, role, file):
    marker = tmp_path / "ran"
    joblib.dump(_Marker(marker), saved / role / file)  # a pickle where the arrays belong
    _resign(saved)
    with pytest.raises(ArtifactError, match=rf"{role}/{file} is corrupt or not a linear head"):
        Router.load(saved)
    assert not marker.exists()
    with open(saved / role / file, "wb") as f:  # arrays, but not a head's
        np.savez(f, weights=np.ones(3))
    _resign(saved)
    with pytest.raises(ArtifactError, match=r"needs arrays kind, coef and intercept"):
        Router.load(saved)


def test_a_regressor_where_a_classifier_belongs_is_refused(saved):
    (saved / "quality" / "quality_0.npz").write_bytes((saved / "cost" / "cost_0.npz").read_bytes())
    _resign(saved)
    with pytest.raises(ArtifactError, match="quality_0.npz holds a linear regressor, not a classifier"):
        Router.load(saved)


def test_a_folder_saved_before_manifests_loads_with_a_logged_warning(saved, router, caplog, capsys):
    cfg = _config(saved)
    del cfg["manifest"]
    _write(saved, cfg)
    with caplog.at_level(logging.WARNING, logger="router.persistence"):
        again = Router.load(saved)
    assert any("has no manifest" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert capsys.readouterr() == ("", "")  # logged, never printed
    prompts = ["say hello", "prove the theorem about integrals"]
    np.testing.assert_allclose(again.predict(prompts).quality, router.predict(prompts).quality)
    again.save(saved)  # re-saving in place adds the manifest
    assert "manifest" in _config(saved)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="router.persistence"):
        Router.load(saved)
    assert not caplog.records


@pytest.mark.parametrize("key, value, message", [
    ("created_with", "scikit-learn 1.0", "'created_with' must be dict"),
    ("created_with", {"numpy": 2}, "'created_with' must map library names to version strings"),
    ("policy", ["balanced"], "'policy' must be dict"),
    ("policy", {"tiers": 3}, "invalid policy"),
    ("context_turns", "2", "'context_turns' must be int"),
    ("context_turns", -1, "'context_turns' must be a non-negative integer"),
])
def test_edited_top_level_fields_are_artifact_errors_naming_the_field(saved, key, value, message):
    _write(saved, {**_config(saved), key: value})
    with pytest.raises(ArtifactError, match=message):
        Router.load(saved)


def test_check_destination_refuses_a_file_a_foreign_folder_and_a_file_parent(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match="exists and is not a folder"):
        check_destination(tmp_path / "file")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("x")
    with pytest.raises(ArtifactError, match="exists and is not a router folder"):
        check_destination(tmp_path / "foreign")
    with pytest.raises(ArtifactError, match="cannot create the folder"):
        check_destination(tmp_path / "file" / "sub" / "out")
    assert check_destination(tmp_path / "new" / "r") == tmp_path / "new" / "r"
    assert (tmp_path / "new").is_dir() and not (tmp_path / "new" / "r").exists()
    Router.default().save(tmp_path / "old")
    assert check_destination(tmp_path / "old") == tmp_path / "old"  # a router folder is replaced


@pytest.mark.parametrize("argv, heavy", [
    (["train", "--no-track", "--out", "{out}"], "router.training.fit.train.train_router"),
    (["retrain", "--no-track", "--router", "cold-start", "--out", "{out}"], "router.training.loop.retrain.retrain"),
])
def test_train_and_retrain_check_out_before_any_work(tmp_path, monkeypatch, capsys, argv, heavy):
    module, name = heavy.rsplit(".", 1)

    def refuse(*a, **k):
        raise AssertionError("started working before checking --out")

    monkeypatch.setattr(__import__(module, fromlist=[name]), name, refuse)
    out = tmp_path / "router.tar"
    out.write_text("an existing file")
    assert main([a.format(out=out) for a in argv]) == 1
    assert f"{out} exists and is not a folder" in capsys.readouterr().err
    assert out.read_text() == "an existing file"


def test_a_folder_with_pickled_linear_heads_still_loads(saved, router):
    """Folders saved before linear heads became arrays name ``head.joblib`` and friends."""
    from router.persistence.pickles import dump_pickle

    cfg = _config(saved)
    assert cfg["classifier"]["files"] == ["head.npz", "complexity.npz"]
    for stem in ("head", "complexity"):
        (saved / "classifier" / f"{stem}.npz").unlink()
    dump_pickle(router.classifier.head, saved / "classifier" / "head.joblib")
    dump_pickle(router.classifier.complexity_head, saved / "classifier" / "complexity.joblib")
    cfg["classifier"]["files"] = ["head.joblib", "complexity.joblib"]
    _write(saved, cfg)
    _resign(saved)
    again = Router.load(saved)
    assert type(again.classifier.head).__name__ == "LogisticRegression"
    prompts = ["say hello", "prove the theorem about integrals"]
    assert [p.task for p in again.classify(prompts)] == [p.task for p in router.classify(prompts)]
