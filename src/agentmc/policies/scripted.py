"""Policies with exactly known action probabilities, for tests and exact oracles.

``ScriptedPolicy`` wraps a function from the conversation to a distribution
over actions; it samples from it with a generator seeded by the ``seed``
argument, and reports each sample's exact log-probability. ``RandomPolicy``
picks uniformly among the environment's candidate actions. Both are stand-ins
(``synthetic = True``) and are labelled so in every record.

Example:
    >>> import asyncio
    >>> policy = ScriptedPolicy(lambda messages: {"left": 0.25, "right": 0.75})
    >>> replies = asyncio.run(policy.complete((), n=3, seed=0))
    >>> sorted({c.text for c in replies}) <= ["left", "right"]
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from agentmc.errors import ConfigError
from agentmc.policies.core import Completion
from agentmc.types import Message, Usage

ActionTable = Callable[[Sequence[Message]], Mapping[str, float]]


def _sample(
    probabilities: Mapping[str, float], n: int, seed: int | None, temperature: float
) -> list[Completion]:
    actions = sorted(probabilities)  # sorted: sampling must not depend on dict order
    p = np.array([probabilities[a] for a in actions], dtype=float)
    if not actions or np.any(p < 0) or not np.isfinite(p).all() or p.sum() <= 0:
        raise ConfigError(f"scripted policy returned an invalid distribution: {probabilities}")
    p = p / p.sum()
    if temperature != 1.0:
        if temperature <= 0:
            p = (p == p.max()).astype(float)
        else:
            p = np.where(p > 0, p ** (1.0 / temperature), 0.0)
        p = p / p.sum()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(actions), size=n, p=p)
    return [
        Completion(actions[i], math.log(p[i]), Usage(calls=1 if k == 0 else 0))
        for k, i in enumerate(picks)
    ]


class ScriptedPolicy:
    """A policy whose action distribution is given by a function of the conversation.

    Args:
        table: Maps the conversation so far to ``{action: probability}``
            (probabilities are normalised).
        name: Label recorded with runs.
    """

    synthetic = True

    def __init__(self, table: ActionTable, name: str = "scripted") -> None:
        self.table = table
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
        return _sample(self.table(messages), n, seed, temperature)


class RandomPolicy:
    """Uniform over the candidate actions the environment offers."""

    synthetic = True

    def __init__(self, name: str = "random") -> None:
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
        if not candidates:
            raise ConfigError("RandomPolicy needs an environment that offers valid_actions()")
        return _sample(dict.fromkeys(candidates, 1.0), n, seed, 1.0)
