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

__all__ = ["fit_price_curve", "PRICE_GRID_POINTS"]

PRICE_GRID_POINTS = 60


def fit_price_curve(pred_q: np.ndarray, pred_c: np.ndarray, models: Sequence[str], *,
                    eligible: np.ndarray | None = None, points: int = PRICE_GRID_POINTS) -> tuple[tuple[float, float], ...]:
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
        pick = choose(q, c, models, price=float(lam), eligible=eligible)
        mean_q = round(float(q[rows, pick].mean()), 6)
        if curve and mean_q >= curve[-1][0]:
            continue  # no quality lost for this price: keep the cheaper price's point only
        curve.append((mean_q, float(lam)))
    return tuple(curve)
