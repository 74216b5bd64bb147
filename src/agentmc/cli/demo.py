"""``agentmc demo``: the whole product in one command, on the embedded model, offline.

Three stages, each resumable (run the command again after an interruption):

1. **collect**: the prior agent (by default SmolLM2-135M with the shipped
   TextCraft adapter, running locally)
   plays TextCraft training tasks; its trajectories go to ``OUT/prior``.
2. **critic**: a hashed n-gram critic learns the return-to-go of those
   trajectories by plain regression (seconds); saved to ``OUT/critic``.
3. **evaluate**: single run vs Best-of-K vs AMC with K particles on held-out
   *test* tasks, beside a uniformly random valid action (the sceptic's
   baseline; ``--baseline none`` leaves it out), same seeds, deployable
   ``critic`` selection by default (no true reward used to pick the answer);
   the table is printed and ``OUT/eval/report.html`` written.

The defaults take about 8 minutes on an idle 2-core CPU; the end of the
output says how to scale up (more tasks and particles, or your own model
behind an OpenAI-compatible server with ``--model``/``--base-url``).
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from agentmc.cli.common import PolicyOptions, SamplerOptions, TaskOptions, parse
from agentmc.errors import ConfigError
from agentmc.smc.selection import SelectionMode


@dataclass(frozen=True)
class Config:
    """End-to-end demo on the embedded local model (offline)."""

    out: Path = Path("runs/demo")
    """Directory for the prior trajectories, the critic and the evaluation."""
    tasks: int = 24
    """Held-out TextCraft test tasks to evaluate on."""
    particles: int = 4
    """K: particles for AMC, samples for Best-of-K."""
    train_tasks: int = 8
    """TextCraft training tasks the prior agent plays to train the critic."""
    samples_per_task: int = 2
    """Prior episodes per training task."""
    max_steps: int = 10
    """Step cap per episode (TextCraft's default is 20; the demo halves it to fit in
    minutes, since failed episodes run to the cap)."""
    policy: str = "local"
    """Policy spec (see `agentmc rollout --help`); `local` is the embedded SmolLM2-135M with
    its shipped TextCraft adapter."""
    model: str | None = None
    """Shortcut for `--policy openai:MODEL` (your model behind an OpenAI-compatible server)."""
    base_url: str | None = None
    """Server URL for `--model` / `openai:` policies."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key for `openai:` policies."""
    select: SelectionMode = "critic"
    """How Best-of-K and AMC pick their answer: `critic` / `weight` are deployable,
    `reward` peeks at the true reward (simulator planning)."""
    sampler: SamplerOptions = field(default_factory=lambda: SamplerOptions(beta=0.1))
    """SMC settings of AMC (the demo's beta is 0.1: greedier than the library's 1)."""
    baseline: str = "random"
    """A sceptic's baseline played beside the methods on the same tasks and seeds, as
    `single=BASELINE` (`random`: a uniformly random valid action), or `none`."""
    guard_tasks: int = 0
    """Validation tasks for the do-no-harm check of AMC (0: skip it to save time)."""
    seed: int = 0
    """Root seed of every stage."""
    workers: int = 8
    """Episodes in flight at once (the local model serves their calls in one batch)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        for name in (
            "tasks",
            "particles",
            "train_tasks",
            "samples_per_task",
            "max_steps",
            "workers",
        ):
            if getattr(self, name) < 1:
                flag = name.replace("_", "-")
                raise ConfigError(f"--{flag} must be at least 1, got {getattr(self, name)}")
        if self.particles < 2:
            raise ConfigError("--particles must be at least 2 to compare Best-of-K and AMC")

    def policy_options(self) -> PolicyOptions:
        spec = f"openai:{self.model}" if self.model else self.policy
        return PolicyOptions(policy=spec, base_url=self.base_url, api_key_env=self.api_key_env)


def collect(config: Config, console) -> Path:
    from agentmc.cli import rollout

    out = config.out / "prior"
    console.rule(f"1/3 collect: the prior agent on {config.train_tasks} training tasks")
    rollout.run(
        rollout.Config(
            out=out,
            tasks=TaskOptions(
                split="train", n_tasks=config.train_tasks, max_steps=config.max_steps
            ),
            policy=config.policy_options(),
            samples_per_task=config.samples_per_task,
            seed=config.seed,
            workers=config.workers,
            progress=config.progress,
        ),
        command="collect",
    )
    return out


def train_critic(config: Config, prior: Path, console) -> Path:
    from agentmc.critics.artifact import load, save
    from agentmc.critics.fit import FitConfig, train_from_runs

    out = config.out / "critic"
    console.rule("2/3 critic: hashed n-grams, regression on the prior's return-to-go")
    if out.exists():
        load(out, env_id="textcraft")  # refuses a foreign or broken artifact
        console.print(f"reusing {out}")
        return out
    result = train_from_runs([prior], FitConfig(backend="hashed", seed=config.seed))
    save(result.critic, out)
    metrics = ", ".join(
        f"{k} {v:.3f}" for k, v in result.metrics.items() if isinstance(v, float) and k != "n"
    )
    console.print(f"validation tasks {len(result.val_tasks)}: {metrics} -> {out}")
    return out


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    from rich.console import Console

    from agentmc.policies import make_policy

    if config.baseline != "none":
        make_policy(config.baseline)  # a bad spec fails here, before minutes of collection

    from agentmc.cli import eval as evaluate

    console = Console() if sys.stdout.isatty() else Console(width=200)
    start = time.perf_counter()
    prior = collect(config, console)
    critic = train_critic(config, prior, console)
    k, select = config.particles, config.select
    methods = ("single", f"bon:{k}:{select}", f"amc:{k}:{select}")
    if config.baseline != "none":
        methods += (f"single={config.baseline}",)
    console.rule(f"3/3 evaluate: {', '.join(methods)} on {config.tasks} held-out test tasks")
    store, report = evaluate.run_evaluation(
        evaluate.Config(
            out=config.out / "eval",
            methods=methods,
            tasks=TaskOptions(split="test", n_tasks=config.tasks, max_steps=config.max_steps),
            policy=config.policy_options(),
            critic=critic,
            sampler=config.sampler,
            guard_tasks=config.guard_tasks,
            seed=config.seed,
            workers=config.workers,
            progress=config.progress,
        ),
        title=f"agentmc demo: {config.policy_options().policy} on TextCraft",
    )
    evaluate.print_report(report)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(
        f"\nreport: {store.path / 'report.html'}\n"
        f"wall time {seconds / 60:.1f} min, peak memory {peak_mib:.0f} MiB\n"
        f"{config.tasks} test tasks give wide intervals; to scale up:\n"
        "  agentmc demo --tasks 100 --particles 8 --train-tasks 100"
        "     # hours on a CPU\n"
        "  agentmc demo --model MODEL --base-url http://localhost:8000/v1"
        "     # your model (vLLM, llama.cpp, Ollama)"
    )
    return 0
