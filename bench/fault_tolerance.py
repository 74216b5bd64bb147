"""Fault catalogue: every command against a faulty policy server, kill -9 and bad inputs.

Runs ``agentmc`` as a user would (subprocesses) against the built-in
fault-injecting OpenAI-compatible test server (:mod:`agentmc.testing`, a
stand-in for a provider: replies are scripted) and counts what went wrong:

- ``tracebacks``: cases whose stderr holds a Python traceback (must be 0);
- ``wrong_exit``: cases whose exit status was not the expected one;
- ``lost_records``: records written before a fault or kill that are gone after
  the resumed run (0);
- ``duplicated_records``: result keys recorded twice (0);
- ``poisoned_units_after_outage``: units without a result after an outage and
  one re-run once it is over (0);
- ``requests_seen_by_server`` / ``requests_recorded``: completion requests the
  server received against the attempts the records count, over the cases that
  record their episodes (outage then recovery, random faults, kill -9 then
  resume with the request cache); equal when every request is counted.
  Requests of a run stopped by a fatal error (bad key, unknown model) are not
  recorded anywhere and are reported apart (``requests_before_fatal_stop``), as
  are requests cut off by the kill (``requests_in_flight_at_kill``).

Writes ``bench/results/fault_tolerance.json``.

Usage:
    python bench/fault_tolerance.py [--tasks 4]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from agentmc.testing import Fault, OpenAITestServer  # noqa: E402

RESULT_KINDS = ("episode", "result", "trajectory", "guard")
OUTAGE = Fault("server_error", status=503, retry_after=0.0)
#: Random faults per request; 503s and 429s carry a short Retry-After, the others back off.
FAULT_RATES = {
    "rate_limit": 0.08,
    "disconnect": 0.04,
    "malformed_json": 0.04,
    "truncated": 0.04,
}


class Catalogue:
    """Runs cases and keeps the tallies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases: list[dict] = []
        self.tallies: Counter = Counter()

    def agentmc(self, *argv: str, timeout: float = 300, env: dict | None = None):
        command = [sys.executable, "-m", "agentmc.cli.main", *argv]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    def case(
        self, name: str, argv: list[str], expect: int, **kwargs
    ) -> subprocess.CompletedProcess:
        done = self.agentmc(*argv, **kwargs)
        traceback = "Traceback" in done.stderr
        one_line = expect == 0 or len(done.stderr.strip().splitlines()) == 1
        self.cases.append(
            {
                "case": name,
                "exit": done.returncode,
                "expected_exit": expect,
                "traceback": traceback,
                "one_line_error": one_line,
                "stderr": done.stderr.strip().splitlines()[-1:] if done.stderr.strip() else [],
            }
        )
        self.tallies["tracebacks"] += traceback
        self.tallies["wrong_exit"] += done.returncode != expect
        self.tallies["multi_line_errors"] += not one_line
        return done


def records(out: Path) -> list[dict]:
    path = out / "records.jsonl"
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    lines.pop()  # a torn last line (no newline yet) is not a record
    return [json.loads(line.decode("utf-8")) for line in lines if line.strip()]


def attempts_recorded(out: Path) -> int:
    """Requests the records count: every episode's attempts, failed-infrastructure ones too."""
    total = 0
    for record in records(out):
        episode = record["data"].get("episode") or {}
        total += int((episode.get("diagnostics") or {}).get("attempts", 0))
    return total


def duplicates(out: Path) -> int:
    keys = Counter(r["key"] for r in records(out) if r["kind"] in RESULT_KINDS)
    return sum(n - 1 for n in keys.values() if n > 1)


def lost(before: list[dict], out: Path) -> int:
    after = {json.dumps(r, sort_keys=True) for r in records(out)}
    return sum(json.dumps(r, sort_keys=True) not in after for r in before)


def run_argv(out: Path, server: OpenAITestServer, tasks: int, method: str = "single") -> list[str]:
    kind, _, k = method.partition(":")
    argv = ["run", "--out", str(out), "--method", kind, "--policy", "openai:m1"]
    argv += ["--base-url", server.base_url, "--n-tasks", str(tasks), "--max-steps", "3"]
    argv += ["--split", "validation", "--no-progress", "--workers", "2"]
    return argv + (["--particles", k] if k else [])


def serve_case(cat: Catalogue) -> None:
    """``agentmc serve`` fed a deeply nested body, a wrong method and a huge body."""
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "agentmc.cli.main", "serve", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    answers = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/tasks", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        nested = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
        for method, body in (("POST", nested), ("GET", None), ("POST", b"x" * 200_000)):
            request = urllib.request.Request(url + "/step", data=body, method=method)
            try:
                urllib.request.urlopen(request, timeout=10)
                answers.append((200, ""))
            except urllib.error.HTTPError as error:
                answers.append((error.code, error.headers.get("content-type", "")))
    finally:
        server.terminate()
        log = server.communicate(timeout=20)[0]
    expected = [400, 405, 413]
    for (status, kind), want in zip(answers, expected, strict=True):
        ok = status == want and kind.startswith("application/json")
        cat.cases.append(
            {
                "case": f"serve: HTTP {want} answered as JSON",
                "exit": status,
                "expected_exit": want,
                "traceback": "Traceback" in log,
                "one_line_error": ok,
                "stderr": [kind],
            }
        )
        cat.tallies["wrong_exit"] += status != want
        cat.tallies["multi_line_errors"] += not ok
    cat.tallies["tracebacks"] += "Traceback" in log


def env_outage_case(cat: Catalogue, out: Path) -> int:
    """An AgentGym-protocol environment server (not ours) down, then back: in-process runs.

    Returns the units still without a result after the server is back.
    """
    import asyncio

    import numpy as np

    from agentmc.data.store import RunStore
    from agentmc.envs import make, task_ids
    from agentmc.envs.agentgym.client import AgentGymConfig, AgentGymEnv
    from agentmc.eval.runner import Unit, run_units
    from agentmc.methods import MethodSpec, arun_method
    from agentmc.policies.scripted import ScriptedPolicy
    from agentmc.testing.env_server import AgentGymTestServer

    tasks = task_ids("textcraft", "validation")[:3]
    policy = ScriptedPolicy(lambda messages: {"inventory": 1.0})
    units = [Unit(f"single/{t}", t) for t in tasks]
    with AgentGymTestServer(lambda t: make("textcraft", task_id=t, max_steps=3), tasks) as server:

        async def work(unit):
            config = AgentGymConfig(base_url=server.url)
            index = str(tasks.index(unit.payload))
            result = await arun_method(
                MethodSpec("single"),
                lambda: AgentGymEnv(config, task_id=index),
                policy,
                np.random.default_rng(0),
                task_id=unit.payload,
            )
            return "episode", {"episode": result.to_dict()}

        store = RunStore.create_or_resume(out, command="bench", seed=0, config={})
        outcome = []
        for down in ({"/step"}, set()):
            server.down = down
            try:
                counts = asyncio.run(run_units(store, units, work, progress=False))
                outcome.append(counts.failed)
            except Exception as error:  # noqa: BLE001 - any escape is what this case counts
                outcome.append(f"{type(error).__name__}: {error}")
    done = {r["key"] for r in store.records("episode")}
    escaped = any(isinstance(x, str) for x in outcome)
    cat.cases.append(
        {
            "case": "environment server /step down, then back (in-process)",
            "exit": 0 if outcome == [len(units), 0] else 1,
            "expected_exit": 0,
            "traceback": escaped,
            "one_line_error": True,
            "stderr": [str(outcome)],
        }
    )
    cat.tallies["tracebacks"] += escaped
    cat.tallies["wrong_exit"] += outcome != [len(units), 0]
    return len(units) - len(done)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=4)
    args = parser.parse_args()
    tasks = args.tasks
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="agentmc-faults-"))
    cat = Catalogue(root)
    seen = recorded = 0
    extra: dict[str, int] = {}

    with OpenAITestServer(replies=["Action: inventory"], models=("m1",), api_key=None) as server:
        # 1. an outage, then the same command after it: nothing poisoned
        out = root / "outage"
        server.outage = OUTAGE
        cat.case("outage: run", run_argv(out, server, tasks), expect=3)
        server.outage = None
        cat.case("outage: re-run after it", run_argv(out, server, tasks), expect=0)
        results = {r["key"] for r in records(out) if r["kind"] == "episode"}
        poisoned = tasks - len(results)
        seen += len(server.completion_requests())
        recorded += attempts_recorded(out)
        dup = duplicates(out)
        server.clear()

        # 2. random transient faults under Best-of-N: every request counted
        out = root / "random-faults"
        with OpenAITestServer(
            replies=["Action: inventory"], models=("m1",), fault_rates=FAULT_RATES, seed=0
        ) as noisy:
            cat.case("random faults: bon:4", run_argv(out, noisy, tasks, "bon:4"), expect=0)
            seen += len(noisy.completion_requests())
        recorded += attempts_recorded(out)
        dup += duplicates(out)

        # 3. fatal errors stop at once, one line
        with OpenAITestServer(replies=["x"], models=("m1",), api_key="right-key") as locked:
            cat.case("wrong key (401)", run_argv(root / "401", locked, tasks), expect=2,
                     env={"OPENAI_API_KEY": "wrong-key"})  # fmt: skip
            extra["requests_before_fatal_stop"] = len(locked.completion_requests())
        argv = run_argv(root / "404", server, tasks)
        argv[argv.index("openai:m1")] = "openai:no-such-model"
        cat.case("unknown model (404)", argv, expect=2)
        extra["requests_before_fatal_stop"] += len(server.completion_requests())
        server.clear()

        # 4. kill -9 at several moments, then resume (request cache on by default)
        slow = OpenAITestServer(replies=["Action: inventory"], models=("m1",), latency_s=0.05)
        with slow:
            reference = root / "reference"
            cat.case("kill: uninterrupted reference", run_argv(reference, slow, tasks, "bon:2"), 0)
            slow.clear()
            in_flight = lost_records = 0
            for after in (1, tasks // 2 + 1):
                out = root / f"kill-{after}"
                argv = [
                    sys.executable,
                    "-m",
                    "agentmc.cli.main",
                    *run_argv(out, slow, tasks, "bon:2"),
                ]
                process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                while len(records(out)) < after and process.poll() is None:
                    time.sleep(0.01)
                process.send_signal(signal.SIGKILL)
                process.wait()
                before = records(out)
                sent = len(slow.completion_requests())
                cat.case(
                    f"kill -9 after {after} records: resume", run_argv(out, slow, tasks, "bon:2"), 0
                )
                lost_records += lost(before, out)
                dup += duplicates(out)
                resumed_sent = len(slow.completion_requests())
                in_flight += resumed_sent - attempts_recorded(out)
                same = [r["data"]["episode"]["trajectory"] for r in records(out)] == [
                    r["data"]["episode"]["trajectory"] for r in records(reference)
                ]
                cat.tallies["kill_results_differ"] += not same
                slow.clear()
                del sent
            extra["requests_in_flight_at_kill"] = in_flight

        # 5. bad inputs: one line, non-zero, nothing written or lost
        bad = root / "bad"
        bad_flags = [
            ["--seed", "-1"],
            ["--temperature", "nan"],
            ["--max-calls", "0"],
            ["--particles", "0"],
            ["--max-cost", "inf"],
            ["--max-reply-chars", "0"],
        ]
        for flags in bad_flags:
            cat.case(f"run {' '.join(flags)}", ["run", "--out", str(bad), *flags], expect=2)
        for command in ("eval", "rollout", "collect", "train"):
            cat.case(f"{command} --seed -1", [command, "--out", str(bad), "--seed", "-1"], 2)
        cat.tallies["bad_input_wrote_files"] += bad.exists()

        orphan = root / "orphan"
        orphan.mkdir()
        (orphan / "records.jsonl").write_text(
            '{"kind": "episode", "key": "single/0", "data": {}}\n'
        )
        cat.case("records without run.json", ["run", "--out", str(orphan), "--n-tasks", "1"], 2)
        lost_records += len(records(orphan)) != 1

        torn = root / "torn"
        base = ["run", "--out", str(torn), "--method", "single", "--n-tasks", "3", "--no-progress"]
        cat.case("torn tail: first run", base, 0)
        before = records(torn)
        data = (torn / "records.jsonl").read_bytes()
        (torn / "records.jsonl").write_bytes(
            data + '{"kind": "episode", "key": "x", "t": "✓'.encode()[:-1]
        )
        cat.case("torn multi-byte tail: resume", base, 0)
        lost_records += lost(before, torn)
        dup += duplicates(torn)

        cat.case(
            "report --out at a file", ["report", str(torn), "--out", str(torn / "summary.json")], 2
        )
        (torn / "records.jsonl").rename(torn / "saved.jsonl")
        (torn / "records.jsonl").mkdir()
        cat.case("records.jsonl is a directory", base, 2)
        cat.case("unknown task id", ["run", "--out", str(root / "u"), "--task-ids", "nope"], 2)

        strict = root / "zero-success"
        argv = ["run", "--out", str(strict), "--method", "single", "--policy", "random"]
        cat.case(
            "zero successes", [*argv, "--n-tasks", "2", "--max-steps", "1", "--no-progress"], 0
        )
        try:
            json.loads((strict / "summary.json").read_text(), parse_constant=float.__call__)
            cat.tallies["non_strict_json"] += 0
        except (ValueError, TypeError, OSError):
            cat.tallies["non_strict_json"] += 1

    serve_case(cat)
    poisoned += env_outage_case(cat, root / "env-outage")

    metrics = {
        "cases": len(cat.cases),
        "tracebacks": cat.tallies["tracebacks"],
        "wrong_exit": cat.tallies["wrong_exit"],
        "multi_line_errors": cat.tallies["multi_line_errors"],
        "lost_records": lost_records,
        "duplicated_records": dup,
        "poisoned_units_after_outage": poisoned,
        "requests_seen_by_server": seen,
        "requests_recorded": recorded,
        "requests_before_fatal_stop": extra["requests_before_fatal_stop"],
        "requests_in_flight_at_kill": extra["requests_in_flight_at_kill"],
        "kill_results_differ": cat.tallies["kill_results_differ"],
        "bad_input_wrote_files": cat.tallies["bad_input_wrote_files"],
        "non_strict_json": cat.tallies["non_strict_json"],
        "wall_s": round(time.perf_counter() - started, 1),
    }
    units = {name: "count" for name in metrics} | {"wall_s": "s"}
    config = {
        "tasks": tasks,
        "server": "agentmc.testing.OpenAITestServer (stand-in provider, scripted replies)",
        "outage": "every request 503 with Retry-After: 0",
        "fault_rates": FAULT_RATES,
        "cases": cat.cases,
        "load_average": os.getloadavg(),
    }
    write_result("fault_tolerance", metrics, units, config)


if __name__ == "__main__":
    main()
