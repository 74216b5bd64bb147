"""``agentmc rollout``: run a policy on tasks and record its trajectories.

Each (task, sample) pair is one unit of work with its own generator derived
from the root seed and a hash of the task id (not its position in the list, so
the same task gets the same episode whichever tasks run beside it, as in
``agentmc eval``). Runs are therefore reproducible, resumable (finished pairs
are skipped) and independent of ``--workers``. Results of synthetic stand-in
policies (``noisy-expert``, ``random``, replays) are labelled as such.

Example:
    agentmc rollout --out runs/expert --policy noisy-expert --split validation --n-tasks 20
    agentmc rollout --out runs/smol --policy local:choose --split test --n-tasks 10
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from agentmc.cli.common import (
    ExecutorOptions,
    PolicyOptions,
    TaskOptions,
    parse,
    success_summary,
)
from agentmc.errors import ConfigError


@dataclass(frozen=True)
class Config:
    """Run a policy on tasks and record trajectories."""

    out: Path
    """Run directory (created, or resumed if it holds the same run)."""
    tasks: TaskOptions = field(default_factory=TaskOptions)
    policy: PolicyOptions = field(default_factory=PolicyOptions)
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)
    samples_per_task: int = 1
    """Independent episodes per task."""
    seed: int = 0
    """Root seed; every episode's randomness derives from it."""
    workers: int = 8
    """Episodes in flight at once (policy calls overlap; environments are cheap)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.samples_per_task < 1:
            raise ConfigError(f"--samples-per-task must be at least 1, got {self.samples_per_task}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")


def task_index(task_id: str) -> int:
    """A task's seed index: a hash of its id (the evaluation harness uses the same)."""
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "little")


def main(name: str, argv: list[str]) -> int:
    return run(parse(Config, name, argv))


def run(config: Config, *, command: str = "rollout") -> int:
    """Run (or resume) the rollouts of ``config``; ``command`` is recorded in ``run.json``.

    ``agentmc collect`` calls this with ``command="collect"``.
    """
    from agentmc.data.store import RunStore
    from agentmc.eval.runner import Unit, check_complete, run_units
    from agentmc.rollout import arollout
    from agentmc.seeding import task_rng

    task_ids = config.tasks.select()
    policy = config.policy.make(run_dir=config.out, env_id=config.tasks.env)
    store = RunStore.create_or_resume(
        config.out,
        command=command,
        seed=config.seed,
        config={
            "tasks": config.tasks.describe(),
            "policy": config.policy.describe(),
            "samples_per_task": config.samples_per_task,
        },
        mutable=["workers"],
    )
    units = [
        Unit(f"{task_id}/{sample}", (task_id, sample))
        for task_id in task_ids
        for sample in range(config.samples_per_task)
    ]

    async def work(unit: Unit):
        task_id, sample = unit.payload
        env = config.tasks.make(task_id, executor)
        try:
            trajectory = await arollout(
                env,
                policy,
                task_rng(config.seed, task_index(task_id), sample),
                temperature=config.policy.temperature,
                meta={"sample": sample, "split": config.tasks.split},
                limits=config.policy.limits(),
            )
        finally:
            env.close()
        return "trajectory", trajectory.to_dict()

    label = f"{command} {policy.name}" + (" (synthetic)" if policy.synthetic else "")
    with config.executor.make() as executor:
        counts = asyncio.run(
            run_units(
                store,
                units,
                work,
                workers=config.workers,
                description=label,
                progress=config.progress,
                summary=success_summary,
            )
        )
    trajectories = store.trajectories()
    solved = sum(t.success for t in trajectories)
    print(
        f"{len(trajectories)} episodes ({counts.ran} new, {counts.skipped} resumed) of "
        f"{label}: {solved} solved ({solved / max(1, len(trajectories)):.1%}), "
        f"{counts.failed} failed for infrastructure reasons -> {config.out}"
    )
    check_complete(counts, len(units), "episodes")
    return 0
