"""One definition of each SMC setting (issue 17, part 1).

K, beta and schedule live in :class:`~agentmc.smc.SMCConfig` (a
:class:`~agentmc.methods.MethodSpec` holds one), the budget is
:class:`~agentmc.smc.Budget`, and the selection literal is
:data:`agentmc.smc.selection.SelectionMode`. These tests pin that each layer
(spec string, constructor, flags) reaches the same definition and the same
message, that a run parses no schedule, and that the budget flag's aliases and
the run-directory format are unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import numpy as np
import pytest

from agentmc.cli import demo as demo_cli
from agentmc.cli import eval as eval_cli
from agentmc.cli import run as run_cli
from agentmc.cli import tune as tune_cli
from agentmc.cli.common import BudgetOptions, SamplerOptions
from agentmc.cli.main import main
from agentmc.data.store import RunStore
from agentmc.envs import make
from agentmc.errors import ConfigError
from agentmc.methods import MethodSpec, Select, run_method
from agentmc.policies.expert import NoisyExpertPolicy
from agentmc.smc import Budget, SMCConfig, check_beta, schedules
from agentmc.smc.selection import SelectionMode

BETA_MESSAGE = "beta must be > 0 (use inf for no tilt, i.e. Best-of-N), got 0.0"
RUN = ["--split", "validation", "--n-tasks", "2", "--no-progress"]


def test_one_beta_message_from_config_constructor_and_string():
    builders = [
        lambda: check_beta(0.0),
        lambda: SMCConfig(beta=0.0),
        lambda: MethodSpec("amc", 8, beta=0.0),
        lambda: MethodSpec.parse("amc:8:critic:beta=0"),
        lambda: MethodSpec.parse("amc@critic-k8-beta0"),
    ]
    messages = []
    for build in builders:
        with pytest.raises(ConfigError) as raised:
            build()
        messages.append(str(raised.value))
    assert messages == [BETA_MESSAGE] * len(builders)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--beta", "0"],
        ["eval", "--beta", "0"],
        ["eval", "--methods", "amc:2:beta=0"],
        ["demo", "--beta", "0"],
    ],
)
def test_one_beta_message_from_every_command(tmp_path, capsys, argv):
    assert main([argv[0], "--out", str(tmp_path / "x"), *argv[1:], *RUN[-1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    # tyro may wrap a long message, which the one-line error joins with "; "
    assert BETA_MESSAGE in " ".join(err.replace(";", "").split())
    assert not (tmp_path / "x").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--schedule", "often"], "--schedule: unknown schedule 'often'"),
        (["eval", "--resampler", "best"], "--resampler: unknown resampler 'best'"),
        (["run", "--particles", "0"], "--particles: n_particles must be >= 1"),
    ],
)
def test_flag_errors_name_the_flag(tmp_path, capsys, argv, message):
    assert main([argv[0], "--out", str(tmp_path / "x"), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_the_spec_holds_the_sampler_settings():
    spec = MethodSpec.parse("amc:8:critic:beta=0.3:steps=4:resampler=residual")
    assert spec.smc == SMCConfig(
        n_particles=8, beta=0.3, schedule="steps:4", resampler="residual", max_steps=None
    )
    assert (spec.particles, spec.beta, spec.schedule, spec.resampler) == (
        8,
        0.3,
        "steps:4",
        "residual",
    )
    assert MethodSpec("amc", select="critic", smc=spec.smc) == spec
    assert dataclasses.replace(spec, beta=1.0).smc == dataclasses.replace(spec.smc, beta=1.0)
    # Best-of-N holds what it runs: no resampling, no tilt unless it samples by weight
    bon = dataclasses.replace(spec, kind="bon")
    assert (bon.smc.schedule, bon.smc.resampler, bon.beta) == ("none", "systematic", 1.0)
    assert dataclasses.replace(bon, select="weight", beta=0.5).beta == 0.5
    assert MethodSpec.parse("bon:8").smc.schedule == "none"


@pytest.mark.parametrize(
    "text",
    [
        "single",
        "bon:8",
        "bon:8:critic",
        "bon:8:weight:beta=0.5",
        "amc:8",
        "amc:8:weight",
        "smc:8:critic",
        "amc:8:critic:beta=0.3:steps=4",
        "amc:8:ess=0.5",
        "amc:8:schedule=none",
        "amc:8:resampler=residual",
        "amc:8:critic:beta=inf",
        "amc:8:beta=1e-05",
        "smc:4:schedule=budget:0.8:steps:2",
        "amc@critic-k8-beta0.3-steps:4",
    ],
)
def test_every_string_form_round_trips(text):
    spec = MethodSpec.parse(text)
    assert MethodSpec.parse(spec.text) == spec == MethodSpec.parse(spec.label)
    assert hash(MethodSpec.parse(spec.text)) == hash(spec)


def test_a_run_parses_no_schedule():
    spec = MethodSpec.parse("amc:4:steps=2,4")
    before = schedules._parse_text.cache_info().misses
    result = run_method(
        spec,
        lambda: make("textcraft", task_id="3"),
        NoisyExpertPolicy(),
        np.random.default_rng(0),
        budget=Budget(max_calls=40),
    )
    assert result.diagnostics["config"]["schedule"] == "steps:2,4"
    assert result.diagnostics["config"]["max_calls"] == 40
    assert schedules._parse_text.cache_info().misses == before


def test_one_selection_literal():
    assert Select is SelectionMode
    for config in (run_cli.Config, demo_cli.Config):
        assert typing.get_type_hints(config)["select"] is SelectionMode


def test_commands_share_one_definition_of_the_flags(tmp_path):
    hints = {c: typing.get_type_hints(c.Config) for c in (run_cli, eval_cli, demo_cli, tune_cli)}
    assert {hints[c]["sampler"] for c in (run_cli, eval_cli, demo_cli)} == {SamplerOptions}
    assert {hints[c]["caps"] for c in (run_cli, eval_cli, tune_cli)} == {BudgetOptions}
    defaults = SamplerOptions()
    smc = SMCConfig()
    assert (defaults.beta, defaults.schedule, defaults.resampler) == (
        smc.beta,
        smc.schedule,
        smc.resampler,
    )
    # eval applies the flags to every SMC/AMC method that does not set them itself
    config = eval_cli.Config(
        out=tmp_path,
        methods=("amc:4", "amc:4:resampler=stratified", "smc:4:critic:steps=2", "bon:4"),
        sampler=SamplerOptions(beta=0.5, schedule="ess:0.5", resampler="residual"),
    )
    specs = [e.spec for e in eval_cli.make_plan(config, ["1"], []).entries]
    assert [(s.beta, s.schedule, s.resampler) for s in specs] == [
        (0.5, "ess:0.5", "residual"),
        (0.5, "ess:0.5", "stratified"),
        (0.5, "steps:2", "residual"),
        (1.0, "none", "systematic"),  # Best-of-N by reward: no tilt, no resampling
    ]


def test_budget_text_form():
    budget = Budget.parse("calls:160,cost:0.5", count="answers")
    assert budget == Budget(max_calls=160, max_cost=0.5, count="answers")
    assert str(budget) == "160 calls, 0.5 cost per task"
    assert str(Budget.parse("calls:160")) == "160 calls per task"  # what eval runs record
    with pytest.raises(ConfigError, match=r"^--budget 'calls:0': max_calls must be"):
        Budget.parse("calls:0", name="--budget")


def test_budget_aliases_make_the_same_budget():
    assert BudgetOptions(max_calls=6).make() == BudgetOptions(budget="calls:6").make()
    both = BudgetOptions(budget="calls:6,tokens:900", max_cost=0.5, budget_counts="answers")
    assert both.make() == Budget(6, 900, 0.5, "answers")
    with pytest.raises(ConfigError, match="both cap calls; give one"):
        BudgetOptions(budget="calls:6", max_calls=6)
    with pytest.raises(ConfigError, match="^--max-calls: max_calls must be a whole number > 0"):
        BudgetOptions(max_calls=0)


def records(path: Path) -> list[dict]:
    drop = ("wall_s", "cpu_s")
    lines = (path / "records.jsonl").read_text().splitlines()
    untimed = lambda d: {k: v for k, v in d.items() if k not in drop}  # noqa: E731
    return [json.loads(line, object_hook=untimed) for line in lines]


def test_run_max_calls_is_an_alias_of_budget_and_the_run_format_is_unchanged(tmp_path, capsys):
    argv = ["run", "--method", "bon", "--particles", "2", *RUN]
    assert main([*argv, "--out", str(tmp_path / "a"), "--max-calls", "6"]) == 0
    assert main([*argv, "--out", str(tmp_path / "b"), "--budget", "calls:6"]) == 0
    config = RunStore.open(tmp_path / "a").meta.config
    assert config == RunStore.open(tmp_path / "b").meta.config
    assert records(tmp_path / "a") == records(tmp_path / "b")
    # the keys run directories have always recorded (so older ones resume)
    assert config["spec"] == {
        "kind": "bon",
        "particles": 2,
        "select": "reward",
        "beta": 1.0,
        "schedule": "every",
        "resampler": "systematic",
    }
    assert config["budget"] == {"max_calls": 6, "max_tokens": None, "max_cost": None}
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "a"), "--budget", "calls:6"]) == 0
    assert "(0 new, 2 resumed)" in capsys.readouterr().out
    twice = ["--budget", "calls:6", "--max-calls", "6"]
    assert main([*argv, "--out", str(tmp_path / "c"), *twice]) == 2
    err = capsys.readouterr().err.strip()
    # the message whole: tyro's box no longer wraps it mid-sentence
    assert "\n" not in err and "both cap calls; give one (see" in err
    assert not (tmp_path / "c").exists()
