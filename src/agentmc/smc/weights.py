"""Log-space importance weights: one immutable value type and the pure functions under it.

SMC multiplies many small potentials; in linear space they underflow after a
few steps. Everything here works on *log* weights, and the only weight type is
:class:`LogWeights`, a frozen value whose array is read-only. ``add(delta)``
returns a new object, so a resampling step can never mutate weights that a
diagnostic record still refers to.

Derived quantities are computed once and cached:

- ``normalized``: ``W_i = w_i / sum_j w_j`` (sums to 1);
- ``ess``: the effective sample size ``1 / sum_i W_i**2``, between 1 and K;
- ``log_mean``: ``log((1/K) sum_i w_i)``, the factor a resampling event
  contributes to the log-evidence estimate.

A weight of zero (log weight ``-inf``) is allowed; NaN and ``+inf`` are not.

Example:
    >>> import numpy as np
    >>> weights = LogWeights.uniform(4).add(np.log([1.0, 1.0, 2.0, 4.0]))
    >>> weights.normalized.round(3).tolist()
    [0.125, 0.125, 0.25, 0.5]
    >>> round(weights.ess, 3)
    2.909
    >>> round(float(np.exp(weights.log_mean)), 3)
    2.0
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from agentmc.errors import AgentmcError
from agentmc.types import FloatArray


class WeightError(AgentmcError, FloatingPointError):
    """Weights or values that SMC cannot use: NaN, ``+inf``, or every weight zero."""


def logsumexp(log_values: npt.ArrayLike) -> float:
    """``log(sum(exp(log_values)))`` without overflow.

    Args:
        log_values: Array of shape ``(K,)``; ``-inf`` entries count as zero.

    Returns:
        The log of the sum; ``-inf`` when every entry is ``-inf`` or the array is empty.

    Example:
        >>> round(logsumexp([1000.0, 1000.0]) - 1000.0, 6)
        0.693147
    """
    values = np.asarray(log_values, dtype=np.float64)
    if values.size == 0:
        return -np.inf
    top = float(np.max(values))
    if not np.isfinite(top):
        return top  # all -inf (or a +inf, which the caller rejects)
    return top + float(np.log(np.sum(np.exp(values - top))))


def normalise(log_weights: npt.ArrayLike) -> FloatArray:
    """Normalised linear weights ``W_i = exp(l_i) / sum_j exp(l_j)``.

    Equal log weights give exactly equal ``W_i`` (the maximum is subtracted
    first, so every ``exp`` is exactly 1), which keeps low-variance resamplers
    deterministic when all particles weigh the same.

    Args:
        log_weights: Array of shape ``(K,)``.

    Returns:
        Array of shape ``(K,)``, non-negative, summing to 1.

    Raises:
        WeightError: If every weight is zero.

    Example:
        >>> normalise([0.0, 0.0]).tolist()
        [0.5, 0.5]
    """
    values = np.asarray(log_weights, dtype=np.float64)
    top = float(np.max(values))
    if not np.isfinite(top):
        raise WeightError(f"cannot normalise weights whose largest log weight is {top}")
    linear = np.exp(values - top)
    return linear / np.sum(linear)


def effective_sample_size(log_weights: npt.ArrayLike) -> float:
    """Kish's effective sample size ``1 / sum_i W_i**2`` (between 1 and K).

    Args:
        log_weights: Array of shape ``(K,)``.

    Returns:
        The ESS as a float.

    Example:
        >>> effective_sample_size([0.0, 0.0, 0.0])
        3.0
    """
    normalized = normalise(log_weights)
    return float(1.0 / np.sum(normalized * normalized))


def log_mean_exp(log_weights: npt.ArrayLike) -> float:
    """``log((1/K) sum_i exp(l_i))``: the log of the mean unnormalised weight.

    Args:
        log_weights: Array of shape ``(K,)``, K >= 1.

    Returns:
        The log mean weight.

    Example:
        >>> round(log_mean_exp([0.0, np.log(3.0)]) - float(np.log(2.0)), 12)
        0.0
    """
    values = np.asarray(log_weights, dtype=np.float64)
    return logsumexp(values) - float(np.log(values.size))


def _frozen_array(values: npt.ArrayLike) -> FloatArray:
    array = np.array(values, dtype=np.float64)  # always a private copy
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class LogWeights:
    """Immutable log weights of K particles.

    Attributes:
        log_w: Read-only array of shape ``(K,)``; ``-inf`` means weight zero.
    """

    log_w: FloatArray

    def __post_init__(self) -> None:
        array = _frozen_array(self.log_w)
        if array.ndim != 1 or array.size == 0:
            raise WeightError(f"log weights must be a non-empty 1-D array, got shape {array.shape}")
        if np.isnan(array).any() or np.isposinf(array).any():
            raise WeightError(f"log weights must not be NaN or +inf: {array.tolist()[:8]}")
        object.__setattr__(self, "log_w", array)

    @classmethod
    def uniform(cls, n_particles: int) -> LogWeights:
        """K equal weights (all log weights 0)."""
        return cls(np.zeros(n_particles))

    def __len__(self) -> int:
        return int(self.log_w.size)

    def add(self, delta: npt.ArrayLike) -> LogWeights:
        """New weights ``log_w + delta``.

        Args:
            delta: Increments, shape ``(K,)`` or a scalar.
        """
        return LogWeights(self.log_w + np.asarray(delta, dtype=np.float64))

    def add_at(self, index: npt.ArrayLike, delta: npt.ArrayLike) -> LogWeights:
        """New weights with ``delta`` added to the entries selected by ``index``.

        Args:
            index: Integer indices or a boolean mask of shape ``(K,)``.
            delta: Increments for the selected entries.
        """
        updated = self.log_w.copy()
        selected = np.asarray(index)
        updated[selected] = updated[selected] + np.asarray(delta, dtype=np.float64)
        return LogWeights(updated)

    @cached_property
    def normalized(self) -> FloatArray:
        """``W``, shape ``(K,)``, summing to 1 (read-only)."""
        return _frozen_array(normalise(self.log_w))

    @cached_property
    def ess(self) -> float:
        """Effective sample size ``1 / sum W**2``."""
        normalized = self.normalized
        return float(1.0 / np.dot(normalized, normalized))

    @cached_property
    def log_sum(self) -> float:
        """``log(sum_i w_i)``."""
        return logsumexp(self.log_w)

    @cached_property
    def log_mean(self) -> float:
        """``log((1/K) sum_i w_i)``: the evidence factor of a resampling event."""
        return self.log_sum - float(np.log(self.log_w.size))
