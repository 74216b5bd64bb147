"""The deployment loop: evaluate AMC on fresh tasks, refresh the critic with what it produced.

Testbed: the AMC paper's TextCraft splits (``../shared/data/amc-splits``:
374 train, 100 test tasks), a step cap of 12, and the synthetic prior
``noisy-expert:eps=0.95`` (a stand-in for an LLM agent; measured on 40
train tasks: a single run solves 54%, pass@4 88%), so that the critic's
choices matter. Round 0 trains a hashed critic on a small ``agentmc collect``
of the prior on the first ``INITIAL_TASKS`` train tasks. Each round then

1. runs ``agentmc eval`` with deployable AMC (K particles, rewards hidden,
   the critic picks the answer) on ``ROUND_TASKS`` train tasks no round has
   used (fresh traffic), with the current critic: ``amc_success`` and its 95%
   bootstrap interval; ``eval`` keeps every particle's trajectory;
2. runs the same AMC with the same critic on the 100 test tasks (the same
   tasks and seeds every round, never trained on): ``heldout_amc_success``,
   paired across rounds;
3. measures the current critic on fresh prior episodes of the test tasks:
   ``within_task_auroc`` (histories of one task at one step),
   ``final_within_task_auroc`` (finished attempts of one task: what critic
   selection compares) and pooled AUROC;
4. ``agentmc critic refresh --data <the round's eval>`` warm-starts the next
   version.

The same commands a user runs (``collect``, ``critic train``, ``eval``,
``critic refresh``), called in-process. Resumable: each round's directories
are kept under ``bench/runs/critic_refresh`` and reused when present.

Run: ``.venv/bin/python bench/critic_refresh.py [--rounds N]``
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from common import write_result

from agentmc.cli.main import main as agentmc
from agentmc.cli.rollout import task_index
from agentmc.critics.artifact import load
from agentmc.critics.evaluate import critic_metrics
from agentmc.critics.targets import make_examples
from agentmc.data.store import RunStore
from agentmc.envs import make, task_ids
from agentmc.eval.metrics import bootstrap_mean, paired_difference
from agentmc.policies import make_policy
from agentmc.rollout import arollout
from agentmc.seeding import task_rng

NAME = "critic_refresh"
RUNS = Path(__file__).resolve().parent / "runs" / NAME
SPLITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "amc-splits"
GOALS = SPLITS / "textcraft_idx_textcraft_crafting_depths.csv"
SPLIT_FILES = {s: SPLITS / f"textcraft_idx_textcraft_{s}_ids.csv" for s in ("train", "test")}
SEED = 19
POLICY = "noisy-expert:eps=0.95"
MAX_STEPS = 12
INITIAL_TASKS, INITIAL_SAMPLES = 24, 4
ROUND_TASKS = 60
ROUNDS = 5
K = 4
METHOD = f"amc:{K}:critic"
HELDOUT_SAMPLES = 6
BACKEND = ["--backend-options", "rank_weight=1.0"]
EVAL = ["--guard-tasks", "0", "--no-report", "--workers", "4"]


def tasks_flags(split: str) -> list[str]:
    return [
        "--goals-csv",
        str(GOALS),
        "--split-csv",
        str(SPLIT_FILES[split]),
        "--split",
        split,
        "--max-steps",
        str(MAX_STEPS),
    ]


def table():
    from agentmc.envs.textcraft import TaskTable

    return TaskTable.from_amc_splits(SPLITS)


def run(*argv: str) -> None:
    code = agentmc(list(argv))
    if code != 0:
        raise SystemExit(f"agentmc {' '.join(argv[:2])} failed with {code}")


def heldout_examples():
    """Fresh prior episodes on the test split: states and finished attempts."""
    policy = make_policy(POLICY)
    tasks = table()

    async def play():
        out = []
        for task in task_ids("textcraft", "test", tasks=tasks):
            for sample in range(HELDOUT_SAMPLES):
                env = make("textcraft", task_id=task, tasks=tasks, max_steps=MAX_STEPS)
                out.append(
                    await arollout(env, policy, task_rng(SEED + 1, task_index(task), sample))
                )
        return out

    return make_examples(asyncio.run(play()), "return", terminal=True)


def main() -> None:
    rounds = ROUNDS
    if "--rounds" in sys.argv:
        rounds = int(sys.argv[sys.argv.index("--rounds") + 1])
    RUNS.mkdir(parents=True, exist_ok=True)
    if not SPLITS.is_dir():
        raise SystemExit(f"{NAME}: the AMC paper's splits are not at {SPLITS}")
    # Deployment traffic arrives in no particular order: the paper's train ids are sorted
    # by recipe depth, so fresh tasks are drawn from a seeded shuffle of them.
    ordered = task_ids("textcraft", "train", tasks=table())
    pool = [ordered[i] for i in np.random.default_rng(SEED).permutation(len(ordered))]
    needed = INITIAL_TASKS + rounds * ROUND_TASKS
    if needed > len(pool):
        raise SystemExit(f"{rounds} rounds need {needed} train tasks; the split has {len(pool)}")
    start = time.perf_counter()
    prior = RUNS / "prior"
    common = ["--policy", POLICY, "--no-progress", "--seed", str(SEED)]
    run(
        "collect",
        "--out",
        str(prior),
        *tasks_flags("train"),
        "--task-ids",
        *pool[:INITIAL_TASKS],
        "--samples-per-task",
        str(INITIAL_SAMPLES),
        *common,
    )
    critic = RUNS / "critic-v1"
    if not (critic / "critic.json").exists():
        run(
            "critic",
            "train",
            "--data",
            str(prior),
            "--out",
            str(critic),
            "--seed",
            str(SEED),
            *BACKEND,
        )
    heldout = heldout_examples()
    metrics: dict[str, float | int | None] = {}
    units: dict[str, str] = {}
    per_round: list[dict] = []
    first_held: dict[str, float] = {}
    rng = np.random.default_rng(SEED)
    for r in range(1, rounds + 1):
        chunk = pool[INITIAL_TASKS + (r - 1) * ROUND_TASKS : INITIAL_TASKS + r * ROUND_TASKS]
        day = RUNS / f"round-{r}"
        run(
            "eval",
            "--out",
            str(day),
            "--methods",
            METHOD,
            "--critic",
            str(critic),
            *tasks_flags("train"),
            "--task-ids",
            *chunk,
            *EVAL,
            *common,
        )
        rows = [rec["data"] for rec in RunStore.open(day).records("result")]
        success = bootstrap_mean(np.array([float(x["success"]) for x in rows]), rng)
        model = load(critic, env_id="textcraft")
        version = model.provenance.version
        fixed = RUNS / f"heldout-v{version}"
        run(
            "eval",
            "--out",
            str(fixed),
            "--methods",
            METHOD,
            "--critic",
            str(critic),
            *tasks_flags("test"),
            *EVAL,
            *common,
        )
        held_rows = [rec["data"] for rec in RunStore.open(fixed).records("result")]
        held_success = {x["task_id"]: float(x["success"]) for x in held_rows}
        if not per_round:
            first_held = held_success
        common_tasks = sorted(set(held_success) & set(first_held))
        held = bootstrap_mean(np.array([held_success[t] for t in common_tasks]), rng)
        gain = paired_difference(
            np.array([held_success[t] for t in common_tasks]),
            np.array([first_held[t] for t in common_tasks]),
            rng,
        )
        found, _ = critic_metrics(model, heldout)
        entry = {
            "round": r,
            "critic_version": version,
            "tasks": len(rows),
            "amc_success": round(success.value, 4),
            "ci_low": round(success.low, 4),
            "ci_high": round(success.high, 4),
            "heldout_tasks": len(held_rows),
            "heldout_amc_success": round(held.value, 4),
            "heldout_ci_low": round(held.low, 4),
            "heldout_ci_high": round(held.high, 4),
            "heldout_gain_vs_round1": round(gain.value, 4),
            "heldout_gain_ci": [round(gain.low, 4), round(gain.high, 4)],
            "within_task_auroc": found["within_task_auroc"],
            "final_within_task_auroc": found["final_within_task_auroc"],
            "pooled_auroc": found["auroc_success"],
            "mean_calls": float(np.mean([x["calls"] for x in rows])),
            "critic_cpu_s": float(np.mean([x.get("critic_cpu_s", 0.0) for x in rows])),
        }
        per_round.append(entry)
        for key in (
            "heldout_amc_success",
            "heldout_gain_vs_round1",
            "amc_success",
            "ci_low",
            "ci_high",
            "within_task_auroc",
            "final_within_task_auroc",
            "pooled_auroc",
        ):
            value = entry[key]
            metrics[f"round{r}.{key}"] = None if value is None else round(float(value), 4)
            units[f"round{r}.{key}"] = "AUROC" if "auroc" in key else "share of tasks"
        print(json.dumps(entry), flush=True)
        if r < rounds:
            refreshed = RUNS / f"critic-v{version + 1}"
            if not (refreshed / "critic.json").exists():
                run(
                    "critic",
                    "refresh",
                    "--critic",
                    str(critic),
                    "--data",
                    str(day),
                    "--out",
                    str(refreshed),
                    "--seed",
                    str(SEED),
                )
            critic = refreshed
    # Yardsticks on the same 100 test tasks and seeds: a single run, Best-of-K by the
    # first critic (deployable) and by the true reward (pass@K, not deployable).
    baselines = RUNS / "baselines"
    run(
        "eval",
        "--out",
        str(baselines),
        "--methods",
        "single",
        f"bon:{K}:critic",
        f"bon:{K}:reward",
        "--critic",
        str(RUNS / "critic-v1"),
        *tasks_flags("test"),
        *EVAL,
        *common,
    )
    solved: dict[str, list[float]] = {}
    for rec in RunStore.open(baselines).records("result"):
        data = rec["data"]
        name = "single" if data["method"] == "single" else f"bon_{data['selection']}"
        solved.setdefault(f"baseline.{name}", []).append(float(data["success"]))
    for key, values in solved.items():
        metrics[key] = round(float(np.mean(values)), 4)
        units[key] = f"share of the {len(values)} test tasks"
    first, last = per_round[0], per_round[-1]
    metrics["last_minus_first.amc_success"] = round(last["amc_success"] - first["amc_success"], 4)
    units["last_minus_first.amc_success"] = "share of tasks"
    metrics["last_minus_first.within_task_auroc"] = round(
        last["within_task_auroc"] - first["within_task_auroc"], 4
    )
    units["last_minus_first.within_task_auroc"] = "AUROC"
    write_result(
        NAME,
        metrics,
        units,
        {
            "policy": f"{POLICY} (synthetic stand-in for an LLM agent)",
            "env": f"textcraft, the AMC paper's splits ({SPLITS.name}), step cap {MAX_STEPS}",
            "method": f"{METHOD} (deployable: rewards hidden, the critic picks the answer), "
            "schedule every, beta 1, no budget cap",
            "heldout_eval": "the same AMC with each round's critic on the 100 paper test tasks, "
            "same seeds every round; heldout_gain_vs_round1: paired difference with round 1 "
            "(bootstrap 95% CI)",
            "initial_critic": "hashed ridge on returns + final states, rank_weight 1, trained "
            f"on {INITIAL_TASKS} train tasks x {INITIAL_SAMPLES} prior episodes",
            "round": f"eval on {ROUND_TASKS} fresh train tasks (a seeded shuffle of the paper's "
            "train ids, which are sorted by depth), then agentmc critic "
            "refresh --data <that eval dir> (every particle of every task)",
            "heldout_critic_metrics": f"{HELDOUT_SAMPLES} fresh prior episodes on each of the "
            f"{len(set(heldout.task_ids))} test-split tasks (no critic version trains on them)",
            "ci": "95% percentile bootstrap over the round's tasks",
            "reading": "amc_success is on each round's own fresh tasks (different tasks every "
            "round, so round-to-round changes mix task difficulty with the critic); the "
            "critic's effect is heldout_gain_vs_round1 (same 100 test tasks and seeds, paired). "
            "Yardsticks on those tasks: baseline.single, baseline.bon_critic (deployable "
            "Best-of-K), baseline.bon_reward (pass@K, not deployable)",
            "per_round": per_round,
            "wall_s": round(time.perf_counter() - start, 1),
            "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "seed": SEED,
        },
    )


if __name__ == "__main__":
    if "--fresh" in sys.argv:
        shutil.rmtree(RUNS, ignore_errors=True)
    main()
