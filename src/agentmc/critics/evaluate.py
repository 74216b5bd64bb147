"""How good is a critic: regression error, ranking, success discrimination, calibration.

:func:`critic_metrics` scores predicted values against examples built from
held-out trajectories (:func:`agentmc.critics.targets.make_examples`):

- ``mse``: mean squared error against the examples' targets;
- ``spearman``: rank correlation with the targets (what matters for
  resampling is the order of particles, not the scale);
- ``auroc_success``: area under the ROC curve for telling states of episodes
  that end in success from the others, over all states, and
  ``auroc_turn_<t>`` at the state after exactly t turns (the checkpoints AMC
  resamples at);
- ``calibration``: per bin of predicted value, the mean prediction and the
  observed success rate (:func:`reliability_plot` draws it).

Metrics that are undefined on the data (a single class, a constant
prediction) are ``None``, never an exception.

Example:
    >>> values = np.array([0.9, 0.8, 0.3, 0.1])
    >>> targets = np.array([1.0, 1.0, 0.0, 0.0])
    >>> metrics = prediction_metrics(values, targets, targets, np.array([0, 1, 0, 1]))
    >>> metrics["auroc_success"], round(metrics["mse"], 4)
    (1.0, 0.0375)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmc.errors import require
from agentmc.types import FloatArray, IntArray

if TYPE_CHECKING:
    from agentmc.critics.core import Critic
    from agentmc.critics.targets import Examples

#: Turns at which AUROC is reported separately (AMC checkpoints of the paper were 4 to 12).
AUROC_TURNS = (2, 4, 8)


def auroc(scores: FloatArray, labels: FloatArray) -> float | None:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (``None`` if one class)."""
    positive = np.asarray(labels) > 0.5
    if positive.all() or not positive.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores))


def spearman(a: FloatArray, b: FloatArray) -> float | None:
    """Spearman rank correlation (``None`` if either side is constant)."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def calibration_bins(
    values: FloatArray, success: FloatArray, n_bins: int = 10
) -> list[dict[str, float]]:
    """Reliability table: equal-width bins of ``values`` clipped to ``[0, 1]``.

    Args:
        values: Predicted values, shape ``(N,)``.
        success: Final success 0/1, shape ``(N,)``.
        n_bins: Number of bins.

    Returns:
        One entry per non-empty bin: ``low``, ``high``, ``count``, ``mean_value``,
        ``success_rate``.
    """
    clipped = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(clipped, edges[1:-1]), 0, n_bins - 1)
    table = []
    for b in range(n_bins):
        mask = which == b
        if mask.any():
            table.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "count": int(mask.sum()),
                    "mean_value": float(clipped[mask].mean()),
                    "success_rate": float(np.mean(success[mask])),
                }
            )
    return table


def prediction_metrics(
    values: FloatArray,
    targets: FloatArray,
    success: FloatArray,
    steps: IntArray,
    turns: Sequence[int] = AUROC_TURNS,
) -> dict[str, Any]:
    """All metrics for predictions ``values`` (see the module docstring).

    Args:
        values: Predictions, shape ``(N,)``.
        targets: Regression targets, shape ``(N,)``.
        success: Final success of each state's episode, 0/1, shape ``(N,)``.
        steps: Turns taken before each state, shape ``(N,)``.
        turns: Turn numbers with their own AUROC.

    Returns:
        JSON-safe dict of metrics.
    """
    values = np.asarray(values, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    success = np.asarray(success, dtype=np.float64)
    steps = np.asarray(steps)
    out: dict[str, Any] = {
        "n_states": int(values.shape[0]),
        "mse": float(np.mean((values - targets) ** 2)) if values.size else None,
        "spearman": spearman(values, targets),
        "auroc_success": auroc(values, success),
        "mean_value": float(values.mean()) if values.size else None,
        "success_rate": float(success.mean()) if values.size else None,
    }
    for turn in turns:
        mask = steps == turn
        out[f"auroc_turn_{turn}"] = auroc(values[mask], success[mask])
        out[f"n_turn_{turn}"] = int(mask.sum())
    out["calibration"] = calibration_bins(values, success)
    return out


def critic_metrics(
    critic: Critic, examples: Examples, turns: Sequence[int] = AUROC_TURNS
) -> tuple[dict[str, Any], FloatArray]:
    """Score ``critic`` on ``examples``.

    Returns:
        The metrics (plus ``n_tasks`` and ``n_trajectories``) and the predictions ``(N,)``.
    """
    values = np.asarray(critic.values(examples.histories), dtype=np.float64)
    metrics = prediction_metrics(values, examples.targets, examples.success, examples.steps, turns)
    metrics["n_tasks"] = len(set(examples.task_ids))
    metrics["n_trajectories"] = examples.n_trajectories
    return metrics, values


def reliability_plot(
    values: FloatArray, success: FloatArray, path: str | Path, *, title: str = "Critic calibration"
) -> Path:
    """Save a reliability diagram (predicted value vs observed success) as PNG.

    Args:
        values: Predicted values, shape ``(N,)``; clipped to ``[0, 1]``.
        success: Final success 0/1, shape ``(N,)``.
        path: Output ``.png`` file.
        title: Plot title.

    Returns:
        ``path``.
    """
    matplotlib = require("matplotlib", "report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = calibration_bins(values, success)
    path = Path(path)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top.plot(
        [row["mean_value"] for row in table],
        [row["success_rate"] for row in table],
        marker="o",
        label="critic",
    )
    top.set_ylabel("observed success rate")
    top.set_ylim(-0.02, 1.02)
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.bar(
        [(row["low"] + row["high"]) / 2 for row in table],
        [row["count"] for row in table],
        width=0.09,
        color="tab:blue",
        alpha=0.6,
    )
    bottom.set_xlabel("predicted value (clipped to [0, 1])")
    bottom.set_ylabel("states")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
