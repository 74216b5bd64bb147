"""What "the same state" means for a text environment: state folds and state keys.

Graph-based credit assignment (G2PO) and step grouping (GiGPO) merge the steps
of different rollouts that stand in *the same state*. A text environment only
shows observations, and an observation alone can alias different states: in
TextCraft, "Got 1 oak log" is printed whatever else the agent carries. So a
state is identified in two stages:

1. A :class:`StateSpace` folds a rollout's history into *state texts*: ``start``
   turns the task text into the initial state, ``advance`` applies one
   ``(action, observation)`` step, ``render`` writes a state as text. A fold
   gives the ``T + 1`` states of a rollout in ``O(T)`` and lets a live agent
   track its state step by step. The default state is the latest observation
   (the task text first); an environment can register a fold that keeps what
   actually determines the future (TextCraft: the goal and the inventory).
2. A :data:`StateKey` canonicalises one state text into a hashable key. The
   default lower-cases, collapses whitespace and drops step counters
   ("step 3/40", "(12 steps left)"), which otherwise make every state unique.

For a batch of rollouts, :func:`state_ids` numbers the states instead of
keying them: equal ids <=> equal keys. The estimators only ask whether two
states are the same, so ids serve them as well as keys, and an environment can
register a vectorised way to compute them (:data:`BatchStateIds`; TextCraft's
is in :mod:`agentmc.rl.textcraft_state`), far cheaper than a fold and a key
per step.

Both are looked up per environment in :data:`STATE_SPACES`; environments
without an entry get the defaults. A fold or key that raises is reported as a
:class:`~agentmc.errors.DataError` naming the environment and the step.

Example:
    >>> normalize_text("  You are in the KITCHEN.  Step 3/40 ")
    'you are in the kitchen.'
    >>> state_keys("my-env", "Find the key.", [("look", "A room."), ("wait", "A  room.")])
    ['find the key.', 'a room.', 'a room.']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmc.errors import ConfigError, DataError
from agentmc.types import IntArray

StateKey = Callable[[str], Hashable]
"""Canonicalises one state text into a hashable key."""


BatchStateIds = Callable[
    [Sequence[str], Sequence[int], Sequence[str], Sequence[str]], "StateIds | None"
]
"""``(tasks, lengths, actions, observations) -> StateIds | None``: a batch of
rollouts as flat columns (one task and one length per rollout, then every
step's action and observation, rollout after rollout) to state ids that
partition the states exactly as their keys do, or ``None`` to decline."""


_STEP_COUNTERS = (
    re.compile(r"\(\s*\d+\s*/\s*\d+\s*\)"),
    re.compile(r"\b(?:step|turn|move|round)\s*[:#=]?\s*\d+(?:\s*(?:/|of)\s*\d+)?\b[.:,]?"),
    re.compile(r"\b\d+\s*(?:steps?|turns?|moves?|rounds?)\s*(?:left|remaining)\b[.:,]?"),
    re.compile(r"\b(?:steps?|turns?|moves?)\s*(?:left|remaining)\s*[:=]?\s*\d+\b[.:,]?"),
)
_SPACES = re.compile(r"\s+")
# Each pattern above (and the empty-brackets one in normalize_text) needs "(" or
# one of the words "step", "turn", "move", "round": without them, only spaces change.


def normalize_text(text: str) -> str:
    r"""The default :data:`StateKey`: lower-case, no step counters, single spaces.

    Args:
        text: One state text.

    Returns:
        The canonical string.

    Example:
        >>> normalize_text("Turn 7: Nothing happens.\n(3 steps left)")
        'nothing happens.'
    """
    out = text.lower()
    if not ("(" in out or "step" in out or "turn" in out or "move" in out or "round" in out):
        return " ".join(out.split())  # none of the patterns can match: spaces only
    for pattern in _STEP_COUNTERS:
        out = pattern.sub(" ", out)
    out = re.sub(r"\(\s*\)", " ", out)
    return _SPACES.sub(" ", out).strip()


def _latest_observation(state: Any, action: str, observation: str) -> str:
    return observation


@dataclass(frozen=True, slots=True)
class StateSpace:
    """How one environment's rollouts map to states and state keys.

    Attributes:
        start: Task text -> initial state (any value).
        advance: ``(state, action, observation)`` -> next state. Must not mutate ``state``.
        render: State -> state text.
        key: State text -> hashable key (see :data:`StateKey`).
        description: One line saying what a state is, for logs and docs.
    """

    start: Callable[[str], Any] = str
    advance: Callable[[Any, str, str], Any] = _latest_observation
    render: Callable[[Any], str] = str
    key: StateKey = normalize_text
    description: str = "the latest observation, normalised"
    batch: BatchStateIds | None = None
    """Optional fast path for :func:`state_ids` (see :data:`BatchStateIds`)."""

    def texts(self, task: str, steps: Sequence[tuple[str, str]]) -> list[str]:
        """The ``T + 1`` state texts of a rollout (before each step, then the final one)."""
        state = self.start(task)
        out = [self.render(state)]
        for action, observation in steps:
            state = self.advance(state, action, observation)
            out.append(self.render(state))
        return out


DEFAULT_STATE_SPACE = StateSpace()

#: environment id -> its state space; unregistered environments use the default.
STATE_SPACES: dict[str, StateSpace] = {}


def register_state_space(env_id: str, space: StateSpace) -> StateSpace:
    """Register how states of ``env_id`` are identified; returns ``space``."""
    if not env_id:
        raise ConfigError("env_id must be a non-empty string")
    STATE_SPACES[env_id] = space
    return space


def get_state_space(env_id: str) -> StateSpace:
    """The registered state space of ``env_id``, or the default one."""
    _register_builtin()
    return STATE_SPACES.get(env_id, DEFAULT_STATE_SPACE)


def state_texts(
    env_id: str,
    task: str,
    steps: Sequence[tuple[str, str]],
    space: StateSpace | None = None,
) -> list[str]:
    """The ``T + 1`` state texts of one rollout.

    Raises:
        DataError: The state fold raised (the message names the environment).
    """
    space = get_state_space(env_id) if space is None else space
    try:
        texts = space.texts(task, steps)
    except Exception as error:  # user-supplied fold: report it, naming the env
        raise DataError(
            f"state fold for environment {env_id!r} failed on a rollout of "
            f"{len(steps)} steps: {type(error).__name__}: {error}"
        ) from error
    return texts


def state_keys(
    env_id: str,
    task: str,
    steps: Sequence[tuple[str, str]],
    space: StateSpace | None = None,
) -> list[Hashable]:
    """The ``T + 1`` state keys of one rollout.

    Args:
        env_id: Environment name; selects the registered :class:`StateSpace`.
        task: The task text (first observation).
        steps: ``(action, observation)`` pairs, in order.
        space: Override the registered state space.

    Returns:
        One key before each step and one after the last.

    Raises:
        DataError: The state fold or the key function raised (the message names the
            environment and the step), or a key is not hashable.
    """
    space = get_state_space(env_id) if space is None else space
    keys: list[Hashable] = []
    for index, text in enumerate(state_texts(env_id, task, steps, space)):
        try:
            key = space.key(text)
            hash(key)
        except Exception as error:  # a user-supplied key: report it, naming the env
            raise DataError(
                f"state key for environment {env_id!r} failed at state {index} "
                f"({text[:60]!r}): {type(error).__name__}: {error}"
            ) from error
        keys.append(key)
    return keys


@dataclass(frozen=True, slots=True, eq=False)
class StateIds:
    """The states of a batch of rollouts as integers: equal ids <=> equal state keys.

    The estimators only ask whether two states are the same, so integer ids do
    for them what the keys do, without building one key per step.

    Attributes:
        flat: Every rollout's ``T_i + 1`` ids, one rollout after the other.
        lengths: Steps ``T_i`` of each rollout, shape ``(n_rollouts,)``.
        n_states: Distinct states in the batch: ids are ``0 .. n_states - 1``
            (in order of first appearance, unless a fast path numbers them
            otherwise).
        key: Id -> that state's key, exactly as :func:`state_keys` gives it
            (built on demand).
    """

    flat: IntArray
    lengths: IntArray
    n_states: int
    key: Callable[[int], Hashable]

    @property
    def ids(self) -> tuple[IntArray, ...]:
        """Per rollout, its ``T_i + 1`` ids."""
        if len(self.lengths) == 0:
            return ()
        return tuple(np.split(self.flat, np.cumsum(self.lengths + 1)[:-1]))


def state_ids(
    env_id: str,
    rollouts: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    space: StateSpace | None = None,
) -> StateIds:
    """The states of many rollouts as integer ids, numbered over the whole batch.

    Without a ``batch`` fast path on the state space this is :func:`state_keys`
    per rollout, then one number per distinct key. With one (TextCraft has
    one), the ids come from it: the same partition of states, much faster.

    Args:
        env_id: Environment name; selects the registered :class:`StateSpace`.
        rollouts: ``(task, steps)`` per rollout, as :func:`state_keys` takes them.
        space: Override the registered state space.

    Returns:
        The ids, and the key of each id on demand.

    Raises:
        DataError: As :func:`state_keys`, or the fast path raised.

    Example:
        >>> batch = state_ids("my-env", [("Go.", [("look", "A room.")]),
        ...                              ("Go.", [("wait", "A  ROOM.")])])
        >>> [ids.tolist() for ids in batch.ids], batch.key(1)
        ([[0, 1], [0, 1]], 'a room.')
    """
    tasks = [task for task, _ in rollouts]
    lengths = [len(steps) for _, steps in rollouts]
    actions = [action for _, steps in rollouts for action, _ in steps]
    observations = [observation for _, steps in rollouts for _, observation in steps]
    return column_state_ids(env_id, tasks, lengths, actions, observations, space)


def column_state_ids(
    env_id: str,
    tasks: Sequence[str],
    lengths: Sequence[int],
    actions: Sequence[str],
    observations: Sequence[str],
    space: StateSpace | None = None,
) -> StateIds:
    """:func:`state_ids` for rollouts given as flat columns (see :data:`BatchStateIds`)."""
    space = get_state_space(env_id) if space is None else space
    if len(actions) != sum(lengths) or len(observations) != len(actions):
        raise DataError(
            f"{len(actions)} actions and {len(observations)} observations for rollouts "
            f"of {sum(lengths)} steps in all"
        )
    if space.batch is not None:
        try:
            fast = space.batch(tasks, lengths, actions, observations)
        except Exception as error:  # a user-supplied fast path: report it, naming the env
            raise DataError(
                f"state ids for environment {env_id!r} failed on a batch of "
                f"{len(tasks)} rollouts: {type(error).__name__}: {error}"
            ) from error
        if fast is not None:
            return fast
    table: dict[Hashable, int] = {}
    keys: list[Hashable] = []
    ids: list[int] = []
    stop = 0
    for task, length in zip(tasks, lengths, strict=True):
        start, stop = stop, stop + length
        steps = list(zip(actions[start:stop], observations[start:stop], strict=True))
        for key in state_keys(env_id, task, steps, space):
            index = table.get(key)
            if index is None:
                index = table[key] = len(keys)
                keys.append(key)
            ids.append(index)
    flat = np.asarray(ids, dtype=np.int64)
    return StateIds(flat, np.asarray(lengths, dtype=np.int64), len(keys), keys.__getitem__)


_BUILTIN_DONE = False


def _register_builtin() -> None:
    """Register the state spaces of the built-in environments (once, lazily)."""
    global _BUILTIN_DONE
    if _BUILTIN_DONE:
        return
    _BUILTIN_DONE = True
    from agentmc.rl.textcraft_state import TEXTCRAFT_STATE_SPACE

    STATE_SPACES.setdefault("textcraft", TEXTCRAFT_STATE_SPACE)
