"""Reading and writing the pickled (joblib) heads of a router folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ArtifactError


def dump_pickle(obj: Any, path: Path) -> str:
    """Write ``obj`` to ``path`` (creating the folder); returns the file name."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(obj, path)
    return path.name


def load_pickle(path: Path) -> Any:
    """Read a pickled head; :class:`ArtifactError` naming the file when missing or corrupt."""
    import joblib

    if not path.is_file():
        raise ArtifactError(f"{path} is missing")
    try:
        return joblib.load(path)
    except Exception as exc:
        raise ArtifactError(f"{path} is corrupt or unreadable ({type(exc).__name__}: {exc})") from None
