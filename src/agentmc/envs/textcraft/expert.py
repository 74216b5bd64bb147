"""TextCraft's scripted expert: read the task, track the inventory, plan the shortest way.

The expert is a black box like any chat model: it sees only the task text and
the ``(action, observation)`` steps so far. From the task it reads the recipe
lines and the goal (:func:`read_task`); from the steps it tracks what it holds
with the same fold as TextCraft's state space
(:func:`agentmc.envs.textcraft.state.advance`: ``Got ...``, ``Crafted ...``
with the ingredients of the craft command, ``Inventory: ...`` which resets
the belief); then it plans the shortest way to the goal with
:class:`~agentmc.envs.textcraft.solver.Solver`. Tags are inferred from names
(``oak planks`` is a kind of ``planks``); a craft that the game rejects as
"not a valid recipe" teaches it that the substituted item is not a member.

A listed item counts as a member of a tag only if its own recipes do not
(transitively) consume the tag: ``polished blackstone`` is made *from*
``blackstone`` and ``glistering melon slice`` from ``melon slice``, so neither
is a kind of the other, and ``get 4 blackstone`` stays in the plan.

:func:`textcraft_expert` is registered as the ``expert`` of ``textcraft``
(see :mod:`agentmc.envs.knowledge`); :class:`~agentmc.policies.expert.NoisyExpertPolicy`
follows its plan and slips in TextCraft's ways: a wasted step (``inventory``,
or fetching a base item the plan does not need) or a mistake (a wrong count,
a wrong ingredient, or a recipe off the plan, often a distractor).

Example:
    >>> from agentmc.envs import make
    >>> task, _ = make("textcraft", task_id="0").reset()
    >>> advice = textcraft_expert(task, [])
    >>> advice.plan[0], advice.done
    ('get 1 acacia logs', False)
    >>> textcraft_expert("Find the key.", []) is None
    True
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from agentmc.envs.knowledge import ExpertPlan
from agentmc.envs.textcraft.commands import Craft, Get, parse_command
from agentmc.envs.textcraft.recipes import Recipe, RecipeBook, display_name, name_key
from agentmc.envs.textcraft.solver import Solver
from agentmc.envs.textcraft.state import CraftState, advance
from agentmc.types import Message

__all__ = [
    "TaskKnowledge",
    "plan_from_history",
    "plan_from_steps",
    "read_task",
    "task_actions",
    "textcraft_expert",
]

_GOAL = re.compile(r"Goal:\s*craft\s+(.+?)\.?\s*$", re.IGNORECASE | re.MULTILINE)
_NOT_A_RECIPE = "Could not find a valid recipe"


def _item(text: str) -> str:
    return name_key(text).replace(" ", "_")


@dataclass(frozen=True, eq=False)  # hashed by identity: read_task caches one per text
class TaskKnowledge:
    """What an agent can read off a TextCraft task text.

    Attributes:
        goal: Goal item id.
        recipes: The listed recipes, in order.
        tags: Inferred tag -> member items (items whose name ends with the tag's).
    """

    goal: str
    recipes: tuple[Recipe, ...]
    tags: Mapping[str, tuple[str, ...]]

    def book(self, excluded: frozenset[tuple[str, str]] = frozenset()) -> RecipeBook:
        """A recipe book of the listed recipes, without ``(tag, member)`` pairs in ``excluded``."""
        tags = {t: tuple(m for m in ms if (t, m) not in excluded) for t, ms in self.tags.items()}
        return RecipeBook(self.recipes, {t: ms for t, ms in tags.items() if ms})


@functools.lru_cache(maxsize=256)
def read_task(text: str) -> TaskKnowledge | None:
    """Parse recipes and goal from a task text; None if it is not a TextCraft task."""
    goals = _GOAL.findall(text)
    if not goals:
        return None
    recipes: list[Recipe] = []
    for line in text.splitlines():
        if not line.strip().lower().startswith("craft "):
            continue
        command = parse_command(line)
        if isinstance(command, Craft):
            inputs = tuple((_item(name), n) for name, n in command.inputs)
            recipes.append(Recipe(_item(command.output), command.count or 1, inputs, "text"))
    produced = {r.output for r in recipes}
    ingredients = {name for r in recipes for name, _ in r.inputs}
    consumed = _consumed(recipes)
    tags: dict[str, tuple[str, ...]] = {}
    for name in sorted(ingredients - produced):
        # an item made from `name` is no kind of it (polished blackstone, glistering melon slice)
        members = tuple(
            sorted(p for p in produced if p.endswith("_" + name) and name not in consumed[p])
        )
        if members:
            tags[name] = members
    return TaskKnowledge(_item(goals[-1]), tuple(recipes), tags)


def _consumed(recipes: Sequence[Recipe]) -> dict[str, frozenset[str]]:
    """Every item a listed recipe's output is made from, directly or through listed recipes."""
    direct: dict[str, set[str]] = {}
    for recipe in recipes:
        direct.setdefault(recipe.output, set()).update(name for name, _ in recipe.inputs)
    closure: dict[str, frozenset[str]] = {}
    for item in direct:
        seen: set[str] = set()
        stack = list(direct[item])
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(direct.get(name, ()))
        closure[item] = frozenset(seen)
    return closure


@functools.lru_cache(maxsize=256)
def task_actions(knowledge: TaskKnowledge) -> tuple[str, ...]:
    """Valid-looking actions read off a task text, for when the environment lists none.

    ``inventory``; ``get`` of every base ingredient at every count a listed
    recipe uses; every listed recipe as a craft command, each tag replaced by
    each of its members (at most 64 combinations per recipe).
    """
    book = knowledge.book()
    counts: dict[str, set[int]] = {}
    crafts: list[str] = []
    for recipe in knowledge.recipes:
        combos: list[list[tuple[str, int]]] = [[]]
        for name, n in recipe.inputs:
            members = knowledge.tags.get(name, (name,))
            combos = [c + [(m, n)] for c in combos for m in members]
            for member in members:
                if book.is_base(member):
                    counts.setdefault(member, set()).add(n)
        for combo in combos[:64]:
            parts = ", ".join(f"{n} {display_name(item)}" for item, n in combo)
            crafts.append(f"craft {recipe.count} {display_name(recipe.output)} using {parts}")
    gets = [
        f"get {n} {display_name(item)}" for item in sorted(counts) for n in sorted(counts[item])
    ]
    return ("inventory", *gets, *dict.fromkeys(crafts))


@functools.lru_cache(maxsize=512)
def _solver(knowledge: TaskKnowledge, excluded: frozenset[tuple[str, str]]) -> Solver:
    return Solver(knowledge.book(excluded), knowledge.goal)


def belief(
    knowledge: TaskKnowledge, steps: Sequence[tuple[str, str]]
) -> tuple[dict[str, int], frozenset[tuple[str, str]]]:
    """What is held (item id -> count) and which ``(tag, member)`` pairs the game rejected.

    The inventory is TextCraft's state fold (:func:`~agentmc.envs.textcraft.state.advance`).
    """
    state = CraftState(knowledge.goal)
    excluded: set[tuple[str, str]] = set()
    for action, observation in steps:
        state = advance(state, action, observation)
        if observation.strip().startswith(_NOT_A_RECIPE):
            command = parse_command(action)
            if isinstance(command, Craft):
                used = {_item(name) for name, _ in command.inputs}
                for tag, members in knowledge.tags.items():
                    excluded.update((tag, m) for m in members if m in used)
    held = {item.replace(" ", "_"): n for item, n in state.inventory}
    return held, frozenset(excluded)


def plan_from_steps(
    task: str, steps: Sequence[tuple[str, str]]
) -> tuple[TaskKnowledge, dict[str, int], tuple[str, ...]] | None:
    """What the expert believes after ``steps``: the task, the inventory, the shortest plan.

    Args:
        task: The task text.
        steps: ``(action, observation)`` pairs so far.

    Returns:
        ``(knowledge, held, plan)``, or ``None`` if ``task`` is not a TextCraft task.
    """
    knowledge = read_task(task)
    if knowledge is None or not knowledge.recipes:
        return None
    held, excluded = belief(knowledge, steps)
    return knowledge, held, _solver(knowledge, excluded).plan(held)


def plan_from_history(
    task: str, messages: Sequence[Message]
) -> tuple[TaskKnowledge, dict[str, int], tuple[str, ...]] | None:
    """:func:`plan_from_steps` for a conversation after the task (replies, observations)."""
    # Replies may carry a ReAct thought; the policies' reply parser reads the action.
    from agentmc.policies.parsing import conversation_steps

    return plan_from_steps(task, conversation_steps(messages))


def textcraft_expert(task: str, steps: Sequence[tuple[str, str]]) -> ExpertPlan | None:
    """TextCraft's :data:`~agentmc.envs.knowledge.Expert`: the plan, and how it slips.

    Returns:
        ``None`` for a text that is not a TextCraft task (or lists no recipe).
    """
    found = plan_from_steps(task, steps)
    if found is None:
        return None
    knowledge, held, plan = found
    return ExpertPlan(
        plan,
        done=held.get(knowledge.goal, 0) > 0,
        valid_actions=functools.partial(task_actions, knowledge),
        waste=functools.partial(_waste, knowledge, plan),
        mistake=functools.partial(_mistake, knowledge, plan),
    )


def _waste(knowledge: TaskKnowledge, plan: Sequence[str], rng: np.random.Generator) -> str:
    """A step that does nothing for the plan: ``inventory``, or getting an unneeded base item."""
    book = knowledge.book()
    planned = {_item(c.item) for c in map(parse_command, plan) if isinstance(c, Get)}
    spare = sorted(
        {
            name
            for r in knowledge.recipes
            for name, _ in r.inputs
            if book.is_base(name) and name not in planned
        }
    )
    if not spare or rng.random() < 0.5:
        return "inventory"
    item = spare[int(rng.integers(len(spare)))]
    return f"get {int(rng.integers(1, 4))} {display_name(item)}"


def _mistake(knowledge: TaskKnowledge, plan: Sequence[str], rng: np.random.Generator) -> str:
    """A wrong count, a wrong ingredient, or a recipe off the plan."""
    command = parse_command(plan[0])
    kinds = ["count", "off-plan"] + (["ingredient"] if isinstance(command, Craft) else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "count" and isinstance(command, Get):
        if command.count > 1:
            return f"get {int(rng.integers(1, command.count))} {command.item}"
        return f"get {command.count + 1} {command.item}"
    if isinstance(command, Craft) and kind in ("count", "ingredient"):
        inputs = list(command.inputs)
        k = int(rng.integers(len(inputs)))
        name, count = inputs[k]
        if kind == "count":
            inputs[k] = (name, count + (1 if count == 1 or rng.random() < 0.5 else -1))
        else:
            others = sorted(
                {display_name(i) for r in knowledge.recipes for i, _ in r.inputs}
                | {display_name(m) for ms in knowledge.tags.values() for m in ms} - {name}
            )
            inputs[k] = (others[int(rng.integers(len(others)))], count)
        parts = ", ".join(f"{c} {i}" for i, c in inputs)
        return f"craft {command.count} {command.output} using {parts}"
    planned = {parse_command(action) for action in plan}
    off_plan = [
        r
        for r in knowledge.recipes
        if not any(isinstance(p, Craft) and _item(p.output) == r.output for p in planned)
    ]
    if not off_plan:
        return "inventory"
    recipe = off_plan[int(rng.integers(len(off_plan)))]
    drawn = []
    for name, count in recipe.inputs:
        members = knowledge.tags.get(name, (name,))
        drawn.append(f"{count} {display_name(members[int(rng.integers(len(members)))])}")
    return f"craft {recipe.count} {display_name(recipe.output)} using {', '.join(drawn)}"
