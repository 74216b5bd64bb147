"""G2PO/GiGPO inside real, unpatched verl: its registry, DataProto and compute_advantage.

CI installs verl through the test extra (``verl==0.9.1``, CPU torch). Without
verl these tests skip; the glue itself is also tested in test_verl.py.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from agentmc.data.trajectory import Trajectory, Turn
from agentmc.errors import DataError
from agentmc.rl import verl as verl_glue
from agentmc.rl.estimators import EstimatorConfig, estimate, trajectory_advantages

pytest.importorskip("verl", reason="verl is not installed (pip install -e '.[verl]'; CI has it)")
torch = pytest.importorskip("torch")
from test_states import _random_rollouts  # noqa: E402
from test_verl import random_rows  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.config import AlgoConfig  # noqa: E402
from verl.trainer.ppo import core_algos  # noqa: E402
from verl.trainer.ppo.ray_trainer import compute_advantage  # noqa: E402

CONFIG = EstimatorConfig(gamma=0.9, step_weight=0.5)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(verl_glue, "_SETTINGS", verl_glue._SETTINGS)  # restored afterwards
    names = verl_glue.register(CONFIG)
    assert {"g2po", "gigpo"} <= set(core_algos.ADV_ESTIMATOR_REGISTRY)
    return names


def step_batch(seed, with_uid_keys=True):
    """A DataProto of shuffled step rows (ragged responses) and the same data as Episodes."""
    rng = np.random.default_rng(seed)
    columns, groups, order = random_rows(rng, n_groups=4)
    rewards, group_ids, traj_ids, steps, before, after, terminated = columns
    n, width = len(rewards), 6
    lengths = rng.integers(1, width + 1, n)
    mask = torch.as_tensor(np.arange(width)[None, :] < lengths[:, None], dtype=torch.float32)
    token_rewards = torch.zeros(n, width)
    token_rewards[torch.arange(n), torch.as_tensor(lengths - 1)] = torch.as_tensor(
        rewards.astype(np.float32)
    )
    if with_uid_keys:
        non_tensors = {"uid": verl_glue.step_uids(group_ids, traj_ids, steps, before, after,
                                                  terminated)}  # fmt: skip
    else:
        non_tensors = {"uid": group_ids, "traj_uid": traj_ids, "step_index": steps,
                       "state_key": before, "next_state_key": after,
                       "terminated": terminated}  # fmt: skip
    data = DataProto.from_dict(
        tensors={"token_level_rewards": token_rewards, "response_mask": mask},
        non_tensors=non_tensors,
    )
    return data, groups, order


def expected(groups, order, name):
    flat = np.concatenate([s for r in estimate(groups, name, CONFIG) for s in r.steps])
    return flat[order]


@pytest.mark.parametrize("name", ["g2po", "gigpo"])
def test_stock_compute_advantage_equals_the_estimators(registered, name):
    for seed in range(8):
        data, groups, order = step_batch(seed)
        # verl moves batches around: reorder, split and rejoin, pickle (Ray)
        perm = np.random.default_rng(seed).permutation(len(data))
        data = pickle.loads(pickle.dumps(DataProto.concat(data.select_idxs(perm).chunk(1))))
        out = compute_advantage(data, adv_estimator=name, config=AlgoConfig(adv_estimator=name))
        mask = data.batch["response_mask"].numpy()
        want = expected(groups, order, name)[perm][:, None] * mask
        np.testing.assert_allclose(out.batch["advantages"].numpy(), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(out.batch["returns"].numpy(), out.batch["advantages"].numpy())


def test_step_uids_are_the_group_ids_for_everything_else_in_verl():
    data, _, _ = step_batch(0)
    uids = data.non_tensor_batch["uid"]
    plain = [str(u) for u in uids]
    assert list(uids) == plain and {hash(u) for u in uids} == {hash(u) for u in plain}
    assert len(set(uids)) == len(set(plain)) == 4
    core = verl_glue.StepUid("u", "t", 1, "s", "s2")
    copy = pickle.loads(pickle.dumps(core))
    assert type(copy) is verl_glue.StepUid and copy == "u" and copy.next_state_key == "s2"


def test_plain_columns_via_our_compute_advantage_on_a_dataproto(registered):
    data, groups, order = step_batch(5, with_uid_keys=False)
    verl_glue.compute_advantage(data, "g2po")
    want = expected(groups, order, "g2po")[:, None] * data.batch["response_mask"].numpy()
    np.testing.assert_allclose(data.batch["advantages"].numpy(), want, rtol=1e-5, atol=1e-6)
    # stock verl drops these columns: without StepUid values it cannot run g2po, and says how
    with pytest.raises(DataError, match="step_uids"):
        compute_advantage(data, adv_estimator="g2po", config=AlgoConfig(adv_estimator="g2po"))


@pytest.mark.parametrize("name", ["g2po", "gigpo"])
def test_agentmc_trajectories_through_stock_verl_equal_trajectory_advantages(registered, name):
    """The rollout side: recorded TextCraft episodes -> DataProto rows -> verl's advantages."""
    rng = np.random.default_rng(3)
    trajectories = []
    for task, steps in _random_rollouts(rng, n_tasks=3, per_task=4, steps=12):
        turns = tuple(
            Turn(a, a, o, float(rng.random() < 0.2), i == len(steps) - 1 and rng.random() < 0.5)
            for i, (a, o) in enumerate(steps)
        )
        trajectories.append(Trajectory("textcraft", task[-20:], task, turns, "s", True))
    trajectories = [trajectories[i] for i in rng.permutation(len(trajectories))]
    rewards = np.array([turn.reward for t in trajectories for turn in t.turns])
    n, width = len(rewards), 4
    lengths = rng.integers(1, width + 1, n)
    mask = torch.as_tensor(np.arange(width)[None, :] < lengths[:, None], dtype=torch.float32)
    token_rewards = torch.zeros(n, width)
    token_rewards[torch.arange(n), torch.as_tensor(lengths - 1)] = torch.as_tensor(rewards).float()
    data = DataProto.from_dict(
        tensors={"token_level_rewards": token_rewards, "response_mask": mask},
        non_tensors={"uid": verl_glue.trajectory_uids(trajectories)},
    )
    out = compute_advantage(data, adv_estimator=name, config=AlgoConfig(adv_estimator=name))
    want, _ = trajectory_advantages(trajectories, name, CONFIG)
    np.testing.assert_allclose(
        out.batch["advantages"].numpy(), want[:, None] * mask.numpy(), rtol=1e-5, atol=1e-6
    )
    assert np.abs(want).max() > 0  # not vacuous
