"""The usage log's local journal: where rows go while the database is unavailable.

One JSONL file per process (``usage-<pid>-<start>.jsonl`` in the journal folder), each line one
database row, appended a batch at a time and fsync'd, bounded in size. The file is held with an
exclusive ``flock`` for the life of the process, so a later process (a restart, another worker)
can tell a journal whose writer has gone (the lock is free) and adopt it for replay. Replay is the
writer's: :meth:`Journal.pending_rows` reads every pending row, :meth:`Journal.clear` forgets them
once the database has them (the store's inserts are idempotent on ``request_id``, so a replay that
breaks half way is simply repeated).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Journal", "JournalFull"]


class JournalFull(Exception):
    """Appending would take the journal past its size bound (the rows were not written)."""


class Journal:
    """A bounded, fsync'd JSONL journal in ``folder`` (created) for this process; see the module
    docstring. Raises :class:`OSError` when the folder cannot be written."""

    def __init__(self, folder: str | Path, max_bytes: int = 256 * 1024 * 1024):
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.path = self.folder / f"usage-{os.getpid()}-{time.time_ns()}.jsonl"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise
        self._size = 0
        self._rows = 0
        self._adopted: list[tuple[Path, int]] = []  # (path, fd holding its lock)
        self._adopt_orphans()

    def _adopt_orphans(self) -> None:
        for p in sorted(self.folder.glob("usage-*.jsonl")):
            if p == self.path:
                continue
            try:
                fd = os.open(p, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its process is alive: not ours
                os.close(fd)
                continue
            self._adopted.append((p, fd))

    @property
    def files(self) -> list[Path]:
        return [self.path] + [p for p, _ in self._adopted]

    def pending(self) -> bool:
        """True when some journal (this process's or an adopted one) holds rows."""
        return self._size > 0 or any(p.exists() and p.stat().st_size > 0 for p, _ in self._adopted)

    @property
    def rows(self) -> int:
        """Rows this process appended and has not cleared yet."""
        return self._rows

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Append ``rows`` as one fsync'd write; :class:`JournalFull` past the bound, OSError on a
        write failure (a partial line is never left behind: the file is cut back)."""
        data = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        if self._size + len(data) > self.max_bytes:
            raise JournalFull(f"the usage journal {self.path} would exceed its bound of {self.max_bytes} bytes")
        try:
            n = os.write(self._fd, data)
            if n != len(data):
                raise OSError(f"short write to {self.path} ({n} of {len(data)} bytes)")
            os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)
        self._rows += len(rows)

    def pending_rows(self) -> Iterator[tuple[Path, list[dict[str, Any]], int]]:
        """``(file, rows, unreadable lines)`` for each journal file that holds rows."""
        for path in self.files:
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                continue
            if not raw:
                continue
            rows, bad = [], 0
            for line in raw.splitlines():
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    bad += 1  # a line cut by a crash
                    continue
                if isinstance(row, dict):
                    rows.append(row)
                else:
                    bad += 1
            yield path, rows, bad

    def clear(self, path: Path) -> None:
        """Forget ``path``'s rows (they are in the database): this process's file is truncated,
        an adopted one deleted."""
        if path == self.path:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
            self._size = self._rows = 0
            return
        for i, (p, fd) in enumerate(self._adopted):
            if p == path:
                p.unlink(missing_ok=True)
                os.close(fd)
                del self._adopted[i]
                return

    def close(self) -> None:
        """Release the locks; an empty journal file of this process is removed."""
        for _p, fd in self._adopted:
            os.close(fd)
        self._adopted = []
        if self._fd >= 0:
            if self._size == 0:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = -1
