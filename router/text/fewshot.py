"""Few-shot examples in a prompt: the router reads the real question, in training and serving.

Benchmark prompts (RouterBench's ARC and Winogrande, HELM-style multiple choice) put solved
examples ("...Answer:\\nB\\n\\n") before the question asked. A whole-text embedding truncated at
256 tokens sees mostly the examples, so the quality heads would read the examples, not the
question. :func:`strip_few_shot` keeps the text after the last solved example; the router
applies it to the text it classifies (``Router.classifier_text``) and training embeds exactly
that text, so the two sides see the same thing for any prompt, few-shot or not.
"""

from __future__ import annotations

import re

__all__ = ["strip_few_shot"]

_FEW_SHOT_SPLIT = re.compile(r"Answer:\s*\n?\s*[A-E]\s*\n\n")


def strip_few_shot(text: str) -> str:
    """Drop few-shot examples ("...Answer:\\nB\\n\\n") that precede the real question; a prompt
    without them (or with nothing after them) comes back unchanged."""
    parts = _FEW_SHOT_SPLIT.split(text)
    return parts[-1].strip() if len(parts) > 1 and parts[-1].strip() else text
