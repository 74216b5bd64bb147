"""Resampler properties (style.md habit 19). Statistical checks declare ALPHA."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agentmc.errors import UnknownNameError
from agentmc.smc.resampling import (
    RESAMPLERS,
    get_resampler,
    offspring_counts,
    systematic,
)
from agentmc.smc.weights import WeightError

ALPHA = 1e-4
LOW_VARIANCE = ["systematic", "stratified", "residual"]


def random_weights(rng: np.random.Generator, n: int) -> np.ndarray:
    weights = rng.dirichlet(np.full(n, 0.7))
    return weights / weights.sum()


def test_registry_lists_names_on_error():
    assert set(RESAMPLERS) == {"multinomial", "stratified", "systematic", "residual"}
    with pytest.raises(UnknownNameError, match="multinomial, residual, stratified, systematic"):
        get_resampler("sytematic")


@pytest.mark.parametrize("name", sorted(RESAMPLERS))
@pytest.mark.parametrize("m", [None, 1, 3, 17])
def test_shape_range_and_dtype(name, m):
    rng = np.random.default_rng(0)
    weights = random_weights(rng, 6)
    ancestors = get_resampler(name)(weights, rng, m)
    assert ancestors.shape == ((6,) if m is None else (m,))
    assert ancestors.dtype == np.int64
    assert ancestors.min() >= 0 and ancestors.max() < 6


@pytest.mark.parametrize("name", sorted(RESAMPLERS))
def test_zero_weight_particles_are_never_chosen(name):
    rng = np.random.default_rng(1)
    weights = np.array([0.0, 0.5, 0.0, 0.5, 0.0])
    for _ in range(200):
        ancestors = get_resampler(name)(weights, rng, 5)
        assert set(ancestors.tolist()) <= {1, 3}


def test_systematic_counts_are_floor_or_ceil():
    rng = np.random.default_rng(2)
    for _ in range(500):
        n = int(rng.integers(1, 40))
        m = int(rng.integers(1, 60))
        weights = random_weights(rng, n)
        counts = offspring_counts(systematic(weights, rng, m), n)
        expected = m * weights
        assert counts.sum() == m
        assert np.all(counts >= np.floor(expected - 1e-9))
        assert np.all(counts <= np.ceil(expected + 1e-9))


@pytest.mark.parametrize("name", LOW_VARIANCE)
@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 64, 100, 1024])
def test_equal_weights_keep_every_particle_once(name, n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        weights = np.full(n, 1.0 / n)
        counts = offspring_counts(get_resampler(name)(weights, rng, n), n)
        assert np.all(counts == 1)


def test_multinomial_does_not_keep_equal_weights():
    rng = np.random.default_rng(3)
    counts = offspring_counts(get_resampler("multinomial")(np.full(8, 0.125), rng, 8), 8)
    assert not np.all(counts == 1)


@pytest.mark.parametrize("name", sorted(RESAMPLERS))
def test_mean_counts_are_unbiased(name):
    rng = np.random.default_rng(4)
    weights = random_weights(rng, 7)
    m, n_draws = 9, 20000
    counts = np.array(
        [offspring_counts(get_resampler(name)(weights, rng, m), 7) for _ in range(n_draws)]
    )
    means, sds = counts.mean(axis=0), counts.std(axis=0, ddof=1)
    random_part = sds > 0
    z = (means - m * weights)[random_part] / (sds[random_part] / np.sqrt(n_draws))
    critical = stats.norm.ppf(1 - ALPHA / (2 * 7))  # Bonferroni over the 7 particles
    assert np.all(np.abs(z) < critical), z
    # Components with no randomness must be exactly m * W (an integer).
    assert np.allclose(means[~random_part], m * weights[~random_part])


@pytest.mark.parametrize("name", LOW_VARIANCE)
def test_low_variance_schemes_do_not_exceed_multinomial_variance(name):
    rng = np.random.default_rng(5)
    n, m, n_draws = 10, 10, 4000
    for _ in range(5):
        weights = random_weights(rng, n)
        counts = np.array(
            [offspring_counts(get_resampler(name)(weights, rng, m), n) for _ in range(n_draws)]
        )
        variance = counts.var(axis=0, ddof=1)
        multinomial_variance = m * weights * (1 - weights)
        # Per particle, with slack for sampling error of the variance estimate.
        assert np.all(variance <= multinomial_variance * 1.15 + 1e-12)
        # In total, clearly below (these schemes exist to reduce it).
        assert variance.sum() < 0.8 * multinomial_variance.sum()


@pytest.mark.parametrize("name", sorted(RESAMPLERS))
def test_bad_weights_raise(name):
    resample = get_resampler(name)
    rng = np.random.default_rng(0)
    with pytest.raises(WeightError):
        resample(np.array([0.0, 0.0]), rng, None)
    with pytest.raises(WeightError):
        resample(np.array([np.nan, 1.0]), rng, None)
    with pytest.raises(WeightError):
        resample(np.array([-0.5, 1.5]), rng, None)
    with pytest.raises(ValueError):
        resample(np.array([0.5, 0.5]), rng, 0)


@pytest.mark.parametrize("name", sorted(RESAMPLERS))
def test_same_seed_same_ancestors(name):
    weights = random_weights(np.random.default_rng(6), 12)
    first = get_resampler(name)(weights, np.random.default_rng(7), None)
    second = get_resampler(name)(weights, np.random.default_rng(7), None)
    assert first.tolist() == second.tolist()
