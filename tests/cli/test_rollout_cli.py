from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentmc.cli.main import main
from agentmc.data.store import RunStore
from agentmc.envs import task_ids

TASKS = task_ids("textcraft", "validation")[:3]
ARGS = ["--policy", "noisy-expert", "--split", "validation", "--n-tasks", "3", "--no-progress"]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "records.jsonl").read_text().splitlines()]


def test_rollout_records_then_resumes_without_redoing_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["rollout", "--out", str(out), *ARGS, "--samples-per-task", "2"]) == 0
    first = records(out)
    assert [r["key"] for r in first] == [f"{t}/{s}" for t in TASKS for s in (0, 1)]
    for record in first:
        data = record["data"]
        assert record["kind"] == "trajectory"
        assert data["policy"] == "noisy-expert" and data["synthetic"] is True
        assert data["task_id"] == record["key"].split("/")[0]
        assert data["n_steps"] == len(data["turns"]) > 0
        assert data["usage"]["calls"] == data["n_steps"]
        assert data["success"] == (data["return"] > 0)
    # the two samples of a task are different episodes (different seeds)
    assert first[0]["data"]["seed"] != first[1]["data"]["seed"]
    summary = capsys.readouterr().out
    assert "6 episodes (6 new, 0 resumed)" in summary and "(synthetic)" in summary
    meta = json.loads((out / "run.json").read_text())
    assert meta["command"] == "rollout" and meta["config"]["policy"]["policy"] == "noisy-expert"

    before = (out / "records.jsonl").read_bytes()
    assert main(["rollout", "--out", str(out), *ARGS, "--samples-per-task", "2"]) == 0
    assert "6 episodes (0 new, 6 resumed)" in capsys.readouterr().out
    assert (out / "records.jsonl").read_bytes() == before

    # an interrupted run (last record lost) redoes exactly the missing unit, identically
    lines = before.decode().splitlines(keepends=True)
    (out / "records.jsonl").write_text("".join(lines[:-1]))
    assert (
        main(["rollout", "--out", str(out), *ARGS, "--samples-per-task", "2", "--workers", "1"])
        == 0
    )
    assert "(1 new, 5 resumed)" in capsys.readouterr().out
    assert (out / "records.jsonl").read_bytes() == before
    assert len(RunStore.open(out).trajectories()) == 6


def test_episode_of_a_task_does_not_depend_on_which_tasks_run(tmp_path):
    main(["rollout", "--out", str(tmp_path / "a"), *ARGS])
    main(
        ["rollout", "--out", str(tmp_path / "b"), "--policy", "noisy-expert",
         "--split", "validation", "--task-ids", TASKS[2], "--no-progress"]
    )  # fmt: skip
    alone = records(tmp_path / "b")[0]
    assert alone == next(r for r in records(tmp_path / "a") if r["key"] == f"{TASKS[2]}/0")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "bogus"], "unknown policy spec 'bogus'; valid forms:"),
        (["--policy", "openai:"], "nothing after ':'"),
        (["--samples-per-task", "0"], "--samples-per-task must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--temperature", "-1"], "--temperature must be >= 0"),
        (["--task-ids", "no-such-task"], "unknown textcraft task id(s) no-such-task"),
        (["--split", "nope"], "nope"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["rollout", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentmc rollout: error:") and err.count("\n") == 1, err
    assert message in err
    assert not (out / "records.jsonl").exists()


def test_resuming_with_other_settings_is_refused_and_keeps_records(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["rollout", "--out", str(out), *ARGS]) == 0
    before = (out / "records.jsonl").read_bytes()
    assert main(["rollout", "--out", str(out), *ARGS, "--seed", "1"]) == 2
    assert "different settings" in capsys.readouterr().err
    assert (out / "records.jsonl").read_bytes() == before


def test_two_processes_write_byte_identical_records(tmp_path):
    outputs = []
    for hash_seed in ("1", "12345"):
        out = tmp_path / f"run-{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        command = [sys.executable, "-m", "agentmc.cli.main", "rollout", "--out", str(out), *ARGS]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append((out / "records.jsonl").read_bytes())
    assert outputs[0] == outputs[1] and outputs[0].count(b"\n") == 3
