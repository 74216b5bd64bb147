"""Time to resume a killed evaluation, and proof that resuming changes nothing.

Runs ``agentmc eval`` (single, Best-of-4, AMC-4 with the synthetic noisy-expert
agent on TextCraft test tasks) three ways in fresh directories:

1. uninterrupted;
2. killed with SIGINT (Ctrl-C) once about half of the units are written, then
   resumed with the same command;
3. the same command once more on the finished directory (pure resume cost:
   reading the records and skipping every unit).

Writes ``bench/results/eval_resume.json``.

Usage:
    python bench/eval_resume.py [--tasks 40]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

METHODS = ["single", "bon:4", "amc:4"]


def command(out: Path, tasks: int) -> list[str]:
    return [
        sys.executable, "-m", "agentmc.cli.main", "eval", "--out", str(out),
        "--methods", *METHODS, "--n-tasks", str(tasks), "--policy", "noisy-expert",
        "--no-progress", "--no-report",
    ]  # fmt: skip


def run(out: Path, tasks: int) -> float:
    start = time.perf_counter()
    subprocess.run(command(out, tasks), check=True, capture_output=True)
    return time.perf_counter() - start


def results(out: Path) -> list[tuple]:
    rows = []
    for line in (out / "records.jsonl").read_text().splitlines():
        data = json.loads(line)["data"]
        rows.append((data["method"], data["task_id"], data["success"], data["calls"]))
    return sorted(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=40)
    args = parser.parse_args()
    units = args.tasks * len(METHODS)
    root = Path(tempfile.mkdtemp())

    full_s = run(root / "full", args.tasks)

    killed = root / "killed"
    start = time.perf_counter()
    process = subprocess.Popen(command(killed, args.tasks), stdout=subprocess.DEVNULL)
    records = killed / "records.jsonl"
    while process.poll() is None:
        if records.exists() and len(records.read_bytes().splitlines()) >= units // 2:
            process.send_signal(signal.SIGINT)
            break
        time.sleep(0.01)
    exit_code = process.wait()
    killed_s = time.perf_counter() - start
    written = len(records.read_bytes().splitlines())
    resumed_s = run(killed, args.tasks)
    noop_s = run(killed, args.tasks)
    same = results(killed) == results(root / "full")
    if not same:
        raise SystemExit("resumed evaluation differs from the uninterrupted one")

    write_result(
        "eval_resume",
        metrics={
            "uninterrupted_s": round(full_s, 2),
            "killed_after_s": round(killed_s, 2),
            "records_kept_at_kill": written,
            "resume_to_finish_s": round(resumed_s, 2),
            "killed_plus_resumed_over_uninterrupted": round((killed_s + resumed_s) / full_s, 3),
            "resume_of_finished_run_s": round(noop_s, 2),
            "resumed_equals_uninterrupted": same,
        },
        units={
            "uninterrupted_s": "s",
            "killed_after_s": "s",
            "records_kept_at_kill": "records",
            "resume_to_finish_s": "s",
            "killed_plus_resumed_over_uninterrupted": "ratio",
            "resume_of_finished_run_s": "s (process start, read records, skip all units)",
            "resumed_equals_uninterrupted": "bool",
        },
        config={
            "tasks": args.tasks,
            "methods": METHODS,
            "units": units,
            "policy": "noisy-expert (synthetic)",
            "sigint_exit_code": exit_code,
        },
    )


if __name__ == "__main__":
    main()
