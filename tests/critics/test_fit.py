from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agentmc.critics.evaluate import critic_metrics, prediction_metrics
from agentmc.critics.fit import MIN_STATES, MIN_TASKS, FitConfig, fit, split_by_task
from agentmc.critics.hashed import HashedConfig
from agentmc.critics.targets import make_examples
from agentmc.errors import ConfigError, DataError


def test_split_by_task_never_splits_a_task():
    rng = np.random.default_rng(0)
    task_ids = [str(t) for t in rng.integers(0, 30, size=500)]
    mask = split_by_task(task_ids, 0.2, np.random.default_rng(3))
    val = {t for t, m in zip(task_ids, mask, strict=True) if m}
    train = {t for t, m in zip(task_ids, mask, strict=True) if not m}
    assert val and train and not val & train
    assert len(val) == int(np.ceil(0.2 * len(set(task_ids))))


def test_split_ignores_data_order():
    task_ids = [str(t % 17) for t in range(200)]
    a = split_by_task(task_ids, 0.3, np.random.default_rng(5))
    b = split_by_task(task_ids[::-1], 0.3, np.random.default_rng(5))
    held_a = {t for t, m in zip(task_ids, a, strict=True) if m}
    held_b = {t for t, m in zip(task_ids[::-1], b, strict=True) if m}
    assert held_a == held_b


def test_fit_holds_out_tasks_and_beats_chance(craft_data, craft_heldout):
    result = fit(craft_data, FitConfig(seed=1))
    assert not set(result.train_tasks) & set(result.val_tasks)
    assert set(result.val_examples.task_ids) == set(result.val_tasks)
    assert result.critic.provenance.env_id == "synthetic-craft"
    assert result.critic.provenance.data_fingerprint.startswith("sha256:")
    assert result.critic.provenance.synthetic_data
    assert result.critic.provenance.metrics["train_tasks"] == len(result.train_tasks)
    metrics, values = critic_metrics(result.critic, make_examples(craft_heldout))
    # Under the null (no skill) AUROC ~ N(0.5, ~0.03) with ~450 states; 0.6 is > 3 sigma.
    assert metrics["auroc_success"] > 0.6
    assert metrics["spearman"] > 0.15
    assert values.min() >= 0.0 and values.max() <= 1.0


def test_fit_is_reproducible(craft_data):
    a = fit(craft_data, FitConfig(seed=4))
    b = fit(list(reversed(craft_data)), FitConfig(seed=4))
    assert a.val_tasks == b.val_tasks
    assert a.critic.provenance.data_fingerprint == b.critic.provenance.data_fingerprint
    np.testing.assert_allclose(a.val_values[:5], a.critic.values(a.val_examples.histories[:5]))


def test_success_target_uses_logistic_probabilities(craft_data, craft_heldout):
    result = fit(craft_data, FitConfig(target="success"))
    assert result.critic.kind == "logistic"
    metrics, values = critic_metrics(result.critic, make_examples(craft_heldout, "success"))
    assert 0.0 <= values.min() and values.max() <= 1.0
    assert metrics["auroc_success"] > 0.6


def test_tiny_and_empty_datasets_say_what_is_needed(craft_data):
    with pytest.raises(DataError, match="no trajectories"):
        fit([])
    tiny = [t for t in craft_data if t.task_id in ("0", "1")]
    with pytest.raises(DataError, match=f"at least {MIN_STATES} states from {MIN_TASKS} tasks"):
        fit(tiny, source="RUN")
    other_env = [dataclasses.replace(craft_data[0], env_id="textcraft"), *craft_data[1:]]
    with pytest.raises(DataError, match="several environments"):
        fit(other_env)
    all_solved = [dataclasses.replace(t, success=True) for t in craft_data]
    with pytest.raises(DataError, match="both solved and failed"):
        fit(all_solved, FitConfig(target="success"))


def test_config_validation():
    with pytest.raises(ConfigError, match="val_fraction"):
        FitConfig(val_fraction=1.0)
    with pytest.raises(ConfigError, match="backend"):
        FitConfig(backend="xgboost")  # type: ignore[arg-type]


def test_metrics_handle_degenerate_inputs():
    metrics = prediction_metrics(
        np.array([0.5, 0.5]), np.array([1.0, 1.0]), np.array([1.0, 1.0]), np.array([0, 1])
    )
    assert metrics["auroc_success"] is None and metrics["spearman"] is None
    assert metrics["auroc_turn_2"] is None and metrics["n_turn_2"] == 0
    perfect = prediction_metrics(
        np.array([0.9, 0.1, 0.8, 0.2]),
        np.array([1.0, 0.0, 1.0, 0.0]),
        np.array([1.0, 0.0, 1.0, 0.0]),
        np.array([2, 2, 4, 4]),
    )
    assert perfect["auroc_turn_2"] == 1.0 and perfect["auroc_turn_4"] == 1.0
    assert sum(row["count"] for row in perfect["calibration"]) == 4


def test_hashed_critic_scores_states_without_turns(craft_data):
    from agentmc.critics.core import History

    result = fit(craft_data, FitConfig(last_turns=0), HashedConfig(n_features=2**12))
    values = result.critic.values(
        [History("Goal: craft stick."), *result.val_examples.histories[:3]]
    )
    assert values.shape == (4,) and np.all(np.isfinite(values))
    with_turns = fit(craft_data, FitConfig(), HashedConfig(n_features=2**12)).critic
    assert with_turns.values([History("Goal: craft stick.")] * 2).shape == (2,)
