"""The gateway's side of the learning loop: the routing metadata's learning fields as response
headers, and ``POST /v1/feedback`` bodies validated by the usage log's one rule
(:func:`~router.serving.usage.record.client_feedback`) name their field.

Headers (when known): ``x-router-version`` (the router version that decided),
``x-router-routed-model`` and ``x-router-propensity`` (the model routed to first and the
probability the logging policy picked it), ``x-router-explored: true`` (the exploration draw
fired) and ``x-router-cascade`` (the cascade's steps, compact JSON:
``[{"step", "action", "models", "reason", "scores"}]``).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["learning_headers"]


def learning_headers(meta: dict[str, Any]) -> dict[str, str]:
    """The ``x-router-*`` headers of the routing metadata's learning fields."""
    h: dict[str, str] = {}
    if meta.get("router_version"):
        h["x-router-version"] = str(meta["router_version"])
    if meta.get("routed_model"):
        h["x-router-routed-model"] = str(meta["routed_model"])
    if meta.get("propensity") is not None:
        h["x-router-propensity"] = f"{float(meta['propensity']):.6g}"
    if meta.get("explored"):
        h["x-router-explored"] = "true"
    if meta.get("cascade"):
        h["x-router-cascade"] = json.dumps(meta["cascade"], separators=(",", ":"), ensure_ascii=True)
    return h
