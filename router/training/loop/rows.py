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

Scale: the log is read in chunks; the text of a prompt scored many times is held once; with a
``sample`` cap the rows are thinned per (task, model) stratum with compensating weights.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ...errors import DataError
from ..data.outcomes import COLUMNS

__all__ = ["DEFAULT_ORIGIN_WEIGHTS", "RowReport", "outcome_rows", "stratum_rates"]

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
    unique_prompts: int = 0
    sampled: dict[str, int] = field(default_factory=dict)  # {cap, of, strata, kept} when a cap thinned rows

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def _rows(store: Any, models: set[str], since: float | None, rep: RowReport, unknown: Counter[str],
          chunk_size: int) -> Iterator[tuple]:
    """Outcome rows from the log, one pass, in chunks."""
    for chunk in store.training_rows(since=since, chunk_size=chunk_size):
        for r in chunk:
            rep.feedback_rows += 1
            origin = r.get("origin") or "human"
            if r.get("prompt") is not None:  # a full outcome of its own
                model = r["model"]
                pid = str(r["prompt_id"])
                row = (pid, r["prompt"], model, float(r["score"]), _nan(r["cost_usd"]),
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
                pid = f"req:{r['req_prompt_hash']}"
                row = (pid, text, model, float(r["score"]),
                       _nan(r["req_cost_usd"]) if same else math.nan,
                       _nan(r["req_prompt_tokens"]), _nan(r["req_completion_tokens"]) if same else math.nan,
                       f"usage:{origin}", r.get("req_answer") if same else None, prop, float(r["req_created_at"]),
                       r["request_id"], r.get("task"))
            if model not in models:
                unknown[model] += 1
                continue
            yield (pid,) + row[1:9] + (origin,) + row[9:]


def _keep(request_id: Any, rate: float, seed: int) -> bool:
    """A stable Bernoulli(``rate``) draw from the row's id (the same rows on every run)."""
    if rate >= 1.0:
        return True
    h = hashlib.blake2b(f"{seed}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0 ** 64 < rate


def stratum_rates(counts: Mapping[Any, int], cap: int) -> dict[Any, float]:
    """Sampling rate per stratum so that about ``cap`` rows are kept in all: each stratum gets an
    equal share, a stratum smaller than its share is kept whole and its leftover goes to the
    others (water-filling). Rare (task, model) pairs survive; big ones are thinned."""
    if cap < 1:
        raise DataError(f"the sample cap must be >= 1, got {cap}")
    rates = {k: 1.0 for k in counts}
    todo = {k: n for k, n in counts.items() if n > 0}
    budget = float(cap)
    while todo:
        share = budget / len(todo)
        small = {k: n for k, n in todo.items() if n <= share}
        if not small:
            for k, n in todo.items():
                rates[k] = share / n
            break
        for k, n in small.items():
            budget -= n
            del todo[k]
    return rates


def outcome_rows(store: Any, models: Collection[str], *, since: float | None = None,
                 origin_weights: Mapping[str, float] = DEFAULT_ORIGIN_WEIGHTS, sample: int | None = None,
                 seed: int = 0, chunk_size: int = 5000) -> tuple[pd.DataFrame, RowReport]:
    """Read the store's feedback (in chunks of ``chunk_size``) -> (frame, report). ``models``:
    the catalog's. ``sample``: keep about this many rows, sampled per (task, model) stratum
    (:func:`stratum_rates`, a second pass over the log) with weights multiplied by 1 / rate, so
    each stratum keeps its total weight; the report's ``sampled`` says what was kept of what."""
    rep = RowReport()
    models = set(models)
    rates: dict[Any, float] | None = None
    if sample is not None and sample < 1:
        raise DataError(f"the sample cap must be >= 1, got {sample}")
    if sample is not None:
        counts: Counter[Any] = Counter()
        for row in _rows(store, models, since, RowReport(), Counter(), chunk_size):
            counts[(row[-1], row[2])] += 1
        if sum(counts.values()) > sample:
            rates = stratum_rates(counts, sample)
            rep.sampled = {"cap": sample, "of": int(sum(counts.values())), "strata": len(counts)}
    origins: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    texts: dict[str, str] = {}
    out: list[tuple] = []
    for row in _rows(store, models, since, rep, unknown, chunk_size):
        w = float(origin_weights.get(row[9], 1.0))
        if rates is not None:
            rate = rates[(row[-1], row[2])]
            if not _keep(row[12], rate, seed):
                continue
            w /= rate
        origins[row[9]] += 1
        text = texts.setdefault(row[0], row[1])  # one string per kept prompt, however many rows score it
        out.append((row[0], text) + row[2:9] + (w,) + row[9:])
    rep.by_origin = dict(origins)
    rep.unknown_models = dict(unknown)
    rep.used = len(out)
    rep.unique_prompts = len(texts)
    if rates is not None:
        rep.sampled["kept"] = len(out)
    names = COLUMNS + EXTRA
    data: dict[str, Any] = dict(zip(names, zip(*out))) if out else {k: [] for k in names}
    data["prompt"] = pd.Categorical(data["prompt"])  # each text once, however many rows score it
    df = pd.DataFrame(data)
    df = df[df.weight > 0].reset_index(drop=True)
    return df, rep
