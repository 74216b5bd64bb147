"""The default executor: environments in this process, episodes on one event loop.

Example:
    >>> executor = LocalExecutor()
    >>> env = executor.make_env("textcraft", task_id="0")
    >>> env.reset()[1]["goal"]
    'acacia planks'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentmc.data.trajectory import Trajectory
from agentmc.envs import make
from agentmc.envs.core import TextEnv
from agentmc.executors.core import EpisodeJob, run_rollouts
from agentmc.policies.core import Policy

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Environments made with :func:`agentmc.envs.make` in this process."""

    name = "local"

    def make_env(self, env_id: str, *, task_id: str, **kwargs: Any) -> TextEnv:
        return make(env_id, task_id=task_id, **kwargs)

    async def rollouts(
        self,
        jobs: Sequence[EpisodeJob],
        policy: Policy,
        *,
        max_concurrency: int = 32,
        on_result: Callable[[int, Trajectory], None] | None = None,
    ) -> list[Trajectory]:
        """Play every job (see :func:`~agentmc.executors.core.run_rollouts`)."""
        return await run_rollouts(
            self, jobs, policy, max_concurrency=max_concurrency, on_result=on_result
        )

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
