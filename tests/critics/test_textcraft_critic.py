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


def test_eval_takes_the_plan_critic_by_name(tmp_path):
    from agentmc.cli.main import main
    from agentmc.data.store import RunStore

    out = tmp_path / "eval"
    args = ["--out", str(out), "--methods", "bon:2:critic", "amc:2:critic", "--n-tasks", "2"]
    args += ["--critic", "textcraft-plan", "--guard-tasks", "0", "--no-progress", "--no-report"]
    assert main(["eval", *args, "--policy", "noisy-expert:eps=0.85"]) == 0
    rows = [r["data"] for r in RunStore.open(out).records("result")]
    assert {r["method"] for r in rows} == {"bon@critic-k2", "amc@critic-k2"}
    critics = {r["episode"]["diagnostics"]["critic"] for r in rows}
    assert critics == {"textcraft-plan"}


def test_plan_features_count_the_remaining_plan_and_the_earliest_finishing_step():
    from agentmc.critics.textcraft import MAX_PLAN, PLAN_COLUMNS, plan_features

    task_id = deep_task()
    plan = list(make("textcraft", task_id=task_id).gold_plan())
    rows = plan_features(
        [
            history_after(task_id, []),
            history_after(task_id, plan[:2]),
            history_after(task_id, ["inventory", "inventory"]),
            history_after(task_id, plan),
            History("Guess a number."),
        ]
    )
    assert rows.shape == (5, PLAN_COLUMNS)
    need = rows[:, 4 : 5 + MAX_PLAN].argmax(axis=1)
    finish = rows[:, 5 + MAX_PLAN :].argmax(axis=1)
    # Two useful steps shorten the plan by two; two wasted ones push the finish back by two.
    assert need[0] == len(plan) and need[1] == len(plan) - 2 and need[2] == len(plan)
    assert finish[0] == finish[1] == len(plan) and finish[2] == len(plan) + 2
    assert rows[3, 1] == 1.0 and need[3] == 0  # the goal is held
    assert rows[:4, 0].tolist() == [1.0] * 4 and not rows[4].any()  # not TextCraft: zeros
