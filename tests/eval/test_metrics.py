import math

import numpy as np
import pytest
from scipy import stats

from agentmc.eval.metrics import (
    bootstrap_mean,
    cost_per_success,
    mcnemar,
    paired_difference,
)

ALPHA = 0.01


def test_bootstrap_interval_covers_the_true_rate_at_about_the_nominal_level():
    rng = np.random.default_rng(0)
    truth, n, runs = 0.6, 100, 300
    covered = 0
    for _ in range(runs):
        sample = rng.random(n) < truth
        estimate = bootstrap_mean(sample, rng, n_resamples=500)
        covered += estimate.low <= truth <= estimate.high
    # coverage should be ~0.95; reject only if a binomial test says it is off at ALPHA
    assert stats.binomtest(covered, runs, 0.95).pvalue > ALPHA


def test_bootstrap_degenerate_inputs():
    rng = np.random.default_rng(0)
    assert math.isnan(bootstrap_mean(np.array([]), rng).value)
    single = bootstrap_mean(np.array([1.0]), rng)
    assert single.value == 1.0 and math.isnan(single.low)
    with_nan = bootstrap_mean(np.array([1.0, np.nan, 0.0]), rng)
    assert with_nan.value == 0.5 and with_nan.n == 2
    constant = bootstrap_mean(np.ones(10), rng)
    assert constant.low == constant.high == 1.0


def test_paired_difference_is_tighter_than_unpaired():
    rng = np.random.default_rng(1)
    difficulty = rng.random(200)
    a = (difficulty < 0.7).astype(float)
    b = (difficulty < 0.6).astype(float)
    paired = paired_difference(a, b, rng)
    assert paired.value == pytest.approx(a.mean() - b.mean())
    assert paired.low > 0  # every discordant task favours a
    with pytest.raises(ValueError, match="shape"):
        paired_difference(a, b[:10], rng)


def test_mcnemar_matches_the_exact_binomial_test():
    a = np.array([1] * 9 + [0] * 2 + [1] * 20, dtype=bool)
    b = np.array([0] * 9 + [1] * 2 + [1] * 20, dtype=bool)
    result = mcnemar(a, b)
    assert (result.only_a, result.only_b) == (9, 2)
    assert result.p_value == pytest.approx(stats.binomtest(2, 11, 0.5).pvalue)
    assert mcnemar(a, a).p_value == 1.0


def test_cost_per_success():
    assert cost_per_success(2.0, 4) == 0.5
    assert cost_per_success(2.0, 0) == math.inf
    assert math.isnan(cost_per_success(None, 3))
