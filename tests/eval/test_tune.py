from __future__ import annotations

import json

import pytest

from agentmc.cli.main import main
from agentmc.data.store import RunStore
from agentmc.errors import ConfigError
from agentmc.eval.tune import TuneChoice, TuneGrid, choose, tune_specs
from agentmc.methods import MethodSpec


def test_grid_covers_betas_schedules_and_deployable_selections_only():
    grid = TuneGrid(betas=(0.1, 1.0), schedules=("every", "steps:4", "ess:0.5"))
    deployable = tune_specs(MethodSpec.parse("amc:8:critic"), grid)
    assert len(deployable) == 12 == len(set(deployable))
    assert {s.select for s in deployable} == {"critic", "weight"}
    assert {(s.kind, s.particles) for s in deployable} == {("amc", 8)}
    assert {s.schedule for s in deployable} == {"every", "steps:4", "ess:0.5"}
    planning = tune_specs(MethodSpec.parse("amc:4"), grid)
    assert {s.select for s in planning} == {"reward"} and len(planning) == 6
    with pytest.raises(ConfigError, match="mix reward and deployable"):
        tune_specs(MethodSpec.parse("amc:4"), TuneGrid(selects=("reward", "critic")))
    with pytest.raises(ConfigError, match="nothing|no beta"):
        tune_specs(MethodSpec.parse("bon:4"), grid)
    with pytest.raises(ConfigError, match="beta must be > 0"):
        TuneGrid(betas=(0.0,))


def test_choice_is_best_validation_success_then_fewer_calls_then_grid_order():
    base = MethodSpec.parse("amc:4:critic")
    a, b, c = tune_specs(base, TuneGrid(betas=(0.3,), schedules=("every", "steps:2", "steps:4")))[
        :3
    ]
    success = {a.label: [1, 0, 1], b.label: [1, 1, 0], c.label: [0, 1, 1]}
    calls = {a.label: [40, 40, 40], b.label: [30, 30, 30], c.label: [30, 30, 30]}
    choice = choose(base, [a, b, c], success, calls)
    assert choice.chosen == b.text  # ties on success; b and c tie on calls; b comes first
    assert [row["success"] for row in choice.grid] == pytest.approx([2 / 3] * 3)
    assert TuneChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice
    assert choose(base, [a, b], {a.label: [1, 1, 1], b.label: [1, 1, 0]}).chosen == a.text
    with pytest.raises(ConfigError, match="missing"):
        choose(base, [a, b], {a.label: [1]})


def test_cli_tune_then_eval_uses_the_choice_at_the_same_budget(tmp_path, capsys):
    tune = tmp_path / "tune"
    common = ["--policy", "noisy-expert:eps=0.85", "--budget", "calls:60", "--no-progress"]
    args = ["--out", str(tune), "--methods", "amc:2", "--n-tasks", "3"]
    args += ["--betas", "0.3", "1", "--schedules", "every", "steps:2"]
    assert main(["tune", *args, *common]) == 0
    printed = capsys.readouterr().out
    assert "chosen" in printed and "synthetic" in printed
    tuned = json.loads((tune / "tuned.json").read_text())
    [choice] = tuned["choices"]
    assert choice["base"] == "amc:2:reward" and len(choice["grid"]) == 4
    assert tuned["split"] == "validation" and tuned["budget"] == "60 calls per task"
    assert tuned["policy"]["policy"] == "noisy-expert:eps=0.85"
    best = max(row["success"] for row in choice["grid"])
    assert next(r for r in choice["grid"] if r["method"] == choice["chosen"])["success"] == best

    out = tmp_path / "eval"
    eval_args = ["--out", str(out), "--methods", "bon:2", "amc:2", "--n-tasks", "2"]
    assert main(["eval", *eval_args, "--tuned", str(tune / "tuned.json"), *common]) == 0
    methods = {r["data"]["method"] for r in RunStore.open(out).records("result")}
    assert methods == {"bon@reward-k2", MethodSpec.parse(choice["chosen"]).label}
    capsys.readouterr()
    other = ["--policy", "noisy-expert:eps=0.85", "--budget", "calls:80", "--no-progress"]
    code = main(["eval", *eval_args, "--out", str(tmp_path / "x"), "--tuned", str(tune), *other])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "tuned with budget" in err and "\n" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--split", "test"], "never on --split test"),
        (["--methods", "bon:4"], "no beta or schedule"),
        (["--schedules", "sometimes"], "valid forms"),
        (["--methods", "amc:2:critic"], "needs a critic"),
    ],
)
def test_cli_tune_bad_input_is_one_line(tmp_path, capsys, args, message):
    code = main(["tune", "--out", str(tmp_path / "t"), "--n-tasks", "1", "--no-progress", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err
