"""What a policy call costs: a price table the user can extend.

Prices are US dollars per million tokens, separately for prompt and completion
tokens. :func:`cost` returns ``None`` for a model the table does not know:
an unknown price is reported as unknown, never as zero. Local models have a
known price of zero (the electricity is on you).

Lookups try the exact model name, then the name without a trailing date stamp
(servers often answer ``gpt-4o-mini-2024-07-18`` for ``gpt-4o-mini``), then
without an ``org/`` prefix, all case-insensitively.

The defaults are list prices at the time of writing; prices change, so pass
your own with :meth:`PriceTable.with_prices` or load a JSON file
``{"model": [prompt_usd_per_mtok, completion_usd_per_mtok], ...}`` with
:meth:`PriceTable.from_file`.

Example:
    >>> from agentmc.types import Usage
    >>> table = DEFAULT_PRICES.with_prices({"my-model": Price(1.0, 2.0)})
    >>> table.cost("my-model", Usage(calls=1, prompt_tokens=1000, completion_tokens=500))
    0.002
    >>> table.cost("gpt-4o-mini-2024-07-18", Usage(prompt_tokens=10**6)) == 0.15
    True
    >>> table.cost("never-heard-of-it", Usage(prompt_tokens=10)) is None
    True
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from agentmc.errors import ConfigError, DataError
from agentmc.types import Usage

__all__ = ["DEFAULT_PRICES", "Price", "PriceTable"]

_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


@dataclass(frozen=True, slots=True)
class Price:
    """Price of one model.

    Attributes:
        prompt_per_mtok: US dollars per million prompt tokens.
        completion_per_mtok: US dollars per million completion tokens.
    """

    prompt_per_mtok: float
    completion_per_mtok: float

    def __post_init__(self) -> None:
        for name in ("prompt_per_mtok", "completion_per_mtok"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"Price.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class PriceTable:
    """Model name -> :class:`Price`; immutable, extended by making a new table.

    Attributes:
        prices: The entries; keys are matched case-insensitively.
    """

    prices: Mapping[str, Price] = field(default_factory=dict)

    def __post_init__(self) -> None:
        normalised = {str(k).lower(): v for k, v in self.prices.items()}
        for model, price in normalised.items():
            if not isinstance(price, Price):
                raise ConfigError(f"PriceTable: price of {model!r} must be a Price, got {price!r}")
        object.__setattr__(self, "prices", MappingProxyType(normalised))

    def with_prices(self, prices: Mapping[str, Price]) -> PriceTable:
        """A new table with ``prices`` added (replacing entries of the same name)."""
        return PriceTable({**self.prices, **{k.lower(): v for k, v in prices.items()}})

    @classmethod
    def from_file(cls, path: str | Path, base: PriceTable | None = None) -> PriceTable:
        """Load ``{"model": [prompt, completion], ...}`` (USD per million tokens) from JSON.

        Args:
            path: The JSON file.
            base: Table to extend (default: :data:`DEFAULT_PRICES`).

        Raises:
            DataError: If the file is missing or not in that shape.
        """
        base = DEFAULT_PRICES if base is None else base
        try:
            data = json.loads(Path(path).read_text())
            prices = {str(k): Price(float(v[0]), float(v[1])) for k, v in data.items()}
        except (OSError, ValueError, TypeError, IndexError, KeyError, AttributeError) as error:
            raise DataError(
                f"cannot read price table {str(path)!r}: expected JSON "
                f'{{"model": [prompt_usd_per_mtok, completion_usd_per_mtok]}} ({error})'
            ) from None
        return base.with_prices(prices)

    def lookup(self, model: str) -> Price | None:
        """The price of ``model`` (see the module docstring for name matching), or None."""
        name = model.lower()
        candidates = [name, _DATE_SUFFIX.sub("", name)]
        candidates += [c.rsplit("/", 1)[-1] for c in candidates]
        for candidate in candidates:
            if candidate in self.prices:
                return self.prices[candidate]
        return None

    def cost(self, model: str, usage: Usage) -> float | None:
        """US dollars for ``usage`` tokens of ``model``, or ``None`` if the price is unknown."""
        price = self.lookup(model)
        if price is None:
            return None
        return (
            usage.prompt_tokens * price.prompt_per_mtok
            + usage.completion_tokens * price.completion_per_mtok
        ) / 1e6

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None


DEFAULT_PRICES = PriceTable(
    {
        # OpenAI list prices, USD per million tokens (standard tier).
        "gpt-4o": Price(2.50, 10.00),
        "gpt-4o-mini": Price(0.15, 0.60),
        "gpt-4.1": Price(2.00, 8.00),
        "gpt-4.1-mini": Price(0.40, 1.60),
        "gpt-4.1-nano": Price(0.10, 0.40),
        "gpt-3.5-turbo": Price(0.50, 1.50),
        "o3-mini": Price(1.10, 4.40),
        "o4-mini": Price(1.10, 4.40),
        # The embedded model runs on your own CPU.
        "smollm2-135m-instruct": Price(0.0, 0.0),
    }
)
"""Built-in prices. Check them against your provider's current list before trusting costs."""
