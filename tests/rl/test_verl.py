from __future__ import annotations

import importlib
import logging
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest

from agentmc.errors import DataError, MissingExtraError
from agentmc.rl import verl as verl_glue
from agentmc.rl.estimators import ESTIMATORS, EstimatorConfig, estimate
from agentmc.rl.graph import Episode
from agentmc.rl.rows import step_advantages


def random_rows(rng, n_groups=3):
    """Step rows of random overlapping episodes, shuffled, plus the same data as Episodes."""
    rows, groups = [], []
    for g in range(n_groups):
        group = []
        for k in range(int(rng.integers(1, 5))):
            length = int(rng.integers(1, 6))
            states = [f"s{int(x)}" for x in rng.integers(0, 4, length + 1)]
            rewards = np.zeros(length)
            rewards[-1] = float(rng.integers(0, 2))
            terminated = bool(rng.integers(0, 2))
            group.append(Episode(f"u{g}", tuple(states), ("",) * length, rewards, terminated))
            for t in range(length):
                last = t == length - 1
                rows.append((rewards[t], f"u{g}", f"u{g}-{k}", t, states[t], states[t + 1],
                             terminated and last))  # fmt: skip
        groups.append(group)
    order = rng.permutation(len(rows))
    columns = [np.array([rows[i][c] for i in order], dtype=object) for c in range(7)]
    return columns, groups, order


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_step_rows_equal_the_episode_estimators(name):
    config = EstimatorConfig(gamma=0.9, step_weight=0.5)
    for seed in range(40):
        columns, groups, order = random_rows(np.random.default_rng(seed))
        rewards, group_ids, traj_ids, steps, before, after, terminated = columns
        got, n_nan = step_advantages(
            rewards.astype(float), group_ids, traj_ids, steps.astype(int), before, after,
            terminated.astype(bool), estimator=name, config=config,
        )  # fmt: skip
        flat = np.concatenate([s for r in estimate(groups, name, config) for s in r.steps])
        np.testing.assert_allclose(got, flat[order], atol=1e-12)
        assert n_nan == 0


def test_bad_rows_are_data_errors():
    ok = dict(
        step_rewards=[0.0, 1.0], group_ids=["u", "u"], traj_ids=["a", "a"], step_index=[0, 1],
        state_keys=["s", "x"], next_state_keys=["x", "win"],
    )  # fmt: skip
    assert step_advantages(**ok)[0].shape == (2,)
    for change, message in (
        ({"group_ids": ["u", "v"]}, "one group"),
        ({"step_index": [0, 2]}, "without gaps"),
        ({"step_index": [1, 1]}, "without gaps"),
        ({"state_keys": ["s", "y"]}, "differs"),
        ({"traj_ids": ["a"]}, "rows"),
        ({"state_keys": [["s"], "x"]}, "hashable"),
    ):
        with pytest.raises(DataError, match=message):
            step_advantages(**{**ok, **change})
    assert step_advantages(**{k: [] for k in ok})[0].shape == (0,)


def test_nan_rewards_zero_the_episode_and_are_logged(caplog):
    mask = np.ones((3, 2))
    rewards = np.array([[0.0, 0.0], [0.0, np.nan], [0.0, 0.0]])
    batch = {"traj_uid": ["a", "a", "b"], "step_index": [0, 1, 0],
             "state_key": ["s", "x", "s"], "next_state_key": ["x", "w", "l"]}  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="agentmc.rl.verl"):
        advantages, returns = verl_glue.compute_g2po_advantage(
            rewards, mask, index=np.array(["u"] * 3), non_tensor_batch=batch
        )
    assert np.all(advantages[:2] == 0) and "1 episodes with NaN" in caplog.text
    assert np.array_equal(advantages, returns)


def test_torch_tensors_in_and_out():
    torch = pytest.importorskip("torch")
    # two episodes of one group, three step rows; rewards on each row's last response token
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.int64)
    rewards = torch.zeros(3, 3)
    rewards[1, 2] = 1.0
    batch = {
        "uid": np.array(["u", "u", "u"], dtype=object),
        "traj_uid": np.array(["a", "a", "b"], dtype=object),
        "step_index": np.array([0, 1, 0]),
        "state_key": np.array(["s", "x", "s"], dtype=object),
        "next_state_key": np.array(["x", "win", "lose"], dtype=object),
    }
    advantages, _ = verl_glue.compute_g2po_advantage(
        rewards, mask, index=batch["uid"], config=None, non_tensor_batch=batch
    )
    assert isinstance(advantages, torch.Tensor) and advantages.dtype == torch.float32
    expected, _ = step_advantages(
        [0.0, 1.0, 0.0], batch["uid"], batch["traj_uid"], batch["step_index"],
        batch["state_key"], batch["next_state_key"],
    )  # fmt: skip
    np.testing.assert_allclose(advantages.numpy(), expected[:, None] * mask.numpy(), rtol=1e-6)
    data = SimpleNamespace(
        batch={"token_level_rewards": rewards, "response_mask": mask.float()},
        non_tensor_batch=batch,
    )
    verl_glue.compute_advantage(data, "gigpo")
    assert data.batch["advantages"].shape == (3, 3) and data.batch["returns"].dtype == torch.float32


def fake_verl(monkeypatch, preregistered=None):
    """A stand-in for verl.trainer.ppo.core_algos with verl's register_adv_est semantics."""
    core = types.ModuleType("verl.trainer.ppo.core_algos")
    core.ADV_ESTIMATOR_REGISTRY = dict(preregistered or {})

    def register_adv_est(name):
        def decorator(fn):
            if name in core.ADV_ESTIMATOR_REGISTRY and core.ADV_ESTIMATOR_REGISTRY[name] != fn:
                raise ValueError(f"Adv estimator {name} has already been registered")
            core.ADV_ESTIMATOR_REGISTRY[name] = fn
            return fn

        return decorator

    core.register_adv_est = register_adv_est
    names = ("verl", "verl.trainer", "verl.trainer.ppo")
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "verl.trainer.ppo.core_algos", core)
    sys.modules["verl.trainer.ppo"].core_algos = core
    return core


def test_register_into_verls_registry_and_call_like_verl(monkeypatch):
    monkeypatch.setattr(verl_glue, "_SETTINGS", verl_glue._SETTINGS)  # restored afterwards
    core = fake_verl(monkeypatch, {"gigpo": lambda **kwargs: None})
    assert verl_glue.register(EstimatorConfig(gamma=0.95)) == ["g2po"]  # verl-agent's gigpo kept
    assert verl_glue.register() == ["g2po"]  # idempotent
    function = core.ADV_ESTIMATOR_REGISTRY["g2po"]
    kwargs = {"token_level_rewards": np.zeros((1, 2)), "response_mask": np.ones((1, 2)),
              "config": object(), "index": np.array(["u"])}  # fmt: skip
    with pytest.raises(DataError, match="traj_uid"):
        function(**kwargs)  # verl's stock call has no per-step keys
    per_step = {"traj_uid": ["a"], "step_index": [0], "state_key": ["s"], "next_state_key": ["t"]}
    advantages, _ = function(**kwargs, non_tensor_batch=per_step)
    assert advantages.shape == (1, 2)


def test_import_registers_when_verl_is_loaded(monkeypatch):
    core = fake_verl(monkeypatch)
    module = importlib.reload(verl_glue)
    try:
        assert set(core.ADV_ESTIMATOR_REGISTRY) == {"g2po", "gigpo"}
    finally:
        monkeypatch.undo()
        importlib.reload(module)


def test_register_without_verl_names_what_to_install(monkeypatch):
    for name in ("verl", "verl.trainer", "verl.trainer.ppo", "verl.trainer.ppo.core_algos"):
        monkeypatch.setitem(sys.modules, name, None)  # also when the real verl is loaded
    with pytest.raises(MissingExtraError, match="verl"):
        verl_glue.register()
