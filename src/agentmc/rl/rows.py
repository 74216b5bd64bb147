"""Advantages for a flat batch of *step rows*: the layout of LLM-scale RL frameworks.

verl (with verl-agent's multi-turn layout) and custom TRL loops hold one row
per agent step, not one object per episode. :func:`step_advantages` takes such
rows as plain arrays (reward, group, episode, step index, state key before and
after, optionally termination and an action key), rebuilds the episodes,
validates them, runs any estimator of :mod:`agentmc.rl.estimators` and returns
one advantage per row in row order. :func:`token_advantages` broadcasts them
over response tokens (numpy or torch). :mod:`agentmc.rl.verl` and
:mod:`agentmc.rl.trl` are thin glue around these two functions.

Example:
    >>> import numpy as np
    >>> rows = dict(
    ...     step_rewards=np.array([0.0, 1.0, 0.0]),
    ...     group_ids=np.array(["u", "u", "u"], dtype=object),
    ...     traj_ids=np.array(["a", "a", "b"], dtype=object),
    ...     step_index=np.array([0, 1, 0]),
    ...     state_keys=np.array(["s", "x", "s"], dtype=object),
    ...     next_state_keys=np.array(["x", "win", "lose"], dtype=object))
    >>> advantages, n_nan = step_advantages(**rows, estimator="g2po")
    >>> advantages.round(2).tolist(), n_nan
    ([1.93, 0.71, -1.93], 0)
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import numpy.typing as npt

from agentmc.errors import DataError
from agentmc.rl.estimators import EstimatorConfig, get_estimator
from agentmc.rl.graph import Episode
from agentmc.types import FloatArray


def step_advantages(
    step_rewards: npt.ArrayLike,
    group_ids: npt.ArrayLike,
    traj_ids: npt.ArrayLike,
    step_index: npt.ArrayLike,
    state_keys: npt.ArrayLike,
    next_state_keys: npt.ArrayLike,
    terminated: npt.ArrayLike | None = None,
    action_keys: npt.ArrayLike | None = None,
    *,
    estimator: str = "g2po",
    config: EstimatorConfig | None = None,
) -> tuple[FloatArray, int]:
    """Per-step advantages for a flat batch of step rows (the verl/TRL layout).

    Args:
        step_rewards: Reward of each row's step, shape ``(N,)``.
        group_ids: Group (task instance) of each row, shape ``(N,)``.
        traj_ids: Episode of each row, shape ``(N,)``; unique across groups.
        step_index: Position of the step in its episode, shape ``(N,)``.
        state_keys: Hashable state key before the step, shape ``(N,)``.
        next_state_keys: State key after the step, shape ``(N,)``.
        terminated: Whether the step terminated its episode, shape ``(N,)``;
            default: each episode's last step did.
        action_keys: Hashable action key of each row, shape ``(N,)``; default:
            one key for all, so an edge is a state pair ``(s, s')``.
        estimator: Any name in :data:`~agentmc.rl.estimators.ESTIMATORS`.
        config: Estimator settings.

    Returns:
        ``(advantages, n_nan)``: shape ``(N,)`` in row order, and the number of
        episodes with a NaN reward (their steps get 0).

    Raises:
        DataError: Mismatched lengths, an episode in two groups, gaps or
            repeats in an episode's steps, or a broken state chain.
        UnknownNameError: Unknown estimator.
    """
    function = get_estimator(estimator)
    rewards = np.asarray(step_rewards, dtype=np.float64).reshape(-1)
    columns = {
        "group_ids": np.asarray(group_ids, dtype=object).reshape(-1),
        "traj_ids": np.asarray(traj_ids, dtype=object).reshape(-1),
        "step_index": np.asarray(step_index).reshape(-1),
        "state_keys": _keys(state_keys),
        "next_state_keys": _keys(next_state_keys),
    }
    if terminated is not None:
        columns["terminated"] = np.asarray(terminated, dtype=bool).reshape(-1)
    columns["action_keys"] = _keys([""] * len(rewards) if action_keys is None else action_keys)
    for name, column in columns.items():
        if len(column) != len(rewards):
            raise DataError(f"{name} has {len(column)} rows, step_rewards has {len(rewards)}")
    if len(rewards) == 0:
        return np.zeros(0), 0
    try:
        steps = columns["step_index"].astype(np.int64)
    except (TypeError, ValueError):
        raise DataError("step_index must hold integers") from None
    rows_of: dict[Hashable, list[int]] = {}
    group_of: dict[Hashable, Hashable] = {}
    for row, (group, trajectory) in enumerate(
        zip(columns["group_ids"], columns["traj_ids"], strict=True)
    ):
        if group_of.setdefault(trajectory, group) != group:
            raise DataError(
                f"episode {trajectory!r} has steps in groups {group_of[trajectory]!r} and "
                f"{group!r}; an episode belongs to one group (task instance)"
            )
        rows_of.setdefault(trajectory, []).append(row)
    groups: dict[Hashable, list[Episode]] = {}
    episode_rows: dict[Hashable, list[FloatArray]] = {}
    for trajectory, rows in rows_of.items():
        order = np.asarray(rows)[np.argsort(steps[rows], kind="stable")]
        if not np.array_equal(steps[order], np.arange(len(order))):
            raise DataError(
                f"episode {trajectory!r} has step indices {sorted(steps[rows].tolist())[:8]}; "
                "expected 0, 1, ... without gaps or repeats (drop cut episodes whole)"
            )
        before, after = columns["state_keys"][order], columns["next_state_keys"][order]
        broken = [t for t in range(len(order) - 1) if after[t] != before[t + 1]]
        if broken:
            t = broken[0]
            raise DataError(
                f"episode {trajectory!r}: next_state_key of step {t} ({after[t]!r}) differs "
                f"from state_key of step {t + 1} ({before[t + 1]!r})"
            )
        ends = bool(columns["terminated"][order[-1]]) if "terminated" in columns else True
        group = group_of[trajectory]
        actions = tuple(columns["action_keys"][order].tolist())
        episode = Episode(str(group), (*before.tolist(), after[-1]), actions, rewards[order], ends)
        groups.setdefault(group, []).append(episode)
        episode_rows.setdefault(group, []).append(order)
    results = function(list(groups.values()), config or EstimatorConfig())
    advantages = np.zeros(len(rewards))
    n_nan = 0
    for result, orders in zip(results, episode_rows.values(), strict=True):
        n_nan += result.n_nan
        for values, order in zip(result.steps, orders, strict=True):
            advantages[order] = values
    return advantages, n_nan


def _keys(values: Any) -> npt.NDArray[np.object_]:
    items = list(values)
    array = np.empty(len(items), dtype=np.object_)
    array[:] = items
    for key in array:
        try:
            hash(key)
        except TypeError:
            raise DataError(f"state keys must be hashable, got {type(key).__name__}") from None
    return array


def _to_numpy(tensor: Any) -> np.ndarray:
    if hasattr(tensor, "detach"):  # torch
        return tensor.detach().to("cpu").double().numpy()
    return np.asarray(tensor, dtype=np.float64)


def token_advantages(row_advantages: FloatArray, response_mask: Any) -> Any:
    """Broadcast per-row advantages over the response tokens: ``A[i] * mask[i, t]``.

    Args:
        row_advantages: Shape ``(B,)``.
        response_mask: Shape ``(B, L)``, torch tensor or numpy array.

    Returns:
        Shape ``(B, L)``, same kind, dtype and device as ``response_mask``
        (float32 if the mask is not floating point).
    """
    if hasattr(response_mask, "detach"):
        import torch

        dtype = response_mask.dtype if response_mask.is_floating_point() else torch.float32
        values = torch.as_tensor(row_advantages, dtype=dtype, device=response_mask.device)
        return values.unsqueeze(-1) * response_mask.to(dtype)
    mask = np.asarray(response_mask)
    return np.multiply(np.asarray(row_advantages)[:, None], mask, dtype=np.float64)
