"""Supervised fine-tuning of the embedded model on an environment's scripted expert.

The embedded SmolLM2-135M, prompted with instructions and worked examples,
plays TextCraft no better than a uniformly random valid action (see
``bench/results/local_policy.json``): no prompt or decoding lever we measured
makes it read a failure message. This module trains LoRA adapters so that it
does, by behaviour cloning with DAgger-style state coverage:

- **States** come from episodes of the environment's noisy expert
  (``noisy-expert:eps=E``: a uniformly random valid action with probability
  ``E`` per step), so the data holds the detours and failed commands a
  sampled policy runs into, not only the expert's clean path;
- **Labels** are the clean expert's next action in each such state (a state
  whose plan is empty or not among the candidates is skipped);
- **Loss**: ``-mean log pi(label | state)`` under the trie-constrained
  distribution of ``choose`` mode (:func:`agentmc.rl.lm.batch_log_probs`, only
  the label's trie path evaluated), AdamW on the adapters, one step per batch.

The result is a different prior, and is named as one: the run directory is an
agent like any other (``trained:DIR``; ``adapter.gguf`` also serves as
``local:choose,adapter=DIR/adapter.gguf``), played through llama.cpp.
Training and validation tasks must be disjoint: the default split is
``train``.

Randomness is explicit: episode seeds and the sample order derive from
``seed``; a run resumed from its checkpoint continues with the batches an
uninterrupted run takes. Run directory: ``config.json``, ``history.jsonl``
(one record per batch), ``checkpoint/``, and at the end ``lm_policy.json``,
``adapter/`` and ``adapter.gguf``.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.errors import ConfigError
from agentmc.rl.lm import LMPolicy, LoRAConfig, StepSample, batch_log_probs
from agentmc.rl.lm_trainer import LMRunDirectory, lm_training_tasks
from agentmc.types import Message


@dataclass(frozen=True)
class SFTConfig:
    """Settings of one behaviour-cloning run on the embedded model."""

    env_id: str = "textcraft"
    """Environment whose registered expert labels the states."""
    split: str = "train"
    """Task split the episodes are played on."""
    n_tasks: int | None = None
    """Use only the first n tasks of the split (None: all)."""
    episodes_per_task: int = 2
    """Noisy-expert episodes per task that supply states."""
    eps: float = 0.3
    """Per-step chance that the state-visiting expert plays a random valid action."""
    max_steps: int = 15
    """Step cap per episode on top of the environment's own."""
    samples: int = 512
    """Labelled states trained on, drawn without replacement (passes again when fewer)."""
    batch_size: int = 16
    """States per AdamW step."""
    learning_rate: float = 1e-3
    """AdamW step size of the adapters."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """Adapter shape."""
    model_path: str | None = None
    """GGUF file of the base model (None: the embedded SmolLM2-135M)."""
    seed: int = 0
    """Root seed of episode seeds, sample order and adapter initialisation."""

    def __post_init__(self) -> None:
        for name in ("episodes_per_task", "max_steps", "samples", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_tasks is not None and self.n_tasks < 1:
            raise ConfigError(f"n_tasks must be >= 1 or None (all), got {self.n_tasks}")
        if not 0 <= self.eps <= 1:
            raise ConfigError(f"eps must be in [0, 1], got {self.eps}")
        if self.learning_rate <= 0 or self.max_grad_norm <= 0:
            raise ConfigError("learning_rate and max_grad_norm must be > 0")

    @property
    def n_batches(self) -> int:
        return -(-self.samples // self.batch_size)


@dataclass(frozen=True)
class ExpertStep:
    """A state an episode reached, and the clean expert's action there."""

    messages: tuple[Message, ...]
    candidates: tuple[str, ...]
    action: str


class _Labeller:
    """Plays the noisy expert and records the clean expert's action in every state."""

    name = "noisy-expert-labeller"
    synthetic = True

    def __init__(self, eps: float) -> None:
        from agentmc.policies.expert import NoisyExpertPolicy

        self.inner = NoisyExpertPolicy.from_spec(f"eps={eps}")
        self.steps: list[ExpertStep] = []

    async def complete(self, messages: Sequence[Message], **kwargs: Any) -> Any:
        from agentmc.policies.expert import expert_plan

        plan = expert_plan(messages)
        candidates = tuple(dict.fromkeys(kwargs.get("candidates") or ()))
        if plan is not None and plan.plan and plan.plan[0] in candidates:
            self.steps.append(ExpertStep(tuple(messages), candidates, plan.plan[0]))
        return await self.inner.complete(messages, **kwargs)


def expert_steps(config: SFTConfig, tasks: Sequence[str]) -> list[ExpertStep]:
    """The labelled states of ``episodes_per_task`` noisy-expert episodes on each task."""
    from agentmc.envs import make
    from agentmc.rollout import arollout

    labeller = _Labeller(config.eps)
    for i, task in enumerate(tasks):
        env = make(config.env_id, task_id=task)
        try:
            for episode in range(config.episodes_per_task):
                rng = np.random.default_rng(np.random.SeedSequence([config.seed, i, episode]))
                asyncio.run(arollout(env, labeller, rng, max_steps=config.max_steps))
        finally:
            env.close()
    return labeller.steps


def train_sft(
    config: SFTConfig,
    out: str | Path,
    *,
    tasks: Sequence[str] | None = None,
    policy: LMPolicy | None = None,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_every: int = 4,
) -> tuple[LMPolicy, list[dict[str, Any]]]:
    """Train (or resume) LoRA adapters on expert labels; returns the policy and the history.

    Args:
        config: The run's settings.
        out: Run directory (resumed when it holds a checkpoint of the same settings).
        tasks: Task pool (default: the split's tasks, cut to ``n_tasks``).
        policy: A policy with fresh adapters (default: built from ``config``;
            tests pass a tiny model here).
        on_batch: Called with each batch's record.
        checkpoint_every: Save the checkpoint every N batches (and at the end).

    Raises:
        ConfigError: No labelled state, or ``out`` holds a run with other settings.
    """
    import torch

    if tasks is None:
        tasks = lm_training_tasks(config)
    run = LMRunDirectory(out)
    run.check_config(config, tasks, may_change="samples")
    steps = expert_steps(config, tasks)
    if not steps:
        raise ConfigError(f"the expert labelled no state on {len(tasks)} tasks")
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))
    epochs = -(-config.samples // len(steps))  # more samples than states: several passes
    order = np.concatenate([rng.permutation(len(steps)) for _ in range(epochs)])
    torch.manual_seed(config.seed)
    embedded = policy is None
    if policy is None:
        policy = LMPolicy.from_base(config.model_path, config.lora)
    policy.name = f"lm-sft-{config.env_id}"
    policy.meta = {"config": asdict(config), "model_path": config.model_path}
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    if not parameters:
        raise ConfigError("the policy has no trainable parameters (attach LoRA adapters)")
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0)
    done, history = run.resume(policy, optimizer)
    batches = config.n_batches
    cpu_total = float(history[-1]["cpu_seconds_total"]) if history else 0.0
    for batch in range(done, batches):
        started, cpu_started = time.perf_counter(), time.process_time()
        start, end = batch * config.batch_size, min((batch + 1) * config.batch_size, config.samples)
        chosen = [steps[i] for i in order[start:end]]
        samples = [_sample(policy, step) for step in chosen]
        weights = []
        for sample in samples:
            weight = np.zeros(len(sample.candidates))
            weight[sample.chosen] = -1.0 / len(samples)
            weights.append(weight)
        optimizer.zero_grad()
        log_probs, _ = batch_log_probs(policy, samples, backward_weights=weights)
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()
        policy.invalidate()
        cpu_total += time.process_time() - cpu_started
        record = {
            "batch": batch,
            "samples_seen": end,
            "log_prob": float(np.mean(log_probs)),
            "label_prob": float(np.mean(np.exp(log_probs))),
            "uniform_prob": float(np.mean([1 / len(s.candidates) for s in samples])),
            "grad_norm": float(grad_norm),
            "seconds": time.perf_counter() - started,
            "cpu_seconds_total": cpu_total,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        history.append(record)
        run.append(record)
        if (batch + 1) % checkpoint_every == 0 or batch + 1 == batches:
            run.save_checkpoint(policy, optimizer, batch + 1)
        if on_batch is not None:
            on_batch(record)
    policy.meta.update(n_labelled_states=len(steps), n_tasks=len(tasks), batches=batches)
    policy.save(run.path, gguf=embedded)
    return policy, history


def _sample(policy: LMPolicy, step: ExpertStep) -> StepSample:
    suffix, options = policy.encode_step(step.messages, step.candidates)
    return StepSample(suffix, options, step.candidates.index(step.action), 0.0)
