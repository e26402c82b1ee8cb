"""The pure parts of the learning loop: the exploration draw, off-policy estimators and the
promotion gate. No I/O; numpy only."""

from .exploration import Explored, explore
from .gate import GateResult, PolicyValue, gate_decision
from .ope import Estimate, dr, effective_sample_size, ips, snips

__all__ = ["Explored", "explore", "Estimate", "ips", "snips", "dr", "effective_sample_size",
           "PolicyValue", "GateResult", "gate_decision"]
