"""Group RL on the embedded language model: LoRA adapters trained with GRPO/RLOO/G2PO/GiGPO.

Each iteration draws ``tasks_per_iteration`` tasks and plays ``group_size``
episodes of each through :func:`agentmc.rollout.arollout` with the current
adapters (the ``local`` policy's prompt and ``choose`` decoding, LoRA on
top). By default the episodes are played by llama.cpp: the adapters are
exported as GGUF (:func:`~agentmc.rl.lm.export_gguf_adapter`) and the
``local`` policy plays all episodes of the iteration at once in its batched
engine, several times faster than the torch model playing them one by one
(``rollouts="torch"``, the fallback without llama-cpp-python). Training may
start from saved adapters (``init``: an ``agentmc sft`` run), so that the
first groups already hold successes to learn from. Every agent turn is one
training sample: the prompt as the policy saw it, the candidates' tokens, the
action taken and its log-probability at sampling time (recomputed by the
torch model when a later epoch or the KL needs the ratio, since llama.cpp's
rounding moves it by about 0.1 nats). The estimator (:mod:`agentmc.rl.estimators`)
gives each step its advantage; the loss (:mod:`agentmc.rl.losses`, ``ppo_clip``
by default) gives ``coef[t] = -N dL/dlog pi(a_t|s_t)``, and the gradient of
``-(1/N) sum_t coef[t] log pi(a_t | s_t)`` (plus ``kl_coef`` times the exact
KL to the frozen model over each step's candidates) is back-propagated into
the adapters; AdamW takes one step per epoch.

Randomness is explicit as in :mod:`agentmc.rl.trainer`: tasks and episode
seeds of iteration ``i`` depend only on ``(seed, i)``, so estimators face the
same tasks, and a run resumed from its checkpoint (adapter, optimiser,
iteration, history) continues with the batches an uninterrupted run draws.

Run directory (``out``): ``config.json``, ``history.jsonl`` (one record per
iteration, appended), ``checkpoint/`` (adapter, ``optimizer.pt``,
``state.json``), and at the end ``lm_policy.json`` + ``adapter/`` (the agent,
``trained:DIR``) and ``learning_curve.png``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentmc.envs.core import TextEnv
from agentmc.errors import ConfigError, DataError, MissingExtraError, require
from agentmc.rl.estimators import EstimatorConfig, episode_from_trajectory, get_estimator
from agentmc.rl.lm import (
    LMPolicy,
    LoRAConfig,
    Recorder,
    StepSample,
    batch_log_probs,
    export_gguf_adapter,
)
from agentmc.rl.losses import get_loss
from agentmc.rollout import arollout


@dataclass(frozen=True)
class LMTrainConfig:
    """Settings of one LoRA training run on the embedded model."""

    env_id: str = "textcraft"
    """Environment to train on (must offer valid_actions())."""
    estimator: str = "g2po"
    """Advantage estimator: grpo, rloo, g2po or gigpo."""
    loss: str = "ppo_clip"
    """Policy loss: ppo_clip (clipped surrogate) or pg (REINFORCE)."""
    split: str = "train"
    """Task split to train on."""
    n_tasks: int | None = None
    """Use only the first n tasks of the split (None: all)."""
    iterations: int = 10
    """Rollout/update iterations."""
    tasks_per_iteration: int = 2
    """Groups per iteration."""
    group_size: int = 4
    """Episodes per task and iteration (K)."""
    max_steps: int = 10
    """Step cap per episode on top of the environment's own (counts as truncation)."""
    learning_rate: float = 2e-4
    """AdamW step size of the adapters."""
    epochs: int = 1
    """Gradient steps per batch (the clip matters from the second on)."""
    clip: float = 0.2
    """Clip range of ppo_clip."""
    kl_coef: float = 0.0
    """Weight of KL(policy || frozen model) over each step's candidates (0: off)."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """Adapter settings."""
    advantage: EstimatorConfig = field(default_factory=EstimatorConfig)
    """Estimator settings."""
    model_path: str | None = None
    """GGUF file of the base model (None: the embedded SmolLM2-135M)."""
    init: str | None = None
    """Saved adapters to start from, e.g. an ``agentmc sft`` run directory (None:
    fresh adapters); they must have the shape ``lora`` asks for. The KL, if on,
    is then to this starting policy."""
    rollouts: Literal["auto", "llama", "torch"] = "auto"
    """Who plays the episodes: llama (llama.cpp with this iteration's adapters),
    torch (the model being trained) or auto (llama where it can)."""
    in_flight: int = 16
    """llama rollouts: episodes played at once (one engine batch serves them all)."""
    seed: int = 0
    """Root seed: task order, episode seeds and adapter initialisation derive from it."""

    def __post_init__(self) -> None:
        get_estimator(self.estimator)
        get_loss(self.loss)
        for name in (
            "iterations", "tasks_per_iteration", "group_size", "max_steps", "epochs", "in_flight",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_tasks is not None and self.n_tasks < 1:
            raise ConfigError(f"n_tasks must be >= 1 or None (all), got {self.n_tasks}")
        if self.learning_rate <= 0 or self.max_grad_norm <= 0 or self.kl_coef < 0:
            raise ConfigError("learning_rate and max_grad_norm must be > 0, kl_coef >= 0")
        if not 0 < self.clip < 1:
            raise ConfigError(f"clip must be in (0, 1), got {self.clip}")
        if self.rollouts not in ("auto", "llama", "torch"):
            raise ConfigError(f"rollouts must be auto, llama or torch, got {self.rollouts!r}")


class LMRunDirectory:
    """Files of one LM training run (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.history_path = self.path / "history.jsonl"
        self.checkpoint = self.path / "checkpoint"
        self.plot_path = self.path / "learning_curve.png"

    def check_config(
        self, config: Any, tasks: Sequence[str], *, may_change: str = "iterations"
    ) -> None:
        """Write ``config.json``, or check that an existing run has the same settings.

        Args:
            config: The run's settings (a dataclass).
            tasks: Its task pool.
            may_change: The one setting a resumed run may extend.

        Raises:
            ConfigError: The directory holds a run with other settings.
        """
        settings = {"config": asdict(config), "tasks": list(tasks)}
        settings["config"].pop(may_change)
        target = self.path / "config.json"
        if target.exists():
            try:
                saved = json.loads(target.read_text())
            except ValueError as error:
                raise DataError(f"{target} is not JSON: {error}") from None
            if saved != json.loads(json.dumps(settings)):
                raise ConfigError(
                    f"{self.path} holds a run with other settings; use another --out "
                    f"(only --{may_change} may change when resuming)"
                )
            return
        self.path.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(settings, indent=2, sort_keys=True))

    def history(self) -> list[dict[str, Any]]:
        if not self.history_path.exists():
            return []
        try:
            return [json.loads(line) for line in self.history_path.read_text().splitlines() if line]
        except ValueError as error:
            raise DataError(f"{self.history_path} is corrupt: {error}") from None

    def keep(self, history: Sequence[dict[str, Any]]) -> None:
        """Rewrite ``history.jsonl`` as ``history`` (drops records past the checkpoint)."""
        self.history_path.parent.mkdir(parents=True, exist_ok=True)
        self.history_path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in history))

    def append(self, record: dict[str, Any]) -> None:
        with self.history_path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def done(self) -> int:
        """Iterations covered by the checkpoint (0 without one)."""
        state = self.checkpoint / "state.json"
        if not state.exists():
            return 0
        try:
            return int(json.loads(state.read_text())["iteration"])
        except (ValueError, KeyError) as error:
            raise DataError(f"{state} is corrupt: {error}") from None

    def save_checkpoint(self, policy: LMPolicy, optimizer: Any, iteration: int) -> None:
        """Adapter, optimiser and iteration, written aside and then swapped in."""
        import torch

        partial = self.path / "checkpoint.partial"
        shutil.rmtree(partial, ignore_errors=True)
        policy.model.save_pretrained(partial)
        torch.save(optimizer.state_dict(), partial / "optimizer.pt")
        (partial / "state.json").write_text(json.dumps({"iteration": iteration}))
        old = self.path / "checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint.exists():
            self.checkpoint.rename(old)
        partial.rename(self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)

    def resume(self, policy: LMPolicy, optimizer: Any) -> tuple[int, list[dict[str, Any]]]:
        """Load the checkpoint, if any, and drop history past it: ``(steps done, history)``."""
        done = self.done()
        history = self.history()[:done]
        if done:
            self.load_checkpoint(policy, optimizer)
        self.keep(history)
        return done, history

    def load_checkpoint(self, policy: LMPolicy, optimizer: Any) -> None:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        try:
            weights = load_file(str(self.checkpoint / "adapter_model.safetensors"))
            state = torch.load(self.checkpoint / "optimizer.pt", weights_only=True)
        except (OSError, RuntimeError) as error:
            raise DataError(f"cannot read checkpoint {self.checkpoint}: {error}") from None
        set_peft_model_state_dict(policy.model, weights)
        optimizer.load_state_dict(state)
        policy.invalidate()


def lm_training_tasks(config: LMTrainConfig | Any) -> list[str]:
    """The task pool: the split's ids in their listed order, cut to ``n_tasks``.

    ``config`` is any settings object with ``env_id``, ``split`` and ``n_tasks``.
    """
    from agentmc.envs import task_ids

    ids = list(task_ids(config.env_id, config.split))
    if not ids:
        raise ConfigError(f"split {config.split!r} of {config.env_id!r} has no tasks")
    return ids if config.n_tasks is None else ids[: config.n_tasks]


async def _play(
    player: Any,
    encoder: LMPolicy,
    make_env: Callable[[str], TextEnv],
    jobs: Sequence[tuple[str, int]],
    max_steps: int,
    in_flight: int,
) -> list[tuple[Any, list[StepSample]]]:
    """Each ``(task, seed)`` played once, ``in_flight`` at a time: trajectories and samples."""
    limit = asyncio.Semaphore(in_flight)

    async def one(task: str, seed: int) -> tuple[Any, list[StepSample]]:
        async with limit:
            env = make_env(task)
            try:
                recorder = Recorder(player, encoder)
                trajectory = await arollout(
                    env, recorder, np.random.default_rng(int(seed)), max_steps=max_steps
                )
            finally:
                env.close()
            return trajectory, recorder.samples[: trajectory.n_steps]

    return await asyncio.gather(*(one(task, seed) for task, seed in jobs))


def _initial_policy(config: LMTrainConfig) -> LMPolicy:
    """Fresh adapters on the base model, or the saved ones of ``config.init``."""
    if config.init is None:
        return LMPolicy.from_base(config.model_path, config.lora)
    policy = LMPolicy.load(config.init, trainable=True)
    saved = policy.meta.get("config", {})
    wanted = json.loads(json.dumps(asdict(config.lora)))
    if saved.get("lora") != wanted or policy.meta.get("model_path") != config.model_path:
        raise ConfigError(
            f"init {config.init}: its adapters ({saved.get('lora')}, model "
            f"{policy.meta.get('model_path') or 'embedded'}) are not the ones this run "
            f"asks for ({wanted}, model {config.model_path or 'embedded'})"
        )
    return policy


def _rollout_backend(config: LMTrainConfig, embedded: bool) -> str:
    """``llama`` or ``torch``: who plays this run's episodes."""
    if config.rollouts == "torch":
        return "torch"
    try:
        require("llama_cpp", "local")
    except MissingExtraError:
        if config.rollouts == "llama":
            raise
        return "torch"
    if not embedded:
        if config.rollouts == "llama":
            raise ConfigError("llama rollouts need adapters on a GGUF model (the embedded one)")
        return "torch"
    return "llama"


def _llama_player(policy: LMPolicy, config: LMTrainConfig, run: LMRunDirectory) -> Any:
    """The ``local`` policy in ``choose`` mode with the adapters as they are now."""
    from agentmc.policies.local import LocalConfig, LocalPolicy

    target = run.path / "rollout-adapter.gguf"
    partial = export_gguf_adapter(policy.model, target.with_suffix(".partial"))
    partial.replace(target)  # a new file: the engine of the previous adapters is dropped
    local = LocalConfig(
        mode="choose", model_path=config.model_path, adapter=str(target), prompt=policy.prompt
    )
    return LocalPolicy(local)


def _adapter_state(policy: LMPolicy) -> dict[str, Any]:
    """A copy of the adapters' weights."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(policy.model).items()}


@contextmanager
def _reference(policy: LMPolicy, state: dict[str, Any] | None) -> Iterator[None]:
    """The KL's reference model: without adapters, or with the starting ones (``state``)."""
    if state is None:
        with policy.model.disable_adapter():
            yield
        return
    from peft import set_peft_model_state_dict

    now = _adapter_state(policy)
    set_peft_model_state_dict(policy.model, state)
    try:
        yield
    finally:
        set_peft_model_state_dict(policy.model, now)


def train_lm(
    config: LMTrainConfig,
    out: str | Path,
    *,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
    make_env: Callable[[str], TextEnv] | None = None,
    tasks: Sequence[str] | None = None,
    policy: LMPolicy | None = None,
    checkpoint_every: int = 1,
) -> tuple[LMPolicy, list[dict[str, Any]]]:
    """Train (or resume training) LoRA adapters; returns the policy and the history.

    Args:
        config: The run's settings.
        out: Run directory (resumed when it holds a checkpoint of the same settings).
        on_iteration: Called with each iteration's record.
        make_env: Task id -> environment (default: ``agentmc.envs.make``).
        tasks: Task pool (default: :func:`lm_training_tasks`).
        policy: A policy with fresh adapters (default: built from ``config``;
            tests pass a tiny model here).
        checkpoint_every: Save the checkpoint every N iterations (and at the end).

    Raises:
        ConfigError: Empty task pool, or ``out`` holds a run with other settings.
    """
    import torch

    if make_env is None:
        from agentmc.envs import make

        def make_env(task_id: str) -> TextEnv:
            return make(config.env_id, task_id=task_id)

    tasks = lm_training_tasks(config) if tasks is None else list(tasks)
    if not tasks:
        raise ConfigError("the task pool is empty")
    run = LMRunDirectory(out)
    run.check_config(config, tasks)
    torch.manual_seed(config.seed)
    embedded = policy is None  # adapters on the GGUF's weights: llama.cpp can serve them
    if policy is None:
        policy = _initial_policy(config)
    backend = _rollout_backend(config, embedded)
    # the KL's reference: the starting adapters (taken before a checkpoint replaces them)
    reference_state = None
    if config.init is not None and config.kl_coef > 0:
        reference_state = _adapter_state(policy)
    policy.name = f"lm-{config.estimator}"
    policy.meta = {"config": asdict(config), "model_path": config.model_path}
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    if not parameters:
        raise ConfigError("the policy has no trainable parameters (attach LoRA adapters)")
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0)
    done, history = run.resume(policy, optimizer)
    estimator, loss_fn = get_estimator(config.estimator), get_loss(config.loss)
    env_steps = int(history[-1]["env_steps"]) if history else 0
    cpu_total = float(history[-1]["cpu_seconds_total"]) if history else 0.0
    for iteration in range(done, config.iterations):
        started, cpu_started = time.perf_counter(), time.process_time()
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, iteration]))
        replace_ = len(tasks) < config.tasks_per_iteration
        chosen = rng.choice(len(tasks), size=config.tasks_per_iteration, replace=replace_)
        seeds = rng.integers(0, 2**31 - 1, size=(config.tasks_per_iteration, config.group_size))
        policy.model.eval()
        if backend == "llama":
            player, in_flight = _llama_player(policy, config, run), config.in_flight
        else:
            player, in_flight = policy, 1
        jobs = [(tasks[index], seed) for row, index in enumerate(chosen) for seed in seeds[row]]
        played = asyncio.run(_play(player, policy, make_env, jobs, config.max_steps, in_flight))
        del player
        groups = [
            [episode_from_trajectory(t) for t, _ in played[start : start + config.group_size]]
            for start in range(0, len(played), config.group_size)
        ]
        samples = [s for _, episode in played for s in episode]
        successes = [t.success for t, _ in played]
        rollout_seconds = time.perf_counter() - started
        results = estimator(groups, config.advantage)
        advantages = np.concatenate([a for r in results for a in r.steps])
        old = np.array([s.log_prob for s in samples])
        reference = None
        if config.kl_coef > 0:
            with _reference(policy, reference_state):
                policy.invalidate()
                _, reference = batch_log_probs(policy, samples)
            policy.invalidate()
        # llama.cpp's log-probabilities differ from torch's by its rounding: a ratio
        # against them would be off, so the first epoch recomputes them when one is needed
        recompute = backend == "llama" and (config.epochs > 1 or reference is not None)
        loss = kl = 0.0
        n = max(len(samples), 1)
        for epoch in range(config.epochs):
            current, full = old, None
            if epoch > 0 or reference is not None or recompute:
                current, full = batch_log_probs(policy, samples)
                if epoch == 0 and recompute:
                    old = current
            loss, coef = loss_fn(current, old, advantages, config.clip)
            weights = []
            for i, sample in enumerate(samples):
                w = np.zeros(len(sample.candidates))
                w[sample.chosen] = -coef[i] / n
                if reference is not None and full is not None:
                    p = np.exp(full[i])
                    w += config.kl_coef / n * p * (full[i] - reference[i])
                weights.append(w)
            if reference is not None and full is not None:
                kl = float(
                    np.mean([np.exp(f) @ (f - r) for f, r in zip(full, reference, strict=True)])
                )
            optimizer.zero_grad(set_to_none=True)
            policy.model.train()
            batch_log_probs(policy, samples, weights)
            policy.model.eval()
            torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            policy.invalidate()
        env_steps += len(samples)
        cpu_seconds = time.process_time() - cpu_started
        cpu_total += cpu_seconds
        stats = [r.stats for r in results if r.stats]
        record = {
            "iteration": iteration,
            "env_steps": env_steps,
            "episodes": (iteration + 1) * config.tasks_per_iteration * config.group_size,
            "success_rate": float(np.mean(successes)),
            "mean_length": len(samples) / len(successes),
            "n_nan": int(sum(r.n_nan for r in results)),
            "loss": float(loss),
            "kl": kl,
            "advantage_abs_mean": float(np.mean(np.abs(advantages))) if len(samples) else 0.0,
            "advantage_nonzero": float(np.mean(advantages != 0)) if len(samples) else 0.0,
            "seconds": time.perf_counter() - started,
            "rollout_seconds": rollout_seconds,
            "cpu_seconds": cpu_seconds,
            "cpu_seconds_total": cpu_total,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rollouts": backend,
            **{k: float(np.mean([s[k] for s in stats])) for k in (stats[0] if stats else {})},
        }
        history.append(record)
        run.append(record)
        if (iteration + 1) % checkpoint_every == 0 or iteration + 1 == config.iterations:
            run.save_checkpoint(policy, optimizer, iteration + 1)
        if on_iteration is not None:
            on_iteration(record)
    policy.meta["history_tail"] = history[-1:]
    policy.save(run.path, gguf=embedded)
    return policy, history
