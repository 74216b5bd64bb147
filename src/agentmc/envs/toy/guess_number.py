"""Guess the number: the smallest useful text environment, for tests and docs.

Task ``i`` hides the number ``i + 1`` in ``1..high``. The agent says
``guess K`` (a bare ``K`` works too) and hears ``Higher.``, ``Lower.`` or
``Correct!`` (reward 1.0, terminated). Anything else gets a hint and costs a
step. ``max_steps`` caps the episode (truncated). Deterministic; snapshots
are immutable :class:`GuessNumberState` values.

Splits: task ``i`` is in ``test`` when ``i % 5 == 0``, in ``validation`` when
``i % 5 == 1``, otherwise in ``train``.

Example:
    >>> env = GuessNumberEnv("6")
    >>> env.reset()[0]
    'I am thinking of a number from 1 to 16. Say "guess N".'
    >>> env.step("guess 4").observation, env.step("7")[1:3]
    ('Higher.', (1.0, True))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agentmc.envs.core import StepResult
from agentmc.envs.registry import unknown_task
from agentmc.errors import ConfigError

__all__ = ["GuessNumberEnv", "GuessNumberState", "list_task_ids", "make_guess_number"]

_GUESS = re.compile(r"^\s*(?:guess\s+)?(\d{1,6})\s*[.!]?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class GuessNumberState:
    """Snapshot: the task's secret, steps taken and the end flags."""

    secret: int
    steps: int = 0
    terminated: bool = False
    truncated: bool = False


class GuessNumberEnv:
    """Find the secret number from higher/lower hints.

    Args:
        task_id: ``"0"`` .. ``str(high - 1)``; the secret is ``task_id + 1``.
        high: Numbers range over ``1..high``.
        max_steps: Step cap (truncation).

    Raises:
        UnknownNameError: If ``task_id`` is out of range.
        ConfigError: If ``high`` or ``max_steps`` is not a positive integer.
    """

    env_id = "guess-number"

    def __init__(self, task_id: str | int = "0", *, high: int = 16, max_steps: int = 6) -> None:
        if not isinstance(high, int) or high < 1:
            raise ConfigError(f"high={high!r}: use a positive integer (e.g. 16)")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigError(f"max_steps={max_steps!r}: use a positive integer (e.g. 6)")
        valid = list_task_ids("all", high=high)
        text = str(task_id).strip()
        if text not in valid:
            raise unknown_task(self.env_id, task_id, valid)
        self.task_id = text
        self.high = high
        self.max_steps = max_steps
        self._state = GuessNumberState(int(text) + 1)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start over (deterministic: ``seed`` is unused)."""
        if options:
            raise ConfigError(f"guess-number reset: unknown options {sorted(options)}; pass none")
        self._state = GuessNumberState(self._state.secret)
        text = f'I am thinking of a number from 1 to {self.high}. Say "guess N".'
        return text, {"task_id": self.task_id, "max_steps": self.max_steps}

    def step(self, action: str) -> StepResult:
        state = self._state
        if state.terminated or state.truncated:
            over = {"success": state.terminated, "steps": state.steps}
            return StepResult("The game is over.", 0.0, state.terminated, state.truncated, over)
        steps = state.steps + 1
        match = _GUESS.match(action) if isinstance(action, str) else None
        guess = int(match.group(1)) if match else None
        if guess is None or not 1 <= guess <= self.high:
            observation = f'Say "guess N" with N a whole number from 1 to {self.high}.'
        elif guess < state.secret:
            observation = "Higher."
        elif guess > state.secret:
            observation = "Lower."
        else:
            observation = f"Correct! The number was {state.secret}."
        success = guess == state.secret
        truncated = not success and steps >= self.max_steps
        self._state = GuessNumberState(state.secret, steps, success, truncated)
        info: dict[str, Any] = {"steps": steps}
        if success or truncated:
            info["success"] = success
        return StepResult(observation, 1.0 if success else 0.0, success, truncated, info)

    def snapshot(self) -> GuessNumberState:
        return self._state

    def restore(self, snapshot: GuessNumberState) -> None:
        if not isinstance(snapshot, GuessNumberState) or snapshot.secret != self._state.secret:
            raise ConfigError("cannot restore a snapshot from another task into guess-number")
        self._state = snapshot

    def valid_actions(self) -> list[str]:
        return [f"guess {k}" for k in range(1, self.high + 1)]

    def close(self) -> None:
        """Nothing to release."""


def list_task_ids(split: str = "all", *, high: int = 16, **_: object) -> list[str]:
    """Task ids of ``split`` for numbers ``1..high`` (other options are ignored)."""
    ids = range(high)
    if split == "test":
        ids = range(0, high, 5)
    elif split == "validation":
        ids = range(1, high, 5)
    elif split == "train":
        ids = [i for i in range(high) if i % 5 > 1]  # type: ignore[assignment]
    return [str(i) for i in ids]


def make_guess_number(
    task_id: str | int = "0", *, high: int = 16, max_steps: int = 6
) -> GuessNumberEnv:
    """Registry factory: ``make("guess-number", task_id=..., high=..., max_steps=...)``."""
    return GuessNumberEnv(task_id, high=high, max_steps=max_steps)
