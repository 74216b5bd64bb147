from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from agentmc.cli.main import main
from agentmc.critics.artifact import META_FILE, load
from agentmc.data.store import RunStore
from agentmc.envs import make, task_ids
from agentmc.policies.expert import NoisyExpertPolicy
from agentmc.rollout import arollout
from agentmc.seeding import task_rng

#: Significance level of the "better than chance" check on held-out tasks.
ALPHA = 0.001
FAST = ["--backend-options", "n_features=4096"]


def write_run(path: Path, split: str, n_tasks: int, samples: int, seed: int) -> Path:
    """A run directory of noisy-expert TextCraft episodes, written through the library."""
    store = RunStore.create_or_resume(path, command="rollout", seed=seed, config={"split": split})
    # the testbed prior: the noise-free expert solves every task, so outcomes vary only with eps
    policy = NoisyExpertPolicy(0.0, 0.0, eps=0.85)

    async def play() -> None:
        for index, task in enumerate(task_ids("textcraft", split)[:n_tasks]):
            for sample in range(samples):
                env = make("textcraft", task_id=task)
                trajectory = await arollout(env, policy, task_rng(seed, index, sample))
                store.write_trajectory(trajectory, key=f"{task}/{sample}")

    asyncio.run(play())
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("critic-runs")
    return {
        "train": write_run(root / "train", "train", 40, 3, seed=0),
        "heldout": write_run(root / "heldout", "validation", 30, 2, seed=1),
    }


@pytest.fixture(scope="module")
def trained(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("critic") / "hashed"
    assert main(["critic", "train", "--data", str(runs["train"]), "--out", str(out), *FAST]) == 0
    return out


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"agentmc {command}: error: ")
    return err[0]


def test_train_writes_an_artifact_with_split_and_metrics(trained, runs, capsys):
    meta = json.loads((trained / META_FILE).read_text())
    provenance = meta["provenance"]
    assert meta["backend"] == "hashed" and meta["env_id"] == "textcraft"
    assert provenance["synthetic_data"] is True
    assert provenance["target"] == "return" and provenance["last_turns"] == 10
    assert provenance["n_trajectories"] == 120
    train, val = set(provenance["train_tasks"]), set(provenance["val_tasks"])
    assert len(val) == 8 and len(train) == 32 and not train & val
    assert meta["config"]["n_features"] == 4096
    assert provenance["metrics"]["mse"] >= 0.0 and "auroc_success" in provenance["metrics"]
    critic = load(trained, env_id="textcraft")
    assert critic.values([]).shape == (0,)


def test_eval_reports_metrics_plot_and_predictions(trained, runs, tmp_path, capsys):
    out = tmp_path / "eval"
    capsys.readouterr()
    assert (
        main(
            [
                "critic",
                "eval",
                "--critic",
                str(trained),
                "--data",
                str(runs["heldout"]),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "(synthetic data)" in printed.out and "AUROC at turn 2" in printed.out
    assert "not fully held-out" not in printed.err
    report = json.loads((out / "metrics.json").read_text())
    metrics = report["metrics"]
    assert report["tasks_in_critic_training"] == 0 and report["synthetic"] is True
    for key in ("mse", "spearman", "auroc_success", "auroc_turn_2", "auroc_turn_4", "calibration"):
        assert key in metrics
    # ~60 episodes: the null AUROC has sd ~0.04; 0.65 is > 3.5 sd above chance (< ALPHA).
    assert metrics["auroc_success"] > 0.65
    assert metrics["spearman"] > 0.3
    with (out / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == metrics["n_states"] + metrics["n_final_states"]
    assert sum(int(r["final"]) for r in rows) == metrics["n_final_states"] > 0
    assert "within task (same task, same step" in printed.out
    for key in ("within_task_auroc", "within_task_pairwise_accuracy", "final_auroc"):
        assert key in metrics
    values = np.array([float(r["value"]) for r in rows])
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert (out / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_on_training_data_says_it_is_not_held_out(trained, runs, tmp_path, capsys):
    capsys.readouterr()
    args = ["--critic", str(trained), "--data", str(runs["train"]), "--out", str(tmp_path)]
    assert main(["critic", "eval", *args, "--no-plot"]) == 0
    assert "32 of 40 tasks were in the critic's training split" in capsys.readouterr().err
    assert json.loads((tmp_path / "metrics.json").read_text())["tasks_in_critic_training"] == 32
    assert not (tmp_path / "reliability.png").exists()


def test_success_and_td_targets(runs, trained, tmp_path, capsys):
    success = tmp_path / "success"
    assert (
        main(
            [
                "critic",
                "train",
                "--data",
                str(runs["train"]),
                "--out",
                str(success),
                "--target",
                "success",
                *FAST,
            ]
        )
        == 0
    )
    assert load(success).kind == "logistic"
    td = tmp_path / "td"
    assert (
        main(
            [
                "critic",
                "train",
                "--data",
                str(runs["train"]),
                "--out",
                str(td),
                "--target",
                "td",
                "--td-critic",
                str(trained),
                "--lam",
                "0.5",
                *FAST,
            ]
        )
        == 0
    )
    meta = json.loads((td / META_FILE).read_text())
    assert meta["provenance"]["target"] == "td" and meta["provenance"]["metrics"]["lam"] == 0.5
    capsys.readouterr()
    assert (
        main(
            [
                "critic",
                "eval",
                "--critic",
                str(td),
                "--data",
                str(runs["heldout"]),
                "--out",
                str(tmp_path / "e"),
                "--no-plot",
            ]
        )
        == 0
    )
    assert "return target" in capsys.readouterr().out
    assert (
        main(["critic", "train", "--data", str(runs["train"]), "--out", str(td), "--target", "td"])
        == 2
    )
    assert "--target td and --td-critic" in one_line_error(capsys, "critic train")


def test_bad_data_exits_2_with_one_line(runs, trained, tmp_path, capsys):
    out = str(tmp_path / "c")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["critic", "train", "--data", str(empty), "--out", out]) == 2
    assert "not an agentmc run directory" in one_line_error(capsys, "critic train")
    assert main(["critic", "train", "--data", str(tmp_path / "missing"), "--out", out]) == 2
    assert "does not exist" in one_line_error(capsys, "critic train")
    RunStore.create_or_resume(tmp_path / "none", command="collect", seed=0, config={})
    assert main(["critic", "train", "--data", str(tmp_path / "none"), "--out", out]) == 2
    assert "holds no trajectories (no records yet)" in one_line_error(capsys, "critic train")
    tiny = write_run(tmp_path / "tiny", "train", 2, 1, seed=0)
    assert main(["critic", "train", "--data", str(tiny), "--out", out]) == 2
    assert "at least 20 states from 4 tasks" in one_line_error(capsys, "critic train")
    assert not Path(out).exists()


def test_bad_backend_options_list_the_valid_keys(runs, tmp_path, capsys):
    args = ["critic", "train", "--data", str(runs["train"]), "--out", str(tmp_path / "c")]
    assert main([*args, "--backend-options", "rank=4"]) == 2
    assert "valid: n_features, char_ngrams" in one_line_error(capsys, "critic train")
    assert main([*args, "--backend-options", "n_features=lots"]) == 2
    assert "expected int" in one_line_error(capsys, "critic train")
    assert main([*args, "--backend-options", "n_features=1000"]) == 2
    assert "power of two" in one_line_error(capsys, "critic train")


def test_eval_refuses_other_environment_and_corrupt_artifacts(trained, runs, tmp_path, capsys):
    other = tmp_path / "guess"
    assert (
        main(
            [
                "rollout",
                "--out",
                str(other),
                "--env",
                "guess-number",
                "--policy",
                "random",
                "--split",
                "train",
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    args = ["critic", "eval", "--critic", str(trained), "--out", str(tmp_path / "e")]
    assert main([*args, "--data", str(other)]) == 2
    assert "trained on environment 'textcraft', not 'guess-number'" in one_line_error(
        capsys, "critic eval"
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    for file in trained.iterdir():
        (broken / file.name).write_bytes(file.read_bytes())
    model = broken / "model.npz"
    model.write_bytes(model.read_bytes()[:100])
    args = ["critic", "eval", "--critic", str(broken), "--out", str(tmp_path / "e")]
    assert main([*args, "--data", str(runs["heldout"])]) == 2
    assert "corrupt or truncated" in one_line_error(capsys, "critic eval")


def test_collect_runs_the_train_split_resumably_and_refuses_test_tasks(tmp_path, capsys):
    out = tmp_path / "prior"
    args = ["collect", "--out", str(out), "--n-tasks", "3", "--no-progress"]
    assert main(args) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["command"] == "collect" and meta["config"]["tasks"]["split"] == "train"
    assert meta["config"]["samples_per_task"] == 4
    trajectories = RunStore.open(out).trajectories()
    train = set(task_ids("textcraft", "train")[:3])
    assert len(trajectories) == 12 and {t.task_id for t in trajectories} == train
    assert all(t.synthetic for t in trajectories)
    assert len({(t.task_id, t.seed) for t in trajectories}) == 12
    before = (out / "records.jsonl").read_bytes()
    capsys.readouterr()
    assert main(args) == 0
    assert "(0 new, 12 resumed)" in capsys.readouterr().out
    assert (out / "records.jsonl").read_bytes() == before

    assert main(["collect", "--out", str(tmp_path / "x"), "--split", "test"]) == 2
    assert "held out for evaluation" in one_line_error(capsys, "collect")
    test_task = task_ids("textcraft", "test")[0]
    assert main(["collect", "--out", str(tmp_path / "x"), "--task-ids", test_task]) == 2
    assert "are test tasks" in one_line_error(capsys, "collect")
    assert not (tmp_path / "x").exists()
