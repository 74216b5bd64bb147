r"""``agentmc tune``: choose AMC's beta, schedule and deployable selection on validation tasks.

Example:
    agentmc tune --methods amc:8:critic --critic runs/critic --budget calls:160 \\
        --out runs/tune
    agentmc eval --methods single bon:8:critic amc:8:critic --critic runs/critic \\
        --budget calls:160 --tuned runs/tune/tuned.json --out runs/eval

Runs every grid point (betas x schedules x selections; see
:mod:`agentmc.eval.tune`) on the same validation tasks with the same seeds at
the given budget, resumably, then writes ``tuned.json`` into the run
directory: the grid, each point's validation success and calls, and the
chosen spec per method. Pass the budget the test evaluation will use:
``eval --tuned`` refuses a choice made at another budget, policy or critic.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmc.cli.common import BudgetOptions, ExecutorOptions, PolicyOptions, TaskOptions, parse
from agentmc.errors import ConfigError
from agentmc.eval.tune import DEFAULT_BETAS, DEFAULT_SCHEDULES, TUNED_FILE


@dataclass(frozen=True)
class Config:
    """Choose beta, schedule and deployable selection of SMC/AMC methods on validation tasks."""

    out: Path
    """Run directory (created, or resumed if it holds the same tuning run)."""
    methods: tuple[str, ...] = ("amc:8:critic",)
    """SMC/AMC methods to tune, e.g. `amc:8:critic` (deployable: tuned over critic and
    weight selection) or `amc:8` (reward selection)."""
    tasks: TaskOptions = field(default_factory=lambda: TaskOptions(split="validation", n_tasks=30))
    policy: PolicyOptions = field(default_factory=PolicyOptions)
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)
    critic: Path | None = None
    """Critic artifact (none: zero critic; deployable methods need one)."""
    caps: BudgetOptions = field(default_factory=BudgetOptions)
    """Per-task caps: pass the ones the test evaluation will use."""
    betas: tuple[float, ...] = DEFAULT_BETAS
    """Betas to try."""
    schedules: tuple[str, ...] = DEFAULT_SCHEDULES
    """Schedules to try: checkpoint sets (`steps:4`, `steps:2,6`), `every`, `ess:0.5`, ..."""
    selects: tuple[str, ...] = ()
    """Selections to try (default: critic and weight for deployable methods)."""
    seed: int = 0
    """Root seed (use the evaluation's)."""
    workers: int = 4
    """(method, task) units in flight at once."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.tasks.split == "test":
            raise ConfigError(
                "tune chooses settings on validation (or train) tasks, never on --split test"
            )


def run_tuning(config: Config) -> dict[str, Any]:
    """Run (or resume) the grid and write ``tuned.json``; returns its content."""
    from agentmc.cli.eval import check_unseen, load_critic
    from agentmc.data.store import RunStore
    from agentmc.eval.harness import Entry, Evaluation, Plan
    from agentmc.eval.tune import TuneGrid, choose, tune_specs
    from agentmc.methods import MethodSpec

    caps = config.caps.make()
    grid = TuneGrid(tuple(config.betas), tuple(config.schedules), tuple(config.selects))
    bases = [MethodSpec.parse(text) for text in config.methods]
    specs = {base: tune_specs(base, grid) for base in bases}
    critic = load_critic(config.critic, config.tasks.env)
    if critic is None and any(s.select == "critic" for ss in specs.values() for s in ss):
        raise ConfigError("`critic` selection needs a critic: pass --critic PATH")
    unique = list(dict.fromkeys(s for ss in specs.values() for s in ss))
    task_ids = config.tasks.select()
    if critic is not None:
        check_unseen(critic, str(config.critic), task_ids)
    plan = Plan(
        entries=tuple(Entry(s) for s in unique),
        split=config.tasks.split,
        task_ids=tuple(task_ids),
        seed=config.seed,
        budget=caps if caps.has_caps else None,
        temperature=config.policy.temperature,
    )
    recorded = {
        "methods": [b.text for b in bases],
        "grid": {"betas": list(grid.betas), "schedules": list(grid.schedules)}
        | {"selects": list(grid.selects)},
        "tasks": config.tasks.describe(),
        "policy": config.policy.describe(),
        "critic": None if config.critic is None else str(config.critic),
        "budget": None if plan.budget is None else str(plan.budget),
    }
    store = RunStore.create_or_resume(
        config.out,
        command="tune",
        seed=config.seed,
        config=recorded,
        mutable=["workers", "progress"],
    )
    shared = config.policy.make(env_id=config.tasks.env)
    with config.executor.make() as executor:
        evaluation = Evaluation(
            plan,
            store,
            make_env=lambda task_id: config.tasks.make(task_id, executor),
            make_policy=lambda spec: shared,
            critic=critic,
            workers=config.workers,
            progress=config.progress,
        )
        rows, _ = asyncio.run(evaluation.run())
    by_key = {(r["method"], r["task_id"]): r for r in rows}
    choices = []
    for base, grid_specs in specs.items():
        success = {s.label: [by_key[(s.label, t)]["success"] for t in task_ids] for s in grid_specs}
        calls = {s.label: [by_key[(s.label, t)]["calls"] for t in task_ids] for s in grid_specs}
        choices.append(choose(base, grid_specs, success, calls).to_dict())
    result = {
        "split": config.tasks.split,
        "task_ids": list(task_ids),
        "seed": config.seed,
        "synthetic": bool(getattr(shared, "synthetic", False)),
        **{k: recorded[k] for k in ("policy", "critic", "budget", "grid")},
        "choices": choices,
    }
    (Path(config.out) / TUNED_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_choices(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=200)
    for choice in result["choices"]:
        table = Table(
            "method",
            "validation success",
            "calls/task",
            title=f"tune {choice['base']} on {choice['n_tasks']} {result['split']} tasks"
            + (" (synthetic policy)" if result["synthetic"] else ""),
        )
        for row in choice["grid"]:
            mark = " <- chosen" if row["method"] == choice["chosen"] else ""
            calls = "?" if row["calls"] is None else f"{row['calls']:.1f}"
            table.add_row(row["method"] + mark, f"{row['success']:.1%}", calls)
        console.print(table)
        console.print(f"  chosen: {choice['chosen']} ({choice['rule']})")


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    result = run_tuning(config)
    print_choices(result)
    print(f"choices: {Path(config.out) / TUNED_FILE}")
    return 0
