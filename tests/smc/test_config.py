from __future__ import annotations

import math

import pytest

from agentmc.errors import ConfigError, UnknownNameError
from agentmc.smc import Budget, SMCConfig


def test_defaults_are_valid_and_serialise():
    config = SMCConfig()
    assert config.as_dict()["resampler"] == "systematic"
    assert SMCConfig(beta=math.inf).as_dict()["beta"] == "inf"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"beta": 0.0}, ConfigError, "beta must be > 0"),
        ({"beta": -1.0}, ConfigError, "beta must be > 0"),
        ({"beta": math.nan}, ConfigError, "beta must be > 0"),
        ({"n_particles": 0}, ConfigError, "n_particles must be >= 1"),
        ({"n_particles": 2.5}, ConfigError, "n_particles must be an integer"),
        ({"resampler": "best"}, UnknownNameError, "valid: multinomial"),
        ({"schedule": "often"}, UnknownNameError, "valid forms"),
        ({"schedule": "steps:4,25"}, ConfigError, "beyond the step cap max_steps=20"),
        ({"max_steps": 0}, ConfigError, "max_steps"),
        ({"budget": {"max_calls": 1}}, ConfigError, "budget must be a Budget"),
    ],
)
def test_bad_values_name_the_field(kwargs, error, message):
    with pytest.raises(error, match=message):
        SMCConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_calls": 0}, "max_calls must be a whole number > 0"),
        ({"max_calls": 2.5}, "max_calls must be a whole number > 0"),
        ({"max_cost": -1.0}, "max_cost must be a number > 0"),
        ({"max_tokens": math.inf}, "max_tokens must be a whole number > 0"),
        ({"count": "bills"}, "count must be 'attempts' or 'answers'"),
    ],
)
def test_bad_budget_names_the_cap(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Budget(**kwargs)


def test_schedule_within_cap_is_fine():
    assert SMCConfig(schedule="steps:4,12", max_steps=12).parsed_schedule.last_step == 12
