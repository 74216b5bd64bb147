"""Baseline critics with no learning.

``ZeroCritic`` turns AMC into plain SMC on rewards (the twist terms vanish),
the reference every learned critic must beat. ``ConstantCritic`` predicts one
number everywhere (e.g. the prior's mean success rate): the reference for
critic metrics, and, like any constant, the same as the zero critic inside
AMC (constant value terms cancel in the telescoping sum except at the first
checkpoint, where they shift every particle equally).

Example:
    >>> from agentmc.critics.core import History
    >>> ConstantCritic(0.3).values([History("Goal: craft stick.")])
    array([0.3])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agentmc.critics.core import History
from agentmc.types import FloatArray


@dataclass(frozen=True)
class ConstantCritic:
    """Predicts ``value`` for every history."""

    value: float = 0.0
    name: str = "constant"

    def values(self, histories: Sequence[History]) -> FloatArray:
        """``value`` repeated, shape ``(len(histories),)``."""
        return np.full(len(histories), float(self.value))


@dataclass(frozen=True)
class ZeroCritic(ConstantCritic):
    """Predicts 0 everywhere: AMC with this critic is SMC on rewards alone."""

    value: float = 0.0
    name: str = "zero"
