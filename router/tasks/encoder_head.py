"""A fine-tuned encoder's own task head, averaged into a gated classifier's English answers.

The fine-tuned encoder (:class:`router.embedders.FinetunedEmbedder`) was trained end to end with a
linear head over its vector. The gated classifier's logistic regression reads that vector too,
next to the other side and the hand features, but fitted on rows the encoder was trained on it
learns less from it than the encoder's own head did: on collections held out of both, the own
head was the better reader of English prompts (first group: 0.812 against 0.799), and the
average of the two better than either on both groups held out (BENCHMARKS.md, "Two heads on the
English side"). So on the rows the gate sends to the English side the classifier answers

    p = (1 - mix) * p_head + mix * softmax((v @ weight.T + bias) / temperature)

with ``v`` the English side's vector: the first ``weight.shape[1]`` columns of the gated block.

Saved next to the classifier's head as ``encoder_head.npz`` (arrays only, read without
unpickling); ``temperature`` and ``mix`` in the classifier's config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError
from ..predictors.linear import softmax

__all__ = ["EncoderHead", "ENCODER_HEAD_MIX", "ENCODER_HEAD_FILE"]

#: The weight of the encoder's own head on English rows: an even average, not tuned (two held-out
#: groups: +1.3 and +0.3 points on English prompts, ECE 0.026 and 0.047; BENCHMARKS.md).
ENCODER_HEAD_MIX = 0.5
ENCODER_HEAD_FILE = "encoder_head.npz"


@dataclass(frozen=True)
class EncoderHead:
    """``weight`` (k, d) and ``bias`` (k,), rows in the classifier's class order; ``temperature``
    > 0 (the encoder's own calibration); ``mix`` in (0, 1], its share of the English answer."""

    weight: np.ndarray
    bias: np.ndarray
    temperature: float
    mix: float

    def __post_init__(self) -> None:
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ValueError(f"encoder head: weight (k, d) and bias (k,) expected, got {self.weight.shape} "
                             f"and {self.bias.shape}")
        if not self.temperature > 0:
            raise ValueError(f"encoder head: temperature must be positive, got {self.temperature}")
        if not 0.0 < self.mix <= 1.0:
            raise ValueError(f"encoder head: mix must be in (0, 1], got {self.mix}")

    @property
    def dim(self) -> int:
        """The width d of the vectors it reads."""
        return int(self.weight.shape[1])

    @classmethod
    def from_encoder(cls, labels: Sequence[str], weight: np.ndarray, bias: np.ndarray, temperature: float,
                     classes: Sequence[str], mix: float = ENCODER_HEAD_MIX) -> "EncoderHead | None":
        """The encoder's head (rows in ``labels`` order) re-ordered to ``classes``; None when the
        encoder cannot answer one of them. Classes the classifier lacks are dropped (the softmax
        then runs over the classifier's classes only)."""
        labels = list(labels)
        if any(c not in labels for c in classes):
            return None
        rows = [labels.index(c) for c in classes]
        return cls(np.asarray(weight, np.float32)[rows], np.asarray(bias, np.float32)[rows],  # copies
                   float(temperature), float(mix))

    def proba(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors (n, d) -> probabilities (n, k) over the classifier's classes."""
        return softmax((vectors @ self.weight.T + self.bias) / self.temperature)

    def blend(self, proba: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """The classifier head's probabilities (n, k) averaged with this head's on ``vectors`` (n, d)."""
        return (1.0 - self.mix) * proba + self.mix * self.proba(vectors)

    def save(self, folder: Path) -> tuple[str, dict[str, Any]]:
        """Write the arrays into ``folder``; returns (file name, config fields)."""
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ENCODER_HEAD_FILE, "wb") as f:
            np.savez(f, weight=self.weight, bias=self.bias)
        return ENCODER_HEAD_FILE, {"file": ENCODER_HEAD_FILE, "temperature": self.temperature, "mix": self.mix}

    @classmethod
    def load(cls, config: dict[str, Any], folder: Path, where: str, n_classes: int) -> "EncoderHead":
        """Read what :meth:`save` wrote; :class:`ArtifactError` naming the field or file at fault."""
        if not isinstance(config, dict):
            raise ArtifactError(f"{where}: encoder_head must be a mapping")
        if config.get("file") != ENCODER_HEAD_FILE:
            raise ArtifactError(f"{where}: encoder_head.file must be {ENCODER_HEAD_FILE!r}, got {config.get('file')!r}")
        numbers = {}
        for key in ("temperature", "mix"):
            value = config.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ArtifactError(f"{where}: encoder_head.{key} must be a number, got {value!r}")
            numbers[key] = float(value)
        path = folder / ENCODER_HEAD_FILE
        if not path.is_file():
            raise ArtifactError(f"{path} is missing (named by {where}: encoder_head.file)")
        try:
            with np.load(path, allow_pickle=False) as z:
                weight, bias = np.asarray(z["weight"], np.float32), np.asarray(z["bias"], np.float32)
        except Exception as exc:
            raise ArtifactError(f"{path} is corrupt or unreadable ({type(exc).__name__}: {exc})") from None
        if weight.ndim != 2 or weight.shape[0] != n_classes:
            raise ArtifactError(f"{path}: weight has shape {weight.shape}, expected ({n_classes}, d) for "
                                f"{n_classes} classes")
        try:
            return cls(weight, bias, numbers["temperature"], numbers["mix"])
        except ValueError as exc:
            raise ArtifactError(f"{where}: {exc}") from None
