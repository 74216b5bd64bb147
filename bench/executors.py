"""Ray vs local executor: TextCraft rollouts, AMC over TextCraft, and a slow HTTP environment.

1. ``ray_over_local`` (rollouts): 100 TextCraft episodes (the first 100 test
   tasks, seeds 0..99) with the synthetic noisy-expert policy through
   :func:`agentmc.rollout.arollout`, 2 actors; trajectories checked identical.
2. ``ray_over_local_textcraft`` (AMC): 20 TextCraft test tasks, K = 8 particles,
   resampling every step, 4 tasks in flight, environments local or in 2 Ray
   actors. Each particle step used to be three sequential round trips (restore,
   step, snapshot) per particle; it is now one batched ``aadvance`` per task
   step. Final particles checked identical.
3. ``ray_over_local_slow_env`` (rollouts): an environment whose step waits
   ``SLOW_LATENCY_S`` (TextCraft served over the AgentGym HTTP protocol by a
   separate process that sleeps before every step, like a remote simulator).
   ``SLOW_EPISODES`` episodes, all in flight; locally the client's blocking HTTP
   calls run one after another in the event loop, in Ray ``SLOW_WORKERS``
   actors wait in parallel.

TextCraft steps take microseconds, so parts 1-2 measure Ray's per-call
overhead; part 3 is the case Ray is for. Wall times are medians of
``REPEATS`` runs (Ray already started). ``--sciworld`` adds the earlier
ScienceWorld rollout comparison (needs the extra and Java; minutes).

Run: ``.venv/bin/python bench/executors.py`` (about two minutes). Writes
``bench/results/executors.json``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
from common import write_result

from agentmc.envs import make, task_ids
from agentmc.executors import EpisodeJob, make_executor
from agentmc.policies.expert import NoisyExpertPolicy
from agentmc.smc import SMC, SMCConfig
from agentmc.steer import AgentModel

N_TASKS = 100
N_WORKERS = 2
REPEATS = 3
AMC_TASKS = 20
AMC_PARTICLES = 8
AMC_IN_FLIGHT = 4
SLOW_LATENCY_S = 0.05
SLOW_EPISODES = 16
SLOW_WORKERS = 8
SLOW_MAX_STEPS = 10
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


class SlowSteps:
    """An environment whose every step first waits ``delay_s`` (a remote simulator's latency)."""

    def __init__(self, env, delay_s: float) -> None:
        self._env = env
        self._delay_s = delay_s

    def __getattr__(self, name):
        return getattr(self._env, name)

    def step(self, action):
        time.sleep(self._delay_s)
        return self._env.step(action)


def serve_slow(port: int) -> None:
    """Subprocess entry: TextCraft over the AgentGym protocol, each step delayed."""
    from agentmc.envs.agentgym.server import BackgroundServer, ServerConfig, create_app

    ids = task_ids("textcraft", "test")[:SLOW_EPISODES]

    def make_env(task_id: str):
        env = make("textcraft", task_id=task_id, max_steps=SLOW_MAX_STEPS)
        return SlowSteps(env, SLOW_LATENCY_S)

    with BackgroundServer(create_app(make_env, ids, ServerConfig(port=port)), port=port):
        while True:
            time.sleep(3600)


def start_slow_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-slow", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/tasks", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the slow environment server did not start")


async def amc_tasks(make_env, ids: list[str]) -> list:
    """AMC on every task, ``AMC_IN_FLIGHT`` at once; the final particles' actions."""
    policy = NoisyExpertPolicy()
    semaphore = asyncio.Semaphore(AMC_IN_FLIGHT)

    async def one(index: int, task_id: str):
        async with semaphore:
            env = make_env(task_id)
            try:
                model = AgentModel(env, policy)
                config = SMCConfig(
                    n_particles=AMC_PARTICLES, schedule="every", max_steps=model.step_cap
                )
                result = await SMC(model, config, np.random.default_rng(index)).run()
                return [model.trajectory(state).actions for state in result.states]
            finally:
                env.close()

    return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(ids))))


def timed_amc(make_env, ids: list[str]) -> tuple[float, list]:
    walls = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        outcome = asyncio.run(amc_tasks(make_env, ids))
        walls.append(time.perf_counter() - start)
    return float(np.median(walls)), outcome


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

    # AMC: the same tasks and seeds with environments here or in the actors.
    amc_ids = task_ids("textcraft", "test")[:AMC_TASKS]
    amc_local, local_particles = timed_amc(lambda t: make("textcraft", task_id=t), amc_ids)
    amc_ray, ray_particles = timed_amc(lambda t: ray.make_env("textcraft", task_id=t), amc_ids)
    if ray_particles != local_particles:
        raise SystemExit("ray and local AMC particles differ")

    heavy: dict[str, float] = {}
    sciworld = importlib.util.find_spec("scienceworld") is not None and shutil.which("java")
    if "--sciworld" in sys.argv and sciworld:
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

    # A slow environment: rollouts over HTTP, each step waiting SLOW_LATENCY_S at the server.
    process, url = start_slow_server()
    try:
        slow_jobs = [
            EpisodeJob("agentgym", str(i), seed=i, env_kwargs={"base_url": url})
            for i in range(SLOW_EPISODES)
        ]
        slow_local, local_slow = timed_runs(
            make_executor("local"), slow_jobs, policy, SLOW_EPISODES
        )
        wide = make_executor("ray", n_workers=SLOW_WORKERS)
        try:
            slow_ray, remote_slow = timed_runs(wide, slow_jobs, policy, SLOW_EPISODES)
        finally:
            wide.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    if [t.actions for t in remote_slow] != [t.actions for t in local_slow]:
        raise SystemExit("ray and local slow-env trajectories differ")
    if any(t.error for t in local_slow):
        raise SystemExit(f"slow-env episodes failed: {[t.error for t in local_slow if t.error]}")

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
            "amc_local_wall_s": amc_local,
            "amc_ray_wall_s": amc_ray,
            "ray_over_local_textcraft": amc_ray / amc_local,
            "slow_env_local_wall_s": slow_local,
            "slow_env_ray_wall_s": slow_ray,
            "ray_over_local_slow_env": slow_ray / slow_local,
            "slow_env_steps": float(sum(t.n_steps for t in local_slow)),
            "load_avg_1min": round(os.getloadavg()[0], 2),
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
            "amc_local_wall_s": "s (median of 3; 20 tasks, K=8, 4 in flight, envs here)",
            "amc_ray_wall_s": "s (median of 3; same, envs in 2 actors, one aadvance per step)",
            "ray_over_local_textcraft": "ratio (<1: Ray faster), AMC on TextCraft",
            "slow_env_local_wall_s": "s (median of 3; 16 HTTP episodes, 50 ms per step)",
            "slow_env_ray_wall_s": "s (median of 3; same jobs, 8 actors)",
            "ray_over_local_slow_env": "ratio (<1: Ray faster), slow HTTP environment",
            "slow_env_steps": "steps per run",
            "load_avg_1min": "1-minute load average at the end (2 shared cores)",
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
            "amc": {
                "tasks": AMC_TASKS,
                "particles": AMC_PARTICLES,
                "in_flight": AMC_IN_FLIGHT,
                "schedule": "every",
                "policy": "noisy-expert (synthetic)",
            },
            "slow_env": {
                "env": "textcraft over the AgentGym HTTP protocol (separate process)",
                "step_latency_s": SLOW_LATENCY_S,
                "episodes": SLOW_EPISODES,
                "ray_workers": SLOW_WORKERS,
                "max_steps": SLOW_MAX_STEPS,
            },
        },
    )


if __name__ == "__main__":
    if "--serve-slow" in sys.argv:
        serve_slow(int(sys.argv[sys.argv.index("--serve-slow") + 1]))
    else:
        main()
