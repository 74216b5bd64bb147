"""Task and executor flags shared by the commands: split files, option checks, --executor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmc.cli.main import main
from agentmc.envs import task_ids
from agentmc.methods import EpisodeResult

AMC_SPLITS = Path(__file__).resolve().parents[3] / "shared" / "data" / "amc-splits"


def test_tasks_lists_the_ids_of_a_sciworld_split_file(tmp_path, capsys):
    ids = tmp_path / "test_ids.json"
    ids.write_text("[120, 5, 4638]")
    argv = ["tasks", "--env", "sciworld", "--split", "test", "--split-json", str(ids)]
    assert main([*argv, "--show", "ids"]) == 0
    assert capsys.readouterr().out.split() == ["5", "120", "4638"]


@pytest.mark.skipif(not AMC_SPLITS.is_dir(), reason="the AMC paper's split files are not here")
def test_the_amc_paper_sciworld_test_split_loads_from_the_command_line(capsys):
    path = AMC_SPLITS / "sciworld_idx_sciworld_test_idx.json"
    assert main(["tasks", "--env", "sciworld", "--split", "test", "--split-json", str(path)]) == 0
    assert "test         200 tasks" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "textcraft", "--split-json", "x.json"], "ScienceWorld option"),
        (["--env", "sciworld", "--goals-csv", "x.csv"], "TextCraft option"),
        (["--env", "sciworld", "--split", "all", "--split-json", "x.json"], "needs one --split"),
        (["--env", "sciworld", "--split", "test", "--split-json", "no/such.json"], "cannot read"),
    ],
)
def test_mismatched_task_flags_are_one_line_errors(capsys, argv, message):
    assert main(["tasks", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ray-address", "ray://x:10001"], "--ray-address needs --executor ray"),
        (["--executor", "ray", "--ray-workers", "0"], "--ray-workers must be at least 1"),
        (["--executor", "dask"], "dask"),
    ],
)
def test_bad_executor_flags_are_one_line_errors(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--method", "single", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not out.exists()


def _episodes(out: Path) -> dict[str, EpisodeResult]:
    lines = (out / "records.jsonl").read_text().splitlines()
    return {
        record["key"]: EpisodeResult.from_dict(record["data"]["episode"])
        for record in map(json.loads, lines)
    }


def test_amc_with_environments_in_ray_actors_equals_local(tmp_path, capsys):
    pytest.importorskip("ray")
    argv = ["run", "--method", "amc", "--particles", "4", "--beta", "0.5", "--no-progress"]
    argv += ["--task-ids", *task_ids("textcraft", "validation")[:4], "--max-steps", "8"]
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    flags = ["--executor", "ray", "--ray-workers", "2"]
    assert main([*argv, *flags, "--out", str(tmp_path / "ray")]) == 0
    local, remote = _episodes(tmp_path / "local"), _episodes(tmp_path / "ray")
    assert local.keys() == remote.keys() and len(local) == 4
    for key, episode in local.items():
        other = remote[key]
        assert other.trajectory == episode.trajectory
        assert other.candidates_rewards == episode.candidates_rewards
        assert other.diagnostics["checkpoints"] == episode.diagnostics["checkpoints"]
    # the executor is where environments run, not part of the run: resuming may switch it
    assert main([*argv, "--out", str(tmp_path / "local"), *flags]) == 0
    assert "(0 new, 4 resumed)" in capsys.readouterr().out
