r"""What an environment tells agents and learners about itself: its prompt, its states, its expert.

An environment is more than ``reset``/``step``. Three other parts of agentmc
need knowledge only the environment has, and an environment package supplies
each through its registry entry (:func:`agentmc.envs.register`), so that
``policies/`` and ``rl/`` never import an environment:

- a **prompt** (:class:`EnvPrompt`): instructions and worked examples that
  :class:`~agentmc.policies.prompts.PromptFormat` shows a model;
- a **state space** (:class:`StateSpace`): what "the same state" means, for
  graph credit assignment (G2PO) and step grouping (GiGPO) in
  :mod:`agentmc.rl.states`;
- an **expert** (:data:`Expert`): a scripted player that reads a conversation
  and proposes a plan, which :class:`~agentmc.policies.expert.NoisyExpertPolicy`
  follows with slips (a synthetic stand-in for an LLM agent).

All three are optional. Without a prompt a model gets generic instructions;
without a state space the state is the latest observation, normalised by
:func:`normalize_text`; without an expert the noisy expert cannot play the
environment. This module holds only the types (no environment): each
environment package holds its own knowledge, e.g. ``agentmc.envs.textcraft.prompt``,
``.state`` and ``.expert``, registered as lazy ``"module:attribute"`` strings.

Example:
    >>> prompt = EnvPrompt("Say up until you reach the top.")
    >>> space = StateSpace(start=lambda task: 0,
    ...                    advance=lambda level, action, seen: level + (action == "up"),
    ...                    render=lambda level: f"level {level}")
    >>> space.texts("Climb.", [("up", "Level 1."), ("down", "You fell.")])
    ['level 0', 'level 1', 'level 1']
    >>> def expert(task, steps):
    ...     return ExpertPlan(("up",)) if task.startswith("Climb") else None
    >>> expert("Climb.", []).plan
    ('up',)
    >>> normalize_text("  You are in the KITCHEN.  Step 3/40 ")
    'you are in the kitchen.'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmc.types import IntArray

__all__ = [
    "BatchStateIds",
    "EnvPrompt",
    "Example",
    "Expert",
    "ExpertPlan",
    "StateIds",
    "StateKey",
    "StateSpace",
    "normalize_text",
]

# -- Prompts ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Example:
    """One worked episode shown to the model before its task.

    Attributes:
        task: The task text, as the environment states it.
        steps: ``(thought, action, observation)`` triples; ``thought`` may be
            empty and is shown in the ReAct style only.
    """

    task: str
    steps: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class EnvPrompt:
    """Instructions and worked examples for one environment.

    Attributes:
        instructions: What the agent is doing and which actions exist.
        examples: Worked episodes, shown in order.
    """

    instructions: str
    examples: tuple[Example, ...] = ()


# -- States -----------------------------------------------------------------------------

StateKey = Callable[[str], Hashable]
"""Canonicalises one state text into a hashable key."""

BatchStateIds = Callable[
    [Sequence[str], Sequence[int], Sequence[str], Sequence[str]], "StateIds | None"
]
"""``(tasks, lengths, actions, observations) -> StateIds | None``: a batch of
rollouts as flat columns (one task and one length per rollout, then every
step's action and observation, rollout after rollout) to state ids that
partition the states exactly as their keys do, or ``None`` to decline."""


_STEP_COUNTERS = (
    re.compile(r"\(\s*\d+\s*/\s*\d+\s*\)"),
    re.compile(r"\b(?:step|turn|move|round)\s*[:#=]?\s*\d+(?:\s*(?:/|of)\s*\d+)?\b[.:,]?"),
    re.compile(r"\b\d+\s*(?:steps?|turns?|moves?|rounds?)\s*(?:left|remaining)\b[.:,]?"),
    re.compile(r"\b(?:steps?|turns?|moves?)\s*(?:left|remaining)\s*[:=]?\s*\d+\b[.:,]?"),
)
_SPACES = re.compile(r"\s+")
# Each pattern above (and the empty-brackets one in normalize_text) needs "(" or
# one of the words "step", "turn", "move", "round": without them, only spaces change.


def normalize_text(text: str) -> str:
    r"""The default :data:`StateKey`: lower-case, no step counters, single spaces.

    Args:
        text: One state text.

    Returns:
        The canonical string.

    Example:
        >>> normalize_text("Turn 7: Nothing happens.\n(3 steps left)")
        'nothing happens.'
    """
    out = text.lower()
    if not ("(" in out or "step" in out or "turn" in out or "move" in out or "round" in out):
        return " ".join(out.split())  # none of the patterns can match: spaces only
    for pattern in _STEP_COUNTERS:
        out = pattern.sub(" ", out)
    out = re.sub(r"\(\s*\)", " ", out)
    return _SPACES.sub(" ", out).strip()


def _latest_observation(state: Any, action: str, observation: str) -> str:
    return observation


@dataclass(frozen=True, slots=True)
class StateSpace:
    """How one environment's rollouts map to states and state keys.

    Attributes:
        start: Task text -> initial state (any value).
        advance: ``(state, action, observation)`` -> next state. Must not mutate ``state``.
        render: State -> state text.
        key: State text -> hashable key (see :data:`StateKey`).
        description: One line saying what a state is, for logs and docs.
    """

    start: Callable[[str], Any] = str
    advance: Callable[[Any, str, str], Any] = _latest_observation
    render: Callable[[Any], str] = str
    key: StateKey = normalize_text
    description: str = "the latest observation, normalised"
    batch: BatchStateIds | None = None
    """Optional fast path for :func:`~agentmc.rl.states.state_ids` (see :data:`BatchStateIds`)."""

    def texts(self, task: str, steps: Sequence[tuple[str, str]]) -> list[str]:
        """The ``T + 1`` state texts of a rollout (before each step, then the final one)."""
        state = self.start(task)
        out = [self.render(state)]
        for action, observation in steps:
            state = self.advance(state, action, observation)
            out.append(self.render(state))
        return out


@dataclass(frozen=True, slots=True, eq=False)
class StateIds:
    """The states of a batch of rollouts as integers: equal ids <=> equal state keys.

    The estimators only ask whether two states are the same, so integer ids do
    for them what the keys do, without building one key per step.

    Attributes:
        flat: Every rollout's ``T_i + 1`` ids, one rollout after the other.
        lengths: Steps ``T_i`` of each rollout, shape ``(n_rollouts,)``.
        n_states: Distinct states in the batch: ids are ``0 .. n_states - 1``
            (in order of first appearance, unless a fast path numbers them
            otherwise).
        key: Id -> that state's key, exactly as :func:`~agentmc.rl.states.state_keys` gives it
            (built on demand).
    """

    flat: IntArray
    lengths: IntArray
    n_states: int
    key: Callable[[int], Hashable]

    @property
    def ids(self) -> tuple[IntArray, ...]:
        """Per rollout, its ``T_i + 1`` ids."""
        if len(self.lengths) == 0:
            return ()
        return tuple(np.split(self.flat, np.cumsum(self.lengths + 1)[:-1]))


# -- Experts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpertPlan:
    """What an environment's scripted expert makes of a conversation.

    Attributes:
        plan: The actions the expert would play from here, in order; the first
            is its next move. Empty: it sees no way on (the noisy expert then
            wastes the step).
        done: Whether the task is already achieved (a critic reads this as value 1).
        valid_actions: Valid-looking actions read off the task, for a random
            slip when the environment lists no candidates (called only then).
        waste: ``waste(rng) -> action``, a step that does no harm but no good;
            without it a wasted step is a random valid action.
        mistake: ``mistake(rng) -> action``, a plausible wrong move; without it
            a mistake is a random valid action.
    """

    plan: tuple[str, ...]
    done: bool = False
    valid_actions: Callable[[], Sequence[str]] | None = None
    waste: Callable[[np.random.Generator], str] | None = None
    mistake: Callable[[np.random.Generator], str] | None = None


Expert = Callable[[str, Sequence[tuple[str, str]]], "ExpertPlan | None"]
"""``expert(task, steps) -> ExpertPlan | None``: the task text and the
``(action, observation)`` steps so far (actions already parsed out of the
replies) to the expert's plan, or ``None`` if the task is not one of its
environment's (the noisy expert asks each registered expert in turn)."""
