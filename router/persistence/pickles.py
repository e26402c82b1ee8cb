"""Reading and writing the heads of a router folder.

Linear heads (``LogisticRegression``, ``Ridge``, ``LinearRegression``) are stored as arrays
(``.npz``, :class:`router.predictors.linear.LinearHead`): reading one runs no code and imports no
scikit-learn. Other estimators are pickled (joblib); unpickling runs code from the file, so a
router folder is code to be trusted (README). The folder's manifest is checked before any head
is read (:mod:`router.persistence.checks`), and what comes out is checked to be the head its
role expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ArtifactError
from ..predictors.linear import LinearHead

__all__ = ["dump_head", "load_head", "dump_pickle", "load_pickle", "HEAD_KINDS"]

#: What a head must be: a fitted scikit-learn estimator with these methods / attributes.
HEAD_KINDS = {
    "classifier": ("predict_proba", "classes_"),
    "regressor": ("predict",),
}


def _require_file(path: Path, where: str) -> None:
    if not path.is_file():
        raise ArtifactError(f"{path} is missing" + (f" (named by {where})" if where else ""))


def dump_pickle(obj: Any, path: Path) -> str:
    """Write ``obj`` to ``path`` (creating the folder); returns the file name."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(obj, path)
    return path.name


def load_pickle(path: Path, expect: str, where: str = "") -> Any:
    """Read a pickled head that must be a scikit-learn estimator of kind ``expect`` (a key of
    :data:`HEAD_KINDS`); :class:`ArtifactError` naming the file (and ``where``, the field that
    names it) when missing, corrupt or not one."""
    import joblib
    from sklearn.base import BaseEstimator

    _require_file(path, where)
    try:
        obj = joblib.load(path)
    except Exception as exc:
        raise ArtifactError(f"{path} is corrupt or unreadable ({type(exc).__name__}: {exc})") from None
    needs = HEAD_KINDS[expect]
    if not isinstance(obj, BaseEstimator) or not all(hasattr(obj, a) for a in needs):
        raise ArtifactError(f"{path} holds a {type(obj).__module__}.{type(obj).__name__}, not a fitted "
                            f"scikit-learn {expect} (with {', '.join(needs)})")
    return obj


def dump_head(obj: Any, path: Path) -> str:
    """Write a fitted head next to ``path``'s name: ``<stem>.npz`` for a linear head, else the
    pickle ``path``; returns the file name written."""
    linear = LinearHead.from_estimator(obj)
    if linear is None:
        return dump_pickle(obj, path)
    out = path.with_suffix(".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    linear.save(out)
    return out.name


def load_head(path: Path, expect: str, where: str = "") -> Any:
    """Read a head :func:`dump_head` wrote (by the file's suffix) that must be of kind ``expect``;
    :class:`ArtifactError` naming the file when missing, corrupt or of the wrong kind."""
    if path.suffix != ".npz":
        return load_pickle(path, expect, where)
    _require_file(path, where)
    try:
        head = LinearHead.load(path)
    except Exception as exc:
        raise ArtifactError(f"{path} is corrupt or not a linear head ({type(exc).__name__}: {exc})") from None
    if head.kind != expect:
        raise ArtifactError(f"{path} holds a linear {head.kind}, not a {expect}")
    return head
