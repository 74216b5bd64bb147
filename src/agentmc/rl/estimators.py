"""Per-step advantage estimators behind one registry: GRPO, RLOO, G2PO, GiGPO.

Each estimator takes a batch of groups (each group: the episodes of one task)
and returns, per group, one advantage per step of every episode. All of them
share the trajectory-level part, GRPO's group-relative return (RLOO's
leave-one-out for ``"rloo"``); the graph estimators add a step-level part:

=========  ===============================================================
``grpo``   ``A[i, t] = A_traj[i]``
``rloo``   ``A[i, t] = r_i - mean_{j != i} r_j``
``g2po``   ``A[i, t] = A_traj[i] + step_weight * A_edge[i, t]`` (graph TD error)
``gigpo``  ``A[i, t] = A_traj[i] + step_weight * A_anchor[i, t]`` (same-state group)
=========  ===============================================================

Recorded trajectories become groups with :func:`group_trajectories`. Episodes
whose rewards contain NaN (unscorable) get advantage 0 on every step
and are counted in :attr:`StepAdvantages.n_nan`; see :mod:`agentmc.rl.advantages`.

Example:
    >>> import numpy as np
    >>> from agentmc.rl.graph import Episode
    >>> group = [Episode("t", ("s", "win"), ("a",), np.array([1.0])),
    ...          Episode("t", ("s", "lose"), ("b",), np.array([0.0]))]
    >>> [out] = estimate([group], "grpo", EstimatorConfig(eps=0.0))
    >>> [a.round(4).tolist() for a in out.steps]
    [[0.7071], [-0.7071]]
    >>> sorted(ESTIMATORS)
    ['g2po', 'gigpo', 'grpo', 'rloo']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from agentmc._arrays import lookup
from agentmc.data.trajectory import Trajectory
from agentmc.errors import ConfigError, UnknownNameError
from agentmc.rl.advantages import SCALES, Scale, group_advantages, rloo_advantages
from agentmc.rl.graph import (
    AnchorScale,
    Episode,
    anchor_advantages,
    batch_edge_advantages,
    check_group,
    flat_edge_advantages,
)
from agentmc.rl.states import StateSpace, column_state_ids, normalize_text, state_keys
from agentmc.types import FloatArray, IntArray


@dataclass(frozen=True)
class EstimatorConfig:
    """Settings shared by the step estimators."""

    gamma: float = 1.0
    """Discount for returns-to-go and TD errors (G2PO, GiGPO), in [0, 1]."""
    step_weight: float = 1.0
    """Weight of the step-level part: A = A_traj + step_weight * A_step (G2PO, GiGPO)."""
    scale: Scale = "group"
    """Std dividing the trajectory-level GRPO part: group, batch or none (Dr. GRPO)."""
    anchor_scale: AnchorScale = "mean_std"
    """GiGPO step groups: centre only ("mean") or centre and divide by std ("mean_std")."""
    eps: float = 1e-4
    """Added to every std before dividing."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.step_weight < 0:
            raise ConfigError(f"step_weight must be >= 0, got {self.step_weight}")
        if self.scale not in SCALES:
            raise ConfigError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if self.anchor_scale not in ("mean", "mean_std"):
            raise ConfigError(
                f"anchor_scale must be 'mean' or 'mean_std', got {self.anchor_scale!r}"
            )
        if self.eps < 0:
            raise ConfigError(f"eps must be >= 0, got {self.eps}")


@dataclass(frozen=True, eq=False)
class StepAdvantages:
    """Advantages for one group.

    Attributes:
        steps: Per episode, one advantage per step, shape ``(T_i,)``.
        trajectory: The trajectory-level part, shape ``(K,)``.
        n_nan: Episodes with a NaN reward (advantage 0 everywhere).
        stats: Diagnostics (graph size, step-group sizes, ...).
    """

    steps: tuple[FloatArray, ...]
    trajectory: FloatArray
    n_nan: int
    stats: dict[str, float] = field(default_factory=dict)


Estimator = Callable[[Sequence[Sequence[Episode]], EstimatorConfig], list[StepAdvantages]]

#: name -> estimator; see :func:`register_estimator`.
ESTIMATORS: dict[str, Estimator] = {}


def register_estimator(name: str) -> Callable[[Estimator], Estimator]:
    """Decorator adding an estimator to :data:`ESTIMATORS` under ``name``."""

    def decorator(function: Estimator) -> Estimator:
        ESTIMATORS[name] = function
        return function

    return decorator


def get_estimator(name: str) -> Estimator:
    """Look up an estimator by name.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the names.
    """
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown estimator {name!r}; choose one of {', '.join(sorted(ESTIMATORS))}"
        ) from None


def estimate(
    groups: Sequence[Sequence[Episode]],
    estimator: str = "g2po",
    config: EstimatorConfig | None = None,
) -> list[StepAdvantages]:
    """Per-step advantages for a batch of groups with the named estimator.

    Args:
        groups: Each group holds the episodes of one task (any count, any lengths).
        estimator: A name in :data:`ESTIMATORS`.
        config: Estimator settings (defaults if omitted).

    Returns:
        One :class:`StepAdvantages` per group, in order.

    Raises:
        DataError: A group is empty or mixes task ids.
        UnknownNameError: Unknown estimator.
    """
    function = get_estimator(estimator)
    for group in groups:
        check_group(group)
    return function(groups, EstimatorConfig() if config is None else config)


def episode_from_trajectory(trajectory: Trajectory, space: StateSpace | None = None) -> Episode:
    """Turn a recorded :class:`~agentmc.data.trajectory.Trajectory` into an :class:`Episode`.

    States come from the environment's registered :class:`StateSpace` (or
    ``space``); actions are keyed by their normalised text. A trajectory that
    stopped on an error (``trajectory.error``, e.g. a failed policy call) is
    unscorable: its rewards become NaN, so it gets advantage 0 and is counted.

    Raises:
        DataError: The state fold or key raised (the message names the environment).
    """
    steps = [(turn.action, turn.observation) for turn in trajectory.turns]
    keys = state_keys(trajectory.env_id, trajectory.task, steps, space)
    return _episode(trajectory, keys, [normalize_text(action) for action, _ in steps])


def _episode(
    trajectory: Trajectory, states: Sequence[Hashable], actions: Sequence[Hashable]
) -> Episode:
    rewards = np.array(trajectory.rewards, dtype=np.float64)
    if trajectory.error is not None:
        rewards = np.full(len(rewards), np.nan)
    return Episode(
        trajectory.task_id, tuple(states), tuple(actions), rewards, trajectory.terminated
    )


def group_trajectories(
    trajectories: Sequence[Trajectory], space: StateSpace | None = None, *, ids: bool = False
) -> list[list[Episode]]:
    """Episodes grouped by task id, groups in order of first appearance.

    Args:
        trajectories: Recorded rollouts (any environments, any tasks).
        space: Override the environments' registered state spaces.
        ids: Give the episodes integer states and actions instead of keys:
            states from :func:`~agentmc.rl.states.state_ids` over the whole
            batch (equal ids <=> equal state keys), actions numbered by their
            normalised text. Every estimator gives the same advantages either
            way; ids skip building a key per step, most of the cost for TextCraft.

    Raises:
        DataError: The state fold or key raised (the message names the environment).
    """
    if not ids:
        episodes = [episode_from_trajectory(t, space) for t in trajectories]
    else:
        by_env: dict[str, list[Trajectory]] = {}
        for trajectory in trajectories:
            by_env.setdefault(trajectory.env_id, []).append(trajectory)
        states: dict[int, list[int]] = {}
        offset = 0  # ids of different environments never meet
        for env_id, members in by_env.items():
            lengths = [len(t.turns) for t in members]
            actions = [turn.action for t in members for turn in t.turns]
            observations = [turn.observation for t in members for turn in t.turns]
            tasks = [t.task for t in members]
            batch = column_state_ids(env_id, tasks, lengths, actions, observations, space)
            for trajectory, row in zip(members, batch.ids, strict=True):
                states[id(trajectory)] = (row + offset).tolist()
            offset += batch.n_states
        # Actions as ids too: one per distinct normalised text.
        texts: dict[str, int] = {}
        number = {
            action: texts.setdefault(normalize_text(action), len(texts))
            for action in {turn.action for t in trajectories for turn in t.turns}
        }
        episodes = [
            _episode(t, states[id(t)], [number[turn.action] for turn in t.turns])
            for t in trajectories
        ]
    groups: dict[str, list[Episode]] = {}
    for trajectory, episode in zip(trajectories, episodes, strict=True):
        groups.setdefault(trajectory.task_id, []).append(episode)
    return list(groups.values())


def trajectory_advantages(
    trajectories: Sequence[Trajectory],
    estimator: str = "g2po",
    config: EstimatorConfig | None = None,
    space: StateSpace | None = None,
) -> tuple[FloatArray, int]:
    """Per-step advantages of recorded trajectories, in row order.

    Rows are the steps of the first trajectory, then of the second, and so on:
    the layout of the per-step samples a trainer (or verl, or TRL) feeds the
    loss. The numbers are those of ``estimate(group_trajectories(trajectories))``
    (groups by task id); for ``"g2po"`` they are computed on flat arrays, from
    :func:`~agentmc.rl.states.state_ids` straight to the advantages, without an
    :class:`Episode` per trajectory.

    Args:
        trajectories: Recorded rollouts, any order, several per task.
        estimator: A name in :data:`ESTIMATORS`.
        config: Estimator settings (defaults if omitted).
        space: Override the environments' registered state spaces.

    Returns:
        ``(advantages, n_nan)``: shape ``(total steps,)``, and the number of
        unscorable trajectories (their steps get 0).

    Raises:
        DataError: The state fold or key raised (the message names the environment).
        UnknownNameError: Unknown estimator.
    """
    function = get_estimator(estimator)
    config = EstimatorConfig() if config is None else config
    if not trajectories:
        return np.zeros(0), 0
    if function is not g2po:
        n_nan = 0
        groups: dict[str, list[int]] = {}
        for index, trajectory in enumerate(trajectories):
            groups.setdefault(trajectory.task_id, []).append(index)
        steps: list[FloatArray] = [np.zeros(0)] * len(trajectories)
        for members, result in zip(
            groups.values(),
            function(group_trajectories(trajectories, space, ids=True), config),
            strict=True,
        ):
            n_nan += result.n_nan
            for index, values in zip(members, result.steps, strict=True):
                steps[index] = values
        return np.concatenate(steps), n_nan
    # Episodes group by group (stable), as group_trajectories orders them.
    numbers: dict[str, int] = {}
    group_of = np.array([numbers.setdefault(t.task_id, len(numbers)) for t in trajectories])
    grouped = bool(np.all(group_of[1:] >= group_of[:-1]))  # each group's rollouts together
    order = np.argsort(group_of, kind="stable") if not grouped else np.arange(len(group_of))
    ordered = list(trajectories) if grouped else [trajectories[i] for i in order.tolist()]
    lengths = np.array([len(t.turns) for t in ordered], dtype=np.int64)
    turns = [turn for t in ordered for turn in t.turns]
    all_actions = [turn.action for turn in turns]
    all_observations = [turn.observation for turn in turns]
    states = np.zeros(int(lengths.sum()) + len(ordered), dtype=np.int64)
    starts = np.cumsum(lengths + 1) - (lengths + 1)
    offset = 0  # ids of different environments never meet
    by_env: dict[str, list[int]] = {}
    for index, trajectory in enumerate(ordered):
        by_env.setdefault(trajectory.env_id, []).append(index)
    for env_id, members in by_env.items():
        if len(by_env) == 1:
            actions_of, observations_of = all_actions, all_observations
        else:
            actions_of = [turn.action for i in members for turn in ordered[i].turns]
            observations_of = [turn.observation for i in members for turn in ordered[i].turns]
        batch = column_state_ids(
            env_id,
            [ordered[i].task for i in members],
            lengths[members].tolist(),
            actions_of,
            observations_of,
            space,
        )
        if len(by_env) == 1:
            states = batch.flat
        else:
            for i, ids in zip(members, batch.ids, strict=True):
                states[starts[i] : starts[i] + len(ids)] = ids + offset
        offset += batch.n_states
    texts: dict[str, int] = {}  # actions by normalised text
    number = {a: texts.setdefault(normalize_text(a), len(texts)) for a in set(all_actions)}
    actions = lookup(number, all_actions)
    rewards = np.array([turn.reward for turn in turns], dtype=np.float64)
    bounds = np.cumsum(lengths) - lengths
    for index, trajectory in enumerate(ordered):
        if trajectory.error is not None:  # unscorable, as in episode_from_trajectory
            rewards[bounds[index] : bounds[index] + lengths[index]] = np.nan
    # The trajectory-level part, as g2po computes it from episodes.
    sizes = np.bincount(group_of, minlength=len(numbers))
    matrix = np.full((len(numbers), int(sizes.max())), np.nan)
    rank = np.arange(len(ordered)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    episode_group = np.repeat(np.arange(len(numbers)), sizes)
    matrix[episode_group, rank] = _episode_totals(rewards, bounds, lengths)
    trajectory = group_advantages(matrix, scale=config.scale, eps=config.eps)
    edge, _, _ = flat_edge_advantages(
        episode_group,
        lengths,
        states,
        actions,
        rewards,
        np.array([t.terminated for t in ordered], dtype=bool),
        gamma=config.gamma,
        eps=config.eps,
    )
    owner = np.repeat(np.arange(len(ordered)), lengths)
    ordered_steps = trajectory[episode_group, rank][owner] + config.step_weight * edge
    n_nan = int((np.bincount(owner, weights=np.isnan(rewards), minlength=len(ordered)) > 0).sum())
    if grouped:  # already in the input order
        return ordered_steps, n_nan
    # Back to the input order of the trajectories.
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    steps_in = lengths[position]
    time = np.arange(int(steps_in.sum())) - np.repeat(np.cumsum(steps_in) - steps_in, steps_in)
    source = np.repeat(bounds[position], steps_in) + time
    return ordered_steps[source], n_nan


def _episode_totals(rewards: FloatArray, bounds: IntArray, lengths: IntArray) -> FloatArray:
    """Each episode's reward sum, equal to ``Episode.total_return`` bit for bit.

    Whole-number rewards (the usual 0/1) sum exactly in any order, so one
    ``reduceat`` does; other rewards are summed episode by episode as numpy
    sums an episode's array.
    """
    finite = rewards[np.isfinite(rewards)]
    if np.array_equal(finite, np.round(finite)) and np.abs(finite).sum() < 2**52:
        totals = np.zeros(len(lengths))
        some = lengths > 0
        if some.any():
            totals[some] = np.add.reduceat(rewards, bounds[some])
        return totals
    pairs = zip(bounds, lengths, strict=True)
    return np.array([np.array(rewards[b : b + n]).sum() for b, n in pairs])


def _returns_matrix(groups: Sequence[Sequence[Episode]]) -> FloatArray:
    """Trajectory returns as ``(G, K_max)``, NaN-padded for groups of unequal size."""
    width = max((len(group) for group in groups), default=0)
    out = np.full((len(groups), width), np.nan)
    for row, group in enumerate(groups):
        out[row, : len(group)] = [episode.total_return for episode in group]
    return out


def _n_nan(group: Sequence[Episode]) -> int:
    return sum(not episode.scorable for episode in group)


def _broadcast(groups: Sequence[Sequence[Episode]], trajectory: FloatArray) -> list[StepAdvantages]:
    out = []
    for row, group in enumerate(groups):
        values = trajectory[row, : len(group)].copy()
        steps = tuple(np.full(episode.n_steps, values[i]) for i, episode in enumerate(group))
        out.append(StepAdvantages(steps, values, _n_nan(group)))
    return out


@register_estimator("grpo")
def grpo(groups: Sequence[Sequence[Episode]], config: EstimatorConfig) -> list[StepAdvantages]:
    """GRPO: every step gets its trajectory's group-relative return."""
    trajectory = group_advantages(_returns_matrix(groups), scale=config.scale, eps=config.eps)
    return _broadcast(groups, trajectory)


@register_estimator("rloo")
def rloo(groups: Sequence[Sequence[Episode]], config: EstimatorConfig) -> list[StepAdvantages]:
    """RLOO: every step gets its trajectory's leave-one-out advantage."""
    return _broadcast(groups, rloo_advantages(_returns_matrix(groups)))


@register_estimator("g2po")
def g2po(groups: Sequence[Sequence[Episode]], config: EstimatorConfig) -> list[StepAdvantages]:
    """G2PO: GRPO plus the standardised TD error of each step's graph edge.

    All groups' graphs are built in one pass (:func:`~agentmc.rl.graph.batch_edge_advantages`,
    the same numbers as :func:`~agentmc.rl.graph.build_graph` and
    :func:`~agentmc.rl.graph.edge_advantages` group by group).
    """
    trajectory = group_advantages(_returns_matrix(groups), scale=config.scale, eps=config.eps)
    out = []
    parts = batch_edge_advantages(groups, gamma=config.gamma, eps=config.eps)
    for row, (group, (edge, graph)) in enumerate(zip(groups, parts, strict=True)):
        values = trajectory[row, : len(group)].copy()
        steps = tuple(values[i] + config.step_weight * edge[i] for i in range(len(group)))
        n_steps = max(sum(e.n_steps for e in group), 1)
        stats = {
            "n_nodes": float(graph["n_nodes"]),
            "n_edges": float(graph["n_edges"]),
            "steps_per_edge": n_steps / max(graph["n_edges"], 1),
        }
        out.append(StepAdvantages(steps, values, _n_nan(group), stats))
    return out


@register_estimator("gigpo")
def gigpo(groups: Sequence[Sequence[Episode]], config: EstimatorConfig) -> list[StepAdvantages]:
    """GiGPO: GRPO plus the step's return relative to its anchor-state group."""
    trajectory = group_advantages(_returns_matrix(groups), scale=config.scale, eps=config.eps)
    out = []
    for row, group in enumerate(groups):
        anchor = anchor_advantages(
            group, gamma=config.gamma, scale=config.anchor_scale, eps=config.eps
        )
        values = trajectory[row, : len(group)].copy()
        steps = tuple(values[i] + config.step_weight * anchor[i] for i in range(len(group)))
        keys = [state for episode in group for state in episode.states[:-1]]
        sizes = np.array(list(Counter(keys).values()), dtype=np.int64)
        stats = {
            "n_step_groups": float(len(sizes)),
            "grouped_fraction": float(sizes[sizes >= 2].sum() / max(len(keys), 1)),
        }
        out.append(StepAdvantages(steps, values, _n_nan(group), stats))
    return out
