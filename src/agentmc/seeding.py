"""Explicit, recorded randomness.

Every stochastic function takes a ``numpy.random.Generator``. Runs derive
independent child generators from one recorded root seed with
``numpy.random.SeedSequence``, keyed by *what* they are for (task index,
sample index), never by execution order, so parallel and resumed runs draw the
same numbers as a sequential one.

Example:
    >>> a = task_rng(0, task_index=3, sample=1).integers(1 << 30)
    >>> b = task_rng(0, task_index=3, sample=1).integers(1 << 30)
    >>> bool(a == b)
    True
"""

from __future__ import annotations

import numpy as np


def task_rng(root_seed: int, task_index: int, sample: int = 0) -> np.random.Generator:
    """Generator for one (task, sample) pair of a run, independent of all others."""
    return np.random.default_rng(np.random.SeedSequence([root_seed, task_index, sample]))


def spawn(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """Split ``rng`` into ``n`` independent child generators."""
    return list(rng.spawn(n))


def draw_seed(rng: np.random.Generator) -> int:
    """An integer seed for APIs that take one (policies, environments)."""
    return int(rng.integers(0, 2**31 - 1))
