"""The usage log's SQLAlchemy engine (SQLite: WAL, busy timeout, our own BEGIN) and the identity
of its SQLite file, which the store checks so a deleted or replaced file is noticed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = ["create_engine", "sqlite_file", "file_identity"]


def create_engine(url: str, busy_timeout_ms: int) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode, ``busy_timeout_ms`` and transactional DDL
    (``conn.execution_options(sqlite_begin="IMMEDIATE")`` takes the write lock at BEGIN)."""
    u = sa.make_url(url)
    if u.get_backend_name() != "sqlite":
        return sa.create_engine(u, pool_pre_ping=True)
    if u.database in (None, "", ":memory:") or "mode=memory" in u.database:
        raise ValueError("the usage log needs a SQLite file (an in-memory database is private to "
                         "one connection, and the writer thread uses its own)")
    if not u.database.startswith("file:"):
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(u, connect_args={"timeout": busy_timeout_ms / 1000})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves: transactional DDL
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode, no fsync per commit
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", ""))

    return engine


def sqlite_file(url: str) -> Path | None:
    """The SQLite file of ``url`` (absolute), or None for another database or a ``file:`` URI."""
    u = sa.make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database.startswith("file:"):
        return None
    return Path(u.database).expanduser().resolve()


def file_identity(path: Path | None) -> tuple[int, int] | None:
    """(device, inode) of ``path``; None when there is no file (or no path)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
