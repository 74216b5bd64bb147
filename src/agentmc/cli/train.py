"""``agentmc train``: train a policy with group RL (GRPO, RLOO, G2PO, GiGPO).

``--policy lm`` trains LoRA adapters on the embedded SmolLM2-135M (the
``local`` policy's prompt and constrained choice among the environment's valid
actions; needs the ``torch`` extra), see :mod:`agentmc.rl.lm_trainer`. It writes
``history.jsonl``, ``checkpoint/``, ``lm_policy.json`` + ``adapter/`` (policy
``trained:DIR``) and ``learning_curve.png`` into ``--out``.

``--policy linear`` (the default) is the fast CPU testbed for the estimators:
:class:`~agentmc.rl.policy.LinearPolicy`, a softmax over hashed features, not a
language model. It trains on an environment with
``valid_actions()`` (TextCraft by default) with the chosen advantage estimator,
writing into ``--out`` as it goes (see :mod:`agentmc.rl.checkpoints`):
``history.jsonl`` (learning curve), ``checkpoint.npz``, ``policy.json/.npz``
(the trained agent, usable as policy ``trained:DIR``) and
``learning_curve.png``. Running the same command again continues an
interrupted run; a larger ``--iterations`` extends a finished one.

Example::

    agentmc train --estimator g2po --out runs/g2po --iterations 40 --group-size 8
    agentmc train --policy lm --estimator g2po --out runs/lm-g2po --iterations 8 \
        --tasks-per-iteration 2 --group-size 4 --max-steps 10
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentmc.cli.common import parse
from agentmc.errors import ConfigError, MissingExtraError


@dataclass(frozen=True)
class Config:
    """Train a small policy with GRPO / RLOO / G2PO / GiGPO."""

    out: Path
    """Run directory (created; an existing run with the same settings is resumed)."""
    policy: Literal["linear", "lm"] = "linear"
    """linear: hashed-feature softmax (fast CPU testbed); lm: LoRA on the embedded model."""
    estimator: Literal["grpo", "rloo", "g2po", "gigpo"] = "g2po"
    """Advantage estimator."""
    env: str = "textcraft"
    """Environment id (it must offer valid_actions())."""
    split: Literal["train", "validation", "test", "all"] = "train"
    """Task split to train on."""
    n_tasks: int | None = None
    """Train on the first N tasks of the split only (default: all)."""
    task_ids: tuple[str, ...] = ()
    """Explicit task ids to train on (overrides --split and --n-tasks)."""
    iterations: int = 40
    """Rollout/update iterations."""
    tasks_per_iteration: int = 8
    """Tasks (groups) per iteration."""
    group_size: int = 8
    """Episodes per task and iteration."""
    max_steps: int = 30
    """Step cap per episode on top of the environment's own."""
    learning_rate: float | None = None
    """Adam step size (default: 0.05 linear, 2e-4 lm)."""
    loss: Literal["pg", "ppo_clip"] | None = None
    """Policy loss (default: pg for linear, ppo_clip for lm)."""
    clip: float = 0.2
    """Clip range of ppo_clip."""
    kl_coef: float = 0.0
    """lm only: weight of the KL to the frozen model over each step's candidates."""
    lora_rank: int = 8
    """lm only: rank of the LoRA adapters."""
    init: Path | None = None
    """lm only: start from these saved adapters (an `agentmc sft` run directory)."""
    rollouts: Literal["auto", "llama", "torch"] = "auto"
    """lm only: who plays the episodes: llama.cpp with the current adapters, or torch."""
    epochs: int = 1
    """Gradient steps per batch."""
    gamma: float = 1.0
    """Discount of returns-to-go and TD errors (G2PO, GiGPO)."""
    step_weight: float = 1.0
    """Weight of the step-level part (G2PO, GiGPO): A = A_traj + w * A_step."""
    feature_dim: int = 2**18
    """Hashed feature slots of the linear policy."""
    seed: int = 0
    """Root seed (tasks and episode seeds per iteration derive from it)."""
    checkpoint_every: int = 1
    """Save the checkpoint every N iterations (and at the end)."""
    plot: bool = True
    """Write learning_curve.png (needs matplotlib) at the end."""

    def __post_init__(self) -> None:
        for name in (
            "checkpoint_every",
            "iterations",
            "tasks_per_iteration",
            "group_size",
            "max_steps",
            "epochs",
            "feature_dim",
        ):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be >= 1, got {getattr(self, name)}")
        if self.n_tasks is not None and self.n_tasks < 1:
            raise ConfigError(f"--n-tasks must be at least 1, got {self.n_tasks}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.gamma <= 1:
            raise ConfigError(f"--gamma must be in [0, 1], got {self.gamma}")
        if self.init is not None and not (self.init / "lm_policy.json").is_file():
            raise ConfigError(f"--init {self.init}: no saved LoRA policy (lm_policy.json) there")


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    if config.policy == "lm":
        return _train_lm(config)
    from agentmc.rl.checkpoints import RunDirectory
    from agentmc.rl.curves import plot_curves
    from agentmc.rl.estimators import EstimatorConfig
    from agentmc.rl.trainer import GRPOConfig, TrainState, train, training_tasks

    train_config = GRPOConfig(
        env_id=config.env,
        estimator=config.estimator,
        loss=config.loss or "pg",
        split=config.split,
        n_tasks=config.n_tasks,
        iterations=config.iterations,
        tasks_per_iteration=config.tasks_per_iteration,
        group_size=config.group_size,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate or 0.05,
        epochs=config.epochs,
        clip=config.clip,
        feature_dim=config.feature_dim,
        advantage=EstimatorConfig(gamma=config.gamma, step_weight=config.step_weight),
        seed=config.seed,
    )
    tasks = _task_pool(config, [] if config.task_ids else training_tasks(train_config))
    run = RunDirectory(config.out)
    state = run.resume_state(train_config, tasks)
    done = 0 if state is None else state.iteration
    if done:
        print(f"resuming {config.out} after iteration {done}/{config.iterations}")

    def on_iteration(record: dict, current: TrainState) -> None:
        run.append(record)
        last = current.iteration == config.iterations
        if current.iteration % config.checkpoint_every == 0 or last:
            run.save_checkpoint(current)
        print(
            f"iteration {record['iteration'] + 1}/{config.iterations}  "
            f"env steps {record['env_steps']}  success {record['success_rate']:.3f}  "
            f"nan {record['n_nan']}",
            flush=True,
        )

    result = train(train_config, on_iteration, tasks=tasks, resume=state)
    result.policy.save(run.policy_path)
    print(f"policy: {run.policy_path} (use as policy spec trained:{config.out})")
    if config.plot and result.history:
        try:
            plot_curves(
                {config.estimator: [result.history]},
                run.plot_path,
                title=f"{config.env}: {config.estimator} (seed {config.seed})",
            )
        except MissingExtraError as error:  # the run itself is saved; only the plot is missing
            print(f"learning curve not plotted: {error}")
        else:
            print(f"learning curve: {run.plot_path}")
    return 0


def _task_pool(config: Config, default: list[str]) -> list[str]:
    if not config.task_ids:
        return default
    from agentmc.envs import task_ids
    from agentmc.errors import UnknownNameError

    known = set(task_ids(config.env, "all"))
    unknown = [t for t in config.task_ids if t not in known]
    if unknown:
        raise UnknownNameError(f"unknown {config.env} task id(s) {', '.join(unknown[:5])}")
    return list(config.task_ids)


def _train_lm(config: Config) -> int:
    from agentmc.errors import require

    require("torch", "torch")
    from agentmc.rl.curves import plot_curves
    from agentmc.rl.estimators import EstimatorConfig
    from agentmc.rl.lm import LoRAConfig
    from agentmc.rl.lm_trainer import LMRunDirectory, LMTrainConfig, lm_training_tasks, train_lm

    train_config = LMTrainConfig(
        env_id=config.env,
        estimator=config.estimator,
        loss=config.loss or "ppo_clip",
        split=config.split,
        n_tasks=config.n_tasks,
        iterations=config.iterations,
        tasks_per_iteration=config.tasks_per_iteration,
        group_size=config.group_size,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate or 2e-4,
        epochs=config.epochs,
        clip=config.clip,
        kl_coef=config.kl_coef,
        lora=LoRAConfig(rank=config.lora_rank, alpha=2.0 * config.lora_rank),
        advantage=EstimatorConfig(gamma=config.gamma, step_weight=config.step_weight),
        init=None if config.init is None else str(config.init),
        rollouts=config.rollouts,
        seed=config.seed,
    )
    tasks = _task_pool(config, lm_training_tasks(train_config) if not config.task_ids else [])
    run = LMRunDirectory(config.out)
    done = run.done()
    if done:
        print(f"resuming {config.out} after iteration {done}/{config.iterations}")

    def on_iteration(record: dict) -> None:
        print(
            f"iteration {record['iteration'] + 1}/{config.iterations}  "
            f"env steps {record['env_steps']}  success {record['success_rate']:.3f}  "
            f"loss {record['loss']:.4f}  {record['seconds']:.0f} s",
            flush=True,
        )

    _, history = train_lm(
        train_config, config.out, on_iteration=on_iteration, tasks=tasks,
        checkpoint_every=config.checkpoint_every,
    )  # fmt: skip
    print(f"policy: {config.out} (use as policy spec trained:{config.out})")
    if config.plot and history:
        try:
            plot_curves(
                {f"lm-{config.estimator}": [history]},
                run.plot_path,
                title=f"{config.env}: LoRA SmolLM2-135M, {config.estimator} (seed {config.seed})",
            )
        except MissingExtraError as error:
            print(f"learning curve not plotted: {error}")
        else:
            print(f"learning curve: {run.plot_path}")
    return 0
