"""Executors: run many episodes with environments here (``local``) or in Ray actors (``ray``).

The policy always runs in the calling process (its calls concurrent, its
limits global); an executor decides where the environments live. See
:mod:`agentmc.executors.core`.

Example:
    >>> import asyncio
    >>> from agentmc.executors import EpisodeJob, make_executor
    >>> from agentmc.policies.expert import NoisyExpertPolicy
    >>> jobs = [EpisodeJob("textcraft", "0", seed=1)]
    >>> with make_executor("local") as executor:   # or make_executor("ray", n_workers=2)
    ...     [trajectory] = asyncio.run(executor.rollouts(jobs, NoisyExpertPolicy()))
    >>> trajectory.synthetic
    True
"""

from __future__ import annotations

from agentmc.executors.core import (
    EXECUTORS,
    EpisodeJob,
    Executor,
    make_executor,
    run_rollouts,
)
from agentmc.executors.local import LocalExecutor

__all__ = [
    "EXECUTORS",
    "EpisodeJob",
    "Executor",
    "LocalExecutor",
    "make_executor",
    "run_rollouts",
]
