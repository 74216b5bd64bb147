from __future__ import annotations

import numpy as np
import pytest

from agentmc.errors import ConfigError, DataError, UnknownNameError
from agentmc.rl.advantages import group_advantages, rloo_advantages
from agentmc.rl.estimators import ESTIMATORS, EstimatorConfig, estimate
from agentmc.rl.graph import Episode, anchor_advantages, build_graph, edge_advantages


def ep(states, actions, rewards, task="t", terminated=True):
    return Episode(task, tuple(states), tuple(actions), np.asarray(rewards, float), terminated)


def batch():
    g1 = [ep("abc", "xy", [0, 1]), ep("abd", "xz", [0, 0]), ep("ae", "w", [1])]
    g2 = [ep("pq", "x", [1], task="u"), ep("pr", "y", [0], task="u")]
    return [g1, g2]


def test_grpo_and_rloo_broadcast_the_trajectory_advantage():
    groups = batch()
    returns = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, np.nan]])
    for name, expected in (("grpo", group_advantages(returns)), ("rloo", rloo_advantages(returns))):
        out = estimate(groups, name)
        for row, result in enumerate(out):
            for i, steps in enumerate(result.steps):
                assert np.all(steps == expected[row, i])
            assert result.n_nan == 0


def test_g2po_and_gigpo_add_the_weighted_step_part():
    groups = batch()
    config = EstimatorConfig(step_weight=0.5, gamma=0.9)
    trajectory = group_advantages(np.array([[1.0, 0.0, 1.0], [1.0, 0.0, np.nan]]))
    g2po = estimate(groups, "g2po", config)
    gigpo = estimate(groups, "gigpo", config)
    for row, group in enumerate(groups):
        edge = edge_advantages(build_graph(group, gamma=0.9), eps=config.eps)
        anchor = anchor_advantages(group, gamma=0.9, eps=config.eps)
        for i in range(len(group)):
            np.testing.assert_allclose(g2po[row].steps[i], trajectory[row, i] + 0.5 * edge[i])
            np.testing.assert_allclose(gigpo[row].steps[i], trajectory[row, i] + 0.5 * anchor[i])
    assert g2po[0].stats["n_nodes"] == 5 and g2po[0].stats["n_edges"] == 4
    assert gigpo[0].stats["grouped_fraction"] == 1.0  # a x3, b x2
    assert gigpo[0].stats["n_step_groups"] == 2


def test_step_weight_zero_reduces_g2po_and_gigpo_to_grpo():
    groups = batch()
    config = EstimatorConfig(step_weight=0.0)
    grpo = estimate(groups, "grpo", config)
    for name in ("g2po", "gigpo"):
        for a, b in zip(estimate(groups, name, config), grpo, strict=True):
            for x, y in zip(a.steps, b.steps, strict=True):
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_nan_rewards_are_zero_and_counted(name):
    group = [ep("ab", "x", [1]), ep("ac", "y", [0]), ep("ab", "x", [np.nan])]
    [result] = estimate([group], name)
    assert result.n_nan == 1
    assert np.all(result.steps[2] == 0)
    assert np.all(np.isfinite(np.concatenate(result.steps)))


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_degenerate_groups(name):
    # all rewards equal, gamma = 1: nothing to prefer
    [same] = estimate([[ep("ab", "x", [1]), ep("acb", "yx", [0, 1])]], name)
    assert all(np.all(s == 0) for s in same.steps)
    # a single trajectory without revisits has no baseline
    [single] = estimate([[ep("abcd", "xyz", [0, 0, 1], terminated=False)]], name)
    assert all(np.all(s == 0) for s in single.steps)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_bad_groups_and_names(name):
    with pytest.raises(DataError, match="empty group"):
        estimate([[]], name)
    with pytest.raises(DataError, match="one task"):
        estimate([[ep("ab", "x", [1], task="a"), ep("ab", "x", [1], task="b")]], name)


def test_unknown_estimator_and_bad_config():
    with pytest.raises(UnknownNameError, match="g2po"):
        estimate(batch(), "ppo")
    for kwargs in (
        {"gamma": 1.5},
        {"step_weight": -1},
        {"scale": "x"},
        {"anchor_scale": "x"},
        {"eps": -1},
    ):
        with pytest.raises(ConfigError):
            EstimatorConfig(**kwargs)
