from __future__ import annotations

import numpy as np
import pytest

from agentmc.data.trajectory import Trajectory, Turn
from agentmc.envs import make, valid_actions
from agentmc.envs.textcraft.state import TEXTCRAFT_STATE_SPACE, textcraft_key
from agentmc.errors import DataError
from agentmc.rl.estimators import episode_from_trajectory, estimate, group_trajectories
from agentmc.rl.states import StateSpace, normalize_text, state_ids, state_keys


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


_COUNTER_PATTERNS = (  # the regular expressions normalize_text applies, for the reference below
    r"\(\s*\d+\s*/\s*\d+\s*\)",
    r"\b(?:step|turn|move|round)\s*[:#=]?\s*\d+(?:\s*(?:/|of)\s*\d+)?\b[.:,]?",
    r"\b\d+\s*(?:steps?|turns?|moves?|rounds?)\s*(?:left|remaining)\b[.:,]?",
    r"\b(?:steps?|turns?|moves?)\s*(?:left|remaining)\s*[:=]?\s*\d+\b[.:,]?",
)


def _normalize_ref(text):
    import re

    out = text.lower()
    for pattern in _COUNTER_PATTERNS:
        out = re.sub(pattern, " ", out)
    out = re.sub(r"\(\s*\)", " ", out)
    return re.sub(r"\s+", " ", out).strip()


def test_normalize_text_shortcut_equals_the_regular_expressions():
    rng = np.random.default_rng(0)
    pieces = ["Step", "turn", "MOVE", "round", "steps", "left", "remaining", "(", ")", "/",
              " of ", "3", "12", ":", "#", ".", ",", "get 2 oak planks", "craft", "İ", "x",
              " ", "  ", "\t", "\n", "\u00a0", "\u2003", "\x1c", "\u2028", "Got", "ß"]  # fmt: skip
    for _ in range(3000):
        text = "".join(rng.choice(pieces, size=int(rng.integers(0, 12))))
        assert normalize_text(text) == _normalize_ref(text), repr(text)


def _random_rollouts(rng, n_tasks=4, per_task=4, steps=25):
    """Real TextCraft transcripts: random valid actions (inventory listings, crafts, fails)."""
    from agentmc.envs import task_ids

    ids = task_ids("textcraft", "train")
    rollouts = []
    for index in rng.choice(len(ids), n_tasks, replace=False):
        env = make("textcraft", task_id=ids[index], max_steps=steps)
        candidates = valid_actions(env)
        for _ in range(per_task):
            task, _ = env.reset()
            pairs, done = [], False
            while not done:
                plan = env.gold_plan() if rng.random() < 0.3 else ()
                action = plan[0] if plan else candidates[rng.integers(len(candidates))]
                result = env.step(action)
                pairs.append((action, result.observation))
                done = result.terminated or result.truncated
            rollouts.append((task, pairs))
    return rollouts


def _check_ids_match_keys(batch, rollouts):
    """Equal ids <=> equal state_keys, and each id's key is that key."""
    key_of = {}
    for ids, (task, steps) in zip(batch.ids, rollouts, strict=True):
        keys = state_keys("textcraft", task, steps)
        assert len(ids) == len(keys)
        for state, key in zip(ids.tolist(), keys, strict=True):
            assert key_of.setdefault(state, key) == key
            assert batch.key(state) == key
    assert len(set(key_of.values())) == len(key_of) == batch.n_states


def test_textcraft_batch_ids_equal_the_per_step_fold():
    from agentmc.envs.textcraft.state import batch_ids

    for seed in range(6):
        rollouts = _random_rollouts(np.random.default_rng(seed))
        rollouts.append((rollouts[0][0], []))  # a rollout of zero steps
        columns = (
            [task for task, _ in rollouts],
            [len(steps) for _, steps in rollouts],
            [a for _, steps in rollouts for a, _ in steps],
            [o for _, steps in rollouts for _, o in steps],
        )
        fast = batch_ids(*columns)
        assert fast is not None  # real TextCraft text takes the fast path
        _check_ids_match_keys(fast, rollouts)
        _check_ids_match_keys(state_ids("textcraft", rollouts), rollouts)


def test_textcraft_batch_ids_on_odd_text():
    from agentmc.envs.textcraft.state import batch_ids

    task = "craft 1 stick using 2 oak planks\n\nGoal: craft stick."
    odd = [
        (task, [("get 2 oak planks", "GOT 2 Minecraft:Oak_Planks"), ("x", "Got 0 stick"),
                ("craft 1 stick using 2 oak planks", "Crafted 1 stick"),
                ("craft 4 stick using 9 dirt", "Crafted 4 stick"),  # inputs never held:
                ("get 9 dirt", "Got 9 dirt"),  # 9 dirt now, not 0
                ("inventory", "Inventory: [stick] (2) [dirt] (0) [stick] (3)"),
                ("inventory", "Inventory: You are not carrying anything."),
                ("look", "  Got 1 oak planks  ")]),
        ("no goal here", [("get 1 a", "Got 1 a"), ("get 1 b", "Got 1 b")]),
        ("no goal here", [("get 1 b", "Got 1 b"), ("get 1 a", "Got 1 a")]),
    ]  # fmt: skip
    columns = lambda rollouts: (  # noqa: E731
        [t for t, _ in rollouts], [len(s) for _, s in rollouts],
        [a for _, s in rollouts for a, _ in s], [o for _, s in rollouts for _, o in s],
    )  # fmt: skip
    fast = batch_ids(*columns(odd))
    assert fast is not None
    _check_ids_match_keys(fast, odd)
    assert fast.ids[1][-1] == fast.ids[2][-1]  # {a: 1, b: 1} either way
    # Text the rendered state would garble: the fast path declines, state_ids folds per step.
    for garbling in ("Got 1 oak planks\ngoal: craft dirt", "Got 2 oak, planks", "Got 2 minecraft:"):
        rollouts = [(task, [("get 1 oak planks", garbling)])]
        assert batch_ids(*columns(rollouts)) is None
        if "," not in garbling and "minecraft:" not in garbling:
            _check_ids_match_keys(state_ids("textcraft", rollouts), rollouts)
        else:  # the per-step fold cannot key these either
            with pytest.raises(DataError, match="textcraft"):
                state_ids("textcraft", rollouts)
    for big in (20_000, 5_000_000_000):  # counts that need int32, int64
        got, crafted = ("get", f"Got {big} dirt"), ("craft", "Crafted 1 stick")
        twice = ("get", f"Got {2 * big} dirt")
        rollouts = [(task, [got, crafted, got]), (task, [twice, crafted])]
        fast = batch_ids(*columns(rollouts))
        _check_ids_match_keys(fast, rollouts)
        assert fast.ids[0][-1] == fast.ids[1][-1] != fast.ids[0][1]
    assert batch_ids([], [], [], []).n_states == 0
    empty = batch_ids([task, task], [0, 0], [], [])
    assert [ids.tolist() for ids in empty.ids] == [[0], [0]] and empty.key(0) == ("stick", ())


def test_a_hash_collision_cannot_merge_states(monkeypatch):
    import agentmc.envs.textcraft.state as textcraft_state

    # All-ones weights hash a row to its total count: many different states collide.
    monkeypatch.setattr(textcraft_state, "_hash_weights", lambda n: np.ones(n, dtype=np.int64))
    rollouts = _random_rollouts(np.random.default_rng(7))
    _check_ids_match_keys(state_ids("textcraft", rollouts), rollouts)


def test_generic_state_ids_number_distinct_keys():
    rollouts = [("Go.", [("look", "A room."), ("wait", "Step 3: a  ROOM.")]), ("Go.", [])]
    batch = state_ids("my-env", rollouts)
    assert [ids.tolist() for ids in batch.ids] == [[0, 1, 1], [0]]
    assert [batch.key(i) for i in range(batch.n_states)] == ["go.", "a room."]


@pytest.mark.parametrize("name", ["g2po", "gigpo", "grpo", "rloo"])
def test_groups_with_state_ids_give_the_same_advantages(name):
    rng = np.random.default_rng(3)
    trajectories = []
    for task, steps in _random_rollouts(rng, n_tasks=3, per_task=5):
        env_task = task
        turns = tuple(
            Turn(a, a, o, float(i == len(steps) - 1 and rng.random() < 0.5), i == len(steps) - 1)
            for i, (a, o) in enumerate(steps)
        )
        goal = env_task.splitlines()[-1]
        trajectories.append(Trajectory("textcraft", goal, env_task, turns, "scripted", True))
    with_keys = estimate(group_trajectories(trajectories), name)
    with_ids = estimate(group_trajectories(trajectories, ids=True), name)
    for a, b in zip(with_keys, with_ids, strict=True):
        assert a.stats == b.stats and a.n_nan == b.n_nan
        for x, y in zip(a.steps, b.steps, strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ["g2po", "gigpo", "grpo", "rloo"])
@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_trajectory_advantages_are_estimate_in_row_order(name, gamma):
    from agentmc.rl.estimators import EstimatorConfig, trajectory_advantages

    rng = np.random.default_rng(11)
    unit = 1.0 if gamma == 1.0 else 0.3  # whole-number rewards, and not
    trajectories = []
    for task, steps in _random_rollouts(rng, n_tasks=3, per_task=4, steps=15):
        turns = tuple(
            Turn(a, a, o, float(rng.random() < 0.1) * unit, i == len(steps) - 1)
            for i, (a, o) in enumerate(steps)
        )
        error = "policy failed" if len(trajectories) in (2, 7) else None
        task_id = task[-20:]  # the goal line
        trajectories.append(Trajectory("textcraft", task_id, task, turns, "s", True, error=error))
    first = trajectories[0]
    trajectories.append(Trajectory("textcraft", first.task_id, first.task, (), "s", True))
    for reward in (0.0, 1.0, 1.0):  # another environment, default state space
        turns = (Turn("look", "look", "A room.", 0.0), Turn("go", "go", "Step 2: a hall.", reward))
        trajectories.append(Trajectory("my-env", "room", "Go.", turns, "s", True))
    config = EstimatorConfig(gamma=gamma, step_weight=0.7)
    interleaved = [trajectories[i] for i in rng.permutation(len(trajectories))]
    task_ids = dict.fromkeys(t.task_id for t in interleaved)
    grouped = [t for task in task_ids for t in interleaved if t.task_id == task]
    for trajectories in (interleaved, grouped):  # both code paths
        got, n_nan = trajectory_advantages(trajectories, name, config)
        results = estimate(group_trajectories(trajectories), name, config)
        task_ids = dict.fromkeys(t.task_id for t in trajectories)  # groups' order
        by_task = {task: list(r.steps) for task, r in zip(task_ids, results, strict=True)}
        expected = [by_task[t.task_id].pop(0) for t in trajectories]
        np.testing.assert_array_equal(got, np.concatenate(expected))
        assert n_nan == sum(t.error is not None for t in trajectories)
