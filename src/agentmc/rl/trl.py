"""G2PO and GiGPO advantages for TRL, as an array function over step rows.

For multi-turn agents in TRL's ``GRPOTrainer`` use
:class:`agentmc.rl.trl_trainer.StepCreditGRPOTrainer` with
:func:`agentmc.rl.trl_trainer.make_rollout_func`: each episode is one
completion and every turn's tokens get that step's advantage (TRL 1.x accepts
``(B, T)`` advantages from subclasses); it is tested with one real TRL
optimisation step.

This module is the lower-level piece for the other layout, *step rows* (one
completion per agent step, as with verl): :func:`completion_advantages` turns
per-row columns (group id, episode id, step index, state keys before and
after, step reward) into one advantage per row, shaped like TRL's
``advantages`` ``(B,)``, for a subclass that overrides
``_generate_and_score_completions`` and replaces ``output["advantages"]``.
Compute it on the gathered batch (before TRL slices it per process).

Example:
    >>> import numpy as np
    >>> completion_advantages(
    ...     np.array([0.0, 1.0, 0.0]), ["u", "u", "u"], ["a", "a", "b"], [0, 1, 0],
    ...     ["s", "x", "s"], ["x", "win", "lose"]).round(2).tolist()
    [1.93, 0.71, -1.93]
"""

from __future__ import annotations

import logging
from typing import Any

import numpy.typing as npt

from agentmc.rl.estimators import EstimatorConfig
from agentmc.rl.rows import _to_numpy, step_advantages

logger = logging.getLogger(__name__)


def completion_advantages(
    rewards: Any,
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
) -> Any:
    """One advantage per completion (step row), shaped like TRL's ``advantages``.

    Args:
        rewards: Each completion's step reward, shape ``(B,)`` (torch or numpy).
        group_ids: Group (task instance) of each completion, shape ``(B,)``.
        traj_ids: Episode of each completion, shape ``(B,)``.
        step_index: Position of the step in its episode, shape ``(B,)``.
        state_keys: State key before the step, shape ``(B,)``.
        next_state_keys: State key after the step, shape ``(B,)``.
        terminated: Whether the step terminated its episode (default: the last step did).
        action_keys: Optional action keys (default: edges are state pairs).
        estimator: ``"g2po"``, ``"gigpo"``, ``"grpo"`` or ``"rloo"``.
        config: Estimator settings.

    Returns:
        Shape ``(B,)``: a torch tensor on ``rewards``' device and dtype if
        ``rewards`` is one, else a numpy array. Episodes with a NaN reward get
        0 (counted in a ``logging`` warning).

    Raises:
        DataError: Inconsistent rows (see :func:`agentmc.rl.rows.step_advantages`).
    """
    advantages, n_nan = step_advantages(
        _to_numpy(rewards),
        group_ids,
        traj_ids,
        step_index,
        state_keys,
        next_state_keys,
        terminated,
        action_keys,
        estimator=estimator,
        config=config,
    )
    if n_nan:
        logger.warning("%s: %d episodes with NaN rewards got advantage 0", estimator, n_nan)
    if hasattr(rewards, "detach"):
        import torch

        dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
        return torch.as_tensor(advantages, dtype=dtype, device=rewards.device)
    return advantages
