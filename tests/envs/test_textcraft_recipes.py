from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmc.envs.textcraft.recipes import (
    RecipeBook,
    default_recipe_dir,
    display_name,
    load_recipe_book,
    name_key,
)
from agentmc.errors import DataError

AMC_SPLITS = Path(__file__).resolve().parents[3] / "shared" / "data" / "amc-splits"
DEPTHS_CSV = AMC_SPLITS / "textcraft_idx_textcraft_crafting_depths.csv"


@pytest.fixture(scope="module")
def book() -> RecipeBook:
    return load_recipe_book()


def test_names():
    assert name_key(" Minecraft:Dark_Oak  Planks ") == "dark oak planks"
    assert display_name("dark_oak_planks") == "dark oak planks"


def test_shaped_counts_shapeless_merging_and_tags(book):
    (table,) = book.recipes_for("crafting_table")
    assert table.inputs == (("planks", 4),) and table.count == 1
    assert {r.line() for r in book.recipes_for("stick")} >= {"craft 4 stick using 2 planks"}
    assert book.tags["planks"][0] == "acacia_planks" and "oak_planks" in book.tags["planks"]
    assert "white_wool" not in book.tags["wool"]  # the wool group holds the dyed wools
    assert book.is_base("oak_logs") and not book.is_tag("oak_logs")  # tag without a group
    assert book.lookup("OAK_PLANKS") == "oak_planks" and book.lookup("nothing") is None
    assert book.matches("planks", "birch_planks") and not book.matches("planks", "stick")


def test_block_decompositions_and_cycles_are_removed(book):
    assert book.recipes_for("iron_ingot") == ()  # from nuggets: cycle; from block: dropped
    assert [r.inputs for r in book.recipes_for("iron_nugget")] == [(("iron_ingot", 1),)]
    assert book.recipes_for("honey_bottle") == ()
    assert book.depth("honey_block") == 1


def test_depths(book):
    assert book.depth("oak_logs") == 0
    assert book.depth("oak_planks") == 1
    assert book.depth("crafting_table") == 2
    assert book.depth("lodestone") == 4
    assert len(book.craftable) == 544


@pytest.mark.skipif(not AMC_SPLITS.is_dir(), reason="shared AMC split data not available")
def test_matches_the_amc_paper_goal_table(book):
    paper = {}
    for line in DEPTHS_CSV.read_text().splitlines():
        item, depth = line.split("\t")
        paper[item.removeprefix("minecraft:")] = int(depth)
    assert len(paper) == 544
    assert set(paper) == set(book.craftable)
    assert {item: book.depth(item) for item in paper} == paper


def test_closure_contains_all_alternatives(book):
    lines = {r.line() for r in book.closure("crafting_table")}
    assert "craft 1 crafting table using 4 planks" in lines
    assert len([line for line in lines if "planks using" in line]) == 8


def test_load_from_folder_reads_sorted_and_rejects_bad_files(tmp_path):
    source = default_recipe_dir()
    for name in ("stick.json", "oak_planks.json", "crafting_table.json", "smooth_stone.json"):
        (tmp_path / name).write_text((source / name).read_text())
    small = load_recipe_book(tmp_path)
    assert small.craftable == ("crafting_table", "oak_planks", "stick")
    assert small.depth("crafting_table") == 2
    (tmp_path / "zzz.json").write_text("{not json")
    with pytest.raises(DataError, match="zzz.json"):
        load_recipe_book(tmp_path)
    (tmp_path / "zzz.json").write_text(json.dumps({"type": "minecraft:crafting_shapeless"}))
    with pytest.raises(DataError, match="zzz.json"):
        load_recipe_book(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_recipe_book(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no recipe files"):
        load_recipe_book(empty)
