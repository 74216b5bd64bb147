from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agentmc.envs import make, task_ids
from agentmc.envs.textcraft import TaskTable, load_recipe_book, task_text
from agentmc.envs.textcraft.tasks import SPLITS, stable_rank, task_recipes
from agentmc.errors import ConfigError, DataError, UnknownNameError

AMC_SPLITS = Path(__file__).resolve().parents[3] / "shared" / "data" / "amc-splits"
needs_amc = pytest.mark.skipif(not AMC_SPLITS.is_dir(), reason="shared AMC split data absent")


@pytest.fixture(scope="module")
def table() -> TaskTable:
    return TaskTable.default()


def test_default_table_is_sorted_by_depth_then_name(table):
    book = load_recipe_book()
    keys = [(book.depth(g), g) for g in table.goals]
    assert keys == sorted(keys) and len(keys) == 544
    assert min(d for d, _ in keys) == 1


def test_default_split_sizes_and_stratification(table):
    book = load_recipe_book()
    sizes = {name: len(table.task_ids(name)) for name in SPLITS}
    assert sizes == {"train": 381, "validation": 54, "test": 109}
    per_depth = Counter(book.depth(g) for g in table.goals)
    for name, fraction in (("test", 0.2), ("validation", 0.1)):
        counts = Counter(book.depth(table.goal(i)) for i in table.task_ids(name))
        for depth, total in per_depth.items():
            assert counts[depth] == round(fraction * total)
    all_ids = sorted(sum((table.task_ids(s) for s in SPLITS), []), key=int)
    assert all_ids == table.task_ids("all")


def test_registry_uses_the_default_table(table):
    assert task_ids("textcraft", "test") == table.task_ids("test")
    assert make("textcraft", task_id="5").goal == table.goal("5")


def test_task_text_recipes_and_distractors():
    needed, distractors = task_recipes("crafting_table")
    assert len(distractors) == 10
    assert not {r.line() for r in needed} & {r.line() for r in distractors}
    text = task_text("crafting_table")
    lines = text.splitlines()
    assert lines[0] == "Crafting commands:" and lines[-1] == "Goal: craft crafting table."
    assert len(lines) == 3 + len(needed) + len(distractors)
    assert task_text("crafting_table") == text
    assert stable_rank("a", "b") == stable_rank("a", "b") != stable_rank("a", "c")


def test_unknown_task_and_split(table):
    with pytest.raises(UnknownNameError, match="544 tasks"):
        table.goal("9999")
    with pytest.raises(UnknownNameError, match="choose one of"):
        table.task_ids("dev")
    with pytest.raises(ConfigError, match="unknown split"):
        TaskTable(("stick",), {"dev": (0,)})
    with pytest.raises(ConfigError, match="outside"):
        TaskTable(("stick",), {"test": (3,)})


def test_from_csv(tmp_path):
    goals = tmp_path / "goals.csv"
    goals.write_text("minecraft:stick\t1\r\ncrafting_table\t2\r\nminecraft:lodestone\t4\r\n")
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("0\r\n2\r\n")
    test.write_text("1\n\n")
    table = TaskTable.from_csv(goals, {"train": train, "test": test})
    assert table.goals == ("stick", "crafting_table", "lodestone")
    assert table.task_ids("train") == ["0", "2"] and table.task_ids("test") == ["1"]
    assert table.task_ids("validation") == []
    env = make("textcraft", task_id="2", tasks=table)
    assert env.goal == "lodestone" and task_ids("textcraft", "train", tasks=table) == ["0", "2"]


@pytest.mark.parametrize(
    ("goals_text", "ids_text", "fragment"),
    [
        ("stick\t1\nstick 2\n", "0\n", "goals.csv:2: expected 'item<TAB>depth'"),
        ("stick\tone\n", "0\n", "goals.csv:1: expected"),
        ("stick\t1\nunobtainium\t1\n", "0\n", "goals.csv:2: 'unobtainium' is not a craftable"),
        ("stick\t1\noak_logs\t0\n", "0\n", "goals.csv:2: 'oak_logs' is not a craftable"),
        ("\n\n", "0\n", "goals.csv: no goals"),
        ("stick\t1\n", "0\nzero\n", "ids.csv:2: 'zero' is not a task id"),
        ("stick\t1\n", "0\n1\n", "ids.csv:2: '1' is not a task id"),
        ("stick\t1\n", "0\n0\n", "ids.csv:2: task id 0 is listed twice"),
    ],
)
def test_from_csv_rejects_malformed_files(tmp_path, goals_text, ids_text, fragment):
    (tmp_path / "goals.csv").write_text(goals_text)
    (tmp_path / "ids.csv").write_text(ids_text)
    with pytest.raises(DataError) as error:
        TaskTable.from_csv(tmp_path / "goals.csv", {"test": tmp_path / "ids.csv"})
    assert fragment in str(error.value)


def test_from_csv_missing_file_and_unknown_split(tmp_path):
    with pytest.raises(DataError, match="missing.csv"):
        TaskTable.from_csv(tmp_path / "missing.csv")
    (tmp_path / "goals.csv").write_text("stick\t1\n")
    with pytest.raises(ConfigError, match="dev"):
        TaskTable.from_csv(tmp_path / "goals.csv", {"dev": tmp_path / "goals.csv"})
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="bin.csv"):
        TaskTable.from_csv(tmp_path / "bin.csv")


@needs_amc
def test_amc_paper_splits_load():
    table = TaskTable.from_amc_splits(AMC_SPLITS)
    assert len(table) == 544
    assert len(table.task_ids("train")) == 374 and len(table.task_ids("test")) == 100
    assert table.goal("0") == "dark_oak_planks" and table.goal("543") == "polished_andesite_slab"
    assert not set(table.task_ids("train")) & set(table.task_ids("test"))
