"""Spending caps of one SMC run: the one budget type every layer shares.

A :class:`Budget` caps what one run (one task) may spend: policy requests,
tokens and US dollars. The sampler stops before a step would exceed
``max_calls`` (K requests per step) and once ``max_tokens`` or ``max_cost``
is spent; ``count`` says whether ``max_calls`` counts every request sent
(retries included, what a provider bills) or only answered ones, which the
model reports through ``spent()``. The command line writes a budget as
``calls:160``, ``tokens:50000`` or ``cost:0.5``, several joined with commas.

Example:
    >>> budget = Budget.parse("calls:160")
    >>> budget.max_calls, str(budget), budget.has_caps
    (160, '160 calls per task', True)
    >>> Budget.parse("calls:160,cost:0.5").as_dict()
    {'max_calls': 160, 'max_tokens': None, 'max_cost': 0.5}
    >>> Budget().has_caps
    False
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from agentmc.errors import ConfigError

BudgetCount = Literal["attempts", "answers"]
#: Text-form units and the caps they set.
UNITS: dict[str, str] = {"calls": "max_calls", "tokens": "max_tokens", "cost": "max_cost"}


@dataclass(frozen=True)
class Budget:
    """Caps on what one run may spend; ``None`` is no cap."""

    max_calls: int | None = None
    """Policy requests over all particles (one per particle per step)."""
    max_tokens: int | None = None
    """Prompt plus completion tokens over all particles."""
    max_cost: float | None = None
    """US dollars over all particles (needs a policy with known prices)."""
    count: BudgetCount = "attempts"
    """What ``max_calls`` counts: every request sent, retries included (what a provider
    bills), or only requests that returned an answer."""

    def __post_init__(self) -> None:
        for name in UNITS.values():
            value = getattr(self, name)
            if value is None:
                continue
            whole = name != "max_cost"
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (
                number
                and math.isfinite(value)
                and value > 0
                and (not whole or float(value).is_integer())
            ):
                kind = "a whole number" if whole else "a number"
                raise ConfigError(f"{name} must be {kind} > 0 or None (no cap), got {value!r}")
            if whole:
                object.__setattr__(self, name, int(value))
        if self.count not in ("attempts", "answers"):
            raise ConfigError(f"budget count must be 'attempts' or 'answers', got {self.count!r}")

    @classmethod
    def parse(cls, text: str, *, count: BudgetCount = "attempts", name: str = "budget") -> Budget:
        """Read ``calls:N``, ``tokens:N`` or ``cost:USD`` (several joined by ``,``).

        Args:
            text: The text form.
            count: What ``calls`` counts (see :attr:`count`).
            name: How errors name the input (a command line passes ``--budget``).

        Raises:
            ConfigError: An unknown unit, a malformed or non-positive amount, a unit twice.
        """
        where = f"{name} {text!r}"
        caps: dict[str, float] = {}
        for part in str(text).split(","):
            unit, _, amount = part.strip().partition(":")
            cap = UNITS.get(unit.strip())
            if cap is None:
                raise ConfigError(f"{where}: unit must be calls, tokens or cost, e.g. calls:160")
            if cap in caps:
                raise ConfigError(f"{where}: {unit} given twice")
            try:
                caps[cap] = float(amount)
            except ValueError:
                raise ConfigError(f"{where}: {amount!r} is not a number") from None
        try:
            return cls(**caps, count=count)  # type: ignore[arg-type]
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None

    @property
    def has_caps(self) -> bool:
        """Whether any cap is set."""
        return any(getattr(self, name) is not None for name in UNITS.values())

    def as_dict(self) -> dict[str, Any]:
        """The caps, JSON-safe (``count`` is left to whoever records it)."""
        return {name: getattr(self, name) for name in UNITS.values()}

    def __str__(self) -> str:
        parts = [
            f"{getattr(self, name):g} {unit}"
            for unit, name in UNITS.items()
            if getattr(self, name) is not None
        ]
        return f"{', '.join(parts)} per task" if parts else "no cap"
