import asyncio

import numpy as np

from agentmc.errors import PolicyError
from agentmc.policies.scripted import ScriptedPolicy
from agentmc.rollout import arollout, rollout


def always(action):
    return ScriptedPolicy(lambda messages: {action: 1.0})


def test_rollout_reaches_the_goal(climb_env, rng):
    trajectory = rollout(climb_env, always("up"), rng)
    assert trajectory.success and trajectory.terminated and not trajectory.truncated
    assert trajectory.actions == ["up", "up", "up"]
    assert trajectory.total_return == 1.0
    assert trajectory.usage.calls == 3
    assert trajectory.synthetic is True
    messages = trajectory.messages()
    assert [m.role for m in messages] == ["user"] + ["assistant", "user"] * 3
    assert messages[-1].content == "You reached the top!"


def test_environment_truncation_is_recorded(climb_env, rng):
    trajectory = rollout(climb_env, always("wait"), rng)
    assert trajectory.truncated and not trajectory.success
    assert trajectory.n_steps == climb_env.max_steps
    assert "Unknown action" in trajectory.turns[0].observation


def test_extra_step_cap_truncates(climb_env, rng):
    trajectory = rollout(climb_env, always("wait"), rng, max_steps=2)
    assert trajectory.n_steps == 2 and trajectory.truncated


def test_same_seed_same_trajectory(climb_env):
    policy = ScriptedPolicy(lambda m: {"up": 0.6, "down": 0.2, "wait": 0.2})
    runs = [rollout(climb_env, policy, np.random.default_rng(5)) for _ in range(2)]
    assert runs[0] == runs[1]


def test_unparsed_reply_goes_to_the_environment_as_is(climb_env, rng):
    trajectory = rollout(climb_env, always(""), rng, max_steps=1)
    assert trajectory.turns[0].parsed is False
    assert trajectory.turns[0].action == ""


class FailingPolicy:
    name = "failing"
    synthetic = True

    async def complete(self, messages, **kwargs):
        if len(messages) > 2:
            raise PolicyError("server unreachable after 3 retries")
        return await always("up").complete(messages, **kwargs)


def test_failed_policy_call_ends_the_episode_with_an_error(climb_env, rng):
    trajectory = asyncio.run(arollout(climb_env, FailingPolicy(), rng))
    assert trajectory.error == "server unreachable after 3 retries"
    assert trajectory.n_steps == 1 and not trajectory.success
