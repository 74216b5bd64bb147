"""TextCraft tasks: which goal each task id crafts, the splits, and the task text.

A :class:`TaskTable` maps task ids (``"0"``, ``"1"``, ...: row numbers) to goal
items and holds the ``train`` / ``validation`` / ``test`` splits.

* :meth:`TaskTable.default` lists every craftable item (depth >= 1), sorted by
  depth then name, and splits each depth separately: goals are ranked by a
  SHA-256 hash of their name, the first 20% (rounded) go to ``test``, the next
  10% to ``validation``, the rest to ``train``. The split is stratified by
  depth and stable: it depends on no RNG, hash seed or Python version.
* :meth:`TaskTable.from_csv` reads an id -> goal table (``item<TAB>depth`` per
  line, row ``i`` is task ``i``) and id lists (one id per line), the format of
  the AMC paper's ``textcraft_idx_textcraft_*`` files;
  :meth:`TaskTable.from_amc_splits` reads those three files from a folder.

:func:`task_text` writes a task: every recipe that can take part in crafting
the goal, plus up to 10 distractor recipes that use the same ingredients, in
a hash-ranked order, then ``Goal: craft X.``. It depends on the goal only, so
the same goal reads the same in every table and every process.

Example:
    >>> table = TaskTable.default()
    >>> len(table), len(table.task_ids("test")) > 100
    (544, True)
    >>> table.goal("0")
    'acacia_planks'
    >>> task_text(table.goal("0")).splitlines()[-1]
    'Goal: craft acacia planks.'
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentmc.envs.textcraft.recipes import Recipe, RecipeBook, display_name, load_recipe_book
from agentmc.errors import ConfigError, DataError, UnknownNameError

__all__ = ["SPLITS", "TaskTable", "list_task_ids", "stable_rank", "task_text"]

SPLITS = ("train", "validation", "test")
"""Split names; ``task_ids`` also accepts ``"all"``."""

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
N_DISTRACTORS = 10


def stable_rank(salt: str, text: str) -> bytes:
    """A sort key that orders strings pseudo-randomly but identically everywhere.

    Sorting by ``stable_rank(salt, x)`` is a shuffle seeded by ``salt`` that
    depends on neither Python's hash seed nor any RNG implementation.
    """
    return hashlib.sha256(f"{salt}\x00{text}".encode()).digest()


@dataclass(frozen=True)
class TaskTable:
    """Task ids -> goal items, with splits.

    Attributes:
        goals: Goal item id of task ``i`` at position ``i``.
        splits: Split name -> task indices (sorted). Missing splits are empty.
        source: Where the table came from, for records (``"default"`` or file paths).
    """

    goals: tuple[str, ...]
    splits: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    source: str = "default"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.splits) - set(SPLITS))
        if unknown:
            raise ConfigError(f"TaskTable.splits: unknown split(s) {unknown}; use {SPLITS}")
        for name, ids in self.splits.items():
            bad = [i for i in ids if not 0 <= i < len(self.goals)]
            if bad:
                raise ConfigError(
                    f"TaskTable.splits[{name!r}]: ids {bad[:5]} outside 0..{len(self.goals) - 1}"
                )

    def __len__(self) -> int:
        return len(self.goals)

    def index(self, task_id: str | int) -> int:
        """Row of ``task_id``.

        Raises:
            UnknownNameError: If the id is not a row of this table.
        """
        text = str(task_id).strip()
        if text.isdigit() and len(text) < 9 and int(text) < len(self.goals):
            return int(text)
        examples = ", ".join(str(i) for i in range(min(3, len(self.goals))))
        raise UnknownNameError(
            f"unknown textcraft task id {str(task_id)[:40]!r}: this table ({self.source}) has "
            f"{len(self.goals)} tasks with ids 0..{len(self.goals) - 1} (e.g. {examples})"
        )

    def goal(self, task_id: str | int) -> str:
        """Goal item id of ``task_id``."""
        return self.goals[self.index(task_id)]

    def task_ids(self, split: str = "all") -> list[str]:
        """Task ids of ``split`` (``train``, ``validation``, ``test`` or ``all``), sorted.

        Raises:
            UnknownNameError: If ``split`` is not one of those names.
        """
        if split == "all":
            return [str(i) for i in range(len(self.goals))]
        if split not in SPLITS:
            raise UnknownNameError(
                f"unknown split {split!r}: choose one of {', '.join((*SPLITS, 'all'))}"
            )
        return [str(i) for i in self.splits.get(split, ())]

    @classmethod
    def default(cls, book: RecipeBook | None = None) -> TaskTable:
        """Every craftable item, sorted by (depth, name), split per depth (see module doc)."""
        book = book or load_recipe_book()
        goals = tuple(sorted(book.craftable, key=lambda g: (book.depth(g), g)))
        by_depth: dict[int, list[int]] = {}
        for index, goal in enumerate(goals):
            by_depth.setdefault(book.depth(goal), []).append(index)
        splits: dict[str, list[int]] = {name: [] for name in SPLITS}
        for depth in sorted(by_depth):
            ranked = sorted(by_depth[depth], key=lambda i: stable_rank("split", goals[i]))
            n_test = round(TEST_FRACTION * len(ranked))
            n_validation = round(VALIDATION_FRACTION * len(ranked))
            splits["test"] += ranked[:n_test]
            splits["validation"] += ranked[n_test : n_test + n_validation]
            splits["train"] += ranked[n_test + n_validation :]
        return cls(goals, {k: tuple(sorted(v)) for k, v in splits.items()}, "default")

    @classmethod
    def from_csv(
        cls,
        goals_csv: str | Path,
        split_files: Mapping[str, str | Path] | None = None,
        *,
        book: RecipeBook | None = None,
    ) -> TaskTable:
        """Load an id -> goal table and optional split id lists.

        Args:
            goals_csv: Tab-separated ``item<TAB>depth`` lines (``minecraft:`` prefix
                optional); line ``i`` (from 0) is the goal of task ``i``.
            split_files: Split name -> file with one task id per line.
            book: Recipes used to check that every goal is craftable.

        Returns:
            The table; splits not given are empty.

        Raises:
            DataError: A file is missing or a line does not parse (names file and line).
            ConfigError: A split name is unknown.
        """
        book = book or load_recipe_book()
        split_files = dict(split_files or {})
        unknown = sorted(set(split_files) - set(SPLITS))
        if unknown:
            raise ConfigError(f"split_files: unknown split(s) {unknown}; use {SPLITS}")
        goals: list[str] = []
        for number, line in _lines(goals_csv):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[1].strip().isdigit():
                raise DataError(
                    f"{goals_csv}:{number}: expected 'item<TAB>depth', got {line[:60]!r}"
                )
            item = book.lookup(fields[0])
            if item is None or not book.is_craftable(item):
                raise DataError(f"{goals_csv}:{number}: {fields[0][:60]!r} is not a craftable item")
            goals.append(item)
        if not goals:
            raise DataError(f"{goals_csv}: no goals")
        splits: dict[str, tuple[int, ...]] = {}
        for name, path in sorted(split_files.items()):
            ids: list[int] = []
            for number, line in _lines(path):
                text = line.strip()
                if not text:
                    continue
                if not text.isdigit() or len(text) > 9 or int(text) >= len(goals):
                    raise DataError(
                        f"{path}:{number}: {text[:40]!r} is not a task id of {goals_csv} "
                        f"(0..{len(goals) - 1})"
                    )
                if int(text) in ids:
                    raise DataError(f"{path}:{number}: task id {text} is listed twice")
                ids.append(int(text))
            splits[name] = tuple(sorted(ids))
        source = ", ".join([str(goals_csv), *(str(p) for _, p in sorted(split_files.items()))])
        return cls(tuple(goals), splits, source)

    @classmethod
    def from_amc_splits(cls, directory: str | Path, *, book: RecipeBook | None = None) -> TaskTable:
        """The AMC paper's table from ``directory``.

        Reads ``textcraft_idx_textcraft_crafting_depths.csv`` and the ``_train_ids.csv``
        and ``_test_ids.csv`` lists next to it.
        """
        folder = Path(directory)
        prefix = "textcraft_idx_textcraft_"
        return cls.from_csv(
            folder / f"{prefix}crafting_depths.csv",
            {"train": folder / f"{prefix}train_ids.csv", "test": folder / f"{prefix}test_ids.csv"},
            book=book,
        )


def _lines(path: str | Path) -> list[tuple[int, str]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    return [(number, line.rstrip("\r")) for number, line in enumerate(text.split("\n"), 1)]


def list_task_ids(split: str = "all", *, tasks: TaskTable | None = None, **_: object) -> list[str]:
    """Task ids of ``split`` in ``tasks`` (default table); the registry's task lister.

    Other environment options (``max_steps``, ``reward``) are accepted and
    ignored, so the same keyword arguments work for ``make`` and ``task_ids``.
    """
    return (tasks or default_table()).task_ids(split)


_DEFAULT: list[TaskTable] = []


def default_table() -> TaskTable:
    """The default table (built once per process)."""
    if not _DEFAULT:
        _DEFAULT.append(TaskTable.default())
    return _DEFAULT[0]


def task_recipes(
    goal: str, book: RecipeBook | None = None, n_distractors: int = N_DISTRACTORS
) -> tuple[tuple[Recipe, ...], tuple[Recipe, ...]]:
    """``(needed, distractors)``: the goal's recipe closure and the chosen distractors.

    Distractors are recipes outside the closure that use one of its
    ingredients; the ``n_distractors`` first in hash order (salted by the goal).
    """
    return _task_recipes(goal, book or load_recipe_book(), n_distractors)


@functools.lru_cache(maxsize=2048)
def _task_recipes(
    goal: str, book: RecipeBook, n_distractors: int
) -> tuple[tuple[Recipe, ...], tuple[Recipe, ...]]:
    needed = book.closure(goal)
    lines = {r.line() for r in needed}
    candidates: dict[str, Recipe] = {}
    for recipe in needed:
        for ingredient, _ in recipe.inputs:
            for use in book.uses_of(ingredient):
                line = use.line()
                if line not in lines and line not in candidates:
                    candidates[line] = use
    ranked = sorted(candidates, key=lambda line: stable_rank(f"distractor:{goal}", line))
    return needed, tuple(candidates[line] for line in ranked[:n_distractors])


@functools.lru_cache(maxsize=2048)
def _task_text(goal: str, book: RecipeBook, n_distractors: int) -> str:
    needed, distractors = _task_recipes(goal, book, n_distractors)
    lines = list(dict.fromkeys(r.line() for r in (*needed, *distractors)))
    lines.sort(key=lambda line: stable_rank(f"order:{goal}", line))
    return "Crafting commands:\n{}\n\nGoal: craft {}.".format("\n".join(lines), display_name(goal))


def task_text(goal: str, book: RecipeBook | None = None, n_distractors: int = N_DISTRACTORS) -> str:
    """The task as the agent reads it: recipe lines (hash-ranked order), then the goal."""
    return _task_text(goal, book or load_recipe_book(), n_distractors)


def goal_of_text(text: str) -> str | None:
    """The goal written in a task text (``Goal: craft X.``), in display form, or None."""
    marker = "Goal: craft "
    start = text.rfind(marker)
    if start < 0:
        return None
    rest = text[start + len(marker) :].split("\n", 1)[0].strip()
    return rest[:-1] if rest.endswith(".") else rest


def parse_recipe_lines(text: str) -> list[str]:
    """The ``craft ...`` lines of a task text, in order."""
    return [line.strip() for line in text.splitlines() if line.strip().lower().startswith("craft ")]
