"""The answer scorer: P(an answer is good | prompt, answer, model), read after the call.

Features (one row per answer, :func:`answer_features`):

* the answer's shape: log length, lines, a code fence, emptiness, a single choice letter,
  whether the prompt asks for one ("Print only a single choice", "Answer:") and the answer
  complies, the length ratio answer / prompt;
* the original design's escalation checks (a TODO / placeholder in code, hedging words) and
  refusal phrases, as features rather than rules;
* the model (one-hot over the scorer's models) and the router's pre-call predicted quality of
  that model for the prompt (its logit);
* agreement with other answers to the same prompt already paid for (a cascade's earlier steps,
  or a second cheap model asked in parallel): how many there are and the share that give the
  same normalised answer (:func:`normalise_answer`).

The head is a scikit-learn classifier passed in and cloned (default: gradient-boosted trees),
calibrated with isotonic regression on cross-validation folds, so a score of 0.8 means about
8 good answers in 10 on data like the training data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError, DataError
from ..persistence.checks import confined, count, field, mapping, text_list
from ..persistence.pickles import dump_head, load_head

__all__ = [
    "ANSWER_FEATURE_NAMES",
    "normalise_answer",
    "agreement",
    "answer_features",
    "AnswerScorer",
    "load_answer_scorer",
]

ANSWER_FEATURE_NAMES = (
    "log_chars", "log_lines", "empty", "code_fence", "choice_letter", "asks_choice", "complies_choice",
    "log_len_ratio", "placeholder", "hedging", "refusal", "precall_logit", "n_others", "agree_share",
)

_CHOICE = re.compile(r"^\W*\(?([A-E])\)?[\s.):]*$")
_LEADING_CHOICE = re.compile(r"^\W*\(?([A-E])\)(\s|$)|^\W*([A-E])\s*$|^(?:answer\s*(?:is)?:?\s*)\(?([A-E])\b", re.I)
_ASKS_CHOICE = re.compile(r"single choice|answer with (?:one|a single) letter|\bAnswer:\s*$", re.I)
_HEDGES = ("might be wrong", "not entirely sure", "could be", "possibly", "i think", "not sure", "maybe",
           "i'm not certain", "it is unclear", "it's unclear")
_REFUSALS = ("i cannot", "i can't", "i'm sorry", "i am sorry", "as an ai", "i apologize", "unable to")


def normalise_answer(answer: str) -> str:
    """The comparable core of an answer: its choice letter when it gives one up front ("B",
    "B)", "(B) ...", "Answer: B"), else its lower-cased, whitespace-collapsed first 300 characters."""
    text = answer.strip()
    m = _LEADING_CHOICE.match(text)
    if m:
        letter = next(g for g in m.groups() if g)
        return letter.upper()
    return " ".join(text.lower().split())[:300]


def agreement(answer: str, others: Sequence[str]) -> float:
    """Share of ``others`` whose normalised answer equals this one's (NaN with no others)."""
    if not others:
        return math.nan
    mine = normalise_answer(answer)
    return sum(normalise_answer(o) == mine for o in others) / len(others)


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


def answer_features(
    prompts: Sequence[str],
    answers: Sequence[str],
    precall: Sequence[float] | np.ndarray,
    others: Sequence[Sequence[str]] | None = None,
) -> np.ndarray:
    """n (prompt, answer, pre-call predicted quality, other answers) -> array (n, 14) in the order
    of :data:`ANSWER_FEATURE_NAMES` (the model one-hot is added by :class:`AnswerScorer`)."""
    n = len(prompts)
    if len(answers) != n or len(precall) != n or (others is not None and len(others) != n):
        raise DataError(f"answer_features needs equal lengths; got {n} prompts, {len(answers)} answers, "
                        f"{len(precall)} pre-call predictions" + ("" if others is None else f", {len(others)} others"))
    out = np.zeros((n, len(ANSWER_FEATURE_NAMES)), dtype=np.float64)
    for i, (prompt, answer) in enumerate(zip(prompts, answers)):
        a = answer or ""
        low = a.lower()
        stripped = a.strip()
        choice = bool(_CHOICE.match(stripped))
        asks = bool(_ASKS_CHOICE.search(prompt[-400:]))
        ag = agreement(a, others[i]) if others is not None else math.nan
        out[i] = (
            math.log1p(len(a)), math.log1p(a.count("\n") + 1 if stripped else 0), float(not stripped),
            float("```" in a), float(choice), float(asks), float(asks and choice),
            math.log1p(len(a)) - math.log1p(len(prompt)),
            float("TODO" in a or "placeholder" in low), float(any(h in low for h in _HEDGES)),
            float(any(r in low[:200] for r in _REFUSALS)), _logit(float(precall[i])),
            float(0 if others is None else len(others[i])), 0.5 if math.isnan(ag) else ag,
        )
    return out


def _default_head():
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                          min_samples_leaf=20, l2_regularization=1.0, random_state=0)


class AnswerScorer:
    """P(good answer | prompt, answer, model) from :func:`answer_features` + the model one-hot.

    ``estimator``: an unfitted scikit-learn classifier (cloned; default gradient-boosted trees);
    ``calibration``: ``"isotonic"`` | ``"sigmoid"`` | ``None`` (cross-validated calibration with
    ``cv`` folds). Learned attributes: ``models_`` (the one-hot's model names; an unknown model
    gets all zeros), ``head_`` (the fitted, calibrated classifier), ``n_train_``.
    """

    def __init__(self, estimator: Any = None, *, calibration: str | None = "isotonic", cv: int = 3):
        self.estimator = estimator
        self.calibration = calibration
        self.cv = cv
        self.metadata: dict[str, Any] = {}

    # -- features ----------------------------------------------------------------------
    def _design(self, F: np.ndarray, models: Sequence[str]) -> np.ndarray:
        index = {m: j for j, m in enumerate(self.models_)}
        onehot = np.zeros((len(models), len(self.models_)))
        for i, m in enumerate(models):
            if m in index:
                onehot[i, index[m]] = 1.0
        return np.hstack([F, onehot])

    # -- fit / predict -----------------------------------------------------------------
    def fit(self, F: np.ndarray, models: Sequence[str], y: np.ndarray) -> "AnswerScorer":
        """``F``: :func:`answer_features` (n, 14); ``models``: n names; ``y``: n outcomes in [0, 1]
        (>= 0.5 counts as good)."""
        from sklearn.base import clone
        from sklearn.calibration import CalibratedClassifierCV

        y = (np.asarray(y, float) >= 0.5).astype(int)
        if len(y) != len(F) or len(models) != len(F):
            raise DataError(f"fit needs equal lengths: {len(F)} feature rows, {len(models)} models, {len(y)} outcomes")
        if len(np.unique(y)) < 2:
            raise DataError("the answer scorer needs both good and bad answers to train on")
        self.models_ = tuple(sorted(set(models)))
        head = clone(self.estimator if self.estimator is not None else _default_head())
        if self.calibration is not None:
            head = CalibratedClassifierCV(head, method=self.calibration, cv=self.cv)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):  # OpenMP's spinning threads thrash on a busy 2-core machine
            self.head_ = head.fit(self._design(F, models), y)
        self.n_train_ = int(len(y))
        return self

    def predict_features(self, F: np.ndarray, models: Sequence[str]) -> np.ndarray:
        """Array (n,) of P(good) for feature rows ``F`` (n, 14) of answers by ``models``."""
        if not hasattr(self, "head_"):
            raise ArtifactError("the answer scorer is not fitted")
        if len(F) == 0:
            return np.zeros(0)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return self.head_.predict_proba(self._design(np.asarray(F, float), models))[:, 1]

    def score(self, prompts: Sequence[str], answers: Sequence[str], models: Sequence[str],
              precall: Sequence[float] | np.ndarray, others: Sequence[Sequence[str]] | None = None) -> np.ndarray:
        """Array (n,) of P(good) for n answers (see :func:`answer_features` for the inputs)."""
        if len(models) != len(prompts):
            raise DataError(f"score needs one model per answer; got {len(prompts)} prompts, {len(models)} models")
        return self.predict_features(answer_features(prompts, answers, precall, others), models)

    # -- persistence -------------------------------------------------------------------
    def save_state(self, folder: Path) -> dict[str, Any]:
        if not hasattr(self, "head_"):
            raise ArtifactError("cannot save an unfitted answer scorer")
        name = dump_head(self.head_, folder / "head.joblib")
        return {"type": "learned", "files": [name], "models": list(self.models_), "n_train": self.n_train_,
                "features": list(ANSWER_FEATURE_NAMES), "metadata": self.metadata}


def load_answer_scorer(config: dict[str, Any], folder: Path, catalog: Any = None) -> AnswerScorer:
    """Inverse of :meth:`AnswerScorer.save_state`; :class:`ArtifactError` naming a bad field."""
    where = f"{folder.parent / 'router.json'}: {folder.name}"
    if text_list(config, "features", where, []) != list(ANSWER_FEATURE_NAMES):
        raise ArtifactError(f"{folder}: the answer scorer was saved with features {config.get('features')}, "
                            f"this version computes {list(ANSWER_FEATURE_NAMES)}; retrain it")
    files = text_list(config, "files", where)
    models = text_list(config, "models", where)
    if len(files) != 1:
        raise ArtifactError(f"{where}: 'files' must name one head file, got {files}")
    if not models or len(set(models)) != len(models):
        raise ArtifactError(f"{where}: 'models' must be distinct model names, got {models}")
    scorer = AnswerScorer()
    scorer.n_train_ = count(field(config, "n_train", int, where, 0), f"{where}: 'n_train'")
    scorer.metadata = mapping(config, "metadata", where, {})
    head = load_head(confined(folder, files[0], f"{where}: files[0]"), "classifier", f"{where}: files[0]")
    width = len(ANSWER_FEATURE_NAMES) + len(models)
    if getattr(head, "n_features_in_", width) != width:  # scikit-learn's declared fitted attribute
        raise ArtifactError(f"{where}: 'models' lists {len(models)} models but {files[0]} reads "
                            f"{head.n_features_in_ - len(ANSWER_FEATURE_NAMES)} model columns")
    scorer.head_, scorer.models_ = head, tuple(models)
    return scorer
