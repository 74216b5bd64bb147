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

Run: ``python bench/smc_overhead.py``
"""

from __future__ import annotations

import asyncio
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


def checkpoint_times() -> tuple[list[float], float, int]:
    model = AgentModel(make("textcraft", task_id="5", max_steps=STEPS), InstantPolicy())
    config = SMCConfig(n_particles=K, schedule="every", max_steps=STEPS)
    smc = SMC(model, config, np.random.default_rng(0))
    times: list[float] = []
    inner = smc._checkpoint

    def timed(t, final):
        start = time.perf_counter()
        out = inner(t, final)
        times.append(time.perf_counter() - start)
        return out

    smc._checkpoint = timed  # type: ignore[method-assign]
    start = time.perf_counter()
    result = asyncio.run(smc.run())
    total = time.perf_counter() - start
    return times, total, result.n_resamplings


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
    times, total, resamplings = checkpoint_times()
    fork, replay = fork_and_replay_costs()
    kernel = kernel_time()
    ms = np.array(times) * 1000
    metrics = {
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
        {"particles": K, "steps": STEPS, "schedule": "every", "resampler": "systematic"},
    )


if __name__ == "__main__":
    main()
