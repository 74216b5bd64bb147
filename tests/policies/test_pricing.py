from __future__ import annotations

import json

import pytest

from agentmc.errors import ConfigError, DataError
from agentmc.policies.pricing import DEFAULT_PRICES, Price, PriceTable
from agentmc.types import Usage

USAGE = Usage(calls=1, prompt_tokens=2_000_000, completion_tokens=1_000_000)


def test_known_model_cost():
    assert DEFAULT_PRICES.cost("gpt-4o-mini", USAGE) == pytest.approx(2 * 0.15 + 0.60)


def test_unknown_model_cost_is_none_not_zero():
    assert DEFAULT_PRICES.cost("mystery-model", USAGE) is None
    assert "mystery-model" not in DEFAULT_PRICES


def test_local_model_is_free_and_known():
    assert DEFAULT_PRICES.cost("SmolLM2-135M-Instruct", USAGE) == 0.0


@pytest.mark.parametrize("name", ["GPT-4o-mini", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"])
def test_name_matching(name):
    assert DEFAULT_PRICES.lookup(name) == Price(0.15, 0.60)


def test_with_prices_overrides_without_mutating():
    table = DEFAULT_PRICES.with_prices({"gpt-4o-mini": Price(1.0, 1.0), "mine": Price(0.0, 3.0)})
    assert table.cost("mine", USAGE) == pytest.approx(3.0)
    assert table.lookup("gpt-4o-mini") == Price(1.0, 1.0)
    assert DEFAULT_PRICES.lookup("gpt-4o-mini") == Price(0.15, 0.60)
    with pytest.raises(TypeError):
        table.prices["x"] = Price(1, 1)  # type: ignore[index]


def test_from_file(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"my-vllm-model": [0.5, 1.5]}))
    table = PriceTable.from_file(path)
    assert table.lookup("my-vllm-model") == Price(0.5, 1.5)
    assert "gpt-4o" in table


@pytest.mark.parametrize("content", ["not json", '{"m": 3}', '{"m": [1]}', '{"m": [-1, 2]}'])
def test_bad_price_files(tmp_path, content):
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises((DataError, ConfigError)):
        PriceTable.from_file(path)


def test_missing_price_file(tmp_path):
    with pytest.raises(DataError, match="cannot read price table"):
        PriceTable.from_file(tmp_path / "nope.json")


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_price_validation(value):
    with pytest.raises(ConfigError, match="prompt_per_mtok"):
        Price(value, 1.0)
