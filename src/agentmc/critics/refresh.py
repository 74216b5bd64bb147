"""Refresh a deployed critic with the trajectories the deployment produced since.

A deployed agent runs every day (``agentmc run``/``eval`` keep every
particle's trajectory); :func:`refresh` turns those into a new critic version:

1. the new data becomes examples with the parent critic's own target, window,
   discount and final-state setting;
2. validation tasks are drawn **only among tasks the parent never saw**
   (neither trained nor validated on), so the old and the new critic are
   compared on the same held-out tasks; tasks the parent saw may still be
   trained on;
3. the new version is warm-started from the parent (the ridge penalty pulls
   towards the parent's weights, :meth:`HashedCritic.train` with ``init``), its
   strength chosen on the held-out tasks;
4. the new artifact records its lineage: ``version`` (parent's + 1),
   ``parent`` (path, version, data fingerprint, creation time), and one
   ``lineage`` entry per version with the fingerprint of the data it learned
   from; ``train_tasks``/``val_tasks`` accumulate over versions, so an
   evaluation refuses every task any version has seen.

The pooled and the within-task metrics of old and new on the held-out tasks
are returned (and recorded under ``metrics["refresh"]``).

Example:
    >>> result = refresh(load("critics/v1"), load_runs(["runs/day2"]),
    ...                  parent_path="critics/v1")        # doctest: +SKIP
    >>> old, new = result.parent_metrics, result.metrics               # doctest: +SKIP
    >>> old["within_task_auroc"], new["within_task_auroc"]            # doctest: +SKIP
    (0.71, 0.78)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from agentmc.critics.artifact import Provenance, fingerprint
from agentmc.critics.evaluate import critic_metrics
from agentmc.critics.fit import check_size, split_by_task
from agentmc.critics.targets import Examples, make_examples
from agentmc.data.trajectory import Trajectory
from agentmc.errors import ConfigError, DataError


@dataclass
class RefreshResult:
    """A refreshed critic and the comparison with its parent.

    Attributes:
        critic: The new version.
        metrics: The new version's metrics on the held-out tasks.
        parent_metrics: The parent's metrics on the same states.
        heldout_tasks: Task ids held out (unseen by the parent).
        train_tasks: Task ids of the new data trained on.
        skipped: Trajectories left out, by reason.
    """

    critic: Any
    metrics: dict[str, Any]
    parent_metrics: dict[str, Any]
    heldout_tasks: list[str]
    train_tasks: list[str]
    val_examples: Examples
    skipped: dict[str, int] = field(default_factory=dict)


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "calibration"}


def refresh(
    parent: Any,
    trajectories: Sequence[Trajectory],
    *,
    parent_path: str = "",
    parent_created: str | None = None,
    source: str = "the new data",
    val_fraction: float = 0.2,
    seed: int = 0,
) -> RefreshResult:
    """Warm-start a new critic version from ``parent`` on new trajectories (module docstring).

    Args:
        parent: The deployed critic (a hashed ridge critic: return target).
        trajectories: New trajectories of the parent's environment.
        parent_path: Where the parent artifact lives (recorded in the lineage).
        parent_created: The parent's creation time (recorded).
        source: How to name the data (recorded, and used in error messages).
        val_fraction: Share of the unseen tasks held out.
        seed: Seed of the split and the solver.

    Returns:
        The new critic and the old-vs-new metrics.

    Raises:
        ConfigError: A parent that cannot be warm-started (not hashed, or a
            success / TD target).
        DataError: Data of another environment, too little data, or fewer than two
            tasks the parent never saw.
    """
    from agentmc.critics.hashed import HashedCritic

    if not isinstance(parent, HashedCritic):
        raise ConfigError(
            f"refresh warm-starts hashed critics; {getattr(parent, 'name', parent)!r} "
            "critics are retrained with agentmc critic train --data OLD NEW"
        )
    provenance: Provenance = parent.provenance
    if provenance.target == "td":
        raise ConfigError("refresh a return-target critic; a TD critic needs its bootstrap critic")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    recorded = provenance.metrics
    examples = make_examples(
        trajectories,
        "success" if provenance.target == "success" else "return",
        gamma=float(recorded.get("gamma", 1.0)),
        truncation=recorded.get("truncation", "terminal"),
        terminal=bool(recorded.get("final_states", False)),
    )
    if examples.env_id != provenance.env_id:
        raise DataError(
            f"{source} is from {examples.env_id!r}; the critic was trained on {provenance.env_id!r}"
        )
    check_size(examples, source)
    seen = set(provenance.train_tasks) | set(provenance.val_tasks)
    fresh = sorted(set(examples.task_ids) - seen)
    if len(fresh) < 2:
        raise DataError(
            f"{source} has {len(fresh)} task(s) the old critic never saw; at least 2 are "
            "needed to compare old and new on held-out tasks (run on fresh tasks first)"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7266]))
    held = split_by_task(fresh, val_fraction, rng)
    heldout = {task for task, out in zip(fresh, held, strict=True) if out}
    val_mask = np.array([task in heldout for task in examples.task_ids], dtype=bool)
    train, val = examples.subset(~val_mask), examples.subset(val_mask)
    used = [trajectories[i] for i in sorted(set(examples.episode.tolist()))]
    data_fingerprint = fingerprint(used)
    version = provenance.version + 1
    lineage = list(provenance.lineage) or [
        {"version": provenance.version, "data_fingerprint": provenance.data_fingerprint}
    ]
    new_provenance = replace(
        provenance,
        data_fingerprint=data_fingerprint,
        n_trajectories=examples.n_trajectories,
        n_examples=len(train),
        synthetic_data=provenance.synthetic_data or any(t.synthetic for t in used),
        train_tasks=sorted(set(provenance.train_tasks) | set(train.task_ids)),
        val_tasks=sorted(set(provenance.val_tasks) | heldout),
        version=version,
        parent={
            "path": parent_path,
            "version": provenance.version,
            "data_fingerprint": provenance.data_fingerprint,
            "created": parent_created,
        },
        lineage=[
            *lineage,
            {"version": version, "data_fingerprint": data_fingerprint, "data": source},
        ],
    )
    critic = HashedCritic.train(
        train,
        val,
        parent.config,
        target=provenance.target,
        last_turns=provenance.last_turns,
        rng=rng,
        provenance=new_provenance,
        init=parent,
    )
    old_metrics, _ = critic_metrics(parent, val)
    new_metrics, _ = critic_metrics(critic, val)
    critic.provenance = replace(
        new_provenance,
        metrics={
            **_summary(new_metrics),
            "train_states": len(train),
            "train_tasks": len(set(train.task_ids)),
            "gamma": recorded.get("gamma", 1.0),
            "truncation": recorded.get("truncation", "terminal"),
            "final_states": recorded.get("final_states", False),
            "val_fraction": val_fraction,
            "seed": seed,
            "refresh": {"heldout_tasks": len(heldout), "parent": _summary(old_metrics)},
        },
    )
    return RefreshResult(
        critic=critic,
        metrics=new_metrics,
        parent_metrics=old_metrics,
        heldout_tasks=sorted(heldout),
        train_tasks=sorted(set(train.task_ids)),
        val_examples=val,
        skipped=examples.skipped,
    )
