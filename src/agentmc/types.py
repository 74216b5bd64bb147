"""Shared vocabulary: chat messages, token usage and array aliases. No behaviour lives here.

A conversation is an immutable ``tuple[Message, ...]``; particles that share a
prefix share the same tuple objects, so cloning a particle never copies text.

Example:
    >>> m = Message("user", "Goal: craft stick.")
    >>> m.as_dict()
    {'role': 'user', 'content': 'Goal: craft stick.'}
    >>> (Usage(calls=1, prompt_tokens=10) + Usage(calls=1, cost=None)).calls
    2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message in OpenAI's shape."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}

    @classmethod
    def from_dict(cls, data: dict) -> Message:
        return cls(data["role"], data["content"])


@dataclass(frozen=True, slots=True)
class Usage:
    """Cost of policy calls. ``cost`` is ``None`` when unknown (never silently zero).

    Attributes:
        calls: Number of policy requests that returned an answer (one request may
            return several samples).
        prompt_tokens: Prompt tokens billed.
        completion_tokens: Completion tokens billed.
        cost: Cost in US dollars, or ``None`` if the price of some call is unknown.
        failed_attempts: Requests sent that gave no usable answer (each retried
            attempt, and the last attempt of a call that failed for good). The
            provider saw them; budgets count them unless told to count only answers.
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = 0.0
    failed_attempts: int = 0

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost is None or other.cost is None else self.cost + other.cost
        return Usage(
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            cost,
            self.failed_attempts + other.failed_attempts,
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def attempts(self) -> int:
        """Requests sent: answered ones plus failed attempts."""
        return self.calls + self.failed_attempts

    def as_dict(self) -> dict:
        out = {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
        }
        if self.failed_attempts:  # absent when zero: records of clean runs stay as they were
            out["failed_attempts"] = self.failed_attempts
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Usage:
        return cls(
            int(data.get("calls", 0)),
            int(data.get("prompt_tokens", 0)),
            int(data.get("completion_tokens", 0)),
            data.get("cost", 0.0),
            int(data.get("failed_attempts", 0)),
        )
