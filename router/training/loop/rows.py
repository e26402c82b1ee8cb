"""Outcome rows from the usage log: feedback on logged requests and imported outcomes, in the
long outcome form the trainer reads (``router.training.data.outcomes.COLUMNS``) plus
``weight`` (by origin), ``origin``, ``propensity``, ``created_at`` and ``request_id``.

A request stored without its text (privacy: only the hash) cannot be embedded: its feedback is
counted as ``hash_only`` and reported, never silently skipped. Feedback for a model outside the
router's catalog is counted by model name and left out. A row answered by a model other than
the one routed to first (fallback, escalation) keeps its score for training but gets no
propensity, so the off-policy estimates leave it out (``answered_by_other``).

``task`` is a task *label* the feedback carries (an imported outcome's ``task``, or one given
with feedback on a logged request), never the task the router predicted when it served the
request: training the task head on its own answers would teach it nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..data.outcomes import COLUMNS

__all__ = ["DEFAULT_ORIGIN_WEIGHTS", "RowReport", "outcome_rows"]

#: Training weight of each feedback origin (configurable: ``router retrain --origin-weight``).
DEFAULT_ORIGIN_WEIGHTS: Mapping[str, float] = {"human": 1.0, "import": 1.0, "judge": 0.5, "implicit": 0.3}
EXTRA = ["weight", "origin", "propensity", "created_at", "request_id", "task"]


@dataclass
class RowReport:
    feedback_rows: int = 0
    used: int = 0
    by_origin: dict[str, int] = field(default_factory=dict)
    hash_only: int = 0
    orphaned: int = 0
    answered_by_other: int = 0
    unknown_models: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def outcome_rows(store: Any, models: Collection[str], *, since: float | None = None,
                 origin_weights: Mapping[str, float] = DEFAULT_ORIGIN_WEIGHTS) -> tuple[pd.DataFrame, RowReport]:
    """Read the store's feedback (in chunks) -> (frame, report). ``models``: the catalog's."""
    rep = RowReport()
    origins: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    out: list[tuple] = []
    models = set(models)
    for chunk in store.training_rows(since=since):
        for r in chunk:
            rep.feedback_rows += 1
            origin = r.get("origin") or "human"
            if r.get("prompt") is not None:  # a full outcome of its own
                model = r["model"]
                row = (str(r["prompt_id"]), r["prompt"], model, float(r["score"]), _nan(r["cost_usd"]),
                       _nan(r["prompt_tokens"]), _nan(r["completion_tokens"]), r.get("source") or "import",
                       r.get("answer"), r.get("propensity"), r["outcome_at"] if r.get("outcome_at") is not None else r["created_at"],
                       r["request_id"], r.get("task"))
            else:
                if r.get("req_request_id") is None:
                    rep.orphaned += 1
                    continue
                text = r.get("req_classifier_text") or r.get("req_prompt")
                if text is None:
                    rep.hash_only += 1
                    continue
                answered = r["req_model"]
                model = r.get("model") or answered
                routed = r.get("req_routed_model") or answered
                prop = r.get("req_propensity") if (model == answered == routed) else None
                if model == answered and answered != routed:
                    rep.answered_by_other += 1
                same = model == answered
                row = (f"req:{r['req_prompt_hash']}", text, model, float(r["score"]),
                       _nan(r["req_cost_usd"]) if same else math.nan,
                       _nan(r["req_prompt_tokens"]), _nan(r["req_completion_tokens"]) if same else math.nan,
                       f"usage:{origin}", r.get("req_answer") if same else None, prop, float(r["req_created_at"]),
                       r["request_id"], r.get("task"))
            if model not in models:
                unknown[model] += 1
                continue
            origins[origin] += 1
            out.append(row[:9] + (float(origin_weights.get(origin, 1.0)), origin) + row[9:])
    rep.by_origin = dict(origins)
    rep.unknown_models = dict(unknown)
    rep.used = len(out)
    df = pd.DataFrame(out, columns=COLUMNS + EXTRA)
    df = df[df.weight > 0].reset_index(drop=True)
    return df, rep
