"""Save and load a router folder: ``router.json`` (config, catalog, versions) + component files.

This module deals in :class:`RouterParts` (catalog, policy, collaborators), never in the
:class:`~router.routing.Router` itself: ``Router.save``/``Router.load`` convert, so the
dependency runs one way (routing -> persistence).

A folder is written to a temporary sibling and renamed into place, so a failed save leaves
nothing half-written; ``router.json`` records the SHA-256 of every other file (the manifest,
:mod:`router.persistence.checks`). Loading checks the format version, the versions of the
libraries that pickled any component, each field's type, and the manifest before any pickle is
read, and raises :class:`ArtifactError` naming the file and field it cannot read.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from importlib.metadata import PackageNotFoundError, version

from ..catalog.model_catalog import ModelCatalog
from ..errors import ArtifactError, CatalogError
from ..policy import PolicyConfig
from ..predictors.answer_scorer import load_answer_scorer
from ..predictors.learned import LearnedQualityModel, load_cost_model, load_quality_model
from ..predictors.priors import CatalogCostModel, CostModel, PriorQualityModel, QualityModel
from ..tasks.base import TaskClassifier
from ..tasks.classifier import LearnedTaskClassifier, load_classifier
from ..tasks.taxonomy import RegexTaskClassifier
from .checks import MANIFEST_KEY, build_manifest, count, field, output_tokens, verify_manifest
from .registry import download_router

__all__ = ["FORMAT_VERSION", "CONFIG_NAME", "RouterParts", "save_router", "load_router", "library_versions",
           "check_destination", "staging_folder"]

FORMAT_VERSION = 1
CONFIG_NAME = "router.json"


@dataclass(frozen=True)
class RouterParts:
    """What a router folder holds: everything a :class:`~router.routing.Router` is built from."""

    catalog: ModelCatalog
    classifier: TaskClassifier
    quality_model: QualityModel
    cost_model: CostModel
    policy: PolicyConfig
    context_turns: int = 0
    answer_scorer: Any = None  # optional: router.predictors.answer_scorer.AnswerScorer


@runtime_checkable
class _Configured(Protocol):
    """A component described by its settings alone (the regex, the catalog priors)."""

    def to_config(self) -> dict[str, Any]: ...


@runtime_checkable
class _Stateful(Protocol):
    """A component with fitted state: writes its files into ``folder``, returns its config."""

    def save_state(self, folder: Path) -> dict[str, Any]: ...


# (role, type) -> loader ``f(config, folder, catalog) -> component``. The learned loaders
# import their heavy libraries (joblib, scikit-learn, the embedder's) only when called.
_Loader = Callable[[dict[str, Any], Path, ModelCatalog], Any]
_LOADERS: dict[tuple[str, str], _Loader] = {
    ("classifier", "regex"): lambda cfg, folder, catalog: RegexTaskClassifier(),
    ("quality", "prior"): lambda cfg, folder, catalog: PriorQualityModel(catalog),
    ("cost", "catalog"): lambda cfg, folder, catalog: CatalogCostModel(catalog, output_tokens(cfg, f"{folder}")),
    ("classifier", "learned"): load_classifier,
    ("quality", "learned"): load_quality_model,
    ("cost", "learned"): load_cost_model,
    ("answer_scorer", "learned"): load_answer_scorer,
}
# Components a router folder may lack (absent: the router runs without them).
_OPTIONAL_ROLES = ("answer_scorer",)
# Libraries whose pickles a component may hold: their major.minor must match to load.
_PICKLE_LIBS = ("scikit-learn", "numpy", "joblib")


def library_versions() -> dict[str, str]:
    """The versions of Python and the libraries a saved router depends on (installed now)."""
    return dict(_installed_versions())


@functools.cache  # reading package metadata costs ~5 ms a library; it does not change in a process
def _installed_versions() -> tuple[tuple[str, str], ...]:
    out = [("python", platform.python_version())]
    for dist in ("learned-llm-router", "scikit-learn", "numpy", "joblib", "sentence-transformers", "torch"):
        try:
            out.append((dist, version(dist)))
        except PackageNotFoundError:
            pass
    return tuple(out)


def _component_config(component: object, folder: Path, role: str) -> dict[str, Any]:
    if isinstance(component, _Stateful):
        return dict(component.save_state(folder / role))
    if isinstance(component, _Configured):
        return dict(component.to_config())
    raise ArtifactError(f"{role} {type(component).__name__} cannot be saved (no to_config/save_state)")


def check_destination(path: str | Path) -> Path:
    """Where a router will be saved, checked before any work: ``path`` is absent, an empty folder
    or a router folder (replaced), and its parent is (or can be made) a writable folder;
    :class:`ArtifactError` naming the problem otherwise. Creates the missing parent folders."""
    dest = Path(path)
    if dest.exists() or dest.is_symlink():
        if not dest.is_dir():
            raise ArtifactError(f"{dest} exists and is not a folder; refusing to overwrite it with a router")
        if not (dest / CONFIG_NAME).exists() and any(dest.iterdir()):
            raise ArtifactError(f"{dest} exists and is not a router folder; refusing to overwrite it")
    parent = dest.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(f"cannot create the folder {parent} for {dest}: {exc.strerror or exc}") from None
    if not parent.is_dir():
        raise ArtifactError(f"{parent} is not a folder; cannot save a router to {dest}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ArtifactError(f"{parent} is not writable; cannot save a router to {dest}")
    return dest


def staging_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` (named ``prefix`` + random) to build a folder in before
    it is renamed into place, with the mode a plain ``mkdir`` gives (mkdtemp makes it 0700, which
    the renamed folder would keep)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def save_router(router: RouterParts, path: str | Path) -> Path:
    """Write ``router``'s parts to the folder ``path``, replacing an existing router folder there."""
    dest = check_destination(path)
    tmp = staging_folder(dest.parent, f".{dest.name}.")
    try:
        config = {
            "format_version": FORMAT_VERSION,
            "created_with": library_versions(),
            "catalog": router.catalog.to_dict(),
            "catalog_fingerprint": router.catalog.fingerprint(),
            "policy": router.policy.to_dict(),
            "context_turns": router.context_turns,
            "classifier": _component_config(router.classifier, tmp, "classifier"),
            "quality": _component_config(router.quality_model, tmp, "quality"),
            "cost": _component_config(router.cost_model, tmp, "cost"),
        }
        if router.answer_scorer is not None:
            config["answer_scorer"] = _component_config(router.answer_scorer, tmp, "answer_scorer")
        config[MANIFEST_KEY] = build_manifest(tmp)
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2), encoding="utf-8")
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _resolve_loader(role: str, kind: str, folder: Path) -> _Loader:
    target = _LOADERS.get((role, kind))
    if target is None:
        known = sorted(k for r, k in _LOADERS if r == role)
        raise ArtifactError(f"{folder / CONFIG_NAME}: unknown {role} type {kind!r}; this version knows {known}")
    return target


def _check_versions(created: Mapping[str, str], folder: Path, pickled: bool) -> None:
    if not pickled:
        return
    now = library_versions()
    for lib in _PICKLE_LIBS:
        then, here = created.get(lib), now.get(lib)
        if then and here and then.split(".")[:2] != here.split(".")[:2]:
            raise ArtifactError(
                f"{folder} was saved with {lib} {then} but {here} is installed; its pickled heads "
                f"cannot be read safely. Install {lib}=={then} or retrain the router."
            )


def _check_views(parts: Mapping[str, Any], cfg_path: Path) -> None:
    """The learned quality heads read the classifier's features less its views: same count."""
    quality, classifier = parts["quality"], parts["classifier"]
    if isinstance(quality, LearnedQualityModel) and isinstance(classifier, LearnedTaskClassifier):
        if quality.text_views != len(classifier.layout.views):
            raise ArtifactError(f"{cfg_path}: quality text_views {quality.text_views} differs from the "
                                f"classifier's {len(classifier.layout.views)} text views")


def load_router(path_or_uri: str | Path) -> RouterParts:
    """The parts of the router saved at ``path_or_uri`` (a folder, or a ``models:/``/``runs:/`` URI)."""
    text = str(path_or_uri)
    if text.startswith(("models:/", "runs:/")):
        folder = download_router(text)
    else:
        folder = Path(path_or_uri)
    cfg_path = folder / CONFIG_NAME
    if not folder.is_dir():
        raise ArtifactError(f"no router folder at {folder}")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{folder} is not a router folder: {CONFIG_NAME} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{cfg_path} is corrupt: {exc}") from None
    if not isinstance(config, dict):
        raise ArtifactError(f"{cfg_path} is corrupt: expected a JSON object")
    fmt = config.get("format_version")
    if not isinstance(fmt, int) or fmt < 1:
        raise ArtifactError(f"{cfg_path}: missing or invalid format_version {fmt!r}")
    if fmt > FORMAT_VERSION:
        raise ArtifactError(
            f"{cfg_path} has format_version {fmt}, newer than this library reads ({FORMAT_VERSION}); "
            "upgrade the router package"
        )
    for key in ("catalog", "policy", "classifier", "quality", "cost"):
        if key not in config:
            raise ArtifactError(f"{cfg_path} is corrupt: missing {key!r}")
    try:
        catalog = ModelCatalog.from_dict(config["catalog"], source=f"{cfg_path}#catalog")
    except CatalogError as exc:
        raise ArtifactError(f"{cfg_path}: embedded catalog is invalid: {exc}") from None
    roles = ("classifier", "quality", "cost") + tuple(r for r in _OPTIONAL_ROLES if config.get(r) is not None)
    for role in roles:
        if not isinstance(config[role], dict) or not isinstance(config[role].get("type"), str):
            raise ArtifactError(f"{cfg_path}: {role} entry must be an object with a 'type' name")
    created = field(config, "created_with", dict, str(cfg_path), {})
    if not all(isinstance(v, str) for v in created.values()):
        raise ArtifactError(f"{cfg_path}: 'created_with' must map library names to version strings")
    pickled = any(bool(config[r].get("files")) for r in roles)
    _check_versions(created, folder, pickled)
    context_turns = count(field(config, "context_turns", int, str(cfg_path), 0), f"{cfg_path}: 'context_turns'")
    policy_cfg = field(config, "policy", dict, str(cfg_path))
    try:
        policy = PolicyConfig.from_dict(policy_cfg)
    except Exception as exc:  # an edited policy: ConfigError, or the TypeError of a wrong type
        raise ArtifactError(f"{cfg_path}: invalid policy ({type(exc).__name__}: {exc})") from None
    verify_manifest(folder, config.get(MANIFEST_KEY), str(cfg_path))  # before any pickle is read
    parts = {}
    for role in roles:
        spec = config[role]
        loader = _resolve_loader(role, spec["type"], folder)
        try:
            parts[role] = loader(spec, folder / role, catalog)
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(f"{folder / role}: cannot load {role} ({type(exc).__name__}: {exc})") from None
    _check_views(parts, cfg_path)
    return RouterParts(
        catalog,
        classifier=parts["classifier"],
        quality_model=parts["quality"],
        cost_model=parts["cost"],
        answer_scorer=parts.get("answer_scorer"),
        policy=policy,
        context_turns=context_turns,
    )
