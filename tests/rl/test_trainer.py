from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import pytest

from agentmc.envs.core import StepResult
from agentmc.errors import ConfigError, DataError, PolicyError, UnknownNameError
from agentmc.rl.estimators import EstimatorConfig
from agentmc.rl.losses import LOSSES
from agentmc.rl.policy import Decisions, LinearPolicy, chosen_log_probs, loss_gradient
from agentmc.rl.trainer import GRPOConfig, train
from agentmc.types import Message


@dataclass
class Corridor:
    """Walk ``length`` cells forward to win; "jump" loses; "wait" and "back" waste steps."""

    task_id: str = "0"
    env_id: str = "corridor"

    def __post_init__(self) -> None:
        self.length = 2 + int(self.task_id)
        self.position = 0

    def reset(self, *, seed=None, options=None):
        self.position = 0
        return f"Reach cell {self.length}.", {}

    def step(self, action: str) -> StepResult:
        if action == "jump":
            return StepResult("You fell.", 0.0, True, False, {"success": False})
        self.position += {"forward": 1, "back": -1}.get(action, 0)
        self.position = max(self.position, 0)
        if self.position == self.length:
            return StepResult("You arrived.", 1.0, True, False, {"success": True})
        return StepResult(f"position: {self.position}", 0.0, False, False, {})

    def valid_actions(self):
        return ["forward", "back", "wait", "jump"]

    def snapshot(self):
        return self.position

    def restore(self, snapshot):
        self.position = snapshot

    def close(self):
        pass


def run(estimator, seed=0, iterations=12, **kwargs):
    config = GRPOConfig(
        env_id="corridor", estimator=estimator, iterations=iterations, tasks_per_iteration=2,
        group_size=6, max_steps=8, learning_rate=0.2, feature_dim=2**10, seed=seed, **kwargs,
    )  # fmt: skip
    return train(config, make_env=lambda task_id: Corridor(task_id), tasks=["0", "1"])


@pytest.mark.parametrize("estimator", ["grpo", "rloo", "g2po", "gigpo"])
def test_training_improves_success(estimator):
    history = run(estimator).history
    first = np.mean([r["success_rate"] for r in history[:3]])
    last = np.mean([r["success_rate"] for r in history[-3:]])
    assert last > first + 0.2, (first, last)
    assert history[-1]["env_steps"] == sum(r["mean_length"] * 12 for r in history)


def test_runs_are_reproducible_and_record_progress():
    a, b = run("g2po", iterations=3), run("g2po", iterations=3)
    assert [r["success_rate"] for r in a.history] == [r["success_rate"] for r in b.history]
    np.testing.assert_array_equal(a.policy.weights, b.policy.weights)
    steps = [r["env_steps"] for r in a.history]
    assert steps == sorted(steps) and steps[0] > 0
    assert {"n_nodes", "n_edges", "n_nan", "loss"} <= set(a.history[0])


def test_ppo_clip_with_several_epochs_runs():
    result = run("g2po", iterations=2, loss="ppo_clip", epochs=3)
    assert np.all(np.isfinite(result.policy.weights))


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    policy = LinearPolicy("corridor", dim=64, weights=rng.normal(size=64))
    batch = Decisions()
    for state in ("position: 1", "position: 2", "Reach cell 3."):
        candidates = ["forward", "back", "wait", "jump"]
        features = policy.features(state, candidates, "wait")
        log_probs = policy.log_probs(features, 4, 0.7)
        choice = int(rng.integers(4))
        batch.add(features, 4, choice, float(log_probs[choice]))
    advantages = rng.normal(size=len(batch))
    old = np.asarray(batch.old_log_probs)
    for name, loss_fn in LOSSES.items():

        def loss_at(w, loss_fn=loss_fn):
            return loss_fn(chosen_log_probs(w, batch, 0.7), old, advantages, 0.2)[0]

        coef = loss_fn(chosen_log_probs(policy.weights, batch, 0.7), old, advantages, 0.2)[1]
        grad = loss_gradient(policy.weights, batch, coef, 0.7)
        for i in np.flatnonzero(grad)[:10]:
            step = np.zeros(64)
            step[i] = 1e-6
            numeric = (loss_at(policy.weights + step) - loss_at(policy.weights - step)) / 2e-6
            assert grad[i] == pytest.approx(numeric, rel=1e-4, abs=1e-8), name


def test_policy_is_a_policy_and_round_trips(tmp_path):
    result = run("grpo", iterations=2)
    policy = result.policy
    path = policy.save(tmp_path / "policy")
    loaded = LinearPolicy.load(path)
    np.testing.assert_array_equal(loaded.weights, policy.weights)
    assert loaded.name == "linear-grpo" and loaded.synthetic is False
    messages = (
        Message("user", "Reach cell 2."),
        Message("assistant", "forward"),
        Message("user", "position: 1"),
    )
    candidates = ["forward", "back", "wait", "jump"]
    samples = asyncio.run(loaded.complete(messages, n=5, seed=3, candidates=candidates))
    again = asyncio.run(policy.complete(messages, n=5, seed=3, candidates=candidates))
    assert [c.text for c in samples] == [c.text for c in again]
    assert all(c.text in candidates and c.logprob <= 0 for c in samples)
    greedy = asyncio.run(loaded.complete(messages, n=2, temperature=0, candidates=candidates))
    assert greedy[0].text == greedy[1].text
    with pytest.raises(PolicyError, match="candidate"):
        asyncio.run(loaded.complete(messages))


def test_bad_config_and_files(tmp_path):
    with pytest.raises(UnknownNameError):
        GRPOConfig(estimator="ppo")
    with pytest.raises(UnknownNameError):
        GRPOConfig(loss="dpo")
    with pytest.raises(ConfigError, match="group_size"):
        GRPOConfig(group_size=0)
    with pytest.raises(ConfigError, match="gamma"):
        GRPOConfig(advantage=EstimatorConfig(gamma=3.0))
    with pytest.raises(DataError):
        LinearPolicy.load(tmp_path / "missing")
    (tmp_path / "bad.json").write_text("{}")
    np.savez(tmp_path / "bad.npz", weights=np.zeros(3))
    with pytest.raises(DataError, match="linear-softmax"):
        LinearPolicy.load(tmp_path / "bad.json")
