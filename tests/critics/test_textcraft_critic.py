from __future__ import annotations

import numpy as np
import pytest

from agentmc.critics.core import History
from agentmc.critics.textcraft import TextCraftPlanCritic
from agentmc.envs import make, task_ids
from agentmc.errors import ConfigError
from agentmc.types import Message


def history_after(task_id: str, actions: list[str]) -> History:
    env = make("textcraft", task_id=task_id)
    task, _ = env.reset(seed=0)
    messages: list[Message] = []
    for action in actions:
        result = env.step(action)
        messages += [Message("assistant", action), Message("user", result.observation)]
    return History(task, tuple(messages))


def deep_task() -> str:
    return next(
        t
        for t in task_ids("textcraft", "test")
        if len(make("textcraft", task_id=t).gold_plan()) >= 6
    )


def test_progress_ranks_above_a_wasted_step_and_time_running_out_lowers_the_value():
    task_id = deep_task()
    plan = list(make("textcraft", task_id=task_id).gold_plan())
    critic = TextCraftPlanCritic()
    start, useful, wasted = critic.values(
        [
            history_after(task_id, []),
            history_after(task_id, plan[:2]),
            history_after(task_id, ["inventory", "inventory"]),
        ]
    )
    assert 0.0 < wasted < start and useful > wasted
    late = critic.values([history_after(task_id, ["inventory"] * 16 + plan[:2])])[0]
    assert late < useful


def test_finished_attempts_score_one_if_solved_and_zero_if_time_ran_out():
    task_id = deep_task()
    plan = list(make("textcraft", task_id=task_id).gold_plan())
    solved, failed = TextCraftPlanCritic().values(
        [history_after(task_id, plan), history_after(task_id, ["inventory"] * 20)]
    )
    assert (solved, failed) == (1.0, 0.0)


def test_not_a_textcraft_task_scores_zero_and_bad_settings_are_refused():
    assert TextCraftPlanCritic().values([History("Guess a number.")]).tolist() == [0.0]
    with pytest.raises(ConfigError, match="rate"):
        TextCraftPlanCritic(rate=0.0)
    with pytest.raises(ConfigError, match="max_steps"):
        TextCraftPlanCritic(max_steps=0)


def test_values_are_probabilities():
    critic = TextCraftPlanCritic(rate=0.5)
    values = critic.values([history_after(t, ["inventory"]) for t in task_ids("textcraft", "test")])
    assert np.all((values >= 0) & (values <= 1))
