"""The text-environment contract: Gymnasium's names and semantics, speaking text.

An environment is one task instance. ``reset`` returns the task text (the first
observation) and an info dict; ``step`` takes the agent's action string and
returns a :class:`StepResult`. A malformed action is never an exception: the
environment answers with feedback text and a zero reward.

``terminated`` (the task ended: success or failure) is kept apart from
``truncated`` (the step cap cut the episode short) because value targets
bootstrap only on truncation.

SMC needs one addition to Gymnasium: ``snapshot()`` returns an opaque,
immutable value and ``restore(snapshot)`` puts the environment back in that
state, so particles can fork without replaying history. A snapshot must stay
valid after the environment moves on, and restoring it into *another* instance
of the same task must work too (that is how clones are made).

Example:
    >>> from agentmc.envs import make
    >>> env = make("textcraft", task_id="0")
    >>> observation, info = env.reset(seed=0)
    >>> saved = env.snapshot()
    >>> result = env.step("inventory")
    >>> env.restore(saved)
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable


class StepResult(NamedTuple):
    """What ``step`` returns; unpacks like Gymnasium's 5-tuple."""

    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


@runtime_checkable
class TextEnv(Protocol):
    """A multi-turn text task that can be forked.

    Attributes:
        env_id: Registered environment name, e.g. ``"textcraft"``.
        task_id: The task this instance plays.
    """

    env_id: str
    task_id: str

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start the task; returns the task text and an info dict."""
        ...

    def step(self, action: str) -> StepResult:
        """Apply one action; never raises on a malformed action string."""
        ...

    def snapshot(self) -> Any:
        """An immutable value that ``restore`` accepts, O(state) to make."""
        ...

    def restore(self, snapshot: Any) -> None:
        """Return to the state captured by ``snapshot``."""
        ...

    def close(self) -> None:
        """Release resources (processes, connections)."""
        ...


def valid_actions(env: TextEnv) -> list[str] | None:
    """The environment's candidate actions, or ``None`` if it does not offer them.

    An environment offers them with a ``valid_actions()`` method; the method may
    return ``None`` to decline (e.g. ScienceWorld, where listing them is slow,
    unless asked for).
    """
    method = getattr(env, "valid_actions", None)
    actions = None if method is None else method()
    return None if actions is None else list(actions)
