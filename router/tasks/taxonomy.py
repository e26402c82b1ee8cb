"""Task types and the cold-start regex classifier of the original design.

The patterns are the original article's, kept verbatim; ``classify_task`` keeps its behaviour:
the task with the most matching patterns wins (ties go to the task listed first) and
``general`` answers when nothing matches. The regex knows six of the taxonomy's types (code,
classification, reasoning, translation, creative, vision); the learned classifier knows all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ..types import TaskPrediction

__all__ = [
    "TASK_TYPES",
    "TEXT_TASK_TYPES",
    "TASK_PATTERNS",
    "classify_task",
    "estimate_complexity",
    "RegexTaskClassifier",
]

#: Task types read from text. ``general`` is the catch-all.
TEXT_TASK_TYPES: tuple[str, ...] = (
    "code",
    "math",
    "reasoning",
    "classification",
    "extraction",
    "summarization",
    "rewriting",
    "translation",
    "creative",
    "qa",
    "general",
)
#: All task types; ``vision`` is decided from the request (image parts) or the regex.
TASK_TYPES: tuple[str, ...] = TEXT_TASK_TYPES + ("vision",)

TASK_PATTERNS: dict[str, tuple[str, ...]] = {
    "code": (
        r"(write|generate|create|implement|build|fix|debug)\s+(a\s+)?(function|class|script|code|program|API|endpoint)",
        r"(python|javascript|typescript|rust|go|java)\s+(code|function|script)",
        r"refactor\s+(this|the|my)",
    ),
    "classification": (
        r"(classify|categorize|tag|label|sort|filter)\s+(the|this|these|all)",
        r"(is this|does this|check if)\s+(a\s+)?(spam|valid|correct|legit)",
        r"(sentiment|intent|category)\s+(analysis|detection|of)",
    ),
    "reasoning": (
        r"(explain|why|how does|prove|solve|calculate|cause of)",
        r"(reason|logic|deduce|infer|analyze)\s+(about|the|this|why)",
    ),
    "translation": (
        r"(translate|convert|localize)\s+(this|the|to|from|into)",
        r"in\s+(chinese|english|japanese|korean|french|german|spanish)",
    ),
    "creative": (
        r"(write|compose|draft|create)\s+(a\s+)?(story|poem|article|blog|email|essay|narrative)",
        r"(generate|brainstorm)\s+(ideas|topics|names|titles)",
    ),
    "vision": (
        r"(describe|analyze|read|extract|what(.s| is)\s+in)\s+(this|the)\s+(image|picture|photo|screenshot|diagram)",
    ),
}

# Compiled once, on first use (no work at import time beyond this dict).
_COMPILED: dict[str, tuple[re.Pattern[str], ...]] = {}


def _compiled() -> dict[str, tuple[re.Pattern[str], ...]]:
    if not _COMPILED:
        for task, patterns in TASK_PATTERNS.items():
            _COMPILED[task] = tuple(re.compile(p) for p in patterns)
    return _COMPILED


#: The regex and complexity passes read at most this many characters of a prompt: their answer
#: does not change past it (complexity saturates long before), and a 1 MB prompt must not cost
#: the event loop a quarter of a second.
MAX_SCAN_CHARS = 32_000


def _scores(prompt: str) -> dict[str, int]:
    lower = prompt[:MAX_SCAN_CHARS].lower()
    scores = {}
    for task, patterns in _compiled().items():
        score = sum(1 for p in patterns if p.search(lower))
        if score > 0:
            scores[task] = score
    return scores


def classify_task(prompt: str) -> str:
    """The original design's classifier: most matching patterns wins, ``general`` if none."""
    scores = _scores(prompt)
    if not scores:
        return "general"
    return max(scores, key=scores.get)


_HARD_MARKERS = re.compile(
    r"\b(prove|proof|optimi[sz]e|step[- ]by[- ]step|derive|complexity|edge cases?|concurren\w*|"
    r"distributed|rigorous|theorem|architecture|trade-?offs?)\b"
)
_EASY_MARKERS = re.compile(r"\b(quick(ly)?|simple|short|one word|yes or no|briefly|tl;?dr)\b")


def estimate_complexity(prompt: str) -> float:
    """A length-and-marker heuristic in [0, 1] for prompts with no learned complexity model
    (reads the first :data:`MAX_SCAN_CHARS` characters)."""
    prompt = prompt[:MAX_SCAN_CHARS]
    words = max(1, len(prompt.split()))
    score = 0.15 + 0.12 * math.log10(words) * 2
    lower = prompt.lower()
    score += 0.15 * min(2, len(_HARD_MARKERS.findall(lower)))
    score -= 0.15 * min(1, len(_EASY_MARKERS.findall(lower)))
    return float(min(1.0, max(0.0, score)))


def complexity_bucket(score: float) -> str:
    """Map a complexity score in [0, 1] to easy / medium / hard."""
    if score < 0.35:
        return "easy"
    if score < 0.65:
        return "medium"
    return "hard"


class RegexTaskClassifier:
    """Cold-start classifier wrapping :func:`classify_task`.

    Confidence is a heuristic: the share of matched patterns that voted for the winner, scaled
    up with the number of votes; ``general`` from no match gets 0.3.
    """

    source = "regex"

    def to_config(self) -> dict[str, str]:
        return {"type": "regex"}

    def featurize(self, texts: Sequence[str]) -> None:
        """The regex reads the text alone: no feature matrix."""
        return None

    def predict_features(self, X: None, texts: Sequence[str]) -> list[TaskPrediction]:
        """Same as :meth:`predict` (``X`` is ``featurize``'s ``None``)."""
        return self.predict(texts)

    def predict(self, texts: Sequence[str]) -> list[TaskPrediction]:
        """``texts``: n strings -> n :class:`TaskPrediction`."""
        out = []
        for text in texts:
            scores = _scores(text)
            cx = estimate_complexity(text)
            if not scores:
                task, conf = "general", 0.3
            else:
                task = max(scores, key=scores.get)
                share = scores[task] / sum(scores.values())
                conf = round(share * min(1.0, 0.5 + 0.2 * scores[task]), 4)
            out.append(
                TaskPrediction(
                    task=task,
                    confidence=conf,
                    source=self.source,
                    complexity=complexity_bucket(cx),
                    complexity_score=round(cx, 4),
                )
            )
        return out
