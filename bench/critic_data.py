"""Shared data for the critic benchmarks: noisy-expert TextCraft episodes (synthetic).

Episodes are played with :class:`agentmc.policies.expert.NoisyExpertPolicy`
(a synthetic stand-in for an LLM agent, labelled as such in every result) on
the built-in TextCraft splits, seeded per (task, sample) exactly as
``agentmc collect`` / ``agentmc rollout`` seed them.
"""

from __future__ import annotations

import asyncio

from agentmc.cli.rollout import task_index
from agentmc.data.trajectory import Trajectory
from agentmc.envs import make, task_ids
from agentmc.policies.expert import NoisyExpertPolicy
from agentmc.rollout import arollout
from agentmc.seeding import task_rng


def noisy_expert_episodes(split: str, samples_per_task: int, seed: int) -> list[Trajectory]:
    """``samples_per_task`` episodes of every task of ``split``, in task order."""
    policy = NoisyExpertPolicy()

    async def play() -> list[Trajectory]:
        out = []
        for task in task_ids("textcraft", split):
            for sample in range(samples_per_task):
                env = make("textcraft", task_id=task)
                out.append(
                    await arollout(
                        env,
                        policy,
                        task_rng(seed, task_index(task), sample),
                        meta={"sample": sample, "split": split},
                    )
                )
        return out

    return asyncio.run(play())
