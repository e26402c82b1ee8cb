"""Fitting the answer scorer from outcome rows that carry answers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ...errors import DataError
from ...predictors.answer_scorer import AnswerScorer, answer_features

__all__ = ["answer_rows", "scorer_training_set", "fit_answer_scorer", "fit_scorer_on_outcomes"]


def answer_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The long-form outcome rows that hold an answer (``answer`` not None / empty)."""
    if "answer" not in df.columns:
        return df.iloc[:0]
    has = df.answer.map(lambda a: isinstance(a, str) and bool(a.strip()))
    return df[has].reset_index(drop=True)


def scorer_training_set(
    rows: pd.DataFrame,
    precall: np.ndarray,
    *,
    seed: int = 0,
    max_others: int = 2,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Rows with answers (n) and the router's pre-call predicted quality of each row's model for
    its prompt (array (n,)) -> (features (n, 14), models, outcomes (n,)).

    Each row gets 0..``max_others`` other answers to the same prompt (other models, drawn at
    random), so the scorer learns both the lone-answer case and the agreement case a cascade
    or a two-cheap-answers request gives it."""
    if len(precall) != len(rows):
        raise DataError(f"need one pre-call prediction per answer row ({len(rows)}), got {len(precall)}")
    rng = np.random.default_rng(seed)
    by_prompt = rows.groupby("prompt_id").indices
    answers = rows.answer.tolist()
    others: list[list[str]] = []
    for i, pid in enumerate(rows.prompt_id):
        pool = [j for j in by_prompt[pid] if j != i]
        k = int(rng.integers(0, max_others + 1))
        pick = rng.choice(pool, size=min(k, len(pool)), replace=False) if pool and k else []
        others.append([answers[j] for j in pick])
    F = answer_features(rows.prompt.tolist(), answers, precall, others)
    return F, rows.model.tolist(), rows.score.to_numpy(float)


def fit_answer_scorer(
    rows: pd.DataFrame,
    precall: np.ndarray,
    *,
    estimator=None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> AnswerScorer:
    """Fit an :class:`AnswerScorer` on outcome rows with answers (see :func:`scorer_training_set`)."""
    say = progress or (lambda s: None)
    F, models, y = scorer_training_set(rows, precall, seed=seed)
    say(f"fitting the answer scorer on {len(y)} answers ({rows.prompt_id.nunique()} prompts, "
        f"{len(set(models))} models)")
    scorer = AnswerScorer(estimator).fit(F, models, y)
    scorer.metadata.update({"sources": sorted(set(rows.source)), "good_share": float((y >= 0.5).mean())})
    return scorer


def fit_scorer_on_outcomes(
    train: pd.DataFrame,
    precall: np.ndarray,
    models: list[str] | tuple[str, ...],
    *,
    progress: Callable[[str], None] | None = None,
) -> AnswerScorer | None:
    """``router train``'s step: ``train`` the long outcome rows with a ``prompt_index`` column
    into ``precall`` (array (n_prompts, len(models)), the router's pre-call predicted quality).
    Fits the scorer on the rows with answers; ``None`` (and says so) when there are none."""
    say = progress or (lambda s: None)
    rows = answer_rows(train)
    if rows.empty:
        say("no answers in the outcome files: no answer scorer (escalation keeps the original checks)")
        return None
    col = {m: j for j, m in enumerate(models)}
    pre = precall[rows.prompt_index.to_numpy(int), rows.model.map(col).to_numpy(int)]
    return fit_answer_scorer(rows, pre, progress=progress)
