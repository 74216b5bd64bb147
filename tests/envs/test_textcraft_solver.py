from __future__ import annotations

from pathlib import Path

import pytest

from agentmc.envs import make
from agentmc.envs.textcraft import Solver, TaskTable, load_recipe_book
from agentmc.envs.textcraft.recipes import Recipe, RecipeBook

AMC_SPLITS = Path(__file__).resolve().parents[3] / "shared" / "data" / "amc-splits"

# Goals whose shortest plan exceeds the default cap of 20 steps: banners need six
# wool, each made one batch at a time (the original game has no multi-batch craft).
OVER_CAP = {
    "black_banner": 23,
    "blue_banner": 23,
    "brown_banner": 23,
    "cyan_banner": 24,
    "gray_banner": 27,
    "light_blue_banner": 23,
    "light_gray_banner": 23,
    "lime_banner": 24,
    "orange_banner": 23,
    "purple_banner": 26,
}


@pytest.fixture(scope="module")
def lengths() -> dict[str, int]:
    book = load_recipe_book()
    return {goal: Solver(book, goal).remaining() for goal in book.craftable}


def test_every_goal_has_a_plan_and_534_fit_the_cap(lengths):
    assert min(lengths.values()) >= 2
    over = {goal: n for goal, n in lengths.items() if n > 20}
    assert over == OVER_CAP
    assert len(lengths) - len(over) == 534


def test_gold_plans_succeed_in_the_environment_on_every_default_task(lengths):
    table = TaskTable.default()
    solved = 0
    for task_id in table.task_ids("all"):
        env = make("textcraft", task_id=task_id, tasks=table, max_steps=40)
        env.reset()
        plan = env.gold_plan()
        assert len(plan) == lengths[env.goal]
        for action in plan:
            result = env.step(action)
            assert result.info["valid"], (env.goal, action, result.observation)
        assert result.terminated and result.info["success"], env.goal
        solved += len(plan) <= 20
    assert solved == 534


@pytest.mark.skipif(not AMC_SPLITS.is_dir(), reason="shared AMC split data absent")
def test_amc_test_split_solvable_within_the_cap(lengths):
    table = TaskTable.from_amc_splits(AMC_SPLITS)
    test_goals = [table.goal(i) for i in table.task_ids("test")]
    fits = sum(lengths[g] <= 20 for g in test_goals)
    assert (len(test_goals), fits) == (100, 99)


def test_plans_account_for_inventory_and_shared_batches():
    book = load_recipe_book()
    solver = Solver(book, "crafting_table")
    assert solver.remaining() == 3
    assert solver.remaining({"birch_planks": 4}) == 1
    assert solver.plan({"birch_planks": 4}) == ("craft 1 crafting table using 4 birch planks",)
    assert solver.remaining({"birch_planks": 3, "stick": 9}) == 3  # 3 planks are not enough
    assert solver.remaining({"crafting_table": 1}) == 0 and solver.plan({"crafting_table": 1}) == ()


def test_optimality_on_a_small_book_by_brute_force():
    # Two ways to make "c": via 2 "b" (each 1 craft from base "a") or directly from 3 "x"
    # and 1 "y" (two gets, one craft); sharing one batch of b (count 2) matters.
    book = RecipeBook(
        [
            Recipe("b", 2, (("a", 1),)),
            Recipe("c", 1, (("b", 2),)),
            Recipe("c", 1, (("x", 3), ("y", 1))),
        ],
        {},
    )
    solver = Solver(book, "c")
    assert solver.plan() == ("get 1 a", "craft 2 b using 1 a", "craft 1 c using 2 b")
    assert solver.remaining({"x": 3, "y": 1}) == 1


def test_unsolvable_goal_has_no_plan():
    solver = Solver(load_recipe_book(), "oak_logs")
    assert not solver.solvable and solver.plan() == () and solver.remaining() == -1
