from __future__ import annotations

import pytest

from agentmc.data.trajectory import Trajectory, Turn
from agentmc.envs import make, valid_actions
from agentmc.errors import DataError
from agentmc.rl.estimators import episode_from_trajectory, estimate, group_trajectories
from agentmc.rl.states import StateSpace, normalize_text, state_keys
from agentmc.rl.textcraft_state import TEXTCRAFT_STATE_SPACE, textcraft_key


def test_default_key_drops_whitespace_case_and_step_counters():
    assert normalize_text("You see  a DOOR.\n(Step 3/40)") == "you see a door."
    assert normalize_text("Turn 12: a door.") == normalize_text("a door. 5 steps left")
    assert normalize_text("") == ""


def test_a_key_that_raises_names_the_environment():
    def broken(text):
        raise ValueError("no parse")

    space = StateSpace(key=broken)
    with pytest.raises(DataError, match=r"state key for environment 'my-env'.*no parse"):
        state_keys("my-env", "task", [("a", "b")], space)
    with pytest.raises(DataError, match="'my-env'.*TypeError"):
        state_keys("my-env", "task", [], StateSpace(key=lambda text: [text]))  # unhashable


def test_a_fold_that_raises_names_the_environment():
    def advance(state, action, observation):
        raise KeyError(observation)

    with pytest.raises(DataError, match=r"state fold for environment 'shop'"):
        state_keys("shop", "task", [("a", "b")], StateSpace(advance=advance))


def test_textcraft_fold_tracks_the_inventory_and_merges_paths():
    task = "Crafting commands:\ncraft 1 stick using 2 oak planks\n\nGoal: craft stick."
    one = TEXTCRAFT_STATE_SPACE.texts(
        task, [("get 1 oak planks", "Got 1 oak planks"), ("get 1 oak planks", "Got 1 oak planks")]
    )
    two = TEXTCRAFT_STATE_SPACE.texts(
        task,
        [
            ("inventory", "Inventory: You are not carrying anything."),
            ("get 2 oak planks", "Got 2 oak planks"),
        ],
    )
    assert textcraft_key(one[-1]) == textcraft_key(two[-1]) == ("stick", (("oak planks", 2),))
    assert textcraft_key(one[0]) == textcraft_key(two[1])  # same empty inventory
    crafted = TEXTCRAFT_STATE_SPACE.texts(
        task, [("get 2 oak planks", "Got 2 oak planks"),
               ("craft 1 stick using 2 oak planks", "Crafted 1 minecraft:stick")]
    )  # fmt: skip
    assert textcraft_key(crafted[-1]) == ("stick", (("stick", 1),))
    failed = TEXTCRAFT_STATE_SPACE.texts(
        task,
        [
            (
                "craft 1 stick using 2 oak planks",
                "Could not find enough items to craft minecraft:stick",
            )
        ],
    )
    assert textcraft_key(failed[1]) == textcraft_key(failed[0])  # a failed craft is a self-loop


def _trajectory(env, actions, task_id, error=None):
    task, _ = env.reset(seed=0)
    turns = []
    for action in actions:
        result = env.step(action)
        turns.append(Turn(reply=action, action=action, observation=result.observation,
                          reward=float(result.reward), terminated=result.terminated,
                          truncated=result.truncated))  # fmt: skip
        if result.terminated or result.truncated:
            break
    return Trajectory(
        env_id="textcraft", task_id=task_id, task=task, turns=tuple(turns),
        policy="scripted", synthetic=True, success=False, seed=0, error=error,
    )  # fmt: skip


def test_recorded_trajectories_become_groups_with_textcraft_states():
    env = make("textcraft", task_id="3")
    plan = env.gold_plan()
    env.reset(seed=0)
    actions = valid_actions(env)
    trajectories = [
        _trajectory(env, plan, "3"),
        _trajectory(env, ["inventory", *plan], "3"),
        _trajectory(env, [actions[1]] * 3, "3"),
        _trajectory(env, plan[:1], "3", error="policy failed"),
    ]
    [group] = group_trajectories(trajectories)
    assert len(group) == 4 and not group[3].scorable
    assert group[0].states[0] == group[1].states[1]  # "inventory" changes nothing
    [result] = estimate([group], "g2po")
    assert result.n_nan == 1 and (result.steps[3] == 0).all()
    assert result.steps[0].mean() > result.steps[2].mean()
    assert episode_from_trajectory(trajectories[0]).states[-1][1]  # inventory not empty
