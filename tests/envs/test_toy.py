from __future__ import annotations

import pytest

from agentmc.envs import check_env, make
from agentmc.envs.toy import GuessNumberEnv
from agentmc.errors import ConfigError


@pytest.mark.parametrize("task_id", ["0", "7", "15"])
def test_check_env_passes(task_id):
    check_env(make("guess-number", task_id=task_id))


def test_binary_search_wins_and_feedback():
    env = GuessNumberEnv("10")  # secret 11
    env.reset()
    assert env.step("guess 8").observation == "Higher."
    assert env.step("Guess 12.").observation == "Lower."
    assert "whole number" in env.step("eleven").observation
    result = env.step("11")
    assert (result.reward, result.terminated, result.info["success"]) == (1.0, True, True)


def test_truncation_and_restore_guard():
    env = GuessNumberEnv("3", max_steps=2)
    env.reset()
    assert not env.step("guess 1").truncated
    last = env.step("guess 2")
    assert last.truncated and last.info["success"] is False
    with pytest.raises(ConfigError):
        env.restore(GuessNumberEnv("4").snapshot())
    with pytest.raises(ConfigError, match="high"):
        GuessNumberEnv("0", high=0)
