"""The learned task classifier: an embedder body + scikit-learn heads, with the regex as the
low-confidence fallback.

* ``head``: any fitted scikit-learn classifier with ``predict_proba`` over the feature matrix
  ``[embedding, prompt_features]`` (array (n, d + f)); its ``classes_`` are task names.
* ``complexity_head``: optional fitted regressor on the same features -> score in [0, 1].
* ``threshold``: below this top probability the regex answers (``source="regex"``).
* ``english_temperature``: with a :class:`~router.embedders.GatedEmbedder`, the head's logits of
  the prompts read through the English side are divided by it (the head is fitted on rows the
  fine-tuned encoder was trained on and is over-confident on new ones; BENCHMARKS.md).
* ``encoder_head``: with a gated embedder whose English side is a fine-tuned encoder, that
  encoder's own head, averaged into the English rows' probabilities after the temperature
  (:class:`~router.tasks.encoder_head.EncoderHead`).
* ``layout``: the :class:`~router.tasks.layout.FeatureLayout` of the matrix (default: inferred
  from the head's ``n_features_in_`` and the embedder's views); saved and checked at load.

Saved as ``classifier/config.json`` + ``head.npz`` or ``head.joblib`` (+ ``complexity.*``,
``encoder_head.npz``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..persistence.checks import confined, field, mapping, number, text_list
from ..persistence.pickles import dump_head, load_head
from ..embedders import Embedder, GatedEmbedder, HashingEmbedder, ViewsEmbedder, make_embedder
from ..embedders.bundle import bundle_encoders, resolve_bundled
from ..errors import ArtifactError
from ..predictors import linear
from ..text.features import FEATURE_NAMES, prompt_features
from .encoder_head import EncoderHead
from .layout import WHOLE_TEXT, FeatureLayout
from .taxonomy import TEXT_TASK_TYPES, RegexTaskClassifier, complexity_bucket, estimate_complexity
from ..types import TaskPrediction

__all__ = ["LearnedTaskClassifier", "ProbabilisticHead", "RegressorHead", "load_classifier", "featurize"]


@runtime_checkable
class ProbabilisticHead(Protocol):
    """A fitted scikit-learn-style classifier: ``classes_`` (k,), ``predict_proba``: (n, d) -> (n, k)."""

    classes_: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


class RegressorHead(Protocol):
    """A fitted scikit-learn-style regressor: ``predict``: (n, d) -> (n,)."""

    def predict(self, X: np.ndarray) -> np.ndarray: ...


def featurize(embedder: Embedder, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
    """texts -> array (n, dim + len(FEATURE_NAMES)): the embedding next to the hand features."""
    emb = embedder.encode(list(texts), show_progress=show_progress)
    return np.hstack([emb, prompt_features(texts)]).astype(np.float32)


class LearnedTaskClassifier:
    """Embedding + fitted head; the regex answers below ``threshold`` (see module docstring)."""

    kind = "learned"

    def __init__(
        self,
        embedder: Embedder,
        head: ProbabilisticHead,
        *,
        threshold: float = 0.0,
        complexity_head: RegressorHead | None = None,
        fallback: RegexTaskClassifier | None = None,
        metadata: dict[str, Any] | None = None,
        layout: FeatureLayout | None = None,
        english_temperature: float = 1.0,
        encoder_head: EncoderHead | None = None,
    ):
        if not english_temperature > 0:
            raise ValueError(f"english_temperature must be positive, got {english_temperature}")
        self.english_temperature = float(english_temperature)
        self.encoder_head = encoder_head
        self.embedder = embedder
        self.head = head
        self.threshold = threshold
        self.complexity_head = complexity_head
        self.fallback = fallback if fallback is not None else RegexTaskClassifier()
        self.metadata = dict(metadata or {})
        n_in = getattr(head, "n_features_in_", None)  # scikit-learn's declared fitted attribute
        if layout is None:
            if n_in is None:
                raise ValueError("head has no n_features_in_: pass the feature layout")
            layout = FeatureLayout.infer(embedder, int(n_in))
        elif n_in is not None and int(n_in) != layout.width:
            raise ArtifactError(f"head reads {n_in} features; the layout {layout.describe()} has {layout.width}")
        self.layout = layout
        if encoder_head is not None:
            block = layout.block(WHOLE_TEXT)
            if not isinstance(embedder, GatedEmbedder):
                raise ValueError("an encoder head needs a gated embedder (it reads the English side)")
            if encoder_head.weight.shape[0] != len(self.classes) or encoder_head.dim >= block.stop - block.start:
                raise ArtifactError(f"encoder head of shape {encoder_head.weight.shape} does not fit "
                                    f"{len(self.classes)} classes and the gated block of {layout.describe()}")

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.head.classes_]

    def predict_features(self, X: np.ndarray, texts: Sequence[str]) -> list[TaskPrediction]:
        """Predictions from a precomputed feature matrix X (n, d + f) for ``texts``."""
        if len(texts) == 0:
            return []
        self.layout.check(X)
        proba = linear.predict_proba(self.head, X)
        if isinstance(self.embedder, GatedEmbedder):
            gated = X[:, self.layout.block(WHOLE_TEXT)]
            english = self.embedder.english_rows(gated)
            if self.english_temperature != 1.0:
                proba[english] = linear.tempered(proba[english], self.english_temperature)
            if self.encoder_head is not None and english.any():
                proba[english] = self.encoder_head.blend(proba[english], gated[english, : self.encoder_head.dim])
        classes = self.classes
        if self.complexity_head is not None:
            cx = np.clip(linear.predict(self.complexity_head, X), 0.0, 1.0)
        else:
            cx = np.array([estimate_complexity(t) for t in texts])
        low = [i for i in range(len(texts)) if proba[i].max() < self.threshold]
        regex = dict(zip(low, self.fallback.predict([texts[i] for i in low]))) if low else {}
        out = []
        for i in range(len(texts)):
            probs = {c: round(float(p), 6) for c, p in zip(classes, proba[i])}
            score = float(cx[i])
            if i in regex:
                r = regex[i]
                out.append(TaskPrediction(task=r.task, confidence=r.confidence, source="regex",
                                          complexity=complexity_bucket(score),
                                          complexity_score=round(score, 4), probabilities=probs))
            else:
                j = int(np.argmax(proba[i]))
                out.append(TaskPrediction(task=classes[j], confidence=float(proba[i, j]), source="learned",
                                          complexity=complexity_bucket(score),
                                          complexity_score=round(score, 4), probabilities=probs))
        return out

    def featurize(self, texts: Sequence[str]) -> np.ndarray:
        """n texts -> the feature matrix (n, d + f) the heads (and learned predictors) read."""
        return featurize(self.embedder, texts)

    def predict(self, texts: Sequence[str]) -> list[TaskPrediction]:
        """n texts -> n predictions (learned, or regex below the threshold)."""
        texts = list(texts)
        if not texts:
            return []
        return self.predict_features(self.featurize(texts), texts)

    # -- persistence ----------------------------------------------------------------------
    def save_state(self, folder: Path) -> dict[str, Any]:
        files = [dump_head(self.head, folder / "head.joblib")]
        if self.complexity_head is not None:
            files.append(dump_head(self.complexity_head, folder / "complexity.joblib"))
        config = {
            "type": self.kind,
            "embedder": bundle_encoders(self.embedder.to_config(), folder),
            "features": list(FEATURE_NAMES),
            "layout": self.layout.to_dict(),
            "threshold": self.threshold,
            "english_temperature": self.english_temperature,
            "classes": self.classes,
            "files": files,
            "metadata": self.metadata,
        }
        if self.encoder_head is not None:
            name, config["encoder_head"] = self.encoder_head.save(folder)
            files.append(name)
        (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        return config


_HEAD_FILES = ("head.npz", "head.joblib")
_COMPLEXITY_FILES = ("complexity.npz", "complexity.joblib")


def load_classifier(config: dict[str, Any], folder: Path, catalog: object = None,
                    embedder: Embedder | None = None) -> LearnedTaskClassifier:
    """Rebuild a :class:`LearnedTaskClassifier` saved by ``save_state`` into ``folder``;
    :class:`ArtifactError` naming the field of ``config`` that is missing or invalid."""
    where = f"{folder.parent / 'router.json'}: {folder.name}"
    if text_list(config, "features", where, []) != list(FEATURE_NAMES):
        raise ArtifactError(f"{folder}: saved with features {config.get('features')}, "
                            f"this version computes {list(FEATURE_NAMES)}; retrain the router")
    classes = text_list(config, "classes", where)
    unknown = set(classes) - set(TEXT_TASK_TYPES)
    if unknown:
        raise ArtifactError(f"{where}: classes: head predicts unknown task(s) {sorted(unknown)}")
    files = text_list(config, "files", where)
    head_file = next((f for f in files if f in _HEAD_FILES), None)
    if head_file is None:
        raise ArtifactError(f"{where}: files {files} must name head.npz or head.joblib")
    complexity_file = next((f for f in files if f in _COMPLEXITY_FILES), None)
    threshold = number(config, "threshold", where, 0.0)
    english_temperature = number(config, "english_temperature", where, 1.0, positive=True)
    encoder_head = (EncoderHead.load(config["encoder_head"], folder, where, len(classes))
                    if config.get("encoder_head") is not None else None)
    metadata = mapping(config, "metadata", where, {})
    spec = resolve_bundled(field(config, "embedder", dict, where), folder, where) if embedder is None else None

    head = load_head(confined(folder, head_file, f"{where}.files"), "classifier")
    if [str(c) for c in head.classes_] != classes:
        raise ArtifactError(f"{folder / head_file} does not match its config (classes differ)")
    complexity = (load_head(confined(folder, complexity_file, f"{where}.files"), "regressor")
                  if complexity_file is not None else None)
    if embedder is None:
        try:
            embedder = make_embedder(spec)
        except ArtifactError as exc:
            raise ArtifactError(f"{where}: embedder: {exc}") from None
        except Exception as exc:
            raise ArtifactError(f"{where}: invalid embedder {spec} ({type(exc).__name__}: {exc})") from None
    # folders saved before the layout was recorded: infer it from the head, as training did
    if "layout" in config:
        layout = FeatureLayout.from_dict(field(config, "layout", dict, where), f"{where}: layout")
    else:
        layout = FeatureLayout.infer(embedder, int(getattr(head, "n_features_in_", 0)))
    if layout.hand_features != FEATURE_NAMES:
        raise ArtifactError(f"{where}: layout hand_features: saved with hand features "
                            f"{list(layout.hand_features)}, this version computes {list(FEATURE_NAMES)}; "
                            "retrain the router")
    views = embedder.views if isinstance(embedder, ViewsEmbedder) else ()
    if layout.views != tuple(views):
        raise ArtifactError(f"{where}: the layout {layout.describe()} has views {list(layout.views)}, "
                            f"its embedder {list(views)}")
    try:
        clf = LearnedTaskClassifier(embedder, head, threshold=threshold, complexity_head=complexity,
                                    metadata=metadata, layout=layout, english_temperature=english_temperature,
                                    encoder_head=encoder_head)
    except ArtifactError as exc:  # the head's width differs from the layout's blocks
        raise ArtifactError(f"{where}: layout blocks: {exc}") from None
    except ValueError as exc:  # an encoder head without a gated embedder
        raise ArtifactError(f"{where}: encoder_head: {exc}") from None
    body = embedder.inner if isinstance(embedder, ViewsEmbedder) else embedder
    if isinstance(body, HashingEmbedder) and layout.blocks[0][1] != body.n_features:
        raise ArtifactError(f"{where}: embedder n_features {body.n_features} differs from the width of "
                            f"layout blocks[0] {layout.describe()}")
    return clf
