"""``router drift``: is recent traffic still the traffic the router was trained for?

Recent traffic (the usage log from ``since``; default: the last 7 days before the newest
request) is compared with a reference: the base router's training prompts (the outcome files it
names, or ``reference_texts``), else the log's own traffic before ``since``. Both sides are
sampled (reservoir sampling over the log in chunks, seeded; memory bounded by ``sample``) and
read by the **base** router, so the comparison does not depend on which router served:

* **task mix**: the base classifier's task shares on each side, total-variation distance (TV);
* **classifier confidence**: its mean confidence on each side (a drop: prompts it knows less);
* **share per model**: the base router's choices at its default tier on each side (TV), and the
  share the log records (``routed_model``) for information;
* **embedding distance**: MMD² (RBF kernel, median-heuristic bandwidth) between recent and
  reference embeddings, against the same statistic between two halves of the reference (the
  noise floor); and the mean cosine of each prompt to its nearest of k reference centroids;
* **feedback per model over time**: mean score per model per period; a model whose recent mean
  dropped from its earlier mean (enough rows on both sides) is flagged.

The verdict is "retrain advised: yes" when any check passes its threshold
(:class:`DriftThresholds`), with the checks that did as the reasons; :func:`plot_drift` draws
the report as a PNG.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...tasks.classifier import LearnedTaskClassifier

__all__ = ["DriftThresholds", "drift_report", "tv_distance", "mmd2", "centroid_cosine", "plot_drift"]

WEEK = 7 * 86400.0


@dataclass(frozen=True)
class DriftThresholds:
    task_tv: float = 0.2  # task-mix total variation
    model_tv: float = 0.25  # share-per-model total variation
    confidence_drop: float = 0.1  # mean classifier confidence, reference - recent
    mmd_ratio: float = 3.0  # recent-vs-reference MMD² over the reference's own noise floor ...
    mmd_min: float = 0.02  # ... and at least this much
    feedback_drop: float = 0.1  # a model's mean score, earlier - recent
    min_feedback: int = 20  # rows per side before a feedback drop counts
    min_rows: int = 30  # recent requests before any verdict


def tv_distance(p: dict[str, float], q: dict[str, float]) -> float:
    """Total variation distance of two distributions given as {key: share}."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def _shares(values: Sequence[str]) -> dict[str, float]:
    c = Counter(values)
    n = sum(c.values()) or 1
    return {k: round(v / n, 4) for k, v in sorted(c.items())}


def _normed(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def mmd2(X: np.ndarray, Y: np.ndarray, bandwidth: float | None = None) -> tuple[float, float]:
    """Unbiased MMD² of samples ``X`` and ``Y`` with an RBF kernel; returns (mmd², bandwidth).
    ``bandwidth`` defaults to the median pairwise distance within ``X`` (median heuristic)."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if len(X) < 2 or len(Y) < 2:
        raise DataError("MMD needs at least two rows on each side")

    def d2(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return np.maximum((A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T, 0.0)

    xx, yy, xy = d2(X, X), d2(Y, Y), d2(X, Y)
    if bandwidth is None:
        off = xx[np.triu_indices(len(X), 1)]
        bandwidth = float(np.sqrt(np.median(off))) or 1.0
    g = 1.0 / (2 * bandwidth ** 2)
    kxx, kyy, kxy = np.exp(-g * xx), np.exp(-g * yy), np.exp(-g * xy)
    n, m = len(X), len(Y)
    v = (kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * kxy.mean()
    return float(v), bandwidth


def centroid_cosine(reference: np.ndarray, X: np.ndarray, k: int = 8, seed: int = 0) -> float:
    """Mean cosine of each row of ``X`` to its nearest of ``k`` k-means centroids of ``reference``."""
    from sklearn.cluster import KMeans

    R = _normed(reference)
    k = max(1, min(k, len(R) // 5 or 1))
    C = _normed(KMeans(n_clusters=k, n_init=3, random_state=seed).fit(R).cluster_centers_)
    return float((_normed(X) @ C.T).max(axis=1).mean())


def _reservoir(it, n: int, rng: random.Random, keep: Callable[[Any], Any]) -> tuple[list[Any], int]:
    picked: list[Any] = []
    seen = 0
    for x in it:
        v = keep(x)
        if v is None:
            continue
        seen += 1
        if len(picked) < n:
            picked.append(v)
        elif (j := rng.randrange(seen)) < n:
            picked[j] = v
    return picked, seen


def _log_side(store: Any, since: float | None, until: float | None, sample: int, rng: random.Random) -> dict:
    """One pass over the log's requests in [since, until): a text sample and counts."""
    models: Counter[str] = Counter()
    stats = {"rows": 0, "hash_only": 0}

    def rows():
        for chunk in store.record_chunks(since=since, until=until):
            for rec in chunk:
                stats["rows"] += 1
                models[rec.routed_model or rec.model] += 1
                text = rec.classifier_text or rec.prompt
                if text is None:
                    stats["hash_only"] += 1
                yield text

    texts, _ = _reservoir(rows(), sample, rng, lambda t: t)
    n = sum(models.values()) or 1
    return {"texts": texts, **stats, "logged_model_share": {k: round(v / n, 4) for k, v in sorted(models.items())}}


def _feedback(store: Any, split: float) -> tuple[dict, dict]:
    """Mean feedback score per model before / after ``split`` (by the request's time), and per day."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    daily: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    for chunk in store.training_rows():
        for r in chunk:
            t = r.get("req_created_at")
            t = r.get("outcome_at") or r["created_at"] if t is None else t
            model = r.get("model") or r.get("req_model")
            if model is None:
                continue
            side = "recent" if t >= split else "earlier"
            for acc in (sums[(model, side)], daily[model][str(int(t // 86400))]):
                acc[0] += float(r["score"])
                acc[1] += 1
    per_model: dict[str, dict[str, Any]] = {}
    for (model, side), (s, n) in sums.items():
        per_model.setdefault(model, {})[side] = {"mean": round(s / n, 4), "n": n}
    series = {m: {day: round(s / n, 4) for day, (s, n) in sorted(d.items())} for m, d in daily.items()}
    return per_model, series


def _side(router: Any, texts: list[str], embedder: Any) -> dict[str, Any]:
    decisions = router.route_many(texts)  # each carries its task prediction: no second classification pass
    return {"n": len(texts), "task_mix": _shares([d.task for d in decisions]),
            "confidence": round(float(np.mean([d.task_confidence for d in decisions])), 4),
            "model_share": _shares([d.model for d in decisions]),
            "X": np.asarray(embedder.encode(texts), dtype=np.float64)}


def drift_report(router: Any, store: Any, *, since: float | None = None, reference_texts: Sequence[str] | None = None,
                 sample: int = 1000, seed: int = 0, thresholds: DriftThresholds = DriftThresholds(),
                 embedder: Any = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Compare recent traffic with the reference; see the module docstring. Returns a JSON-able
    report with ``verdict`` (``{"retrain": bool, "reasons": [...]}``) and the per-check numbers."""
    say = progress or (lambda s: None)
    if sample < 10:
        raise DataError(f"sample must be >= 10, got {sample}")
    rng = random.Random(seed)
    newest = max((rec.created_at for chunk in store.record_chunks(since=since) for rec in chunk[-1:]), default=None)
    if newest is None:
        raise DataError(f"no requests in {store.url}" + (f" since {since}" if since is not None else ""))
    since = newest - WEEK if since is None else since
    recent = _log_side(store, since, None, sample, rng)
    if reference_texts is not None and len(reference_texts):
        ref_texts, _ = _reservoir(iter(reference_texts), sample, rng, lambda t: t)
        ref_kind = f"the base's training prompts ({len(reference_texts)})"
    else:
        earlier = _log_side(store, None, since, sample, rng)
        ref_texts, ref_kind = earlier["texts"], f"the log before {since:.0f} ({earlier['rows']} requests)"
    if len(ref_texts) < 10:
        raise DataError(f"too little reference traffic to compare with ({len(ref_texts)} texts in {ref_kind}); "
                        "pass reference prompts (--reference) or an earlier --since")
    rec_texts = recent["texts"]
    say(f"drift: {recent['rows']} recent requests ({len(rec_texts)} sampled, {recent['hash_only']} hash-only) "
        f"against {ref_kind}")
    if embedder is None and isinstance(router.classifier, LearnedTaskClassifier):
        embedder = router.classifier.embedder
    if embedder is None:
        from ...embedders.hashing import HashingEmbedder

        embedder = HashingEmbedder()
    th = thresholds
    ref = _side(router, ref_texts, embedder)
    checks: dict[str, Any] = {}
    reasons: list[str] = []
    fb_models, series = _feedback(store, since)
    drops = {}
    for m, d in fb_models.items():
        e, r = d.get("earlier"), d.get("recent")
        if e and r and e["n"] >= th.min_feedback and r["n"] >= th.min_feedback:
            drops[m] = round(e["mean"] - r["mean"], 4)
    checks["feedback"] = {"per_model": fb_models, "drop": drops}
    for m, dd in sorted(drops.items()):
        if dd > th.feedback_drop:
            reasons.append(f"feedback on {m} fell by {dd:.2f} (from {fb_models[m]['earlier']['mean']:.2f} to "
                           f"{fb_models[m]['recent']['mean']:.2f}; threshold {th.feedback_drop})")
    if len(rec_texts) >= 10:
        cur = _side(router, rec_texts, embedder)
        task_tv = tv_distance(ref["task_mix"], cur["task_mix"])
        model_tv = tv_distance(ref["model_share"], cur["model_share"])
        half = len(ref["X"]) // 2
        mmd_recent, bw = mmd2(ref["X"][:half], cur["X"])
        mmd_floor, _ = mmd2(ref["X"][:half], ref["X"][half:], bw)
        cos_ref = centroid_cosine(ref["X"][:half], ref["X"][half:], seed=seed)
        cos_recent = centroid_cosine(ref["X"][:half], cur["X"], seed=seed)
        checks.update({
            "task_mix": {"reference": ref["task_mix"], "recent": cur["task_mix"], "tv": round(task_tv, 4)},
            "confidence": {"reference": ref["confidence"], "recent": cur["confidence"],
                           "drop": round(ref["confidence"] - cur["confidence"], 4)},
            "model_share": {"reference": ref["model_share"], "recent": cur["model_share"], "tv": round(model_tv, 4),
                            "logged": recent["logged_model_share"]},
            "embedding": {"embedder": embedder.name, "mmd2": round(mmd_recent, 5), "mmd2_noise_floor": round(mmd_floor, 5),
                          "centroid_cosine_reference": round(cos_ref, 4), "centroid_cosine_recent": round(cos_recent, 4)}})
        if task_tv > th.task_tv:
            moved = max(set(ref["task_mix"]) | set(cur["task_mix"]),
                        key=lambda k: abs(cur["task_mix"].get(k, 0) - ref["task_mix"].get(k, 0)))
            reasons.append(f"the task mix moved (TV {task_tv:.2f} > {th.task_tv}; {moved} "
                           f"{ref['task_mix'].get(moved, 0):.0%} -> {cur['task_mix'].get(moved, 0):.0%})")
        if model_tv > th.model_tv:
            reasons.append(f"the router's share per model moved (TV {model_tv:.2f} > {th.model_tv})")
        if ref["confidence"] - cur["confidence"] > th.confidence_drop:
            reasons.append(f"classifier confidence fell from {ref['confidence']:.2f} to {cur['confidence']:.2f}")
        if mmd_recent > max(th.mmd_min, th.mmd_ratio * max(mmd_floor, 0.0)):
            reasons.append(f"the prompts' embeddings moved (MMD² {mmd_recent:.3f} vs noise floor {mmd_floor:.3f}; "
                           f"cosine to training centroids {cos_ref:.2f} -> {cos_recent:.2f})")
    enough = recent["rows"] >= th.min_rows
    retrain = bool(reasons) and enough
    if not enough:
        because = f"only {recent['rows']} recent requests (fewer than {th.min_rows}): too few to judge"
    elif reasons:
        because = "; ".join(reasons)
    else:
        because = "no check passed its threshold" + (
            f" (task-mix TV {checks['task_mix']['tv']:.2f}, model-share TV {checks['model_share']['tv']:.2f}, "
            f"MMD² {checks['embedding']['mmd2']:.3f})" if "task_mix" in checks else "")
    return {"since": since, "newest": newest, "reference": ref_kind, "recent_rows": recent["rows"],
            "recent_sampled": len(rec_texts), "hash_only": recent["hash_only"], "checks": checks,
            "feedback_by_day": series, "thresholds": asdict(th),
            "verdict": {"retrain": retrain, "reasons": reasons,
                        "text": f"retrain advised: {'yes' if retrain else 'no'}, because {because}"}}


def plot_drift(report: dict[str, Any], path: str | Path) -> Path:
    """The report as one PNG: task mix, share per model, embedding, feedback per model per day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = report["checks"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for ax, key, title in ((axes[0, 0], "task_mix", "task mix"), (axes[0, 1], "model_share", "share per model")):
        if key in c:
            keys = sorted(set(c[key]["reference"]) | set(c[key]["recent"]))
            x = np.arange(len(keys))
            ax.bar(x - 0.2, [c[key]["reference"].get(k, 0) for k in keys], 0.4, label="reference")
            ax.bar(x + 0.2, [c[key]["recent"].get(k, 0) for k in keys], 0.4, label="recent")
            ax.set_xticks(x, keys, rotation=45, ha="right", fontsize=8)
            ax.set_title(f"{title} (TV {c[key]['tv']:.2f})")
            ax.legend()
    ax = axes[1, 0]
    if "embedding" in c:
        e = c["embedding"]
        ax.bar(["MMD² recent", "MMD² noise floor"], [e["mmd2"], e["mmd2_noise_floor"]], color=["C1", "C0"])
        ax.set_title(f"embedding ({e['embedder']}); centroid cosine {e['centroid_cosine_reference']:.2f} -> "
                     f"{e['centroid_cosine_recent']:.2f}", fontsize=9)
    ax = axes[1, 1]
    for m, days in sorted(report["feedback_by_day"].items()):
        xs = [int(d) for d in days]
        ax.plot(xs, list(days.values()), marker="o", label=m)
    ax.axvline(report["since"] / 86400, color="grey", linestyle="--", label="since")
    ax.set_title("mean feedback score per model per day")
    ax.set_xlabel("day (epoch days)")
    if report["feedback_by_day"]:
        ax.legend(fontsize=7)
    fig.suptitle(report["verdict"]["text"][:160], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
