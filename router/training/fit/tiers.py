"""Fit the policy's price curve: which price per quality point meets a mean-quality target.

For a grid of prices ``lam`` (quality points per USD), route reference prompts by the value rule
(``quality - lam * cost``, :func:`router.policy.choose`) and record the mean *predicted* quality
of the models chosen. The pairs (mean quality, price) are the curve a
:class:`~router.policy.PolicyConfig` maps targets through: a target t gets the price at which
the reference traffic's mean predicted quality is t, the least-cost way to meet t on average.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...policy import choose

__all__ = ["fit_price_curve", "fit_anchor", "PRICE_GRID_POINTS", "MARGINS"]

#: Anchor margins tried by :func:`fit_anchor`.
MARGINS = tuple(np.round(np.arange(0, 0.301, 0.01), 3))

PRICE_GRID_POINTS = 60


def fit_anchor(pred_q: np.ndarray, true_q: np.ndarray, pred_c: np.ndarray,
               models: Sequence[str]) -> tuple[str, float]:
    """The model best on average (highest mean true score; ``true_q`` (n, m), NaN where unknown)
    and the margin its value is credited: of :data:`MARGINS`, the one whose routing at price 0
    (quality first) realises the best mean true quality on these prompts (the smallest on ties).
    ``pred_q`` must be out-of-fold predictions: in-sample ones would trust the heads too much."""
    t = np.asarray(true_q, float)
    full = ~np.isnan(t).any(1)
    if not full.any():
        raise ValueError("no prompt has every model's true score")
    anchor = models[int(np.nanargmax(np.nanmean(t, 0)))]
    rows = np.flatnonzero(full)
    best, best_margin = -np.inf, 0.0
    for margin in MARGINS:
        pick = choose(pred_q[rows], pred_c[rows], models, price=0.0, anchor=anchor, anchor_margin=float(margin))
        realised = float(t[rows, pick].mean())
        if realised > best + 1e-12:
            best, best_margin = realised, float(margin)
    return anchor, best_margin


def fit_price_curve(pred_q: np.ndarray, pred_c: np.ndarray, models: Sequence[str], *,
                    eligible: np.ndarray | None = None, points: int = PRICE_GRID_POINTS,
                    anchor: str | None = None, anchor_margin: float = 0.0) -> tuple[tuple[float, float], ...]:
    """``pred_q``, ``pred_c``: predicted quality and cost, arrays (n, m), of reference prompts
    (the training prompts) -> ``(mean predicted quality, price)`` pairs, prices rising from 0,
    qualities not rising; equal-quality neighbours are merged (the lowest price kept)."""
    q, c = np.asarray(pred_q, float), np.asarray(pred_c, float)
    if q.ndim != 2 or q.shape != c.shape or len(q) == 0:
        raise ValueError(f"need matching (n, m) quality and cost arrays, got {q.shape} and {c.shape}")
    spread_q = float(np.ptp(q, axis=1).max())
    pos = c[c > 0]
    if spread_q <= 0 or pos.size == 0:
        return ((float(q.max(1).mean()), 0.0),)
    # from prices where a cheap model's tiniest cost gap outweighs any quality gap, down to ~0
    hi = 10 * spread_q / float(np.quantile(pos, 0.01))
    lo = 1e-3 * spread_q / float(pos.max())
    prices = np.concatenate([[0.0], np.geomspace(lo, hi, points - 1)])
    rows = np.arange(len(q))
    curve: list[tuple[float, float]] = []
    for lam in prices:
        pick = choose(q, c, models, price=float(lam), eligible=eligible, anchor=anchor, anchor_margin=anchor_margin)
        mean_q = round(float(q[rows, pick].mean()), 6)
        if curve and mean_q >= curve[-1][0]:
            continue  # no quality lost for this price: keep the cheaper price's point only
        curve.append((mean_q, float(lam)))
    return tuple(curve)
