"""ScienceWorld tasks: which (task, variation) each task id plays, and the splits.

ScienceWorld (Wang et al., 2022) has 30 task types (``boil``, ``melt``, ...),
each with many *variations* (different substances, rooms, objects). A task id
here is a row of a :class:`SciWorldTasks` table, one ``(task name, variation)``
per row, so ids are plain integers in text form.

* :meth:`SciWorldTasks.agentgym` (the default) numbers games the way
  AgentGym's ScienceWorld server does (``data_idx``): task types in the
  simulator's order, minus the seven that AgentGym leaves out (``5-1``,
  ``5-2``, ``9-1``, ``9-2``, ``9-3``, ``10-1``, ``10-2``), every variation of
  each in order; 4,639 ids. The AMC paper's index files (JSON lists of those
  ids, ``sciworld_idx_sciworld_{train,test}_idx.json``) therefore load
  directly: :meth:`SciWorldTasks.from_amc_splits`.
* :meth:`SciWorldTasks.full` numbers all 30 task types the same way (7,207 ids).

The default splits are the simulator's own: each task type's variations are
cut into contiguous train, dev (our ``validation``) and test ranges. The
per-type counts are in :data:`TASK_TYPES` (checked against the simulator by
the integration tests), so listing tasks starts no Java process.

Example:
    >>> table = SciWorldTasks.agentgym()
    >>> len(table), table.game("0")
    (4639, ('boil', 0))
    >>> len(table.task_ids("test")) > 1000
    True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentmc.errors import ConfigError, DataError, UnknownNameError

__all__ = [
    "AGENTGYM_EXCLUDED",
    "SPLITS",
    "TASK_TYPES",
    "SciWorldTasks",
    "TaskType",
    "list_task_ids",
]

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class TaskType:
    """One ScienceWorld task type and how its variations split.

    Attributes:
        code: The paper's id, e.g. ``"1-1"``.
        name: Simulator name, e.g. ``"boil"``.
        n_variations: Number of variations.
        n_train: Variations ``0..n_train-1`` are the train split.
        n_dev: The next ``n_dev`` are the dev (validation) split; the rest are test.
    """

    code: str
    name: str
    n_variations: int
    n_train: int
    n_dev: int

    def split_of(self, variation: int) -> str:
        """``train``, ``validation`` or ``test``."""
        if variation < self.n_train:
            return "train"
        return "validation" if variation < self.n_train + self.n_dev else "test"


# From scienceworld 1.2.3 (getTaskNames order via tasks.json, getMaxVariations and
# getVariationsTrain/Dev/Test); tests/envs/test_sciworld.py re-derives it from the simulator.
TASK_TYPES: tuple[TaskType, ...] = tuple(
    TaskType(*row)
    for row in (
        ("1-1", "boil", 30, 14, 7),
        ("1-2", "melt", 30, 14, 7),
        ("1-3", "freeze", 30, 14, 7),
        ("1-4", "change-the-state-of-matter-of", 30, 14, 7),
        ("2-1", "use-thermometer", 540, 270, 135),
        ("2-2", "measure-melting-point-known-substance", 436, 218, 109),
        ("2-3", "measure-melting-point-unknown-substance", 300, 150, 75),
        ("3-1", "power-component", 20, 10, 5),
        ("3-2", "power-component-renewable-vs-nonrenewable-energy", 20, 10, 5),
        ("3-3", "test-conductivity", 900, 450, 225),
        ("3-4", "test-conductivity-of-unknown-substances", 600, 300, 150),
        ("4-1", "find-living-thing", 300, 150, 75),
        ("4-2", "find-non-living-thing", 300, 150, 75),
        ("4-3", "find-plant", 300, 150, 75),
        ("4-4", "find-animal", 300, 150, 75),
        ("5-1", "grow-plant", 126, 62, 31),
        ("5-2", "grow-fruit", 126, 62, 31),
        ("6-1", "chemistry-mix", 32, 16, 8),
        ("6-2", "chemistry-mix-paint-secondary-color", 36, 18, 9),
        ("6-3", "chemistry-mix-paint-tertiary-color", 36, 18, 9),
        ("7-1", "lifespan-longest-lived", 125, 62, 31),
        ("7-2", "lifespan-shortest-lived", 125, 62, 31),
        ("7-3", "lifespan-longest-lived-then-shortest-lived", 125, 62, 31),
        ("8-1", "identify-life-stages-1", 14, 6, 3),
        ("8-2", "identify-life-stages-2", 10, 4, 2),
        ("9-1", "inclined-plane-determine-angle", 168, 84, 42),
        ("9-2", "inclined-plane-friction-named-surfaces", 1386, 692, 346),
        ("9-3", "inclined-plane-friction-unnamed-surfaces", 162, 80, 40),
        ("10-1", "mendelian-genetics-known-plant", 120, 60, 30),
        ("10-2", "mendelian-genetics-unknown-plant", 480, 240, 120),
    )
)
"""The 30 task types in the simulator's order."""

AGENTGYM_EXCLUDED = frozenset({"5-1", "5-2", "9-1", "9-2", "9-3", "10-1", "10-2"})
"""Task types AgentGym's ScienceWorld server leaves out of its ``data_idx`` numbering."""

_BY_NAME = {t.name: t for t in TASK_TYPES}


@dataclass(frozen=True)
class SciWorldTasks:
    """Task ids -> ``(task name, variation)``, with splits.

    Attributes:
        games: ``(task name, variation)`` of task ``i`` at position ``i``.
        splits: Split name -> task indices (sorted). Missing splits are empty.
        source: Where the table came from, for records.
    """

    games: tuple[tuple[str, int], ...]
    splits: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    source: str = "agentgym"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.splits) - set(SPLITS))
        if unknown:
            raise ConfigError(f"SciWorldTasks.splits: unknown split(s) {unknown}; use {SPLITS}")
        for name, variation in self.games:
            task = _BY_NAME.get(name)
            if task is None or not 0 <= variation < task.n_variations:
                raise ConfigError(f"SciWorldTasks.games: no variation {variation} of {name!r}")

    def __len__(self) -> int:
        return len(self.games)

    def index(self, task_id: str | int) -> int:
        """Row of ``task_id``.

        Raises:
            UnknownNameError: If the id is not a row of this table.
        """
        text = str(task_id).strip()
        if text.isdigit() and len(text) < 9 and int(text) < len(self.games):
            return int(text)
        raise UnknownNameError(
            f"unknown sciworld task id {str(task_id)[:40]!r}: this table ({self.source}) has "
            f"{len(self.games)} tasks with ids 0..{len(self.games) - 1}"
        )

    def game(self, task_id: str | int) -> tuple[str, int]:
        """``(task name, variation)`` of ``task_id``."""
        return self.games[self.index(task_id)]

    def task_ids(self, split: str = "all") -> list[str]:
        """Task ids of ``split`` (``train``, ``validation``, ``test`` or ``all``), sorted.

        Raises:
            UnknownNameError: If ``split`` is not one of those names.
        """
        if split == "all":
            return [str(i) for i in range(len(self.games))]
        if split not in SPLITS:
            raise UnknownNameError(
                f"unknown split {split!r}: choose one of {', '.join((*SPLITS, 'all'))}"
            )
        return [str(i) for i in self.splits.get(split, ())]

    @classmethod
    def _numbered(cls, types: list[TaskType], source: str) -> SciWorldTasks:
        games: list[tuple[str, int]] = []
        splits: dict[str, list[int]] = {name: [] for name in SPLITS}
        for task in types:
            for variation in range(task.n_variations):
                splits[task.split_of(variation)].append(len(games))
                games.append((task.name, variation))
        return cls(tuple(games), {k: tuple(v) for k, v in splits.items()}, source)

    @classmethod
    def agentgym(cls) -> SciWorldTasks:
        """AgentGym's ``data_idx`` numbering with the simulator's splits (the default)."""
        return cls._numbered([t for t in TASK_TYPES if t.code not in AGENTGYM_EXCLUDED], "agentgym")

    @classmethod
    def full(cls) -> SciWorldTasks:
        """All 30 task types, numbered like :meth:`agentgym`, with the simulator's splits."""
        return cls._numbered(list(TASK_TYPES), "full")

    def with_split_files(self, split_files: Mapping[str, str | Path]) -> SciWorldTasks:
        """This numbering with splits read from JSON files (a list of task ids each).

        Args:
            split_files: Split name -> JSON file holding a list of integer ids.

        Returns:
            A table whose splits are exactly the files' (splits not given are empty).

        Raises:
            DataError: A file is missing, not a JSON list of ids, or lists an id twice
                or outside the table.
            ConfigError: A split name is unknown.
        """
        unknown = sorted(set(split_files) - set(SPLITS))
        if unknown:
            raise ConfigError(f"split_files: unknown split(s) {unknown}; use {SPLITS}")
        splits: dict[str, tuple[int, ...]] = {}
        for name, path in sorted(split_files.items()):
            try:
                ids = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as error:
                raise DataError(f"{path}: cannot read ({error})") from None
            except json.JSONDecodeError as error:
                raise DataError(
                    f"{path}: not JSON ({error}); expected a list of task ids"
                ) from None
            if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids
            ):
                raise DataError(f"{path}: expected a JSON list of integer task ids")
            bad = [i for i in ids if not 0 <= i < len(self.games)]
            if bad:
                raise DataError(
                    f"{path}: ids {bad[:5]} outside 0..{len(self.games) - 1} ({self.source} table)"
                )
            if len(set(ids)) != len(ids):
                twice = sorted({i for i in ids if ids.count(i) > 1})
                raise DataError(f"{path}: task ids {twice[:5]} are listed twice")
            splits[name] = tuple(sorted(ids))
        source = ", ".join([self.source, *(str(p) for _, p in sorted(split_files.items()))])
        return SciWorldTasks(self.games, splits, source)

    @classmethod
    def from_amc_splits(cls, directory: str | Path) -> SciWorldTasks:
        """The AMC paper's train/test ids from ``directory`` over AgentGym's numbering.

        Reads ``sciworld_idx_sciworld_train_idx.json`` and ``..._test_idx.json``.
        """
        folder = Path(directory)
        return cls.agentgym().with_split_files(
            {
                "train": folder / "sciworld_idx_sciworld_train_idx.json",
                "test": folder / "sciworld_idx_sciworld_test_idx.json",
            }
        )


_DEFAULT: list[SciWorldTasks] = []


def default_tasks() -> SciWorldTasks:
    """The default table (AgentGym numbering), built once per process."""
    if not _DEFAULT:
        _DEFAULT.append(SciWorldTasks.agentgym())
    return _DEFAULT[0]


def list_task_ids(
    split: str = "all", *, tasks: SciWorldTasks | None = None, **_: object
) -> list[str]:
    """Task ids of ``split`` in ``tasks`` (default table); the registry's task lister.

    Other environment options are accepted and ignored, so the same keyword
    arguments work for ``make`` and ``task_ids``.
    """
    return (tasks or default_tasks()).task_ids(split)
