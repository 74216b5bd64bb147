"""Group RL for agents: advantage estimators (GRPO, RLOO, G2PO, GiGPO) and a small trainer.

- :mod:`agentmc.rl.advantages`: trajectory-level advantages and returns over arrays.
- :mod:`agentmc.rl.states`: what "the same state" means per environment.
- :mod:`agentmc.rl.graph`: the group's state graph (G2PO) and anchor groups (GiGPO).
- :mod:`agentmc.rl.estimators`: per-step advantages behind one registry.
- :mod:`agentmc.rl.lm` and :mod:`agentmc.rl.lm_trainer`: LoRA adapters on the
  embedded SmolLM2-135M trained with these estimators (``agentmc train --policy lm``;
  torch extra, imported on demand).
- :mod:`agentmc.rl.trainer`: a linear candidate-scoring policy, the fast CPU
  testbed for the estimators (not a language model).
- :mod:`agentmc.rl.policy`: that policy; a :class:`~agentmc.policies.core.Policy`,
  saved and loaded with :func:`load_trained_policy`.
- :mod:`agentmc.rl.checkpoints` and :mod:`agentmc.rl.curves`: run directories
  (resumable), learning curves (JSONL) and their plots.
- :mod:`agentmc.rl.rows`: advantages for flat per-step rows (the layout of LLM frameworks).
- :mod:`agentmc.rl.verl`, :mod:`agentmc.rl.trl` and :mod:`agentmc.rl.trl_trainer`:
  the estimators inside verl and TRL (imported on demand; not re-exported here).

Example:
    >>> import numpy as np
    >>> from agentmc.rl import Episode, estimate
    >>> group = [Episode("t", ("s", "a", "win"), ("x", "y"), np.array([0.0, 1.0])),
    ...          Episode("t", ("s", "b"), ("z",), np.array([0.0]))]
    >>> [steps.round(2).tolist() for steps in estimate([group], "g2po")[0].steps]
    [[1.93, 0.71], [-1.93]]
"""

from __future__ import annotations

from agentmc.rl.advantages import discounted_returns, gae, group_advantages, rloo_advantages
from agentmc.rl.checkpoints import RunDirectory
from agentmc.rl.curves import mean_curve, plot_curves, smoothed_curve, steps_to_reach
from agentmc.rl.estimators import (
    ESTIMATORS,
    EstimatorConfig,
    StepAdvantages,
    episode_from_trajectory,
    estimate,
    get_estimator,
    group_trajectories,
    register_estimator,
    trajectory_advantages,
)
from agentmc.rl.graph import Episode, StateGraph, anchor_advantages, build_graph, edge_advantages
from agentmc.rl.losses import LOSSES
from agentmc.rl.policy import LinearPolicy, load_trained_policy
from agentmc.rl.states import (
    STATE_SPACES,
    StateIds,
    StateSpace,
    get_state_space,
    normalize_text,
    register_state_space,
    state_ids,
    state_keys,
)
from agentmc.rl.trainer import GRPOConfig, TrainResult, TrainState, train

__all__ = [
    "ESTIMATORS",
    "LOSSES",
    "STATE_SPACES",
    "Episode",
    "EstimatorConfig",
    "GRPOConfig",
    "LinearPolicy",
    "RunDirectory",
    "StateGraph",
    "StateIds",
    "StateSpace",
    "StepAdvantages",
    "TrainResult",
    "TrainState",
    "anchor_advantages",
    "build_graph",
    "discounted_returns",
    "edge_advantages",
    "episode_from_trajectory",
    "estimate",
    "gae",
    "get_estimator",
    "get_state_space",
    "group_advantages",
    "group_trajectories",
    "load_trained_policy",
    "mean_curve",
    "normalize_text",
    "plot_curves",
    "register_estimator",
    "register_state_space",
    "rloo_advantages",
    "smoothed_curve",
    "state_ids",
    "state_keys",
    "steps_to_reach",
    "train",
    "trajectory_advantages",
]
