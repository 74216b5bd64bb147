"""Fixtures for the SMC tests."""

from __future__ import annotations

import pytest
from smc_problems import Problem, make_problem


@pytest.fixture(scope="session")
def problem() -> Problem:
    return make_problem()
