"""uvicorn in a background thread on an ephemeral loopback port (for tests that need a real
server: client disconnects, raw sockets, concurrent requests)."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

__all__ = ["ServerThread"]


class ServerThread:
    """``with ServerThread(app, **uvicorn_config) as srv: srv.url``."""

    def __init__(self, app: Any, **config: Any):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="on", **config))
        self.thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)
        self.url = ""
        self.port = 0

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive()
