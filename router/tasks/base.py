"""The task classifier contract the :class:`~router.routing.Router` relies on.

The Router embeds each batch once and shares the feature matrix with the learned quality and
cost models, so a classifier exposes the two halves of ``predict``: ``featurize`` (texts ->
features, or ``None`` for a classifier that reads the text alone, like the regex) and
``predict_features`` (features + texts -> predictions). ``predict(texts)`` is
``predict_features(featurize(texts), texts)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..types import TaskPrediction

__all__ = ["TaskClassifier"]


@runtime_checkable
class TaskClassifier(Protocol):
    def featurize(self, texts: Sequence[str]) -> np.ndarray | None:
        """n texts -> the feature matrix (n, d) the learned predictors share, or ``None`` when
        this classifier computes no features."""
        ...

    def predict_features(self, X: np.ndarray | None, texts: Sequence[str]) -> list[TaskPrediction]:
        """Predictions for ``texts`` from ``featurize(texts)``'s result ``X``."""
        ...

    def predict(self, texts: Sequence[str]) -> list[TaskPrediction]:
        """n texts -> n task predictions."""
        ...

