"""Per-method summaries of an evaluation: the numbers every report shows.

An evaluation produces one *result row* per (method, task): a flat dict with
at least ``method``, ``selection``, ``split``, ``task_id``, ``success``,
``return``, ``steps``, ``calls``, ``tokens``, ``cost`` (``None`` when
unknown) and ``wall_s``. ``summarize`` turns rows into one
:class:`MethodSummary` per method, with bootstrap intervals; ``compare`` pairs
two methods on their common tasks.

Example:
    >>> rows = [{"method": "single", "selection": "none", "split": "test", "task_id": str(i),
    ...          "success": i % 2 == 0, "return": float(i % 2 == 0), "steps": 5, "calls": 5,
    ...          "tokens": 0, "cost": 0.0, "wall_s": 0.1} for i in range(10)]
    >>> summarize(rows, np.random.default_rng(0))[0].success.value
    0.5
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmc.eval.metrics import (
    Estimate,
    McNemar,
    bootstrap_mean,
    cost_per_success,
    mcnemar,
    paired_difference,
)

Row = dict[str, Any]


@dataclass(frozen=True)
class MethodSummary:
    """Aggregates of one method over its tasks."""

    method: str
    selection: str
    split: str
    n_tasks: int
    success: Estimate
    mean_return: Estimate
    steps_to_success: Estimate
    calls: Estimate
    tokens: Estimate
    cost: Estimate
    wall_s: Estimate
    cost_per_success: float
    failures: int
    synthetic: bool
    judge_calls: Estimate | None = None
    """LLM-judge requests per task (the critic's; ``calls`` are the agent's)."""
    critic_cpu_s: Estimate | None = None
    """CPU seconds per task spent scoring with the critic."""
    total_calls: Estimate | None = None
    """Agent plus judge requests per task."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            out[name] = value.as_dict() if isinstance(value, Estimate) else value
        return out

    @property
    def spends_on_critic(self) -> bool:
        """Whether the critic cost anything measurable (judge requests or CPU time)."""
        return any(
            e is not None and e.value > 0 for e in (self.judge_calls, self.critic_cpu_s)
        )


def _column(rows: Sequence[Row], key: str) -> np.ndarray:
    return np.array([math.nan if r.get(key) is None else float(r[key]) for r in rows])


def _spend(rows: Sequence[Row], key: str, fallback: str | None = None) -> Estimate:
    """Mean of a spend column; rows from before the column existed count 0 (or ``fallback``).

    No interval, so the bootstrap stream of the other columns stays as it was.
    """
    values = [r.get(key, r.get(fallback) if fallback else 0) for r in rows]
    array = np.array([0.0 if v is None else float(v) for v in values])
    return Estimate(float(array.mean()) if array.size else math.nan, math.nan, math.nan, len(rows))


def summarize(rows: Sequence[Row], rng: np.random.Generator) -> list[MethodSummary]:
    """One summary per method, in order of first appearance."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row["method"]].append(row)
    out = []
    for method, group in groups.items():
        success = _column(group, "success")
        steps = _column(group, "steps")
        costs = [r.get("cost") for r in group]
        known = [float(c) for c in costs if c is not None]
        total_cost = float(sum(known)) if len(known) == len(costs) else None
        out.append(
            MethodSummary(
                method=method,
                selection=str(group[0].get("selection", "none")),
                split=str(group[0].get("split", "?")),
                n_tasks=len(group),
                success=bootstrap_mean(success, rng),
                mean_return=bootstrap_mean(_column(group, "return"), rng),
                steps_to_success=bootstrap_mean(steps[success > 0], rng),
                calls=bootstrap_mean(_column(group, "calls"), rng),
                tokens=bootstrap_mean(_column(group, "tokens"), rng),
                cost=bootstrap_mean(_column(group, "cost"), rng),
                wall_s=bootstrap_mean(_column(group, "wall_s"), rng),
                cost_per_success=cost_per_success(total_cost, int(success.sum())),
                failures=sum(1 for r in group if r.get("error")),
                synthetic=any(bool(r.get("synthetic")) for r in group),
                judge_calls=_spend(group, "judge_calls"),
                critic_cpu_s=_spend(group, "critic_cpu_s"),
                total_calls=_spend(group, "total_calls", fallback="calls"),
            )
        )
    return out


@dataclass(frozen=True)
class Comparison:
    """Method ``a`` against method ``b`` on the tasks both ran."""

    a: str
    b: str
    n_tasks: int
    difference: Estimate
    test: McNemar


def compare(rows: Sequence[Row], a: str, b: str, rng: np.random.Generator) -> Comparison:
    """Paired comparison of success between two methods on their common tasks."""
    by_task: dict[str, dict[str, float]] = defaultdict(dict)
    for row in rows:
        if row["method"] in (a, b):
            by_task[str(row["task_id"])][row["method"]] = float(row["success"])
    common = sorted(t for t, m in by_task.items() if a in m and b in m)
    xa = np.array([by_task[t][a] for t in common])
    xb = np.array([by_task[t][b] for t in common])
    return Comparison(a, b, len(common), paired_difference(xa, xb, rng), mcnemar(xa, xb))


def strict_json(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by ``None`` (JSON ``null``).

    Python's ``json`` writes ``NaN``/``Infinity``, which no strict parser accepts.
    In summaries a non-finite number means "not defined": no successes (steps to
    success, cost per success), or a price that is unknown (cost).

    Example:
        >>> strict_json({"a": float("nan"), "b": [1.0, float("inf")]})
        {'a': None, 'b': [1.0, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return strict_json(value.item())
    return value
