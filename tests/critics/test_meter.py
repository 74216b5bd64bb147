from __future__ import annotations

import asyncio

import numpy as np

from agentmc.critics.baselines import ConstantCritic
from agentmc.critics.core import History
from agentmc.critics.judge import JudgeCritic
from agentmc.critics.meter import MeteredCritic
from agentmc.envs import make
from agentmc.methods import Budget, MethodSpec, run_method
from agentmc.policies.core import Completion
from agentmc.policies.expert import NoisyExpertPolicy
from agentmc.types import Usage


class RatingPolicy:
    """A stand-in judge: always rates 60%, reports 10 prompt and 2 completion tokens."""

    name = "rating-stand-in"
    synthetic = True

    def __init__(self) -> None:
        self.requests = 0

    async def complete(self, messages, *, n=1, temperature=1.0, seed=None, candidates=None):
        self.requests += 1
        usage = Usage(calls=1, prompt_tokens=10, completion_tokens=2, cost=0.0)
        return [Completion("60", None, usage if k == 0 else Usage()) for k in range(n)]


HISTORIES = [History("Goal: craft stick."), History("Goal: craft bowl.")]


def test_meter_counts_histories_and_time_of_a_trained_critic():
    meter = MeteredCritic(ConstantCritic(0.5))
    assert meter.values(HISTORIES).tolist() == [0.5, 0.5]
    assert asyncio.run(meter.avalues(HISTORIES)).tolist() == [0.5, 0.5]
    spend = meter.spend()
    assert spend["histories"] == 4 and spend["calls"] == 0
    assert spend["cpu_s"] >= 0.0 and spend["wall_s"] >= 0.0
    assert meter.name == ConstantCritic(0.5).name


def test_meter_counts_judge_requests_and_tokens():
    policy = RatingPolicy()
    meter = MeteredCritic(JudgeCritic(policy))
    values = asyncio.run(meter.avalues(HISTORIES))
    np.testing.assert_allclose(values, [0.6, 0.6])
    assert meter.usage == Usage(calls=2, prompt_tokens=20, completion_tokens=4, cost=0.0)
    assert policy.requests == 2
    # Attributes of the wrapped critic are reachable (e.g. its provenance).
    assert meter.provenance.target == "success"


def test_judge_smc_counts_judge_calls_and_the_budget_caps_them():
    policy, judge = NoisyExpertPolicy(0.0, 0.0, eps=0.85), RatingPolicy()
    critic = JudgeCritic(judge)

    def once(budget):
        return run_method(
            MethodSpec.parse("smc:4:critic"),
            lambda: make("textcraft", task_id="3"),
            policy,
            np.random.default_rng(0),
            critic=critic,
            budget=budget,
        )

    free = once(None)
    assert free.judge_calls > 0 and free.judge_tokens == 12 * free.judge_calls
    assert free.critic_spend["histories"] >= free.judge_calls
    assert free.diagnostics["spent"]["calls"] == free.calls + free.judge_calls - 4  # + final scores
    capped = once(Budget(max_calls=30))
    # Agent and judge requests share the cap (the K final scores come after the run).
    assert capped.calls + capped.judge_calls <= 30 + 4 + 4
    assert capped.diagnostics["budget_exhausted"]
    assert capped.calls < free.calls
