"""Every exception the router raises, in one place.

::

    RouterError
    ├── CatalogError          the model catalog is missing, malformed or invalid
    ├── ConfigError           the router's own configuration is invalid (policy tiers, ...)
    ├── ArtifactError         a saved router cannot be read (corrupt, too new, wrong versions)
    ├── DataError             a data file or row is invalid (names file and line)
    ├── InvalidRequestError   a prompt / message list / constraint given to the router is malformed
    ├── UnknownModelError     a model name that is not in the catalog
    ├── NoEligibleModelError  no catalog model can serve the request (capabilities, context, cost cap)
    ├── UpstreamError         a provider call failed after retries and fallbacks
    ├── TrackingError         the MLflow tracking server / registry is unreachable or lacks a name
    └── UsageLogError         the usage-log database cannot be written now (locked, full, gone)
"""

from __future__ import annotations

__all__ = [
    "RouterError",
    "CatalogError",
    "ConfigError",
    "ArtifactError",
    "DataError",
    "InvalidRequestError",
    "UnknownModelError",
    "NoEligibleModelError",
    "UpstreamError",
    "TrackingError",
    "UsageLogError",
]


class RouterError(Exception):
    """Base class of every error raised by the ``router`` package."""


class CatalogError(RouterError):
    """The catalog file is missing, unparsable, or a model entry is invalid."""

    def __init__(self, message: str, *, model: str | None = None, field: str | None = None):
        parts = []
        if model is not None:
            parts.append(f"model {model!r}")
        if field is not None:
            parts.append(f"field {field!r}")
        prefix = (", ".join(parts) + ": ") if parts else ""
        super().__init__(prefix + message)
        self.model = model
        self.field = field


class ConfigError(RouterError, ValueError):
    """The router's configuration (not a request) is invalid: a server-side problem, never a 400."""


class ArtifactError(RouterError):
    """A saved router folder or registry artifact cannot be loaded."""


class DataError(RouterError):
    """A data file or one of its rows is invalid."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class InvalidRequestError(RouterError, ValueError):
    """A prompt, message list or routing constraint is malformed.

    ``param``: the request field at fault (``"messages"``, ``"max_cost"``, ...; the gateway's
    OpenAI-style body reports it), ``None`` when the error is not about one field."""

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.param = param


class UnknownModelError(RouterError, KeyError):
    """A model name is not in the catalog."""

    def __init__(self, model: str, known: list[str] | tuple[str, ...] = ()):
        msg = f"unknown model {model!r}"
        if known:
            msg += f"; the catalog has: {', '.join(sorted(known))}"
        super().__init__(msg)
        self.model = model

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class NoEligibleModelError(RouterError):
    """No model can serve the request; ``reasons`` maps each model to why it was excluded."""

    def __init__(self, message: str, reasons: dict[str, str] | None = None):
        self.reasons = dict(reasons or {})
        detail = "; ".join(f"{m}: {r}" for m, r in self.reasons.items())
        super().__init__(f"{message} ({detail})" if detail else message)


class UpstreamError(RouterError):
    """A provider call failed (one attempt, as a transport raises it; or the whole request, after
    retries and fallbacks, as the routed client raises it).

    ``kind``: ``status`` (an HTTP error: ``status_code``), ``timeout``, ``connection``,
    ``malformed`` (a body or event that is not the expected JSON), ``stream_error`` (an error
    event inside a stream) or ``config`` (no API key). ``retry_after``: seconds the provider asked
    to wait. ``upstream_message``: the provider's own message (keys redacted). ``request_id`` and
    ``chain`` (one entry per attempt) are set on the routed client's final error."""

    def __init__(self, message: str, *, status_code: int | None = None, model: str | None = None,
                 kind: str | None = None, retry_after: float | None = None,
                 upstream_message: str | None = None, request_id: str | None = None,
                 chain: list[dict] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.model = model
        self.kind = kind
        self.retry_after = retry_after
        self.upstream_message = upstream_message
        self.request_id = request_id
        self.chain = list(chain or ())


class TrackingError(RouterError):
    """MLflow tracking or the model registry failed: unreachable server, unknown name or alias."""


class UsageLogError(RouterError):
    """The usage-log database failed a synchronous write (feedback) even after retries: it is
    locked, full or gone. ``cause``: the driver's error. Nothing was stored; the caller may retry."""

    def __init__(self, message: str, *, cause: str | None = None):
        super().__init__(message)
        self.cause = cause
