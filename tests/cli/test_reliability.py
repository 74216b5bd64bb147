"""Reliability of the commands against a faulty policy server and bad inputs (issue 16).

Every test drives ``agentmc ...`` through :func:`agentmc.cli.main.main` in this
process, so a traceback would surface as an exception and fail the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmc.cli.main import main
from agentmc.testing import Fault, OpenAITestServer

pytest.importorskip("openai")

ARGS = ["--split", "validation", "--no-progress"]
#: An outage as gateways answer it: 503 with a (short) Retry-After, so the retries are quick.
OUTAGE = Fault("server_error", status=503, retry_after=0.0)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "records.jsonl").read_text().splitlines()]


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def server():
    with OpenAITestServer(replies=["Action: inventory"], models=("m1", "m2")) as server:
        yield server


def run_argv(out: Path, server: OpenAITestServer, *more: str, n_tasks: int = 2) -> list[str]:
    return [
        "run",
        "--out",
        str(out),
        "--method",
        "single",
        "--policy",
        "openai:m1",
        "--base-url",
        server.base_url,
        "--max-steps",
        "2",
        "--n-tasks",
        str(n_tasks),
        *ARGS,
        *more,
    ]


# -- item 1: an outage or a bad key never poisons a run directory ---------------------------


def test_outage_episodes_are_not_results_and_a_rerun_after_it_completes(tmp_path, server, capsys):
    out = tmp_path / "run"
    server.outage = OUTAGE
    assert main(run_argv(out, server)) == 3
    err = capsys.readouterr().err
    assert "2 of 2 tasks failed for infrastructure reasons" in one_line(err)
    kinds = [r["kind"] for r in records(out)]
    assert kinds == ["failed-infrastructure"] * 2  # recorded, but not as results
    sent = len(server.completion_requests())
    assert sent > 2  # the policy retried before giving up

    server.outage = None
    assert main(run_argv(out, server)) == 0
    assert "2 tasks (2 new, 0 resumed)" in capsys.readouterr().out
    episodes = [r for r in records(out) if r["kind"] == "episode"]
    assert len(episodes) == 2 and all(r["data"]["calls"] > 0 for r in episodes)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summaries"][0]["n_tasks"] == 2
    # a third run has nothing left to do
    before = len(server.completion_requests())
    assert main(run_argv(out, server)) == 0
    assert len(server.completion_requests()) == before


def test_partial_outage_counts_only_the_finished_tasks(tmp_path, server, capsys):
    out = tmp_path / "run"
    server.inject(*[OUTAGE] * 8)  # every attempt of the first call (8 by default)
    argv = run_argv(out, server, "--workers", "1", n_tasks=3)
    assert main(argv) == 3
    assert "1 of 3 tasks failed" in one_line(capsys.readouterr().err)
    assert main(argv) == 0
    assert "3 tasks (1 new, 2 resumed)" in capsys.readouterr().out
    keys = sorted(r["key"] for r in records(out) if r["kind"] == "episode")
    assert len(keys) == 3 and len(set(keys)) == 3


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"api_key": "the-right-key"}, "refused the API key"),
        ({"models": ("other-model",)}, "is not served"),
    ],
)
def test_fatal_errors_stop_the_run_at_once(tmp_path, monkeypatch, capsys, setup, message):
    monkeypatch.setenv("OPENAI_API_KEY", "a-wrong-key")
    with OpenAITestServer(replies=["Action: inventory"], **{"models": ("m1",), **setup}) as server:
        argv = run_argv(tmp_path / "run", server, "--workers", "1", n_tasks=6)
        assert main(argv) == 2
        assert message in one_line(capsys.readouterr().err)
        assert len(server.completion_requests()) == 1  # no retry, no other task tried
    assert "a-wrong-key" not in (tmp_path / "run" / "run.json").read_text()


def test_rollout_outage_is_not_training_data(tmp_path, server, capsys):
    out = tmp_path / "prior"
    argv = ["rollout", "--out", str(out), "--policy", "openai:m1", "--base-url", server.base_url]
    argv += ["--n-tasks", "2", "--max-steps", "2", *ARGS]
    server.outage = OUTAGE
    assert main(argv) == 3
    assert "2 of 2 episodes failed" in one_line(capsys.readouterr().err)
    server.outage = None
    assert main(argv) == 0
    kinds = sorted(r["kind"] for r in records(out))
    assert kinds.count("trajectory") == 2


# -- item 7: retries are counted and billed ------------------------------------------------


def test_retries_are_recorded_and_count_in_the_calls_budget(tmp_path, server):
    server.inject(OUTAGE, OUTAGE)  # two failed attempts, then answers
    out = tmp_path / "run"
    assert main(run_argv(out, server, "--task-ids", "0", "--max-steps", "3")) == 0
    (row,) = [r["data"] for r in records(out) if r["kind"] == "episode"]
    assert row["retries"] == 2 and row["attempts"] == row["calls"] + 2
    assert row["attempts"] == len(server.completion_requests())  # every request is counted

    server.clear()
    server.inject(OUTAGE, OUTAGE)
    out = tmp_path / "capped"
    argv = run_argv(out, server, "--task-ids", "0", "--max-steps", "5")
    argv[argv.index("single")] = "bon"
    assert main([*argv, "--particles", "1", "--max-calls", "4"]) == 0
    (row,) = [r["data"] for r in records(out) if r["kind"] == "episode"]
    assert row["attempts"] <= 4 and row["calls"] == 2  # the two retries used up budget


# -- item 6: a method's own policy keeps the key and concurrency settings --------------------


def test_eval_per_method_policy_uses_the_named_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MY_KEY", "secret-key-123")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with OpenAITestServer(
        replies=["Action: inventory"], models=("m1",), api_key="secret-key-123"
    ) as server:
        argv = ["eval", "--out", str(tmp_path / "e"), "--methods", "single=openai:m1"]
        argv += ["--policy", "openai:m1", "--base-url", server.base_url, "--api-key-env", "MY_KEY"]
        argv += ["--n-tasks", "1", "--max-steps", "2", "--no-report", *ARGS]
        assert main(argv) == 0, capsys.readouterr().err
        requests = server.completion_requests()
        assert requests and all(r.authorized for r in requests)


# -- item 10: a runaway reply is cut -----------------------------------------------------------


def test_huge_replies_are_cut_and_the_cut_recorded(tmp_path):
    huge = "Action: inventory " + "x" * 2_000_000
    with OpenAITestServer(replies=[huge], models=("m1",)) as server:
        out = tmp_path / "run"
        argv = run_argv(out, server, "--task-ids", "0", "--max-steps", "3")
        assert main([*argv, "--max-reply-chars", "1000"]) == 0
        prompts = [len(json.dumps(r.body["messages"])) for r in server.completion_requests()]
    assert (out / "records.jsonl").stat().st_size < 50_000
    (row,) = [r["data"] for r in records(out) if r["kind"] == "episode"]
    turns = row["episode"]["trajectory"]["turns"]
    assert all(len(t["reply"]) <= 1000 and t["reply_cut"] > 1_000_000 for t in turns)
    assert max(prompts) < 20_000  # later prompts do not carry the megabytes


# -- item 12: the request cache spares a resumed run -------------------------------------------


def test_resumed_units_are_answered_from_the_cache(tmp_path, server, capsys):
    out = tmp_path / "run"
    assert main(run_argv(out, server)) == 0
    sent = len(server.completion_requests())
    before = records(out)
    # as if killed while the second task was in flight: its record never got written
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    (out / "records.jsonl").write_text(lines[0])
    assert main(run_argv(out, server)) == 0
    assert len(server.completion_requests()) == sent  # no request paid twice
    assert [r["data"]["episode"]["trajectory"] for r in records(out)] == [
        r["data"]["episode"]["trajectory"] for r in before
    ]
    # another model misses the cache; --no-cache sends everything again
    assert main([*run_argv(tmp_path / "other", server), "--no-cache"]) == 0
    assert len(server.completion_requests()) == 2 * sent
    argv = run_argv(tmp_path / "m2", server)
    argv[argv.index("openai:m1")] = "openai:m2"
    assert main(argv) == 0
    assert len(server.completion_requests()) == 3 * sent


# -- item 3 and 4: bad directories and numbers are refused before anything is written ---------


def test_records_without_run_json_are_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "records.jsonl").write_text('{"kind": "episode", "key": "single/0", "data": {}}\n')
    assert main(["run", "--out", str(out), "--method", "single", "--n-tasks", "1", *ARGS]) == 2
    assert "no run.json" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == ["records.jsonl"]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--seed", "-1"],
        ["run", "--temperature", "nan"],
        ["run", "--max-cost", "nan"],
        ["run", "--max-calls", "0"],
        ["run", "--max-reply-chars", "0"],
        ["eval", "--seed", "-1"],
        ["eval", "--beta", "nan"],
        ["rollout", "--seed", "-5"],
        ["collect", "--seed", "-1"],
        ["train", "--seed", "-1"],
        ["train", "--iterations", "0"],
        ["train", "--learning-rate", "nan"],
    ],
)
def test_bad_numbers_are_one_line_errors_before_anything_is_written(tmp_path, capsys, argv):
    out = tmp_path / "out"
    assert main([argv[0], "--out", str(out), *argv[1:]]) == 2
    one_line(capsys.readouterr().err)
    assert not out.exists()


# -- item 5: operating-system errors are one line ---------------------------------------------


def test_records_file_that_is_a_directory(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--out", str(out), "--method", "single", "--n-tasks", "1", *ARGS]
    assert main(argv) == 0
    (out / "records.jsonl").unlink()
    (out / "records.jsonl").mkdir()
    assert main(argv) == 2
    assert "records.jsonl" in one_line(capsys.readouterr().err)


def test_finished_run_in_a_read_only_directory_rewrites_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    argv = ["run", "--out", str(out), "--method", "single", "--n-tasks", "2", *ARGS]
    assert main(argv) == 0
    before = (out / "records.jsonl").read_bytes()

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "replace", refuse)
    assert main(argv) == 0  # nothing new ran: nothing to rewrite
    assert (out / "records.jsonl").read_bytes() == before
    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert main(argv) == 2
    assert "Permission denied" in one_line(capsys.readouterr().err)


def test_report_out_pointing_at_a_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--method", "single", "--n-tasks", "1", *ARGS]) == 0
    target = tmp_path / "a-file"
    target.write_text("mine")
    assert main(["report", str(out), "--out", str(target)]) == 2
    assert "is a file" in one_line(capsys.readouterr().err)
    assert target.read_text() == "mine"


# -- item 14: summary.json is strict JSON ------------------------------------------------------


def test_summary_json_has_no_nan_or_infinity(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "--out", str(out), "--method", "single", "--policy", "random", "--n-tasks", "2"]
    assert main([*argv, "--max-steps", "1", *ARGS]) == 0

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    data = json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    summary = data["summaries"][0]
    assert summary["success"]["value"] == 0.0
    assert summary["cost_per_success"] is None and summary["steps_to_success"]["value"] is None
    assert "null" in data


# -- item 11: the hint after an unknown task id works -----------------------------------------


def test_unknown_task_hint_is_a_working_command(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path / "r"), "--task-ids", "nope", *ARGS]) == 2
    err = one_line(capsys.readouterr().err)
    hint = err.split("see `agentmc ")[1].split("`")[0].split()
    assert main(hint) == 0
    assert capsys.readouterr().out.split()


# -- kill -9 mid-run: resume loses nothing, repeats nothing, pays for nothing twice ----------


def test_kill_9_mid_run_then_resume(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    with OpenAITestServer(replies=["Action: inventory"], models=("m1",), latency_s=0.05) as server:
        out = tmp_path / "run"
        argv = run_argv(out, server, "--workers", "1", "--max-steps", "4", n_tasks=4)
        process = subprocess.Popen(
            [sys.executable, "-m", "agentmc.cli.main", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ,
        )
        deadline = time.monotonic() + 60
        while not (out / "records.jsonl").exists() or not (out / "records.jsonl").read_bytes():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)  # into the next task's calls
        process.send_signal(signal.SIGKILL)
        process.wait()
        before = [line for line in (out / "records.jsonl").read_text().splitlines() if line]
        assert main(argv) == 0
        after = (out / "records.jsonl").read_text().splitlines()
        assert set(before) <= set(after)  # nothing written before the kill is lost
        episodes = [json.loads(line) for line in after]
        assert sorted(r["key"] for r in episodes) == sorted({r["key"] for r in episodes})
        assert len(episodes) == 4
        recorded = sum(r["data"]["attempts"] for r in episodes)
        # answered requests of the killed run come from the cache; at most the one request
        # in flight at the kill was sent twice
        assert recorded <= len(server.completion_requests()) <= recorded + 1


def test_eval_outage_then_rerun(tmp_path, server, capsys):
    out = tmp_path / "eval"
    argv = ["eval", "--out", str(out), "--methods", "single", "bon:2", "--policy", "openai:m1"]
    argv += ["--base-url", server.base_url, "--n-tasks", "2", "--max-steps", "2", "--no-report"]
    server.inject(*[OUTAGE] * 8)  # the first call of the first unit fails for good
    assert main([*argv, "--workers", "1", *ARGS]) == 3
    captured = capsys.readouterr()
    assert "1 of 4 (method, task) units failed" in one_line(captured.err)
    assert "single" in captured.out  # what did finish is shown
    assert main([*argv, *ARGS]) == 0
    results = [r for r in records(out) if r["kind"] == "result"]
    assert len(results) == 4 and len({r["key"] for r in results}) == 4
