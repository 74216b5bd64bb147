from __future__ import annotations

import logging

import numpy as np
import pytest

from agentmc.errors import DataError
from agentmc.rl.rows import step_advantages
from agentmc.rl.trl import completion_advantages

ROWS = (["u", "u", "v", "v"], ["a", "a", "b", "c"], [0, 1, 0, 0],
        ["s", "x", "p", "p"], ["x", "win", "q", "r"])  # fmt: skip


@pytest.mark.parametrize("estimator", ["grpo", "rloo", "g2po", "gigpo"])
def test_matches_the_row_core_and_keeps_torch_dtype_and_device(estimator):
    torch = pytest.importorskip("torch")
    rewards = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    got = completion_advantages(rewards, *ROWS, estimator=estimator)
    want, _ = step_advantages(rewards.numpy(), *ROWS, estimator=estimator)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64 and got.shape == (4,)
    np.testing.assert_allclose(got.numpy(), want)
    assert completion_advantages(rewards.float(), *ROWS).dtype == torch.float32


def test_numpy_nan_and_bad_rows(caplog):
    rewards = np.array([0.0, np.nan, 1.0, 0.0])
    with caplog.at_level(logging.WARNING, logger="agentmc.rl.trl"):
        out = completion_advantages(rewards, *ROWS)
    assert out[:2].tolist() == [0.0, 0.0] and "1 episodes with NaN" in caplog.text
    assert out[2] > 0 > out[3]  # the other group is unaffected
    with pytest.raises(DataError, match="one group"):
        completion_advantages(rewards, ["u", "v", "v", "v"], *ROWS[1:])
