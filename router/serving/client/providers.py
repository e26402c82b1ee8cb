"""Which endpoint serves a model: one ``base_url`` for every model (argument or
``$ROUTER_BASE_URL``, key from the argument or ``$ROUTER_API_KEY``), else the catalog's
provider with the key in the variable its ``api_key_env`` names. Secrets are read only through
:mod:`router.config`, and only when a model is called."""

from __future__ import annotations

from typing import Any

from ... import config
from .transport import Endpoint

__all__ = ["Providers"]


class Providers:
    def __init__(self, catalog: Any, *, base_url: str | None = None, api_key: str | None = None):
        self.catalog = catalog
        url = base_url or config.router_base_url()
        self.base_url = url.rstrip("/") if url else None
        self._api_key = api_key

    def endpoint(self, model: str) -> Endpoint:
        if self.base_url is not None:
            return Endpoint(self.base_url, self._api_key or config.router_api_key() or "EMPTY", "ROUTER_API_KEY")
        provider = self.catalog[model].provider
        return Endpoint(provider.base_url, config.secret(provider.api_key_env), provider.api_key_env)
