from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmc.cli.main import main
from agentmc.envs import task_ids
from agentmc.methods import EpisodeResult

TASKS = task_ids("textcraft", "validation")[:3]
ARGS = ["--split", "validation", "--n-tasks", "3", "--no-progress"]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "records.jsonl").read_text().splitlines()]


def test_amc_run_writes_episodes_summary_and_resumes(tmp_path, capsys):
    out = tmp_path / "amc"
    argv = ["run", "--out", str(out), "--method", "amc", "--particles", "4", *ARGS]
    assert main([*argv, "--schedule", "ess:0.5"]) == 0
    first = records(out)
    assert [r["key"] for r in first] == [f"amc@reward-k4-ess:0.5/{t}" for t in TASKS]
    for record in first:
        data = record["data"]
        assert record["kind"] == "episode" and data["synthetic"] is True
        assert data["method"] == "amc@reward-k4-ess:0.5" and data["selection"] == "reward"
        episode = EpisodeResult.from_dict(data["episode"])
        assert episode.task_id == data["task_id"] and len(episode.candidates_rewards) == 4
        assert data["success"] == episode.trajectory.success
        checkpoints = episode.diagnostics["checkpoints"]
        assert checkpoints and all("ess" in c and "log_evidence" in c for c in checkpoints)
    out_text = capsys.readouterr().out
    assert "3 tasks (3 new, 0 resumed)" in out_text and "success" in out_text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summaries"][0]["n_tasks"] == 3
    assert summary["failed_particles"] == 0

    before = (out / "records.jsonl").read_bytes()
    assert main([*argv, "--schedule", "ess:0.5", "--workers", "1"]) == 0
    assert "(0 new, 3 resumed)" in capsys.readouterr().out
    assert (out / "records.jsonl").read_bytes() == before
    # a different method in the same directory is refused
    assert main([*argv, "--schedule", "every"]) == 2
    assert "different settings" in capsys.readouterr().err


def test_single_and_best_of_n_with_budget(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path / "s"), "--method", "single", *ARGS]) == 0
    single = records(tmp_path / "s")
    assert all(r["data"]["selection"] == "none" and r["data"]["method"] == "single" for r in single)
    argv = ["run", "--out", str(tmp_path / "b"), "--method", "bon", "--particles", "4"]
    assert main([*argv, "--max-calls", "8", *ARGS]) == 0
    bon = records(tmp_path / "b")
    assert all(r["data"]["calls"] <= 8 and r["data"]["budget_exhausted"] for r in bon)
    assert "tasks that hit the budget: 3" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--method", "single", "--particles", "3"], "runs one episode"),
        (["--beta", "0"], "beta must be > 0"),
        (["--beta", "-2"], "beta must be > 0"),
        (["--particles", "0"], "particles must be >= 1"),
        (["--schedule", "sometimes"], "unknown schedule"),
        (["--resampler", "magic"], "unknown resampler"),
        (["--schedule", "steps:4,30"], "beyond the step cap"),
        (["--select", "critic"], "needs a critic"),
        (["--method", "mcts"], "mcts"),
        (["--critic", "no/such/critic"], "no/such/critic"),
    ],
)
def test_bad_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    out = tmp_path / "bad"
    assert main(["run", "--out", str(out), *ARGS, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (out / "records.jsonl").exists()
