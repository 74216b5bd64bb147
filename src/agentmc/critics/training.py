"""Torch pieces shared by the neural critics (embedding + MLP, LM + LoRA).

- :func:`pick_device`: ``"auto"`` means CUDA when available, else CPU, so the
  same code trains on a laptop and on a GPU node.
- :func:`seeded`: run a block with torch's global generator seeded from an
  explicit ``np.random.Generator`` and restored afterwards (layer
  initialisation and dropout draw from torch's global generator).
- :class:`EarlyStopping`: keep the best weights seen on validation, stop after
  ``patience`` evaluations without improvement.
- :func:`target_loss` / :func:`to_value`: MSE on returns, binary cross-entropy
  on 0/1 success (the head outputs a logit then).

Only imported by the torch backends; needs the ``torch`` extra.

Example:
    >>> import numpy as np
    >>> stopper = EarlyStopping(patience=2)
    >>> [stopper.update(loss, {}) for loss in (1.0, 0.5, 0.7, 0.6)]
    [True, True, True, False]
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import numpy as np


def pick_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` if available else ``"cpu"``; other names pass through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@contextlib.contextmanager
def seeded(rng: np.random.Generator) -> Iterator[int]:
    """Seed torch's global generators from ``rng`` inside the block, restore them after.

    Yields:
        The seed used (for a ``torch.Generator`` of data shuffling, if needed).
    """
    import torch

    seed = int(rng.integers(2**31 - 1))
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield seed


class EarlyStopping:
    """Track the best validation loss and a copy of the weights that achieved it.

    Attributes:
        patience: Evaluations without improvement before stopping.
        best_loss: Lowest validation loss seen.
        best_state: Deep copy of the state passed with the best loss.
        evaluations: Number of ``update`` calls.
        best_evaluation: Index (0-based) of the best one.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = float("inf")
        self.best_state: Any = None
        self.evaluations = 0
        self.best_evaluation = -1
        self._bad = 0

    def update(self, loss: float, state: Any) -> bool:
        """Record one validation loss; return False when training should stop."""
        self.evaluations += 1
        if loss < self.best_loss - 1e-9:
            self.best_loss = loss
            self.best_state = copy.deepcopy(state)
            self.best_evaluation = self.evaluations - 1
            self._bad = 0
        else:
            self._bad += 1
        return self._bad < self.patience


def target_loss(outputs: Any, targets: Any, target: str) -> Any:
    """Mean loss of head outputs ``(B,)`` against targets ``(B,)``: BCE for success, else MSE."""
    import torch.nn.functional as F

    if target == "success":
        return F.binary_cross_entropy_with_logits(outputs, targets)
    return F.mse_loss(outputs, targets)


def to_value(outputs: Any, target: str, bounds: tuple[float, float]) -> np.ndarray:
    """Head outputs ``(B,)`` -> values: sigmoid for success, then clip to ``bounds``."""
    import torch

    if target == "success":
        outputs = torch.sigmoid(outputs)
    values = outputs.detach().float().cpu().numpy().astype(np.float64)
    return np.clip(values, *bounds)


def state_on_cpu(module: Any, only_trainable: bool = False) -> dict[str, Any]:
    """A CPU copy of a module's parameters (all, or only those with ``requires_grad``)."""
    if only_trainable:
        names = {name for name, p in module.named_parameters() if p.requires_grad}
        return {k: v.detach().cpu().clone() for k, v in module.state_dict().items() if k in names}
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
