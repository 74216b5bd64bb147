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

A *remote* environment (a proxy to one that lives elsewhere, such as the Ray
executor's ``RemoteEnv``) keeps the synchronous methods, one round trip each, and
adds awaitable forms: ``async astep`` (that coroutine is what makes it remote,
:func:`is_remote`) and optionally ``async areset`` and ``async aadvance(moves)``,
which makes many particle moves in one round trip. The agent
loop and the SMC adapter go through :func:`areset`, :func:`astep` and
:func:`aadvance` below, so both treat remote environments the same way: awaited,
so other episodes' policy calls go on meanwhile.

Example:
    >>> from agentmc.envs import make
    >>> env = make("textcraft", task_id="0")
    >>> observation, info = env.reset(seed=0)
    >>> saved = env.snapshot()
    >>> result = env.step("inventory")
    >>> env.restore(saved)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
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


#: What one environment move returns: the step's result, the new snapshot, its valid actions.
Moved = tuple[StepResult, Any, "tuple[str, ...] | None"]


def is_remote(env: TextEnv) -> bool:
    """Whether ``env`` is a proxy to an environment elsewhere: it has a coroutine ``astep``."""
    return inspect.iscoroutinefunction(getattr(env, "astep", None))


async def areset(env: TextEnv, *, seed: int | None = None) -> tuple[str, dict[str, Any]]:
    """``env.areset`` when the environment has a coroutine one, else ``env.reset``.

    A remote environment (a coroutine ``astep``) may still reset synchronously.
    """
    method = getattr(env, "areset", None)
    if inspect.iscoroutinefunction(method):
        return await method(seed=seed)
    return env.reset(seed=seed)


async def astep(env: TextEnv, action: str) -> StepResult:
    """``env.step``, awaited when the environment is remote."""
    return await env.astep(action) if is_remote(env) else env.step(action)  # type: ignore[attr-defined]


def advance_env(env: TextEnv, moves: Sequence[tuple[Any, str]]) -> list[Moved]:
    """Move ``env`` once per ``(snapshot, action)``: restore, step, snapshot, valid actions.

    Identical moves (clones of one parent, i.e. the same snapshot object, taking the
    same action) are stepped once and share the outcome: environments are
    deterministic given a snapshot and an action (``check_env`` tests it), and for
    one that restores by replaying (an HTTP environment) each step saved is a round
    trip. Used by the SMC adapter and inside Ray actors. The environment is left in
    the state of the last move stepped.

    Returns:
        ``(result, new snapshot, valid actions or None)`` per move, in order.
    """
    done: dict[tuple[int, str], Moved] = {}
    out: list[Moved] = []
    for snapshot, action in moves:
        key = (id(snapshot), action)
        moved = done.get(key)
        if moved is None:
            env.restore(snapshot)
            result = env.step(action)
            actions = valid_actions(env)
            moved = (result, env.snapshot(), None if actions is None else tuple(actions))
            done[key] = moved
        out.append(moved)
    return out


async def aadvance(env: TextEnv, moves: Sequence[tuple[Any, str]]) -> list[Moved]:
    """:func:`advance_env` for a remote environment, without blocking the event loop.

    In one round trip when it has ``aadvance``; otherwise its synchronous methods
    run in a worker thread, one whole phase per hop.
    """
    batched = getattr(env, "aadvance", None)
    if inspect.iscoroutinefunction(batched):
        return list(await batched(moves))  # type: ignore[misc]
    return await asyncio.to_thread(advance_env, env, moves)
