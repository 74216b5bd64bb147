r"""``agentmc run``: one method (single, Best-of-N, SMC or AMC) over a task split.

Each task is one unit of work with its own generator, derived from the root
seed and a hash of the task id (as in ``agentmc rollout`` and ``agentmc
eval``), so a run is reproducible, resumable (finished tasks are skipped) and
independent of ``--workers``. Each record (kind ``episode``, key
``METHOD/TASK``) is a flat result row (method label, selection mode, success,
return, calls, tokens, cost, ...) plus the full
:class:`~agentmc.methods.EpisodeResult` under ``"episode"``: the selected
trajectory, every candidate's reward and critic value, and the SMC
diagnostics (per-checkpoint ESS, resampling, unique ancestors, log-evidence,
genealogy, failed particles, budget). At the end a summary table with 95%
bootstrap intervals is printed and written to ``summary.json``.

The flags share their definitions with ``agentmc eval``: ``--beta``,
``--schedule`` and ``--resampler`` (:class:`~agentmc.cli.common.SamplerOptions`)
take their defaults and checks from :class:`agentmc.smc.SMCConfig`, and the
per-task caps are ``--budget calls:N`` with ``--max-calls``/``--max-tokens``/
``--max-cost`` as its aliases (:class:`~agentmc.cli.common.BudgetOptions`).

Example:
    agentmc run --method amc --particles 8 --critic runs/critic --select critic \
        --split test --out runs/amc8
    agentmc run --method bon --particles 8 --split test --n-tasks 20 --budget calls:160 \
        --out runs/bon8
    agentmc run --method single --out runs/single --split test
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentmc.cli.common import (
    BudgetOptions,
    ExecutorOptions,
    PolicyOptions,
    SamplerOptions,
    TaskOptions,
    check_smc_flags,
    parse,
    success_summary,
)
from agentmc.errors import ConfigError, DataError
from agentmc.methods import Kind, MethodSpec
from agentmc.smc import Budget
from agentmc.smc.selection import SelectionMode


@dataclass(frozen=True)
class Config:
    """Run single / Best-of-N / SMC / AMC on a task split."""

    out: Path
    """Run directory (created, or resumed if it holds the same run)."""
    method: Kind = "amc"
    """single run, Best-of-N, zero-shot SMC (any critic) or AMC (trained critic)."""
    particles: int | None = None
    """K particles (N for Best-of-N); default 1 for single, 8 otherwise."""
    select: SelectionMode = "reward"
    """Final selection: best true reward (simulator planning), sample by weight, or
    highest critic value (weight/critic never see the true reward)."""
    sampler: SamplerOptions = field(default_factory=SamplerOptions)
    critic: Path | None = None
    """Critic artifact (from `agentmc critic train`); none: zero critic."""
    tasks: TaskOptions = field(default_factory=TaskOptions)
    policy: PolicyOptions = field(default_factory=PolicyOptions)
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)
    caps: BudgetOptions = field(default_factory=BudgetOptions)
    seed: int = 0
    """Root seed; every task's randomness derives from it."""
    workers: int = 4
    """Tasks in flight at once (each runs its K particles concurrently)."""
    progress: bool = True
    """Show a progress bar."""
    track: Literal["none", "mlflow", "wandb"] = "none"
    """Log config, metrics and report to MLflow (agentmc[mlflow]) or W&B (agentmc[wandb])."""
    track_project: str = "agentmc"
    """MLflow experiment / W&B project name for --track."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        check_smc_flags(n_particles=1 if self.particles is None else self.particles)
        self.spec  # noqa: B018 - validates the method as a whole (single takes K = 1)

    @property
    def spec(self) -> MethodSpec:
        k = self.particles if self.particles is not None else (1 if self.method == "single" else 8)
        if self.method == "single" and k != 1:
            raise ConfigError(f"--method single runs one episode; drop --particles {k}")
        s = self.sampler
        return MethodSpec(self.method, k, self.select, s.beta, s.schedule, s.resampler)

    @property
    def budget(self) -> Budget:
        """The per-task caps (``--budget`` or its aliases ``--max-calls`` ...)."""
        return self.caps.make()


def print_summary(rows: list[dict[str, Any]], seed: int, path: Path) -> None:
    """Print the summary table and write it (with the counts) to ``summary.json``."""
    import numpy as np
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from agentmc.eval.report import summary_table
    from agentmc.eval.summary import strict_json, summarize

    summaries = summarize(rows, np.random.default_rng(seed))
    header, body = summary_table(summaries)
    table = Table(*map(escape, header), title="agentmc run")
    for line in body:
        table.add_row(*map(escape, line))  # a label like `single[trained:x]` is not markup
    console = Console()
    if not console.is_terminal:
        console = Console(width=220)  # logs and pipes: keep every column readable
    console.print(table)
    failed = sum(r.get("failed_particles", 0) for r in rows)
    exhausted = sum(bool(r.get("budget_exhausted")) for r in rows)
    retries = sum(int(r.get("retries", 0) or 0) for r in rows)
    print(
        f"failed particles: {failed}; tasks that hit the budget: {exhausted}; "
        f"retried requests: {retries}"
    )
    data = {
        "summaries": [s.as_dict() for s in summaries],
        "failed_particles": failed,
        "budget_exhausted_tasks": exhausted,
        "attempts": sum(int(r.get("attempts", r.get("calls", 0)) or 0) for r in rows),
        "retries": sum(int(r.get("retries", 0) or 0) for r in rows),
        "null": "not defined: no successes (steps to success, cost per success) or an "
        "unknown price (cost)",
    }
    text = json.dumps(strict_json(data), indent=2, allow_nan=False) + "\n"
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise DataError(f"cannot write {path}: {error.strerror or error}") from None


def load_critic(path: Path | None, env_id: str) -> Any:
    """Load a critic artifact for ``env_id`` (``None`` stays ``None``)."""
    if path is None:
        return None
    from agentmc.critics.artifact import load

    return load(path, env_id=env_id)


def warn_seen(critic: Any, task_ids: list[str]) -> None:
    """Say so when the critic was trained or validated on some of the tasks to run.

    ``run`` is deployment, where recurring tasks are legitimate, so it only warns;
    ``agentmc eval`` (a measurement) refuses.
    """
    provenance = getattr(critic, "provenance", None)
    if provenance is None:
        return
    seen = set(task_ids) & (set(provenance.train_tasks) | set(provenance.val_tasks))
    if seen:
        import sys

        print(
            f"note: the critic was trained or validated on {len(seen)} of these "
            f"{len(task_ids)} tasks; their results are not a held-out measurement",
            file=sys.stderr,
        )


def check_step_cap(config: Config, spec: MethodSpec, task_id: str, policy: Any) -> None:
    """Refuse a schedule that names a step beyond the environment's step cap, before running."""
    from dataclasses import replace

    from agentmc.steer import AgentModel

    env = config.tasks.make(task_id)
    try:
        cap = AgentModel(env, policy).step_cap
    finally:
        env.close()
    try:
        replace(spec.smc, max_steps=cap)
    except ConfigError as error:
        raise ConfigError(f"--schedule {spec.schedule}: {error}") from None


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    from agentmc.cli.rollout import task_index
    from agentmc.data.store import RunStore
    from agentmc.eval.harness import result_record
    from agentmc.eval.runner import Unit, check_complete, run_units
    from agentmc.methods import arun_method
    from agentmc.seeding import task_rng

    spec, budget = config.spec, config.budget
    if config.track != "none":
        from agentmc.errors import require

        require(config.track, config.track)  # a missing tracker fails before the run
    critic = load_critic(config.critic, config.tasks.env)
    if spec.select == "critic" and critic is None and spec.kind != "single":
        raise ConfigError("--select critic needs a critic: pass --critic PATH")
    task_ids = config.tasks.select()
    warn_seen(critic, task_ids)
    policy = config.policy.make(run_dir=config.out, env_id=config.tasks.env)
    check_step_cap(config, spec, task_ids[0], policy)
    synthetic = bool(getattr(policy, "synthetic", False))
    store = RunStore.create_or_resume(
        config.out,
        command="run",
        seed=config.seed,
        config={
            "method": spec.label,
            "spec": {
                "kind": spec.kind,
                "particles": spec.particles,
                "select": spec.selection,
                "beta": spec.beta if math.isfinite(spec.beta) else "inf",
                # single and Best-of-N never resample; their run directories record
                # "every" (as before the spec held its SMCConfig), so they still resume
                "schedule": spec.schedule if spec.kind in ("smc", "amc") else "every",
                "resampler": spec.resampler,
            },
            "critic": None if config.critic is None else str(config.critic),
            # `count` only when not the default, so earlier run directories still resume
            "budget": budget.as_dict()
            | ({} if budget.count == "attempts" else {"count": budget.count}),
            "tasks": config.tasks.describe(),
            "policy": config.policy.describe(),
        },
        mutable=["workers"],
    )
    units = [Unit(f"{spec.label}/{task_id}", task_id) for task_id in task_ids]

    async def work(unit: Unit) -> tuple[str, dict[str, Any]]:
        task_id = unit.payload
        result = await arun_method(
            spec,
            lambda: config.tasks.make(task_id, executor),
            policy,
            task_rng(config.seed, task_index(task_id)),
            critic=critic,
            budget=budget,
            temperature=config.policy.temperature,
            task_id=task_id,
            limits=config.policy.limits(),
        )
        data = result_record(
            result, label=result.method, split=config.tasks.split, synthetic=synthetic
        )
        return "episode", data

    label = f"{spec.label} {policy.name}" + (" (synthetic)" if synthetic else "")
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
    rows = [record["data"] for record in store.records("episode")]
    print(f"{len(rows)} tasks ({counts.ran} new, {counts.skipped} resumed) -> {config.out}")
    if rows:
        print_summary(rows, config.seed, Path(config.out) / "summary.json")
    from agentmc.eval.tracking import track_run

    logged = track_run(store, config.track, project=config.track_project)
    if logged:
        print(f"logged to {logged}")
    check_complete(counts, len(units), "tasks")
    return 0
