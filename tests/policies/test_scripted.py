import asyncio
import math

import numpy as np
import pytest

from agentmc.errors import ConfigError
from agentmc.policies.scripted import RandomPolicy, ScriptedPolicy


def test_scripted_policy_samples_with_known_probabilities():
    policy = ScriptedPolicy(lambda messages: {"a": 0.2, "b": 0.8})
    replies = asyncio.run(policy.complete((), n=4000, seed=1))
    share = np.mean([c.text == "b" for c in replies])
    assert abs(share - 0.8) < 0.03  # 5 standard errors
    assert {round(math.exp(c.logprob), 6) for c in replies} == {0.2, 0.8}
    assert sum(c.usage.calls for c in replies) == 1


def test_scripted_policy_is_reproducible_and_order_independent():
    forward = ScriptedPolicy(lambda m: {"a": 0.5, "b": 0.5})
    backward = ScriptedPolicy(lambda m: {"b": 0.5, "a": 0.5})
    first = [c.text for c in asyncio.run(forward.complete((), n=20, seed=7))]
    second = [c.text for c in asyncio.run(backward.complete((), n=20, seed=7))]
    assert first == second


def test_temperature_zero_is_greedy():
    policy = ScriptedPolicy(lambda m: {"a": 0.4, "b": 0.6})
    replies = asyncio.run(policy.complete((), n=50, seed=3, temperature=0.0))
    assert {c.text for c in replies} == {"b"}


def test_invalid_distribution_is_a_config_error():
    policy = ScriptedPolicy(lambda m: {"a": -1.0})
    with pytest.raises(ConfigError):
        asyncio.run(policy.complete((), seed=0))


def test_random_policy_needs_candidates():
    with pytest.raises(ConfigError, match="valid_actions"):
        asyncio.run(RandomPolicy().complete((), seed=0))
    replies = asyncio.run(RandomPolicy().complete((), n=30, seed=0, candidates=["x", "y"]))
    assert {c.text for c in replies} == {"x", "y"}
