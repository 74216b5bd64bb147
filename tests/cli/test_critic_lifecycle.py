"""A critic over a deployment's life: eval/run data -> train/refresh -> eval, judge critics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_critic_cli import FAST, one_line_error, write_run

from agentmc.cli.main import main
from agentmc.critics.artifact import META_FILE, load
from agentmc.critics.fit import load_runs
from agentmc.critics.judge import PROMPT, PROMPT_FILE, JudgeCritic
from agentmc.data.particles import unpack
from agentmc.data.store import RunStore
from agentmc.testing.openai_server import OpenAITestServer

EVAL = ["--guard-tasks", "0", "--no-progress", "--no-report", "--workers", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return {"train": write_run(tmp_path_factory.mktemp("prior") / "train", "train", 24, 3, 0)}


@pytest.fixture(scope="module")
def trained(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("critic") / "hashed"
    assert main(["critic", "train", "--data", str(runs["train"]), "--out", str(out), *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def day1(trained, tmp_path_factory) -> Path:
    """An evaluation on 8 validation tasks (the critic trained on train-split tasks)."""
    out = tmp_path_factory.mktemp("day1") / "eval"
    methods = ["single", "bon:3:critic", "amc:3:critic"]
    args = ["--split", "validation", "--n-tasks", "8", "--critic", str(trained)]
    assert main(["eval", "--out", str(out), "--methods", *methods, *args, *EVAL]) == 0
    return out


def test_eval_keeps_every_particle_compactly(day1):
    records = [r["data"] for r in RunStore.open(day1).records("result")]
    assert records
    shared = 0
    for record in records:
        episode = record["episode"]
        if record["method"] == "single":
            assert "particles" not in episode
            continue
        packed = episode["particles"]
        particles = unpack(packed)
        assert len(particles) == 3
        turns = sum(len(t.turns) for t in particles)
        assert len(packed["nodes"]) <= turns
        shared += len(packed["nodes"]) < turns
        selected = particles[episode["diagnostics"]["selected"]]
        assert [t.to_dict() for t in selected.turns] == episode["trajectory"]["turns"]
        assert selected.success == record["success"]
    assert shared > 0  # AMC's resampled particles share their past
    trajectories = load_runs([day1])
    assert {t.meta["split"] for t in trajectories} == {"validation"}
    assert {t.meta["source"] for t in trajectories} == {"eval"}
    # single: 1 per task; bon: all 3; amc: identical resampled leaves kept once.
    per_task = len(trajectories) / 8
    assert 1 + 3 + 1 <= per_task <= 1 + 3 + 3


def test_critic_train_accepts_run_and_eval_directories(day1, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--method", "bon", "--particles", "2", "--split", "validation", "--n-tasks", "5"]
    assert main(["run", "--out", str(run), *args, "--no-progress"]) == 0
    out = tmp_path / "critic"
    capsys.readouterr()
    assert main(["critic", "train", "--data", str(day1), str(run), "--out", str(out), *FAST]) == 0
    provenance = json.loads((out / META_FILE).read_text())["provenance"]
    assert provenance["n_trajectories"] == len(load_runs([day1, run]))
    assert provenance["version"] == 1 and provenance["lineage"][0]["version"] == 1


def test_training_on_test_split_data_says_so(tmp_path, capsys):
    run = tmp_path / "test-run"
    args = ["--method", "bon", "--particles", "3", "--split", "test", "--n-tasks", "6"]
    assert main(["run", "--out", str(run), *args, "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "critic"
    assert main(["critic", "train", "--data", str(run), "--out", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert "played on a test split; do not evaluate this critic on them" in err
    # ... and evaluation on those tasks is refused with one line.
    evaluate = ["eval", "--out", str(tmp_path / "e"), "--critic", str(out), "--n-tasks", "6"]
    assert main([*evaluate, "--methods", "amc:2:critic", *EVAL]) == 2
    assert "never evaluate a critic on its training tasks" in one_line_error(capsys, "eval")
    assert not (tmp_path / "e").exists()


def test_refresh_warm_starts_a_new_version_with_lineage(trained, day1, tmp_path, capsys):
    out = tmp_path / "v2"
    capsys.readouterr()
    args = ["--critic", str(trained), "--data", str(day1), "--out", str(out)]
    args += ["--val-fraction", "0.5"]
    assert main(["critic", "refresh", *args]) == 0
    printed = capsys.readouterr().out
    assert "v1 -> v2" in printed and "within-task AUROC" in printed
    old = json.loads((trained / META_FILE).read_text())["provenance"]
    new = json.loads((out / META_FILE).read_text())["provenance"]
    assert new["version"] == 2 and new["parent"]["version"] == 1
    assert new["parent"]["path"] == str(trained)
    assert new["parent"]["data_fingerprint"] == old["data_fingerprint"]
    assert [e["version"] for e in new["lineage"]] == [1, 2]
    assert new["lineage"][1]["data_fingerprint"] == new["data_fingerprint"]
    assert new["data_fingerprint"] != old["data_fingerprint"]
    assert set(old["train_tasks"]) <= set(new["train_tasks"])
    compared = new["metrics"]["refresh"]
    assert compared["heldout_tasks"] == 4 and "within_task_auroc" in compared["parent"]
    # The held-out tasks are new to both versions.
    assert not set(old["train_tasks"]) & (set(new["val_tasks"]) - set(old["val_tasks"]))
    critic = load(out, env_id="textcraft")
    assert critic.values([]).shape == (0,)
    # A warm start moves from the parent's weights, it does not start from zero.
    parent = load(trained)
    assert (critic.coef != 0).sum() >= (parent.coef != 0).sum()


def test_refresh_needs_unseen_tasks(trained, runs, tmp_path, capsys):
    capsys.readouterr()
    args = ["--critic", str(trained), "--data", str(runs["train"]), "--out", str(tmp_path / "x")]
    assert main(["critic", "refresh", *args]) == 2
    assert "task(s) the old critic never saw" in one_line_error(capsys, "critic refresh")


def test_judge_is_a_critic_artifact_and_a_per_method_critic(trained, day1, tmp_path, capsys):
    with OpenAITestServer(replies=["Chance of success: 70%"]) as server:
        judge = tmp_path / "judge"
        args = [
            "--backend",
            "judge",
            "--judge-policy",
            "openai:test-model",
            "--judge-base-url",
            server.base_url,
            "--judge-states",
            "12",
        ]
        assert main(["critic", "train", "--data", str(day1), "--out", str(judge), *args]) == 0
        meta = json.loads((judge / META_FILE).read_text())
        assert meta["backend"] == "judge"
        assert meta["config"]["policy"] == "openai:test-model"
        assert meta["config"]["model"] and meta["config"]["base_url"] == server.base_url
        assert (judge / PROMPT_FILE).read_text() == PROMPT
        assert meta["provenance"]["metrics"]["requests"] == 12
        loaded = load(judge, env_id="textcraft")
        assert isinstance(loaded, JudgeCritic) and loaded.prompt_template == PROMPT

        out = tmp_path / "compare"
        methods = [f"smc:2:critic{{critic={judge}}}", f"amc:2:critic{{critic={trained}}}"]
        common = ["--split", "validation", "--n-tasks", "3", "--budget", "calls:60"]
        assert main(["eval", "--out", str(out), "--methods", *methods, *common, *EVAL]) == 0
    rows = {r["data"]["method"]: r["data"] for r in RunStore.open(out).records("result")}
    labels = sorted({label.split("{")[0] for label in rows})
    assert labels == ["amc@critic-k2", "smc@critic-k2"]
    printed = capsys.readouterr().out
    assert "judge" in printed and "total" in printed  # the table's extra columns
    for record in (r["data"] for r in RunStore.open(out).records("result")):
        assert record["total_calls"] == record["calls"] + record["judge_calls"]
        assert record["total_calls"] <= 60 + 2 * 2  # the cap counts judge calls too
        if record["method"].startswith("smc"):
            assert record["judge_calls"] > 0 and record["critic_cpu_s"] >= 0
        else:
            assert record["judge_calls"] == 0 and record["critic_cpu_s"] > 0
