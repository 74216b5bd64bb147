"""The oracle itself, checked by hand and by its defining recursions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentmc.errors import ConfigError
from agentmc.smc.exact import TableValue, TreeModel, TreeProblem, TreeState, random_tree, solve_tree


def hand_tree() -> TreeProblem:
    # root: action 0 (p=0.25, r=1) ends; action 1 (p=0.75, r=0) leads to a node with
    # action 0 (p=0.5, r=2) and action 1 (p=0.5, r=0), both ending.
    return TreeProblem({(): ((0.25, 1.0), (0.75, 0.0)), (1,): ((0.5, 2.0), (0.5, 0.0))})


def test_hand_computed_answer():
    beta = 2.0
    solution = solve_tree(hand_tree(), beta)
    assert solution.leaves == ((0,), (1, 0), (1, 1))
    assert solution.prior.tolist() == pytest.approx([0.25, 0.375, 0.375])
    assert solution.returns.tolist() == [1.0, 2.0, 0.0]
    z = 0.25 * math.e**0.5 + 0.375 * math.e + 0.375
    assert solution.z == pytest.approx(z)
    assert solution.target.tolist() == pytest.approx(
        [0.25 * math.e**0.5 / z, 0.375 * math.e / z, 0.375 / z]
    )
    assert solution.soft_values[(1,)] == pytest.approx(beta * math.log(0.5 * math.e + 0.5))
    assert solution.soft_values[()] == pytest.approx(beta * math.log(z))
    assert solution.soft_values[(0,)] == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_soft_value_satisfies_the_soft_bellman_recursion(seed):
    beta = 0.7
    problem = random_tree(4, 3, np.random.default_rng(seed), stop_probability=0.2)
    solution = solve_tree(problem, beta)
    for node, edges in problem.children.items():
        backed_up = beta * math.log(
            sum(
                probability * math.exp((reward + solution.soft_values[node + (action,)]) / beta)
                for action, (probability, reward) in enumerate(edges)
            )
        )
        assert solution.soft_values[node] == pytest.approx(backed_up, rel=1e-12, abs=1e-12)
    assert solution.prior.sum() == pytest.approx(1.0)
    for depth in range(1, problem.depth + 1):
        assert solution.running_log_z(solution.soft_values, depth) == pytest.approx(solution.log_z)


def test_bad_trees_are_rejected():
    with pytest.raises(ConfigError, match="root"):
        TreeProblem({(0,): ((1.0, 0.0),)})
    with pytest.raises(ConfigError, match="sum to"):
        TreeProblem({(): ((0.5, 0.0), (0.6, 0.0))})
    with pytest.raises(ConfigError, match="positive"):
        TreeProblem({(): ((1.0, 0.0), (0.0, 0.0))})


def test_tree_model_samples_the_prior():
    import asyncio

    problem = hand_tree()
    model = TreeModel(problem)
    rng = np.random.default_rng(0)
    states = asyncio.run(model.propose(1, [TreeState(())] * 4000, rng))
    share = np.mean([state.prefix == (0,) for state in states])
    assert share == pytest.approx(0.25, abs=0.03)
    assert model.spent().calls == 4000
    assert model.is_done([TreeState((0,)), TreeState((1,))]).tolist() == [True, False]
    table = TableValue({(1,): 2.5})
    assert asyncio.run(table.values(1, [TreeState((1,)), TreeState((0,))])).tolist() == [2.5, 0.0]
