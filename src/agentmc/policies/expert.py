"""The noisy expert: an environment's scripted expert that slips (a synthetic agent).

:class:`NoisyExpertPolicy` is a black box like any chat model: it sees only
the conversation. It hands the task text and the ``(action, observation)``
steps so far to the *expert* of each registered environment in turn
(``agentmc.envs.register(..., expert=...)``, see
:mod:`agentmc.envs.knowledge`); the first that recognises the task answers
with an :class:`~agentmc.envs.knowledge.ExpertPlan`, whose first action the
policy plays unless it slips. This module imports no environment: TextCraft's
expert (recipes, inventory tracking, the shortest plan) is in
:mod:`agentmc.envs.textcraft.expert`.

Noise, per call (one draw decides which, in this order):

- with probability ``eps`` it plays a uniformly random *valid* action: one of
  the environment's candidates when the request carries them, else one of
  the expert's own list (TextCraft: ``inventory``, ``get`` of every base
  ingredient at every listed count, every listed recipe with each tag
  member). This is the recorded noise level of the ``noisy-expert:eps=0.3``
  spec. The expert replans from whatever the slip did, so a slip costs steps
  (or consumes ingredients it needed) and errors compound on deep tasks,
  whose plans leave less slack under the step cap;
- with probability ``waste_prob`` it wastes the step (the expert's ``waste``;
  TextCraft: check the inventory, or fetch a base item the plan does not need);
- with probability ``mistake_prob`` it makes a mistake (the expert's
  ``mistake``; TextCraft: a wrong count, a wrong ingredient, or a recipe off
  the plan, often a distractor).

An expert without ``waste`` or ``mistake`` slips with a random valid action
instead. At temperature 0 it never slips. Randomness comes only from
``numpy.random.default_rng(seed)``. A conversation no expert recognises gets
a random candidate (the first at temperature 0); without candidates that is a
:class:`~agentmc.errors.ConfigError`.

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

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmc.envs.knowledge import Expert, ExpertPlan
from agentmc.envs.registry import env_ids, knowledge
from agentmc.errors import AgentmcError, ConfigError
from agentmc.policies.core import Completion
from agentmc.policies.parsing import conversation_steps
from agentmc.types import Message, Usage

__all__ = [
    "Expert",
    "ExpertPlan",
    "NoisyExpertConfig",
    "NoisyExpertPolicy",
    "expert_plan",
    "unloadable_experts",
]

# TextCraft's expert lived here; its names still resolve, from its own package, on first use.
_MOVED = {
    name: "agentmc.envs.textcraft.expert"
    for name in ("TaskKnowledge", "plan_from_history", "read_task", "task_actions")
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def expert_plan(messages: Sequence[Message]) -> ExpertPlan | None:
    """The plan of the first registered expert (by environment id) that recognises the task.

    An expert whose module cannot be imported (an optional environment whose
    extra is missing) recognises nothing; :func:`unloadable_experts` names them.

    Args:
        messages: The conversation; its first user message is the task.

    Returns:
        The expert's plan, or ``None`` if no registered expert knows the task.
    """
    start = next((i for i, m in enumerate(messages) if m.role == "user"), None)
    if start is None:
        return None
    task = messages[start].content
    steps = conversation_steps(messages[start + 1 :])
    for expert in _experts():
        plan = expert(task, steps)
        if plan is not None:
            return plan
    return None


def _experts() -> list[Expert]:
    out = []
    for env_id in env_ids():
        try:
            expert = knowledge(env_id, "expert")
        except AgentmcError:
            continue  # cannot be loaded: knows no task (unloadable_experts says why)
        if expert is not None:
            out.append(expert)
    return out


def unloadable_experts() -> list[str]:
    """``"env_id: reason"`` for each registered expert that cannot be loaded."""
    out = []
    for env_id in env_ids():
        try:
            knowledge(env_id, "expert")
        except AgentmcError as error:
            out.append(f"{env_id}: {error}")
    return out


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


class NoisyExpertPolicy:
    """Synthetic agent: follows an environment's scripted expert, slips with given probabilities.

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
        advice = expert_plan(messages)
        if advice is None:  # no expert knows this task: a random valid action
            if not candidates:
                broken = "; ".join(unloadable_experts())
                raise ConfigError(
                    "noisy-expert: no registered environment expert recognises this task, "
                    "and the environment lists no valid actions (register one with "
                    "agentmc.envs.register(..., expert=...))"
                    + (f"; experts that could not be loaded: {broken}" if broken else "")
                )
            if temperature <= 0:
                return [candidates[0]] * n
            return [candidates[int(rng.integers(len(candidates)))] for _ in range(n)]
        plan = advice.plan
        eps, waste, mistake = self.config.eps, self.config.waste_prob, self.config.mistake_prob
        out = []
        for _ in range(n):
            u = rng.random()
            if temperature > 0 and u < eps:
                out.append(_random_action(advice, candidates, rng))
            elif not plan:
                out.append(_slip(advice.waste, advice, candidates, rng))
            elif temperature <= 0 or u >= eps + waste + mistake:
                out.append(plan[0])
            elif u < eps + waste:
                out.append(_slip(advice.waste, advice, candidates, rng))
            else:
                out.append(_slip(advice.mistake, advice, candidates, rng))
        return out


def _random_action(
    advice: ExpertPlan, candidates: Sequence[str] | None, rng: np.random.Generator
) -> str:
    """A uniformly random valid action: a candidate, else one of the expert's own list."""
    options = list(candidates) if candidates else list((advice.valid_actions or tuple)())
    if not options:
        options = list(advice.plan)
    if not options:
        raise ConfigError(
            "noisy-expert: the expert gave no plan and no valid actions, and the environment "
            "lists none: nothing to play"
        )
    return options[int(rng.integers(len(options)))]


def _slip(
    kind: Callable[[np.random.Generator], str] | None,
    advice: ExpertPlan, candidates: Sequence[str] | None, rng: np.random.Generator
) -> str:
    """The expert's own slip of this kind, or a random valid action if it has none."""
    return kind(rng) if kind is not None else _random_action(advice, candidates, rng)
