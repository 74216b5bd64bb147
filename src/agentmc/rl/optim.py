"""Optimisers as pure functions over numpy arrays (optax style, no classes).

Example:
    >>> import numpy as np
    >>> state = adam_init(3)
    >>> delta, state = adam_update(np.array([1.0, -1.0, 0.0]), state, learning_rate=0.1)
    >>> delta.round(3).tolist()
    [-0.1, 0.1, -0.0]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from agentmc.types import FloatArray


class AdamState(NamedTuple):
    """First and second moment estimates and the step count."""

    mean: FloatArray
    second: FloatArray
    step: int


def adam_init(dim: int) -> AdamState:
    """Zero moments for ``dim`` parameters."""
    return AdamState(np.zeros(dim), np.zeros(dim), 0)


def adam_update(
    grad: FloatArray,
    state: AdamState,
    *,
    learning_rate: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[FloatArray, AdamState]:
    """One Adam step: returns the parameter change (to add) and the new state.

    References:
        Kingma and Ba, "Adam: A Method for Stochastic Optimization", 2015.
        arXiv:1412.6980.
    """
    mean = b1 * state.mean + (1 - b1) * grad
    second = b2 * state.second + (1 - b2) * grad**2
    count = state.step + 1
    mean_hat = mean / (1 - b1**count)
    second_hat = second / (1 - b2**count)
    return -learning_rate * mean_hat / (np.sqrt(second_hat) + eps), AdamState(mean, second, count)
