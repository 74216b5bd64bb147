from __future__ import annotations

import numpy as np
import pytest

from agentmc.errors import ConfigError, DataError
from agentmc.rl.curves import mean_curve, plot_curves, smoothed_curve, steps_to_reach


def history(successes, step=10):
    return [{"env_steps": step * (i + 1), "success_rate": s} for i, s in enumerate(successes)]


def test_smoothing_equals_a_loop_reference():
    rng = np.random.default_rng(0)
    values = rng.random(17)
    for window in (1, 3, 20):
        _, got = smoothed_curve(history(values), window=window)
        want = [values[max(0, i + 1 - window) : i + 1].mean() for i in range(len(values))]
        np.testing.assert_allclose(got, want)


def test_mean_curve_and_steps_to_reach():
    a, b = history([0.0, 0.0, 1.0, 1.0], step=10), history([0.0, 1.0], step=20)
    grid = np.array([10.0, 20.0, 30.0, 40.0])
    mean, low, high = mean_curve([a, b], grid, window=1)
    np.testing.assert_allclose(mean, [0.0, 0.0, 0.75, 1.0])  # b: 0 at 20, 1 at 40, held after
    np.testing.assert_allclose(low, [0.0, 0.0, 0.5, 1.0])
    assert steps_to_reach(grid, mean, 0.75) == 30.0
    assert steps_to_reach(grid, mean, 1.01) is None


def test_bad_input():
    with pytest.raises(ConfigError):
        smoothed_curve(history([1.0]), window=0)
    with pytest.raises(DataError):
        smoothed_curve([{"env_steps": 1}])
    with pytest.raises(DataError):
        mean_curve([], np.zeros(1))


def test_plot_writes_a_png(tmp_path):
    path = plot_curves({"grpo": [history([0, 0.5, 1])], "g2po": [history([0, 1, 1])] * 2},
                       tmp_path / "c.png", target=0.5)  # fmt: skip
    assert path.read_bytes()[:4] == b"\x89PNG"
