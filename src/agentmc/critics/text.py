r"""What a critic reads: the task text plus the last N turns of a history.

Two views of the same window:

- :func:`render` gives one string (for models that read text: the LoRA
  critic, the LLM judge). The step number is written out because how many
  steps are left matters for the value under a step cap.
- :func:`segments` gives the parts separately: the task, each turn in the
  window as ``"> reply\\nobservation"``, and the step number. Backends that embed
  or hash text (hashed n-grams, sentence embeddings) featurize each part once
  and cache it: the task text is shared by every state of a task, and a turn
  stays in the window for N consecutive states, so scoring a new particle
  state costs one new turn, not a whole transcript.

Example:
    >>> from agentmc.critics.core import History
    >>> from agentmc.types import Message
    >>> h = History("Goal: craft stick.", (Message("assistant", "get 1 oak log"),
    ...                                    Message("user", "Got 1 oak log")))
    >>> print(render(h, last_turns=10))
    TASK: Goal: craft stick.
    STEP 1
    > get 1 oak log
    Got 1 oak log
    >>> segments(h, last_turns=10).turns
    ('> get 1 oak log\nGot 1 oak log',)
"""

from __future__ import annotations

from dataclasses import dataclass

from agentmc.critics.core import History

DEFAULT_LAST_TURNS = 10


@dataclass(frozen=True, slots=True)
class Segments:
    r"""A history window split into parts.

    Attributes:
        task: The task text.
        turns: The last N turns, oldest first, each ``"> reply\\nobservation"``.
        step: Number of turns taken so far (the whole history, not just the window).
    """

    task: str
    turns: tuple[str, ...]
    step: int


def turn_text(reply: str, observation: str) -> str:
    """One turn as text: the agent's reply after ``>``, then the observation."""
    return f"> {reply.strip()}\n{observation.strip()}"


def segments(history: History, last_turns: int = DEFAULT_LAST_TURNS) -> Segments:
    """Split ``history`` into task, last ``last_turns`` turns and step count.

    Args:
        history: The state to describe.
        last_turns: Window size N (``0`` keeps no turn, only the step count).
    """
    pairs = history.turns()
    window = pairs[max(0, len(pairs) - last_turns) :] if last_turns > 0 else []
    return Segments(
        task=history.task.strip(),
        turns=tuple(turn_text(reply, obs) for reply, obs in window),
        step=history.n_turns,
    )


def render(history: History, last_turns: int = DEFAULT_LAST_TURNS) -> str:
    r"""The history window as one string: task, step number, last turns.

    Args:
        history: The state to describe.
        last_turns: Window size N.

    Returns:
        ``"TASK: ...\\nSTEP t\\n> reply\\nobservation\\n..."``. When turns were
        left out, a line says how many, so the reader knows the window is partial.
    """
    parts = segments(history, last_turns)
    lines = [f"TASK: {parts.task}", f"STEP {parts.step}"]
    hidden = len(history.turns()) - len(parts.turns)
    if hidden > 0:
        lines.append(f"({hidden} earlier turns not shown)")
    lines.extend(parts.turns)
    return "\n".join(lines)
