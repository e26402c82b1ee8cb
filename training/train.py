"""``router train``: fit a router from labelled prompts (and, later, outcomes) and save it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.catalog import ModelCatalog
from router.classifier import featurize
from router.config import default_cache_path
from router.embeddings import CachedEmbedder, make_embedder
from router.routing import Router

from .datasets import SHARED_DATA, default_overrides, default_task_files, load_labelled
from .tasks import fit_task_classifier

__all__ = ["TrainConfig", "TrainResult", "train_router", "DEFAULT_EMBEDDER_SPEC"]

#: MiniLM (English) next to multilingual USE: best leave-source-out accuracy (BENCHMARKS.md).
DEFAULT_EMBEDDER_SPEC = "minilm+use"


@dataclass
class TrainConfig:
    out: Path | None = None
    task_files: Sequence[Path] | None = None  # None: data/prompts + ../shared/data when present
    use_shared: bool = True
    embedder: str = DEFAULT_EMBEDDER_SPEC
    head: str = "logreg"
    head_params: dict[str, Any] = field(default_factory=lambda: {"C": 1.0})
    weight_power: float = 0.75
    threshold: float | None = None  # None: calibrate by leave-source-out
    cache: Path | None = None  # None: the default cache; Path("") disables
    catalog: Path | None = None
    context_turns: int = 2


@dataclass
class TrainResult:
    router: Router
    path: Path | None
    data_files: list[dict]
    class_counts: dict[str, int]
    seconds: dict[str, float]
    threshold: float


def train_router(cfg: TrainConfig, progress: Callable[[str], None] | None = None) -> TrainResult:
    say = progress or (lambda s: None)
    t_all = time.perf_counter()
    files = list(cfg.task_files) if cfg.task_files else default_task_files(SHARED_DATA if cfg.use_shared else None)
    ds = load_labelled(files, overrides=default_overrides())
    say(f"data: {ds.summary()}")
    catalog = ModelCatalog.load(cfg.catalog)
    embedder = make_embedder(cfg.embedder)
    cache = default_cache_path() if cfg.cache is None else cfg.cache
    body = CachedEmbedder(embedder, cache) if str(cache) else embedder
    t = time.perf_counter()
    say(f"embedding {len(ds)} prompts with {embedder.name} (cache: {cache or 'off'}) ...")
    X = featurize(body, ds.prompts, show_progress=progress is not None)
    t_embed = time.perf_counter() - t
    say(f"embedded in {t_embed:.1f}s")
    t = time.perf_counter()
    clf = fit_task_classifier(ds, embedder, head=cfg.head, head_params=cfg.head_params, threshold=cfg.threshold,
                              weight_power=cfg.weight_power, X=X, progress=progress)
    clf.metadata["data_files"] = ds.files
    t_fit = time.perf_counter() - t
    router = Router(catalog, classifier=clf, context_turns=cfg.context_turns)
    path = None
    if cfg.out is not None:
        path = router.save(cfg.out)
        say(f"saved router to {path}")
    return TrainResult(router=router, path=path, data_files=ds.files, class_counts=ds.class_counts(),
                       seconds={"embed": round(t_embed, 1), "fit": round(t_fit, 1),
                                "total": round(time.perf_counter() - t_all, 1)},
                       threshold=clf.threshold)
