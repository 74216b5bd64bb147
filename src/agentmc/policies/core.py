"""The black-box agent contract.

A policy is anything with an async ``complete`` method: given the conversation
so far, return ``n`` sampled completions. AMC only ever *samples* from it, so
any chat model behind an HTTP API qualifies. Concurrency limits live inside the
policy (a semaphore, a rate limiter); callers simply ``asyncio.gather``.

``candidates`` is an optional hint: the environment's valid actions at this
turn. Policies that choose among candidates (the embedded model's ``choose``
mode, trained policies) use it; free-text policies ignore it.

Policies that are stand-ins for a real agent (scripted, replayed, the
synthetic noisy expert) set ``synthetic = True``; every run record and report
carries that label.

Example:
    >>> import asyncio
    >>> from agentmc.policies.scripted import ScriptedPolicy
    >>> policy = ScriptedPolicy(lambda messages: {"left": 0.5, "right": 0.5})
    >>> [c.text for c in asyncio.run(policy.complete((), n=2, seed=0))]  # doctest: +SKIP
    ['right', 'left']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from agentmc.types import Message, Usage


@dataclass(frozen=True, slots=True)
class Completion:
    """One sampled reply.

    Attributes:
        text: The raw reply text.
        logprob: Total log-probability of ``text`` under the policy, if known.
        usage: What producing this completion cost. When a request returns
            ``n`` samples, the request's usage is attached to the first one and
            the others carry zero, so summing never double counts.
    """

    text: str
    logprob: float | None = None
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class Policy(Protocol):
    """Anything that samples replies to a conversation.

    Attributes:
        name: Short label recorded with every run (model name, "noisy-expert", ...).
        synthetic: True for stand-ins (scripted, replay, synthetic agents).
    """

    name: str
    synthetic: bool

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        """Sample ``n`` replies. Raises ``PolicyError`` when the call fails for good."""
        ...
