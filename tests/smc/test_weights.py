from __future__ import annotations

import numpy as np
import pytest

from agentmc.smc.weights import (
    LogWeights,
    WeightError,
    effective_sample_size,
    log_mean_exp,
    logsumexp,
    normalise,
)


def test_logsumexp_matches_naive_and_survives_large_values():
    values = np.array([0.1, -2.0, 3.5])
    assert logsumexp(values) == pytest.approx(np.log(np.exp(values).sum()), rel=1e-14)
    assert logsumexp(values + 1000.0) == pytest.approx(logsumexp(values) + 1000.0, rel=1e-14)
    assert logsumexp([-np.inf, 0.0]) == 0.0
    assert logsumexp([-np.inf, -np.inf]) == -np.inf
    assert logsumexp([]) == -np.inf


def test_normalise_sums_to_one_and_equal_weights_are_exactly_equal():
    normalized = normalise([-1000.0, -1001.0, -np.inf])
    assert normalized.sum() == pytest.approx(1.0, abs=1e-15)
    assert normalized[2] == 0.0
    equal = normalise(np.full(7, 3.25))
    assert np.all(equal == equal[0])


def test_normalise_rejects_all_zero_weights():
    with pytest.raises(WeightError, match="largest log weight"):
        normalise([-np.inf, -np.inf])


def test_ess_bounds():
    assert effective_sample_size(np.zeros(5)) == pytest.approx(5.0)
    assert effective_sample_size([0.0, -np.inf, -np.inf]) == pytest.approx(1.0)
    ess = effective_sample_size(np.log([1.0, 2.0, 3.0]))
    assert 1.0 < ess < 3.0
    assert ess == pytest.approx(36.0 / 14.0)


def test_log_mean_exp():
    assert log_mean_exp(np.log([1.0, 2.0, 3.0])) == pytest.approx(np.log(2.0), rel=1e-14)


def test_log_weights_are_immutable_values():
    weights = LogWeights(np.array([0.0, 1.0]))
    with pytest.raises(ValueError):
        weights.log_w[0] = 5.0
    with pytest.raises(AttributeError):
        weights.log_w = np.zeros(2)  # type: ignore[misc]
    updated = weights.add([1.0, 1.0])
    assert updated is not weights
    assert weights.log_w.tolist() == [0.0, 1.0]
    assert updated.log_w.tolist() == [1.0, 2.0]
    assert weights.add_at([1], 2.0).log_w.tolist() == [0.0, 3.0]
    assert not weights.normalized.flags.writeable


def test_log_weights_copy_their_input():
    source = np.zeros(3)
    weights = LogWeights(source)
    source[0] = 9.0
    assert weights.log_w[0] == 0.0


def test_log_weights_cached_quantities():
    weights = LogWeights(np.log([1.0, 1.0, 2.0, 4.0]))
    assert weights.normalized.tolist() == pytest.approx([0.125, 0.125, 0.25, 0.5])
    assert weights.log_mean == pytest.approx(np.log(2.0))
    assert weights.log_sum == pytest.approx(np.log(8.0))
    assert weights.ess == pytest.approx(1.0 / (2 * 0.125**2 + 0.25**2 + 0.5**2))


@pytest.mark.parametrize("bad", [[np.nan, 0.0], [np.inf, 0.0], [], [[0.0]]])
def test_log_weights_reject_bad_values(bad):
    with pytest.raises(WeightError):
        LogWeights(np.array(bad, dtype=float))
