"""Routing metrics on (cost, quality) curves: non-decreasing convex hull, AIQ, APGR, CPT.

Definitions (hand-checked in tests/unit/test_metrics.py):

* ``upper_hull(points)``: the non-decreasing upper convex hull of (cost, quality) points: the
  best quality reachable at each cost by mixing operating points, never falling as cost grows.
* ``aiq(points, lo, hi)``: area under that hull over [lo, hi] divided by (hi - lo). Left of the
  hull's first point the curve is held at its first quality, right of its last at its last.
* ``pgr_curve`` / ``apgr`` / ``cpt`` (RouteLLM, two models): route the top k% prompts by score
  to the strong model; PGR(k) = (q(k) - q_weak) / (q_strong - q_weak); APGR is the mean of
  PGR over k in [0, 1] (trapezoid on a 1% grid); CPT(x) is the smallest share of strong calls
  with PGR >= x.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["upper_hull", "hull_value", "aiq", "cost_to_match", "pgr_curve", "apgr", "cpt",
           "expected_calibration_error"]


def upper_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-decreasing upper convex hull, sorted by cost."""
    pts = sorted(set((float(c), float(q)) for c, q in points))
    if not pts:
        return []
    hull: list[tuple[float, float]] = []
    for p in pts:
        # drop points that are dominated (same or lower quality at higher cost)
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # keep only right turns (concave from above)
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    # cut at the best quality: the curve never falls
    best = max(range(len(hull)), key=lambda i: (hull[i][1], -hull[i][0]))
    hull = hull[: best + 1]
    # a point left of another with >= quality makes the latter's left part flat: handled by
    # the running max in hull_value
    return hull


def hull_value(hull: Sequence[tuple[float, float]], cost: float) -> float:
    """Quality of the hull at ``cost`` (flat outside its range)."""
    xs = np.array([c for c, _ in hull])
    ys = np.maximum.accumulate(np.array([q for _, q in hull]))
    return float(np.interp(cost, xs, ys))


def aiq(points: Sequence[tuple[float, float]], lo: float, hi: float, n: int = 2001) -> float:
    """Average quality of the non-decreasing convex hull over [lo, hi]."""
    if hi <= lo:
        raise ValueError(f"need lo < hi, got [{lo}, {hi}]")
    hull = upper_hull(points)
    grid = np.linspace(lo, hi, n)
    xs = np.array([c for c, _ in hull])
    ys = np.maximum.accumulate(np.array([q for _, q in hull]))
    return float(np.trapezoid(np.interp(grid, xs, ys), grid) / (hi - lo))


def cost_to_match(points: Sequence[tuple[float, float]], quality: float) -> float | None:
    """The lowest cost at which the hull reaches ``quality`` (None if it never does)."""
    hull = upper_hull(points)
    if not hull or max(q for _, q in hull) < quality - 1e-12:
        return None
    prev = None
    for c, q in hull:
        if q >= quality - 1e-12:
            if prev is None or prev[1] >= q:
                return c
            (c0, q0) = prev
            return c0 + (quality - q0) * (c - c0) / (q - q0) if q > q0 else c
        prev = (c, q)
    return None


def pgr_curve(scores: np.ndarray, y_strong: np.ndarray, y_weak: np.ndarray, steps: int = 100):
    """Share of strong calls k (0..1) and PGR(k), routing highest ``scores`` to strong first.

    ``scores``, ``y_strong``, ``y_weak``: arrays (n,)."""
    scores, y_strong, y_weak = (np.asarray(a, float) for a in (scores, y_strong, y_weak))
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    gain = (y_strong - y_weak)[order]
    cum = np.concatenate([[0.0], np.cumsum(gain)])
    q_weak, q_strong = y_weak.mean(), y_strong.mean()
    ks = np.linspace(0, 1, steps + 1)
    counts = np.round(ks * n).astype(int)
    q = q_weak + cum[counts] / n
    denom = q_strong - q_weak
    pgr = (q - q_weak) / denom if abs(denom) > 1e-12 else np.zeros_like(q)
    return ks, pgr


def apgr(scores, y_strong, y_weak, steps: int = 100) -> float:
    ks, pgr = pgr_curve(scores, y_strong, y_weak, steps)
    return float(np.trapezoid(pgr, ks))


def cpt(scores, y_strong, y_weak, target: float, steps: int = 100) -> float | None:
    """Smallest share of calls to the strong model reaching PGR >= target."""
    ks, pgr = pgr_curve(scores, y_strong, y_weak, steps)
    hit = np.flatnonzero(pgr >= target - 1e-12)
    return float(ks[hit[0]]) if len(hit) else None


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE: the sample-weighted mean |mean(p) - mean(y)| over equal-width probability bins.

    ``p``: predicted probabilities, ``y``: outcomes in [0, 1], any matching shapes."""
    p, y = np.asarray(p, float).ravel(), np.asarray(y, float).ravel()
    if len(p) == 0:
        return float("nan")
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / len(p))
