"""Synthetic data for the learning-loop tests: a three-model catalog and outcomes with per-prompt
signal (the cheap model is right on arithmetic and wrong on history; the dear one is right on
both; the middle one is in between), as outcome JSONL rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CATALOG = {
    "defaults": {"provider": {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "KEY"}},
    "models": {
        "cheap": {"pricing": {"input_per_1m": 0.1, "output_per_1m": 0.2}, "context_window": 16000,
                  "max_output_tokens": 2000, "quality_priors": {"default": 0.6}},
        "mid": {"pricing": {"input_per_1m": 1.0, "output_per_1m": 2.0}, "context_window": 16000,
                "max_output_tokens": 2000, "quality_priors": {"default": 0.7}},
        "dear": {"pricing": {"input_per_1m": 10.0, "output_per_1m": 30.0}, "context_window": 16000,
                 "max_output_tokens": 2000, "quality_priors": {"default": 0.9}},
    },
}
COST = {"cheap": 0.0001, "mid": 0.001, "dear": 0.01}
_PEOPLE = ["Napoleon", "Caesar", "Cleopatra", "Lincoln", "Gandhi", "Elizabeth I", "Charlemagne", "Bismarck"]
_EVENTS = ["rise to power", "military campaigns", "downfall", "legacy", "early life", "reforms"]


def prompt(kind: str, i: int, rng: np.random.Generator) -> str:
    if kind == "arith":
        a, b = rng.integers(10, 999, 2)
        op = ["plus", "times", "minus"][i % 3]
        return f"Compute {a} {op} {b} and give only the number."
    return (f"Explain the historical significance of {_PEOPLE[i % len(_PEOPLE)]}'s "
            f"{_EVENTS[(i // len(_PEOPLE)) % len(_EVENTS)]} in a short essay (variant {i}).")


def true_quality(kind: str, model: str) -> float:
    return {("arith", "cheap"): 0.95, ("arith", "mid"): 0.9, ("arith", "dear"): 0.97,
            ("hist", "cheap"): 0.05, ("hist", "mid"): 0.5, ("hist", "dear"): 0.9}[(kind, model)]


def outcome_rows(n: int, seed: int = 0, prefix: str = "p") -> list[dict]:
    """Full-information rows: every model scored on each of ``n`` prompts (half of each kind)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        kind = "arith" if i % 2 == 0 else "hist"
        text = prompt(kind, i, rng)
        for m in CATALOG["models"]:
            score = float(rng.random() < true_quality(kind, m))
            rows.append({"prompt_id": f"{prefix}{i}", "prompt": text, "model": m, "score": score,
                         "cost": COST[m] * (1 + 0.1 * rng.random()), "source": "synthetic"})
    return rows


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
