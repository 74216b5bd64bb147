r"""Turn a model's free-text reply into one environment action.

Models wrap actions in prose, quotes, prompts and thoughts. ``parse_action``
takes the first line that looks like an action, after an ``Action:`` marker
when one is present (ReAct style), and strips prompt markers, list bullets,
quotes, backticks and trailing punctuation. A line ending in a colon is a
header ("Crafting commands:"), not an action. When the environment lists its
valid actions, a line that is one of them wins over any other line. A reply
with nothing usable is
returned as-is with ``parsed=False``: the environment then answers with its own
feedback, and the rollout counts it.

Example:
    >>> parse_action("Thought: I need planks first.\nAction: get 2 oak logs.")
    ('get 2 oak logs', True)
    >>> parse_action('> "craft 4 oak planks using 1 oak log"')
    ('craft 4 oak planks using 1 oak log', True)
    >>> parse_action("Crafting commands:\ncraft 4 stick using 2 planks")
    ('craft 4 stick using 2 planks', True)
    >>> parse_action("I will look.\ninventory", candidates=["inventory", "get 1 coal"])
    ('inventory', True)
    >>> parse_action("   ")
    ('', False)
    >>> conversation_steps([Message("assistant", "Action: look"), Message("user", "A room.")])
    [('look', 'A room.')]
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from agentmc.types import Message

_ACTION_MARKER = re.compile(r"^\s*(?:\*\*)?action(?:\*\*)?\s*[:：]\s*(?:\*\*)?", re.IGNORECASE)
_THOUGHT_MARKER = re.compile(r"^\s*(?:\*\*)?(?:thought|think|reasoning)(?:\*\*)?\s*[:：]", re.I)
_LEADING_NOISE = re.compile(r"^(?:>+|[-*•]\s+|\d+[.)]\s+|\$\s+)+\s*")
_HEADER = re.compile(r"^[^:]*[A-Za-z][^:]*:\s*(?:\*\*)?\s*$")  # "Crafting commands:"
_QUOTES = "\"'`“”‘’"
_TRAILING = ".!;,:。"


def _clean(line: str) -> str:
    line = _LEADING_NOISE.sub("", line.strip())
    line = line.strip().strip(_QUOTES).strip()
    line = line.rstrip(_TRAILING).strip().strip(_QUOTES).strip()
    return re.sub(r"\s+", " ", line)


def parse_action(reply: str, candidates: Sequence[str] | None = None) -> tuple[str, bool]:
    """Extract the action from a reply.

    Args:
        reply: Raw model output.
        candidates: The environment's valid actions, if it lists them: the
            first line that is one of them (after cleaning) is the action.

    Returns:
        ``(action, parsed)``: the cleaned action and whether one was found. When
        nothing is found, ``action`` is the stripped reply (possibly empty).
    """
    if candidates:
        valid = set(candidates)
        if reply in valid:  # the common case: a reply that is exactly a valid action
            return reply, True
        for line in reply.replace("\r", "").split("\n"):
            action = _clean(_ACTION_MARKER.sub("", line, count=1))
            if action in valid:
                return action, True
    return _parse(reply)


@functools.lru_cache(maxsize=8192)
def _parse(reply: str) -> tuple[str, bool]:
    """:func:`parse_action` without candidates, memoised (a pure function of ``reply``).

    SMC parses the same few replies for thousands of particles per step.
    """
    lines = [line for line in reply.replace("\r", "").split("\n") if line.strip()]
    for line in lines:  # an explicit "Action:" wins over everything else
        if _ACTION_MARKER.match(line):
            action = _clean(_ACTION_MARKER.sub("", line, count=1))
            if action:
                return action, True
    for line in lines:
        if _THOUGHT_MARKER.match(line) or _HEADER.match(line):
            continue
        action = _clean(line)
        if action and not action.startswith("```"):
            return action, True
    return reply.strip(), False


def conversation_steps(messages: Sequence[Message]) -> list[tuple[str, str]]:
    """The ``(action, observation)`` steps of a conversation after its task message.

    Each observation (a user message) is paired with the action parsed out of
    the latest reply (assistant message) before it; system messages and a
    reply still waiting for its observation are left out. This is the shape in
    which environment knowledge (state folds, experts) reads a history.

    Args:
        messages: The turns after the task, in order.

    Returns:
        One pair per observation.
    """
    steps: list[tuple[str, str]] = []
    action = ""
    for message in messages:
        if message.role == "assistant":
            action = parse_action(message.content)[0]
        elif message.role == "user":
            steps.append((action, message.content))
    return steps
