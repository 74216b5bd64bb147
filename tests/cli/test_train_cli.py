from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from agentmc.cli.main import main
from agentmc.envs import make
from agentmc.policies.core import Policy
from agentmc.rl.policy import load_trained_policy
from agentmc.rollout import arollout

TINY = [
    "--estimator", "g2po", "--group-size", "3",
    "--tasks-per-iteration", "2", "--n-tasks", "3", "--feature-dim", "1024",
    "--iterations", "3",
]  # fmt: skip


def history(path):
    return [json.loads(line) for line in (path / "history.jsonl").read_text().splitlines()]


def test_tiny_run_writes_curve_policy_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *TINY]) == 0
    records = history(out)
    assert [r["iteration"] for r in records] == [0, 1, 2]
    assert all(0.0 <= r["success_rate"] <= 1.0 and r["n_nan"] == 0 for r in records)
    steps = [r["env_steps"] for r in records]
    assert steps == sorted(steps) and steps[0] > 0
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "trained:" in capsys.readouterr().out
    # the trained agent is just another policy: it plays TextCraft through the agent loop
    policy = load_trained_policy(out)
    assert isinstance(policy, Policy) and policy.name == "linear-g2po"
    env = make("textcraft", task_id="0")
    trajectory = asyncio.run(arollout(env, policy, np.random.default_rng(0)))
    assert trajectory.n_steps > 0 and trajectory.error is None
    assert trajectory.policy == "linear-g2po" and trajectory.synthetic is False


def test_rerun_resumes_and_extends_like_one_long_run(tmp_path):
    short, long = tmp_path / "short", tmp_path / "long"
    assert main(["train", "--out", str(short), *TINY]) == 0
    extended = [*TINY[:-1], "5"]
    assert main(["train", "--out", str(short), *extended]) == 0
    assert main(["train", "--out", str(long), *extended]) == 0
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in history(short)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in history(long)]
    a, b = load_trained_policy(short), load_trained_policy(long / "policy.json")
    np.testing.assert_array_equal(a.weights, b.weights)


def test_bad_flags_are_one_line_errors(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--out", out, "--estimator", "ppo"]) == 2
    assert main(["train", "--out", out, "--group-size", "0"]) == 2
    assert "--group-size must be >= 1" in capsys.readouterr().err
    assert main(["train", "--out", out, "--task-ids", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["train", "--out", out, *TINY]) == 0
    other = [a if a != "g2po" else "grpo" for a in TINY]
    assert main(["train", "--out", out, *other]) == 2
    assert "other settings" in capsys.readouterr().err
    assert len(history(tmp_path / "run")) == 3  # nothing written was lost
    with pytest.raises(SystemExit):
        main(["train", "--help"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--lora-rank", "0"], "rank"),
        (["--clip", "1.5"], "clip"),
        (["--kl-coef", "-1"], "kl_coef"),
        (["--init", "/nonexistent/sft"], "--init /nonexistent/sft: no saved LoRA policy"),
        (["--rollouts", "gpu"], "--rollouts"),
    ],
)
def test_lm_policy_bad_settings_fail_with_one_line(tmp_path, capsys, extra, message):
    pytest.importorskip("torch")
    code = main(["train", "--policy", "lm", "--out", str(tmp_path / "run"), *extra])
    assert code != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--samples", "0"], "--samples must be >= 1"),
        (["--eps", "2"], "--eps must be in [0, 1]"),
        (["--learning-rate", "0"], "--learning-rate must be > 0"),
        (["--env", "nosuch"], "unknown environment 'nosuch'"),
    ],
)
def test_sft_bad_settings_fail_with_one_line(tmp_path, capsys, extra, message):
    pytest.importorskip("torch")
    assert main(["sft", "--out", str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
