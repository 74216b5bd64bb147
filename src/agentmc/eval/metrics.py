"""Metrics with uncertainty: bootstrap confidence intervals and paired comparisons.

All functions are pure and take an explicit generator. A success rate over n
tasks comes with a percentile-bootstrap 95% interval; two methods run on the
*same* tasks are compared pairwise (the paired bootstrap of the difference,
and McNemar's exact test on discordant tasks), which is far more sensitive
than comparing two independent intervals.

Example:
    >>> rng = np.random.default_rng(0)
    >>> estimate = bootstrap_mean(np.array([1, 1, 0, 1, 0, 1, 1, 1]), rng)
    >>> round(estimate.value, 3), estimate.low <= estimate.value <= estimate.high
    (0.75, True)
    >>> mcnemar(np.array([1, 1, 1, 0]), np.array([0, 0, 0, 0])).p_value
    0.25

References:
    Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13.
    McNemar (1947), Note on the sampling error of the difference between correlated
    proportions or percentages. Psychometrika 12(2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agentmc.types import FloatArray

CONFIDENCE = 0.95
N_BOOTSTRAP = 2000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval (``nan`` bounds when n < 2)."""

    value: float
    low: float
    high: float
    n: int

    def format(self, percent: bool = False, digits: int = 2) -> str:
        scale, unit = (100.0, "%") if percent else (1.0, "")
        if math.isnan(self.value):
            return "n/a"
        if math.isnan(self.low):
            return f"{self.value * scale:.{digits}f}{unit}"
        return (
            f"{self.value * scale:.{digits}f}{unit} "
            f"[{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
        )

    def as_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def bootstrap_mean(
    values: FloatArray,
    rng: np.random.Generator,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_BOOTSTRAP,
) -> Estimate:
    """Mean of ``values`` (shape ``(n,)``) with a percentile-bootstrap interval.

    ``nan`` entries (unknown values, e.g. an unknown cost) are dropped first.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(values.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    means = values[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Estimate(mean, float(low), float(high), n)


def paired_difference(
    a: FloatArray,
    b: FloatArray,
    rng: np.random.Generator,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_BOOTSTRAP,
) -> Estimate:
    """Mean of ``a - b`` over paired tasks (shape ``(n,)`` each) with a paired bootstrap CI."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    return bootstrap_mean(a - b, rng, confidence=confidence, n_resamples=n_resamples)


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test on paired binary outcomes.

    Attributes:
        only_a: Tasks solved by A but not B.
        only_b: Tasks solved by B but not A.
        p_value: Two-sided exact binomial p-value on the discordant pairs.
    """

    only_a: int
    only_b: int
    p_value: float


def mcnemar(a: FloatArray, b: FloatArray, *, alternative: str = "two-sided") -> McNemar:
    """Exact McNemar test for two methods' successes on the same tasks (shape ``(n,)``).

    Args:
        a: Successes of method A per task.
        b: Successes of method B on the same tasks.
        alternative: ``"two-sided"``, or ``"greater"`` for the one-sided test of
            "A solves more tasks than B" (p = P(X >= only_a) for X ~ Bin(only_a + only_b, 1/2)).

    Example:
        >>> mcnemar(np.array([1, 1, 1, 1, 1, 0]), np.zeros(6), alternative="greater").p_value
        0.03125
    """
    if alternative not in ("two-sided", "greater"):
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")
    wins_a, wins_b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int(np.sum(wins_a & ~wins_b)), int(np.sum(~wins_a & wins_b))
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return McNemar(only_a, only_b, 1.0)
    if alternative == "greater":
        upper = sum(math.comb(n, i) for i in range(only_a, n + 1)) / 2.0**n
        return McNemar(only_a, only_b, min(1.0, upper))
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return McNemar(only_a, only_b, min(1.0, 2.0 * tail))


def cost_per_success(total_cost: float | None, successes: int) -> float:
    """Total cost divided by the number of successes (``inf`` with none, ``nan`` if unknown)."""
    if total_cost is None or (isinstance(total_cost, float) and math.isnan(total_cost)):
        return math.nan
    return math.inf if successes == 0 else total_cost / successes
