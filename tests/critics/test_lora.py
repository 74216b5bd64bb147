from __future__ import annotations

import logging

import numpy as np
import pytest

from agentmc.critics.artifact import load, save
from agentmc.critics.evaluate import critic_metrics
from agentmc.critics.fit import FitConfig, fit
from agentmc.critics.targets import make_examples
from agentmc.errors import ConfigError, DataError

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("transformers")

from agentmc.critics.lora import LoraCriticConfig  # noqa: E402


def settings(path, **overrides) -> LoraCriticConfig:
    base = dict(
        base_model=str(path),
        max_length=64,
        batch_size=32,
        max_epochs=2,
        patience=2,
        learning_rate=3e-3,
        head_learning_rate=1e-2,
        rank=4,
        target_modules=("query", "value"),
        device="cpu",
    )
    return LoraCriticConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def trained(tiny_transformer, craft_data):
    return fit(craft_data[:32], FitConfig(backend="lora", seed=2), settings(tiny_transformer))


def test_trains_and_predicts_on_cpu_with_a_tiny_model(trained, craft_heldout):
    result = trained
    critic = result.critic
    assert critic.name == "lora" and critic.model.pooling == "mean"
    assert critic.steps > 0
    metrics, values = critic_metrics(critic, make_examples(craft_heldout[:60]))
    assert values.shape == (metrics["n_states"],)
    assert values.min() >= critic.bounds[0] and values.max() <= critic.bounds[1]
    # Only LoRA and the head train: the base weights stay frozen.
    trainable = [n for n, p in critic.model.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_round_trip_and_base_model_check(trained, tiny_transformer, craft_heldout, tmp_path):
    critic = trained.critic
    histories = make_examples(craft_heldout[:5]).histories
    path = save(critic, tmp_path / "lora")
    loaded = load(path, env_id="synthetic-craft")
    np.testing.assert_allclose(loaded.values(histories), critic.values(histories), atol=1e-6)
    config = tiny_transformer / "config.json"
    original = config.read_text()
    try:
        config.write_text(original.replace('"hidden_act"', '"x_changed": 1, "hidden_act"'))
        with pytest.raises(DataError, match="differs from the one this critic was trained on"):
            load(path)
    finally:
        config.write_text(original)


def test_long_histories_are_cut_from_the_left_with_one_warning(trained, craft_data, caplog):
    critic = trained.critic
    model = critic.model
    long = [h for h in make_examples(craft_data[:20]).histories if h.n_turns >= 6]
    old = model.config
    model.config = type(old)(**{**old.__dict__, "max_length": 16})
    model._warned = False
    try:
        with caplog.at_level(logging.WARNING, logger="agentmc"):
            critic.values(long[:4])
            critic.values(long[4:8])
        cut = [r for r in caplog.records if "cut from the left" in r.getMessage()]
        assert len(cut) == 1
        batch = model.encode(["TASK: a b c " + "get 1 stick " * 40])
        assert batch["input_ids"].shape[1] == 16
    finally:
        model.config = old


def test_config_and_missing_model_errors(tmp_path):
    with pytest.raises(ConfigError, match="rank"):
        LoraCriticConfig(rank=0)
    from agentmc.critics.lora import base_model_path

    with pytest.raises(DataError, match="nothing is downloaded"):
        base_model_path(str(tmp_path / "nope"))
