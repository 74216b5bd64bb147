"""SMC wall time vs particle count: does it scale with steps x latency, not K x steps x latency?

K = 1, 8, 64 particles play 20 TextCraft steps (the policy always says
``inventory``, so no particle finishes before the step cap) with resampling
after every step, against

1. a policy that sleeps 200 ms per call (asyncio), and
2. the local OpenAI-compatible test server answering after 200 ms, through the
   real ``openai`` client (HTTP, JSON, connection pool), concurrency limit 64.

Metric: wall / (steps x latency); 1.0 is the ideal, the goal is <= 1.15 at
K = 64. The reference implementation (a synchronous generate inside async
code) is about K. With the real client, each call also costs CPU (the openai
SDK's request building and parsing, plus the in-process server), reported as
``openai_cpu_ms_per_call_k*``: a step can be no faster than K times that on a
machine with one free core. For a measured yardstick, the same run with the particles'
calls awaited one after another is timed at K = 8.

Run: ``python bench/smc_concurrency.py``
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from common import write_result

from agentmc.envs import make
from agentmc.policies.core import Completion
from agentmc.smc import SMC, SMCConfig
from agentmc.steer import AgentModel
from agentmc.types import Usage

STEPS = 20
LATENCY = 0.2
KS = (1, 8, 64)


class SleepingPolicy:
    """Answers ``inventory`` after ``latency`` seconds (a stand-in for an API call)."""

    name = "sleep-200ms"
    synthetic = True

    def __init__(self, latency: float, sequential: bool = False) -> None:
        self.latency = latency
        self.lock = asyncio.Lock() if sequential else None

    async def complete(self, messages, *, n=1, temperature=1.0, seed=None, candidates=None):
        if self.lock is None:
            await asyncio.sleep(self.latency)
        else:
            async with self.lock:  # the reference's behaviour: one call at a time
                await asyncio.sleep(self.latency)
        return [Completion("inventory", None, Usage(calls=1))]


async def timed_run(policy, k: int) -> tuple[float, int, float]:
    """(wall seconds, policy calls, CPU seconds of this process) of one 20-step run."""
    model = AgentModel(make("textcraft", task_id="5", max_steps=STEPS), policy)
    config = SMCConfig(n_particles=k, schedule="every", max_steps=STEPS)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        result = await SMC(model, config, np.random.default_rng(0)).run()
    finally:
        if hasattr(policy, "aclose"):
            await policy.aclose()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert result.n_steps == STEPS, result.n_steps
    return elapsed, model.spent().calls, cpu


def openai_policy(base_url: str):
    from agentmc.policies.openai_compat import ClientLimits, OpenAIConfig, OpenAIPolicy

    limits = ClientLimits(max_concurrency=64)
    config = OpenAIConfig(
        model="test-model", base_url=base_url, allow_no_key=True, max_tokens=16, limits=limits
    )
    return OpenAIPolicy(config)


def main() -> None:
    metrics: dict[str, float] = {}
    units: dict[str, str] = {}
    ideal = STEPS * LATENCY
    for k in KS:
        wall, calls, _ = asyncio.run(timed_run(SleepingPolicy(LATENCY), k))
        metrics[f"sleep_ratio_k{k}"] = round(wall / ideal, 4)
        units[f"sleep_ratio_k{k}"] = "wall / (steps x latency)"
        assert calls == k * STEPS
    wall, _, _ = asyncio.run(timed_run(SleepingPolicy(LATENCY, sequential=True), 8))
    metrics["sequential_reference_ratio_k8"] = round(wall / ideal, 4)
    units["sequential_reference_ratio_k8"] = "wall / (steps x latency), calls one at a time"

    from agentmc.testing.openai_server import OpenAITestServer

    with OpenAITestServer(replies=["Action: inventory"], latency_s=LATENCY) as server:
        for k in KS:
            wall, calls, cpu = asyncio.run(timed_run(openai_policy(server.base_url), k))
            metrics[f"openai_server_ratio_k{k}"] = round(wall / ideal, 4)
            units[f"openai_server_ratio_k{k}"] = "wall / (steps x latency), real HTTP client"
            # Client + in-process server CPU per call: at large K a step cannot be faster
            # than K x this on a machine with few free cores.
            metrics[f"openai_cpu_ms_per_call_k{k}"] = round(1000 * cpu / calls, 2)
            units[f"openai_cpu_ms_per_call_k{k}"] = "ms of process CPU per policy call"
            assert calls == k * STEPS, calls
    metrics["goal_met_k64"] = float(metrics["sleep_ratio_k64"] <= 1.15)
    units["goal_met_k64"] = "1 if sleep_ratio_k64 <= 1.15"
    write_result(
        "smc_concurrency",
        metrics,
        units,
        {
            "steps": STEPS,
            "latency_s": LATENCY,
            "particles": list(KS),
            "schedule": "every",
            "env": "textcraft task 5",
            "openai_max_concurrency": 64,
        },
    )


if __name__ == "__main__":
    main()
