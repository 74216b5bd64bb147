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

A listed item counts as a member of a tag only if its own recipes do not
(transitively) consume the tag: ``polished blackstone`` is made *from*
``blackstone`` and ``glistering melon slice`` from ``melon slice``, so neither
is a kind of the other, and ``get 4 blackstone`` stays in the plan.

Noise, per call (one draw decides which, in this order):

- with probability ``eps`` it plays a uniformly random *valid* action: one of
  the environment's candidates when the request carries them, else one of
  the same kind of list built from the task text (``inventory``, ``get`` of
  every base ingredient at every listed count, every listed recipe with each
  tag member). This is the recorded noise level of the
  ``noisy-expert:eps=0.3`` spec. The expert replans from whatever the slip
  did, so a slip costs steps (or consumes ingredients it needed) and errors
  compound on deep recipes, whose plans leave less slack under the step cap;
- with probability ``waste_prob`` it wastes the step (checks the inventory, or
  fetches a base item the plan does not need);
- with probability ``mistake_prob`` it makes a mistake: a wrong count, a wrong
  ingredient, or a recipe off the plan (often a distractor).

At temperature 0 it never slips. Randomness comes only from
``numpy.random.default_rng(seed)``.

It is a stand-in for a real LLM agent (``synthetic = True``; its ``name`` is
its spec, e.g. ``noisy-expert:eps=0.3``, and is recorded with every run). The
bare ``noisy-expert`` spec keeps the older calibration (mistake 0.2, waste
0.1, no eps); ``noisy-expert:eps=E[,mistake=M][,waste=W]`` sets exactly the
named noise sources and leaves the others at 0. Each call costs one request,
zero tokens and $0.

Example:
    >>> import asyncio
    >>> from agentmc.envs import make
    >>> from agentmc.types import Message
    >>> env = make("textcraft", task_id="0")
    >>> task, _ = env.reset()
    >>> policy = NoisyExpertPolicy()
    >>> [c.text for c in asyncio.run(policy.complete([Message("user", task)], temperature=0))]
    ['get 1 acacia logs']
    >>> NoisyExpertPolicy.from_spec("eps=0.3").name
    'noisy-expert:eps=0.3'
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

__all__ = [
    "NoisyExpertConfig",
    "NoisyExpertPolicy",
    "TaskKnowledge",
    "plan_from_history",
    "read_task",
    "task_actions",
]

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
    eps: float = 0.0
    """Probability of a uniformly random valid action per step (the spec's ``eps=``)."""

    def __post_init__(self) -> None:
        for name in ("mistake_prob", "waste_prob", "eps"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0.0 <= value <= 1.0
            ):
                raise ConfigError(f"{name}={value!r}: use a probability between 0 and 1")
        total = self.mistake_prob + self.waste_prob + self.eps
        if total > 1.0:
            raise ConfigError(f"eps + mistake_prob + waste_prob = {total:g}: must be at most 1")

    @property
    def spec(self) -> str:
        """The policy spec that rebuilds this config (``noisy-expert`` for the defaults).

        Example:
            >>> NoisyExpertConfig(0.0, 0.0, eps=0.3).spec
            'noisy-expert:eps=0.3'
        """
        if self == NoisyExpertConfig():
            return "noisy-expert"
        parts = [f"eps={self.eps:g}"]
        parts += [f"mistake={self.mistake_prob:g}"] if self.mistake_prob else []
        parts += [f"waste={self.waste_prob:g}"] if self.waste_prob else []
        return "noisy-expert:" + ",".join(parts)

    @classmethod
    def parse(cls, argument: str) -> NoisyExpertConfig:
        """Read ``eps=E[,mistake=M][,waste=W]`` (the part after ``noisy-expert:``).

        Noise sources not named are 0, so the spec states all the noise there is.

        Raises:
            ConfigError: An unknown key, a repeated key, a value that is not a
                probability, or no ``eps``.
        """
        keys = {"eps": "eps", "mistake": "mistake_prob", "waste": "waste_prob"}
        values: dict[str, float] = {}
        for part in argument.split(","):
            key, sep, text = (x.strip() for x in part.partition("="))
            if not sep or key not in keys:
                raise ConfigError(
                    f"noisy-expert option {part.strip()!r}: write "
                    "noisy-expert:eps=E[,mistake=M][,waste=W], e.g. noisy-expert:eps=0.3"
                )
            if keys[key] in values:
                raise ConfigError(f"noisy-expert option {key!r} given twice")
            try:
                values[keys[key]] = float(text)
            except ValueError:
                raise ConfigError(f"noisy-expert {key}={text!r}: not a number") from None
        if "eps" not in values:
            raise ConfigError("noisy-expert options need eps=, e.g. noisy-expert:eps=0.3")
        return cls(values.get("mistake_prob", 0.0), values.get("waste_prob", 0.0), values["eps"])


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


def plan_from_history(
    task: str, messages: Sequence[Message]
) -> tuple[TaskKnowledge, dict[str, int], tuple[str, ...]] | None:
    """What the expert believes after ``messages``: the task, the inventory, the shortest plan.

    Args:
        task: The task text.
        messages: The conversation after it (assistant actions, user observations).

    Returns:
        ``(knowledge, held, plan)``, or ``None`` if ``task`` is not a TextCraft task.
    """
    knowledge = read_task(task)
    if knowledge is None or not knowledge.recipes:
        return None
    held, excluded = _belief((Message("user", task), *messages), 0, knowledge)
    return knowledge, held, _solver(knowledge, excluded).plan(held)


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
        name: Label recorded with runs (default: the spec, e.g. ``noisy-expert:eps=0.3``).
        eps: Probability of a uniformly random valid action per step.

    Raises:
        ConfigError: If a probability is outside [0, 1] or they sum above 1.
    """

    synthetic = True

    def __init__(
        self,
        mistake_prob: float = 0.2,
        waste_prob: float = 0.1,
        name: str | None = None,
        *,
        eps: float = 0.0,
    ) -> None:
        self.config = NoisyExpertConfig(mistake_prob, waste_prob, eps)
        self.name = self.config.spec if name is None else name

    @classmethod
    def from_spec(cls, argument: str) -> NoisyExpertPolicy:
        """The policy of ``noisy-expert:ARGUMENT``, e.g. ``from_spec("eps=0.3")``."""
        config = NoisyExpertConfig.parse(argument)
        return cls(config.mistake_prob, config.waste_prob, eps=config.eps)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        """Sample ``n`` next actions (``candidates``: what a random slip picks from).

        Returns:
            ``n`` completions; the request's usage (one call, no tokens, $0)
            is attached to the first.
        """
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"n={n!r}: ask for at least one completion")
        rng = np.random.default_rng(seed)
        texts = self._act(messages, n, temperature, rng, candidates)
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
        candidates: Sequence[str] | None = None,
    ) -> list[str]:
        start = _task_message(messages)
        knowledge = read_task(messages[start].content) if start is not None else None
        if start is None or knowledge is None or not knowledge.recipes:
            return ["inventory"] * n  # not a TextCraft conversation: ask for state
        held, excluded = _belief(messages, start, knowledge)
        solver = _solver(knowledge, excluded)
        plan = solver.plan(held)
        eps, waste, mistake = self.config.eps, self.config.waste_prob, self.config.mistake_prob
        out = []
        for _ in range(n):
            u = rng.random()
            if temperature > 0 and u < eps:
                options = list(candidates) if candidates else task_actions(knowledge)
                out.append(options[int(rng.integers(len(options)))])
            elif not plan:
                out.append(self._waste(knowledge, plan, rng))
            elif temperature <= 0 or u >= eps + waste + mistake:
                out.append(plan[0])
            elif u < eps + waste:
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
