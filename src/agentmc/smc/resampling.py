"""Resamplers: pure functions from normalised weights to ancestor indices.

Every resampler has the signature ``resampler(weights, rng, m=None) ->
ancestors``: ``weights`` is an array ``W`` of shape ``(K,)`` summing to 1,
``rng`` an explicit ``numpy.random.Generator``, and the result an integer
array of shape ``(m,)`` (``m = K`` by default) with values in ``[0, K)``. All
four are *unbiased*: the expected number of copies of particle i is ``m * W_i``.
They differ in variance:

- ``multinomial``: m independent draws (highest variance; the textbook baseline);
- ``stratified``: one uniform draw in each of m equal strata;
- ``systematic`` (default): one uniform draw shifted across the m strata; each
  particle gets ``floor(m W_i)`` or ``ceil(m W_i)`` copies;
- ``residual``: ``floor(m W_i)`` copies deterministically, the rest multinomially.

With equal weights, the three low-variance schemes keep every particle exactly
once (this is what makes SMC with ``beta = inf`` equal to Best-of-N); the
multinomial one does not. Look resamplers up by name with :func:`get_resampler`,
which lists the valid names on error.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> get_resampler("systematic")(np.array([0.1, 0.2, 0.7]), rng).tolist()
    [1, 2, 2]
    >>> sorted(RESAMPLERS)
    ['multinomial', 'residual', 'stratified', 'systematic']

References:
    Douc, Cappé and Moulines (2005), "Comparison of resampling schemes for
    particle filtering". Chopin and Papaspiliopoulos (2020), *An Introduction to
    Sequential Monte Carlo*, chapter 9.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from agentmc.errors import UnknownNameError
from agentmc.smc.weights import WeightError
from agentmc.types import FloatArray, IntArray

#: ``resampler(weights (K,), rng, m) -> ancestors (m,)``.
Resampler = Callable[[FloatArray, np.random.Generator, "int | None"], IntArray]

#: Registered resamplers by name.
RESAMPLERS: dict[str, Resampler] = {}

#: The resampler used when none is named.
DEFAULT_RESAMPLER = "systematic"

#: An expected copy count within this distance of an integer is that integer, so
#: rounding in ``m * W_i`` cannot turn "exactly one copy" into a random draw.
_INTEGER_SNAP = 1e-9


def register(name: str) -> Callable[[Resampler], Resampler]:
    """Decorator that registers a resampler under ``name``."""

    def decorate(function: Resampler) -> Resampler:
        RESAMPLERS[name] = function
        return function

    return decorate


def get_resampler(name: str) -> Resampler:
    """The resampler registered as ``name``.

    Raises:
        UnknownNameError: If no resampler has that name (the message lists them).
    """
    try:
        return RESAMPLERS[name]
    except KeyError:
        valid = ", ".join(sorted(RESAMPLERS))
        raise UnknownNameError(f"unknown resampler {name!r}; valid: {valid}") from None


def _checked(weights: FloatArray, m: int | None) -> tuple[FloatArray, int]:
    array = np.asarray(weights, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise WeightError(f"weights must be a non-empty 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise WeightError("weights must be finite and non-negative")
    total = float(np.sum(array))
    if total <= 0:
        raise WeightError("weights sum to zero: nothing to resample")
    count = array.size if m is None else int(m)
    if count < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    return array / total, count


def inverse_cdf(positions: FloatArray, weights: FloatArray) -> IntArray:
    """Map sorted or unsorted points in ``[0, 1)`` to the particles whose mass holds them.

    Particle i owns ``[C_{i-1}, C_i)`` with ``C`` the cumulative weights (the
    last one set to exactly 1), so a zero-weight particle is never chosen.

    Args:
        positions: Points in ``[0, 1)``, shape ``(m,)``.
        weights: Normalised weights, shape ``(K,)``.

    Returns:
        Indices, shape ``(m,)``.
    """
    cumulative = np.cumsum(weights)
    cumulative /= cumulative[-1]
    indices = np.searchsorted(cumulative, positions, side="right")
    return np.minimum(indices, weights.size - 1).astype(np.int64)


@register("multinomial")
def multinomial(weights: FloatArray, rng: np.random.Generator, m: int | None = None) -> IntArray:
    """Multinomial resampling: ``m`` independent draws from ``W``.

    Args:
        weights: Normalised weights ``W``, shape ``(K,)``.
        rng: Random generator.
        m: Number of ancestors (default K).

    Returns:
        Ancestor indices, shape ``(m,)``, in random order.
    """
    normalized, count = _checked(weights, m)
    return inverse_cdf(rng.random(count), normalized)


@register("stratified")
def stratified(weights: FloatArray, rng: np.random.Generator, m: int | None = None) -> IntArray:
    """Stratified resampling: position ``j`` is uniform in ``[j/m, (j+1)/m)``.

    Args:
        weights: Normalised weights ``W``, shape ``(K,)``.
        rng: Random generator.
        m: Number of ancestors (default K).

    Returns:
        Ancestor indices, shape ``(m,)``, non-decreasing.
    """
    normalized, count = _checked(weights, m)
    positions = (rng.random(count) + np.arange(count)) / count
    return inverse_cdf(positions, normalized)


@register("systematic")
def systematic(weights: FloatArray, rng: np.random.Generator, m: int | None = None) -> IntArray:
    """Systematic resampling: positions ``(U + j) / m`` with a single ``U ~ Uniform[0, 1)``.

    Each particle gets ``floor(m W_i)`` or ``ceil(m W_i)`` copies.

    Args:
        weights: Normalised weights ``W``, shape ``(K,)``.
        rng: Random generator.
        m: Number of ancestors (default K).

    Returns:
        Ancestor indices, shape ``(m,)``, non-decreasing.
    """
    normalized, count = _checked(weights, m)
    positions = (rng.random() + np.arange(count)) / count
    return inverse_cdf(positions, normalized)


@register("residual")
def residual(weights: FloatArray, rng: np.random.Generator, m: int | None = None) -> IntArray:
    """Residual resampling: ``floor(m W_i)`` copies, then multinomial draws on the remainder.

    Args:
        weights: Normalised weights ``W``, shape ``(K,)``.
        rng: Random generator.
        m: Number of ancestors (default K).

    Returns:
        Ancestor indices, shape ``(m,)``: the deterministic copies first
        (non-decreasing), then the random ones.
    """
    normalized, count = _checked(weights, m)
    expected = count * normalized
    whole = np.floor(expected + _INTEGER_SNAP)
    remainder = np.maximum(expected - whole, 0.0)
    copies = whole.astype(np.int64)
    ancestors = np.repeat(np.arange(normalized.size, dtype=np.int64), copies)
    n_random = count - int(copies.sum())
    if n_random > 0:
        total = float(remainder.sum())
        # With snapping, the remainders can all round to zero while a draw is
        # still owed; fall back to W itself, which keeps the scheme unbiased to 1e-9.
        residual_weights = remainder / total if total > 0 else normalized
        ancestors = np.concatenate([ancestors, inverse_cdf(rng.random(n_random), residual_weights)])
    return ancestors[:count]


def offspring_counts(ancestors: IntArray, n_particles: int) -> IntArray:
    """Number of copies of each particle, shape ``(n_particles,)``.

    Example:
        >>> offspring_counts(np.array([0, 0, 2]), 3).tolist()
        [2, 0, 1]
    """
    return np.bincount(np.asarray(ancestors, dtype=np.int64), minlength=n_particles)
