r"""Hashed text features of (state, action) pairs for small candidate-scoring policies.

A trained policy here does not generate text: it scores the environment's
candidate actions and samples from a softmax over them. Each (state text,
action) pair becomes a sparse vector of hashed features, so a linear model
over ``2**k`` weights can learn both *what* to do (action words) and *when*
(how the action relates to the state):

- ``verb``: the action's first word (``get``, ``craft``, ``inventory``);
- ``word``: each content word of the action, tagged with the verb;
- ``overlap``: for every ``name: value`` line of the state text (``goal``,
  ``inventory``, ``last``), the fraction of the action's words found there,
  separately for the words before and after ``using`` (output and inputs);
- ``cross``: each goal word paired with each output word of the action, so
  recipe knowledge carries over between tasks that share items;
- ``repeat``: the action equals the previous one (loops are rarely useful).

Hashing uses CRC-32, which is stable across processes and Python versions
(unlike ``hash``), so saved weights stay valid.

Example:
    >>> state = "goal: stick\ninventory: oak planks 2\nlast: Got 2 oak planks"
    >>> indices, values = featurize(state, "craft 4 stick using 2 oak planks", 2**12)
    >>> indices.shape == values.shape, bool((indices < 2**12).all())
    (True, True)
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache

import numpy as np

from agentmc.types import FloatArray, IntArray

_WORD = re.compile(r"[a-z][a-z_]*")
_STOP = frozenset({"using", "the", "a", "an", "of", "to", "and", "minecraft"})


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower().replace("_", " ")) if w not in _STOP]


@lru_cache(maxsize=4096)
def _fields(state_text: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """``name: value`` lines -> sorted ``(name, words)``; other lines go to ``text``."""
    fields: dict[str, set[str]] = {}
    for line in state_text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            fields.setdefault(name.strip().lower(), set()).update(_words(value))
        else:
            fields.setdefault("text", set()).update(_words(line))
    return tuple(sorted((name, frozenset(words)) for name, words in fields.items()))


@lru_cache(maxsize=65_536)
def _slot(name: str, dim: int) -> int:
    return zlib.crc32(name.encode()) % dim


@lru_cache(maxsize=65_536)
def _action(action: str, dim: int) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    """``(verb, output words, input words, slots of the verb and word features)``."""
    lowered = action.strip().lower()
    verb = lowered.split(" ", 1)[0] if lowered else "<empty>"
    output_text, _, input_text = lowered.partition(" using ")
    output_words = tuple(dict.fromkeys(_words(output_text)[1:] if output_text else []))
    input_words = tuple(dict.fromkeys(_words(input_text)))
    names = [f"verb={verb}"] + [
        f"word={verb}:{w}" for w in dict.fromkeys(output_words + input_words)
    ]
    return verb, output_words, input_words, tuple(_slot(n, dim) for n in names)


@lru_cache(maxsize=65_536)
def _crosses(
    goal_words: frozenset[str], output_words: tuple[str, ...], dim: int
) -> tuple[int, ...]:
    return tuple(_slot(f"cross={g}:{w}", dim) for g in sorted(goal_words) for w in output_words)


@lru_cache(maxsize=65_536)
def _overlap_slots(
    verb: str, field_names: tuple[str, ...], has_output: bool, has_input: bool, dim: int
) -> tuple[int, ...]:
    parts = [p for p, used in (("out", has_output), ("in", has_input)) if used]
    return tuple(_slot(f"overlap={verb}:{p}:{f}", dim) for f in field_names for p in parts)


@lru_cache(maxsize=262_144)
def _static(
    action: str, dim: int, field_names: tuple[str, ...], goal: frozenset[str]
) -> tuple[tuple[int, ...], int, int, str, frozenset[str], frozenset[str], int, int]:
    """The state-independent part of a pair's features, given the state's field names.

    Returns ``(slots, n_base, n_cross, verb, output words, input words, n_output,
    n_input)``; slots are ordered base, overlaps (field by field, out then in), crosses.
    """
    verb, output_words, input_words, base = _action(action, dim)
    overlaps = _overlap_slots(verb, field_names, bool(output_words), bool(input_words), dim)
    crosses = _crosses(goal, output_words, dim)
    return (
        base + overlaps + crosses, len(base), len(crosses), verb,
        frozenset(output_words), frozenset(input_words), len(output_words), len(input_words),
    )  # fmt: skip


def _state(
    state_text: str,
) -> tuple[tuple[tuple[str, frozenset[str]], ...], tuple[str, ...], frozenset[str]]:
    """``(fields, field names, goal words)`` of a state text."""
    fields = _fields(state_text)
    goal = next((words for field, words in fields if field == "goal"), frozenset())
    return fields, tuple(field for field, _ in fields), goal


def _features(
    state: tuple[tuple[tuple[str, frozenset[str]], ...], tuple[str, ...], frozenset[str]],
    action: str,
    dim: int,
    previous_action: str,
) -> tuple[list[int], list[float]]:
    """:func:`featurize` as plain lists (the batch version concatenates them)."""
    fields, names, goal = state
    slots_, n_base, n_cross, verb, outputs, inputs, n_out, n_in = _static(action, dim, names, goal)
    slots, values = list(slots_), [1.0] * n_base
    for _, words in fields:
        if n_out:
            values.append(len(outputs & words) / n_out)
        if n_in:
            values.append(len(inputs & words) / n_in)
    values.extend([1.0] * n_cross)
    if previous_action and previous_action.strip().lower() == action.strip().lower():
        slots.append(_slot(f"repeat={verb}", dim))
        values.append(1.0)
    return slots, values


def featurize(
    state_text: str, action: str, dim: int, previous_action: str = ""
) -> tuple[IntArray, FloatArray]:
    """Sparse features of one (state, action) pair.

    Args:
        state_text: The rendered state (see :mod:`agentmc.rl.states`).
        action: One candidate action.
        dim: Number of hashed feature slots.
        previous_action: The action taken at the previous step, if any.

    Returns:
        ``(indices, values)``, both shape ``(n_features,)``.
    """
    slots, values = _features(_state(state_text), action, dim, previous_action)
    return np.array(slots, dtype=np.int64), np.array(values, dtype=np.float64)


def featurize_candidates(
    state_text: str, candidates: tuple[str, ...], dim: int, previous_action: str = ""
) -> tuple[IntArray, FloatArray, IntArray]:
    """Features of every candidate, concatenated.

    The rollouts of a group revisit the same states, so results are cached
    (as read-only arrays; the previous action matters only if it is a candidate).

    Returns:
        ``(indices, values, owner)``: all three shape ``(n_features,)``;
        ``owner[j]`` is the candidate that feature ``j`` belongs to.
    """
    previous = previous_action.strip().lower()
    relevant = previous if any(c.strip().lower() == previous for c in candidates) else ""
    return _featurize_candidates(state_text, tuple(candidates), dim, relevant)


@lru_cache(maxsize=8192)
def _featurize_candidates(
    state_text: str, candidates: tuple[str, ...], dim: int, previous_action: str
) -> tuple[IntArray, FloatArray, IntArray]:
    state = _state(state_text)
    slots: list[int] = []
    values_list: list[float] = []
    lengths = []
    for candidate in candidates:
        candidate_slots, candidate_values = _features(state, candidate, dim, previous_action)
        slots.extend(candidate_slots)
        values_list.extend(candidate_values)
        lengths.append(len(candidate_slots))
    indices = np.array(slots, dtype=np.int64)
    values = np.array(values_list, dtype=np.float64)
    owner = np.repeat(np.arange(len(candidates)), lengths)
    for array in (indices, values, owner):
        array.setflags(write=False)
    return indices, values, owner
