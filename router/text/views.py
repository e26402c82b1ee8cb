"""Views of a prompt embedded next to the whole text.

A prompt's first and last sentences usually hold the ask ("Write a short description of the
given movie." / "...Summarize this for my manager."), while the whole text is dominated by the
material it comes with (the movie title, a pasted article, code). Embedding those views next to
the whole prompt lifted leave-source-out task accuracy from 0.82 to 0.87 (BENCHMARKS.md).

:class:`router.embedders.ViewsEmbedder` embeds the views named here next to the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

__all__ = ["VIEWS", "DEFAULT_VIEWS", "CONTEXT_MARK", "own_text", "sentences", "text_view"]

#: Put by the Router between a request's own text and the conversation context appended after
#: it (U+2063 INVISIBLE SEPARATOR). Views read only the part before it, so the last sentence of
#: "now make it faster" + context is "now make it faster"; embedders drop it (``clip_text``).
CONTEXT_MARK = "\u2063"

_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|(?<=[。！？：；])\s*|\n+")
_VIEW_CHARS = 200


def sentences(text: str) -> list[str]:
    """Split on sentence ends (Latin and CJK punctuation, colons) and line breaks; never empty."""
    parts = [s.strip() for s in _SENTENCE_END.split(text.strip()) if s and s.strip()]
    return parts or [text]


def own_text(text: str) -> str:
    """The request's own text: everything before :data:`CONTEXT_MARK` (all of it if absent)."""
    return text.split(CONTEXT_MARK, 1)[0]


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.strip().splitlines() if ln.strip()] or [text]


VIEWS: dict[str, Callable[[str], str]] = {
    "first_sentence": lambda t: sentences(own_text(t))[0][:_VIEW_CHARS],
    "last_sentence": lambda t: sentences(own_text(t))[-1][:_VIEW_CHARS],
    "first_line": lambda t: _lines(own_text(t))[0][:_VIEW_CHARS],
    "last_line": lambda t: _lines(own_text(t))[-1][:_VIEW_CHARS],
}
DEFAULT_VIEWS = ("first_sentence", "last_sentence")


def text_view(name: str, text: str) -> str:
    """One named view of ``text``'s own part (see :data:`VIEWS`, :func:`own_text`)."""
    try:
        return VIEWS[name](text)
    except KeyError:
        raise ValueError(f"unknown text view {name!r}; choose from {sorted(VIEWS)}") from None
