"""Reading JSONL data files with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import DataError

__all__ = ["iter_objects"]


def iter_objects(path: str | Path, what: str = "data file") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of ``path``.

    :class:`DataError` for a missing file, invalid JSON or a line that is not a JSON object."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such {what}", path=str(path))
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg})", path=str(path), line=line_no) from None
            if not isinstance(obj, dict):
                raise DataError("row must be a JSON object", path=str(path), line=line_no)
            yield line_no, obj
