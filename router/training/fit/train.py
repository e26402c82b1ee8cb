"""``router train``: fit a router from labelled prompts (and, later, outcomes) and save it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...catalog.model_catalog import ModelCatalog
from ...tasks.classifier import featurize
from ...embedders import make_embedder, with_cache
from ...embedders.registry import GATED_OTHER_SPEC, GATED_SPEC
from ...config import default_cache_path
from ...progress import ProgressLike, as_progress
from ...routing import Router
from ..embedding import featurize_with_progress

from ..data.datasets import shared_data_dir, default_overrides, default_task_files, load_labelled
from .tasks import fit_task_classifier, training_features
from ...errors import DataError
from ...predictors.learned import cost_features, quality_features
from ...policy import PolicyConfig
from ...text.request import parse_request
from ..data.outcomes import read_outcomes
from .quality import build_cost_model, build_quality_model
from .calibrate import fit_platt, out_of_fold_quality
from .tiers import fit_anchor, fit_price_curve
from ..evaluate.routing import split_outcomes

__all__ = ["TrainConfig", "TrainResult", "train_router", "DEFAULT_EMBEDDER_SPEC", "TASK_ONLY_EMBEDDER_SPEC",
           "default_embedder_spec"]

#: MiniLM (English, int8 ONNX Runtime) next to multilingual USE, each prompt's first and last
#: sentence embedded next to the whole text: the frozen multilingual pipeline. The default for
#: routers with learned quality and cost heads (they read the same features, and routed
#: RouterBench better on these than on the gated ones: BENCHMARKS.md, "Language-gated encoder").
#: Its MiniLM keeps reading the first 256 word pieces: bounded at 128 (as the gated other side)
#: RouterBench's pre-call and cascade AIQ fell by 0.001-0.002 and GPT-4 parity was lost by a hair
#: (BENCHMARKS.md, "A bounded other side").
DEFAULT_EMBEDDER_SPEC = "minilm-onnx+use@views"
#: The default for a router without outcome models (catalog priors per task): English prompts to
#: the fine-tuned task encoder, the others to the frozen pipeline; more accurate on held-out
#: collections and about twice as fast on real prompt lengths (BENCHMARKS.md).
TASK_ONLY_EMBEDDER_SPEC = GATED_SPEC


def _cache_label(cache: Path | str | None) -> str:
    return str(default_cache_path()) if cache is None else str(cache)


def default_embedder_spec(with_outcomes: bool) -> str:
    """The embedder ``router train`` uses when none is named: :data:`DEFAULT_EMBEDDER_SPEC` for a
    router with outcome models, else :data:`TASK_ONLY_EMBEDDER_SPEC`."""
    return DEFAULT_EMBEDDER_SPEC if with_outcomes else TASK_ONLY_EMBEDDER_SPEC


@dataclass
class TrainConfig:
    out: Path | None = None
    task_files: Sequence[Path] | None = None  # None: data/prompts + ../shared/data when present
    use_shared: bool = True
    embedder: str | dict[str, Any] | None = None  # None: default_embedder_spec(bool(outcomes))
    head: str = "logreg"
    head_params: dict[str, Any] = field(default_factory=lambda: {"C": 1.0})
    weight_power: float = 0.75
    threshold: float | None = None  # None: calibrate by leave-source-out
    cache: Path | str | None = None  # None: the default cache file; "" disables
    catalog: Path | None = None
    context_turns: int = 2
    outcomes: Sequence[Path] = ()  # outcome files for the quality and cost models
    validation_percent: int = 20  # outcome prompts held out for `router eval` (by prompt-id hash)
    quality_head: str = "logreg"
    quality_C: float = 0.1
    shrinkage: float = 50.0
    answer_scorer: bool = True  # fit the answer scorer when the outcome files carry answers
    price_curve: bool = True  # tiers / min_quality met on average at least cost (router.policy)
    calibration_folds: int = 5  # out-of-fold Platt calibration of the quality heads (<= 1: none)
    #: fine-tune the English task encoder on this run's labelled data into this (new or empty)
    #: folder first, and read English prompts with it (``task-minilm:DIR|`` + the gated other side)
    finetune_encoder: Path | None = None
    finetune_params: Any = None  # a router.training.fit.encoder.FinetuneParams (None: the recipe's defaults)

    def __post_init__(self) -> None:
        """With ``finetune_encoder``: no ``embedder`` as well, a new or empty folder (checked before
        any training), ``finetune_params`` defaulting to the recipe's."""
        if self.finetune_encoder is None:
            return
        if self.embedder is not None:
            raise DataError("finetune_encoder builds the English side of the gated embedder: "
                            "do not name an embedder as well")
        check_encoder_destination(Path(self.finetune_encoder))
        if self.finetune_params is None:
            from .encoder import FinetuneParams

            self.finetune_params = FinetuneParams()

    def finetune_recipe(self) -> dict[str, Any]:
        """The knobs the English encoder is fine-tuned with."""
        return dict(vars(self.finetune_params))

    def embedder_spec(self) -> str | dict[str, Any]:
        """``embedder``, the gated embedder over ``finetune_encoder``, or the default for this
        router (:func:`default_embedder_spec`)."""
        if self.finetune_encoder is not None:
            return f"task-minilm:{Path(self.finetune_encoder).resolve()}|{GATED_OTHER_SPEC}"
        return self.embedder if self.embedder is not None else default_embedder_spec(bool(self.outcomes))


@dataclass
class TrainResult:
    router: Router
    path: Path | None
    data_files: list[dict]
    class_counts: dict[str, int]
    seconds: dict[str, float]
    threshold: float


def _platt_per_model(train, P, qm) -> dict[str, tuple[float, float]]:
    """Per model with a head: Platt scaling of its out-of-fold predictions ``P`` (prompts x
    catalog models) against its training scores."""
    col = {m: j for j, m in enumerate(qm.catalog.names)}
    out = {}
    for m, sub in train.groupby("model"):
        if m in qm.heads and m in col:
            out[m] = fit_platt(P[sub.prompt_index.to_numpy(int), col[m]], sub.score.to_numpy(float))
    return out


def _fit_outcome_models(cfg: TrainConfig, catalog: ModelCatalog, clf, body, say):
    df = read_outcomes(cfg.outcomes)
    unknown = sorted(set(df.model) - set(catalog.names))
    if unknown:
        say(f"warning: outcome models not in the catalog are ignored: {unknown} (pass --catalog with them)")
    df = df[df.model.isin(catalog.names)]
    if df.empty:
        raise DataError(f"no outcome rows for any model of the catalog {catalog.source}")
    train, val = split_outcomes(df, cfg.validation_percent)
    say(f"outcomes: {len(df)} rows, {df.prompt_id.nunique()} prompts; training on {len(train)}, "
        f"{len(val)} held out for evaluation")
    uniq = train.drop_duplicates("prompt_id")[["prompt_id", "prompt"]].reset_index(drop=True)
    train = train.assign(prompt_index=train.prompt_id.map({p: i for i, p in enumerate(uniq.prompt_id)}))
    # embed exactly what the router reads when serving (few-shot examples dropped, ...)
    reader = Router(catalog, classifier=clf, context_turns=cfg.context_turns)
    texts = [reader.classifier_text(p) for p in uniq.prompt]
    X = featurize_with_progress(body, texts, say, f"embedding {len(uniq)} outcome prompts")
    tasks = clf.predict_features(X, texts)
    views = len(clf.layout.views)  # the quality heads read the whole text only
    Z = quality_features(X, tasks, views)
    tokens = [parse_request(p).prompt_tokens for p in uniq.prompt]  # the request as sent is billed
    C = cost_features(tokens, X, tasks)
    say(f"fitting quality heads ({cfg.quality_head}) and cost heads ...")

    def build(rows, progress=None):
        return build_quality_model(catalog, rows, Z, head=cfg.quality_head, C=cfg.quality_C,
                                   shrinkage=cfg.shrinkage, text_views=views, progress=progress)

    qm = build(train, say)
    cm = build_cost_model(catalog, train, C)
    costs = cm.predict_cost(tokens, tasks, catalog.names, features=X)
    if cfg.calibration_folds > 1:
        say(f"calibrating: quality heads refitted on {cfg.calibration_folds} folds of the training prompts ...")
        P = out_of_fold_quality(build, train, uniq.prompt_id.tolist(), texts, tasks, X, catalog.names,
                                cfg.calibration_folds)
        qm.calibration = _platt_per_model(train, P, qm)
        P = qm.calibrate(P, catalog.names)
    else:
        P = qm.predict_quality(texts, tasks, catalog.names, features=X)
    qm.metadata.update({"validation_percent": cfg.validation_percent,
                        "outcome_files": [str(p) for p in cfg.outcomes]})
    say(f"quality heads for {len(qm.heads)} models, cost heads for {len(cm.heads)}")
    anchor, margin = None, 0.0
    if cfg.calibration_folds > 1:  # the margin needs out-of-fold predictions
        true_q = (train.pivot_table(index="prompt_index", columns="model", values="score", aggfunc="mean")
                  .reindex(index=range(len(uniq)), columns=list(catalog.names)).to_numpy(float))
        anchor, margin = fit_anchor(P, true_q, costs, catalog.names)
        say(f"anchor {anchor}: leaving it takes {margin:.2f} more predicted value")
    curve = fit_price_curve(P, costs, catalog.names, anchor=anchor, anchor_margin=margin)
    say(f"price curve: {len(curve)} points, mean predicted quality {curve[-1][0]:.3f}-{curve[0][0]:.3f}")
    scorer = None
    if cfg.answer_scorer:
        from .scorer import fit_scorer_on_outcomes

        scorer = fit_scorer_on_outcomes(train, P, catalog.names, progress=say)
    return qm, cm, len(train), scorer, PolicyConfig(price_curve=curve, anchor=anchor, anchor_margin=margin)


def train_router(cfg: TrainConfig, progress: ProgressLike = None) -> TrainResult:
    """Train (and save, when ``cfg.out`` is set) a router. ``progress``: a callable taking
    message lines, or a :class:`router.progress.Progress` (bars / throttled lines)."""
    say = as_progress(progress)
    t_all = time.perf_counter()
    files = list(cfg.task_files) if cfg.task_files else default_task_files(shared_data_dir() if cfg.use_shared else None, required=True)
    ds = load_labelled(files, overrides=default_overrides())
    say(f"data: {ds.summary()}")
    catalog = ModelCatalog.load(cfg.catalog)
    t_finetune = 0.0
    if cfg.finetune_encoder is not None:
        t = time.perf_counter()
        build_encoder_folder(Path(cfg.finetune_encoder), ds, cfg.finetune_params, say)
        t_finetune = time.perf_counter() - t
    embedder = make_embedder(cfg.embedder_spec())
    body = with_cache(embedder, cfg.cache)
    t = time.perf_counter()
    say(f"embedding {len(ds)} prompts with {embedder.name} (cache: {'off' if body is embedder else _cache_label(cfg.cache)})")
    ds_fit, X = training_features(ds, body, say)
    t_embed = time.perf_counter() - t
    say(f"embedded in {t_embed:.1f}s")
    t = time.perf_counter()
    clf = fit_task_classifier(ds_fit, embedder, head=cfg.head, head_params=cfg.head_params, threshold=cfg.threshold,
                              weight_power=cfg.weight_power, X=X, progress=say)
    clf.metadata.update(data_files=ds.files, rows=len(ds), class_counts=ds.class_counts())
    if ds_fit is not ds:
        clf.metadata["gated_english_rows"] = len(ds_fit) - len(ds)
    t_fit = time.perf_counter() - t
    quality_model = cost_model = answer_scorer = None
    outcome_rows = 0
    policy = None
    if cfg.outcomes:
        t = time.perf_counter()
        quality_model, cost_model, outcome_rows, answer_scorer, fitted = _fit_outcome_models(cfg, catalog, clf, body, say)
        policy = fitted if cfg.price_curve else None
        t_fit += time.perf_counter() - t
    router = Router(catalog, classifier=clf, quality_model=quality_model, cost_model=cost_model,
                    context_turns=cfg.context_turns, answer_scorer=answer_scorer, policy=policy)
    path = None
    if cfg.out is not None:
        path = router.save(cfg.out)
        say(f"saved router to {path}")
    return TrainResult(router=router, path=path, data_files=ds.files, class_counts=ds.class_counts(),
                       seconds={"finetune": round(t_finetune, 1), "embed": round(t_embed, 1), "fit": round(t_fit, 1),
                                "total": round(time.perf_counter() - t_all, 1)},
                       threshold=clf.threshold)


def check_encoder_destination(folder: Path) -> None:
    """:class:`DataError` unless ``folder`` can receive a new encoder: absent, or an empty folder."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DataError(f"{folder}: the encoder folder must be new or empty")


def build_encoder_folder(folder: Path, ds: Any, params: Any, say) -> Path:
    """Fine-tune the task encoder on ``ds`` with ``params`` (a FinetuneParams) and export it into
    ``folder`` (new or empty: :class:`TrainConfig` checks), whole or not at all: it is built in a
    sibling temporary folder and renamed into place at the end."""
    import shutil

    from ...persistence.artifact import staging_folder
    from .encoder import build_task_encoder

    folder.parent.mkdir(parents=True, exist_ok=True)
    say(f"fine-tuning the task encoder on {len(ds)} prompts ({params.epochs} epochs, "
        f"{params.layers or 'all'} layers, {params.max_tokens} word pieces) into {folder} ...")
    tmp = staging_folder(folder.parent, f".{folder.name}-")
    try:
        build_task_encoder(tmp, ds=ds, params=params, progress=say)
        if folder.exists():
            folder.rmdir()  # empty (checked with the config); refuses one filled since
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
