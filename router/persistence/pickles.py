"""Reading and writing the pickled (joblib) heads of a router folder.

Unpickling runs code from the file: a router folder is code to be trusted (README). The
folder's manifest is checked before any head is read (:mod:`router.persistence.checks`), and
what comes out is checked to be the scikit-learn estimator its role expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ArtifactError

__all__ = ["dump_pickle", "load_pickle", "HEAD_KINDS"]

#: What a head must be: a fitted scikit-learn estimator with these methods / attributes.
HEAD_KINDS = {
    "classifier": ("predict_proba", "classes_"),
    "regressor": ("predict",),
}


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

    if not path.is_file():
        raise ArtifactError(f"{path} is missing" + (f" (named by {where})" if where else ""))
    try:
        obj = joblib.load(path)
    except Exception as exc:
        raise ArtifactError(f"{path} is corrupt or unreadable ({type(exc).__name__}: {exc})") from None
    needs = HEAD_KINDS[expect]
    if not isinstance(obj, BaseEstimator) or not all(hasattr(obj, a) for a in needs):
        raise ArtifactError(f"{path} holds a {type(obj).__module__}.{type(obj).__name__}, not a fitted "
                            f"scikit-learn {expect} (with {', '.join(needs)})")
    return obj
