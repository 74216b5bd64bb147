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
is in :mod:`agentmc.envs.textcraft.state`), far cheaper than a fold and a key
per step.

An environment supplies its state space with its registry entry
(``agentmc.envs.register(..., state_space=...)``), so this module imports no
environment; :func:`get_state_space` looks it up there (importing the
environment's module on first use). :func:`register_state_space` overrides it
for any environment id. Environments with neither get the defaults. The types
(:class:`StateSpace`, :class:`StateIds`, :func:`normalize_text`) live in
:mod:`agentmc.envs.knowledge` and are re-exported here. A fold or key that raises is reported as a
:class:`~agentmc.errors.DataError` naming the environment and the step.

Example:
    >>> normalize_text("  You are in the KITCHEN.  Step 3/40 ")
    'you are in the kitchen.'
    >>> state_keys("my-env", "Find the key.", [("look", "A room."), ("wait", "A  room.")])
    ['find the key.', 'a room.', 'a room.']
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from agentmc.envs.knowledge import BatchStateIds, StateIds, StateKey, StateSpace, normalize_text
from agentmc.envs.registry import knowledge
from agentmc.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_STATE_SPACE",
    "STATE_SPACES",
    "BatchStateIds",
    "StateIds",
    "StateKey",
    "StateSpace",
    "column_state_ids",
    "get_state_space",
    "normalize_text",
    "register_state_space",
    "state_ids",
    "state_keys",
    "state_texts",
]

DEFAULT_STATE_SPACE = StateSpace()

#: environment id -> a state space that overrides the one its registry entry names.
STATE_SPACES: dict[str, StateSpace] = {}


def register_state_space(env_id: str, space: StateSpace) -> StateSpace:
    """Identify the states of ``env_id`` with ``space`` (over its registry entry's); returns it.

    An environment of your own can instead pass ``state_space=`` to
    :func:`agentmc.envs.register`; this function also works for ids that are
    not registered environments.
    """
    if not env_id:
        raise ConfigError("env_id must be a non-empty string")
    STATE_SPACES[env_id] = space
    return space


def get_state_space(env_id: str) -> StateSpace:
    """The state space of ``env_id``: registered here, else its registry entry's, else the default.

    Raises:
        MissingExtraError: The environment's module cannot be imported.
    """
    space = STATE_SPACES.get(env_id)
    if space is None:
        space = knowledge(env_id, "state_space")
    return DEFAULT_STATE_SPACE if space is None else space


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

