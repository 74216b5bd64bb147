from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agentmc.envs import make, task_ids
from agentmc.envs.sciworld import History, Move, SciWorldTasks, SimulatorPool, check_java
from agentmc.envs.sciworld.simulator import parse_menu
from agentmc.envs.sciworld.tasks import AGENTGYM_EXCLUDED, TASK_TYPES
from agentmc.errors import ConfigError, DataError, MissingExtraError, UnknownNameError

AMC_SPLITS = Path(__file__).resolve().parents[3] / "shared" / "data" / "amc-splits"

# -- offline: task tables, menus, missing Java (no simulator needed) ---------------------


def test_agentgym_numbering_and_default_splits():
    table = SciWorldTasks.agentgym()
    assert len(table) == 4639 and len(SciWorldTasks.full()) == 7207
    assert table.game("0") == ("boil", 0)
    assert table.game("120") == ("use-thermometer", 0)  # 4 boil-like types x 30 variations
    assert table.game(4638) == ("identify-life-stages-2", 9)
    names = {name for name, _ in table.games}
    assert not names & {t.name for t in TASK_TYPES if t.code in AGENTGYM_EXCLUDED}
    splits = [set(table.task_ids(s)) for s in ("train", "validation", "test")]
    assert sum(map(len, splits)) == len(table) and set.union(*splits) == set(table.task_ids())
    assert table.game(table.task_ids("test")[0]) == ("boil", 21)
    assert task_ids("sciworld", "validation") == table.task_ids("validation")


def test_unknown_ids_and_splits():
    table = SciWorldTasks.agentgym()
    with pytest.raises(UnknownNameError, match="0..4638"):
        table.index("4639")
    with pytest.raises(UnknownNameError, match="choose one of"):
        table.task_ids("dev")
    with pytest.raises(UnknownNameError):
        make("sciworld", task_id="boil")


def test_split_files_in_the_amc_format(tmp_path):
    (tmp_path / "sciworld_idx_sciworld_train_idx.json").write_text("[120, 5, 7]")
    (tmp_path / "sciworld_idx_sciworld_test_idx.json").write_text("[536, 0]")
    table = SciWorldTasks.from_amc_splits(tmp_path)
    assert table.task_ids("train") == ["5", "7", "120"] and table.task_ids("test") == ["0", "536"]
    assert table.task_ids("validation") == []
    assert task_ids("sciworld", "test", tasks=table) == ["0", "536"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1, 2", "not JSON"),
        ('{"a": 1}', "list of integer"),
        ("[1, 99999]", "outside"),
        ("[3, 3]", "twice"),
        ("[1, true]", "list of integer"),
    ],
)
def test_split_files_rejected_with_the_reason(tmp_path, text, fragment):
    path = tmp_path / "ids.json"
    path.write_text(text)
    with pytest.raises(DataError, match=fragment):
        SciWorldTasks.agentgym().with_split_files({"test": path})


def test_split_files_missing_or_unknown_split(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        SciWorldTasks.agentgym().with_split_files({"test": tmp_path / "nope.json"})
    with pytest.raises(ConfigError, match="unknown split"):
        SciWorldTasks.agentgym().with_split_files({"dev": tmp_path / "x.json"})


@pytest.mark.skipif(not AMC_SPLITS.is_dir(), reason="the AMC paper's split files are not here")
def test_the_amc_paper_index_loads():
    table = SciWorldTasks.from_amc_splits(AMC_SPLITS)
    assert len(table.task_ids("test")) == 200 and len(table.task_ids("train")) == 1121


def test_parse_menu():
    text = "Ambiguous request: Please enter ...:\n0:\topen door a\n1:\topen door b\n"
    assert parse_menu(text) == ["open door a", "open door b"]
    assert parse_menu("The door is now open.") is None


def test_history_prefixes():
    base = History("boil", 0, (Move("look around"),))
    longer = History("boil", 0, (Move("look around"), Move("open door", "open door a")))
    assert longer.extends(base) and not base.extends(longer)
    assert not History("boil", 1, longer.moves).extends(base)


def test_missing_java_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingExtraError, match="needs Java 8 or newer.*apt-get install"):
        check_java()
    pool = SimulatorPool(1)
    env = make("sciworld", task_id="0", pool=pool)  # creating the env starts nothing
    with pytest.raises(MissingExtraError, match="Java"):
        env.reset()
    assert pool.simulators == 0


def test_bad_options():
    with pytest.raises(ConfigError, match="max_steps"):
        make("sciworld", task_id="0", max_steps=0)
    with pytest.raises(ConfigError, match="simplifications"):
        make("sciworld", task_id="0", simplifications="easy, openDoors")
    with pytest.raises(ConfigError, match="size"):
        SimulatorPool(0)


# -- integration: the real simulator (extra installed, Java present) ---------------------


@pytest.fixture(scope="module")
def pool():
    pytest.importorskip("scienceworld")
    if shutil.which("java") is None:
        pytest.skip("ScienceWorld needs Java, which is not installed")
    pool = SimulatorPool(2)
    yield pool
    pool.close()


def _first(name: str) -> str:
    """Task id of variation 0 of task type ``name`` in the default table."""
    return str(SciWorldTasks.agentgym().games.index((name, 0)))


@pytest.mark.parametrize("name", ["find-living-thing", "power-component", "lifespan-longest-lived"])
def test_gold_actions_reach_score_100(pool, name):
    env = make("sciworld", task_id=_first(name), pool=pool, max_steps=60)
    text, info = env.reset()
    assert text.startswith("Task Description:") and info["task"] == name
    total = 0.0
    for action in env.gold_actions():
        result = env.step(action)
        total += result.reward
        if result.terminated:
            break
    assert result.terminated and not result.truncated
    assert result.info["success"] and result.info["score"] == 100
    assert total == pytest.approx(1.0)


def test_menu_choices_are_stored_as_text_and_replay_on_another_simulator(pool):
    env = make("sciworld", task_id="0", pool=pool, candidates=True)
    env.reset()
    assert "look around" in env.valid_actions()
    menu = env.step("open door")
    assert menu.observation.startswith("Ambiguous request") and env.valid_actions()[:2] == [
        "0",
        "1",
    ]
    entries = parse_menu(menu.observation)
    kitchen = next(i for i, e in enumerate(entries) if "kitchen" in e)
    assert env.step(str(kitchen)).observation == "The door is now open."
    saved = env.snapshot()
    assert saved.history.moves == (Move("open door", "open door between kitchen and hallway"),)
    expected = env.step("go to kitchen")
    assert expected.observation.startswith("You move to the kitchen")
    # A fresh pool: the clone reloads the game and replays the move by its text.
    other = SimulatorPool(1)
    try:
        clone = make("sciworld", task_id="0", pool=other)
        clone.reset()
        clone.restore(saved)
        assert clone.step("go to kitchen") == expected
        assert other.simulators == 1
    finally:
        other.close()


def test_dismissed_menu_and_malformed_actions(pool):
    env = make("sciworld", task_id="0", pool=pool, max_steps=5)
    env.reset()
    env.step("open door")
    dismissed = env.step("go to kitchen")
    assert "dismissed the menu" in dismissed.observation
    assert env.snapshot().history.moves == (Move("open door", ""),)
    assert "at most" in env.step("x" * 5000).observation
    assert "Empty action" in env.step(" \x00 ").observation
    last = env.step("look around")
    assert last.truncated and not last.terminated and last.info["success"] is False


def test_check_env(pool):
    from agentmc.envs import check_env, valid_actions

    task = _first("lifespan-longest-lived")
    check_env(make("sciworld", task_id=task, pool=pool, candidates=True), n_steps=6)
    assert valid_actions(make("sciworld", task_id=task, pool=pool)) is None  # not asked for


def test_restore_into_another_task_is_refused(pool):
    a = make("sciworld", task_id="0", pool=pool)
    b = make("sciworld", task_id="1", pool=pool)
    with pytest.raises(ConfigError, match="only move between"):
        b.restore(a.snapshot())


def test_task_table_matches_the_simulator(pool):
    with pool.checkout(History("boil", 0)) as simulator:
        server = simulator._server
        assert [t.name for t in TASK_TYPES] == [str(n) for n in simulator._env.tasks.values()]
        for task in TASK_TYPES:
            simulator._env.load(task.name, 0, "")
            train = list(server.getVariationsTrain())
            dev = list(server.getVariationsDev())
            assert int(server.getTaskMaxVariations(task.name)) == task.n_variations
            assert train == list(range(task.n_train))
            assert dev == list(range(task.n_train, task.n_train + task.n_dev))
        simulator.history = None  # we moved it behind the pool's back


def test_replay_divergence_is_an_error_not_silent(pool):
    from agentmc.envs.sciworld import ReplayError

    env = make("sciworld", task_id="0", pool=pool)
    env.reset()
    env.step("open door")
    env.step("0")
    forged = env.snapshot()
    bad = type(forged)(History("boil", 0, (Move("open door", "open door to the moon"),)), steps=2)
    env.restore(bad)
    with pytest.raises(ReplayError, match="no entry"):
        env.step("look around")
    env.restore(forged)
    assert env.step("look around").observation


def test_pool_start_and_close():
    pytest.importorskip("scienceworld")
    if shutil.which("java") is None:
        pytest.skip("ScienceWorld needs Java, which is not installed")
    pool = SimulatorPool(1)
    pool.start()
    assert pool.simulators == 1
    env = make("sciworld", task_id="0", pool=pool)
    assert env.reset()[0].startswith("Task Description:")
    assert pool.simulators == 1  # reused, not a second JVM
    pool.close()
    assert pool.simulators == 0
    with pytest.raises(ConfigError, match="closed"):
        env.step("look around")
