r"""``agentmc eval``: compare methods on the same tasks at equal budget, then report.

Example:
    agentmc eval --methods single bon:8 amc:8:critic --critic runs/critic \\
        --budget calls:160 --out runs/eval

Runs the do-no-harm check on validation tasks first when a deployable AMC
method is listed (``--guard-tasks 0`` turns it off), then every method on
every task of the split, resumably; prints the comparison table and writes
``report.md`` / ``report.html`` into the run directory.

Settings named in a method string (``amc:8:critic:beta=0.3:steps=4``) win
over ``--beta`` / ``--schedule`` / ``--resampler``. With ``--tuned runs/tune/tuned.json`` (from
``agentmc tune``), each method that was tuned runs with the settings chosen
on validation tasks; the choice must have been made at this evaluation's
budget, policy and critic.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentmc.cli.common import (
    BudgetOptions,
    ExecutorOptions,
    PolicyOptions,
    SamplerOptions,
    TaskOptions,
    parse,
)
from agentmc.errors import ConfigError


@dataclass(frozen=True)
class Config:
    """Compare several methods at equal budget."""

    out: Path
    """Run directory (created, or resumed if it holds the same evaluation)."""
    methods: tuple[str, ...] = ("single", "bon:8", "amc:8:critic")
    """Methods: `single`, `bon:K[:SELECT]`, `smc:K[:SELECT]`, `amc:K[:SELECT]` with SELECT
    one of reward, weight, critic; append `=POLICY` to give one method its own policy
    (e.g. `single=trained:runs/g2po`) and `{critic=C}` its own critic, C a critic artifact,
    `judge` (the policy judges, zero-shot), `judge:POLICY` or `zero` (e.g.
    `smc:8:critic{critic=judge}`)."""
    tasks: TaskOptions = field(default_factory=TaskOptions)
    policy: PolicyOptions = field(default_factory=PolicyOptions)
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)
    critic: Path | None = None
    """Critic artifact used by AMC, SMC and `critic` selection (none: zero critic), or
    `textcraft-plan` (a hand-written TextCraft critic that plans from the conversation)."""
    caps: BudgetOptions = field(default_factory=BudgetOptions)
    sampler: SamplerOptions = field(default_factory=SamplerOptions)
    tuned: Path | None = None
    """`tuned.json` from `agentmc tune`: tuned methods run with the chosen settings."""
    guard_tasks: int = 30
    """Validation tasks for the do-no-harm check of deployable AMC methods: at least 30
    (AMC is kept only if a one-sided exact sign test on them favours it at p <= 0.05),
    or 0 for no check."""
    seed: int = 0
    """Root seed; every task uses the same generator for every method."""
    workers: int = 4
    """(method, task) units in flight at once."""
    progress: bool = True
    """Show progress bars."""
    report: bool = True
    """Write report.md / report.html into the run directory when done."""
    track: Literal["none", "mlflow", "wandb"] = "none"
    """Log config, metrics and report to MLflow (agentmc[mlflow]) or W&B (agentmc[wandb])."""
    track_project: str = "agentmc"
    """MLflow experiment / W&B project name for --track."""

    def __post_init__(self) -> None:
        from agentmc.eval.harness import MIN_GUARD_TASKS

        if self.guard_tasks < 0 or 0 < self.guard_tasks < MIN_GUARD_TASKS:
            raise ConfigError(
                f"--guard-tasks must be 0 (no check) or at least {MIN_GUARD_TASKS}, "
                f"got {self.guard_tasks}"
            )
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")


BUILTIN_CRITICS = ("textcraft-plan",)
"""Critics named instead of a path: ``textcraft-plan`` (hand-written, TextCraft only)."""


def load_critic(path: Path | None, env_id: str) -> Any:
    """Load a critic artifact, or a built-in critic by name (``None`` stays ``None``).

    Raises:
        ConfigError: A built-in critic for another environment.
    """
    if path is None:
        return None
    if str(path) in BUILTIN_CRITICS and not Path(path).exists():
        if env_id != "textcraft":
            raise ConfigError(f"critic {path} is for TextCraft; --env is {env_id}")
        from agentmc.critics.textcraft import TextCraftPlanCritic

        return TextCraftPlanCritic()
    from agentmc.critics.artifact import load

    return load(path, env_id=env_id)


def _names(method: str) -> set[str]:
    """Which of beta / schedule / resampler a method string sets (a label names them all)."""
    if "@" in method:
        return {"beta", "schedule", "resampler"}
    keys = {part.partition("=")[0].strip().lower() for part in method.split(":") if "=" in part}
    return {"schedule" if k in ("steps", "ess") else k for k in keys}


def tuned_choices(config: Config, budget: str | None) -> dict[str, str]:
    """Base method text -> chosen method text, from ``--tuned`` (empty without it).

    Raises:
        ConfigError: The choice was made at another budget, policy or critic.
    """
    if config.tuned is None:
        return {}
    from agentmc.eval.tune import read_tuned

    data = read_tuned(config.tuned)
    ours = {
        "budget": budget,
        "policy": config.policy.policy,
        "critic": None if config.critic is None else str(config.critic),
    }
    theirs = {
        "budget": data.get("budget"),
        "policy": (data.get("policy") or {}).get("policy"),
        "critic": data.get("critic"),
    }
    for key in ours:
        if ours[key] != theirs[key]:
            raise ConfigError(
                f"--tuned {config.tuned}: tuned with {key} {theirs[key]!r}, but this evaluation "
                f"uses {ours[key]!r}; tune again with the evaluation's settings"
            )
    return {c["base"]: c["chosen"] for c in data["choices"]}


def critic_maker(config: Config, shared_policy: Any):
    """``text -> critic`` for per-method ``{critic=...}`` options."""

    def make(text: str) -> Any:
        from agentmc.critics.judge import JudgeCritic
        from agentmc.policies import make_policy

        if text == "zero":
            return None
        if text == "judge":
            return JudgeCritic(shared_policy)
        if text.startswith("judge:"):
            spec = text[len("judge:") :]
            judge = make_policy(spec, base_url=config.policy.base_url)
            return JudgeCritic(judge, policy_spec=spec, base_url=config.policy.base_url)
        return load_critic(Path(text), config.tasks.env)

    return make


def check_unseen(critic: Any, label: str, task_ids: list[str]) -> None:
    """Refuse a trained critic on tasks it was trained or validated on.

    Raises:
        ConfigError: Some evaluated task is in the critic's training or validation split.
    """
    provenance = getattr(critic, "provenance", None)
    if provenance is None:
        return
    seen = sorted(set(task_ids) & (set(provenance.train_tasks) | set(provenance.val_tasks)))
    if seen:
        raise ConfigError(
            f"critic {label} was trained or validated on {len(seen)} of the {len(task_ids)} "
            f"tasks to evaluate (e.g. {', '.join(seen[:3])}); evaluate on other tasks or "
            "retrain it without them (never evaluate a critic on its training tasks)"
        )


def make_plan(config: Config, task_ids: list[str], guard_ids: list[str]):
    from dataclasses import replace

    from agentmc.eval.harness import Entry, Plan
    from agentmc.methods import MethodSpec

    caps = config.caps.make()
    budget = caps if caps.has_caps else None
    choices = tuned_choices(config, None if budget is None else str(budget))
    entries = []
    for text in config.methods:
        entry = Entry.parse(text)
        chosen = choices.get(entry.spec.text)
        if chosen is not None:
            entries.append(replace(entry, spec=MethodSpec.parse(chosen)))
            continue
        named = _names(Entry.split(text)[0])
        settings: dict[str, Any] = {}
        if "beta" not in named and entry.spec.kind in ("smc", "amc", "bon"):
            settings["beta"] = config.sampler.beta
        for name in ("schedule", "resampler"):
            if name not in named and entry.spec.kind in ("smc", "amc"):
                settings[name] = getattr(config.sampler, name)
        entries.append(replace(entry, spec=replace(entry.spec, **settings)))
    return Plan(
        entries=tuple(entries),
        split=config.tasks.split,
        task_ids=tuple(task_ids),
        seed=config.seed,
        budget=budget,
        guard_task_ids=tuple(guard_ids),
        temperature=config.policy.temperature,
    )


def guard_ids(config: Config, critic: Any) -> list[str]:
    """Validation tasks for the do-no-harm check (none without a critic or with 0)."""
    if critic is None or config.guard_tasks == 0 or config.tasks.split == "validation":
        return []
    from agentmc.envs import task_ids

    return task_ids(config.tasks.env, "validation", **config.tasks.env_kwargs())[
        : config.guard_tasks
    ]


def run_evaluation(config: Config, *, title: str | None = None) -> tuple[Any, Any]:
    """Run (or resume) the evaluation and write the report; returns (store, report)."""
    import numpy as np

    from agentmc.data.store import RunStore
    from agentmc.eval.harness import Entry, Evaluation, build_report
    from agentmc.eval.report import write_report
    from agentmc.eval.runner import check_complete

    critic = load_critic(config.critic, config.tasks.env)
    entries_critic = any(Entry.parse(m).critic not in (None, "zero") for m in config.methods)
    plan = make_plan(config, config.tasks.select(), guard_ids(config, critic or entries_critic))
    if critic is None and any(
        e.spec.select == "critic" and e.critic in (None, "zero") for e in plan.entries
    ):
        raise ConfigError("`critic` selection needs a critic: pass --critic PATH")
    shared = config.policy.make(run_dir=config.out, env_id=config.tasks.env)
    make_critic = critic_maker(config, shared)
    evaluated = list(plan.task_ids) + list(plan.guard_task_ids)
    if critic is not None:
        check_unseen(critic, str(config.critic), evaluated)
    for entry in plan.entries:
        if entry.critic not in (None, "zero", "judge") and not entry.critic.startswith("judge:"):
            check_unseen(load_critic(Path(entry.critic), config.tasks.env), entry.critic, evaluated)

    def policy_for(spec: str | None):
        # a method's own policy gets every --policy setting but the spec (key variable,
        # concurrency, base URL, cache, timeout)
        if spec is None:
            return shared
        return config.policy.make(spec, run_dir=config.out, env_id=config.tasks.env)

    store = RunStore.create_or_resume(
        config.out,
        command="eval",
        seed=config.seed,
        config={
            "methods": [e.label for e in plan.entries],
            "tasks": config.tasks.describe(),
            "policy": config.policy.describe(),
            "critic": None if config.critic is None else str(config.critic),
            "budget": None if plan.budget is None else str(plan.budget),
            **({"budget_counts": "answers"} if config.caps.budget_counts == "answers" else {}),
            "guard_tasks": list(plan.guard_task_ids),
            "tuned": None if config.tuned is None else str(config.tuned),
        },
        mutable=["workers", "progress", "report"],
    )
    with config.executor.make() as executor:
        evaluation = Evaluation(
            plan,
            store,
            make_env=lambda task_id: config.tasks.make(task_id, executor),
            make_policy=policy_for,
            critic=critic,
            workers=config.workers,
            progress=config.progress,
            limits=config.policy.limits(),
            make_critic=make_critic,
        )
        asyncio.run(evaluation.run())
    counts = evaluation.counts
    if counts is not None and counts.failed and not any(store.records("result")):
        check_complete(counts, evaluation.n_units, "(method, task) units")
    report = build_report(store, np.random.default_rng(config.seed), critic=critic, title=title)
    if config.report:
        write_report(store.path, report)
    if counts is not None and counts.failed:
        # show what did finish, then name the missing units (exit 3) rather than hide them
        print_report(report)
        check_complete(counts, evaluation.n_units, "(method, task) units")
    return store, report


def print_report(report: Any) -> None:
    """The comparison table and notes on the terminal."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from agentmc.eval.report import SELECTION_MEANING, summary_table

    header, body = summary_table(report.summaries)
    # labels such as `single[trained:runs/g2po]` are text, not rich markup
    table = Table(*map(escape, header), title=escape(report.title))
    for line in body:
        table.add_row(*map(escape, line))
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)
    if any(s.synthetic for s in report.summaries):
        console.print("  (synthetic): a stand-in policy, not a real LLM")
    for mode in sorted({s.selection for s in report.summaries}):
        console.print(f"  [bold]{escape(mode)}[/]: {escape(SELECTION_MEANING.get(mode, mode))}")
    for note in report.notes:
        console.print(f"  note: {escape(note)}")


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    from agentmc.eval.tracking import track_run

    if config.track != "none":
        from agentmc.errors import require

        require(config.track, config.track)  # a missing tracker fails before the run
    store, report = run_evaluation(config)
    print_report(report)
    if config.report:
        print(f"report: {store.path / 'report.html'}")
    logged = track_run(store, config.track, project=config.track_project)
    if logged:
        print(f"logged to {logged}")
    return 0
