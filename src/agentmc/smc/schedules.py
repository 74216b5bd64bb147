"""Checkpoint schedules: when SMC weighs its particles and when it resamples.

At a *checkpoint* every unfinished particle's weight is updated (rewards since
its last checkpoint plus the change in critic value). A schedule answers two
questions: ``is_checkpoint(t)`` (weigh after step t?) and
``should_resample(t, log_weights, context)`` (resample now?). Between
resamplings, weights always *accumulate*; a checkpoint that does not resample
never resets them.

Schedules are written as short strings so the CLI can take them:

============================  ==============================================================
``"none"``                    never resample (sequential importance sampling / Best-of-N)
``"every"``                   weigh and resample after every step
``"steps:4,12"``              weigh and resample after steps 4 and 12 (the paper's hand-tuned kind)
``"ess:0.5"``                 weigh after every step; resample only when ESS/K < 0.5
``"budget:0.8:steps:4,12"``   like the inner schedule, but stop resampling once 80% of the
                              policy budget is spent (clones made that late cannot diverge)
============================  ==============================================================

Example:
    >>> schedule = parse_schedule("steps:4,12")
    >>> [t for t in range(1, 15) if schedule.is_checkpoint(t)]
    [4, 12]
    >>> parse_schedule("ess:0.5").spec
    'ess:0.5'
    >>> parse_schedule("budget:0.8:every").last_step is None
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from agentmc.errors import ConfigError, UnknownNameError
from agentmc.smc.weights import LogWeights


@dataclass(frozen=True)
class ScheduleContext:
    """What a schedule may look at besides the weights.

    Attributes:
        n_particles: K.
        budget_spent: Largest fraction of any capped budget already spent
            (calls, tokens or cost), or ``None`` when nothing is capped.
    """

    n_particles: int
    budget_spent: float | None = None


@runtime_checkable
class Schedule(Protocol):
    """When to weigh and when to resample.

    Attributes:
        spec: The string form, e.g. ``"steps:4,12"`` (``parse_schedule(spec)`` rebuilds it).
        last_step: The largest step the schedule names explicitly, or ``None``;
            configs reject schedules whose steps lie beyond the step cap.
    """

    @property
    def spec(self) -> str: ...

    @property
    def last_step(self) -> int | None: ...

    def is_checkpoint(self, t: int) -> bool:
        """Whether to weigh the particles after step ``t`` (1-based)."""
        ...

    def should_resample(self, t: int, log_weights: LogWeights, context: ScheduleContext) -> bool:
        """Whether to resample at the checkpoint after step ``t``."""
        ...


@dataclass(frozen=True)
class NoResampling:
    """Never resample: weights accumulate to ``exp(R / beta)`` (importance sampling)."""

    @property
    def spec(self) -> str:
        return "none"

    @property
    def last_step(self) -> int | None:
        return None

    def is_checkpoint(self, t: int) -> bool:
        return False

    def should_resample(self, t: int, log_weights: LogWeights, context: ScheduleContext) -> bool:
        return False


@dataclass(frozen=True)
class EveryStep:
    """Weigh and resample after every step."""

    @property
    def spec(self) -> str:
        return "every"

    @property
    def last_step(self) -> int | None:
        return None

    def is_checkpoint(self, t: int) -> bool:
        return True

    def should_resample(self, t: int, log_weights: LogWeights, context: ScheduleContext) -> bool:
        return True


@dataclass(frozen=True)
class FixedSteps:
    """Weigh and resample after each listed step (1-based), e.g. ``(4, 12)``.

    Attributes:
        steps: Strictly increasing positive step numbers.
    """

    steps: tuple[int, ...]

    def __post_init__(self) -> None:
        steps = tuple(int(step) for step in self.steps)
        if not steps or any(step < 1 for step in steps):
            raise ConfigError(f"schedule steps must be positive integers, got {self.steps}")
        if any(later <= earlier for earlier, later in zip(steps, steps[1:], strict=False)):
            raise ConfigError(f"schedule steps must be strictly increasing, got {self.steps}")
        object.__setattr__(self, "steps", steps)

    @property
    def spec(self) -> str:
        return "steps:" + ",".join(str(step) for step in self.steps)

    @property
    def last_step(self) -> int | None:
        return self.steps[-1]

    def is_checkpoint(self, t: int) -> bool:
        return t in self.steps

    def should_resample(self, t: int, log_weights: LogWeights, context: ScheduleContext) -> bool:
        return t in self.steps


@dataclass(frozen=True)
class ESSThreshold:
    """Weigh after every step; resample only when ``ESS / K < threshold``.

    Otherwise the weights keep accumulating (they are never overwritten), so
    ``threshold = 0`` is plain importance sampling and ``threshold > 1`` is
    :class:`EveryStep`.

    Attributes:
        threshold: In ``[0, 1]``.
    """

    threshold: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"ESS threshold must be in [0, 1], got {self.threshold}")

    @property
    def spec(self) -> str:
        return f"ess:{self.threshold:g}"

    @property
    def last_step(self) -> int | None:
        return None

    def is_checkpoint(self, t: int) -> bool:
        return True

    def should_resample(self, t: int, log_weights: LogWeights, context: ScheduleContext) -> bool:
        return log_weights.ess < self.threshold * context.n_particles


@dataclass(frozen=True)
class BudgetAware:
    """An inner schedule that stops resampling once a fraction of the budget is spent.

    Late clones have little budget left to diverge from their parent, so
    resampling then mostly loses diversity. Without a budget cap this is the
    inner schedule.

    Attributes:
        max_spent: Resample only while less than this fraction of every
            capped budget is spent; in ``(0, 1]``.
        inner: The schedule that decides otherwise.
    """

    max_spent: float
    inner: Schedule

    def __post_init__(self) -> None:
        if not 0.0 < self.max_spent <= 1.0:
            raise ConfigError(f"budget fraction must be in (0, 1], got {self.max_spent}")

    @property
    def spec(self) -> str:
        return f"budget:{self.max_spent:g}:{self.inner.spec}"

    @property
    def last_step(self) -> int | None:
        return self.inner.last_step

    def is_checkpoint(self, t: int) -> bool:
        return self.inner.is_checkpoint(t)

    def should_resample(self, t: int, log_weights: LogWeights, context: ScheduleContext) -> bool:
        if context.budget_spent is not None and context.budget_spent >= self.max_spent:
            return False
        return self.inner.should_resample(t, log_weights, context)


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"schedule {spec!r}: {text!r} is not a number") from None


def _parse_steps(argument: str, spec: str) -> Schedule:
    try:
        steps = tuple(int(part) for part in argument.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"schedule {spec!r}: steps must be comma-separated integers, e.g. 'steps:4,12'"
        ) from None
    return FixedSteps(steps)


def _parse_budget(argument: str, spec: str) -> Schedule:
    fraction, _, inner = argument.partition(":")
    if not inner:
        raise ConfigError(
            f"schedule {spec!r}: write 'budget:FRACTION:INNER', e.g. 'budget:0.8:every'"
        )
    return BudgetAware(_number(fraction, spec), parse_schedule(inner))


def _no_argument(schedule: Schedule) -> Callable[[str, str], Schedule]:
    def parse(argument: str, spec: str) -> Schedule:
        if argument:
            raise ConfigError(f"schedule {spec!r} takes no argument; write {schedule.spec!r}")
        return schedule

    return parse


#: Schedule kinds by name: ``parser(argument, full_spec) -> Schedule``.
SCHEDULES: dict[str, Callable[[str, str], Schedule]] = {
    "none": _no_argument(NoResampling()),
    "every": _no_argument(EveryStep()),
    "steps": _parse_steps,
    "ess": lambda argument, spec: ESSThreshold(_number(argument, spec)),
    "budget": _parse_budget,
}

_FORMS = "'none', 'every', 'steps:4,12', 'ess:0.5', 'budget:0.8:steps:4,12'"


def parse_schedule(spec: str | Schedule) -> Schedule:
    """Build a schedule from its string form (a :class:`Schedule` passes through).

    Raises:
        UnknownNameError: If the kind is unknown (the message lists the valid forms).
        ConfigError: If the argument is malformed.
    """
    if not isinstance(spec, str):
        return spec
    return _parse_text(spec)


@functools.lru_cache(maxsize=256)
def _parse_text(spec: str) -> Schedule:
    """Parse one string form; schedules are frozen values, so each string is parsed once."""
    kind, _, argument = spec.strip().partition(":")
    parser = SCHEDULES.get(kind)
    if parser is None:
        raise UnknownNameError(f"unknown schedule {spec!r}; valid forms: {_FORMS}")
    return parser(argument, spec)
