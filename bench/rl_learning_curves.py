"""Learning curves on TextCraft: GRPO vs RLOO vs G2PO vs GiGPO, same seeds and budget.

Every run trains the linear candidate-scoring policy (:mod:`agentmc.rl.trainer`)
on the same pool of TextCraft training tasks of recipe depth 2 (a uniformly
random policy solves about 3% of them within 20 steps), with the same
iterations, batch (4 tasks x 8 episodes), learning rate and features; only the
advantage estimator differs. The tasks and episode seeds of iteration ``i``
depend only on ``(seed, i)``, so the estimators face the same tasks in the same
order (common random numbers).

Metric: success of the sampled training episodes against cumulative
environment steps, smoothed over ``WINDOW`` iterations, averaged over seeds on
a common grid of environment steps. The target is GRPO's final success (its
seed-averaged curve at the end of the budget); for each estimator the bench
reports the environment steps its seed-averaged curve needs to reach that
target and the ratio to GRPO's (goal for G2PO: <= 0.6). ``None`` means the
target was not reached within the budget.

Settings chosen before this bench's seeds were run: gamma = 0.95 for the
step-level parts of G2PO and GiGPO (GiGPO's published default), step weight 1;
a probe on seeds 0 and 1 (not used here) suggested gamma = 0.95 was slightly
better than 1 for G2PO. Seeds here: 100 to 104.

Run: ``.venv/bin/python bench/rl_learning_curves.py`` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from common import RESULTS, write_result

from agentmc.envs.textcraft import TaskTable, load_recipe_book
from agentmc.rl import EstimatorConfig, GRPOConfig, mean_curve, plot_curves, train
from agentmc.rl.curves import steps_to_reach

ESTIMATORS = ("grpo", "rloo", "g2po", "gigpo")
SEEDS = (100, 101, 102, 103, 104)
ITERATIONS = 150
N_TASKS = 24
WINDOW = 10
WORKERS = 2


def task_pool() -> list[str]:
    """The first ``N_TASKS`` training tasks (by id) whose goal has recipe depth 2."""
    book, table = load_recipe_book(), TaskTable.default()
    ids = [i for i in table.task_ids("train") if book.depth(table.goal(i)) == 2]
    return ids[:N_TASKS]


def config(estimator: str, seed: int, iterations: int) -> GRPOConfig:
    return GRPOConfig(
        env_id="textcraft",
        estimator=estimator,
        iterations=iterations,
        tasks_per_iteration=4,
        group_size=8,
        max_steps=20,
        learning_rate=0.05,
        feature_dim=2**16,
        advantage=EstimatorConfig(gamma=0.95, step_weight=1.0),
        seed=seed,
    )


def run_one(job: tuple[str, int, int]) -> tuple[str, int, list[dict], float]:
    estimator, seed, iterations = job
    started = time.perf_counter()
    result = train(config(estimator, seed, iterations), tasks=task_pool())
    return estimator, seed, result.history, time.perf_counter() - started


def main(iterations: int = ITERATIONS) -> None:
    started = time.perf_counter()
    jobs = [(e, s, iterations) for s in SEEDS for e in ESTIMATORS]
    with Pool(WORKERS) as pool:
        results = pool.map(run_one, jobs, chunksize=1)
    runs: dict[str, list[list[dict]]] = {e: [] for e in ESTIMATORS}
    seconds: dict[str, float] = {e: 0.0 for e in ESTIMATORS}
    for estimator, _, history, spent in results:
        runs[estimator].append(history)
        seconds[estimator] += spent
    # common grid: up to the smallest final env-step count of all runs
    end = min(h[-1]["env_steps"] for hs in runs.values() for h in hs)
    grid = np.linspace(0, end, 400)
    curves = {e: mean_curve(runs[e], grid, window=WINDOW)[0] for e in ESTIMATORS}
    target = float(curves["grpo"][-1])
    metrics: dict[str, float | None] = {"grpo_final_success": round(target, 4)}
    units: dict[str, str] = {"grpo_final_success": "success rate (target)"}
    reach = {e: steps_to_reach(grid, curves[e], target) for e in ESTIMATORS}
    for e in ESTIMATORS:
        metrics[f"{e}_final_success"] = round(float(curves[e][-1]), 4)
        units[f"{e}_final_success"] = "success rate at the common budget"
        metrics[f"{e}_mean_success"] = round(float(curves[e].mean()), 4)
        units[f"{e}_mean_success"] = "success rate averaged over the budget (area under curve)"
        metrics[f"{e}_steps_to_target"] = reach[e]
        units[f"{e}_steps_to_target"] = "env steps (None: not reached)"
        ratio = None if reach[e] is None or not reach["grpo"] else reach[e] / reach["grpo"]
        metrics[f"{e}_steps_ratio_vs_grpo"] = None if ratio is None else round(ratio, 3)
        units[f"{e}_steps_ratio_vs_grpo"] = "ratio (goal for g2po <= 0.6)"
        per_seed = []
        for history, grpo_history in zip(runs[e], runs["grpo"], strict=True):
            own = mean_curve([history], grid, window=WINDOW)[0]
            base = mean_curve([grpo_history], grid, window=WINDOW)[0]
            mine, theirs = steps_to_reach(grid, own, target), steps_to_reach(grid, base, target)
            per_seed.append(None if mine is None or not theirs else round(mine / theirs, 3))
        metrics[f"{e}_steps_ratio_per_seed"] = per_seed  # type: ignore[assignment]
        units[f"{e}_steps_ratio_per_seed"] = "ratio per seed vs GRPO of the same seed"
        finite = [r for r in per_seed if r is not None]
        metrics[f"{e}_steps_ratio_median_seed"] = float(np.median(finite)) if finite else None
        units[f"{e}_steps_ratio_median_seed"] = (
            f"median of the per-seed ratios where both reached the target ({len(finite)} seeds)"
        )
        metrics[f"{e}_cpu_seconds"] = round(seconds[e], 1)
        units[f"{e}_cpu_seconds"] = "s (sum over seeds)"
    metrics["common_budget_env_steps"] = float(end)
    units["common_budget_env_steps"] = "env steps"
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    units["wall_seconds"] = "s"
    plot_curves(
        runs,
        Path(RESULTS) / "rl_learning_curves.png",
        window=WINDOW,
        title=f"TextCraft depth-2 tasks, linear policy, {len(SEEDS)} seeds",
        target=target,
    )
    sample = config("g2po", SEEDS[0], iterations)
    write_result(
        "rl_learning_curves",
        metrics,
        units,
        {
            "estimators": list(ESTIMATORS),
            "seeds": list(SEEDS),
            "iterations": iterations,
            "tasks": task_pool(),
            "tasks_per_iteration": sample.tasks_per_iteration,
            "group_size": sample.group_size,
            "max_steps": sample.max_steps,
            "learning_rate": sample.learning_rate,
            "feature_dim": sample.feature_dim,
            "gamma": sample.advantage.gamma,
            "step_weight": sample.advantage.step_weight,
            "window": WINDOW,
            "success": "sampled training episodes (temperature 1)",
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ITERATIONS)
