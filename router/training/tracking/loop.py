"""Register a retrained router (``router retrain`` with MLflow): a new version as challenger,
moved to champion when the off-policy gate promotes it. Gateways watching the champion alias
(:mod:`router.serving.reload`) pick it up without a restart."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...routing import Router
from .runs import MlflowSettings, alias_version_of, push_history, connect, gate_metrics, log_training

__all__ = ["register_retrained"]


def _metrics(report: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    gate = report.get("gate", {})
    for side in ("base", "candidate"):
        for kind in ("quality", "cost"):
            for est, v in gate.get(side, {}).get(kind, {}).items():
                for k in ("value", "low", "high", "ess"):
                    x = v.get(k)
                    if isinstance(x, (int, float)) and x == x and abs(x) != float("inf"):
                        out[f"ope_{side}_{kind}_{est}_{k}"] = float(x)
    return out


def existing_gate(settings: MlflowSettings, candidate: Router, base: Router) -> tuple[list[str], dict[str, Any]]:
    """The project's gate metrics (``mlflow.yaml``: task accuracy, routing AIQ on the gate data)
    for both routers -> (failures, comparison); a metric worse by more than the tolerance fails."""
    new, old = gate_metrics(candidate, settings), gate_metrics(base, settings)
    failures, comparison = [], {}
    for metric in settings.gate_metrics:
        a, b = new.get(metric), old.get(metric)
        comparison[metric] = {"candidate": a, "base": b}
        if a is not None and b is not None and a < b - settings.tolerance:
            failures.append(f"{metric} {a:.4f} < base {b:.4f} - {settings.tolerance}")
    return failures, comparison


def register_retrained(settings: MlflowSettings, candidate: Router, report: dict[str, Any], promote: bool,
                       base: Router | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the existing gate metrics (when ``base`` is given; a failure refuses), log the
    candidate as a run, register it as @challenger; when still promoted, move @champion.
    ``report["gate"]`` gains the comparison and any failures."""
    say = progress or (lambda s: None)
    if base is not None:
        say("existing gate metrics on the gate data ...")
        failures, comparison = existing_gate(settings, candidate, base)
        report["gate"]["existing_metrics"] = comparison
        if failures:
            promote = False
            report["gate"]["verdict"] = "refuse"
            report["gate"]["reasons"] = list(report["gate"].get("reasons", [])) + failures
    params = {"retrained_from": report.get("base"), "training_rows": report.get("training_rows"),
              "feedback_by_origin": report.get("rows", {}).get("by_origin", {}),
              "gate_verdict": report.get("gate", {}).get("verdict")}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "retrain_report.json").write_text(json.dumps(report, indent=2, default=float))
        reg = log_training(settings, candidate, params=params, data_files=[], metrics=_metrics(report),
                           artifacts_dir=Path(tmp), progress=say)
    client = connect(settings)
    name = settings.registered_model
    champion = alias_version_of(client, name, settings.champion)
    if promote and champion != reg.version:
        client.set_registered_model_alias(name, settings.champion, reg.version)
        push_history(client, name, reg.version)
        say(f"gate promoted: @{settings.champion} -> v{reg.version} (was v{champion})")
        champion = reg.version
    elif not promote:
        say(f"gate refused: v{reg.version} stays @{settings.challenger}; @{settings.champion} is v{champion}")
    return {"version": reg.version, "model_uri": reg.model_uri, "champion": champion, "run_id": reg.run_id,
            "promoted": promote}
