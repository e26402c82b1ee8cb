"""Fit and evaluate the learned task classifier.

* :func:`make_head` - the candidate heads (logistic regression, kNN, MLP).
* :func:`sample_weights` - balance collections so 5,000 templated rows don't drown 200 real ones.
* :func:`leave_source_out` - train without a collection, test on it, for each collection.
* :func:`choose_threshold` - the confidence gate below which the regex does better.
* :func:`fit_task_classifier` - the whole thing, returning a ``LearnedTaskClassifier``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...tasks.classifier import LearnedTaskClassifier, featurize
from ...text.features import prompt_features
from ...embedders import Embedder, GatedEmbedder
from ...embedders.cache import uncached
from ...embedders.finetuned import FinetunedEmbedder
from ...tasks.encoder_head import ENCODER_HEAD_MIX, EncoderHead
from ...progress import ProgressLike, as_progress
from ...tasks.taxonomy import TEXT_TASK_TYPES, RegexTaskClassifier

from ..data.datasets import DIFFICULTY_SCORES, LabelledSet
from .threads import map_on_threads, one_blas_thread
from ...errors import DataError
import copy

__all__ = [
    "HEADS",
    "make_head",
    "sample_weights",
    "leave_source_out",
    "LosoResult",
    "choose_threshold",
    "fit_complexity_head",
    "fit_task_classifier",
    "REAL_COLLECTIONS",
    "describe_gate",
]

#: Collections of real (not templated) prompts: the ones generalisation is judged on.
REAL_COLLECTIONS = (
    "arena_hard_v0.1",
    "self_instruct_user",
    "self_instruct_seed",
    "own_en_chat",
    "own_en_work",
    "own_en_instruct",
    "own_en_arena",
    "own_en_tasks",
    "own_en_boundaries",
    "own_multilingual",
    "own_multilingual_2",
    "own_multilingual_3",
    "own_en_selfinstruct",
    "own_en_humanqa",
    "own_multilingual_4",
    "own_en_techboundary",
    "own_en_selfinstruct_2",
    "own_en_arena_2",
    "own_en_selfinstruct_3",
    "own_multilingual_5",
)

HEADS = ("logreg", "knn", "mlp")


def make_head(name: str = "logreg", **params: Any):
    """A fresh, unfitted scikit-learn classifier with ``predict_proba``."""
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=params.get("C", 4.0), max_iter=params.get("max_iter", 3000),
                                  class_weight="balanced")
    if name == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=params.get("k", 15), weights="distance", metric="cosine")
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=(params.get("hidden", 256),), alpha=params.get("alpha", 1e-3),
                             max_iter=300, early_stopping=True, random_state=params.get("seed", 0))
    raise ValueError(f"unknown head {name!r}; choose from {HEADS}")


def sample_weights(ds: LabelledSet, power: float = 0.5) -> np.ndarray:
    """Per-row weight: the row's own weight x (collection size)^-power, scaled to mean 1.

    power=0 keeps raw counts; 0.5 gives each collection a total weight ~ sqrt(its size)."""
    counts = Counter(r.collection for r in ds.rows)
    w = np.array([r.weight * counts[r.collection] ** (-power) for r in ds.rows], dtype=float)
    return w * (len(w) / w.sum())


def _fit(head, X, y, w):
    """Fit with one BLAS thread (2.9 s vs 5.9 s for the full fit on 2 cores; see .threads)."""
    with one_blas_thread():
        try:
            return head.fit(X, y, sample_weight=w)
        except TypeError:  # kNN, MLP take no sample weights
            return head.fit(X, y)


@dataclass
class LosoResult:
    """Out-of-collection predictions: for each held-out collection, the rows' predicted labels
    and probabilities from a head trained without that collection."""

    collections: list[str]
    index: np.ndarray  # row indices into the dataset, array (k,)
    y_true: np.ndarray  # (k,)
    y_pred: np.ndarray  # (k,)
    confidence: np.ndarray  # (k,) top probability
    seconds: float = 0.0
    per_collection: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return float((self.y_true == self.y_pred).mean()) if len(self.y_true) else float("nan")


def leave_source_out(
    ds: LabelledSet,
    X: np.ndarray,
    head_factory: Callable[[], Any],
    collections: Sequence[str] | None = None,
    *,
    weight_power: float = 0.5,
    n_jobs: int | None = None,
    progress: ProgressLike = None,
) -> LosoResult:
    """For each collection: fit on every other collection, predict the held-out one.

    ``X``: feature matrix (n, d) aligned with ``ds.rows``. Folds run on ``n_jobs`` threads
    (default: one per core) with one BLAS thread each (:func:`.threads.map_on_threads`)."""
    coll = np.array([r.collection for r in ds.rows])
    y = np.array(ds.tasks)
    w = sample_weights(ds, weight_power)
    present = [c for c in (collections or REAL_COLLECTIONS) if (coll == c).any()]
    present = [c for c in present if len(set(y[coll != c])) >= 2]  # something left to train on

    def fold(c: str):
        test = coll == c
        head = _fit(head_factory(), X[~test], y[~test], w[~test])
        proba = head.predict_proba(X[test])
        classes = np.array([str(k) for k in head.classes_])
        return np.flatnonzero(test), classes[proba.argmax(1)], proba.max(1)

    prog = as_progress(progress)
    t0 = time.perf_counter()
    with prog.steps(f"leave-source-out folds ({len(y)} rows)", len(present)) as advance:
        def fold_and_report(c: str):
            out = fold(c)
            advance(1)
            return out

        results = map_on_threads(fold_and_report, present, n_jobs)
    idx, pred, conf, per = [], [], [], {}
    for c, (i, p, cf) in zip(present, results):
        idx.append(i)
        pred.append(p)
        conf.append(cf)
        per[c] = float((p == y[i]).mean())
        prog(f"  held out {c:<22} {len(i):>5} rows  accuracy {per[c]:.3f}")
    index = np.concatenate(idx) if idx else np.zeros(0, int)
    return LosoResult(
        collections=present, index=index, y_true=y[index],
        y_pred=np.concatenate(pred) if pred else np.zeros(0, str),
        confidence=np.concatenate(conf) if conf else np.zeros(0),
        seconds=time.perf_counter() - t0, per_collection=per,
    )


def choose_threshold(result: LosoResult, regex_pred: np.ndarray, grid: Sequence[float] | None = None) -> float:
    """The confidence gate that maximises accuracy on out-of-collection rows when rows below it
    go to the regex (``regex_pred`` aligned with ``result.index``). Ties -> the lower gate."""
    grid = list(grid) if grid is not None else [round(x, 2) for x in np.arange(0.0, 0.71, 0.05)]
    best_t, best_acc = 0.0, -1.0
    for t in grid:
        use_regex = result.confidence < t
        final = np.where(use_regex, regex_pred, result.y_pred)
        acc = float((final == result.y_true).mean())
        if acc > best_acc + 1e-9:
            best_t, best_acc = t, acc
    return best_t


def fit_complexity_head(ds: LabelledSet, X: np.ndarray, alpha: float = 10.0):
    """Ridge regression from features to the difficulty score, on rows that have one.
    Returns None when fewer than 10 rows, or only one difficulty level, carry a difficulty."""
    rows = [i for i, r in enumerate(ds.rows) if r.difficulty is not None]
    if len(rows) < 10 or len({ds.rows[i].difficulty for i in rows}) < 2:
        return None
    from sklearn.linear_model import Ridge

    y = np.array([DIFFICULTY_SCORES[ds.rows[i].difficulty] for i in rows])
    sub = LabelledSet([ds.rows[i] for i in rows])
    return Ridge(alpha=alpha).fit(X[rows], y, sample_weight=sample_weights(sub))


def describe_gate(threshold: float) -> str:
    """The confidence gate in words: what answers below it."""
    if threshold <= 0:
        return (f"gate at confidence {threshold:.2f}: the regex then never answers "
                "(the learned head was at least as accurate at every confidence)")
    return f"gate at confidence {threshold:.2f}: below it the regex answers"


#: The English side's softmax temperature of a gated classifier, measured on two groups of
#: collections, each held out of the encoder's fine-tuning and of the head, with the 64-piece
#: encoder: the value that keeps the worse group's ECE lowest (0.038 and 0.039; the pooled
#: negative log-likelihood would pick 2.5, which leaves one group at 0.055; each group alone
#: 2.85 and 1.85). BENCHMARKS.md, "Fewer word pieces, fewer layers".
GATED_ENGLISH_TEMPERATURE = 2.1


def gated_training_set(ds: LabelledSet, embedder: GatedEmbedder, progress: ProgressLike = None
                       ) -> tuple[LabelledSet, np.ndarray]:
    """The rows a head over a :class:`~router.embedders.GatedEmbedder` is fitted on: every row
    through the other side (so that side learns from all the data, as it would alone), then the
    English rows again through the English side. Returns (n + k rows, features (n + k, D + f));
    serving computes one side per prompt, so no row is featurised differently than it is served."""
    say = as_progress(progress)
    say(f"embedding {len(ds)} prompts with {embedder.other.name}, the English ones also with {embedder.english.name} ...")
    X_other, idx, X_en = embedder.encode_paths(ds.prompts)
    hand = prompt_features(ds.prompts)
    rows = list(ds.rows) + [ds.rows[i] for i in idx]
    X = np.vstack([np.hstack([X_other, hand]), np.hstack([X_en, hand[idx]])]).astype(np.float32)
    say(f"gate: {len(idx)} of {len(ds)} prompts read as English")
    return LabelledSet(rows, files=ds.files), X


def training_features(ds: LabelledSet, embedder: Embedder, progress: ProgressLike = None
                      ) -> tuple[LabelledSet, np.ndarray]:
    """The rows and feature matrix a task head over ``embedder`` is fitted on: ``ds`` and
    ``featurize(embedder, ds.prompts)``, or with a gated embedder :func:`gated_training_set`."""
    if isinstance(embedder, GatedEmbedder):
        return gated_training_set(ds, embedder, progress)
    from ..embedding import featurize_with_progress

    say = as_progress(progress)
    return ds, featurize_with_progress(embedder, ds.prompts, say, f"embedding {len(ds)} prompts with {embedder.name}")


def fit_task_classifier(
    ds: LabelledSet,
    embedder: Embedder,
    *,
    head: str = "logreg",
    head_params: dict[str, Any] | None = None,
    threshold: float | None = None,
    weight_power: float = 0.5,
    X: np.ndarray | None = None,
    english_temperature: float | None = None,
    encoder_mix: float = ENCODER_HEAD_MIX,
    progress: ProgressLike = None,
) -> LearnedTaskClassifier:
    """Embed ``ds`` (or take precomputed features ``X``), fit the head and the complexity head.

    ``threshold=None`` calibrates the confidence gate by leave-source-out on the real
    collections present (0.0 when there are none). ``english_temperature``: see
    :class:`LearnedTaskClassifier` (None: :data:`GATED_ENGLISH_TEMPERATURE` with a
    :class:`~router.embedders.GatedEmbedder`, else 1). ``encoder_mix``: the share of a gated
    embedder's fine-tuned English encoder's own head in the English rows' answer
    (:class:`~router.tasks.encoder_head.EncoderHead`; 0: the fitted head alone)."""
    say = as_progress(progress)
    missing = [t for t in TEXT_TASK_TYPES if t not in set(ds.tasks)]
    if missing:
        say(f"warning: no training rows for {missing}; the head cannot predict them")
    if len(set(ds.tasks)) < 2:
        raise DataError(f"need at least two task labels to train, got {sorted(set(ds.tasks))}")
    rows_in = len(ds)
    if X is None:
        ds, X = training_features(ds, embedder, say)
    params = dict(head_params or {})
    loso: dict[str, Any] = {}
    factory = lambda: make_head(head, **params)  # noqa: E731
    t = time.perf_counter()
    say(f"fitting {head} head on {len(ds)} rows ...")
    fitted = _fit(factory(), X, np.array(ds.tasks), sample_weights(ds, weight_power))
    complexity = fit_complexity_head(ds, X)
    say(f"fitted in {time.perf_counter() - t:.1f}s")
    if threshold is None:
        say("calibrating the confidence gate (leave-source-out) ...")
        def warm_from_full_fit():
            # The loss is convex: starting each fold from the full fit reaches the same optimum
            # in a fraction of the iterations.
            head_ = copy.deepcopy(fitted)
            head_.set_params(warm_start=True)
            return head_

        fold_factory = warm_from_full_fit if hasattr(fitted, "warm_start") else factory
        res = leave_source_out(ds, X, fold_factory, weight_power=weight_power, progress=say)
        if len(res.index):
            regex = np.array([p.task for p in RegexTaskClassifier().predict([ds.rows[i].prompt for i in res.index])])
            threshold = choose_threshold(res, regex)
            loso = {"loso_accuracy": res.accuracy, "loso_per_collection": res.per_collection,
                    "regex_accuracy": float((regex == res.y_true).mean())}
            say(f"leave-source-out accuracy {res.accuracy:.3f}; {describe_gate(threshold)}")
        else:
            threshold = 0.0
    if english_temperature is None:
        english_temperature = GATED_ENGLISH_TEMPERATURE if isinstance(embedder, GatedEmbedder) else 1.0
    encoder_head = english_encoder_head(embedder, [str(c) for c in fitted.classes_], encoder_mix)
    return LearnedTaskClassifier(
        embedder, fitted, threshold=float(threshold), complexity_head=complexity,
        english_temperature=english_temperature, encoder_head=encoder_head,
        metadata={"head": head, "head_params": params, "weight_power": weight_power, "rows": rows_in,
                  "class_counts": ds.class_counts(), **loso},
    )


def english_encoder_head(embedder: Embedder, classes: Sequence[str], mix: float) -> EncoderHead | None:
    """The :class:`~router.tasks.encoder_head.EncoderHead` of a gated embedder whose English side
    is a fine-tuned encoder (behind a cache or not); None otherwise, with ``mix`` 0, or when the
    encoder cannot answer one of ``classes``."""
    if not isinstance(embedder, GatedEmbedder) or mix <= 0:
        return None
    english = uncached(embedder.english)
    if not isinstance(english, FinetunedEmbedder):
        return None
    weight, bias = english.head_arrays()
    return EncoderHead.from_encoder(english.labels, weight, bias, english.temperature, classes, mix)
