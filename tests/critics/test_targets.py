from __future__ import annotations

import numpy as np
import pytest

from agentmc.critics.baselines import ConstantCritic
from agentmc.critics.core import History
from agentmc.critics.targets import make_examples, returns_to_go, td_lambda_returns
from agentmc.data.trajectory import Trajectory, Turn
from agentmc.errors import ConfigError, DataError


def loop_returns(rewards, gamma, bootstrap=0.0):
    n = len(rewards)
    return np.array(
        [
            sum(gamma ** (k - t) * rewards[k] for k in range(t, n)) + gamma ** (n - t) * bootstrap
            for t in range(n)
        ]
    )


def loop_td_lambda(rewards, values, gamma, lam, bootstrap):
    """Reference: lambda-return as the weighted sum of n-step returns."""
    n = len(rewards)
    v = np.array(values, dtype=float)
    if not bootstrap:
        v[n] = 0.0
    out = []
    for t in range(n):
        horizon = n - t

        def n_step(k, t=t):
            return sum(gamma**i * rewards[t + i] for i in range(k)) + gamma**k * v[t + k]

        total = sum((1 - lam) * lam ** (k - 1) * n_step(k) for k in range(1, horizon))
        total += lam ** (horizon - 1) * n_step(horizon)
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("gamma", [1.0, 0.9, 0.0])
def test_returns_to_go_matches_loop(gamma):
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=7)
    np.testing.assert_allclose(returns_to_go(rewards, gamma), loop_returns(rewards, gamma))
    np.testing.assert_allclose(
        returns_to_go(rewards, gamma, bootstrap=2.0), loop_returns(rewards, gamma, 2.0)
    )


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
@pytest.mark.parametrize("bootstrap", [False, True])
def test_td_lambda_matches_n_step_reference(lam, bootstrap):
    rng = np.random.default_rng(1)
    rewards, values = rng.normal(size=6), rng.normal(size=7)
    np.testing.assert_allclose(
        td_lambda_returns(rewards, values, 0.9, lam, bootstrap),
        loop_td_lambda(rewards, values, 0.9, lam, bootstrap),
    )


def test_td_lambda_one_is_monte_carlo():
    rewards, values = np.array([0.0, 0.5, 1.0]), np.array([9.0, 9.0, 9.0, 3.0])
    np.testing.assert_allclose(td_lambda_returns(rewards, values, 1.0, 1.0), [1.5, 1.5, 1.0])
    np.testing.assert_allclose(
        td_lambda_returns(rewards, values, 1.0, 1.0, bootstrap=True), [4.5, 4.5, 4.0]
    )


def traj(task_id, rewards, *, success, truncated=False, error=None, env_id="e"):
    turns = []
    for i, r in enumerate(rewards):
        last = i == len(rewards) - 1
        turns.append(
            Turn(
                reply=f"a{i}",
                action=f"a{i}",
                observation=f"o{i}",
                reward=r,
                terminated=last and not truncated and error is None,
                truncated=last and truncated,
            )
        )
    return Trajectory(
        env_id, task_id, f"task {task_id}", tuple(turns), "p", True, success, error=error
    )


def test_one_example_per_state_before_each_turn():
    data = [traj("a", [0.0, 0.0, 1.0], success=True), traj("b", [0.0, 0.0], success=False)]
    ex = make_examples(data)
    assert len(ex) == 5
    np.testing.assert_array_equal(ex.steps, [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(ex.targets, [1, 1, 1, 0, 0])
    assert ex.task_ids == ["a", "a", "a", "b", "b"]
    assert ex.histories[0] == History("task a", ())
    assert ex.histories[2].n_turns == 2
    assert ex.histories[2] == History.from_trajectory(data[0], 2)
    ex_success = make_examples(data, "success")
    np.testing.assert_array_equal(ex_success.targets, [1, 1, 1, 0, 0])


def test_truncation_and_incomplete_episodes():
    data = [
        traj("a", [0.5, 0.0], success=False, truncated=True),
        traj("b", [0.0, 1.0], success=True),
        traj("c", [0.0], success=False, error="policy failed"),
    ]
    ex = make_examples(data)
    assert ex.skipped == {"incomplete": 1}
    np.testing.assert_array_equal(ex.targets, [0.5, 0.0, 1.0, 1.0])
    dropped = make_examples(data, truncation="drop")
    assert dropped.skipped == {"incomplete": 1, "truncated": 1}
    assert set(dropped.task_ids) == {"b"}
    # TD(lambda=1) bootstraps with the critic's value only at the truncation.
    td = make_examples(data, "td", critic=ConstantCritic(10.0), lam=1.0)
    np.testing.assert_array_equal(td.targets, [10.5, 10.0, 1.0, 1.0])


def test_bad_inputs():
    with pytest.raises(DataError, match="no trajectories"):
        make_examples([])
    mixed = [traj("a", [1.0], success=True), traj("b", [1.0], success=True, env_id="other")]
    with pytest.raises(DataError, match="several environments"):
        make_examples(mixed)
    with pytest.raises(ConfigError, match="needs a critic"):
        make_examples(mixed[:1], "td")
    with pytest.raises(ConfigError, match="gamma"):
        make_examples(mixed[:1], gamma=1.5)
