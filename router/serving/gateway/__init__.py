"""The OpenAI-compatible HTTP gateway: ``create_app(router, ...)`` returns a FastAPI app.

Run it with ``router serve`` (uvicorn) or mount the app yourself; see :mod:`router.serving.gateway.app`.
"""

from .app import create_app

__all__ = ["create_app"]
