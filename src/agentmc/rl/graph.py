"""The group's state-transition graph: G2PO edge advantages and GiGPO anchor groups.

The ``K`` rollouts of one task walk through many of the same states. G2PO merges
them into one graph instead of treating them as ``K`` strangers:

- **nodes** are state keys (see :mod:`agentmc.rl.states`);
- **edges** are ``(s, a, s')`` triples actually taken by some rollout;
- the **node value** ``V(s)`` is the mean return-to-go of the group's
  rollouts that pass through ``s``, each rollout counted once, from its first
  visit (first-visit Monte Carlo). A rollout's final state does not count as a
  visit: after a termination ``V = 0`` by definition, and after a truncation the
  rest of the return is unknown, so the value comes from the other rollouts
  that went on from there (``0`` if none did);
- the **edge TD error** is ``r + gamma * V(s') - V(s)`` (``V(s') = 0`` when the
  step terminated the episode), averaged over the edge's occurrences, and then
  **standardised over all edges of the graph** (each distinct edge once, mean 0,
  population std 1), not per node: a step is judged against every other move
  the group made, so a good move inside a failed rollout still scores high.

GiGPO instead groups steps by *anchor state*: all steps taken from the same
state form a step group, and each step's discounted return-to-go is compared
with its step group's mean (optionally divided by the group's std). Step groups
of size one carry no comparison and get ``0``.

Degenerate cases, defined and tested:

- *all rewards equal* (``gamma = 1``): every TD error is ``0``, so is every
  edge and anchor advantage;
- *a single rollout* without revisits: ``V`` along it is its own
  return-to-go, every TD error is ``0``; a rollout that revisits a state keeps
  the first visit's value, so a step back into an earlier state can have a
  non-zero TD error (it is judged by where that state led the first time);
- *cycles* (self-loops, revisits): each rollout counts once per node; a loop
  edge ``s -> s`` has TD error ``r + (gamma - 1) V(s)``;
- *different lengths* and zero-step rollouts are fine;
- *an empty group* or *mixed task ids* raise :class:`~agentmc.errors.DataError`.

Both only produce the step-level part; :mod:`agentmc.rl.estimators` adds the
trajectory-level GRPO advantage. Rollouts with a NaN reward are left out of
the graph and get ``0`` everywhere.

Example:
    >>> import numpy as np
    >>> win = Episode("t0", ("a", "b", "goal"), ("left", "up"), np.array([0.0, 1.0]))
    >>> lose = Episode("t0", ("a", "c"), ("right",), np.array([0.0]))
    >>> graph = build_graph([win, lose])
    >>> [graph.keys[i] for i in range(graph.n_nodes)]
    ['a', 'b', 'goal', 'c']
    >>> graph.node_values.tolist()
    [0.5, 1.0, 0.0, 0.0]
    >>> graph.edge_td.tolist()
    [0.5, -0.5, 0.0]
    >>> [a.round(3).tolist() for a in edge_advantages(graph)]
    [[1.224, 0.0], [-1.224]]

References:
    "Group-Graph Policy Optimization for Long-Horizon Agentic Reinforcement
    Learning" (G2PO), 2026. arXiv:2606.22995.
    Feng et al., "Group-in-Group Policy Optimization for LLM Agent Training"
    (GiGPO), 2025. arXiv:2505.10978.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from agentmc._arrays import first_seen_ids
from agentmc.errors import ConfigError, DataError
from agentmc.rl.advantages import discounted_returns
from agentmc.types import BoolArray, FloatArray, IntArray

AnchorScale = Literal["mean", "mean_std"]


@dataclass(frozen=True, slots=True, eq=False)
class Episode:
    """One rollout in the form the step estimators need.

    Attributes:
        task_id: The task played; all episodes of a group must share it.
        states: ``T + 1`` hashable state keys: before each step, then the final one.
        actions: ``T`` hashable action keys (e.g. the canonical action text).
        rewards: Per-step rewards, shape ``(T,)``; a NaN anywhere marks the
            rollout as unscorable.
        terminated: The last step ended the task (``V`` after it is ``0``);
            ``False`` for a truncated or cut-short rollout.
    """

    task_id: str
    states: tuple[Hashable, ...]
    actions: tuple[Hashable, ...]
    rewards: FloatArray
    terminated: bool = True

    def __post_init__(self) -> None:
        rewards = np.array(self.rewards, dtype=np.float64).reshape(-1)
        rewards.setflags(write=False)
        object.__setattr__(self, "rewards", rewards)
        object.__setattr__(self, "states", tuple(self.states))
        object.__setattr__(self, "actions", tuple(self.actions))
        if len(self.states) != len(self.actions) + 1 or len(rewards) != len(self.actions):
            raise DataError(
                f"episode of task {self.task_id!r} has {len(self.states)} states, "
                f"{len(self.actions)} actions and {len(rewards)} rewards; it needs "
                "T + 1 states for T actions and T rewards"
            )

    @property
    def n_steps(self) -> int:
        return len(self.actions)

    @property
    def total_return(self) -> float:
        """Undiscounted sum of rewards (NaN if any reward is NaN)."""
        return float(self.rewards.sum())

    @property
    def scorable(self) -> bool:
        return not bool(np.isnan(self.rewards).any())


def check_group(episodes: Sequence[Episode]) -> str:
    """Validate one group and return its task id.

    Raises:
        DataError: The group is empty or mixes task ids.
    """
    if len(episodes) == 0:
        raise DataError("empty group: a group needs at least one episode of one task")
    task_ids = sorted({episode.task_id for episode in episodes})
    if len(task_ids) > 1:
        shown = ", ".join(repr(t) for t in task_ids[:5])
        raise DataError(
            f"a group must hold episodes of one task, got task ids {shown}"
            f"{' ...' if len(task_ids) > 5 else ''}; group rollouts by task id first"
        )
    return task_ids[0]


@dataclass(frozen=True, slots=True)
class _Steps:
    """All steps of a group, flattened in (episode, time) order."""

    owner: IntArray  # (N,) episode index of each step
    time: IntArray  # (N,) time index within the episode
    src: IntArray  # (N,) node id before the step
    dst: IntArray  # (N,) node id after the step
    action: IntArray  # (N,) action id
    reward: FloatArray  # (N,)
    terminal: BoolArray  # (N,) the step terminated its episode
    returns: FloatArray  # (N,) discounted return-to-go from this step
    valid: BoolArray  # (E,) episode is scorable


def _intern(
    values: Sequence[Hashable], table: dict[Hashable, int], keys: list[Hashable]
) -> list[int]:
    out = []
    for value in values:
        index = table.get(value)
        if index is None:
            index = table[value] = len(keys)
            keys.append(value)
        out.append(index)
    return out


def _flatten(
    episodes: Sequence[Episode], gamma: float
) -> tuple[_Steps, list[Hashable], list[Hashable], list[IntArray]]:
    node_table: dict[Hashable, int] = {}
    node_keys: list[Hashable] = []
    action_table: dict[Hashable, int] = {}
    action_keys: list[Hashable] = []
    state_ids: list[IntArray] = []
    action_ids: list[int] = []
    for episode in episodes:
        state_ids.append(np.asarray(_intern(episode.states, node_table, node_keys), dtype=np.int64))
        action_ids.extend(_intern(episode.actions, action_table, action_keys))
    lengths = np.array([e.n_steps for e in episodes], dtype=np.int64)
    owner = np.repeat(np.arange(len(episodes)), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
    time = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    if len(episodes) and lengths.sum():
        src = np.concatenate([ids[:-1] for ids in state_ids])
        dst = np.concatenate([ids[1:] for ids in state_ids])
        reward = np.concatenate([e.rewards for e in episodes])
    else:
        src = dst = np.zeros(0, dtype=np.int64)
        reward = np.zeros(0)
    terminated = np.array([e.terminated for e in episodes], dtype=bool)
    terminal = terminated[owner] & (time == lengths[owner] - 1)
    valid = np.array([e.scorable for e in episodes], dtype=bool)
    horizon = int(lengths.max()) if len(lengths) else 0
    padded = np.zeros((len(episodes), horizon))
    mask = np.zeros((len(episodes), horizon), dtype=bool)
    padded[owner, time] = np.where(np.isnan(reward), 0.0, reward)
    mask[owner, time] = True
    returns = discounted_returns(padded, gamma=gamma, mask=mask)[owner, time]
    steps = _Steps(
        owner=owner,
        time=time,
        src=src,
        dst=dst,
        action=np.asarray(action_ids, dtype=np.int64),
        reward=reward,
        terminal=terminal,
        returns=returns,
        valid=valid,
    )
    return steps, node_keys, action_keys, state_ids


def _split(values: npt.NDArray[Any], episodes: Sequence[Episode]) -> list[FloatArray]:
    bounds = np.cumsum([e.n_steps for e in episodes])[:-1]
    return [np.asarray(part, dtype=np.float64) for part in np.split(values, bounds)]


@dataclass(frozen=True, slots=True, eq=False)
class StateGraph:
    """The merged state-transition graph of one group.

    Attributes:
        keys: Node id -> state key, shape ``(n_nodes,)`` as a tuple.
        action_keys: Action id -> action key.
        node_values: ``V(s)``, shape ``(n_nodes,)``.
        node_counts: Rollouts that visit each node (first visits, final states
            excluded), shape ``(n_nodes,)``.
        edges: ``(src, action, dst)`` ids, shape ``(n_edges, 3)``.
        edge_counts: Occurrences of each edge, shape ``(n_edges,)``.
        edge_td: Mean TD error ``r + gamma V(s') - V(s)`` of each edge, shape ``(n_edges,)``.
        step_edges: Per episode, the edge id of each step, shape ``(T_i,)``
            (``-1`` for steps of unscorable episodes).
        step_states: Per episode, the node id of each state, shape ``(T_i + 1,)``.
        gamma: The discount used.
    """

    keys: tuple[Hashable, ...]
    action_keys: tuple[Hashable, ...]
    node_values: FloatArray
    node_counts: IntArray
    edges: IntArray
    edge_counts: IntArray
    edge_td: FloatArray
    step_edges: tuple[IntArray, ...]
    step_states: tuple[IntArray, ...]
    gamma: float

    @property
    def n_nodes(self) -> int:
        return len(self.keys)

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])


def build_graph(episodes: Sequence[Episode], *, gamma: float = 1.0) -> StateGraph:
    """Merge a group's episodes into a :class:`StateGraph`.

    Args:
        episodes: The group (one task, any lengths, cycles allowed).
        gamma: Discount for returns-to-go and TD errors, in ``[0, 1]``.

    Returns:
        The graph with node values and edge TD errors.

    Raises:
        DataError: Empty group or mixed task ids.
        ConfigError: ``gamma`` outside ``[0, 1]``.
    """
    check_group(episodes)
    if not 0.0 <= gamma <= 1.0:
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
    steps, node_keys, action_keys, state_ids = _flatten(episodes, gamma)
    n_nodes = len(node_keys)
    use = steps.valid[steps.owner]
    # First visit of each node by each episode: np.unique returns the first
    # index of every value, and steps are ordered by (episode, time).
    visit = steps.owner[use] * n_nodes + steps.src[use]
    _, first = np.unique(visit, return_index=True)
    first_src = steps.src[use][first]
    counts = np.bincount(first_src, minlength=n_nodes)
    sums = np.bincount(first_src, weights=steps.returns[use][first], minlength=n_nodes)
    values = np.divide(sums, counts, out=np.zeros(n_nodes), where=counts > 0)
    triples = np.stack([steps.src[use], steps.action[use], steps.dst[use]], axis=1)
    edges, edge_of_step = np.unique(triples.reshape(-1, 3), axis=0, return_inverse=True)
    edge_of_step = edge_of_step.reshape(-1)
    next_value = np.where(steps.terminal[use], 0.0, values[steps.dst[use]])
    td = steps.reward[use] + gamma * next_value - values[steps.src[use]]
    edge_counts = np.bincount(edge_of_step, minlength=len(edges))
    edge_td = np.bincount(edge_of_step, weights=td, minlength=len(edges)) / np.maximum(
        edge_counts, 1
    )
    all_edges = np.full(steps.owner.shape, -1, dtype=np.int64)
    all_edges[use] = edge_of_step
    for array in (values, counts, edges, edge_counts, edge_td, all_edges, *state_ids):
        array.setflags(write=False)
    return StateGraph(
        keys=tuple(node_keys),
        action_keys=tuple(action_keys),
        node_values=values,
        node_counts=counts.astype(np.int64),
        edges=edges.astype(np.int64),
        edge_counts=edge_counts.astype(np.int64),
        edge_td=edge_td,
        step_edges=tuple(np.asarray(p, dtype=np.int64) for p in _split(all_edges, episodes)),
        step_states=tuple(state_ids),
        gamma=gamma,
    )


def edge_advantages(graph: StateGraph, *, eps: float = 1e-4) -> list[FloatArray]:
    """G2PO's step-level part: each step's edge TD error, standardised over edges.

    ``A(e) = (td(e) - mean_edges td) / (std_edges td + eps)``, with the mean and
    the population std taken over the graph's distinct edges (each once). A
    graph whose edges all have the same TD error (all rewards equal with
    ``gamma = 1``, a single rollout, a single edge) gives ``0`` everywhere.

    Args:
        graph: From :func:`build_graph`.
        eps: Added to the std before dividing.

    Returns:
        Per episode, shape ``(T_i,)``; ``0`` for unscorable episodes.
    """
    if graph.n_edges == 0:
        return [np.zeros(len(e)) for e in graph.step_edges]
    centred = graph.edge_td - graph.edge_td.mean()
    scale = float(np.sqrt(np.mean(centred**2)))
    # A spread below float round-off is no spread: without this, identical TD
    # errors that differ in the last bit would be blown up to +-1.
    standard = np.zeros_like(centred) if scale < 1e-12 else centred / (scale + eps)
    return [np.where(e >= 0, standard[np.maximum(e, 0)], 0.0) for e in graph.step_edges]


def _dense_ids(values: list[Hashable]) -> tuple[IntArray, int]:
    """Ids with equal ids <=> equal values, and a bound on them (``0 <= id < bound``).

    Plain integers (e.g. from :func:`~agentmc.rl.states.state_ids`) are used
    as they are, shifted to start at 0; anything else is numbered by a dict.
    """
    if values and type(values[0]) is int:
        try:
            array = np.array(values)
        except OverflowError:
            array = np.zeros(0)
        if array.dtype.kind == "i" and array.shape == (len(values),):
            low = int(array.min())
            span = int(array.max()) - low + 1
            if span < 2**40:
                return array - low, span
    table: dict[Hashable, int] = {}
    ids = [table.setdefault(value, len(table)) for value in values]
    return np.asarray(ids, dtype=np.int64), max(len(table), 1)


def batch_edge_advantages(
    groups: Sequence[Sequence[Episode]], *, gamma: float = 1.0, eps: float = 1e-4
) -> list[tuple[list[FloatArray], dict[str, float]]]:
    """:func:`edge_advantages` of :func:`build_graph` for many groups in one pass.

    Calling the two functions group by group costs a Python round of graph
    building per group; this builds all the graphs of a batch at once, with
    one array per quantity: nodes are numbered ``(group, key)`` pairs, so
    groups never share a node. The numbers are the same, bit for bit: nodes
    and actions are numbered in order of first appearance within their group
    (as :func:`build_graph` numbers them), so edges sort in the same order and
    every sum adds the same terms in the same order.

    Args:
        groups: Each group holds the episodes of one task.
        gamma: Discount for returns-to-go and TD errors, in ``[0, 1]``.
        eps: Added to the std of each graph's edge TD errors before dividing.

    Returns:
        Per group: the per-episode step advantages (shape ``(T_i,)``, ``0`` for
        unscorable episodes) and ``{"n_nodes", "n_edges"}``.

    Raises:
        DataError: A group is empty or mixes task ids.
        ConfigError: ``gamma`` outside ``[0, 1]``.

    Example:
        >>> win = Episode("t0", ("a", "b", "goal"), ("left", "up"), np.array([0.0, 1.0]))
        >>> lose = Episode("t0", ("a", "c"), ("right",), np.array([0.0]))
        >>> [(steps, stats)] = batch_edge_advantages([[win, lose]])
        >>> [a.round(3).tolist() for a in steps], stats
        ([[1.224, 0.0], [-1.224]], {'n_nodes': 4, 'n_edges': 3})
    """
    for group in groups:
        check_group(group)
    if not 0.0 <= gamma <= 1.0:
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
    if not groups:
        return []
    episodes = [episode for group in groups for episode in group]
    n_groups = len(groups)
    keys, _ = _dense_ids([s for e in episodes for s in e.states])
    actions, _ = _dense_ids([a for e in episodes for a in e.actions])
    step_advantage, nodes_per_group, edges_per_group = flat_edge_advantages(
        np.repeat(np.arange(n_groups), [len(group) for group in groups]),
        np.fromiter((e.n_steps for e in episodes), np.int64, len(episodes)),
        keys,
        actions,
        np.concatenate([e.rewards for e in episodes]),
        np.array([e.terminated for e in episodes], dtype=bool),
        gamma=gamma,
        eps=eps,
    )
    parts = np.split(step_advantage, np.cumsum([e.n_steps for e in episodes])[:-1])
    out = []
    done = 0
    for g, group in enumerate(groups):
        stats = {"n_nodes": int(nodes_per_group[g]), "n_edges": int(edges_per_group[g])}
        out.append((parts[done : done + len(group)], stats))
        done += len(group)
    return out


def flat_edge_advantages(
    episode_group: IntArray,
    lengths: IntArray,
    states: IntArray,
    actions: IntArray,
    rewards: FloatArray,
    terminated: BoolArray,
    *,
    gamma: float = 1.0,
    eps: float = 1e-4,
) -> tuple[FloatArray, IntArray, IntArray]:
    """:func:`batch_edge_advantages` on flat arrays: the core, without episode objects.

    Episodes come group by group (``episode_group`` non-decreasing, from 0)
    and their steps one after the other. States and actions are integer ids
    (``>= 0``; equal ids are the same state or action).

    Args:
        episode_group: Group of each episode, shape ``(E,)``.
        lengths: Steps of each episode ``T_i``, shape ``(E,)``.
        states: The ``T_i + 1`` state ids of each episode, concatenated.
        actions: The ``T_i`` action ids of each episode, concatenated.
        rewards: The ``T_i`` rewards of each episode, concatenated; a NaN makes
            its episode unscorable (advantage 0, left out of the graph).
        terminated: Whether each episode's last step ended it, shape ``(E,)``.
        gamma: Discount, in ``[0, 1]`` (not checked here).
        eps: Added to each graph's TD-error std.

    Returns:
        Step advantages (concatenated like ``rewards``), and the nodes and
        edges of each group's graph.
    """
    n_episodes, n_groups = len(lengths), int(episode_group[-1]) + 1 if len(lengths) else 0
    owner = np.repeat(np.arange(n_episodes), lengths)
    step_starts = np.cumsum(lengths) - lengths
    time = np.arange(len(owner)) - np.repeat(step_starts, lengths)
    step_group = episode_group[owner]

    # Nodes are (group, state) pairs and actions (group, action) pairs, both
    # numbered in order of first appearance, as build_graph numbers them.
    state_group = np.repeat(episode_group, lengths + 1)
    n_keys = int(states.max()) + 1 if len(states) else 1
    node, node_first = first_seen_ids(state_group * n_keys + states)
    n_nodes = len(node_first)
    src_at = np.repeat(np.cumsum(lengths + 1) - (lengths + 1), lengths) + time
    src, dst = node[src_at], node[src_at + 1]
    n_actions = int(actions.max()) + 1 if len(actions) else 1
    action, _ = first_seen_ids(step_group * n_actions + actions)

    reward = np.asarray(rewards, dtype=np.float64)
    nan = np.isnan(reward)
    valid = np.bincount(owner, weights=nan, minlength=n_episodes) == 0
    terminal = np.asarray(terminated, dtype=bool)[owner] & (time == lengths[owner] - 1)
    horizon = int(lengths.max()) if n_episodes else 0
    padded = np.zeros((n_episodes, horizon))
    mask = np.zeros((n_episodes, horizon), dtype=bool)
    padded[owner, time] = np.where(nan, 0.0, reward)
    mask[owner, time] = True
    if gamma == 1.0:  # the same sums as discounted_returns' loop, in one call
        returns = np.cumsum(padded[:, ::-1], axis=1)[:, ::-1][owner, time]
    else:
        returns = discounted_returns(padded, gamma=gamma, mask=mask)[owner, time]

    # From here on, as in build_graph, over all groups at once.
    use = valid[owner]
    visit = owner[use] * n_nodes + src[use]
    _, first = np.unique(visit, return_index=True)
    first_src = src[use][first]
    counts = np.bincount(first_src, minlength=n_nodes)
    sums = np.bincount(first_src, weights=returns[use][first], minlength=n_nodes)
    values = np.divide(sums, counts, out=np.zeros(n_nodes), where=counts > 0)
    n_actions = int(action.max()) + 1 if len(action) else 1
    if n_nodes * n_nodes * n_actions < 2**62:
        code = (src[use] * n_actions + action[use]) * n_nodes + dst[use]
        edges, edge_of_step = np.unique(code, return_inverse=True)
        edge_src = edges // (n_actions * n_nodes)
    else:  # too many for one int64 code: sort the triples themselves
        triples = np.stack([src[use], action[use], dst[use]], axis=1)
        edges, edge_of_step = np.unique(triples, axis=0, return_inverse=True)
        edge_src = edges[:, 0]
    edge_of_step = edge_of_step.reshape(-1)
    next_value = np.where(terminal[use], 0.0, values[dst[use]])
    td = reward[use] + gamma * next_value - values[src[use]]
    edge_counts = np.bincount(edge_of_step, minlength=len(edges))
    edge_td = np.bincount(edge_of_step, weights=td, minlength=len(edges)) / np.maximum(
        edge_counts, 1
    )

    # Standardise per graph, exactly as edge_advantages does (edges of a group
    # are contiguous: they sort by source node, and nodes are numbered by group).
    node_group = state_group[node_first]
    edges_per_group = np.bincount(node_group[edge_src], minlength=n_groups)
    standard = np.zeros(len(edges))
    stop = 0
    for count in edges_per_group.tolist():
        start, stop = stop, stop + count
        if count:
            centred = edge_td[start:stop] - edge_td[start:stop].mean()
            scale = float(np.sqrt(np.mean(centred**2)))
            if scale >= 1e-12:
                standard[start:stop] = centred / (scale + eps)
    step_advantage = np.zeros(len(owner))
    step_advantage[use] = standard[edge_of_step]
    return step_advantage, np.bincount(node_group, minlength=n_groups), edges_per_group


def anchor_advantages(
    episodes: Sequence[Episode],
    *,
    gamma: float = 0.95,
    scale: AnchorScale = "mean_std",
    eps: float = 1e-6,
) -> list[FloatArray]:
    """GiGPO's step-level part: returns-to-go relative to the same anchor state.

    Steps taken from the same state (across all of the group's rollouts, and
    repeated visits within one) form a step group. A step's advantage is its
    discounted return-to-go minus the step group's mean, divided by the step
    group's unbiased std plus ``eps`` when ``scale="mean_std"``. Singleton step
    groups get ``0``.

    Args:
        episodes: One group (one task).
        gamma: Discount for the returns-to-go, in ``[0, 1]`` (GiGPO uses 0.95).
        scale: ``"mean"`` (centre only) or ``"mean_std"`` (centre and scale).
        eps: Added to the std before dividing.

    Returns:
        Per episode, shape ``(T_i,)``; ``0`` for unscorable episodes.

    Raises:
        DataError: Empty group or mixed task ids.
        ConfigError: Bad ``gamma`` or ``scale``.
    """
    check_group(episodes)
    if not 0.0 <= gamma <= 1.0:
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
    if scale not in ("mean", "mean_std"):
        raise ConfigError(f"scale must be 'mean' or 'mean_std', got {scale!r}")
    steps, node_keys, _, _ = _flatten(episodes, gamma)
    n_nodes = len(node_keys)
    use = steps.valid[steps.owner]
    anchor = steps.src[use]
    returns = steps.returns[use]
    counts = np.bincount(anchor, minlength=n_nodes)
    means = np.bincount(anchor, weights=returns, minlength=n_nodes) / np.maximum(counts, 1)
    centred = returns - means[anchor]
    if scale == "mean_std":
        squares = np.bincount(anchor, weights=centred**2, minlength=n_nodes)
        std = np.sqrt(squares / np.maximum(counts - 1, 1))[anchor]
        # Returns that agree up to round-off have no spread: give 0, not noise / eps.
        spread = std > 1e-12
        centred = np.divide(centred, std + eps, out=np.zeros_like(centred), where=spread)
    out = np.zeros(steps.owner.shape)
    out[use] = np.where(counts[anchor] >= 2, centred, 0.0)
    return _split(out, episodes)
