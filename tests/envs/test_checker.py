"""check_env must catch each broken property, not just pass good environments."""

from __future__ import annotations

import pytest

from agentmc.envs import EnvCheckError, check_env
from agentmc.envs.core import StepResult
from agentmc.envs.toy import GuessNumberEnv


class MutableSnapshot(GuessNumberEnv):
    """Snapshot is a live dict that later steps mutate."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.box = {"state": self._state}

    def step(self, action):
        result = super().step(action)
        self.box["state"] = self._state
        return result

    def snapshot(self):
        return self.box

    def restore(self, snapshot):
        self._state = snapshot["state"]
        self.box = {"state": self._state}


class Nondeterministic(GuessNumberEnv):
    calls = 0

    def step(self, action):
        Nondeterministic.calls += 1
        result = super().step(action)
        return result._replace(observation=f"{result.observation} #{Nondeterministic.calls}")


class RaisesOnJunk(GuessNumberEnv):
    def step(self, action):
        if not action.strip():
            raise ValueError("empty")
        return super().step(action)


class WrongTypes(GuessNumberEnv):
    def step(self, action):
        result = super().step(action)
        return StepResult(result.observation, "1", *result[2:])


class NeverTruncates(GuessNumberEnv):
    def step(self, action):
        return super().step(action)._replace(truncated=False)

    def valid_actions(self):
        return ["guess 16"]


class SharedState(GuessNumberEnv):
    """All instances share one state: forks are not independent."""

    shared: dict = {}

    def reset(self, *, seed=None, options=None):
        out = super().reset(seed=seed, options=options)
        SharedState.shared["s"] = self._state
        return out

    def step(self, action):
        self._state = SharedState.shared["s"]
        result = super().step(action)
        SharedState.shared["s"] = self._state
        return result

    def restore(self, snapshot):
        super().restore(snapshot)
        SharedState.shared["s"] = snapshot


@pytest.mark.parametrize(
    ("env", "prop"),
    [
        (MutableSnapshot("12"), "snapshot independence"),
        (Nondeterministic("12"), "step determinism"),
        (RaisesOnJunk("12"), "malformed actions"),
        (WrongTypes("12"), "types"),
        (NeverTruncates("3"), "truncation"),
        (SharedState("12"), "snapshot independence"),
    ],
)
def test_check_env_names_the_broken_property(env, prop):
    with pytest.raises(EnvCheckError, match=prop):
        check_env(env)


def test_missing_method_is_a_protocol_error():
    class NoSnapshot:
        env_id, task_id = "x", "0"

        def reset(self, *, seed=None, options=None):
            return "", {}

        def step(self, action):
            return StepResult("", 0.0, False, False, {})

    with pytest.raises(EnvCheckError, match="protocol"):
        check_env(NoSnapshot())


def test_good_env_with_explicit_actions_and_factory():
    check_env(
        GuessNumberEnv("9"),
        actions=["guess 3", "", "guess 12", "guess 10"],
        make_fresh=lambda: GuessNumberEnv("9"),
    )
