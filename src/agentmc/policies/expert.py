"""A synthetic TextCraft agent that knows how to play but slips: the noisy expert.

:class:`NoisyExpertPolicy` is a black box like any chat model: it sees only
the conversation. From the task message it reads the recipe lines and the
goal; from the turns so far it tracks what it holds (``Got ...``,
``Crafted ...`` with the ingredients of its own craft command, and
``Inventory: ...`` which resets its belief); then it plans the shortest way
to the goal with :class:`~agentmc.envs.textcraft.solver.Solver` and answers
with the plan's first action. Tags are inferred from names (``oak planks`` is
a kind of ``planks``); a craft that the game rejects as "not a valid recipe"
teaches it that the substituted item is not a member.

At each call, with probability ``waste_prob`` it wastes the step (checks the
inventory, or fetches a base item the plan does not need), and otherwise with
probability ``mistake_prob`` it makes a mistake: a wrong count, a wrong
ingredient, or a recipe off the plan (often a distractor). At temperature 0
it never slips. Randomness comes only from ``numpy.random.default_rng(seed)``.

It is a stand-in for a real LLM agent (``synthetic = True``), calibrated so a
single attempt succeeds about half the time on the test split (about 57% with
the defaults), which leaves Best-of-N and AMC room to help. Each call costs
one request, zero tokens and $0.

Example:
    >>> import asyncio
    >>> from agentmc.envs import make
    >>> from agentmc.types import Message
    >>> env = make("textcraft", task_id="0")
    >>> task, _ = env.reset()
    >>> policy = NoisyExpertPolicy()
    >>> [c.text for c in asyncio.run(policy.complete([Message("user", task)], temperature=0))]
    ['get 1 acacia logs']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from agentmc.envs.textcraft.commands import Craft, Get, parse_command
from agentmc.envs.textcraft.recipes import Recipe, RecipeBook, display_name, name_key
from agentmc.envs.textcraft.solver import Solver
from agentmc.errors import ConfigError
from agentmc.policies.core import Completion
from agentmc.policies.parsing import parse_action
from agentmc.types import Message, Usage

__all__ = ["NoisyExpertConfig", "NoisyExpertPolicy", "TaskKnowledge", "read_task"]

_GOAL = re.compile(r"Goal:\s*craft\s+(.+?)\.?\s*$", re.IGNORECASE | re.MULTILINE)
_GOT = re.compile(r"^Got (\d+) (.+)$")
_CRAFTED = re.compile(r"^Crafted (\d+) (.+)$")
_HELD = re.compile(r"\[([^\]]+)\] \((\d+)\)")
_NOT_A_RECIPE = "Could not find a valid recipe"


def _item(text: str) -> str:
    return name_key(text).replace(" ", "_")


@dataclass(frozen=True)
class NoisyExpertConfig:
    """How often the noisy expert slips."""

    mistake_prob: float = 0.2
    """Probability of a mistake (wrong count, wrong ingredient, off-plan recipe) per step."""
    waste_prob: float = 0.1
    """Probability of a wasted step (``inventory``, or getting an unneeded item) per step."""

    def __post_init__(self) -> None:
        for name in ("mistake_prob", "waste_prob"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value!r}: use a probability between 0 and 1")
        if self.mistake_prob + self.waste_prob > 1.0:
            raise ConfigError(
                f"mistake_prob + waste_prob = {self.mistake_prob + self.waste_prob}: "
                "must be at most 1"
            )


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
    tags: dict[str, tuple[str, ...]] = {}
    for name in sorted(ingredients - produced):
        members = tuple(sorted(p for p in produced if p.endswith("_" + name)))
        if members:
            tags[name] = members
    return TaskKnowledge(_item(goals[-1]), tuple(recipes), tags)


@functools.lru_cache(maxsize=512)
def _solver(knowledge: TaskKnowledge, excluded: frozenset[tuple[str, str]]) -> Solver:
    return Solver(knowledge.book(excluded), knowledge.goal)


def _task_message(messages: Sequence[Message]) -> int | None:
    for index, message in enumerate(messages):
        if message.role == "user" and "Goal:" in message.content:
            return index
    return None


def _belief(
    messages: Sequence[Message], start: int, knowledge: TaskKnowledge
) -> tuple[dict[str, int], frozenset[tuple[str, str]]]:
    """Inventory and rejected tag members, replayed from the turns after the task."""
    held: dict[str, int] = {}
    excluded: set[tuple[str, str]] = set()
    last_action = ""
    for message in messages[start + 1 :]:
        if message.role == "assistant":
            last_action = parse_action(message.content)[0]
            continue
        if message.role != "user":
            continue
        observation = message.content.strip()
        got = _GOT.match(observation)
        crafted = _CRAFTED.match(observation)
        if observation.startswith("Inventory:"):
            held = {_item(name): int(n) for name, n in _HELD.findall(observation)}
        elif got:
            item = _item(got.group(2))
            held[item] = held.get(item, 0) + int(got.group(1))
        elif crafted:
            command = parse_command(last_action)
            if isinstance(command, Craft):
                for name, n in command.inputs:
                    item = _item(name)
                    held[item] = held.get(item, 0) - n
            item = _item(crafted.group(2))
            held[item] = held.get(item, 0) + int(crafted.group(1))
        elif observation.startswith(_NOT_A_RECIPE):
            command = parse_command(last_action)
            if isinstance(command, Craft):
                used = {_item(name) for name, _ in command.inputs}
                for tag, members in knowledge.tags.items():
                    excluded.update((tag, m) for m in members if m in used)
    return {k: v for k, v in held.items() if v > 0}, frozenset(excluded)


class NoisyExpertPolicy:
    """Synthetic TextCraft agent: plans with the recipes, slips with given probabilities.

    Args:
        mistake_prob: Probability of a mistake per step.
        waste_prob: Probability of a wasted step per step.
        name: Label recorded with runs.

    Raises:
        ConfigError: If a probability is outside [0, 1] or they sum above 1.
    """

    synthetic = True

    def __init__(
        self, mistake_prob: float = 0.2, waste_prob: float = 0.1, name: str = "noisy-expert"
    ) -> None:
        self.config = NoisyExpertConfig(mistake_prob, waste_prob)
        self.name = name

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        """Sample ``n`` next actions (``candidates`` is ignored: the expert reads the task).

        Returns:
            ``n`` completions; the request's usage (one call, no tokens, $0)
            is attached to the first.
        """
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"n={n!r}: ask for at least one completion")
        rng = np.random.default_rng(seed)
        texts = self._act(messages, n, temperature, rng)
        return [
            Completion(text, None, Usage(calls=1, cost=0.0) if k == 0 else Usage())
            for k, text in enumerate(texts)
        ]

    def _act(
        self,
        messages: Sequence[Message],
        n: int,
        temperature: float,
        rng: np.random.Generator,
    ) -> list[str]:
        start = _task_message(messages)
        knowledge = read_task(messages[start].content) if start is not None else None
        if start is None or knowledge is None or not knowledge.recipes:
            return ["inventory"] * n  # not a TextCraft conversation: ask for state
        held, excluded = _belief(messages, start, knowledge)
        solver = _solver(knowledge, excluded)
        plan = solver.plan(held)
        out = []
        for _ in range(n):
            u = rng.random()
            if not plan:
                out.append(self._waste(knowledge, plan, rng))
            elif temperature <= 0 or u >= self.config.waste_prob + self.config.mistake_prob:
                out.append(plan[0])
            elif u < self.config.waste_prob:
                out.append(self._waste(knowledge, plan, rng))
            else:
                out.append(self._mistake(knowledge, plan, rng))
        return out

    @staticmethod
    def _waste(knowledge: TaskKnowledge, plan: Sequence[str], rng: np.random.Generator) -> str:
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

    @staticmethod
    def _mistake(knowledge: TaskKnowledge, plan: Sequence[str], rng: np.random.Generator) -> str:
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
