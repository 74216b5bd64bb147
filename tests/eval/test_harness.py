from __future__ import annotations

import asyncio
import json
import re

import numpy as np
import pytest

from agentmc.cli.main import main
from agentmc.data.store import RunStore
from agentmc.envs import make, task_ids
from agentmc.errors import AgentmcError, ConfigError
from agentmc.eval.harness import (
    GUARD_ALPHA,
    GUARD_RULE,
    MIN_GUARD_TASKS,
    Entry,
    Evaluation,
    Plan,
    build_report,
    guard_decision,
    stable_index,
)
from agentmc.eval.report import write_report
from agentmc.policies import make_policy
from agentmc.smc import Budget


class ConstantCritic:
    """Gives every state the same value: cannot tell trajectories apart."""

    def values(self, histories):
        return np.full(len(histories), 0.5)


def evaluation(tmp_path, entries, *, policy="noisy-expert", guard=(), budget=None, n=3):
    tasks = tuple(task_ids("textcraft", "test")[:n])
    plan = Plan(
        entries=tuple(Entry.parse(e) for e in entries),
        split="test",
        task_ids=tasks,
        seed=7,
        budget=None if budget is None else Budget.parse(budget),
        guard_task_ids=tuple(guard),
    )
    store = RunStore.create_or_resume(tmp_path, command="eval", seed=7, config={"x": 1})
    shared = make_policy(policy)
    return Evaluation(
        plan,
        store,
        make_env=lambda t: make("textcraft", task_id=t),
        make_policy=lambda spec: shared if spec is None else make_policy(spec),
        critic=ConstantCritic(),
        workers=2,
        progress=False,
    )


def test_entry_labels_and_errors():
    assert Entry.parse("single").label == "single"
    assert Entry.parse("bon:4:critic").label == "bon@critic-k4"
    assert Entry.parse("single=random").label == "single[random]"
    with pytest.raises(AgentmcError):
        Entry.parse("beam:4")
    with pytest.raises(ConfigError, match="nothing after"):
        Entry.parse("single=")
    # a method's own settings are not the policy separator
    entry = Entry.parse("amc:4:critic:beta=0.3:steps=2=random")
    assert (entry.spec.beta, entry.spec.schedule, entry.policy) == (0.3, "steps:2", "random")
    assert Entry.parse("amc:4:beta=0.3").policy is None


@pytest.mark.parametrize(
    "text", ["calls", "calls:x", "calls:-3", "time:10", "cost:inf", "calls:1.5", "calls:4,calls:5"]
)
def test_budget_parse_rejects(text):
    with pytest.raises(ConfigError, match="--budget"):
        Budget.parse(text, name="--budget")


def test_budget_smaller_than_k_is_rejected():
    with pytest.raises(ConfigError, match="needs 8 policy calls per step"):
        Plan((Entry.parse("bon:8"),), "test", ("1",), budget=Budget.parse("calls:4"))


def test_plan_rejects_duplicates_and_empty():
    with pytest.raises(ConfigError, match="twice"):
        Plan((Entry.parse("bon:2"), Entry.parse("bon:2:reward")), "test", ("1",))
    with pytest.raises(ConfigError, match="no tasks"):
        Plan((Entry.parse("single"),), "test", ())


def test_stable_index_depends_on_id_only():
    assert stable_index("17") == stable_index("17") != stable_index("71")


def test_every_method_runs_every_task_and_resume_does_no_work(tmp_path):
    run = evaluation(tmp_path, ["single", "bon:2", "amc:2:critic"])
    rows, guards = asyncio.run(run.run())
    assert guards == []
    assert sorted((r["method"], r["task_id"]) for r in rows) == sorted(
        (m, t) for m in ("single", "bon@reward-k2", "amc@critic-k2") for t in run.plan.task_ids
    )
    assert all(r["synthetic"] and r["split"] == "test" for r in rows)
    assert all(r["calls"] >= r["steps"] for r in rows)
    before = run.store.records_path.read_bytes()
    again = evaluation(tmp_path, ["single", "bon:2", "amc:2:critic"])
    rows_again, _ = asyncio.run(again.run())
    assert again.store.records_path.read_bytes() == before
    assert rows_again == rows


TIMINGS = ("wall_s", "critic_cpu_s")


def test_same_seed_same_results_and_common_random_numbers(tmp_path):
    def strip(rows):
        return sorted(
            json.dumps({k: v for k, v in r.items() if k not in TIMINGS}, sort_keys=True)
            for r in rows
        )

    a, _ = asyncio.run(evaluation(tmp_path / "a", ["single", "bon:2"]).run())
    b, _ = asyncio.run(evaluation(tmp_path / "b", ["bon:2", "single"]).run())
    assert strip(a) == strip(b)


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    full, _ = asyncio.run(evaluation(tmp_path / "full", ["single", "bon:2"]).run())
    part = evaluation(tmp_path / "part", ["single", "bon:2"])
    asyncio.run(part.run())
    lines = part.store.records_path.read_text().splitlines(keepends=True)
    # keep two complete records and half of the third, as if killed mid-write
    part.store.records_path.write_text("".join(lines[:2]) + lines[2][:25])
    resumed, _ = asyncio.run(evaluation(tmp_path / "part", ["single", "bon:2"]).run())

    def key(rows):
        return sorted((r["method"], r["task_id"], r["success"], r["calls"]) for r in rows)

    assert key(resumed) == key(full)


@pytest.mark.parametrize(
    ("only_amc", "only_bon", "n", "trusted", "p_value"),
    [
        (5, 0, 30, True, 1 / 32),  # 5 of 5 disagreements go AMC's way: p = 2^-5
        (6, 1, 30, False, 8 / 128),  # p = P(X >= 6 | 7) = 8/128 > 0.05
        (7, 1, 30, True, 9 / 256),
        (9, 0, 29, False, 1 / 512),  # decisive, but fewer than 30 tasks
        (0, 0, 40, False, 1.0),  # a tie is no evidence
        (1, 12, 40, False, 1.0 - 1 / 8192),  # AMC harms
    ],
)
def test_guard_rule_is_a_one_sided_sign_test_on_at_least_30_tasks(
    only_amc, only_bon, n, trusted, p_value
):
    both = n - only_amc - only_bon - 3
    amc = [True] * only_amc + [False] * only_bon + [True] * both + [False] * 3
    bon = [False] * only_amc + [True] * only_bon + [True] * both + [False] * 3
    result = guard_decision(amc, bon, label="amc@critic-k4", baseline_label="bon@critic-k4")
    assert result.trusted is trusted
    assert (result.only_amc, result.only_baseline, result.n_tasks) == (only_amc, only_bon, n)
    assert result.p_value == pytest.approx(p_value)
    assert result.amc_success == pytest.approx(np.mean(amc))
    assert result.baseline_success == pytest.approx(np.mean(bon))
    assert "one-sided exact sign" in result.reason and f"{n} validation tasks" in result.reason
    assert MIN_GUARD_TASKS == 30 and GUARD_ALPHA == 0.05


def test_guard_falls_back_to_best_of_n_when_amc_does_not_win(tmp_path):
    # With a critic that scores every state alike, AMC and Best-of-N solve the same tasks
    # (no disagreement): no evidence for AMC, so it is not trusted.
    guard = task_ids("textcraft", "validation")[:30]
    run = evaluation(tmp_path, ["amc:2:critic"], policy="random", guard=guard, n=2)
    rows, guards = asyncio.run(run.run())
    assert [g.trusted for g in guards] == [False]
    assert {r["method"] for r in rows} == {"amc→bon@critic-k2"}
    report = build_report(run.store, np.random.default_rng(0))
    assert any("replaced by bon@critic-k2" in note for note in report.notes)
    md, html = write_report(tmp_path / "report", report)
    assert "replaced by bon@critic-k2" in md.read_text()
    # both methods' validation figures and the rule are in the report
    assert re.search(r"AMC solved \d+% vs \d+% for bon@critic-k2", md.read_text())
    assert "Rule: AMC kept iff n >= 30 validation tasks" in md.read_text()
    assert html.read_text().startswith("<!doctype html>")


def test_guard_keeps_amc_that_wins(tmp_path, monkeypatch):
    import agentmc.eval.harness as harness

    original = harness.Evaluation._episode

    async def rigged(self, entry, task_id):
        result = await original(self, entry, task_id)
        result.success = entry.spec.kind == "amc"
        return result

    monkeypatch.setattr(harness.Evaluation, "_episode", rigged)
    guard = task_ids("textcraft", "validation")[:30]
    rows, guards = asyncio.run(evaluation(tmp_path, ["amc:2:critic"], guard=guard, n=2).run())
    assert [g.trusted for g in guards] == [True]
    assert (guards[0].only_amc, guards[0].only_baseline, guards[0].n_tasks) == (30, 0, 30)
    assert {r["method"] for r in rows} == {"amc@critic-k2"}
    # the recorded decision carries both methods' validation figures and the rule
    [decision] = [r["data"] for r in RunStore.open(tmp_path).records("guard-decision")]
    assert decision["amc_success"] == 1.0 and decision["baseline_success"] == 0.0
    assert decision["rule"] == GUARD_RULE and "p = 9.31e-10" in decision["reason"]


def test_guard_with_fewer_than_30_tasks_never_trusts_amc(tmp_path, monkeypatch):
    import agentmc.eval.harness as harness

    original = harness.Evaluation._episode

    async def rigged(self, entry, task_id):
        result = await original(self, entry, task_id)
        result.success = entry.spec.kind == "amc"
        return result

    monkeypatch.setattr(harness.Evaluation, "_episode", rigged)
    guard = task_ids("textcraft", "validation")[:5]
    rows, guards = asyncio.run(evaluation(tmp_path, ["amc:2:critic"], guard=guard, n=2).run())
    assert [g.trusted for g in guards] == [False]
    assert {r["method"] for r in rows} == {"amc→bon@critic-k2"}


def test_cli_eval_and_report(tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["--out", str(out), "--methods", "single", "bon:2", "--n-tasks", "3"]
    assert main(["eval", *args, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "bon@reward-k2" in printed and "synthetic" in printed
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert "(synthetic)" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "beam:4"], "beam"),
        (["--methods", "bon:8", "--budget", "calls:4"], "needs 8 policy calls"),
        (["--methods", "amc:2:critic"], "needs a critic"),
        (["--guard-tasks", "-1"], "--guard-tasks"),
        (["--guard-tasks", "20"], "at least 30"),
        (["--methods", "amc:2:beta=0"], "beta must be > 0"),
    ],
)
def test_cli_eval_bad_input_is_one_line(tmp_path, capsys, args, message):
    code = main(["eval", "--out", str(tmp_path / "x"), "--n-tasks", "1", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "\n" not in err


def test_cli_report_on_missing_dir(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "\n" not in capsys.readouterr().err.strip()


def test_report_has_ess_traces_for_smc_methods_only(tmp_path):
    run = evaluation(tmp_path, ["bon:2", "amc:2"], n=2)
    asyncio.run(run.run())
    report = build_report(run.store, np.random.default_rng(0))
    assert set(report.ess) == {"amc@reward-k2"}
    assert all(0 < x <= 1 for trace in report.ess["amc@reward-k2"] for x in trace)


def test_cli_report_on_a_run_directory(tmp_path):
    out = tmp_path / "run"
    args = ["--out", str(out), "--method", "bon", "--particles", "2", "--n-tasks", "2"]
    assert main(["run", *args, "--no-progress"]) == 0
    assert main(["report", str(out)]) == 0
    assert "bon@reward-k2" in (out / "report.md").read_text()
