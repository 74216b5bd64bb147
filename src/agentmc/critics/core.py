"""The critic contract: a batched value function over agent histories.

A critic estimates how much reward an agent can still expect from where it
stands, ``V(h)``. AMC calls it at every checkpoint for every particle, so the
contract is batched: ``values(histories) -> (B,)`` float64 array. A
:class:`History` is exactly what a particle holds: the task text and the
conversation after it (alternating assistant replies and user observations).

Training data comes from trajectories: :meth:`History.from_trajectory` gives the
state after the first ``t`` turns, the same value the sampler builds from a
live particle with :meth:`History.from_messages`.

Critics that talk to a model asynchronously (the LLM judge) also offer
``async avalues``; :func:`avalues` calls it when present, so async callers (the
SMC adapter) never block the event loop on them.

Example:
    >>> from agentmc.critics.baselines import ZeroCritic
    >>> h = History(task="Goal: craft stick.", messages=())
    >>> ZeroCritic().values([h, h])
    array([0., 0.])
    >>> h.n_turns
    0
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from agentmc.errors import DataError
from agentmc.types import FloatArray, Message

if TYPE_CHECKING:
    from agentmc.data.trajectory import Trajectory


@dataclass(frozen=True, slots=True)
class History:
    """What an agent has seen and done so far on one task.

    Attributes:
        task: The task text (the environment's first observation).
        messages: The conversation after the task message: assistant replies and
            user observations, alternating, starting with an assistant reply.
    """

    task: str
    messages: tuple[Message, ...] = ()

    @property
    def n_turns(self) -> int:
        """Number of agent turns taken (assistant messages)."""
        return sum(1 for message in self.messages if message.role == "assistant")

    def turns(self) -> list[tuple[str, str]]:
        """The history as ``(reply, observation)`` pairs, oldest first.

        A trailing reply without an observation yet gets an empty observation.
        System messages are ignored.
        """
        pairs: list[tuple[str, str]] = []
        for message in self.messages:
            if message.role == "assistant":
                pairs.append((message.content, ""))
            elif message.role == "user" and pairs and not pairs[-1][1]:
                pairs[-1] = (pairs[-1][0], message.content)
            elif message.role == "user":
                # Two observations in a row (e.g. an environment note): keep both.
                pairs.append(("", message.content))
        return pairs

    @classmethod
    def from_messages(cls, messages: Sequence[Message]) -> History:
        """Build a history from a full conversation whose first user message is the task.

        Leading system messages are dropped.

        Raises:
            DataError: If the conversation has no user message to take the task from.
        """
        rest = list(messages)
        while rest and rest[0].role == "system":
            rest.pop(0)
        if not rest or rest[0].role != "user":
            raise DataError(
                "a critic history needs the task as the first user message; "
                f"got roles {[m.role for m in messages][:4]}"
            )
        return cls(task=rest[0].content, messages=tuple(rest[1:]))

    @classmethod
    def from_trajectory(cls, trajectory: Trajectory, n_turns: int | None = None) -> History:
        """The state after the first ``n_turns`` turns of ``trajectory`` (default: all)."""
        return cls.from_messages(trajectory.messages(n_turns))


@runtime_checkable
class Critic(Protocol):
    """A batched value function.

    Attributes:
        name: Short label recorded with runs ("zero", "hashed", "judge", ...).
    """

    name: str

    def values(self, histories: Sequence[History]) -> FloatArray:
        """Estimated future return of each history, shape ``(len(histories),)``."""
        ...


async def avalues(critic: Critic, histories: Sequence[History], *, where: str = "") -> FloatArray:
    """Call ``critic.avalues`` when the critic has it, else ``critic.values``; check the result.

    The one place a critic's output is checked, wherever it is used (the sampler's
    value function, the deployable modes' final scores, selection by critic).

    Args:
        critic: Any critic.
        histories: B histories.
        where: Appended to error messages, e.g. ``" on task '3' at step 2"``.

    Returns:
        Values of shape ``(B,)``, float64.

    Raises:
        DataError: If the critic returns the wrong number of values, NaN or an infinity.
    """
    method = getattr(critic, "avalues", None)
    if method is not None and inspect.iscoroutinefunction(method):
        result = await method(histories)
    else:
        result = critic.values(histories)
    return as_values(result, len(histories), getattr(critic, "name", type(critic).__name__), where)


def as_values(result: object, n: int, name: str = "critic", where: str = "") -> FloatArray:
    """Check a critic's output: a finite float64 vector of length ``n``.

    Args:
        result: What the critic returned.
        n: How many histories it was given.
        name: The critic's name, for the message.
        where: Appended to the message, e.g. ``" on task '3' at step 2"``.

    Raises:
        DataError: If the shape is wrong or a value is not finite.
    """
    array = np.asarray(result, dtype=np.float64).reshape(-1)
    if array.shape != (n,):
        raise DataError(
            f"critic {name!r} returned {array.shape[0]} values for {n} histories{where}"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise DataError(
            f"critic {name!r} returned a non-finite value ({array[bad[0]]}){where}; "
            "fix or retrain the critic"
        )
    return array
