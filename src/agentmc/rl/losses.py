"""Policy losses as pure functions of per-step log-probabilities and advantages.

A loss takes the current log-probabilities of the actions taken, the ones at
sampling time, the advantages and a clip range, all shape ``(N,)`` over the
batch's steps, and returns ``(loss, coef)``: the scalar loss and
``coef[t] = -N * d loss / d log pi(a_t | s_t)``. A model with any
parameterisation then gets its gradient as
``-(1/N) sum_t coef[t] * grad log pi(a_t | s_t)``, so the trainer never
branches on the loss name: it looks the function up in :data:`LOSSES`.

Example:
    >>> import numpy as np
    >>> logp = np.log(np.array([0.5, 0.25]))
    >>> loss, coef = LOSSES["pg"](logp, logp, np.array([1.0, -1.0]), 0.2)
    >>> coef.tolist()
    [1.0, -1.0]
    >>> _, coef = LOSSES["ppo_clip"](logp + 0.5, logp, np.array([1.0, -1.0]), 0.2)
    >>> coef.tolist()  # ratio e^0.5 > 1.2: clipped for A > 0, not for A < 0
    [0.0, -1.6487212707001282]

References:
    Williams, "Simple Statistical Gradient-Following Algorithms for
    Connectionist Reinforcement Learning", 1992.
    Schulman et al., "Proximal Policy Optimization Algorithms", 2017.
    arXiv:1707.06347.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from agentmc.errors import UnknownNameError
from agentmc.types import FloatArray

Loss = Callable[[FloatArray, FloatArray, FloatArray, float], tuple[float, FloatArray]]


def policy_gradient(
    log_probs: FloatArray, old_log_probs: FloatArray, advantages: FloatArray, clip: float
) -> tuple[float, FloatArray]:
    """REINFORCE: ``loss = -mean(A * log pi)``; ignores ``old_log_probs`` and ``clip``."""
    return float(-np.mean(advantages * log_probs)) if len(advantages) else 0.0, advantages.copy()


def clipped_surrogate(
    log_probs: FloatArray, old_log_probs: FloatArray, advantages: FloatArray, clip: float
) -> tuple[float, FloatArray]:
    """PPO/GRPO clipped surrogate ``-mean(min(rho A, clip(rho, 1 - c, 1 + c) A))``.

    ``rho = exp(log_probs - old_log_probs)``. Where the clipped branch is the
    minimum and ``rho`` is outside the range, the gradient is zero.
    """
    ratio = np.exp(log_probs - old_log_probs)
    clipped = np.clip(ratio, 1.0 - clip, 1.0 + clip)
    unclipped_term, clipped_term = ratio * advantages, clipped * advantages
    loss = float(-np.mean(np.minimum(unclipped_term, clipped_term))) if len(ratio) else 0.0
    active = unclipped_term <= clipped_term
    return loss, np.where(active, ratio * advantages, 0.0)


#: loss name -> function.
LOSSES: dict[str, Loss] = {"pg": policy_gradient, "ppo_clip": clipped_surrogate}


def get_loss(name: str) -> Loss:
    """Look up a loss by name; the error lists the known names."""
    try:
        return LOSSES[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown loss {name!r}; choose one of {', '.join(sorted(LOSSES))}"
        ) from None
