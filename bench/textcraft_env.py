"""TextCraft latency: step, snapshot/restore, and noisy-expert episodes/s on one core.

* ``step_us_{gold,invalid,inventory}``: one ``step`` (a gold-plan action, a
  malformed action answered with feedback, ``inventory``), sparse reward;
  ``step_us_gold_dense``: a gold-plan step with the dense (shaped) reward,
  which runs the planner on the new inventory.
* ``snapshot_us`` / ``restore_us``: taking a snapshot and restoring it into
  another instance of the same task (a particle clone).
* ``episodes_per_s``: full episodes of the synthetic noisy-expert policy
  (``agentmc.rollout.rollout``) over the first 100 default test tasks, one
  process, one core.

Run: ``.venv/bin/python bench/textcraft_env.py`` (under a minute). Writes
``bench/results/textcraft_env.json``.
"""

from __future__ import annotations

import time
import timeit

import numpy as np
from common import write_result

from agentmc.envs import make, task_ids
from agentmc.policies.expert import NoisyExpertPolicy
from agentmc.rollout import rollout
from agentmc.seeding import task_rng

TASK = "430"  # a depth-3 goal of the default table
N_EPISODES = 100


def per_call_us(function, number: int = 2000) -> float:
    return 1e6 * min(timeit.repeat(function, number=number, repeat=5)) / number


def gold_step_us(reward: str) -> float:
    env = make("textcraft", task_id=TASK, reward=reward)
    env.reset()
    plan = env.gold_plan()
    total, n = 0.0, 0
    for _ in range(50):
        env.reset()
        for action in plan:
            start = time.perf_counter()
            env.step(action)
            total += time.perf_counter() - start
            n += 1
    return 1e6 * total / n


def main() -> None:
    env = make("textcraft", task_id=TASK, max_steps=10**9)
    env.reset()
    metrics = {
        "step_us_gold": gold_step_us("sparse"),
        "step_us_gold_dense": gold_step_us("dense"),
        "step_us_invalid": per_call_us(lambda: env.step("craft a spaceship please")),
        "step_us_inventory": per_call_us(lambda: env.step("inventory")),
    }
    env.reset()
    for action in env.gold_plan()[:3]:
        env.step(action)
    saved = env.snapshot()
    fork = make("textcraft", task_id=TASK)
    fork.reset()
    metrics["snapshot_us"] = per_call_us(env.snapshot, 20000)
    metrics["restore_us"] = per_call_us(lambda: fork.restore(saved), 20000)

    tasks = task_ids("textcraft", "test")[:N_EPISODES]
    policy = NoisyExpertPolicy()
    start = time.perf_counter()
    trajectories = [
        rollout(make("textcraft", task_id=task_id), policy, task_rng(0, index))
        for index, task_id in enumerate(tasks)
    ]
    wall = time.perf_counter() - start
    metrics["episodes_per_s"] = len(tasks) / wall
    metrics["env_steps_per_episode"] = float(np.mean([t.n_steps for t in trajectories]))
    metrics["success_rate"] = float(np.mean([t.success for t in trajectories]))
    write_result(
        "textcraft_env",
        metrics,
        {
            "step_us_gold": "us per step (sparse reward)",
            "step_us_gold_dense": "us per step (dense reward: planner on each step)",
            "step_us_invalid": "us per step (malformed action, feedback)",
            "step_us_inventory": "us per step",
            "snapshot_us": "us",
            "restore_us": "us (into another instance of the task)",
            "episodes_per_s": "episodes/s (noisy expert, one process, incl. policy)",
            "env_steps_per_episode": "steps (mean)",
            "success_rate": "fraction (synthetic noisy expert)",
        },
        {
            "task": TASK,
            "n_episodes": N_EPISODES,
            "policy": "noisy-expert (synthetic), mistake_prob=0.2, waste_prob=0.1",
            "max_steps": 20,
        },
    )


if __name__ == "__main__":
    main()
