"""Trajectory-level advantages and returns: pure, shape-explicit numpy functions.

Group RL samples ``K`` trajectories for each of ``G`` tasks (prompts) and scores
each trajectory relative to its own group, so no learned critic is needed.
Rewards come as a ``(G, K)`` array, one row per group.

- :func:`group_advantages`: GRPO's ``(r - mean) / (std + eps)`` per group, with
  the std taken per group (``"group"``), over the whole batch (``"batch"``) or
  not at all (``"none"``, Dr. GRPO), and optional per-sample weights.
- :func:`rloo_advantages`: REINFORCE leave-one-out, ``r_i - mean_{j != i} r_j``.
- :func:`discounted_returns` and :func:`gae`: per-step Monte-Carlo returns and
  generalised advantage estimates over right-padded ``(N, T)`` arrays.

Unscorable samples. A reward of ``NaN`` marks a trajectory that could not be
scored (a crashed environment, a failed judge). As in TRL, it must not poison
its group: it is left out of the group's statistics and its advantage is
exactly ``0``, so it contributes no gradient. Callers count NaNs
(``int(np.isnan(rewards).sum())``) and log them; the step estimators in
:mod:`agentmc.rl.estimators` do that for you.

Example:
    >>> import numpy as np
    >>> rewards = np.array([[1.0, 0.0, 0.0, 1.0]])
    >>> group_advantages(rewards, scale="none")
    array([[ 0.5, -0.5, -0.5,  0.5]])
    >>> rloo_advantages(rewards)
    array([[ 0.66666667, -0.66666667, -0.66666667,  0.66666667]])

References:
    Shao et al., "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in
    Open Language Models" (GRPO), 2024. arXiv:2402.03300.
    Liu et al., "Understanding R1-Zero-Like Training: A Critical Perspective"
    (Dr. GRPO), 2025. arXiv:2503.20783.
    Ahmadian et al., "Back to Basics: Revisiting REINFORCE Style Optimization
    for Learning from Human Feedback in LLMs" (RLOO), 2024. arXiv:2402.14740.
    Schulman et al., "High-Dimensional Continuous Control Using Generalized
    Advantage Estimation", 2016. arXiv:1506.02438.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from agentmc.errors import ConfigError
from agentmc.types import FloatArray

Scale = Literal["group", "batch", "none"]
SCALES: tuple[str, ...] = ("group", "batch", "none")


def _as_groups(rewards: npt.ArrayLike, name: str = "rewards") -> FloatArray:
    array = np.asarray(rewards, dtype=np.float64)
    if array.ndim != 2:
        raise ConfigError(f"{name} must have shape (G, K), got shape {array.shape}")
    return array


def _weighted_stats(
    rewards: FloatArray, weights: FloatArray, axis: int | None
) -> tuple[FloatArray, FloatArray]:
    """Weighted mean and unbiased (reliability-weights) std, ignoring zero weights.

    ``var = sum w (r - m)^2 / (V1 - V2 / V1)`` with ``V1 = sum w``, ``V2 = sum w^2``;
    for equal weights this is the ordinary ``ddof=1`` variance (what ``torch.std``
    returns, hence what TRL and verl use). Fewer than two effective samples give
    a std of 0.
    """
    total = weights.sum(axis=axis, keepdims=True)
    safe_total = np.where(total > 0, total, 1.0)
    # Shift by the smallest used reward so that a group of identical rewards
    # has a mean *exactly* equal to them (advantage exactly 0, not 1e-12).
    reference = np.min(np.where(weights > 0, rewards, np.inf), axis=axis, keepdims=True)
    reference = np.where(np.isfinite(reference), reference, 0.0)
    shifted = np.where(weights > 0, rewards - reference, 0.0)
    shifted_mean = (weights * shifted).sum(axis=axis, keepdims=True) / safe_total
    squares = (weights * (shifted - shifted_mean) ** 2).sum(axis=axis, keepdims=True)
    denominator = total - (weights**2).sum(axis=axis, keepdims=True) / safe_total
    std = np.sqrt(np.where(denominator > 1e-12, squares / np.maximum(denominator, 1e-12), 0.0))
    mean = reference + shifted_mean
    return mean, std


def group_advantages(
    rewards: npt.ArrayLike,
    *,
    scale: Scale = "group",
    weights: npt.ArrayLike | None = None,
    eps: float = 1e-4,
) -> FloatArray:
    """GRPO advantages: each reward relative to its group.

    ``A[g, k] = (r[g, k] - mean_g) / (std + eps)`` where ``mean_g`` is the
    (weighted) mean of group ``g`` and ``std`` is the group's std
    (``scale="group"``) or the std of all valid rewards in the batch
    (``"batch"``); ``scale="none"`` only centres (Dr. GRPO). Stds are unbiased
    (``ddof=1``), as ``torch.std`` in TRL and verl.

    NaN rewards are excluded from every statistic and get advantage ``0``. A
    group with fewer than two valid rewards has std ``0``; its only valid
    member gets ``0`` since it equals its own mean.

    Args:
        rewards: Trajectory rewards, shape ``(G, K)``: ``G`` groups of ``K``.
        scale: Which std divides the centred rewards.
        weights: Non-negative sample weights, shape ``(G, K)`` or ``(K,)``.
            Uniform weights reproduce plain GRPO exactly.
        eps: Added to the std before dividing.

    Returns:
        Advantages, shape ``(G, K)``.

    Raises:
        ConfigError: Bad shapes, negative weights, unknown ``scale`` or ``eps < 0``.

    Example:
        >>> group_advantages([[1.0, 0.0]], eps=0.0).round(4)
        array([[ 0.7071, -0.7071]])
        >>> group_advantages([[1.0, float("nan"), 0.0]], scale="none")
        array([[ 0.5,  0. , -0.5]])
    """
    values = _as_groups(rewards)
    if scale not in SCALES:
        raise ConfigError(f"scale must be one of {SCALES}, got {scale!r}")
    if eps < 0:
        raise ConfigError(f"eps must be >= 0, got {eps}")
    valid = ~np.isnan(values)
    if weights is None:
        w = valid.astype(np.float64)
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), values.shape).copy()
        if np.any(~np.isfinite(w)) or np.any(w < 0):
            raise ConfigError("weights must be finite and >= 0")
        w[~valid] = 0.0
    clean = np.where(valid, values, 0.0)
    mean, group_std = _weighted_stats(clean, w, axis=1)
    if scale == "group":
        denominator = group_std + eps
    elif scale == "batch":
        denominator = _weighted_stats(clean.reshape(1, -1), w.reshape(1, -1), axis=None)[1] + eps
    else:
        denominator = np.ones_like(mean)
    advantages = (clean - mean) / denominator
    return np.where(valid & (w > 0), advantages, 0.0)


def rloo_advantages(rewards: npt.ArrayLike) -> FloatArray:
    """REINFORCE leave-one-out advantages.

    ``A[g, k] = r[g, k] - mean_{j != k} r[g, j]`` over the group's valid
    rewards, which equals ``n / (n - 1) * (r - mean)`` for ``n`` valid rewards.
    NaN rewards are left out and get ``0``; a group with fewer than two valid
    rewards has no baseline and gets ``0`` everywhere.

    Args:
        rewards: Trajectory rewards, shape ``(G, K)``.

    Returns:
        Advantages, shape ``(G, K)``.

    Example:
        >>> rloo_advantages([[3.0, 1.0, 2.0]])
        array([[ 1.5, -1.5,  0. ]])
    """
    values = _as_groups(rewards)
    valid = ~np.isnan(values)
    reference = np.min(np.where(valid, values, np.inf), axis=1, keepdims=True)
    clean = np.where(valid, values - np.where(np.isfinite(reference), reference, 0.0), 0.0)
    count = valid.sum(axis=1, keepdims=True)
    total = clean.sum(axis=1, keepdims=True)
    others = np.maximum(count - 1, 1)
    advantages = clean - (total - clean) / others
    return np.where(valid & (count >= 2), advantages, 0.0)


def _check_padded(
    rewards: npt.ArrayLike, mask: npt.ArrayLike | None
) -> tuple[FloatArray, FloatArray]:
    values = np.asarray(rewards, dtype=np.float64)
    if values.ndim != 2:
        raise ConfigError(f"rewards must have shape (N, T), got shape {values.shape}")
    if mask is None:
        keep = np.ones_like(values)
    else:
        keep = np.asarray(mask, dtype=bool)
        if keep.shape != values.shape:
            raise ConfigError(f"mask shape {keep.shape} must equal rewards shape {values.shape}")
        keep = keep.astype(np.float64)
    return np.where(keep > 0, values, 0.0), keep


def discounted_returns(
    rewards: npt.ArrayLike,
    *,
    gamma: float = 1.0,
    mask: npt.ArrayLike | None = None,
    bootstrap: npt.ArrayLike | None = None,
) -> FloatArray:
    """Monte-Carlo returns-to-go ``G[t] = r[t] + gamma * G[t + 1]``.

    Args:
        rewards: Per-step rewards, shape ``(N, T)``, right-padded.
        gamma: Discount factor in ``[0, 1]``.
        mask: ``True`` on real steps, shape ``(N, T)``; padding is ignored and
            gets return ``0``. Default: every step is real.
        bootstrap: Value of the state after the last real step, shape ``(N,)``:
            ``0`` for a terminated episode, a critic's estimate for a truncated
            one. Default ``0``.

    Returns:
        Returns-to-go, shape ``(N, T)``.

    Example:
        >>> discounted_returns([[0.0, 0.0, 1.0]], gamma=0.5)
        array([[0.25, 0.5 , 1.  ]])
    """
    if not 0.0 <= gamma <= 1.0:
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
    values, keep = _check_padded(rewards, mask)
    n, horizon = values.shape
    running = np.zeros(n) if bootstrap is None else np.asarray(bootstrap, dtype=np.float64).copy()
    if running.shape != (n,):
        raise ConfigError(f"bootstrap must have shape ({n},), got {running.shape}")
    out = np.zeros_like(values)
    for t in range(horizon - 1, -1, -1):
        # A padded step leaves the running return untouched, so the bootstrap
        # value reaches each row's last real step whatever its length.
        running = np.where(keep[:, t] > 0, values[:, t] + gamma * running, running)
        out[:, t] = np.where(keep[:, t] > 0, running, 0.0)
    return out


def gae(
    rewards: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
    mask: npt.ArrayLike | None = None,
    bootstrap: npt.ArrayLike | None = None,
) -> FloatArray:
    """Generalised advantage estimation.

    ``delta[t] = r[t] + gamma * V[t + 1] - V[t]`` and
    ``A[t] = delta[t] + gamma * lam * A[t + 1]``, where ``V`` after the last real
    step is ``bootstrap`` (``0`` for terminated episodes).

    Args:
        rewards: Per-step rewards, shape ``(N, T)``, right-padded.
        values: Critic values of the state before each step, shape ``(N, T)``.
        gamma: Discount factor in ``[0, 1]``.
        lam: GAE's lambda in ``[0, 1]``; ``1`` gives ``returns - values``.
        mask: ``True`` on real steps, shape ``(N, T)``; padding gets ``0``.
        bootstrap: Value after the last real step, shape ``(N,)``; default ``0``.

    Returns:
        Advantages, shape ``(N, T)``.

    Example:
        >>> gae([[0.0, 1.0]], [[0.5, 0.5]], gamma=1.0, lam=1.0)
        array([[0.5, 0.5]])
    """
    if not 0.0 <= gamma <= 1.0:
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"lam must be in [0, 1], got {lam}")
    reward_array, keep = _check_padded(rewards, mask)
    value_array = np.asarray(values, dtype=np.float64)
    if value_array.shape != reward_array.shape:
        raise ConfigError(f"values shape {value_array.shape} must equal {reward_array.shape}")
    value_array = np.where(keep > 0, value_array, 0.0)
    n, horizon = reward_array.shape
    next_value = np.zeros(n) if bootstrap is None else np.asarray(bootstrap, dtype=np.float64)
    if next_value.shape != (n,):
        raise ConfigError(f"bootstrap must have shape ({n},), got {next_value.shape}")
    running = np.zeros(n)
    out = np.zeros_like(reward_array)
    for t in range(horizon - 1, -1, -1):
        real = keep[:, t] > 0
        delta = reward_array[:, t] + gamma * next_value - value_array[:, t]
        running = np.where(real, delta + gamma * lam * running, running)
        next_value = np.where(real, value_array[:, t], next_value)
        out[:, t] = np.where(real, running, 0.0)
    return out
