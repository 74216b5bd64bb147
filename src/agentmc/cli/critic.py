"""``agentmc critic train`` and ``agentmc critic eval``: value models for AMC.

``critic train`` reads the trajectories of one or more run directories
(``agentmc collect``), builds one example per state (the task text plus the
last N turns, with the chosen target), splits the **tasks** into training and
validation sets, trains the backend (hashed n-grams: seconds on a CPU;
sentence embeddings + MLP; transformer + LoRA), and saves a versioned artifact
that records the environment, config, data fingerprint, task split and
validation metrics.

``critic eval`` scores a saved critic on held-out trajectories (e.g. an
``agentmc rollout`` on the validation or test split) and writes
``metrics.json`` (MSE, Spearman, AUROC for final success overall and at turns
2, 4 and 8, calibration table; the within-task AUROC, pairwise accuracy and
Spearman among histories of one task at one step, which is what resampling
and selection use; AUROC on finished attempts), ``reliability.png`` and
``predictions.csv``.
Tasks the critic was trained on are counted and flagged.

Backend settings beyond the common flags go in ``--backend-options KEY=VALUE``
(e.g. ``rank=16 dtype=bfloat16 base_model=/models/llama`` for LoRA); the valid
keys are the fields of the backend's config and are listed on error.

``critic refresh`` warm-starts a new version of a deployed critic from the
trajectories produced since (``agentmc run``/``eval`` directories keep every
particle): held-out tasks are drawn among tasks the old critic never saw, the
old and new versions are compared there (pooled and within-task metrics),
and the new artifact records its lineage (parent version, data fingerprints).

Example::

    agentmc collect --out runs/prior --n-tasks 200
    agentmc critic train --data runs/prior --backend hashed --out critics/tc
    agentmc rollout --out runs/heldout --split validation
    agentmc critic eval --critic critics/tc --data runs/heldout --out reports/critic
    agentmc eval --critic critics/tc --methods amc:8:critic --out runs/day1
    agentmc critic refresh --critic critics/tc --data runs/day1 --out critics/tc-v2
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentmc.cli.common import parse
from agentmc.critics.fit import FitConfig
from agentmc.errors import ConfigError

METRICS_FILE = "metrics.json"
PLOT_FILE = "reliability.png"
PREDICTIONS_FILE = "predictions.csv"


@dataclass(frozen=True)
class TrainConfig:
    """Train a critic on collected trajectories."""

    data: tuple[Path, ...]
    """Run directories with trajectories: agentmc collect, rollout, run or eval (every
    particle of run/eval is used)."""
    out: Path
    """Artifact directory to write (an existing critic artifact there is replaced)."""
    fit: FitConfig = field(default_factory=FitConfig)
    td_critic: Path | None = None
    """With --target td: the critic artifact whose values TD(lambda) bootstraps from."""
    backend_options: tuple[str, ...] = ()
    """Backend settings as KEY=VALUE (fields of HashedConfig / EmbeddingConfig /
    LoraCriticConfig / JudgeConfig), e.g. `rank=16 dtype=bfloat16`."""
    judge_policy: str | None = None
    """With --backend judge: the policy spec of the judge (e.g. `openai:gpt-4o-mini`, `local`)."""
    judge_base_url: str | None = None
    """With --backend judge: server URL of an `openai:` judge."""
    judge_states: int = 200
    """With --backend judge: states of --data the judge is measured on (0: none)."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("--data needs at least one run directory")
        if (self.fit.target == "td") != (self.td_critic is not None):
            raise ConfigError("--target td and --td-critic PATH go together")
        if (self.fit.backend == "judge") != (self.judge_policy is not None):
            raise ConfigError("--backend judge and --judge-policy SPEC go together")
        if self.judge_states < 0:
            raise ConfigError(f"--judge-states must be >= 0, got {self.judge_states}")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a critic on held-out trajectories."""

    critic: Path
    """Critic artifact directory (agentmc critic train --out)."""
    data: tuple[Path, ...]
    """Run directories with held-out trajectories (e.g. agentmc rollout on the test split)."""
    out: Path
    """Directory for metrics.json, reliability.png and predictions.csv."""
    plot: bool = True
    """Write the reliability diagram (needs matplotlib)."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("--data needs at least one run directory")


@dataclass(frozen=True)
class RefreshConfig:
    """Warm-start a new critic version from new trajectories."""

    critic: Path
    """The critic artifact to refresh (a hashed critic with a return target)."""
    data: tuple[Path, ...]
    """New run directories: agentmc run, eval, collect or rollout."""
    out: Path
    """Artifact directory of the new version (may be --critic itself to replace it)."""
    val_fraction: float = 0.2
    """Share of the tasks the old critic never saw that are held out to compare old and new."""
    seed: int = 0
    """Seed of the split and the solver."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("--data needs at least one run directory")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")


# -- backend options -----------------------------------------------------------------


def backend_config_type(backend: str) -> type:
    """The config dataclass of a backend (imports no heavy library)."""
    if backend == "hashed":
        from agentmc.critics.hashed import HashedConfig

        return HashedConfig
    if backend == "embedding":
        from agentmc.critics.embedding import EmbeddingConfig

        return EmbeddingConfig
    if backend == "judge":
        from agentmc.critics.judge import JudgeConfig

        return JudgeConfig
    from agentmc.critics.lora import LoraCriticConfig

    return LoraCriticConfig


def _convert(text: str, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        if text not in typing.get_args(kind):
            raise ConfigError(f"--backend-options {key}: choose from {list(typing.get_args(kind))}")
        return text
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(_convert(part.strip(), item, key) for part in text.split(",") if part.strip())
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--backend-options {key}: expected true or false, got {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(
                f"--backend-options {key}: expected {kind.__name__}, got {text!r}"
            ) from None
    return text


def backend_config(backend: str, options: tuple[str, ...]) -> Any:
    """Build a backend config from ``KEY=VALUE`` strings (tuples are comma-separated).

    Raises:
        ConfigError: A malformed option, an unknown key (the valid keys are
            listed) or a value the config rejects.
    """
    cls = backend_config_type(backend)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for option in options:
        key, sep, text = option.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--backend-options expects KEY=VALUE, got {option!r}")
        if key not in names:
            raise ConfigError(
                f"--backend-options: {backend} backend has no setting {key!r}; "
                f"valid: {', '.join(names)}"
            )
        values[key] = _convert(text.strip(), hints[key], key)
    return cls(**values)


# -- commands ------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    lines = [
        f"  states {metrics.get('n_states')}  tasks {metrics.get('n_tasks')}  "
        f"success rate {_fmt(metrics.get('success_rate'))}",
        f"  MSE {_fmt(metrics.get('mse'))}  Spearman {_fmt(metrics.get('spearman'))}  "
        f"AUROC(success) {_fmt(metrics.get('auroc_success'))}",
    ]
    if "within_task_auroc" in metrics:
        lines.append(
            f"  within task (same task, same step; {metrics.get('within_task_pairs')} pairs in "
            f"{metrics.get('within_task_groups')} groups): AUROC "
            f"{_fmt(metrics.get('within_task_auroc'))}  pairwise accuracy "
            f"{_fmt(metrics.get('within_task_pairwise_accuracy'))}  Spearman "
            f"{_fmt(metrics.get('within_task_spearman'))}"
        )
    if "final_auroc" in metrics:
        lines.append(
            f"  finished attempts ({metrics.get('n_final_states')}): AUROC "
            f"{_fmt(metrics.get('final_auroc'))}  within task "
            f"{_fmt(metrics.get('final_within_task_auroc'))} "
            f"({metrics.get('final_within_task_pairs')} pairs)"
        )
    turns = sorted(int(k.rsplit("_", 1)[1]) for k in metrics if k.startswith("auroc_turn_"))
    if turns:
        lines.append(
            "  AUROC at turn "
            + "  ".join(
                f"{t}: {_fmt(metrics[f'auroc_turn_{t}'])} (n={metrics.get(f'n_turn_{t}')})"
                for t in turns
            )
        )
    return lines


def warn_test_split(result: Any) -> None:
    """Say so when a critic was trained on tasks of a test split."""
    seen = result.test_split_tasks
    if seen:
        print(
            f"note: {len(seen)} of the training tasks were played on a test split; do not "
            "evaluate this critic on them (agentmc eval refuses a critic on tasks it was "
            "trained or validated on)",
            file=sys.stderr,
        )


def train_judge(config: TrainConfig, settings: Any) -> int:
    """Write a judge artifact; measure the judge on a sample of --data states."""
    from dataclasses import replace

    import numpy as np

    from agentmc.critics.artifact import Provenance, fingerprint, save
    from agentmc.critics.evaluate import critic_metrics
    from agentmc.critics.fit import load_runs
    from agentmc.critics.judge import JudgeCritic
    from agentmc.critics.targets import env_of, make_examples
    from agentmc.policies import make_policy

    assert config.judge_policy is not None
    trajectories = load_runs(config.data)
    env_id = env_of(trajectories)
    policy = make_policy(config.judge_policy, base_url=config.judge_base_url)
    provenance = Provenance(
        env_id=env_id,
        target="success",
        last_turns=settings.last_turns,
        data_fingerprint="",
        synthetic_data=bool(getattr(policy, "synthetic", False)),
    )
    critic = JudgeCritic(
        policy,
        settings,
        policy_spec=config.judge_policy,
        base_url=config.judge_base_url,
        provenance=provenance,
    )
    metrics: dict[str, Any] = {}
    if config.judge_states:
        examples = make_examples(trajectories, "success", terminal=True)
        rng = np.random.default_rng(config.fit.seed)
        n = min(config.judge_states, len(examples))
        mask = np.zeros(len(examples), dtype=bool)
        mask[rng.choice(len(examples), size=n, replace=False)] = True
        sample = examples.subset(mask)
        found, _ = critic_metrics(critic, sample)
        metrics = {k: v for k, v in found.items() if k != "calibration"}
        metrics |= critic.stats() | {
            "measured_on": fingerprint([trajectories[i] for i in sorted(set(sample.episode))]),
            "seed": config.fit.seed,
        }
    critic.provenance = replace(provenance, metrics=metrics)
    path = save(critic, config.out)
    print(f"LLM judge ({config.judge_policy}) for {env_id}: zero-shot, nothing trained")
    if metrics:
        print(f"measured on {metrics['n_states']} states of --data (every task is held out):")
        for line in _metric_lines(metrics):
            print(line)
    print(f"-> {path}")
    return 0


def train(config: TrainConfig) -> int:
    from agentmc.critics.artifact import load, save
    from agentmc.critics.fit import train_from_runs

    settings = backend_config(config.fit.backend, config.backend_options)
    if config.fit.backend == "judge":
        return train_judge(config, settings)
    bootstrap = None
    if config.td_critic is not None:
        bootstrap = load(config.td_critic)
    result = train_from_runs(config.data, config.fit, settings, bootstrap_critic=bootstrap)
    path = save(result.critic, config.out)
    warn_test_split(result)
    provenance = result.critic.provenance
    label = " (synthetic data)" if provenance.synthetic_data else ""
    skipped = (
        " ; left out: " + ", ".join(f"{n} {why}" for why, n in sorted(result.skipped.items()))
        if result.skipped
        else ""
    )
    print(
        f"{config.fit.backend} critic for {provenance.env_id}{label}: "
        f"{provenance.n_examples} training states from {len(result.train_tasks)} tasks, "
        f"validated on {len(result.val_tasks)} held-out tasks{skipped}"
    )
    print("validation (held-out tasks):")
    for line in _metric_lines(result.metrics):
        print(line)
    print(f"-> {path}")
    return 0


def evaluate(config: EvalConfig) -> int:
    import numpy as np

    from agentmc.critics.artifact import load, read_meta
    from agentmc.critics.evaluate import critic_metrics, reliability_plot
    from agentmc.critics.fit import load_runs
    from agentmc.critics.targets import env_of, make_examples
    from agentmc.errors import DataError, MissingExtraError

    trajectories = load_runs(config.data)
    env_id = env_of(trajectories)
    critic = load(config.critic, env_id=env_id)
    meta = read_meta(config.critic)
    provenance = critic.provenance
    # TD critics estimate the Monte-Carlo return too; score them against it.
    target: Literal["success", "return"] = "success" if provenance.target == "success" else "return"
    recorded = provenance.metrics
    examples = make_examples(
        trajectories,
        target,
        gamma=float(recorded.get("gamma", 1.0)),
        truncation=recorded.get("truncation", "terminal"),
        terminal=True,
    )
    if len(examples) == 0:
        raise DataError(
            f"{', '.join(map(str, config.data))}: no finished trajectory to score "
            f"({', '.join(f'{n} {why}' for why, n in examples.skipped.items())})"
        )
    metrics, values = critic_metrics(critic, examples)
    tasks = set(examples.task_ids)
    seen = tasks & set(provenance.train_tasks)
    selected_on = tasks & set(provenance.val_tasks)
    synthetic = any(t.synthetic for t in trajectories) or provenance.synthetic_data
    report = {
        "critic": str(config.critic),
        "backend": meta["backend"],
        "env_id": env_id,
        "critic_target": provenance.target,
        "target": target,
        "data": [str(p) for p in config.data],
        "synthetic": synthetic,
        "tasks_in_critic_training": len(seen),
        "tasks_in_critic_validation": len(selected_on),
        "skipped": examples.skipped,
        "metrics": metrics,
    }
    try:
        config.out.mkdir(parents=True, exist_ok=True)
        (config.out / METRICS_FILE).write_text(json.dumps(report, indent=2) + "\n")
        with (config.out / PREDICTIONS_FILE).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["task_id", "episode", "step", "final", "value", "target", "success"]
            )
            final = examples.is_terminal
            for i in range(len(examples)):
                writer.writerow(
                    [
                        examples.task_ids[i],
                        int(examples.episode[i]),
                        int(examples.steps[i]),
                        int(final[i]),
                        f"{values[i]:.6g}",
                        f"{examples.targets[i]:.6g}",
                        int(examples.success[i]),
                    ]
                )
    except OSError as error:
        raise DataError(f"cannot write to {config.out}: {error}") from None
    plot_note = ""
    title = f"{meta['backend']} critic on {env_id}" + (" (synthetic)" if synthetic else "")
    if config.plot:
        try:
            reliability_plot(
                values,
                examples.success,
                config.out / PLOT_FILE,
                title=title,
            )
            plot_note = f", {PLOT_FILE}"
        except MissingExtraError as error:
            print(f"note: no plot ({error})", file=sys.stderr)
    label = " (synthetic data)" if synthetic else ""
    print(f"{meta['backend']} critic on {env_id}{label}, {target} target:")
    for line in _metric_lines(metrics):
        print(line)
    if seen or selected_on:
        print(
            f"note: {len(seen)} of {len(tasks)} tasks were in the critic's training split and "
            f"{len(selected_on)} in its validation split; these metrics are not fully held-out",
            file=sys.stderr,
        )
    elif float(np.mean(examples.success)) in (0.0, 1.0):
        print("note: every episode has the same outcome; AUROC is undefined", file=sys.stderr)
    print(f"-> {config.out / METRICS_FILE}, {PREDICTIONS_FILE}{plot_note}")
    return 0


COMPARED = (
    ("within-task AUROC", "within_task_auroc"),
    ("within-task pairwise accuracy", "within_task_pairwise_accuracy"),
    ("within-task Spearman", "within_task_spearman"),
    ("finished attempts AUROC (within task)", "final_within_task_auroc"),
    ("AUROC(success), pooled", "auroc_success"),
    ("Spearman, pooled", "spearman"),
    ("MSE", "mse"),
)


def refresh_command(config: RefreshConfig) -> int:
    from agentmc.critics.artifact import load, read_meta, save
    from agentmc.critics.fit import load_runs
    from agentmc.critics.refresh import refresh

    trajectories = load_runs(config.data)
    meta = read_meta(config.critic)
    parent = load(config.critic)
    result = refresh(
        parent,
        trajectories,
        parent_path=str(config.critic),
        parent_created=meta.get("created"),
        source=", ".join(str(p) for p in config.data),
        val_fraction=config.val_fraction,
        seed=config.seed,
    )
    path = save(result.critic, config.out)
    provenance = result.critic.provenance
    label = " (synthetic data)" if provenance.synthetic_data else ""
    print(
        f"critic {config.critic} v{provenance.version - 1} -> v{provenance.version}{label}: "
        f"warm-started on {provenance.n_examples} states of "
        f"{len(result.train_tasks)} tasks; compared on {len(result.heldout_tasks)} held-out "
        "tasks neither version trained on"
    )
    width = max(len(name) for name, _ in COMPARED)
    print(f"  {'metric':<{width}}  {'old':>7}  {'new':>7}")
    for name, key in COMPARED:
        old, new = result.parent_metrics.get(key), result.metrics.get(key)
        print(f"  {name:<{width}}  {_fmt(old):>7}  {_fmt(new):>7}")
    print(f"-> {path}")
    return 0


def main(name: str, argv: list[str]) -> int:
    if name.endswith("refresh"):
        return refresh_command(parse(RefreshConfig, name, argv))
    if name.endswith("train"):
        return train(parse(TrainConfig, name, argv))
    return evaluate(parse(EvalConfig, name, argv))
