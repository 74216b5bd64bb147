"""SMC bookkeeping per checkpoint at K = 1024 TextCraft particles (goal: < 1 ms).

A checkpoint does: read the returns, add the weight increments (log space),
compute the ESS, draw systematic ancestors, and clone the particles (a gather
of immutable states: environment snapshot plus shared message tuple). We run
20 steps of SMC with resampling after every step and an instant policy, and
time every call of the sampler's checkpoint. Separately we time the parts
outside the checkpoint that cloning makes possible: forking an environment
for one particle move (``restore`` + ``step`` + ``snapshot``), and, for
comparison, what a clone costs when it replays the history instead (the
reference implementation's way): reset and replay 10 actions.

The whole step, not only the checkpoint: the same run with the synthetic
noisy expert, timing every ``SMC.step()`` in CPU time, and the policy's own
CPU time by replaying each step's calls afterwards;
``step_overhead_us_per_particle_k1024`` is (step - policy) / running particles
(median over the steps with at least K/4 particles running): seeds, tasks,
parsing, environment moves (restore + step + snapshot), new states, weights,
resampling, garbage collection included (goal: < 15 us).

Run: ``python bench/smc_overhead.py``
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
from common import write_result

from agentmc.envs import make
from agentmc.policies.core import Completion
from agentmc.smc import SMC, LogWeights, SMCConfig, systematic
from agentmc.steer import AgentModel
from agentmc.types import Usage

K = 1024
STEPS = 20
ACTIONS = ("get 1 oak logs", "inventory", "craft 4 oak planks using 1 oak logs")


class InstantPolicy:
    """Cycles through a few TextCraft actions without waiting (pure bookkeeping cost)."""

    name = "instant"
    synthetic = True

    async def complete(self, messages, *, n=1, temperature=1.0, seed=None, candidates=None):
        return [Completion(ACTIONS[(seed or 0) % len(ACTIONS)], None, Usage(calls=1))]


def checkpoint_times() -> tuple[list[float], float, int, list[float]]:
    """Checkpoint wall times, run wall time, resamplings, and CPU us per particle per step."""
    model = AgentModel(make("textcraft", task_id="5", max_steps=STEPS), InstantPolicy())
    config = SMCConfig(n_particles=K, schedule="every", max_steps=STEPS)
    smc = SMC(model, config, np.random.default_rng(0))
    times: list[float] = []
    step_us: list[float] = []
    inner, step = smc._checkpoint, smc.step

    def timed(t, final):
        start = time.perf_counter()
        out = inner(t, final)
        times.append(time.perf_counter() - start)
        return out

    async def timed_step():
        running = sum(not s.done for s in smc._states)
        start = time.process_time()
        out = await step()
        step_us.append(1e6 * (time.process_time() - start) / running)
        return out

    smc._checkpoint = timed  # type: ignore[method-assign]
    smc.step = timed_step  # type: ignore[method-assign]
    start = time.perf_counter()
    result = asyncio.run(smc.run())
    total = time.perf_counter() - start
    return times, total, result.n_resamplings, step_us


class RecordingPolicy:
    """Delegates to a policy and records each call, to time the policy apart afterwards.

    Timing every call in place would add two CPU-clock reads (system calls) and a
    coroutine per particle to the step being measured; instead each step's calls
    are replayed on the same policy after the step, timed as a whole, and that
    time is subtracted. Replays run on warm caches, so if anything this
    understates the policy's share and overstates ours.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.synthetic = inner.synthetic
        self.calls: list[tuple[object, dict]] = []

    async def complete(self, messages, **kwargs):
        self.calls.append((messages, kwargs))
        return await self.inner.complete(messages, **kwargs)

    def replay_seconds(self) -> float:
        """CPU seconds the recorded calls take again; clears the record."""
        calls, self.calls = self.calls, []
        start = time.process_time()
        for messages, kwargs in calls:
            coroutine = self.inner.complete(messages, **kwargs)
            try:
                coroutine.send(None)
            except StopIteration:
                continue
            raise RuntimeError("the replayed policy waited; it must answer at once")
        return time.process_time() - start


def whole_steps(runs: int = 3) -> dict[str, list[float]]:
    """Every SMC step of K = 1024 expert particles, timed in CPU and wall seconds.

    Per step: the CPU time of the whole step, the CPU time inside the policy's
    ``complete``, the CPU time of the environment moves (``AgentModel._advance``:
    restore + step + snapshot + valid actions), the wall time, and the running count.
    CPU time is this process's own, so other users of the shared cores do not count.
    """
    from agentmc.policies.expert import NoisyExpertPolicy

    rows: dict[str, list[float]] = {"cpu": [], "policy": [], "env": [], "wall": [], "running": []}
    for run in range(runs):
        policy = RecordingPolicy(NoisyExpertPolicy())
        model = AgentModel(make("textcraft", task_id="5", max_steps=STEPS), policy)
        config = SMCConfig(n_particles=K, schedule="every", max_steps=STEPS)
        smc = SMC(model, config, np.random.default_rng(run))
        env_seconds = [0.0]
        advance, step = model._advance, smc.step

        def timed_advance(moving, advance=advance, env_seconds=env_seconds):
            begin = time.process_time()
            out = advance(moving)
            env_seconds[0] += time.process_time() - begin
            return out

        async def timed_step(smc=smc, policy=policy, step=step, env_seconds=env_seconds):
            rows["running"].append(sum(not s.done for s in smc._states))
            env_before = env_seconds[0]
            wall, cpu = time.perf_counter(), time.process_time()
            state = await step()
            rows["cpu"].append(time.process_time() - cpu)
            rows["wall"].append(time.perf_counter() - wall)
            rows["env"].append(env_seconds[0] - env_before)
            rows["policy"].append(policy.replay_seconds())
            return state

        model._advance = timed_advance  # type: ignore[method-assign]
        smc.step = timed_step  # type: ignore[method-assign]
        asyncio.run(smc.run())  # run() as users call it (it also keeps old objects out of gc)
    return rows


def fork_and_replay_costs(n: int = 2000) -> tuple[float, float]:
    env = make("textcraft", task_id="5")
    env.reset(seed=0)
    for action in ACTIONS * 3:
        env.step(action)
    snapshot = env.snapshot()
    start = time.perf_counter()
    for _ in range(n):
        env.restore(snapshot)
        env.step("inventory")
        env.snapshot()
    fork = (time.perf_counter() - start) / n
    history = (ACTIONS * 4)[:10]
    start = time.perf_counter()
    for _ in range(n):
        env.reset(seed=0)
        for action in history:
            env.step(action)
    replay = (time.perf_counter() - start) / n
    return fork, replay


def kernel_time(repeats: int = 200) -> float:
    """Weights + ESS + systematic resampling + gather alone, at K = 1024."""
    rng = np.random.default_rng(0)
    states = [object() for _ in range(K)]
    increments = rng.normal(size=(repeats, K))
    start = time.perf_counter()
    for row in increments:
        weights = LogWeights.uniform(K).add(row)
        _ = weights.ess
        ancestors = systematic(weights.normalized, rng, K)
        states = [states[i] for i in ancestors]
    return (time.perf_counter() - start) / repeats


def main() -> None:
    times, total, resamplings, instant_step_us = checkpoint_times()
    fork, replay = fork_and_replay_costs()
    kernel = kernel_time()
    rows = {key: np.array(values) for key, values in whole_steps().items()}
    particle_steps = rows["running"].sum()
    outside = rows["cpu"] - rows["policy"]  # seconds per step outside the policy
    busy = rows["running"] >= K // 4  # per-step spreads only where the step is large
    per_particle = 1e6 * outside[busy] / rows["running"][busy]
    ms = np.array(times) * 1000
    metrics = {
        "step_overhead_us_per_particle_k1024": round(float(np.median(per_particle)), 3),
        "step_overhead_us_per_particle_k1024_all_steps": round(
            1e6 * outside.sum() / particle_steps, 3
        ),
        "step_overhead_us_per_particle_k1024_p90": round(float(np.quantile(per_particle, 0.9)), 3),
        "step_env_us_per_particle_k1024": round(1e6 * rows["env"].sum() / particle_steps, 3),
        "step_own_us_per_particle_k1024": round(
            1e6 * (outside - rows["env"]).sum() / particle_steps, 3
        ),
        "step_policy_us_per_particle_k1024": round(1e6 * rows["policy"].sum() / particle_steps, 3),
        "step_wall_outside_policy_us_per_particle_k1024": round(
            1e6 * (rows["wall"] - rows["policy"]).sum() / particle_steps, 3
        ),
        "step_particle_steps": float(particle_steps),
        "step_us_per_particle_k1024_instant_policy": round(float(np.median(instant_step_us)), 3),
        "step_goal_met": float(np.median(per_particle) < 15.0),
        "checkpoint_ms_median": round(float(np.median(ms)), 4),
        "checkpoint_ms_p90": round(float(np.quantile(ms, 0.9)), 4),
        "checkpoint_ms_max": round(float(ms.max()), 4),
        "kernel_ms": round(kernel * 1000, 4),
        "fork_us_per_particle": round(fork * 1e6, 3),
        "replay10_us_per_particle": round(replay * 1e6, 3),
        "replay_over_fork": round(replay / fork, 2),
        "run_s_total": round(total, 3),
        "resamplings": resamplings,
        "goal_met": float(np.median(ms) < 1.0),
    }
    units = {
        "step_overhead_us_per_particle_k1024": (
            "CPU us per particle-step outside the policy: the whole SMC step (seeds, policy "
            "calls' scaffolding, parsing, env moves, new states, weights, resampling, gc) "
            "minus the expert's CPU (its calls replayed after each step); median over the "
            "steps with >= K/4 = 256 particles running, 3 runs"
        ),
        "step_overhead_us_per_particle_k1024_all_steps": (
            "CPU us, same, summed over all steps / all particle-steps (late steps with a few "
            "particles left carry the fixed per-step cost)"
        ),
        "step_overhead_us_per_particle_k1024_p90": "CPU us, 90th percentile, same steps",
        "step_env_us_per_particle_k1024": (
            "CPU us per particle-step in TextCraft moves (restore+step+snapshot+valid actions)"
        ),
        "step_own_us_per_particle_k1024": "CPU us per particle-step outside policy and env",
        "step_policy_us_per_particle_k1024": "CPU us per particle-step of the expert (replayed)",
        "step_wall_outside_policy_us_per_particle_k1024": (
            "wall us per particle-step outside the policy (inflated by other users' load)"
        ),
        "step_particle_steps": "particle-steps timed (3 runs, 20-step cap)",
        "step_us_per_particle_k1024_instant_policy": (
            "CPU us per particle per whole step with a policy that answers at once "
            "(no timing wrapper; all 1024 running for 20 steps; median over steps)"
        ),
        "step_goal_met": "1 if step_overhead_us_per_particle_k1024 < 15",
        "checkpoint_ms_median": "ms per checkpoint (returns, weights, ESS, resample, clone)",
        "checkpoint_ms_p90": "ms per checkpoint, 90th percentile",
        "checkpoint_ms_max": "ms per checkpoint, worst",
        "kernel_ms": "ms for weights+ESS+systematic+gather alone",
        "fork_us_per_particle": "us per particle move: restore + step + snapshot",
        "replay10_us_per_particle": "us per clone by reset + replaying 10 actions",
        "replay_over_fork": "ratio",
        "run_s_total": "s for the whole 20-step run (instant policy)",
        "resamplings": "count",
        "goal_met": "1 if median checkpoint < 1 ms",
    }
    write_result(
        "smc_overhead",
        metrics,
        units,
        {
            "particles": K,
            "steps": STEPS,
            "schedule": "every",
            "resampler": "systematic",
            "step_policy": "noisy-expert (synthetic), 3 runs, seeds 0-2",
            "load_avg_1min": round(os.getloadavg()[0], 2),
        },
    )


if __name__ == "__main__":
    main()
