"""Final selection: which one of the K particles a run answers with.

Three modes with different meanings (design.md section 2); every result
records which one produced it, and results of different modes are never mixed:

- ``"reward"``: the best true return among the finished particles. The
  environment's reward is visible to the algorithm (planning in a simulator);
  comparable to Best-of-N judged by reward, i.e. pass@K.
- ``"weight"``: one particle drawn from the final normalised weights ``W``.
- ``"critic"``: the highest critic score (no true reward used).

``weight`` and ``critic`` are the deployable modes *only if* the weights
themselves were computed without the true reward; the steering adapter takes
care of that (see :mod:`agentmc.steer`).

Ties are broken by the higher weight, then by the lower index, so the choice
is deterministic given the scores.

Example:
    >>> import numpy as np
    >>> from agentmc.smc.weights import LogWeights
    >>> weights = LogWeights(np.log([0.2, 0.3, 0.5]))
    >>> select_particle("reward", log_weights=weights, returns=np.array([1.0, 1.0, 0.0]),
    ...                 rng=np.random.default_rng(0))
    1
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from agentmc.errors import ConfigError
from agentmc.smc.weights import LogWeights
from agentmc.types import BoolArray, FloatArray

SelectionMode = Literal["reward", "weight", "critic"]
SELECTION_MODES: tuple[str, ...] = get_args(SelectionMode)
DEPLOYABLE: tuple[str, ...] = ("critic", "weight")
"""The modes that never see the true reward (in the order tuning tries them)."""


def _argmax(scores: FloatArray, log_weights: LogWeights, eligible: BoolArray) -> int:
    candidates = np.flatnonzero(eligible)
    # lexsort's last key is the primary one; negate for "largest first".
    order = np.lexsort((candidates, -log_weights.log_w[candidates], -scores[candidates]))
    return int(candidates[order[0]])


def select_particle(
    mode: str,
    *,
    log_weights: LogWeights,
    rng: np.random.Generator,
    returns: FloatArray | None = None,
    scores: FloatArray | None = None,
    eligible: BoolArray | None = None,
) -> int:
    """Index of the particle that ``mode`` selects.

    Args:
        mode: ``"reward"``, ``"weight"`` or ``"critic"``.
        log_weights: Final log weights of the K particles.
        rng: Generator for ``"weight"`` sampling.
        returns: True returns, shape ``(K,)`` (needed for ``"reward"``).
        scores: Critic scores, shape ``(K,)`` (needed for ``"critic"``).
        eligible: Shape ``(K,)`` mask of particles that may be chosen (e.g. not
            failed); if none is eligible, all are.

    Returns:
        The chosen index.

    Raises:
        ConfigError: If the mode is unknown or its input is missing.
    """
    n = len(log_weights)
    mask = np.ones(n, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    if not mask.any():
        mask = np.ones(n, dtype=bool)
    if mode == "reward":
        if returns is None:
            raise ConfigError("selection 'reward' needs the particles' returns")
        return _argmax(np.asarray(returns, dtype=np.float64), log_weights, mask)
    if mode == "critic":
        if scores is None:
            raise ConfigError("selection 'critic' needs critic scores; pass a critic")
        return _argmax(np.asarray(scores, dtype=np.float64), log_weights, mask)
    if mode == "weight":
        restricted = np.where(mask, log_weights.log_w, -np.inf)
        if not np.isfinite(restricted).any():
            restricted = np.where(mask, 0.0, -np.inf)
        normalized = LogWeights(restricted).normalized
        return int(rng.choice(n, p=normalized))
    raise ConfigError(f"unknown selection mode {mode!r}; valid: {', '.join(SELECTION_MODES)}")
