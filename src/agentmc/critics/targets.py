"""Regression targets for critics, as pure functions over reward arrays.

A trajectory with T turns gives T training states: the state *before* turn t
(t = 0 is the initial state, the task alone). With ``terminal=True`` it also
gives its final state, with an **outcome** target: the episode's return (or
its success, for the success target). The sampler's twist never asks about a
final state (a finished particle's future return is known), but in the
deployable modes (rewards hidden) the critic is also the judge of finished
attempts, ``E[R | h_T]``, and a critic that never saw a final state cannot
rank them (design.md section 4). :attr:`Examples.terminal` marks these rows.

Targets for the state before turn t, with rewards ``r_0 .. r_{T-1}``:

- Monte-Carlo return-to-go: ``G_t = sum_{k >= t} gamma^(k-t) r_k``
  (:func:`returns_to_go`); gamma = 1 by default, as in the AMC paper.
- Final success: 1 if the episode was solved, else 0, for every state.
- TD(lambda): ``G^l_t = r_t + gamma ((1 - l) V(s_{t+1}) + l G^l_{t+1})`` with a
  given critic's values V (:func:`td_lambda_returns`); lambda = 1 is the
  Monte-Carlo return, lambda = 0 one-step TD.

Truncated episodes (the step cap cut them short). The step cap is part of the
problem AMC solves (particles run under the same cap, and the critic's input
carries the step number), so by default a truncated episode is treated like a
terminated one: its Monte-Carlo targets are the returns actually obtained
under the cap (``truncation="terminal"``). ``truncation="drop"`` leaves
truncated episodes out instead. TD(lambda) always bootstraps at a truncation
with the critic's value of the final state, and uses 0 after a termination
(design.md: targets bootstrap only on truncation). Episodes that stopped for
another reason (a failed policy call, ``error`` set) are incomplete and are
always left out; :class:`Examples` counts them.

Example:
    >>> returns_to_go(np.array([0.0, 0.0, 1.0]))
    array([1., 1., 1.])
    >>> returns_to_go(np.array([1.0, 0.0, 1.0]), gamma=0.5)
    array([1.25, 0.5 , 1.  ])
    >>> td_lambda_returns(np.array([0.0, 1.0]), np.array([0.2, 0.4, 0.9]), lam=0.0)
    array([0.4, 1. ])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from agentmc.critics.core import History
from agentmc.errors import ConfigError, DataError
from agentmc.types import BoolArray, FloatArray, IntArray

if TYPE_CHECKING:
    from agentmc.critics.core import Critic
    from agentmc.data.trajectory import Trajectory

Target = Literal["return", "success", "td"]
Truncation = Literal["terminal", "drop"]


def returns_to_go(rewards: FloatArray, gamma: float = 1.0, bootstrap: float = 0.0) -> FloatArray:
    """Discounted return from each state onwards.

    ``G_t = sum_{k=t}^{T-1} gamma^(k-t) r_k + gamma^(T-t) * bootstrap``.

    Args:
        rewards: Rewards ``r_0 .. r_{T-1}``, shape ``(T,)``.
        gamma: Discount in ``[0, 1]``.
        bootstrap: Value of the state after the last turn (0 after a termination).

    Returns:
        ``G_0 .. G_{T-1}``, shape ``(T,)``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    out = np.empty_like(rewards)
    running = float(bootstrap)
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def td_lambda_returns(
    rewards: FloatArray,
    values: FloatArray,
    gamma: float = 1.0,
    lam: float = 0.95,
    bootstrap: bool = False,
) -> FloatArray:
    """TD(lambda) returns with a given critic's values.

    ``G_t = r_t + gamma ((1 - lam) V_{t+1} + lam G_{t+1})``, with
    ``G_T = V_T`` if ``bootstrap`` (a truncated episode) else ``G_T = V_T = 0``.

    Args:
        rewards: Rewards ``r_0 .. r_{T-1}``, shape ``(T,)``.
        values: Critic values of the states before each turn and of the final
            state, ``V_0 .. V_T``, shape ``(T + 1,)``.
        gamma: Discount in ``[0, 1]``.
        lam: Lambda in ``[0, 1]``.
        bootstrap: Use ``V_T`` for the final state (truncation); else 0 (termination).

    Returns:
        ``G_0 .. G_{T-1}``, shape ``(T,)``.

    References:
        Sutton and Barto, Reinforcement Learning: An Introduction (2nd ed.), eq. 12.3.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = rewards.shape[0]
    if values.shape != (n + 1,):
        raise ValueError(f"values must have shape ({n + 1},), got {values.shape}")
    next_values = values[1:].copy()
    next_values[-1:] = values[-1] if bootstrap else 0.0
    out = np.empty_like(rewards)
    running = next_values[-1] if n else 0.0
    for t in range(n - 1, -1, -1):
        running = rewards[t] + gamma * ((1.0 - lam) * next_values[t] + lam * running)
        out[t] = running
    return out


@dataclass(frozen=True)
class Examples:
    """Training examples: one per state (the state before each turn).

    Attributes:
        histories: N states.
        targets: Regression targets, shape ``(N,)``.
        task_ids: Task of each state, length N (what train/validation splits group by).
        steps: Turns taken before each state, shape ``(N,)``.
        success: Final success (0/1) of the episode each state belongs to, shape ``(N,)``.
        episode: Index of the source trajectory in the input list, shape ``(N,)``.
        env_id: The environment all trajectories come from.
        n_trajectories: Trajectories used.
        skipped: Trajectories left out, by reason (``"incomplete"``, ``"truncated"``,
            ``"empty"``), and SMC/AMC states left out (``"states before a resampling"``).
        terminal: True for a final state (outcome target), shape ``(N,)``; empty
            means no final states.
    """

    histories: list[History]
    targets: FloatArray
    task_ids: list[str]
    steps: IntArray
    success: FloatArray
    episode: IntArray
    env_id: str
    n_trajectories: int
    skipped: dict[str, int] = field(default_factory=dict)
    terminal: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def is_terminal(self) -> BoolArray:
        """:attr:`terminal` with the full length ``(N,)`` (all false when none was made)."""
        if self.terminal.shape[0] == len(self.histories):
            return self.terminal
        return np.zeros(len(self.histories), dtype=bool)

    def __len__(self) -> int:
        return len(self.histories)

    def subset(self, mask: np.ndarray) -> Examples:
        """The examples where the boolean ``mask`` (shape ``(N,)``) is true."""
        index = np.flatnonzero(mask)
        return Examples(
            histories=[self.histories[i] for i in index],
            targets=self.targets[index],
            task_ids=[self.task_ids[i] for i in index],
            steps=self.steps[index],
            success=self.success[index],
            episode=self.episode[index],
            env_id=self.env_id,
            n_trajectories=len(set(self.episode[index].tolist())),
            skipped=dict(self.skipped),
            terminal=self.is_terminal[index],
        )


def env_of(trajectories: Sequence[Trajectory]) -> str:
    """The single environment id of ``trajectories``.

    Raises:
        DataError: If there are none, or they come from several environments.
    """
    envs = sorted({t.env_id for t in trajectories})
    if not envs:
        raise DataError("no trajectories: collect some first (agentmc collect)")
    if len(envs) > 1:
        raise DataError(
            f"trajectories come from several environments {envs}; train one critic per environment"
        )
    return envs[0]


def make_examples(
    trajectories: Sequence[Trajectory],
    target: Target = "return",
    *,
    gamma: float = 1.0,
    truncation: Truncation = "terminal",
    critic: Critic | None = None,
    lam: float = 0.95,
    terminal: bool = False,
) -> Examples:
    """Turn trajectories into one example per state (see the module docstring).

    Args:
        trajectories: Episodes of the prior policy, all from one environment.
        target: ``"return"`` (Monte-Carlo return-to-go), ``"success"`` (final 0/1)
            or ``"td"`` (TD(lambda) with ``critic``).
        gamma: Discount for ``"return"`` and ``"td"``.
        truncation: ``"terminal"`` or ``"drop"`` for truncated episodes.
        critic: The critic whose values TD(lambda) bootstraps from (``"td"`` only).
        lam: Lambda for ``"td"``.
        terminal: Add each episode's final state with its outcome as target
            (the return obtained, or success for ``"success"``).

    Returns:
        The examples, in trajectory order, then turn order (a final state last).

    Raises:
        ConfigError: Bad ``target``, ``gamma``, ``lam`` or ``truncation``.
        DataError: No trajectories, or trajectories from several environments.
    """
    if target not in ("return", "success", "td"):
        raise ConfigError(f"target must be 'return', 'success' or 'td', got {target!r}")
    if not 0.0 <= gamma <= 1.0:
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"lam must be in [0, 1], got {lam}")
    if truncation not in ("terminal", "drop"):
        raise ConfigError(f"truncation must be 'terminal' or 'drop', got {truncation!r}")
    if target == "td" and critic is None:
        raise ConfigError("target='td' needs a critic to bootstrap from; pass critic=...")
    env_id = env_of(trajectories)
    histories: list[History] = []
    targets: list[FloatArray] = []
    task_ids: list[str] = []
    steps: list[int] = []
    success: list[float] = []
    episode: list[int] = []
    is_final: list[bool] = []
    skipped = {"incomplete": 0, "truncated": 0, "empty": 0, "states before a resampling": 0}
    for index, trajectory in enumerate(trajectories):
        n = trajectory.n_steps
        if n == 0:
            skipped["empty"] += 1
            continue
        if trajectory.error is not None or not (trajectory.terminated or trajectory.truncated):
            skipped["incomplete"] += 1
            continue
        truncated = trajectory.truncated and not trajectory.terminated
        if truncated and truncation == "drop":
            skipped["truncated"] += 1
            continue
        states = [History.from_trajectory(trajectory, t) for t in range(n)]
        # SMC/AMC particles: states before the last resampling have selected continuations
        # (agentmc.critics.fit.episode_trajectories); only later states keep their targets.
        first = min(int(trajectory.meta.get("unbiased_from", 0) or 0), n)
        rewards = np.asarray(trajectory.rewards, dtype=np.float64)
        if target == "return":
            values = returns_to_go(rewards, gamma)
        elif target == "success":
            values = np.full(n, float(trajectory.success))
        else:
            assert critic is not None
            final = History.from_trajectory(trajectory)
            critic_values = np.asarray(critic.values([*states, final]), dtype=np.float64)
            values = td_lambda_returns(rewards, critic_values, gamma, lam, bootstrap=truncated)
        if first:
            skipped["states before a resampling"] += first
            states, values = states[first:], values[first:]
        is_final.extend([False] * (n - first))
        if terminal:
            states.append(History.from_trajectory(trajectory))
            outcome = trajectory.success if target == "success" else trajectory.total_return
            values = np.append(values, float(outcome))
            is_final.append(True)
        count = len(states)
        histories.extend(states)
        targets.append(values)
        task_ids.extend([trajectory.task_id] * count)
        steps.extend(range(first, first + count))
        success.extend([float(trajectory.success)] * count)
        episode.extend([index] * count)
    return Examples(
        histories=histories,
        targets=np.concatenate(targets) if targets else np.zeros(0),
        task_ids=task_ids,
        steps=np.asarray(steps, dtype=np.int64),
        success=np.asarray(success, dtype=np.float64),
        episode=np.asarray(episode, dtype=np.int64),
        env_id=env_id,
        n_trajectories=len(set(episode)),
        skipped={k: v for k, v in skipped.items() if v},
        terminal=np.asarray(is_final, dtype=bool),
    )
