"""Executors: where environments live while many episodes run.

An :class:`Executor` makes environments (``make_env``) and plays a batch of
episodes (``rollouts``). The policy always runs in the calling process, in one
asyncio event loop, so its calls stay concurrent and its rate limits and
budgets stay global; only the environments move.

* ``local`` (default, :class:`~agentmc.executors.local.LocalExecutor`):
  environments in this process.
* ``ray`` (extra ``agentmc[ray]``, :class:`~agentmc.executors.ray_executor.RayExecutor`):
  environments inside Ray actors (one per worker), reached through proxies
  whose ``astep`` is awaited, so slow environments (ScienceWorld, remote
  servers) step in parallel on other cores or machines while the policy calls
  of other episodes go on.

An episode is an :class:`EpisodeJob` (environment, task, seed, options); the
same jobs give identical trajectories under every executor (a test checks
this for ``local`` and ``ray``). A job whose environment fails (unknown task,
server unreachable) comes back as a trajectory with ``error`` set; the other
jobs go on.

Example:
    >>> import asyncio
    >>> from agentmc.policies.expert import NoisyExpertPolicy
    >>> jobs = [EpisodeJob("textcraft", str(i), seed=i) for i in range(3)]
    >>> with make_executor("local") as executor:
    ...     trajectories = asyncio.run(executor.rollouts(jobs, NoisyExpertPolicy()))
    >>> [t.task_id for t in trajectories]
    ['0', '1', '2']
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agentmc.data.trajectory import Trajectory
from agentmc.envs.core import TextEnv
from agentmc.errors import AgentmcError, ConfigError, UnknownNameError
from agentmc.policies.core import Policy

__all__ = [
    "EXECUTORS",
    "EpisodeJob",
    "Executor",
    "make_executor",
    "run_rollouts",
]


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to play.

    Attributes:
        env_id: Registered environment name.
        task_id: Task to play.
        seed: Seeds the episode's generator (environment seed and policy seeds).
        env_kwargs: Options for :func:`agentmc.envs.make` (must pickle for ``ray``).
        temperature: Sampling temperature passed to the policy.
        meta: JSON-safe details stored on the trajectory.
    """

    env_id: str
    task_id: str
    seed: int
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    temperature: float = 1.0
    meta: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Executor(Protocol):
    """Makes environments and plays episodes; see the module docstring."""

    name: str

    def make_env(self, env_id: str, *, task_id: str, **kwargs: Any) -> TextEnv:
        """An environment (local, or a proxy to a remote one) playing ``task_id``."""
        ...

    async def rollouts(
        self,
        jobs: Sequence[EpisodeJob],
        policy: Policy,
        *,
        max_concurrency: int = 32,
        on_result: Callable[[int, Trajectory], None] | None = None,
    ) -> list[Trajectory]:
        """Play every job; trajectories in job order."""
        ...

    def close(self) -> None:
        """Release workers and environments."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


async def run_rollouts(
    executor: Executor,
    jobs: Sequence[EpisodeJob],
    policy: Policy,
    *,
    max_concurrency: int = 32,
    on_result: Callable[[int, Trajectory], None] | None = None,
) -> list[Trajectory]:
    """Play ``jobs`` with environments from ``executor.make_env``, concurrently.

    Args:
        executor: Where the environments live.
        jobs: Episodes to play.
        policy: The agent (called from this event loop).
        max_concurrency: Most episodes in flight at once.
        on_result: Called with ``(job index, trajectory)`` as each episode ends
            (e.g. to append it to a run store right away).

    Returns:
        One trajectory per job, in job order. A job whose environment raised an
        :class:`~agentmc.errors.AgentmcError` has no turns and ``error`` set.

    Raises:
        ConfigError: If ``max_concurrency`` is not a positive integer.
    """
    from agentmc.rollout import arollout

    if not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ConfigError(f"max_concurrency={max_concurrency!r}: use a positive integer")
    semaphore = asyncio.Semaphore(max_concurrency)

    async def play(index: int, job: EpisodeJob) -> Trajectory:
        async with semaphore:
            env: TextEnv | None = None
            try:
                env = executor.make_env(job.env_id, task_id=job.task_id, **dict(job.env_kwargs))
                trajectory = await arollout(
                    env,
                    policy,
                    np.random.default_rng(job.seed),
                    temperature=job.temperature,
                    meta=dict(job.meta),
                )
            except AgentmcError as error:
                trajectory = Trajectory(
                    env_id=job.env_id,
                    task_id=job.task_id,
                    task="",
                    turns=(),
                    policy=policy.name,
                    synthetic=policy.synthetic,
                    error=f"{type(error).__name__}: {error}",
                    meta=dict(job.meta),
                )
            finally:
                if env is not None:
                    env.close()
        if on_result is not None:
            on_result(index, trajectory)
        return trajectory

    return list(await asyncio.gather(*(play(i, job) for i, job in enumerate(jobs))))


EXECUTORS: dict[str, str] = {
    "local": "agentmc.executors.local:LocalExecutor",
    "ray": "agentmc.executors.ray_executor:RayExecutor",
}
"""Executor name -> ``"module:class"`` (imported on use, so ``ray`` stays optional)."""


def make_executor(name: str = "local", **options: Any) -> Executor:
    """The executor ``name`` built with ``options``.

    Args:
        name: ``"local"`` or ``"ray"``.
        **options: Constructor options (``ray``: ``n_workers``, ``address``).

    Raises:
        UnknownNameError: Unknown executor name.
        MissingExtraError: The executor's extra is not installed.
        ConfigError: Invalid options.
    """
    if name not in EXECUTORS:
        raise UnknownNameError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    module_name, class_name = EXECUTORS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(**options)
    except TypeError as error:
        raise ConfigError(f"executor {name!r}: {error}") from None
