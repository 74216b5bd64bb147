"""Faster equivalents of ``np.unique`` calls for the integer codes of graph building.

Also :func:`lookup`: ``table[item]`` for many items at once, the step that
numbers text observations and actions.

``np.unique(codes, return_index=True, ...)`` sorts with a stable argsort, the
slowest sort numpy has (several times slower than its default one on a few
thousand int64 codes). The functions here return exactly what the ``np.unique``
call they name returns, from the default sort or, where the codes span a small
range, from no sort at all: G2PO's state and action ids (:mod:`agentmc.rl.graph`,
:mod:`agentmc.envs.textcraft.state`) are such codes.

Example:
    >>> import numpy as np
    >>> codes = np.array([7, 3, 7, 5, 3])
    >>> [a.tolist() for a in unique_first(codes)]
    [[3, 5, 7], [1, 3, 0], [2, 0, 2, 1, 0]]
    >>> [a.tolist() for a in first_seen_ids(codes)]
    [[0, 1, 0, 2, 1], [0, 1, 3]]
    >>> lookup({"a": 0, "b": 1}, ["b", "a", "b"]).tolist()
    [1, 0, 1]
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agentmc.types import IntArray

# Codes in [0, DENSE_SPAN * n + DENSE_EXTRA) get a lookup table instead of a sort.
DENSE_SPAN, DENSE_EXTRA = 8, 1024


def _dense_bound(codes: IntArray) -> int | None:
    """``max + 1`` when the codes are non-negative and span a small range, else None."""
    if not len(codes) or codes.dtype.kind not in "iu":
        return None
    low, high = int(codes.min()), int(codes.max())
    if low < 0 or high >= DENSE_SPAN * len(codes) + DENSE_EXTRA:
        return None
    return high + 1


def _rank(values: IntArray, bound: int) -> IntArray:
    """A table of length ``bound`` holding ``i`` at ``values[i]`` (other entries unset).

    Scattering the ranks is cheaper than ``np.cumsum`` of a boolean mask, which
    numpy runs through a slow casting loop.
    """
    rank = np.empty(bound, dtype=np.int64)
    rank[values] = np.arange(len(values))
    return rank


def unique_first(codes: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """``np.unique(codes, return_index=True, return_inverse=True)`` for 1-D integer codes.

    Returns:
        The sorted distinct codes, the index of each one's first occurrence,
        and each code's position among them (1-D), as ``np.unique`` gives them.
    """
    codes = np.asarray(codes)
    n = len(codes)
    bound = _dense_bound(codes)
    if bound is not None:
        first = np.full(bound, n, dtype=np.int64)
        np.minimum.at(first, codes, np.arange(n))
        values = np.flatnonzero(first < n)
        return values.astype(codes.dtype), first[values], _rank(values, bound)[codes]
    # Spread-out codes (hashes): the default sort, then the first indices.
    values, inverse = np.unique(codes, return_inverse=True)
    inverse = inverse.reshape(-1)
    first = np.full(len(values), n, dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(n))
    return values, first, inverse


def unique_inverse(codes: IntArray) -> tuple[IntArray, IntArray]:
    """``np.unique(codes, return_inverse=True)`` for 1-D integer codes (inverse 1-D)."""
    codes = np.asarray(codes)
    bound = _dense_bound(codes)
    if bound is None:
        values, inverse = np.unique(codes, return_inverse=True)
        return values, inverse.reshape(-1)
    present = np.zeros(bound, dtype=bool)
    present[codes] = True
    values = np.flatnonzero(present)
    return values.astype(codes.dtype), _rank(values, bound)[codes]


def first_seen_ids(codes: IntArray) -> tuple[IntArray, IntArray]:
    """Dense ids for ``codes`` in order of first appearance, and each id's first index."""
    codes = np.asarray(codes)
    if _dense_bound(codes) is None:
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rank[inverse.reshape(-1)], first[order]
    _, first, inverse = unique_first(codes)
    own_first = first[inverse]  # index of the first occurrence of each row's code
    is_first = np.zeros(len(codes), dtype=bool)
    is_first[own_first] = True
    firsts = np.flatnonzero(is_first)
    return _rank(firsts, len(codes))[own_first], firsts


def lookup(table: Mapping[Any, int], items: Sequence[Any]) -> IntArray:
    """``np.array([table[item] for item in items])`` as int64, looked up in one C call.

    Raises:
        KeyError: An item is not in ``table``.
    """
    if len(items) < 2:  # itemgetter of one key returns the value, not a tuple
        return np.fromiter(map(table.__getitem__, items), np.int64, len(items))
    return np.fromiter(operator.itemgetter(*items)(table), np.int64, len(items))
