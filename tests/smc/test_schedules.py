from __future__ import annotations

import numpy as np
import pytest

from agentmc.errors import ConfigError, UnknownNameError
from agentmc.smc.schedules import (
    BudgetAware,
    ESSThreshold,
    EveryStep,
    FixedSteps,
    NoResampling,
    ScheduleContext,
    parse_schedule,
)
from agentmc.smc.weights import LogWeights

UNEVEN = LogWeights(np.log([1.0, 1.0, 1.0, 100.0]))  # ESS/K ~ 0.26
EVEN = LogWeights(np.zeros(4))
CONTEXT = ScheduleContext(n_particles=4)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("none", NoResampling),
        ("every", EveryStep),
        ("steps:4", FixedSteps),
        ("steps:4,12", FixedSteps),
        ("ess:0.5", ESSThreshold),
        ("ess:0", ESSThreshold),
        ("budget:0.8:steps:4,12", BudgetAware),
        ("budget:1:ess:0.3", BudgetAware),
    ],
)
def test_parse_round_trips(spec, kind):
    schedule = parse_schedule(spec)
    assert isinstance(schedule, kind)
    assert parse_schedule(schedule.spec) == schedule
    assert schedule.spec == spec


def test_fixed_steps():
    schedule = parse_schedule("steps:4,12")
    assert [t for t in range(1, 20) if schedule.is_checkpoint(t)] == [4, 12]
    assert schedule.should_resample(4, EVEN, CONTEXT)
    assert not schedule.should_resample(5, UNEVEN, CONTEXT)
    assert schedule.last_step == 12


def test_every_and_none():
    assert all(EveryStep().is_checkpoint(t) for t in range(1, 10))
    assert EveryStep().should_resample(1, EVEN, CONTEXT)
    assert not any(NoResampling().is_checkpoint(t) for t in range(1, 10))
    assert not NoResampling().should_resample(1, UNEVEN, CONTEXT)


def test_ess_threshold_resamples_only_below_threshold():
    schedule = ESSThreshold(0.5)
    assert all(schedule.is_checkpoint(t) for t in range(1, 10))
    assert schedule.should_resample(1, UNEVEN, CONTEXT)
    assert not schedule.should_resample(1, EVEN, CONTEXT)
    assert not ESSThreshold(0.0).should_resample(1, UNEVEN, CONTEXT)
    assert ESSThreshold(1.0).should_resample(1, LogWeights(np.array([0.0, 0.0, 0.0, 0.1])), CONTEXT)


def test_budget_aware_stops_resampling_when_budget_spent():
    schedule = parse_schedule("budget:0.5:every")
    assert schedule.should_resample(1, EVEN, ScheduleContext(4, budget_spent=None))
    assert schedule.should_resample(1, EVEN, ScheduleContext(4, budget_spent=0.49))
    assert not schedule.should_resample(1, EVEN, ScheduleContext(4, budget_spent=0.5))
    assert schedule.is_checkpoint(3)


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("sometimes", UnknownNameError, "valid forms"),
        ("steps:", ConfigError, "positive"),
        ("steps:4,x", ConfigError, "comma-separated"),
        ("steps:12,4", ConfigError, "increasing"),
        ("steps:0,4", ConfigError, "positive"),
        ("ess:1.5", ConfigError, r"\[0, 1\]"),
        ("ess:high", ConfigError, "not a number"),
        ("every:3", ConfigError, "takes no argument"),
        ("budget:0.8", ConfigError, "budget:FRACTION:INNER"),
        ("budget:0:every", ConfigError, r"\(0, 1\]"),
        ("budget:0.5:nope", UnknownNameError, "valid forms"),
    ],
)
def test_bad_specs(spec, error, message):
    with pytest.raises(error, match=message):
        parse_schedule(spec)
