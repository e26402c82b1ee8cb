"""Tiny files for training a RouterBench-style router in tests: a two-model catalog (the
GPT-4 / Mixtral pair) and a 60-prompt, two-task labelled set."""

from __future__ import annotations

import json
from pathlib import Path

RB_MODELS = ("gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat")


def write_rb_catalog(path: Path) -> Path:
    """A JSON catalog of :data:`RB_MODELS` at ``path``; returns the path."""
    path.write_text(json.dumps({"version": 1, "defaults": {"provider": {"base_url": "http://127.0.0.1:1/v1",
                                                                        "api_key_env": "KEY"}}, "models": {
        RB_MODELS[0]: {"pricing": {"input_per_1m": 10, "output_per_1m": 30}, "context_window": 128000,
                       "max_output_tokens": 4096, "quality_priors": {"default": 0.85}},
        RB_MODELS[1]: {"pricing": {"input_per_1m": 0.6, "output_per_1m": 0.6}, "context_window": 32000,
                       "max_output_tokens": 4096, "quality_priors": {"default": 0.7}}}}))
    return path


def write_task_file(path: Path) -> Path:
    """30 maths and 30 chat prompts from two sources at ``path`` (JSONL); returns the path."""
    rows = []
    for i in range(30):
        rows.append({"prompt": f"solve the equation {i}x + 3 = {i + 7}", "task": "math", "source": "a" if i % 2 else "b"})
        rows.append({"prompt": f"hi, how is your day going {i}?", "task": "general", "source": "a" if i % 2 else "b"})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path
