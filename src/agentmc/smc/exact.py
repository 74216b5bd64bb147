"""Exact answers for tiny problems: the oracle that SMC's statistical tests compare against.

A :class:`TreeProblem` is a small tree of action sequences with known prior
probabilities and rewards (per edge). Leaves are the finished trajectories.
:func:`solve_tree` enumerates every leaf ``tau`` and returns

- the prior ``p(tau)`` and the return ``R(tau)``;
- the target ``pi*(tau) = p(tau) exp(R(tau) / beta) / Z``;
- the normalising constant ``Z = E_p[exp(R / beta)]``;
- the exact soft value of every node ``h``:
  ``V*(h) = beta log E_p[exp((R(tau) - R(h)) / beta) | h]`` (0 at leaves).

:class:`TreeModel` is the same problem as an SMC particle model and
:class:`TableValue` a critic read from a table (exact, flipped, or arbitrary),
so tests run the real sampler on a problem whose answer is known.

Example:
    >>> import numpy as np
    >>> problem = random_tree(depth=2, branching=2, rng=np.random.default_rng(0))
    >>> solution = solve_tree(problem, beta=1.0)
    >>> bool(np.isclose(solution.target.sum(), 1.0))
    True
    >>> bool(np.isclose(solution.z, float(np.sum(solution.prior * np.exp(solution.returns)))))
    True
    >>> bool(np.isclose(solution.soft_values[()], solution.beta * np.log(solution.z)))
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmc.errors import ConfigError
from agentmc.smc.model import Spend
from agentmc.smc.sampler import check_beta
from agentmc.smc.weights import logsumexp
from agentmc.types import BoolArray, FloatArray

Prefix = tuple[int, ...]


@dataclass(frozen=True)
class TreeProblem:
    """A tiny discrete sequential problem.

    Attributes:
        children: ``prefix -> ((probability, reward), ...)``, one pair per action
            ``0, 1, ...``: taking action ``a`` after ``prefix`` has prior
            probability ``children[prefix][a][0]`` and earns reward
            ``children[prefix][a][1]``. A prefix that is not a key is a leaf
            (the trajectory has finished). The root ``()`` must be a key.
    """

    children: Mapping[Prefix, tuple[tuple[float, float], ...]]

    def __post_init__(self) -> None:
        if () not in self.children:
            raise ConfigError("a TreeProblem needs children for the root prefix ()")
        for prefix, edges in self.children.items():
            probabilities = np.array([probability for probability, _ in edges])
            if probabilities.size == 0 or np.any(probabilities <= 0):
                raise ConfigError(f"node {prefix}: probabilities must be positive")
            if not np.isclose(probabilities.sum(), 1.0, rtol=0, atol=1e-12):
                raise ConfigError(f"node {prefix}: probabilities sum to {probabilities.sum()}")

    def is_leaf(self, prefix: Prefix) -> bool:
        return prefix not in self.children

    @property
    def depth(self) -> int:
        """Length of the longest trajectory."""
        return 1 + max(len(prefix) for prefix in self.children)

    def leaves(self) -> list[Prefix]:
        """Every finished trajectory, in lexicographic order."""
        found: list[Prefix] = []
        stack: list[Prefix] = [()]
        while stack:
            prefix = stack.pop()
            if self.is_leaf(prefix):
                found.append(prefix)
            else:
                stack.extend(prefix + (action,) for action in range(len(self.children[prefix])))
        return sorted(found)

    def path_log_prior_and_return(self, path: Prefix) -> tuple[float, float]:
        """``(log p(path), R(path))`` for a prefix or leaf."""
        log_prior, total = 0.0, 0.0
        for depth, action in enumerate(path):
            probability, reward = self.children[path[:depth]][action]
            log_prior += float(np.log(probability))
            total += reward
        return log_prior, total


def random_tree(
    depth: int,
    branching: int,
    rng: np.random.Generator,
    *,
    stop_probability: float = 0.25,
    reward_scale: float = 1.0,
    sparse: bool = False,
) -> TreeProblem:
    """A random tree for tests: Dirichlet prior probabilities, random rewards, early stops.

    Args:
        depth: Maximum trajectory length.
        branching: Actions per node.
        rng: Generator.
        stop_probability: Chance that a non-root node below the maximum depth is a leaf.
        reward_scale: Rewards are uniform on ``[0, reward_scale]``.
        sparse: If true, only edges into leaves earn a reward (like task success).

    Returns:
        The problem.
    """
    if depth < 1 or branching < 1:
        raise ConfigError(f"depth and branching must be >= 1, got {depth}, {branching}")
    children: dict[Prefix, tuple[tuple[float, float], ...]] = {}
    frontier: list[Prefix] = [()]
    while frontier:
        prefix = frontier.pop(0)
        probabilities = rng.dirichlet(np.ones(branching))
        probabilities = np.maximum(probabilities, 1e-3)
        probabilities /= probabilities.sum()
        edges = []
        for action in range(branching):
            child = prefix + (action,)
            leaf = len(child) >= depth or rng.random() < stop_probability
            reward = float(rng.uniform(0.0, reward_scale)) if (leaf or not sparse) else 0.0
            edges.append((float(probabilities[action]), reward))
            if not leaf:
                frontier.append(child)
        children[prefix] = tuple(edges)
    return TreeProblem(children)


@dataclass(frozen=True)
class TreeSolution:
    """The exact target of a :class:`TreeProblem` at temperature ``beta``.

    Attributes:
        problem: The tree.
        beta: Temperature.
        leaves: Every finished trajectory, in lexicographic order, length L.
        prior: ``p(tau)``, shape ``(L,)``.
        returns: ``R(tau)``, shape ``(L,)``.
        target: ``pi*(tau) ∝ p(tau) exp(R(tau) / beta)``, shape ``(L,)``.
        log_z: ``log Z = log E_p[exp(R / beta)]``.
        soft_values: ``V*(h)`` for every node (leaves: 0).
        index: ``leaf -> position`` in :attr:`leaves`.
    """

    problem: TreeProblem
    beta: float
    leaves: tuple[Prefix, ...]
    prior: FloatArray
    returns: FloatArray
    target: FloatArray
    log_z: float
    soft_values: Mapping[Prefix, float]
    index: Mapping[Prefix, int]

    @property
    def z(self) -> float:
        return float(np.exp(self.log_z))

    def expectation(self, values: FloatArray) -> float:
        """``E_pi*[f]`` for ``f`` given per leaf, shape ``(L,)``."""
        return float(np.dot(self.target, values))

    def running_log_z(self, values: Mapping[Prefix, float], depth: int) -> float:
        """``log E_p[exp((R(h_t) + V(h_t)) / beta)]`` over the nodes ``h_t`` reached at step ``t``.

        A trajectory that finished before ``depth`` counts with its leaf and
        ``V = 0``. With ``values = soft_values`` this equals :attr:`log_z` at every depth.

        Args:
            values: ``V(h)`` for every internal node at that depth.
            depth: The step ``t``.
        """
        nodes = sorted({leaf[:depth] for leaf in self.leaves})
        terms = []
        for node in nodes:
            log_prior, reward = self.problem.path_log_prior_and_return(node)
            value = 0.0 if self.problem.is_leaf(node) else values[node]
            terms.append(log_prior + (reward + value) / self.beta)
        return logsumexp(terms)


def solve_tree(problem: TreeProblem, beta: float) -> TreeSolution:
    """Enumerate ``problem`` and return its exact target, Z and soft values.

    Args:
        problem: The tree.
        beta: Temperature, > 0.

    Returns:
        The :class:`TreeSolution`.
    """
    beta = check_beta(beta)
    leaves = tuple(problem.leaves())
    pairs = [problem.path_log_prior_and_return(leaf) for leaf in leaves]
    log_prior = np.array([log_p for log_p, _ in pairs])
    returns = np.array([total for _, total in pairs])
    log_target = log_prior + returns / beta
    log_z = logsumexp(log_target)
    soft_values: dict[Prefix, float] = {}
    for node in list(problem.children) + list(leaves):
        below = [i for i, leaf in enumerate(leaves) if leaf[: len(node)] == node]
        node_log_prior, node_return = problem.path_log_prior_and_return(node)
        soft_values[node] = beta * logsumexp(
            log_prior[below] - node_log_prior + (returns[below] - node_return) / beta
        )
    for leaf in leaves:
        soft_values[leaf] = 0.0
    return TreeSolution(
        problem=problem,
        beta=beta,
        leaves=leaves,
        prior=np.exp(log_prior),
        returns=returns,
        target=np.exp(log_target - log_z),
        log_z=log_z,
        soft_values=soft_values,
        index={leaf: i for i, leaf in enumerate(leaves)},
    )


@dataclass(frozen=True)
class TreeState:
    """A particle on a tree: the actions taken so far and the reward they earned."""

    prefix: Prefix
    total_return: float = 0.0


class TreeModel:
    """A :class:`TreeProblem` as an SMC particle model (prior moves sampled from the tree).

    Args:
        problem: The tree.

    Attributes:
        calls: Number of particle moves proposed so far (its "policy calls").
    """

    def __init__(self, problem: TreeProblem) -> None:
        self.problem = problem
        self.calls = 0
        self._cumulative = {
            prefix: np.cumsum([probability for probability, _ in edges])
            for prefix, edges in problem.children.items()
        }

    def initial(self, n_particles: int, rng: np.random.Generator) -> list[TreeState]:
        root = TreeState(())
        return [root] * n_particles

    async def propose(
        self, t: int, states: Sequence[TreeState], rng: np.random.Generator
    ) -> list[TreeState]:
        uniforms = rng.random(len(states))
        moved = []
        for state, uniform in zip(states, uniforms, strict=True):
            cumulative = self._cumulative[state.prefix]
            action = min(
                int(np.searchsorted(cumulative, uniform * cumulative[-1], side="right")),
                cumulative.size - 1,
            )
            reward = self.problem.children[state.prefix][action][1]
            moved.append(TreeState(state.prefix + (action,), state.total_return + reward))
        self.calls += len(states)
        return moved

    def returns(self, states: Sequence[TreeState]) -> FloatArray:
        return np.array([state.total_return for state in states], dtype=np.float64)

    def is_done(self, states: Sequence[TreeState]) -> BoolArray:
        return np.array([self.problem.is_leaf(state.prefix) for state in states], dtype=bool)

    def spent(self) -> Spend:
        return Spend(calls=self.calls)


class TableValue:
    """A critic read from a table ``prefix -> V(h)`` (missing prefixes: ``default``).

    ``TableValue(solution.soft_values)`` is the exact soft value; negating the
    table or filling it with noise gives deliberately bad critics.
    """

    def __init__(self, table: Mapping[Prefix, float], default: float = 0.0) -> None:
        self.table = dict(table)
        self.default = float(default)

    async def values(self, t: int, states: Sequence[Any]) -> FloatArray:
        return np.array(
            [self.table.get(state.prefix, self.default) for state in states], dtype=np.float64
        )
