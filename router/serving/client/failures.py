"""Failure classification: what an :class:`~router.errors.UpstreamError` from a transport
means for retries, fallback and cooldowns; and the helpers transports share to build one
(``Retry-After`` parsing, key redaction, the provider's own message)."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import UpstreamError

__all__ = ["Failure", "classify", "retry_after", "redact", "redact_values", "provider_message", "FATAL_STATUSES",
           "RETRY_STATUSES"]

#: The request itself is wrong: no retry, no fallback (the gateway answers 400).
FATAL_STATUSES = frozenset({400, 413, 422})
#: Client errors worth retrying (with any 5xx).
RETRY_STATUSES = frozenset({408, 409, 429})

_SECRETISH = re.compile(r"\b(?:sk|pk|rk|key|api[_-]?key)[-_][A-Za-z0-9_\-*.]{4,}", re.IGNORECASE)
_REASONS = {"timeout": "timeout", "connection": "connection error", "malformed": "malformed response", "deadline": "deadline passed",
            "stream_error": "error event", "config": "config"}


@dataclass
class Failure:
    kind: str  # status | timeout | connection | malformed | config | stream_error | bug
    reason: str
    status_code: int | None = None
    retryable: bool = False
    fatal: bool = False
    counts: bool = True
    retry_after: float | None = None
    message: str = ""


def redact(text: str) -> str:
    """Provider messages may quote (part of) a key, e.g. OpenAI's 401 text: mask anything key-like."""
    return _SECRETISH.sub("[redacted]", text)


def redact_values(text: str | None, secrets: Iterable[str]) -> str | None:
    """``text`` with every occurrence of each secret VALUE (and of its first or last 8+
    characters, which providers quote: ``sk-abc...wxyz``) replaced by ``[redacted]``; secrets
    shorter than 8 characters are left alone (they would match ordinary words)."""
    if not text:
        return text
    for key in secrets:
        if not key or len(key) < 8:
            continue
        text = text.replace(key, "[redacted]")
        for part in (key[:8], key[-8:]) if len(key) >= 16 else ():
            text = text.replace(part, "[redacted]")
    return text


def provider_message(body: Any, fallback: str) -> str:
    """The ``message`` of an OpenAI-style error body (``{"error": {"message"}}`` or the inner
    object), else ``fallback``; at most 1,000 characters, keys redacted."""
    if isinstance(body, Mapping):
        inner = body.get("error") if isinstance(body.get("error"), Mapping) else body
        msg = inner.get("message")
        if isinstance(msg, str) and msg:
            return redact(msg[:1000])
    return redact(fallback[:1000])


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), else None."""
    try:
        ms = headers.get("retry-after-ms")
        if ms:
            return float(ms) / 1000.0
        ra = headers.get("retry-after")
        if not ra:
            return None
        try:
            return float(ra)
        except ValueError:
            when = email.utils.parsedate_to_datetime(ra)
            return max(0.0, when.timestamp() - time.time())
    except (ValueError, TypeError, OverflowError):
        return None


def classify(exc: BaseException) -> Failure:
    """How the retry machine treats ``exc``: an :class:`UpstreamError` by its declared fields;
    anything else is a bug (``kind == "bug"``), re-raised rather than retried."""
    if not isinstance(exc, UpstreamError):
        return Failure("bug", type(exc).__name__, message=str(exc))
    kind, msg = exc.kind or "connection", exc.upstream_message or str(exc)
    if kind == "config":
        return Failure("config", str(exc), counts=False, message=str(exc))
    if kind == "status" and exc.status_code is not None:
        s = int(exc.status_code)
        ra = exc.retry_after if s in (429, 503) else None
        if s in RETRY_STATUSES or s >= 500:
            return Failure("status", f"HTTP {s}", s, retryable=True, retry_after=ra, message=msg)
        if s in FATAL_STATUSES:
            return Failure("status", f"HTTP {s}", s, fatal=True, counts=False, message=msg)
        return Failure("status", f"HTTP {s}", s, message=msg)
    return Failure(kind, _REASONS.get(kind, kind), retryable=True, message=msg)
