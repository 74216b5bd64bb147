"""Ray vs local executor: wall time for 100 TextCraft episodes on 2 workers.

Both executors play the same 100 jobs (the first 100 TextCraft test tasks,
seeds 0..99) with the synthetic noisy-expert policy through
:func:`agentmc.rollout.arollout`; the policy runs in this process in both
cases, only the environments move (Ray: 2 actors). We check that the
trajectories are identical, then report wall times (median of 3 runs), their
ratio, Ray's start-up time, and the cost of one remote step.

TextCraft steps take microseconds, so this is the case where Ray's per-call
overhead (a round trip per reset/step, ~1 ms) dominates: Ray helps only when
an environment step costs more than that round trip and steps can overlap.
The second part shows that case when the ``sciworld`` extra and Java are
present: 8 ScienceWorld episodes of 20 steps (a synthetic policy picking
among fixed actions; steps take ~10-50 ms in the JVM), at most 4 in flight.
Locally the steps run one after another in the event loop; in Ray the two
actors step in parallel.

Run: ``.venv/bin/python bench/executors.py`` (about a minute). Writes
``bench/results/executors.json``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import time

import numpy as np
from common import write_result

from agentmc.envs import make, task_ids
from agentmc.executors import EpisodeJob, make_executor
from agentmc.policies.expert import NoisyExpertPolicy

N_TASKS = 100
N_WORKERS = 2
REPEATS = 3
SCIWORLD_ACTIONS = (
    "look around",
    "inventory",
    "open door to kitchen",
    "go to kitchen",
    "open cupboard",
    "pick up thermometer",
    "go to hallway",
    "look at agent",
)


class FixedActionsPolicy:
    """Synthetic: a seeded uniform choice among fixed ScienceWorld actions."""

    name = "fixed-actions (synthetic)"
    synthetic = True

    async def complete(self, messages, *, n=1, temperature=1.0, seed=None, candidates=None):
        from agentmc.policies.core import Completion

        rng = np.random.default_rng(seed)
        picks = rng.integers(len(SCIWORLD_ACTIONS), size=n)
        return [Completion(SCIWORLD_ACTIONS[int(k)]) for k in picks]


def timed_runs(executor, jobs, policy, concurrency: int = 32) -> tuple[float, list]:
    walls = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        trajectories = asyncio.run(executor.rollouts(jobs, policy, max_concurrency=concurrency))
        walls.append(time.perf_counter() - start)
    return float(np.median(walls)), trajectories


def main() -> None:
    jobs = [
        EpisodeJob("textcraft", task_id, seed=i)
        for i, task_id in enumerate(task_ids("textcraft", "test")[:N_TASKS])
    ]
    policy = NoisyExpertPolicy()
    local_wall, local = timed_runs(make_executor("local"), jobs, policy)

    start = time.perf_counter()
    ray = make_executor("ray", n_workers=N_WORKERS)
    ray_start = time.perf_counter() - start
    ray_wall, remote = timed_runs(ray, jobs, policy)
    if remote != local:
        raise SystemExit("ray and local trajectories differ")

    # Per-step cost: the same step in process vs through an actor (sync round trip).
    env, proxy = make("textcraft", task_id="0"), ray.make_env("textcraft", task_id="0")
    costs = {}
    for label, target in (("local", env), ("ray", proxy)):
        target.reset()
        start = time.perf_counter()
        for _ in range(500):
            target.step("inventory")
        costs[label] = (time.perf_counter() - start) / 500
    proxy.close()

    heavy: dict[str, float] = {}
    if importlib.util.find_spec("scienceworld") is not None and shutil.which("java"):
        sw_jobs = [
            EpisodeJob("sciworld", task_id, seed=i, env_kwargs={"max_steps": 20})
            for i, task_id in enumerate(task_ids("sciworld", "test")[::150][:8])
        ]
        # The first of the 3 runs starts the JVMs; the median leaves it out.
        sw_policy = FixedActionsPolicy()
        sw_local, local_sw = timed_runs(make_executor("local"), sw_jobs, sw_policy, 4)
        sw_ray, remote_sw = timed_runs(ray, sw_jobs, sw_policy, 4)
        if remote_sw != local_sw:
            raise SystemExit("ray and local sciworld trajectories differ")
        step_ms = {}
        for label, target in (
            ("local", make("sciworld", task_id=sw_jobs[0].task_id, max_steps=1000)),
            ("ray", ray.make_env("sciworld", task_id=sw_jobs[0].task_id, max_steps=1000)),
        ):
            target.reset()
            for _pass in range(2):  # warm-up pass, then timed
                start = time.perf_counter()
                for action in SCIWORLD_ACTIONS * 5:
                    target.step(action)
            step_ms[label] = 1e3 * (time.perf_counter() - start) / (5 * len(SCIWORLD_ACTIONS))
            target.close()
        heavy = {
            "sciworld_local_step_ms": step_ms["local"],
            "sciworld_ray_step_ms": step_ms["ray"],
            "sciworld_local_wall_s": sw_local,
            "sciworld_ray_wall_s": sw_ray,
            "sciworld_ray_over_local": sw_ray / sw_local,
            "sciworld_env_steps": float(sum(t.n_steps for t in local_sw)),
        }
    ray.close()

    steps = sum(t.n_steps for t in local)
    write_result(
        "executors",
        heavy
        | {
            "local_wall_s": local_wall,
            "ray_wall_s": ray_wall,
            "ray_over_local": ray_wall / local_wall,
            "ray_start_s": ray_start,
            "local_episodes_per_s": N_TASKS / local_wall,
            "ray_episodes_per_s": N_TASKS / ray_wall,
            "env_steps": steps,
            "local_step_us": 1e6 * costs["local"],
            "ray_step_us": 1e6 * costs["ray"],
            "success_rate": float(np.mean([t.success for t in local])),
            "identical_trajectories": 1.0,
        },
        {
            "local_wall_s": "s (median of 3)",
            "ray_wall_s": "s (median of 3, Ray already started)",
            "ray_over_local": "ratio (>1: Ray slower)",
            "ray_start_s": "s (local Ray instance + 2 actors)",
            "local_episodes_per_s": "episodes/s",
            "ray_episodes_per_s": "episodes/s",
            "env_steps": "steps per run",
            "local_step_us": "us per step (TextCraft, in process)",
            "ray_step_us": "us per step (sync round trip to an actor)",
            "success_rate": "fraction (synthetic noisy expert)",
            "identical_trajectories": "1 = ray == local",
            "sciworld_local_wall_s": "s (median of 3; 8 episodes x 20 steps, 4 in flight)",
            "sciworld_ray_wall_s": "s (median of 3, same jobs, 2 actors)",
            "sciworld_ray_over_local": "ratio (<1: Ray faster)",
            "sciworld_env_steps": "steps per run",
            "sciworld_local_step_ms": "ms per step (in process, warm)",
            "sciworld_ray_step_ms": "ms per step (sync, env in an actor, warm)",
        },
        {
            "n_tasks": N_TASKS,
            "n_workers": N_WORKERS,
            "policy": "noisy-expert (synthetic), mistake_prob=0.2, waste_prob=0.1",
            "max_concurrency": 32,
            "repeats": REPEATS,
        },
    )


if __name__ == "__main__":
    main()
