"""A trained policy reports what it spent, so reports plot it at its real cost."""

from __future__ import annotations

import asyncio

from agentmc.rl.policy import LinearPolicy
from agentmc.types import Message


def test_each_request_counts_one_call_at_zero_cost():
    policy = LinearPolicy(env_id="textcraft", dim=2**8)
    messages = (Message("user", "Goal: craft stick."),)
    completions = asyncio.run(
        policy.complete(messages, n=3, seed=0, candidates=["inventory", "get 1 oak log"])
    )
    assert [c.usage.calls for c in completions] == [1, 0, 0]
    assert all(c.usage.cost == 0.0 for c in completions)  # known and free, not unknown
