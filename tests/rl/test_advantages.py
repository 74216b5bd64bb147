from __future__ import annotations

import numpy as np
import pytest
from rl_reference import gae_ref, group_advantages_ref, returns_ref, rloo_ref

from agentmc.errors import ConfigError
from agentmc.rl.advantages import (
    discounted_returns,
    gae,
    group_advantages,
    rloo_advantages,
)


def random_rewards(rng, nan_rate=0.1):
    g, k = rng.integers(1, 5), rng.integers(1, 7)
    rewards = rng.choice([0.0, 1.0, 0.5, -1.0], size=(g, k)) + rng.normal(
        0, 0.1, (g, k)
    ) * rng.integers(0, 2)
    rewards[rng.random((g, k)) < nan_rate] = np.nan
    return rewards


def test_grpo_hand_computed():
    # mean 0.5, unbiased std sqrt(1/3) for [1, 0, 0, 1]
    out = group_advantages([[1.0, 0.0, 0.0, 1.0]], eps=0.0)
    np.testing.assert_allclose(out, [[0.8660254, -0.8660254, -0.8660254, 0.8660254]], rtol=1e-6)
    np.testing.assert_allclose(group_advantages([[2.0, 4.0]], scale="none"), [[-1.0, 1.0]])


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_grpo_equals_loop_reference(scale):
    for seed in range(200):
        rng = np.random.default_rng(seed)
        rewards = random_rewards(rng)
        weights = rng.uniform(0, 2, rewards.shape) * (rng.random(rewards.shape) > 0.1)
        np.testing.assert_allclose(
            group_advantages(rewards, scale=scale), group_advantages_ref(rewards, scale), atol=1e-9
        )
        np.testing.assert_allclose(
            group_advantages(rewards, scale=scale, weights=weights),
            group_advantages_ref(rewards, scale, weights),
            atol=1e-9,
        )


def test_uniform_weights_equal_plain_grpo():
    rng = np.random.default_rng(1)
    rewards = rng.normal(size=(4, 8))
    plain = group_advantages(rewards)
    for constant in (1.0, 0.3, 17.0):
        np.testing.assert_allclose(group_advantages(rewards, weights=np.full(8, constant)), plain)


def test_nan_reward_gets_zero_and_is_left_out_of_the_statistics():
    with_nan = group_advantages([[1.0, np.nan, 0.0]])
    without = group_advantages([[1.0, 0.0]])
    assert with_nan[0, 1] == 0.0
    np.testing.assert_allclose(with_nan[0, [0, 2]], without[0])
    assert np.all(group_advantages([[np.nan, np.nan]]) == 0.0)
    assert np.all(rloo_advantages([[np.nan, 1.0]]) == 0.0)


def test_degenerate_groups_give_zero():
    assert np.all(group_advantages([[0.7, 0.7, 0.7]]) == 0.0)
    assert np.all(group_advantages([[0.7]]) == 0.0)
    assert np.all(rloo_advantages([[0.7]]) == 0.0)
    assert np.all(rloo_advantages([[1.0, 1.0]]) == 0.0)


def test_rloo_equals_reference_and_scaled_grpo():
    for seed in range(200):
        rewards = random_rewards(np.random.default_rng(seed))
        np.testing.assert_allclose(rloo_advantages(rewards), rloo_ref(rewards), atol=1e-12)
    rewards = np.random.default_rng(0).normal(size=(3, 5))
    np.testing.assert_allclose(
        rloo_advantages(rewards), 5 / 4 * group_advantages(rewards, scale="none"), atol=1e-12
    )


def test_returns_and_gae_equal_loop_reference():
    for seed in range(100):
        rng = np.random.default_rng(seed)
        n, horizon = rng.integers(1, 5), rng.integers(1, 9)
        lengths = rng.integers(0, horizon + 1, n)
        mask = np.arange(horizon)[None, :] < lengths[:, None]
        rewards = rng.normal(size=(n, horizon))
        values = rng.normal(size=(n, horizon))
        bootstrap = rng.normal(size=n)
        gamma, lam = rng.uniform(0.5, 1.0), rng.uniform(0.0, 1.0)
        got = discounted_returns(rewards, gamma=gamma, mask=mask)
        got_gae = gae(rewards, values, gamma=gamma, lam=lam, mask=mask, bootstrap=bootstrap)
        for i in range(n):
            length = lengths[i]
            np.testing.assert_allclose(got[i, :length], returns_ref(rewards[i, :length], gamma))
            np.testing.assert_allclose(
                got_gae[i, :length],
                gae_ref(rewards[i, :length], values[i, :length], gamma, lam, bootstrap[i]),
            )
            assert np.all(got[i, length:] == 0) and np.all(got_gae[i, length:] == 0)


def test_gae_with_lambda_one_is_returns_minus_values():
    rng = np.random.default_rng(3)
    rewards, values = rng.normal(size=(2, 6)), rng.normal(size=(2, 6))
    np.testing.assert_allclose(
        gae(rewards, values, gamma=0.9, lam=1.0),
        discounted_returns(rewards, gamma=0.9) - values,
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: group_advantages([1.0, 2.0]),
        lambda: group_advantages([[1.0, 2.0]], scale="global"),
        lambda: group_advantages([[1.0, 2.0]], weights=[-1.0, 1.0]),
        lambda: group_advantages([[1.0, 2.0]], eps=-1.0),
        lambda: discounted_returns([[1.0]], gamma=1.5),
        lambda: discounted_returns([[1.0]], mask=[[True, False]]),
        lambda: gae([[1.0]], [[1.0, 2.0]]),
        lambda: gae([[1.0]], [[1.0]], lam=2.0),
    ],
)
def test_bad_input_is_a_config_error(call):
    with pytest.raises(ConfigError):
        call()
