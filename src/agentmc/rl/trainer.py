"""A small group-RL trainer on CPU: rollout -> score -> advantages -> loss -> step.

Each iteration draws ``tasks_per_iteration`` tasks, plays ``group_size``
episodes of each with the current :class:`~agentmc.rl.policy.LinearPolicy`
(sampling among the environment's ``valid_actions()``) through the plain
agent loop (:func:`agentmc.rollout.rollout`, which records every decision), turns every group into
per-step advantages with the chosen estimator (GRPO, RLOO, G2PO, GiGPO: see
:mod:`agentmc.rl.estimators`), and takes ``epochs`` Adam steps on the chosen
loss (:mod:`agentmc.rl.losses`). Estimators and losses are registry lookups.

Randomness: the tasks of iteration ``i`` and the seeds of its episodes depend
only on ``(seed, i)``, not on the estimator, so runs with different
estimators face the same tasks in the same order (common random numbers).
The same property makes runs resumable exactly: a :class:`TrainState` (weights,
Adam moments, iteration count) saved after iteration ``i`` and passed back as
``resume`` continues with the very batches an uninterrupted run would draw
(:mod:`agentmc.rl.checkpoints` keeps states and learning curves on disk).

Each iteration's record holds ``env_steps`` (cumulative environment steps),
``success_rate`` (of the sampled training episodes), ``n_nan`` (episodes with
an unscorable, NaN reward: advantage 0, see :mod:`agentmc.rl.advantages`) and
the estimator's diagnostics (graph size, step-group sizes).

Example:
    >>> config = GRPOConfig(env_id="textcraft", estimator="g2po", iterations=2,
    ...                     tasks_per_iteration=2, group_size=4, n_tasks=4)
    >>> result = train(config)  # doctest: +SKIP
    >>> result.history[-1]["success_rate"]  # doctest: +SKIP
    0.25
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from agentmc.envs.core import TextEnv
from agentmc.envs.knowledge import StateSpace
from agentmc.errors import ConfigError, DataError
from agentmc.policies.core import Completion
from agentmc.rl.estimators import EstimatorConfig, episode_from_trajectory, get_estimator
from agentmc.rl.graph import Episode
from agentmc.rl.losses import get_loss
from agentmc.rl.optim import AdamState, adam_init, adam_update
from agentmc.rl.policy import Decisions, LinearPolicy, chosen_log_probs, loss_gradient
from agentmc.rl.states import get_state_space
from agentmc.rollout import arollout
from agentmc.types import FloatArray, Message, Usage


@dataclass(frozen=True)
class GRPOConfig:
    """Settings of one training run."""

    env_id: str = "textcraft"
    """Environment to train on (must offer valid_actions())."""
    estimator: str = "g2po"
    """Advantage estimator: grpo, rloo, g2po or gigpo."""
    loss: str = "pg"
    """Policy loss: pg (REINFORCE) or ppo_clip."""
    split: str = "train"
    """Task split to train on."""
    n_tasks: int | None = None
    """Use only the first n tasks of the split (None: all)."""
    iterations: int = 40
    """Number of rollout/update iterations."""
    tasks_per_iteration: int = 8
    """Groups per iteration (tasks drawn with replacement only if the pool is smaller)."""
    group_size: int = 8
    """Episodes per task and iteration (K)."""
    max_steps: int = 30
    """Step cap per episode on top of the environment's own (counts as truncation)."""
    learning_rate: float = 0.05
    """Adam step size."""
    epochs: int = 1
    """Gradient steps per batch (more than 1 makes sense with ppo_clip)."""
    clip: float = 0.2
    """Clip range of ppo_clip."""
    temperature: float = 1.0
    """Softmax temperature while collecting rollouts."""
    feature_dim: int = 2**18
    """Hashed feature slots of the linear policy."""
    advantage: EstimatorConfig = field(default_factory=EstimatorConfig)
    """Estimator settings (gamma, step_weight, scale, ...)."""
    seed: int = 0
    """Root seed: task order and every episode seed derive from it."""

    def __post_init__(self) -> None:
        get_estimator(self.estimator)
        get_loss(self.loss)
        positive = ("iterations", "tasks_per_iteration", "group_size", "max_steps", "epochs")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_tasks is not None and self.n_tasks < 1:
            raise ConfigError(f"n_tasks must be >= 1 or None (all), got {self.n_tasks}")
        if self.learning_rate <= 0 or self.temperature <= 0:
            raise ConfigError("learning_rate and temperature must be > 0")
        if not 0 < self.clip < 1:
            raise ConfigError(f"clip must be in (0, 1), got {self.clip}")
        if self.feature_dim < 16:
            raise ConfigError(f"feature_dim must be >= 16, got {self.feature_dim}")


class _Recorder:
    """The policy as the agent loop (:mod:`agentmc.rollout`) calls it, recording each decision.

    One per episode: it folds the conversation into the state incrementally (each
    call reads only the turns added since the last one) and stores the features,
    choice and log-probability of every decision in ``decisions`` for the update.
    Its choices come from its own episode generator ``rng`` rather than a new
    generator per call from the loop's ``seed`` (building one costs more than
    the decision): the episode stays reproducible from the episode seed.
    """

    synthetic = False

    def __init__(
        self,
        policy: LinearPolicy,
        space: StateSpace,
        decisions: Decisions,
        env_id: str,
        rng: np.random.Generator,
    ) -> None:
        self.policy, self.space, self.decisions, self.env_id = policy, space, decisions, env_id
        self.name, self.rng = policy.name, rng
        self._state: Any = None
        self._previous = ""
        self._read = 0  # messages folded so far

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        """One sampled candidate with its log-probability (the loop asks for one; ``seed`` unused).

        Raises:
            ConfigError: The environment lists no candidates (it must offer valid_actions()).
        """
        if not candidates:
            raise ConfigError(f"environment {self.env_id!r} offers no valid_actions()")
        if self._read == 0:
            self._state, self._read = self.space.start(messages[0].content), 1
        for reply, observation in zip(
            messages[self._read :: 2], messages[self._read + 1 :: 2], strict=False
        ):
            self._previous = reply.content  # one of the candidates: the action as stepped
            self._state = self.space.advance(self._state, self._previous, observation.content)
            self._read += 2
        features = self.policy.features(self.space.render(self._state), candidates, self._previous)
        log_probs = self.policy.log_probs(features, len(candidates), temperature)
        choice = int(self.rng.choice(len(candidates), p=np.exp(log_probs)))
        self.decisions.add(features, len(candidates), choice, float(log_probs[choice]))
        return [Completion(candidates[choice], float(log_probs[choice]), Usage(calls=1, cost=0.0))]


async def _play_group(
    policy: LinearPolicy,
    config: GRPOConfig,
    env: TextEnv,
    seeds: Sequence[int],
    decisions: Decisions,
) -> tuple[list[Episode], list[bool]]:
    """A group's episodes, one after the other, through the agent loop (one event loop).

    Returns:
        The episodes (states keyed by the environment's state space) and their successes.
    """
    space = get_state_space(config.env_id)
    episodes, successes = [], []
    for seed in seeds:
        loop_seeds, choice_seeds = np.random.SeedSequence(int(seed)).spawn(2)
        agent = _Recorder(
            policy, space, decisions, config.env_id, np.random.default_rng(choice_seeds)
        )
        trajectory = await arollout(
            env,
            agent,
            np.random.default_rng(loop_seeds),
            temperature=config.temperature,
            max_steps=config.max_steps,
        )
        episodes.append(episode_from_trajectory(trajectory, space))
        successes.append(trajectory.success)
    return episodes, successes


@dataclass(frozen=True)
class TrainResult:
    """A finished run: the policy, one record per iteration, and the config."""

    policy: LinearPolicy
    history: list[dict[str, Any]]
    config: GRPOConfig


@dataclass(frozen=True, eq=False)
class TrainState:
    """Everything needed to continue a run after ``iteration`` iterations.

    Attributes:
        iteration: Iterations completed.
        weights: Policy weights, shape ``(feature_dim,)``.
        optimiser: Adam moments and step count.
        history: The records of the completed iterations.
    """

    iteration: int
    weights: FloatArray
    optimiser: AdamState
    history: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.iteration < 0 or len(self.history) != self.iteration:
            raise DataError(
                f"inconsistent training state: {self.iteration} iterations done but "
                f"{len(self.history)} records"
            )


def training_tasks(config: GRPOConfig) -> list[str]:
    """The task pool: the split's ids in their listed order, cut to ``n_tasks``."""
    from agentmc.envs import task_ids

    ids = list(task_ids(config.env_id, config.split))
    if not ids:
        raise ConfigError(f"split {config.split!r} of {config.env_id!r} has no tasks")
    return ids if config.n_tasks is None else ids[: config.n_tasks]


def train(
    config: GRPOConfig,
    on_iteration: Callable[[dict[str, Any], TrainState], None] | None = None,
    *,
    make_env: Callable[[str], TextEnv] | None = None,
    tasks: Sequence[str] | None = None,
    resume: TrainState | None = None,
) -> TrainResult:
    """Run the training loop.

    Args:
        config: The run's settings.
        on_iteration: Called after each iteration with its record and the
            state to resume from (e.g. to append the record and checkpoint).
        make_env: Task id -> environment (default: ``agentmc.envs.make``); one
            instance per task is made and reset before every episode.
        tasks: Task pool (default: :func:`training_tasks`).
        resume: Continue from this state (its iterations are not repeated).

    Returns:
        The trained policy and the full per-iteration history.

    Raises:
        ConfigError: Empty task pool, or ``resume`` does not fit ``config``.
    """
    if make_env is None:
        from agentmc.envs import make

        def make_env(task_id: str) -> TextEnv:
            return make(config.env_id, task_id=task_id)

    tasks = training_tasks(config) if tasks is None else list(tasks)
    if not tasks:
        raise ConfigError("the task pool is empty")
    policy = LinearPolicy(
        config.env_id,
        config.feature_dim,
        name=f"linear-{config.estimator}",
        meta={"config": asdict(config)},
    )
    estimator, loss_fn = get_estimator(config.estimator), get_loss(config.loss)
    optimiser = adam_init(config.feature_dim)
    history: list[dict[str, Any]] = []
    if resume is not None:
        if resume.weights.shape != (config.feature_dim,):
            raise ConfigError(
                f"cannot resume: saved weights have shape {resume.weights.shape}, "
                f"feature_dim is {config.feature_dim}"
            )
        policy.weights = np.array(resume.weights, dtype=np.float64)
        optimiser = AdamState(
            np.array(resume.optimiser.mean), np.array(resume.optimiser.second),
            int(resume.optimiser.step),
        )  # fmt: skip
        history = [dict(record) for record in resume.history]
    envs: dict[str, TextEnv] = {}
    env_steps = int(history[-1]["env_steps"]) if history else 0
    episodes_played = int(history[-1]["episodes"]) if history else 0
    for iteration in range(len(history), config.iterations):
        started = time.perf_counter()
        sequence = np.random.SeedSequence([config.seed, iteration])
        rng = np.random.default_rng(sequence)
        replace = len(tasks) < config.tasks_per_iteration
        chosen_tasks = rng.choice(len(tasks), size=config.tasks_per_iteration, replace=replace)
        seeds = rng.integers(0, 2**31 - 1, size=(config.tasks_per_iteration, config.group_size))
        decisions, groups, successes = Decisions(), [], []
        for row, task_index in enumerate(chosen_tasks):
            if tasks[task_index] not in envs:  # one instance per task, reset per episode
                envs[tasks[task_index]] = make_env(tasks[task_index])
            env = envs[tasks[task_index]]
            group, wins = asyncio.run(_play_group(policy, config, env, seeds[row], decisions))
            groups.append(group)
            successes += wins
        results = estimator(groups, config.advantage)
        advantages = np.concatenate([a for r in results for a in r.steps])
        old_log_probs = np.asarray(decisions.old_log_probs)
        loss = 0.0
        for _ in range(config.epochs):
            log_probs = chosen_log_probs(policy.weights, decisions, config.temperature)
            loss, coef = loss_fn(log_probs, old_log_probs, advantages, config.clip)
            grad = loss_gradient(policy.weights, decisions, coef, config.temperature)
            delta, optimiser = adam_update(grad, optimiser, learning_rate=config.learning_rate)
            policy.weights += delta
        n_steps = len(decisions)
        env_steps += n_steps
        episodes_played += len(successes)
        stats = [r.stats for r in results if r.stats]
        record = {
            "iteration": iteration,
            "env_steps": env_steps,
            "episodes": episodes_played,
            "success_rate": float(np.mean(successes)),
            "mean_return": _nan_mean([e.total_return for g in groups for e in g]),
            "mean_length": n_steps / len(successes),
            "n_nan": int(sum(r.n_nan for r in results)),
            "loss": float(loss),
            "advantage_abs_mean": float(np.mean(np.abs(advantages))) if n_steps else 0.0,
            "seconds": time.perf_counter() - started,
            **{k: float(np.mean([s[k] for s in stats])) for k in (stats[0] if stats else {})},
        }
        history.append(record)
        if on_iteration is not None:
            state = TrainState(iteration + 1, policy.weights.copy(), optimiser, tuple(history))
            on_iteration(record, state)
    for env in envs.values():
        env.close()
    policy.meta["history_tail"] = history[-1:]
    return TrainResult(policy, history, config)


def _nan_mean(values: Sequence[float]) -> float | None:
    """Mean over the finite values (``None`` if there are none: JSON-safe)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else None
