"""Shared fixtures: a tiny forkable environment and seeded generators."""

from __future__ import annotations

import numpy as np
import pytest

from climb_env import ClimbEnv


@pytest.fixture
def climb_env() -> ClimbEnv:
    return ClimbEnv()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
