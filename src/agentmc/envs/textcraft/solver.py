"""Gold planner for TextCraft: the shortest action sequence that crafts the goal.

Every ``get`` fetches any number of one base item in one step, and every
``craft`` makes one batch of a recipe in one step. A *strategy* fixes, for
each item on the way to the goal, which recipe makes it and, for each tag
(``planks``), which member (``oak planks``) to use. Given a strategy and an
inventory, the cheapest plan is forced: walk the items from the goal down
(topological order), use what is held first, craft ``ceil(missing / batch)``
batches, and add their ingredients to the demand below; every base item still
missing costs one ``get``. The solver enumerates all strategies of the goal's
recipe tree (a few hundred at most for the Minecraft data) and keeps the one
with the fewest steps (ties: the first in sorted enumeration order), which is
the exact optimum over plans that use one recipe per item and one member per
tag. Extra items in the inventory never make a plan longer.

The solver works on any :class:`RecipeBook`, so the same code plans with the
full Minecraft data (the environment's gold plans and dense reward) and with
the recipes an agent read off a task text (the noisy expert).

Example:
    >>> from agentmc.envs.textcraft.recipes import load_recipe_book
    >>> solver = Solver(load_recipe_book(), "crafting_table")
    >>> solver.plan()
    ('get 1 acacia logs', 'craft 4 acacia planks using 1 acacia logs', \
'craft 1 crafting table using 4 acacia planks')
    >>> solver.remaining({"acacia_planks": 4})
    1
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from agentmc.envs.textcraft.recipes import Recipe, RecipeBook, display_name

__all__ = ["MAX_STRATEGIES", "Solver", "Strategy", "solver_for"]

MAX_STRATEGIES = 20_000
"""Enumeration bound; beyond it the remaining strategies are not considered."""


@dataclass(frozen=True, slots=True)
class _Node:
    item: str
    count: int
    inputs: tuple[tuple[str, int], ...]  # concrete items (tags resolved)
    recipe: Recipe


@dataclass(frozen=True, slots=True)
class Strategy:
    """One way to make the goal: crafted items top-down, then the base items.

    Attributes:
        nodes: Crafted items in topological order (every item before its ingredients).
        base: Base items the strategy may need, sorted.
    """

    nodes: tuple[_Node, ...]
    base: tuple[str, ...]

    @property
    def items(self) -> frozenset[str]:
        return frozenset(n.item for n in self.nodes) | frozenset(self.base)


class Solver:
    """Shortest plans to craft one goal from any inventory.

    Args:
        book: The recipes to plan with.
        goal: Item id to craft.
    """

    def __init__(self, book: RecipeBook, goal: str) -> None:
        self.book = book
        self.goal = goal
        self.strategies: tuple[Strategy, ...] = tuple(self._enumerate())
        relevant: set[str] = set()
        for strategy in self.strategies:
            relevant |= strategy.items
        self._relevant = frozenset(relevant)
        self._cache: dict[tuple[tuple[str, int], ...], tuple[int, int]] = {}

    @property
    def solvable(self) -> bool:
        return bool(self.strategies)

    def _enumerate(self) -> Iterator[Strategy]:
        book = self.book
        if not book.is_craftable(self.goal):
            return
        produced = 0

        def expand(
            open_names: tuple[str, ...], choice: dict[str, Recipe | str]
        ) -> Iterator[dict[str, Recipe | str]]:
            nonlocal produced
            if produced >= MAX_STRATEGIES:
                return
            if not open_names:
                produced += 1
                yield dict(choice)
                return
            name, rest = open_names[0], open_names[1:]
            if (
                name in choice
                or book.is_base(name)
                or not (book.is_tag(name) or book.is_craftable(name))
            ):
                yield from expand(rest, choice)
                return
            options: tuple[Recipe | str, ...] = (
                book.tags[name] if book.is_tag(name) else book.recipes_for(name)
            )
            for option in options:
                if isinstance(option, str):
                    if not (book.is_craftable(option) or book.is_base(option)):
                        continue
                    new: tuple[str, ...] = (option,)
                else:
                    new = tuple(i for i, _ in option.inputs)
                choice[name] = option
                yield from expand(new + rest, choice)
                del choice[name]

        for choice in expand((self.goal,), {}):
            strategy = self._strategy(choice)
            if strategy is not None:
                yield strategy

    def _strategy(self, choice: Mapping[str, Recipe | str]) -> Strategy | None:
        def concrete(name: str) -> str:
            picked = choice.get(name) if self.book.is_tag(name) else None
            return picked if isinstance(picked, str) else name

        order: list[_Node] = []
        base: set[str] = set()
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(item: str) -> bool:
            mark = state.get(item)
            if mark == 2:
                return True
            if mark == 1:
                return False  # a cycle: not a valid strategy
            recipe = choice.get(item)
            if not isinstance(recipe, Recipe):
                state[item] = 2
                base.add(item)
                return True
            state[item] = 1
            inputs = tuple((concrete(name), n) for name, n in recipe.inputs)
            for name, _ in inputs:
                if not visit(name):
                    return False
            state[item] = 2
            order.append(_Node(item, recipe.count, inputs, recipe))
            return True

        if not visit(self.goal):
            return None
        if any(self.book.is_tag(b) for b in base):
            return None
        return Strategy(tuple(reversed(order)), tuple(sorted(base)))

    @staticmethod
    def _simulate(
        strategy: Strategy, held: Mapping[str, int], goal: str
    ) -> tuple[int, list[tuple[str, int]], list[tuple[_Node, int]]]:
        demand: dict[str, int] = {goal: 1}
        crafts: list[tuple[_Node, int]] = []
        steps = 0
        for node in strategy.nodes:
            missing = demand.get(node.item, 0) - held.get(node.item, 0)
            if missing <= 0:
                continue
            batches = -(-missing // node.count)
            steps += batches
            crafts.append((node, batches))
            for item, n in node.inputs:
                demand[item] = demand.get(item, 0) + batches * n
        gets = []
        for item in strategy.base:
            missing = demand.get(item, 0) - held.get(item, 0)
            if missing > 0:
                gets.append((item, missing))
        return steps + len(gets), gets, crafts

    def _best(self, held: Mapping[str, int]) -> tuple[int, int]:
        """``(steps, strategy index)`` of the best plan from ``held``; (-1, -1) if none."""
        if held.get(self.goal, 0) > 0:
            return 0, -1
        key = tuple(sorted((k, v) for k, v in held.items() if k in self._relevant and v > 0))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        best = (-1, -1)
        for index, strategy in enumerate(self.strategies):
            steps = self._simulate(strategy, held, self.goal)[0]
            if best[0] < 0 or steps < best[0]:
                best = (steps, index)
        if len(self._cache) < 100_000:
            self._cache[key] = best
        return best

    def remaining(self, inventory: Mapping[str, int] | None = None) -> int:
        """Number of steps of the shortest plan from ``inventory`` (-1 if impossible)."""
        return self._best(inventory or {})[0]

    def plan(self, inventory: Mapping[str, int] | None = None) -> tuple[str, ...]:
        """The shortest plan from ``inventory`` as action strings (empty if none).

        Gets come first, then crafts, ingredients before what they make; a
        recipe needed ``k`` times appears ``k`` times (one batch per command).
        """
        held = dict(inventory or {})
        steps, index = self._best(held)
        if index < 0:
            return ()
        _, gets, crafts = self._simulate(self.strategies[index], held, self.goal)
        actions = [f"get {n} {display_name(item)}" for item, n in gets]
        for node, batches in reversed(crafts):
            parts = ", ".join(f"{n} {display_name(item)}" for item, n in node.inputs)
            actions += [f"craft {node.count} {display_name(node.item)} using {parts}"] * batches
        return tuple(actions)


@functools.lru_cache(maxsize=2048)
def solver_for(book: RecipeBook, goal: str) -> Solver:
    """A shared :class:`Solver` per (book, goal): enumeration runs once per process."""
    return Solver(book, goal)
