"""The np.unique stand-ins of agentmc._arrays return exactly what np.unique returns."""

from __future__ import annotations

import numpy as np
import pytest

from agentmc import _arrays
from agentmc._arrays import first_seen_ids, lookup, unique_first, unique_inverse


def reference_first_seen(codes):
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], first[order]


def code_arrays(rng):
    yield np.zeros(0, dtype=np.int64)
    yield np.array([5])
    for n in (2, 17, 300, 5000):
        yield rng.integers(0, max(1, n // 3), n)  # dense: small range, many repeats
        yield rng.integers(0, 8 * n + 1024, n)  # dense, near the bound
        yield rng.integers(-50, 50, n)  # negative: sorted
        yield rng.integers(-(2**62), 2**62, n // 2)[rng.integers(0, n // 2, n)]  # hashes
        yield (rng.integers(0, 40, n) * 10**9).astype(np.int64)  # wide range: sorted


@pytest.mark.parametrize("seed", range(5))
def test_equal_to_np_unique(seed):
    for codes in code_arrays(np.random.default_rng(seed)):
        values, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        got = unique_first(codes)
        for want, have in zip((values, first, inverse.reshape(-1)), got, strict=True):
            assert have.dtype == want.dtype and have.shape == want.shape
            np.testing.assert_array_equal(have, want)
        values, inverse = np.unique(codes, return_inverse=True)
        got_values, got_inverse = unique_inverse(codes)
        np.testing.assert_array_equal(got_values, values)
        np.testing.assert_array_equal(got_inverse, inverse.reshape(-1))
        assert got_values.dtype == values.dtype
        for want, have in zip(reference_first_seen(codes), first_seen_ids(codes), strict=True):
            np.testing.assert_array_equal(have, want)


def test_both_paths_are_taken():
    assert _arrays._dense_bound(np.array([0, 3, 3])) == 4
    assert _arrays._dense_bound(np.array([-1, 3])) is None
    assert _arrays._dense_bound(np.array([0, 10**6])) is None
    assert _arrays._dense_bound(np.zeros(0, dtype=np.int64)) is None


def test_lookup():
    table = {"a": 0, "b": 7, ("t",): 3}
    for items in ([], ["b"], ["b", "a", ("t",), "b"]):
        got = lookup(table, items)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.array([table[i] for i in items], dtype=np.int64))
    with pytest.raises(KeyError):
        lookup(table, ["a", "zz"])
