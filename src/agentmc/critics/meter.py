"""What scoring costs: a per-episode meter around any critic.

Equal-cost comparisons must count the critic too: an LLM judge makes one
request per history it scores (the paper's zero-shot SMC), and a trained
critic spends CPU time at every checkpoint. :class:`MeteredCritic` wraps a
critic for one episode (one method on one task) and counts:

- ``usage``: the judge's requests, tokens and dollars (critics that report
  them through ``avalues_with_usage``, such as
  :class:`~agentmc.critics.judge.JudgeCritic`); zero for trained critics;
- ``cpu_s``: CPU seconds of this thread spent inside synchronous scoring
  (``time.thread_time``, so other tasks sharing the process do not count);
- ``wall_s``: wall-clock seconds spent waiting for scores (all critics);
- ``histories``: histories scored.

The wrapper is itself a critic (same ``name``; other attributes such as
``provenance`` are passed through), so it drops into the sampler unchanged.
One wrapper per episode: a critic shared by concurrent episodes is metered
separately for each.

Example:
    >>> from agentmc.critics.baselines import ZeroCritic
    >>> from agentmc.critics.core import History
    >>> meter = MeteredCritic(ZeroCritic())
    >>> meter.values([History("Goal: craft stick.")]).tolist(), meter.histories
    ([0.0], 1)
    >>> meter.spend()["calls"]
    0
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import Any

from agentmc.critics.core import Critic, History
from agentmc.types import FloatArray, Usage


class MeteredCritic:
    """A critic that counts what it costs. See the module docstring.

    Args:
        critic: The critic to meter.
    """

    def __init__(self, critic: Critic) -> None:
        self.critic = critic
        self.name = getattr(critic, "name", type(critic).__name__)
        self.usage = Usage()
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self.histories = 0

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set in __init__ (provenance, config, ...).
        return getattr(self.__dict__["critic"], name)

    def values(self, histories: Sequence[History]) -> FloatArray:
        """The wrapped critic's values, timed."""
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return self.critic.values(histories)
        finally:
            self.cpu_s += time.thread_time() - cpu
            self.wall_s += time.perf_counter() - wall
            self.histories += len(histories)

    async def avalues(self, histories: Sequence[History]) -> FloatArray:
        """The wrapped critic's values without blocking the loop; judge usage counted.

        Passed on unchecked: the caller checks them once, with its own context
        (:func:`agentmc.critics.core.avalues`).
        """
        wall = time.perf_counter()
        try:
            scored = getattr(self.critic, "avalues_with_usage", None)
            if scored is not None:
                values, usage = await scored(histories)
                self.usage = self.usage + usage
                return values
            method = getattr(self.critic, "avalues", None)
            if inspect.iscoroutinefunction(method):
                return await method(histories)
            cpu = time.thread_time()
            try:
                return self.critic.values(histories)
            finally:
                self.cpu_s += time.thread_time() - cpu
        finally:
            self.wall_s += time.perf_counter() - wall
            self.histories += len(histories)

    def spend(self) -> dict[str, Any]:
        """JSON-safe totals.

        Returns:
            ``calls``, ``prompt_tokens``, ``completion_tokens``, ``cost`` (the judge's),
            ``cpu_s``, ``wall_s`` and ``histories``.
        """
        return {
            **self.usage.as_dict(),
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
            "histories": self.histories,
        }
