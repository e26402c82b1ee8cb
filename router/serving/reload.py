"""Pick up a newly promoted champion without a restart.

:class:`ChampionWatcher` checks where a router URI points (``models:/NAME@champion``: the alias's
version; a folder: the fingerprint of its ``router.json``) at an interval, or when
:meth:`~ChampionWatcher.check_now` is called (e.g. from a ``SIGHUP`` handler), and when it moved,
loads the new router and hands it to ``on_change(router, version)``, logging the version it
switched to. A failed resolve or load keeps the current router and logs why.

::

    watcher = ChampionWatcher("models:/llm-router@champion", lambda r, v: swap(r), interval=60)
    watcher.start()   # ... watcher.stop()
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ChampionWatcher", "router_version", "on_sighup", "Reloader"]

log = logging.getLogger("router.reload")


def router_version(uri: str | Path) -> str:
    """Where ``uri`` points now: the registered version for a ``models:/`` URI with an alias, else
    ``sha256:`` + the first 16 hex digits of the folder's ``router.json``."""
    text = str(uri)
    if text.startswith("models:/"):
        from ..persistence.registry import resolve_alias

        return resolve_alias(text)
    cfg = Path(text) / "router.json"
    return "sha256:" + hashlib.sha256(cfg.read_bytes()).hexdigest()[:16]


class ChampionWatcher:
    """Watch ``uri``; call ``on_change(router, version)`` when it points somewhere new.

    ``resolve`` (uri -> version) and ``load`` (uri -> router) are injectable; the defaults are
    :func:`router_version` and ``Router.load``. ``current`` is the version being served (resolved
    at construction when not given)."""

    def __init__(self, uri: str | Path, on_change: Callable[[Any, str], None], *, interval: float = 60.0,
                 resolve: Callable[[str], str] | None = None, load: Callable[[str], Any] | None = None,
                 current: str | None = None):
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.uri, self.on_change, self.interval = str(uri), on_change, float(interval)
        self._resolve = resolve or router_version
        if load is None:
            from ..routing import Router

            load = Router.load
        self._load = load
        self.current = current if current is not None else self._resolve(self.uri)
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_now(self) -> bool:
        """Resolve once; load and hand over a new router when the version moved. True if swapped."""
        with self._lock:
            try:
                version = self._resolve(self.uri)
                if version == self.current:
                    return False
                router = self._load(self.uri)
                self.on_change(router, version)
            except Exception as exc:  # keep serving the current router
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("champion reload of %s failed, keeping %s: %s", self.uri, self.current, self.last_error)
                return False
            log.info("switched router %s from %s to %s", self.uri, self.current, version)
            self.current, self.last_error = version, None
            return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_now()

    def start(self) -> "ChampionWatcher":
        """Check every ``interval`` seconds on a daemon thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="router-champion-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def on_sighup(check: Callable[[], Any]) -> Callable[[], None]:
    """Run ``check`` (e.g. :meth:`ChampionWatcher.check_now`) on a thread each time the process
    gets ``SIGHUP`` (loading a router takes seconds: never in the handler itself). Returns a
    function that restores the previous handler. A no-op off the main thread or where there is
    no ``SIGHUP``."""
    sig = getattr(signal, "SIGHUP", None)  # absent on Windows
    if sig is None or threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(_signum: int, _frame: Any) -> None:
        threading.Thread(target=check, name="router-champion-sighup", daemon=True).start()

    previous = signal.signal(sig, handler)

    def restore() -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)

    return restore


class Reloader:
    """A :class:`ChampionWatcher` run for a server's lifetime: :meth:`start` checks once at once
    (a worker restarted by its supervisor catches up), then every ``interval`` seconds when
    ``periodic``, and on ``SIGHUP``; :meth:`stop` ends both."""

    def __init__(self, watcher: ChampionWatcher, *, periodic: bool = True):
        self.watcher, self.periodic = watcher, periodic
        self._restore: Callable[[], None] = lambda: None
        self._first: threading.Thread | None = None

    def ready(self, timeout: float = 30.0) -> bool:
        """Wait for the check :meth:`start` made; False if it is still running."""
        if self._first is not None:
            self._first.join(timeout)
            return not self._first.is_alive()
        return True

    def start(self) -> "Reloader":
        self._first = threading.Thread(target=self.watcher.check_now, name="router-champion-first", daemon=True)
        self._first.start()
        if self.periodic:
            self.watcher.start()
        self._restore = on_sighup(self.watcher.check_now)
        return self

    def stop(self) -> None:
        self._restore()
        self._restore = lambda: None
        self.watcher.stop()
