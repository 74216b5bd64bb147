"""Train a critic on the prior's trajectories, with a validation split by task.

``fit`` builds one example per state (:mod:`agentmc.critics.targets`), splits
the **tasks** (never the turns) into training and validation sets, trains the
chosen backend on the training tasks (backends use the validation tasks for
model selection / early stopping), measures it on the validation tasks, and
records where it came from (environment, target, data fingerprint, metrics)
so the result can be saved as an artifact.

Why by task: states of one episode, and episodes of one task, are strongly
correlated; a split by turn would put near-copies of validation states in the
training set and report a critic far better than it is on new tasks.

Example:
    >>> result = fit(trajectories, FitConfig(backend="hashed"))   # doctest: +SKIP
    >>> result.metrics["auroc_success"]                          # doctest: +SKIP
    0.83
    >>> save(result.critic, "critics/textcraft")                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from agentmc.critics.artifact import BACKENDS, Provenance, TrainableCritic, fingerprint
from agentmc.critics.evaluate import critic_metrics
from agentmc.critics.targets import Examples, make_examples
from agentmc.critics.text import DEFAULT_LAST_TURNS
from agentmc.data.trajectory import Trajectory
from agentmc.errors import ConfigError, DataError
from agentmc.types import BoolArray

if TYPE_CHECKING:
    from agentmc.critics.core import Critic

#: The least data a critic can be trained and validated on.
MIN_TASKS = 4
MIN_STATES = 20


@dataclass(frozen=True)
class FitConfig:
    """How to train a critic."""

    backend: Literal["hashed", "embedding", "lora", "judge"] = "hashed"
    """Model family: hashed n-grams (seconds), sentence embeddings + MLP, LM + LoRA, or
    `judge`: a zero-shot LLM judge (nothing trained; needs --judge-policy)."""
    target: Literal["return", "success", "td"] = "return"
    """Regression target: Monte-Carlo return-to-go, final success 0/1, or TD(lambda)
    returns bootstrapped from a given critic."""
    gamma: float = 1.0
    """Discount of the return and TD targets."""
    lam: float = 0.95
    """Lambda of the TD(lambda) target (1 = Monte-Carlo return, 0 = one-step TD)."""
    last_turns: int = DEFAULT_LAST_TURNS
    """The critic reads the task text and the last N turns."""
    val_fraction: float = 0.2
    """Share of tasks held out for validation (model selection and reported metrics)."""
    truncation: Literal["terminal", "drop"] = "terminal"
    """Truncated episodes: targets as obtained under the step cap, or left out."""
    final_states: bool = True
    """Also train on each episode's final state with its outcome as target, so the
    critic can judge a finished attempt (critic / weight selection)."""
    seed: int = 0
    """Seed of the split and of every stochastic training step."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {sorted(BACKENDS)}, got {self.backend!r}")
        if self.target not in ("return", "success", "td"):
            raise ConfigError(f"target must be 'return', 'success' or 'td', got {self.target!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"lam must be in [0, 1], got {self.lam}")
        if self.last_turns < 0:
            raise ConfigError(f"last_turns must be >= 0, got {self.last_turns}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.truncation not in ("terminal", "drop"):
            raise ConfigError(f"truncation must be 'terminal' or 'drop', got {self.truncation!r}")


@dataclass
class FitResult:
    """A trained critic and what was measured.

    Attributes:
        critic: The trained critic (its ``provenance`` holds the metrics too).
        metrics: Metrics on the validation tasks.
        train_tasks: Task ids trained on.
        val_tasks: Task ids held out.
        val_values: The critic's predictions on the validation states, shape ``(N_val,)``.
        val_examples: The validation states.
    """

    critic: TrainableCritic
    metrics: dict[str, Any]
    train_tasks: list[str]
    val_tasks: list[str]
    val_values: np.ndarray
    val_examples: Examples
    skipped: dict[str, int] = field(default_factory=dict)
    test_split_tasks: set[str] = field(default_factory=set)


def split_by_task(
    task_ids: Sequence[str], val_fraction: float, rng: np.random.Generator
) -> BoolArray:
    """Validation mask that holds out whole tasks.

    The distinct task ids are sorted (so the split does not depend on the
    order of the data), shuffled with ``rng``, and the first
    ``ceil(val_fraction * n_tasks)`` (at least 1, at most ``n_tasks - 1``) go to
    validation.

    Args:
        task_ids: Task of each example, length N.
        val_fraction: Share of tasks to hold out, in ``(0, 1)``.
        rng: Source of the shuffle.

    Returns:
        Boolean mask of shape ``(N,)``, true for validation examples.

    Raises:
        DataError: Fewer than two distinct tasks.
    """
    tasks = sorted(set(task_ids))
    if len(tasks) < 2:
        raise DataError(f"a split by task needs at least 2 distinct tasks, got {len(tasks)}")
    n_val = min(max(1, math.ceil(val_fraction * len(tasks))), len(tasks) - 1)
    held_out = {tasks[i] for i in rng.permutation(len(tasks))[:n_val]}
    return np.array([task in held_out for task in task_ids], dtype=bool)


def check_size(examples: Examples, source: str = "the data") -> None:
    """Refuse datasets too small to train and validate on.

    Raises:
        DataError: Fewer than :data:`MIN_TASKS` tasks or :data:`MIN_STATES` states.
    """
    n_tasks = len(set(examples.task_ids))
    if n_tasks < MIN_TASKS or len(examples) < MIN_STATES:
        skipped = (
            f" (left out: {', '.join(f'{n} {why}' for why, n in examples.skipped.items())})"
            if examples.skipped
            else ""
        )
        raise DataError(
            f"too little data to train a critic: {source} gives {len(examples)} states from "
            f"{n_tasks} tasks{skipped}; at least {MIN_STATES} states from {MIN_TASKS} tasks are "
            "needed (collect more with agentmc collect --samples-per-task ...)"
        )


def default_backend_config(backend: str) -> Any:
    """The default settings object of a backend."""
    if backend == "hashed":
        from agentmc.critics.hashed import HashedConfig

        return HashedConfig()
    if backend == "embedding":
        from agentmc.critics.embedding import EmbeddingConfig

        return EmbeddingConfig()
    from agentmc.critics.lora import LoraCriticConfig

    return LoraCriticConfig()


def fit(
    trajectories: Sequence[Trajectory],
    config: FitConfig = FitConfig(),
    backend_config: Any = None,
    *,
    source: str = "the data",
    bootstrap_critic: Critic | None = None,
) -> FitResult:
    """Train and validate a critic (see the module docstring).

    Args:
        trajectories: Prior-policy episodes from one environment.
        config: Target, window, split and backend choice.
        backend_config: Settings of the backend (default: its defaults).
        source: How to name the data in error messages (e.g. the run directory).
        bootstrap_critic: The critic TD(lambda) targets bootstrap from
            (``config.target == "td"`` only; e.g. a Monte-Carlo critic trained before).

    Returns:
        The critic, its validation metrics and the split.

    Raises:
        ConfigError: ``target="td"`` without a ``bootstrap_critic``, or one with it.
        DataError: No, mixed-environment or too little data; a split with no
            training or validation state; a bootstrap critic of another environment.
        MissingExtraError: The backend's extra is not installed.
    """
    if config.backend == "judge":
        raise ConfigError(
            "the judge backend is zero-shot: nothing to fit; make its artifact with "
            "agentmc critic train --backend judge --judge-policy SPEC"
        )
    if (config.target == "td") != (bootstrap_critic is not None):
        raise ConfigError(
            "target 'td' needs a critic to bootstrap from (--td-critic PATH), and only "
            f"'td' uses one; got target={config.target!r} with"
            f"{'' if bootstrap_critic is not None else 'out'} a bootstrap critic"
        )
    examples = make_examples(
        trajectories,
        config.target,
        gamma=config.gamma,
        truncation=config.truncation,
        critic=bootstrap_critic,
        lam=config.lam,
        terminal=config.final_states,
    )
    bootstrap_env = getattr(getattr(bootstrap_critic, "provenance", None), "env_id", None)
    if bootstrap_env is not None and bootstrap_env != examples.env_id:
        raise DataError(
            f"the bootstrap critic was trained on {bootstrap_env!r}, the data is from "
            f"{examples.env_id!r}; bootstrap from a critic of the same environment"
        )
    check_size(examples, source)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x6372]))
    val_mask = split_by_task(examples.task_ids, config.val_fraction, rng)
    train, val = examples.subset(~val_mask), examples.subset(val_mask)
    from agentmc.critics.artifact import backend_class

    cls: Any = backend_class(config.backend)
    backend_config = backend_config or default_backend_config(config.backend)
    used = [trajectories[i] for i in sorted(set(examples.episode.tolist()))]
    data_fingerprint = fingerprint(used)
    provenance = Provenance(
        env_id=examples.env_id,
        target=config.target,
        last_turns=config.last_turns,
        data_fingerprint=data_fingerprint,
        n_trajectories=examples.n_trajectories,
        n_examples=len(train),
        synthetic_data=any(t.synthetic for t in used),
        train_tasks=sorted(set(train.task_ids)),
        val_tasks=sorted(set(val.task_ids)),
        lineage=[{"version": 1, "data_fingerprint": data_fingerprint, "data": source}],
    )
    critic = cls.train(
        train,
        val,
        backend_config,
        target=config.target,
        last_turns=config.last_turns,
        rng=rng,
        provenance=provenance,
    )
    metrics, values = critic_metrics(critic, val)
    summary = {k: v for k, v in metrics.items() if k != "calibration"}
    critic.provenance = replace(
        provenance,
        metrics={
            **summary,
            "train_states": len(train),
            "train_tasks": len(set(train.task_ids)),
            "gamma": config.gamma,
            "lam": config.lam if config.target == "td" else None,
            "truncation": config.truncation,
            "final_states": config.final_states,
            "val_fraction": config.val_fraction,
            "seed": config.seed,
        },
    )
    return FitResult(
        critic=critic,
        metrics=metrics,
        train_tasks=sorted(set(train.task_ids)),
        val_tasks=sorted(set(val.task_ids)),
        val_values=values,
        val_examples=val,
        skipped=examples.skipped,
        test_split_tasks=tasks_of_test_split(used),
    )


#: Record kinds that hold trajectories: collect/rollout write ``trajectory``, ``run``
#: writes ``episode``, ``eval`` writes ``result`` (test split) and ``guard`` (validation).
TRAJECTORY_KINDS = ("trajectory", "episode", "result", "guard")


def episode_trajectories(row: dict[str, Any], source: str) -> list[Trajectory]:
    """Every kept particle's trajectory of one ``run``/``eval`` record (a result row).

    Particles of SMC/AMC that resampling made identical (the same turns, the same
    leaf of the packed tree) are kept once; Best-of-N's independent samples are all kept.
    Each trajectory's ``meta`` gets ``source``, ``split``, ``method`` and ``particle``.

    Resampling biases targets: a state's return-to-go is an unbiased target only if
    the prior alone played on from it. Once a later resampling has selected the
    particle, its continuation was chosen *because* it looked good (to the critic,
    or by its reward), so a critic trained on it would learn its own preferences
    back. Each SMC/AMC particle therefore gets ``meta["unbiased_from"]``: the step
    of its last resampling before it finished; :func:`make_examples` keeps only its
    states from there on, and its final state (whose outcome is exact).
    """
    from agentmc.data.particles import unpack

    episode = row["episode"]
    packed = episode.get("particles")
    kind = (episode.get("diagnostics") or {}).get("kind")
    if packed is None:
        found = [Trajectory.from_dict(episode["trajectory"])]
    else:
        found = unpack(packed)
        if kind in ("smc", "amc"):
            first: dict[int, int] = {}
            for i, leaf in enumerate(packed["leaves"]):
                first.setdefault(int(leaf["node"]), i)
            found = [found[i] for i in sorted(first.values())]
            resampled = [
                int(c["t"])
                for c in (episode.get("diagnostics") or {}).get("checkpoints") or []
                if c.get("resampled")
            ]
            found = [
                replace(
                    t,
                    meta={
                        **t.meta,
                        "unbiased_from": max((s for s in resampled if s < t.n_steps), default=0),
                    },
                )
                for t in found
            ]
    extra = {"source": source, "split": row.get("split"), "method": row.get("method")}
    return [replace(t, meta={**t.meta, **extra}) for t in found]


def load_runs(run_dirs: Sequence[str | Path]) -> list[Trajectory]:
    """Read the trajectories of run directories from ``collect``, ``rollout``, ``run`` or ``eval``.

    ``run`` and ``eval`` directories give every particle of every episode
    (:func:`episode_trajectories`); ``eval`` directories give those of the
    do-no-harm check (validation split) too. Each trajectory's ``meta["split"]``
    says which split its task came from.

    Args:
        run_dirs: Run directories, read in the order given.

    Returns:
        Their trajectories, in the order written.

    Raises:
        DataError: No directory given, a directory that does not exist or is not a
            run directory, or one without any trajectory record.
    """
    from agentmc.data.store import RunStore

    if not run_dirs:
        raise DataError(
            "no run directory given: pass --data RUN_DIR (from agentmc collect, run or eval)"
        )
    trajectories: list[Trajectory] = []
    for run_dir in run_dirs:
        path = Path(run_dir)
        if not path.is_dir():
            raise DataError(f"run directory {path} does not exist; create it with agentmc collect")
        store = RunStore.open(path)
        found: list[Trajectory] = []
        kinds: set[str] = set()
        try:
            for record in store.records():
                kinds.add(record["kind"])
                if record["kind"] == "trajectory":
                    found.append(Trajectory.from_dict(record["data"]))
                elif record["kind"] in TRAJECTORY_KINDS and "episode" in record["data"]:
                    found.extend(episode_trajectories(record["data"], store.meta.command))
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{store.records_path}: malformed trajectory ({error})") from None
        if not found:
            what = f"only {', '.join(sorted(kinds))} records" if kinds else "no records yet"
            raise DataError(
                f"{path} holds no trajectories ({what}); collect some with "
                f"agentmc collect --out {path}"
            )
        trajectories.extend(found)
    return trajectories


def tasks_of_test_split(trajectories: Sequence[Trajectory]) -> set[str]:
    """Tasks of ``trajectories`` that were played on a ``test`` split."""
    return {t.task_id for t in trajectories if t.meta.get("split") == "test"}


def train_from_runs(
    run_dirs: Sequence[str | Path],
    config: FitConfig = FitConfig(),
    backend_config: Any = None,
    *,
    bootstrap_critic: Critic | None = None,
) -> FitResult:
    """Train a critic on the trajectories of run directories: :func:`load_runs` + :func:`fit`.

    This is what ``agentmc critic train`` does before saving the artifact.

    Args:
        run_dirs: Run directories written by ``agentmc collect`` or ``agentmc rollout``.
        config: Target, window, split, seed and backend choice.
        backend_config: Backend settings (default: the backend's defaults).
        bootstrap_critic: The critic TD(lambda) targets bootstrap from (target ``"td"``).

    Returns:
        The trained critic (save it with :func:`agentmc.critics.artifact.save`) and
        its validation metrics.

    Raises:
        DataError: Missing, empty, mixed-environment or too little data.
    """
    trajectories = load_runs(run_dirs)
    source = ", ".join(str(p) for p in run_dirs)
    return fit(
        trajectories,
        config,
        backend_config,
        source=source,
        bootstrap_critic=bootstrap_critic,
    )
