"""Helpers for the SMC tests: one small tree problem with a known answer, and a run loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agentmc.smc import SMC, SMCConfig, SMCResult, TableValue, TreeModel, random_tree, solve_tree
from agentmc.smc.exact import TreeProblem, TreeSolution

#: The test tree: depth 3, two actions per node, 7 leaves (one finishes after 2 steps),
#: dense rewards in [0, 1], every leaf with prior probability >= 0.05.
TREE_SEED = 2
BETA = 1.0


@dataclass(frozen=True)
class Problem:
    tree: TreeProblem
    solution: TreeSolution
    critics: dict[str, TableValue | None]


def make_problem(beta: float = BETA) -> Problem:
    tree = random_tree(3, 2, np.random.default_rng(TREE_SEED), stop_probability=0.3)
    solution = solve_tree(tree, beta)
    noise = np.random.default_rng(99)
    bad = {node: float(noise.uniform(-3.0, 3.0)) for node in solution.soft_values}
    critics: dict[str, TableValue | None] = {
        "zero": None,
        "exact": TableValue(solution.soft_values),
        "bad": TableValue(bad),
    }
    return Problem(tree, solution, critics)


def run_many(
    tree: TreeProblem,
    config: SMCConfig,
    seeds: Sequence[int],
    critic=None,
) -> list[SMCResult]:
    """One SMC run per seed (each with a fresh model, so budgets start at zero), one event loop."""

    async def go() -> list[SMCResult]:
        return [
            await SMC(TreeModel(tree), config, np.random.default_rng(seed), critic).run()
            for seed in seeds
        ]

    return asyncio.run(go())
