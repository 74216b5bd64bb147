r"""TextCraft's state for graph credit assignment: the goal and the inventory.

TextCraft's observations alias states badly: "Got 1 oak logs" is printed
whatever else the agent holds, and "Inventory: ..." only when asked. What
determines the rest of an episode is the goal and the inventory (plus the step
count, deliberately left out: states that differ only in how long it took to
reach them are the same state for credit assignment). This fold rebuilds the
inventory from the transcript alone, so it works on stored trajectories and
inside a live policy, without access to the environment:

- ``Got N item``: add ``N item``;
- ``Crafted N item``: add ``N item`` and remove the inputs the action named
  (a successful craft used exactly those);
- ``Inventory: [a] (n) ...``: replace the inventory with the listing;
- anything else (failed commands, feedback): no change.

The state text is ``goal: ...``, ``inventory: ...`` and ``last: <latest
observation>`` lines. The key keeps the goal and inventory lines only, so the
same inventory reached by different paths is one node.

:func:`batch_ids` does the same fold for a whole batch with arrays (the
inventory as a vector, all rollouts one time step at a time) and numbers the
states, for :func:`~agentmc.rl.states.state_ids`: same partition, about 20
times faster than folding and keying step by step.

The fold is also TextCraft's one reading of its own observations: the
scripted expert (:mod:`agentmc.envs.textcraft.expert`) tracks what it holds
with :func:`advance`. Registered as the ``state_space`` of ``textcraft``
(:func:`agentmc.envs.register`), so :mod:`agentmc.rl` finds it by id.

Example:
    >>> task = "craft 1 stick using 2 oak planks\n\nGoal: craft stick."
    >>> texts = TEXTCRAFT_STATE_SPACE.texts(task, [
    ...     ("get 2 oak planks", "Got 2 oak planks"),
    ...     ("craft 1 stick using 2 oak planks", "Crafted 1 stick")])
    >>> print(texts[1])
    goal: stick
    inventory: oak planks 2
    last: Got 2 oak planks
    >>> textcraft_key(texts[2])
    ('stick', (('stick', 1),))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from agentmc._arrays import lookup, unique_first, unique_inverse
from agentmc.envs.knowledge import StateIds, StateSpace
from agentmc.envs.textcraft.commands import Craft, parse_command
from agentmc.envs.textcraft.recipes import name_key
from agentmc.types import IntArray

_GOAL = re.compile(r"goal:\s*craft\s+(.+?)\.?\s*$", re.IGNORECASE | re.MULTILINE)
_GOT = re.compile(r"^got (\d+) (.+?)\s*$", re.IGNORECASE)
_CRAFTED = re.compile(r"^crafted (\d+) (.+?)\s*$", re.IGNORECASE)
_LISTED = re.compile(r"\[([^\]]+)\]\s*\((\d+)\)")
# The first three letters, lower-cased, of the observations advance() acts on
# ("Got ...", "Crafted ...", "Inventory: ..."); others change nothing.
_CHANGING = frozenset(("got", "cra", "inv"))


@dataclass(frozen=True, slots=True)
class CraftState:
    """Goal, inventory (sorted ``(item, count)`` pairs) and the latest observation."""

    goal: str
    inventory: tuple[tuple[str, int], ...] = ()
    last: str = ""


def start(task: str) -> CraftState:
    """The initial state: the goal from the task's ``Goal: craft X.`` line, nothing held."""
    matches = _GOAL.findall(task)
    return CraftState(name_key(matches[-1]) if matches else "", (), "")


def advance(state: CraftState, action: str, observation: str) -> CraftState:
    """Apply one step's observation (and, for a successful craft, its action)."""
    text = observation.strip()
    held = dict(state.inventory)
    if match := _GOT.match(text):
        item = name_key(match.group(2))
        held[item] = held.get(item, 0) + int(match.group(1))
    elif match := _CRAFTED.match(text):
        command = parse_command(action)
        if isinstance(command, Craft):
            for name, n in command.inputs:
                held[name] = held.get(name, 0) - n
        item = name_key(match.group(2))
        held[item] = held.get(item, 0) + int(match.group(1))
    elif text.lower().startswith("inventory:"):
        held = {name_key(name): int(n) for name, n in _LISTED.findall(text)}
    inventory = tuple(sorted((k, v) for k, v in held.items() if v > 0))
    return CraftState(state.goal, inventory, text)


def render(state: CraftState) -> str:
    """``goal: ...`` / ``inventory: item n, ...`` / ``last: ...`` lines."""
    held = ", ".join(f"{item} {n}" for item, n in state.inventory) or "nothing"
    return f"goal: {state.goal}\ninventory: {held}\nlast: {state.last}"


def textcraft_key(text: str) -> Hashable:
    """``(goal, ((item, count), ...))`` from a rendered state; the ``last`` line is ignored."""
    goal = ""
    inventory: tuple[tuple[str, int], ...] = ()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == "goal":
            goal = value.strip()
        elif name == "inventory" and value.strip() != "nothing":
            pairs = (part.strip().rsplit(" ", 1) for part in value.split(","))
            inventory = tuple(sorted((item, int(n)) for item, n in pairs))
    return goal, inventory


class _Decline(Exception):
    """Text the fast path does not reproduce exactly; the per-step fold takes over."""


def _item(name: str) -> str:
    """An item name the rendered state text keeps intact, else :class:`_Decline`."""
    if not name or "," in name or name != name.strip():
        raise _Decline
    return name


def _change(text: str, action: str, item: Callable[[str], str]) -> tuple[dict[str, int], bool]:
    """One step as ``({item: change}, replaces)``, exactly as :func:`advance` reads it.

    ``item`` turns a name as written into the item key (``name_key``, checked).
    """
    if len(text.splitlines()) > 1:  # would spill out of the "last:" line of the state text
        raise _Decline
    if match := _GOT.match(text):
        return {item(match.group(2)): int(match.group(1))}, False
    if match := _CRAFTED.match(text):
        change: dict[str, int] = {}
        command = parse_command(action)
        if isinstance(command, Craft):
            for name, n in command.inputs:  # already in name_key form
                change[_item(name)] = change.get(name, 0) - n
        made = item(match.group(2))
        change[made] = change.get(made, 0) + int(match.group(1))
        return change, False
    if text.lower().startswith("inventory:"):
        return {item(name): int(n) for name, n in _LISTED.findall(text)}, True
    return {}, False


def _hash_weights(n: int) -> IntArray:
    """Fixed random weights that hash an inventory row to one integer (mod 2**64)."""
    return np.random.default_rng(0).integers(1, 2**62, size=n)


def _advance_all(
    matrix: np.ndarray, padded: IntArray, replaces: np.ndarray, weights: IntArray
) -> tuple[np.ndarray, IntArray]:
    """Inventories ``(horizon + 1, rollouts, items)`` after each step, and their hashes.

    Step ``t`` of a rollout does ``inventory = max(inventory + change, 0)``
    with its row ``matrix[padded[t]]``, or ``max(change, 0)`` where
    ``replaces`` (a listing). The ``max`` only acts where an inventory would go
    negative, which real transcripts never do (a craft succeeds only with its
    inputs held): so the steps run without it, and again with it only if some
    count came out negative. Hashes: ``inventory @ weights`` mod ``2**64``,
    flat, time-major; without the ``max`` they follow the same linear steps,
    on one number per rollout instead of a row.
    """
    horizon, n_rollouts = padded.shape
    change, keep_row = matrix[padded], ~replaces[padded]  # keep_row: False where a listing
    keep = keep_row.astype(matrix.dtype)[:, :, None]
    states = np.zeros((horizon + 1, n_rollouts, matrix.shape[1]), dtype=matrix.dtype)
    for t in range(horizon):
        now = states[t + 1]
        np.multiply(states[t], keep[t], out=now)
        now += change[t]
    if states.min(initial=0) >= 0:
        step_hash = (matrix.astype(np.int64) @ weights)[padded]
        keep_hash = keep_row.astype(np.int64)
        hashed = np.zeros((horizon + 1, n_rollouts), dtype=np.int64)
        for t in range(horizon):
            now = hashed[t + 1]
            np.multiply(hashed[t], keep_hash[t], out=now)
            now += step_hash[t]
        return states, hashed.reshape(-1)
    for t in range(horizon):
        now = states[t + 1]
        np.multiply(states[t], keep[t], out=now)
        now += change[t]
        np.maximum(now, 0, out=now)
    return states, states.reshape(-1, states.shape[2]).astype(np.int64) @ weights


def batch_ids(
    tasks: Sequence[str],
    lengths: Sequence[int],
    actions: Sequence[str],
    observations: Sequence[str],
) -> StateIds | None:
    """TextCraft's :data:`~agentmc.envs.knowledge.BatchStateIds`: the fold on arrays.

    A state is its goal and its inventory, a vector over the items that
    rollouts of that goal ever name (columns are numbered per goal; states of
    different goals differ anyway). Each distinct observation is read once (a
    ``Crafted`` one once per distinct action) into a change of that vector;
    then all rollouts advance together, a few array operations per time step:
    ``inventory = max(inventory + change, 0)``, or ``max(listing, 0)`` for
    ``Inventory: ...`` (what :func:`advance` does to a dict; the ``max`` is
    applied only when some count would go negative, see :func:`_advance_all`).
    The rows are hashed to one integer by a fixed random projection, then
    every row is compared with the first row of its hash class, so a
    collision cannot merge two states (it falls back to sorting the rows
    themselves).

    Returns ``None`` (the caller then folds step by step) for text whose keys
    the rendered state text would garble: multi-line observations, item names
    that are empty, padded or hold a comma, counts that could pass ``2**62``.
    """
    if not tasks:
        return StateIds(np.zeros(0, np.int64), np.zeros(0, np.int64), 0, [].__getitem__)
    n_rollouts = len(tasks)
    steps = np.asarray(lengths, dtype=np.int64)
    goals: dict[str, int] = {}
    goal_of_task = {task: goals.setdefault(start(task).goal, len(goals)) for task in set(tasks)}
    goal = np.array([goal_of_task[task] for task in tasks], dtype=np.int64)

    # Read each distinct observation once, and each distinct (action, Crafted ...) pair.
    distinct = dict.fromkeys(observations)
    table = dict(zip(distinct, range(len(distinct)), strict=True))
    seen = lookup(table, observations)
    names: dict[str, str] = {}

    def item(name: str) -> str:
        key = names.get(name)
        if key is None:
            key = names[name] = _item(name_key(name))
        return key

    changes: list[tuple[dict[str, int], bool]] = [({}, False)]
    of_observation = []
    try:
        for observation in table:
            text = observation.strip()
            if text[:3].lower() not in _CHANGING:  # most feedback changes nothing
                if len(text.splitlines()) > 1:
                    raise _Decline
                of_observation.append(0)
            elif _CRAFTED.match(text):
                of_observation.append(-1)  # depends on the action too
            elif (change := _change(text, "", item)) != ({}, False):
                of_observation.append(len(changes))
                changes.append(change)
            else:
                of_observation.append(0)
        step_change = np.array(of_observation, dtype=np.int64)[seen]
        crafted = np.flatnonzero(step_change < 0)
        verbs: dict[str, int] = {}
        verb = [verbs.setdefault(actions[row], len(verbs)) for row in crafted.tolist()]
        pairs = np.asarray(verb, dtype=np.int64) * len(table) + seen[crafted]
        _, once, again = np.unique(pairs, return_index=True, return_inverse=True)
        step_change[crafted] = len(changes) + again.reshape(-1)
        for row in crafted[once].tolist():
            changes.append(_change(observations[row].strip(), actions[row], item))
    except _Decline:
        return None
    largest = max((abs(n) for change, _ in changes for n in change.values()), default=0)
    if largest * (max(lengths) + 1) >= 2**62:  # counts must stay within int64
        return None

    # One matrix row per (change, goal) that occurs, columns numbered per goal.
    step_goal = np.repeat(goal, steps)
    used, step_row = unique_inverse(step_change * len(goals) + step_goal)
    columns: list[dict[str, int]] = [{} for _ in goals]
    at_row: list[int] = []
    at_column: list[int] = []
    value: list[int] = []
    for row, code in enumerate(used.tolist()):
        change, _ = changes[code // len(goals)]
        if change:
            place = columns[code % len(goals)]
            at_row += [row] * len(change)
            at_column += [place.setdefault(item, len(place)) for item in change]
            value += change.values()
    horizon = int(steps.max())
    width = max([1, *(len(place) for place in columns)])
    # Counts stay below (horizon + 1) * largest: the smallest integers that hold them.
    bound = largest * (horizon + 1)
    dtype = np.int16 if bound < 2**14 else np.int32 if bound < 2**30 else np.int64
    matrix = np.zeros((len(used) + 1, width), dtype=dtype)  # last row: padding, no change
    matrix[at_row, at_column] = value
    replaces = np.append(np.array([r for _, r in changes], dtype=bool)[used // len(goals)], False)

    # All rollouts advance together, time-major (padding changes nothing).
    padded = np.full((n_rollouts, horizon), len(used), dtype=np.int64)
    padded[np.arange(horizon)[None, :] < steps[:, None]] = step_row.reshape(-1)
    padded = np.ascontiguousarray(padded.T)
    # One integer per (goal, inventory): a fixed random projection, mod 2**64.
    weights = _hash_weights(width + 1)
    states, hashed = _advance_all(matrix, padded, replaces, weights[1:])
    # Everything stays time-major: rows (t, rollout), padding rows included.
    real = np.flatnonzero(np.arange(horizon + 1)[:, None] <= steps[None, :])
    flat = states.reshape(-1, width)
    state_goal = np.broadcast_to(goal, (horizon + 1, n_rollouts)).ravel()
    hashed = hashed[real] + state_goal[real] * weights[0]

    # Equal rows <=> equal keys: every row is checked against the first row of
    # its hash class, so a collision cannot merge two states.
    _, first, inverse = unique_first(hashed)
    same = np.arange(len(flat))
    same[real] = real[first][inverse]
    if not (np.array_equal(flat[same], flat) and np.array_equal(state_goal[same], state_goal)):
        whole = np.column_stack([state_goal[real], flat[real]])
        _, first, inverse = np.unique(whole, axis=0, return_index=True, return_inverse=True)
    representative = real[first]
    ids = np.zeros(len(flat), dtype=np.int64)
    ids[real] = inverse.reshape(-1)
    ids = ids.reshape(horizon + 1, n_rollouts).T[np.arange(horizon + 1)[None, :] <= steps[:, None]]
    goal_names = list(goals)
    by_name = [sorted(place.items()) for place in columns]

    def key(state: int) -> Hashable:
        row, g = flat[representative[state]], int(state_goal[representative[state]])
        return goal_names[g], tuple((item, int(row[c])) for item, c in by_name[g] if row[c] > 0)

    return StateIds(ids, steps, len(first), key)


TEXTCRAFT_STATE_SPACE = StateSpace(
    start=start,
    advance=advance,
    render=render,
    key=textcraft_key,
    batch=batch_ids,
    description="goal and inventory, folded from the transcript (step count ignored)",
)
