"""Learning curves: success against environment steps, smoothed, compared, plotted.

A training history is a list of per-iteration records with a cumulative
``env_steps`` and a ``success_rate`` (see :mod:`agentmc.rl.trainer`). Runs of
different estimators or seeds take different numbers of environment steps per
iteration (short successful episodes are cheap), so curves are compared on a
common grid of environment steps:

- :func:`smoothed_curve`: ``(env_steps, trailing mean of success over a window)``;
- :func:`mean_curve`: several runs interpolated onto one grid and averaged;
- :func:`steps_to_reach`: the first grid point where a curve reaches a target
  (``None`` if it never does);
- :func:`plot_curves`: one line per label (mean over its runs, with the range
  of the runs shaded) into a PNG (needs matplotlib, extra ``report``).

Example:
    >>> history = [{"env_steps": 10 * (i + 1), "success_rate": s}
    ...            for i, s in enumerate([0.0, 0.5, 1.0, 1.0])]
    >>> steps, success = smoothed_curve(history, window=2)
    >>> success.tolist()
    [0.0, 0.25, 0.75, 1.0]
    >>> steps_to_reach(steps, success, 0.7)
    30.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.errors import ConfigError, DataError, require
from agentmc.types import FloatArray

History = Sequence[Mapping[str, Any]]


def smoothed_curve(
    history: History, *, window: int = 5, metric: str = "success_rate"
) -> tuple[FloatArray, FloatArray]:
    """A run's curve with a trailing moving average.

    Args:
        history: Per-iteration records with ``env_steps`` and ``metric``.
        window: Iterations averaged (fewer at the start).
        metric: The record field to smooth.

    Returns:
        ``(env_steps, smoothed)``, both shape ``(n_iterations,)``.

    Raises:
        ConfigError: ``window < 1``.
        DataError: A record lacks the fields.
    """
    if window < 1:
        raise ConfigError(f"window must be >= 1, got {window}")
    try:
        steps = np.array([float(r["env_steps"]) for r in history])
        values = np.array([float(r[metric]) for r in history])
    except (KeyError, TypeError) as error:
        raise DataError(f"history records need env_steps and {metric}: {error}") from None
    sums = np.cumsum(np.concatenate([[0.0], values]))
    index = np.arange(1, len(values) + 1)
    start = np.maximum(index - window, 0)
    return steps, (sums[index] - sums[start]) / (index - start)


def mean_curve(
    histories: Sequence[History], grid: FloatArray, *, window: int = 5
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Average several runs on a common grid of environment steps.

    Each smoothed curve is interpolated linearly onto ``grid``; beyond a run's
    last point it is held at its last value, before its first point at its
    first value.

    Args:
        histories: One history per run (e.g. per seed).
        grid: Environment steps, shape ``(M,)``, increasing.
        window: Smoothing window of :func:`smoothed_curve`.

    Returns:
        ``(mean, low, high)`` over runs, each shape ``(M,)``.
    """
    if not histories:
        raise DataError("mean_curve needs at least one run")
    curves = []
    for history in histories:
        steps, values = smoothed_curve(history, window=window)
        curves.append(np.interp(grid, steps, values))
    stacked = np.vstack(curves)
    return stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)


def steps_to_reach(steps: FloatArray, values: FloatArray, target: float) -> float | None:
    """The first ``steps[i]`` with ``values[i] >= target``; ``None`` if never."""
    hits = np.flatnonzero(np.asarray(values) >= target - 1e-12)
    return float(np.asarray(steps)[hits[0]]) if len(hits) else None


def plot_curves(
    curves: Mapping[str, Sequence[History]],
    path: str | Path,
    *,
    window: int = 5,
    title: str = "Learning curves",
    target: float | None = None,
) -> Path:
    """Plot success against environment steps, one line per label.

    Args:
        curves: Label -> its runs' histories (one run, or one per seed).
        path: Output PNG.
        window: Smoothing window in iterations.
        title: Figure title.
        target: Draw a horizontal reference line at this success rate.

    Returns:
        The written path.

    Raises:
        MissingExtraError: matplotlib is not installed (extra ``report``).
    """
    matplotlib = require("matplotlib", "report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for label, histories in curves.items():
        runs = [h for h in histories if len(h)]
        if not runs:
            continue
        end = min(float(h[-1]["env_steps"]) for h in runs)
        start = max(float(h[0]["env_steps"]) for h in runs)
        grid = np.linspace(min(start, end), end, 200)
        mean, low, high = mean_curve(runs, grid, window=window)
        (line,) = axis.plot(grid, mean, label=f"{label} (n={len(runs)})")
        if len(runs) > 1:
            axis.fill_between(grid, low, high, color=line.get_color(), alpha=0.15)
    if target is not None:
        axis.axhline(target, color="grey", linestyle="--", linewidth=1)
    axis.set_xlabel("environment steps")
    axis.set_ylabel(f"success rate (moving average, {window} iterations)")
    axis.set_ylim(-0.02, 1.02)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
