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

Pooled metrics reward a critic for knowing which *tasks* are hard; resampling
and final selection only ever compare particles of one task. So, given the
task of each state, the **within-task** metrics compare states of the same
task at the same step only (:func:`pair_concordance`):

- ``within_task_auroc``: over all (solved, failed) pairs of states of one
  task at one step, the share the critic orders correctly (ties count half),
  i.e. the pair-weighted mean of the per-group AUROCs;
- ``within_task_pairwise_accuracy``: the same over pairs whose targets differ;
- ``within_task_spearman``: rank correlation of value and target inside each
  (task, step) group, averaged with group sizes as weights.

Pairs of identical histories are left out: any critic must score them alike,
so they measure the data (the same history can end either way), not the
critic. Final states (:attr:`~agentmc.critics.targets.Examples.terminal`)
get their own ``final_auroc`` and ``final_within_task_auroc`` (finished
attempts of one task, whatever their length): how well the critic judges a
finished attempt, which is what the deployable selections use. The pooled
metrics above are over the other states only.

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

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmc.errors import require
from agentmc.types import BoolArray, FloatArray, IntArray

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


def pair_concordance(
    values: FloatArray,
    targets: FloatArray,
    groups: Sequence[Any],
    keys: Sequence[int] | None = None,
) -> tuple[float | None, int, int]:
    """Share of same-group pairs ordered like their targets (ties in value count half).

    Over every pair ``(i, j)`` in one group with ``targets[i] > targets[j]``
    (and ``keys[i] != keys[j]`` when keys are given), the score of the pair is
    1 if ``values[i] > values[j]``, 0.5 on a tie, else 0. With 0/1 targets this
    is the pair-weighted mean of the groups' AUROCs.

    Args:
        values: Predictions, shape ``(N,)``.
        targets: What the order should follow, shape ``(N,)``.
        groups: Group label of each item, length N (e.g. ``(task, step)``).
        keys: Identity of each item's input, length N; pairs with equal keys are skipped.

    Returns:
        ``(score, n_pairs, n_groups)``: score ``None`` when no pair qualifies;
        ``n_groups`` counts groups with at least one pair.

    Example:
        >>> pair_concordance(np.array([0.9, 0.1, 0.5, 0.5]), np.array([1, 0, 1, 0]),
        ...                  ["a", "a", "b", "b"])
        (0.75, 2, 2)
    """
    values = np.asarray(values, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    total, n_pairs, n_groups = 0.0, 0, 0
    for idx, distinct in _within_groups(groups, keys):
        t, v = targets[idx], values[idx]
        mask = (t[:, None] > t[None, :]) & distinct
        count = int(mask.sum())
        if not count:
            continue
        diff = v[:, None] - v[None, :]
        total += float(np.sum((diff > 0)[mask]) + 0.5 * np.sum((diff == 0)[mask]))
        n_pairs += count
        n_groups += 1
    return (total / n_pairs if n_pairs else None), n_pairs, n_groups


def expected_pair_concordance(
    values: FloatArray,
    probabilities: FloatArray,
    groups: Sequence[Any],
    keys: Sequence[int] | None = None,
) -> tuple[float | None, int, float]:
    """Within-group AUROC that ``values`` is expected to reach when outcomes are coin flips.

    Each item succeeds independently with its ``probabilities[i]`` (e.g. the
    true value of a state: its success rate over many fresh rollouts). A pair
    ``(i, j)`` of one group (``keys`` differing, when given) enters the AUROC
    when exactly one succeeds: ``i`` with weight ``a = p_i (1 - p_j)``, ``j``
    with ``b = p_j (1 - p_i)``. The ordering by ``values`` scores ``a`` if
    ``values[i] > values[j]``, ``b`` if below, ``(a + b) / 2`` on a tie. The
    result is ``sum(score) / sum(a + b)``, the ratio of the expected numerator
    and denominator of :func:`pair_concordance` over success draws.

    With ``values = probabilities`` it is the **ceiling** of the within-task
    AUROC, ``sum(max(a, b)) / sum(a + b)``: no critic orders the pairs better
    in expectation, because the outcome, not the state, is what is left to chance.

    Args:
        values: Predictions, shape ``(N,)``.
        probabilities: Success probability of each item, in ``[0, 1]``, shape ``(N,)``.
        groups: Group label of each item, length N.
        keys: Identity of each item's input; pairs with equal keys are skipped.

    Returns:
        ``(expected AUROC, pairs counted, expected mixed pairs sum(a + b))``: the
        AUROC is ``None`` when no pair can have mixed outcomes. The third value
        weights the result when pooling groups or resampling them.

    Example:
        >>> p = np.array([0.9, 0.1])
        >>> round(expected_pair_concordance(p, p, ["a", "a"])[0], 4)  # 0.81 / (0.81 + 0.01)
        0.9878
        >>> round(expected_pair_concordance(-p, p, ["a", "a"])[0], 4)
        0.0122
    """
    values = np.asarray(values, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    score = weight = 0.0
    n_pairs = 0
    for idx, distinct in _within_groups(groups, keys):
        pi, v = p[idx], values[idx]
        upper = np.triu(distinct, k=1)
        a = pi[:, None] * (1.0 - pi[None, :])  # i alone succeeds
        b = a.T  # j alone succeeds
        diff = v[:, None] - v[None, :]
        pair_score = np.where(diff > 0, a, np.where(diff < 0, b, 0.5 * (a + b)))
        score += float(pair_score[upper].sum())
        weight += float((a + b)[upper].sum())
        n_pairs += int(upper.sum())
    return (score / weight if weight > 0 else None), n_pairs, weight


def _within_groups(
    groups: Sequence[Any], keys: Sequence[int] | None
) -> Iterator[tuple[IntArray, BoolArray]]:
    """Each group of two or more items: its indices and which of its pairs have different keys.

    The mask is ``(n, n)``, all ``True`` when ``keys`` is ``None``.
    """
    for index in _group_members(groups).values():
        if len(index) < 2:
            continue
        idx = np.asarray(index)
        if keys is None:
            yield idx, np.ones((idx.size, idx.size), dtype=bool)
        else:
            k = np.asarray([keys[i] for i in index])
            yield idx, k[:, None] != k[None, :]


def _group_members(groups: Sequence[Any]) -> dict[Any, list[int]]:
    """Indices of the items of each group label, in first-seen order."""
    members: dict[Any, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    return members


def grouped_spearman(
    values: FloatArray, targets: FloatArray, groups: Sequence[Any]
) -> tuple[float | None, int]:
    """Spearman correlation inside each group, averaged with group sizes as weights.

    Groups where values or targets are constant are skipped.

    Returns:
        ``(mean correlation or None, groups used)``.
    """
    values = np.asarray(values, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    members = _group_members(groups)
    total, weight, used = 0.0, 0, 0
    for index in members.values():
        if len(index) < 3:
            continue
        rho = spearman(values[index], targets[index])
        if rho is None:
            continue
        total += rho * len(index)
        weight += len(index)
        used += 1
    return (total / weight if weight else None), used


def within_task_metrics(
    values: FloatArray,
    targets: FloatArray,
    success: FloatArray,
    task_ids: Sequence[str],
    steps: IntArray,
    keys: Sequence[int] | None = None,
    prefix: str = "within_task",
    by_step: bool = True,
) -> dict[str, Any]:
    """Within-task AUROC, pairwise accuracy and Spearman (see the module docstring).

    Args:
        values: Predictions, shape ``(N,)``.
        targets: Regression targets, shape ``(N,)``.
        success: Final success 0/1, shape ``(N,)``.
        task_ids: Task of each state, length N.
        steps: Turns taken before each state, shape ``(N,)``.
        keys: Identity of each state's history (equal keys: identical histories).
        prefix: Name prefix of the returned metrics.
        by_step: Group by (task, step); else by task only (finished attempts).

    Returns:
        ``<prefix>_auroc``, ``<prefix>_pairwise_accuracy``, ``<prefix>_spearman`` and
        the counts ``<prefix>_pairs`` and ``<prefix>_groups``.
    """
    groups = (
        [(t, int(s)) for t, s in zip(task_ids, steps, strict=True)] if by_step else list(task_ids)
    )
    score, n_pairs, n_groups = pair_concordance(values, success, groups, keys)
    accuracy, _, _ = pair_concordance(values, targets, groups, keys)
    rho, _ = grouped_spearman(values, targets, groups)
    return {
        f"{prefix}_auroc": score,
        f"{prefix}_pairwise_accuracy": accuracy,
        f"{prefix}_spearman": rho,
        f"{prefix}_pairs": n_pairs,
        f"{prefix}_groups": n_groups,
    }


def history_keys(histories: Sequence[Any]) -> list[int]:
    """Equal ints for equal histories (first-seen numbering)."""
    seen: dict[Any, int] = {}
    return [seen.setdefault(h, len(seen)) for h in histories]


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
    *,
    task_ids: Sequence[str] | None = None,
    keys: Sequence[int] | None = None,
    terminal: np.ndarray | None = None,
) -> dict[str, Any]:
    """All metrics for predictions ``values`` (see the module docstring).

    Args:
        values: Predictions, shape ``(N,)``.
        targets: Regression targets, shape ``(N,)``.
        success: Final success of each state's episode, 0/1, shape ``(N,)``.
        steps: Turns taken before each state, shape ``(N,)``.
        turns: Turn numbers with their own AUROC.
        task_ids: Task of each state; adds the within-task metrics.
        keys: Identity of each history (:func:`history_keys`); identical pairs are skipped.
        terminal: True for final states, shape ``(N,)``: scored separately (``final_*``).

    Returns:
        JSON-safe dict of metrics.
    """
    values = np.asarray(values, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    success = np.asarray(success, dtype=np.float64)
    steps = np.asarray(steps)
    final = np.zeros(values.shape[0], dtype=bool) if terminal is None else np.asarray(terminal)
    extra: dict[str, Any] = {}
    if task_ids is not None:
        tasks = np.asarray(list(task_ids), dtype=object)
        key_array = None if keys is None else np.asarray(keys)
        parts = (("within_task", ~final, True), ("final_within_task", final, False))
        for prefix, mask, by_step in parts:
            if prefix.startswith("final") and not final.any():
                continue
            extra.update(
                within_task_metrics(
                    values[mask],
                    targets[mask],
                    success[mask],
                    list(tasks[mask]),
                    steps[mask],
                    None if key_array is None else list(key_array[mask]),
                    prefix=prefix,
                    by_step=by_step,
                )
            )
    if final.any():
        extra["final_auroc"] = auroc(values[final], success[final])
        extra["n_final_states"] = int(final.sum())
        values, targets, success, steps = (
            values[~final],
            targets[~final],
            success[~final],
            steps[~final],
        )
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
    out.update(extra)
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
    metrics = prediction_metrics(
        values,
        examples.targets,
        examples.success,
        examples.steps,
        turns,
        task_ids=examples.task_ids,
        keys=history_keys(examples.histories),
        terminal=examples.is_terminal,
    )
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
