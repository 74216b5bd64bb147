from __future__ import annotations

import json
import os
import subprocess
import sys
import timeit

import pytest

from agentmc.envs import check_env, make, valid_actions
from agentmc.envs.textcraft import TextCraftEnv, TextCraftState
from agentmc.errors import ConfigError, UnknownNameError

# A depth-1, a depth-2 with tags, a depth-3 and a depth-4 goal of the default table.
TASKS = ["0", "150", "430", "540"]


@pytest.mark.parametrize("reward", ["sparse", "dense"])
@pytest.mark.parametrize("task_id", TASKS)
def test_check_env_passes(task_id, reward):
    check_env(make("textcraft", task_id=task_id, reward=reward))


def test_check_env_with_the_gold_plan_as_actions():
    env = make("textcraft", task_id="430", reward="dense")
    check_env(env, actions=list(env.gold_plan()) + ["inventory"])


def _find(goal: str) -> str:
    env = TextCraftEnv("0")
    return str(env.tasks.goals.index(goal))


def test_crafting_table_episode_and_feedback():
    env = make("textcraft", task_id=_find("crafting_table"))
    task, info = env.reset(seed=3)
    assert task.startswith("Crafting commands:\n") and task.endswith("Goal: craft crafting table.")
    assert "craft 1 crafting table using 4 planks" in task
    assert info["goal"] == "crafting table" and info["depth"] == 2
    step = env.step
    assert step("inventory").observation == "Inventory: You are not carrying anything."
    assert step("craft 1 crafting table using 4 oak planks").observation == (
        "Could not craft crafting table. You need 4 oak planks but have 0."
    )
    assert step("get 1 Oak_Logs").observation == "Got 1 oak logs"
    assert "one batch at a time" in step("craft 8 oak planks using 2 oak logs").observation
    assert step("craft 4 minecraft:oak_planks using 1 oak logs").observation == (
        "Crafted 4 oak planks"
    )
    assert "kind of item" in step("craft 1 crafting table using 4 planks").observation
    assert "valid recipe" in step("craft 1 crafting table using 3 oak planks").observation
    assert step("inventory").observation == "Inventory: [oak planks] (4)"
    result = step("craft 1 crafting table using 4 oak planks")
    assert (result.reward, result.terminated, result.truncated) == (1.0, True, False)
    assert result.info["success"] is True and result.info["steps"] == 9
    after = step("inventory")
    assert after.terminated and after.reward == 0.0 and "over" in after.observation


@pytest.mark.parametrize(
    ("action", "fragment"),
    [
        ("get 1 stick", "must be crafted"),
        ("get 2 planks", "kind of item"),
        ("get 1 unobtainium", "Could not find unobtainium"),
        ("craft 1 oak logs using 1 stick", "base item"),
        ("craft 1 unobtainium using 1 stick", "Could not find a recipe for unobtainium"),
        ("craft 4 stick using 2 unobtainium", "Could not find unobtainium"),
        ("craft", "craft N item using N a, N b"),
        ("", "Empty action"),
        ("!!!", "Could not understand"),
        ("x" * 100_000, "Could not understand"),
    ],
)
def test_invalid_commands_cost_a_step_and_explain(action, fragment):
    env = make("textcraft", task_id="150")
    env.reset()
    result = env.step(action)
    assert fragment in result.observation
    assert result.reward == 0.0 and not result.terminated and result.info["valid"] is False
    assert len(result.observation) < 300
    assert env.snapshot().steps == 1


def test_truncation_at_step_cap():
    env = make("textcraft", task_id="150", max_steps=3)
    env.reset()
    flags = [env.step("inventory")[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    assert env.step("get 1 oak logs").observation.startswith("The episode is over")


def test_success_on_the_last_allowed_step_is_not_truncated():
    env = make("textcraft", task_id=_find("crafting_table"), max_steps=3)
    env.reset()
    results = [env.step(a) for a in env.gold_plan()]
    assert len(results) == 3 and results[-1].terminated and not results[-1].truncated


def test_dense_reward_telescopes_to_progress():
    env = make("textcraft", task_id="540", reward="dense")
    env.reset()
    plan = env.gold_plan()
    rewards = [env.step("inventory").reward, env.step(plan[0]).reward]
    assert rewards[0] == 0.0 and rewards[1] == pytest.approx(1 / len(plan))
    for action in plan[1:]:
        result = env.step(action)
        rewards.append(result.reward)
        assert result.reward == pytest.approx(1 / len(plan))
    assert sum(rewards) == pytest.approx(1.0)
    assert result.info["success"] and result.info["progress"] == 1.0


def test_dense_reward_penalises_consuming_needed_items():
    env = make("textcraft", task_id=_find("crafting_table"), reward="dense")
    env.reset()
    plan = ("get 1 oak logs", "craft 4 oak planks using 1 oak logs")
    gains = [env.step(a).reward for a in plan]
    detour = env.step("craft 4 stick using 2 oak planks")
    assert gains[0] > 0 and gains[1] > 0
    assert detour.observation.startswith("Crafted 4 stick")
    assert detour.reward < 0  # the planks for the table are gone
    assert env.snapshot().progress == pytest.approx(sum(gains) + detour.reward)


def test_snapshots_are_immutable_small_and_fast():
    env = make("textcraft", task_id="430")
    env.reset()
    for action in env.gold_plan()[:3]:
        env.step(action)
    saved = env.snapshot()
    assert isinstance(saved, TextCraftState)
    assert hash(saved) == hash(env.snapshot())
    with pytest.raises(AttributeError):
        saved.steps = 0  # type: ignore[misc]
    seconds = min(timeit.repeat(env.snapshot, number=1000, repeat=3)) / 1000
    assert seconds < 50e-6
    with pytest.raises(ConfigError, match="only move between instances of one task"):
        make("textcraft", task_id="0").restore(saved)


def test_valid_actions_contain_a_winning_line_of_play():
    for task_id in TASKS:
        env = make("textcraft", task_id=task_id)
        candidates = valid_actions(env)
        assert candidates is not None and candidates[0] == "inventory"
        assert set(env.gold_plan()) <= set(candidates)
        assert len(candidates) == len(set(candidates)) < 300


def test_bad_options():
    with pytest.raises(ConfigError, match="max_steps"):
        TextCraftEnv("0", max_steps=0)
    with pytest.raises(ConfigError, match="tasks"):
        TextCraftEnv("0", tasks=["stick"])  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError):
        TextCraftEnv("-1")
    with pytest.raises(ConfigError, match="options"):
        TextCraftEnv("0").reset(options={"goal": "stick"})


_SCRIPT = """
import json
from agentmc.envs import make
out = []
for task_id in ["0", "77", "150", "333", "430", "540"]:
    env = make("textcraft", task_id=task_id, reward="dense")
    task, info = env.reset(seed=1)
    steps = [list(env.step(a)[:4]) for a in env.gold_plan() + ("get 1 stick", "!!!")]
    out.append([task, info, steps, env.valid_actions()])
print(json.dumps(out))
"""


def test_deterministic_across_processes_and_hash_seeds():
    outputs = []
    for hash_seed in ("1", "4242"):
        environ = dict(os.environ, PYTHONHASHSEED=hash_seed)
        run = subprocess.run(
            [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=environ, check=True
        )
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    local = {}
    exec(_SCRIPT.replace("print(json.dumps(out))", "result = json.dumps(out)"), local)
    assert local["result"] + "\n" == outputs[0]
    assert len(json.loads(outputs[0])) == 6
