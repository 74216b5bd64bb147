"""Does tuned AMC beat Best-of-N at equal policy calls, in deployment? (issue 14)

For each prior (the agent AMC steers) and each cell K x selection:

- ``expert``: the synthetic noisy expert ``noisy-expert:eps=EPS`` (a uniformly
  random valid action with probability EPS per step; labelled synthetic);
- ``local``: the embedded agent (``--prior local``: SmolLM2-135M with the
  shipped ``textcraft-g2po`` adapter; slow on CPU, so its defaults are K = 4
  on 50 test tasks, and every phase resumes). The adapter was trained on
  agentmc's own TextCraft training split, which holds many of the paper's test
  goals: ``config.local.test_tasks_in_prior_training`` lists them. Both methods
  steer that same prior, so AMC minus Best-of-N is a fair comparison; the
  absolute rates are not held-out figures.

Protocol, all on the AMC paper's TextCraft tables (``../shared/data/amc-splits``,
read at run time; the 374 training ids are shuffled with the recorded seed and
cut into critic / tune / guard tasks, the 100 test ids are used in order):

1. *Prior data*: ``ROLLOUTS`` episodes of the prior on each critic task.
2. *Critics* (each one is a separate variant of steps 3-5):
   ``plan``, :class:`~agentmc.critics.textcraft.TextCraftPlanCritic`, a
   hand-written critic that plans from the recipes in the conversation (no
   training; deployable: it never sees the environment's state or reward);
   this is the critic of the main keys. ``learned``: the hashed n-gram critic
   fitted on the prior data (success target, final states, within-task
   ranking rows, TextCraft progress features: the remaining plan's length
   read from the conversation; ``FitConfig`` recorded); its keys are
   ``<prior>.learned.*``.
3. *Tune* (per cell): every grid point (beta x schedule x selection; deployable
   cells try ``--deployable-selects``: ``critic`` and ``weight`` for the expert,
   ``critic`` alone for the slow local prior) on the tune tasks at the cell's
   budget; the most successful point is the cell's AMC
   (:mod:`agentmc.eval.tune`). Each grid point's resampling statistics are
   recorded (the ESS-vs-fixed-schedule analysis).
4. *Guard* (deployable cells): the chosen AMC against Best-of-K (critic
   selection) on the guard tasks, decided by the library's do-no-harm rule
   (:func:`agentmc.eval.harness.guard_decision`); reported beside, never
   substituted into, the ``amc`` figures.
5. *Test*: ``single``, ``bon:K`` (reward), ``bon:K:critic`` and the tuned AMC
   per selection on the test tasks. ``bon:K:critic`` chooses among ``bon:K``'s
   own K samples (:func:`agentmc.methods.critic_choice`: the same draws a
   separate run would make), so Best-of-K is sampled once per K. Every
   method of a K gets the same per-task cap of ``K x 20`` policy calls (20 =
   TextCraft's step cap, so Best-of-K is never cut short) and the same
   per-task seeds (common random numbers); the mean calls actually spent are
   reported.

Metrics (``<prior>`` in {expert, local}, ``<select>`` in {reward, critic}):
``<prior>.<select>.k<K>.<method>.success`` (+ ``.ci_low``/``.ci_high``/``.calls``)
for method in single, bon, amc; ``<prior>.<select>.k<K>.amc_minus_bon.{diff,
ci_low,ci_high}`` (paired bootstrap over test tasks); ``<prior>.n_tasks``;
``<prior>.pass_at_1`` / ``pass_at_<Kmax>`` of the prior (from Best-of-Kmax's
independent samples; ``pass_at_8`` is ``null`` without K = 8, and the local
prior's K = 4 gives ``pass_at_4``); ``<prior>.within_task_auroc``: the critic's
AUROC among states of one task at one step (held-out training tasks; what
resampling needs), and ``<prior>.final_within_task_auroc`` among the finished
attempts of one task (Best-of-Kmax on the test tasks; what critic selection
needs). The same keys under ``<prior>.learned.`` for the learned critic.
Tuning grids, choices and guard decisions are in ``config``.

Run: ``python bench/amc_deployable.py`` (expert prior; about an hour on 2
heavily shared cores) or ``python bench/amc_deployable.py --prior local`` (hours;
resumable: run it again after an interruption). Each run updates only its
prior's keys in ``bench/results/amc_deployable.json``. Run directories live in
``bench/runs/amc_deployable/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import RESULTS, write_result

from agentmc.critics.evaluate import critic_metrics
from agentmc.critics.fit import FitConfig, fit
from agentmc.critics.hashed import HashedConfig
from agentmc.critics.targets import make_examples
from agentmc.critics.textcraft import TextCraftPlanCritic
from agentmc.data.store import RunStore
from agentmc.data.trajectory import Trajectory
from agentmc.envs import make, task_ids
from agentmc.envs.textcraft import TaskTable
from agentmc.envs.textcraft.tasks import default_table
from agentmc.errors import DataError
from agentmc.eval.harness import Entry, Evaluation, Plan, guard_decision
from agentmc.eval.metrics import bootstrap_mean, paired_difference
from agentmc.eval.runner import Unit, run_units
from agentmc.eval.tune import TuneGrid, choose, tune_specs
from agentmc.methods import EpisodeResult, MethodSpec, critic_choice
from agentmc.policies import make_policy
from agentmc.policies.adapters import shipped_adapter
from agentmc.policies.local import LocalPolicy
from agentmc.rollout import arollout
from agentmc.seeding import task_rng
from agentmc.smc import Budget

NAME = "amc_deployable"
SPLITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "amc-splits"
RUNS = Path(__file__).resolve().parent / "runs" / NAME
SEED = 14
MAX_STEPS = 20
#: Chosen so a single run of the expert succeeds 35-55% on the 100 test tasks (51%).
EPS = 0.85
PRIORS = {"expert": f"noisy-expert:eps={EPS}", "local": "local"}
#: The local model is slow: its default runs the main critic only.
DEFAULT_CRITICS = {"expert": ("plan", "learned"), "local": ("plan",)}
#: Noise levels of the expert's calibration sweep (single-run success and pass@8 per depth).
EPS_SWEEP = (0.0, 0.3, 0.6, 0.8, 0.85, 0.9)
#: KV-cache cells of the local prior (:func:`local_context`).
LOCAL_N_CTX = 32768
#: Critic of the main metric keys; others go under ``<prior>.<critic>.``.
MAIN_CRITIC = "plan"
RANK_WEIGHT = 1.0
#: Progress features of the learned critic: within-task AUROC 0.57 -> 0.64 (held-out tasks).
PLAN_FEATURES = True
DEFAULTS: dict[str, dict[str, Any]] = {
    "expert": {
        "ks": (4, 8),
        "n_test": 100,
        "n_critic": 200,
        "rollouts": 4,
        "n_tune": 40,
        "n_guard": 60,
        "betas": (0.03, 0.1, 0.3),
        "schedules": ("every", "steps:4", "steps:3,6,9,12", "ess:0.5"),
        "deployable_selects": ("critic", "weight"),
        "workers": 8,
    },
    "local": {
        "ks": (4,),
        "n_test": 50,
        "n_critic": 30,
        "rollouts": 2,
        "n_tune": 20,
        "n_guard": 30,
        "betas": (0.1,),
        "schedules": ("every", "steps:4"),
        "deployable_selects": ("critic",),
        # 8 histories in flight: at 16 the engine made half the actions/s (1.4 vs 3)
        "workers": 2,
    },
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", choices=sorted(PRIORS), default="expert")
    parser.add_argument("--ks", type=int, nargs="+")
    parser.add_argument("--selects", nargs="+", choices=("reward", "critic"))
    parser.add_argument("--n-test", type=int)
    parser.add_argument("--n-critic", type=int)
    parser.add_argument("--rollouts", type=int)
    parser.add_argument("--n-tune", type=int)
    parser.add_argument("--n-guard", type=int)
    parser.add_argument("--betas", type=float, nargs="+")
    parser.add_argument("--schedules", nargs="+")
    parser.add_argument("--deployable-selects", nargs="+", choices=("critic", "weight"))
    parser.add_argument("--workers", type=int)
    parser.add_argument("--critics", nargs="+", choices=("plan", "learned"))
    args = parser.parse_args()
    for key, value in DEFAULTS[args.prior].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.selects = tuple(args.selects or ("reward", "critic"))
    args.critics = tuple(args.critics or DEFAULT_CRITICS[args.prior])
    if not SPLITS.is_dir():
        parser.exit(2, f"{NAME}: error: the AMC paper's splits are not at {SPLITS}\n")
    if 0 < args.n_guard < 30:
        parser.exit(2, f"{NAME}: error: --n-guard must be 0 (skip) or >= 30\n")
    return args


def partition(table: TaskTable, args: argparse.Namespace) -> dict[str, list[str]]:
    train = task_ids("textcraft", "train", tasks=table)
    order = [train[i] for i in np.random.default_rng(SEED).permutation(len(train))]
    sizes = (args.n_critic, args.n_tune, args.n_guard)
    if sum(sizes) > len(order):
        raise SystemExit(f"{NAME}: error: critic+tune+guard tasks exceed {len(order)} train ids")
    critic, rest = order[: sizes[0]], order[sizes[0] :]
    return {
        "critic": critic,
        "tune": rest[: sizes[1]],
        "guard": rest[sizes[1] : sizes[1] + sizes[2]],
        "test": task_ids("textcraft", "test", tasks=table)[: args.n_test],
    }


def collect(root: Path, table: TaskTable, policy: Any, tasks: list[str], rollouts: int, workers):
    store = RunStore.create_or_resume(
        root / "prior",
        command="bench-collect",
        seed=SEED,
        config={"policy": policy.name, "tasks": tasks, "rollouts": rollouts},
    )

    async def work(unit: Unit) -> tuple[str, dict[str, Any]]:
        task_id, sample = unit.payload
        env = make("textcraft", task_id=task_id, tasks=table)
        trajectory = await arollout(env, policy, task_rng(SEED, int(task_id), 1000 + sample))
        return "trajectory", trajectory.to_dict()

    units = [Unit(f"{t}/{s}", (t, s)) for t in tasks for s in range(rollouts)]
    asyncio.run(run_units(store, units, work, workers=workers, description="prior data"))
    return [Trajectory.from_dict(r["data"]) for r in store.records("trajectory")]


def eps_sweep(table: TaskTable, tasks: list[str], samples: int = 8) -> list[dict[str, Any]]:
    """Single-run success and pass@8 of the expert per eps, overall and by gold-plan length."""
    lengths = np.array([len(make("textcraft", task_id=t, tasks=table).gold_plan()) for t in tasks])
    buckets = {"plan<=4": lengths <= 4, "plan5-8": (lengths > 4) & (lengths <= 8)}
    buckets["plan>=9"] = lengths > 8
    rows = []
    for eps in EPS_SWEEP:
        policy = make_policy(f"noisy-expert:eps={eps}")

        async def play(task_id: str, sample: int, policy: Any = policy) -> bool:
            env = make("textcraft", task_id=task_id, tasks=table)
            trajectory = await arollout(env, policy, task_rng(SEED, int(task_id), 5000 + sample))
            return trajectory.success

        async def play_all() -> list[bool]:
            return await asyncio.gather(*(play(t, s) for t in tasks for s in range(samples)))

        wins = np.array(asyncio.run(play_all()), dtype=float).reshape(len(tasks), samples)
        row: dict[str, Any] = {
            "policy": policy.name,
            "pass_at_1": float(wins.mean()),
            "pass_at_8": float(wins.max(axis=1).mean()),
        }
        for name, mask in buckets.items():
            row[f"pass_at_1.{name}"] = float(wins[mask].mean()) if mask.any() else None
            row[f"pass_at_8.{name}"] = float(wins[mask].max(axis=1).mean()) if mask.any() else None
        rows.append(row)
        print(f"eps sweep: {row}", flush=True)
    return rows


def train_critic(trajectories: list[Trajectory]) -> tuple[Any, Any, dict[str, Any]]:
    """The learned critic (refitted each run: seconds, deterministic) and its held-out data."""
    config = FitConfig(backend="hashed", target="success", seed=SEED)
    backend = HashedConfig(rank_weight=RANK_WEIGHT, plan_features=PLAN_FEATURES)
    fitted = fit(trajectories, config, backend_config=backend)
    info = {
        "fit_config": dataclasses.asdict(config),
        "backend_config": dataclasses.asdict(backend),
    }
    return fitted.critic, fitted.val_examples, info


def held_out_metrics(critic: Any, examples: Any) -> dict[str, float]:
    """Pooled and within-task metrics on the learned critic's held-out training tasks."""
    metrics, _ = critic_metrics(critic, examples)
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


def evaluate(
    path: Path,
    specs: list[MethodSpec],
    tasks: list[str],
    *,
    split: str,
    k: int,
    table: TaskTable,
    policy: Any,
    critic: Any,
    workers: int,
    critic_config: dict[str, Any] | None = None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Run specs on tasks at K x 20 calls per task (resumable); (label, task) -> record.

    ``critic_config`` (a learned critic's settings) is part of the run's config, so a
    run made with another critic is refused rather than resumed.
    """
    plan = Plan(
        entries=tuple(Entry(s) for s in specs),
        split=split,
        task_ids=tuple(tasks),
        seed=SEED,
        budget=Budget(max_calls=k * MAX_STEPS),
    )
    store = RunStore.create_or_resume(
        path,
        command="bench-eval",
        seed=SEED,
        config={"methods": [s.label for s in specs], "tasks": tasks, "policy": policy.name}
        | ({"critic": critic_config} if critic_config is not None else {}),
    )
    evaluation = Evaluation(
        plan,
        store,
        make_env=lambda t: make("textcraft", task_id=t, tasks=table),
        make_policy=lambda _: policy,
        critic=critic,
        workers=workers,
        progress=sys.stderr.isatty(),
    )
    asyncio.run(evaluation.run())
    return {(r["data"]["method"], r["data"]["task_id"]): r["data"] for r in store.records("result")}


def outcomes(records, label: str, tasks: list[str]) -> np.ndarray:
    return np.array([float(records[(label, t)]["success"]) for t in tasks])


def calls(records, label: str, tasks: list[str]) -> float:
    return float(np.mean([records[(label, t)]["calls"] for t in tasks]))


def critic_selected(records, k: int, tasks: list[str]) -> dict[tuple[str, str], Any]:
    """Best-of-K judged by the critic, chosen among the samples of ``bon:K`` (by reward).

    :func:`agentmc.methods.critic_choice`: the same draws a ``bon:K:critic`` run
    would make, so Best-of-K is sampled once per K.
    """
    label, critic_label = MethodSpec("bon", k).label, MethodSpec("bon", k, "critic").label
    out = {}
    for t in tasks:
        record = records[(label, t)]
        episode = record["episode"]
        index = critic_choice(EpisodeResult.from_dict(episode))
        out[(critic_label, t)] = {
            "method": critic_label,
            "task_id": t,
            "success": episode["candidates_rewards"][index] > 0,
            "calls": record["calls"],
            "chosen_from": label,
        }
    return out


def within_task_auroc(records, label: str, tasks: list[str]) -> float | None:
    """P(critic scores a successful attempt above a failed one of the same task); ties 1/2."""
    wins = pairs = 0.0
    for t in tasks:
        episode = records[(label, t)]["episode"]
        values, rewards = episode["candidate_values"], episode["candidates_rewards"]
        if values is None:
            return None
        good = [v for v, r in zip(values, rewards, strict=True) if r > 0]
        bad = [v for v, r in zip(values, rewards, strict=True) if r <= 0]
        for g in good:
            for b in bad:
                wins += 1.0 if g > b else 0.5 if g == b else 0.0
                pairs += 1
    return None if pairs == 0 else wins / pairs


def schedule_statistics(records, label: str, tasks: list[str]) -> dict[str, float]:
    """Resampling events per episode, ESS/K at checkpoints, unique ancestors per resampling."""
    events, ess, unique = [], [], []
    for t in tasks:
        diagnostics = records[(label, t)]["episode"]["diagnostics"]
        k = (diagnostics.get("config") or {}).get("n_particles") or 1
        checkpoints = diagnostics.get("checkpoints") or []
        events.append(sum(bool(c.get("resampled")) for c in checkpoints))
        ess += [float(c["ess"]) / k for c in checkpoints if "ess" in c]
        unique += [
            float(c["n_unique_ancestors"]) / k
            for c in checkpoints
            if c.get("resampled") and c.get("n_unique_ancestors") is not None
        ]
    return {
        "resamplings_per_episode": float(np.mean(events)) if events else 0.0,
        "mean_ess_fraction": float(np.mean(ess)) if ess else None,
        "unique_ancestor_fraction": float(np.mean(unique)) if unique else None,
    }


def run_variant(
    variant: str, critic: Any, args: argparse.Namespace, context: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Tune, guard and test every cell with one critic; metrics under ``<variant>.``."""
    root, table, policy, split = (context[k] for k in ("root", "table", "policy", "split"))
    root = root / variant.replace(".", "-")
    test = split["test"]
    rng = np.random.default_rng(SEED)
    metrics: dict[str, Any] = {}
    units: dict[str, str] = {}
    choices: dict[str, Any] = {}
    grids = {
        select: TuneGrid(
            tuple(args.betas),
            tuple(args.schedules),
            () if select == "reward" else tuple(args.deployable_selects),
        )
        for select in args.selects
    }
    run = functools.partial(
        evaluate,
        table=table,
        policy=policy,
        critic=critic,
        workers=args.workers,
        critic_config=context["critic_configs"].get(variant),
    )
    single = None
    for k in args.ks:
        chosen: dict[str, MethodSpec] = {}
        for select in args.selects:
            base = MethodSpec("amc", k, select)  # type: ignore[arg-type]
            specs = tune_specs(base, grids[select])
            tune_ids = split["tune"]
            tuned = run(root / f"tune-k{k}-{select}", specs, tune_ids, split="validation", k=k)
            success = {s.label: outcomes(tuned, s.label, tune_ids) for s in specs}
            spent = {s.label: [tuned[(s.label, t)]["calls"] for t in tune_ids] for s in specs}
            choice = choose(base, specs, success, spent)
            chosen[select] = choice.chosen_spec
            record = choice.to_dict()
            for row in record["grid"]:
                row |= schedule_statistics(tuned, row["label"], tune_ids)
            choices[f"{select}.k{k}"] = record
            print(f"{variant} k={k} {select}: chose {choice.chosen}", flush=True)
            if select == "critic" and split["guard"]:
                bon = MethodSpec("bon", k, "critic")
                ids = split["guard"]
                guard = run(
                    root / f"guard-k{k}", [chosen[select], bon], ids, split="validation", k=k
                )
                decision = guard_decision(
                    outcomes(guard, chosen[select].label, ids).astype(bool),
                    outcomes(guard, bon.label, ids).astype(bool),
                    label=chosen[select].label,
                    baseline_label=bon.label,
                )
                record["guard"] = dataclasses.asdict(decision) | {"reason": decision.reason}
        specs = [MethodSpec("bon", k), *chosen.values()]
        if single is None:
            specs.insert(0, MethodSpec("single"))
        results = run(root / f"test-k{k}", specs, test, split="test", k=k)
        results |= critic_selected(results, k, test)
        if single is None:
            single = (outcomes(results, "single", test), calls(results, "single", test))
        bon_reward = f"bon@reward-k{k}"
        if k == max(args.ks):
            key = f"{variant}.final_within_task_auroc"
            metrics[key] = within_task_auroc(results, bon_reward, test)
            units[key] = f"critic AUROC among finished attempts of one task (Best-of-{k}, test)"
        if k == max(args.ks):  # pass@8 needs K = 8; the local prior's K = 4 gives pass@4
            wins = np.array(
                [
                    [r > 0 for r in results[(bon_reward, t)]["episode"]["candidates_rewards"]]
                    for t in test
                ],
                dtype=float,
            )
            metrics[f"{variant}.pass_at_1"] = float(wins.mean())
            metrics[f"{variant}.pass_at_{k}"] = float(wins.max(axis=1).mean())
            for key in (f"{variant}.pass_at_1", f"{variant}.pass_at_{k}"):
                units[key] = f"prior success rate: one sample / any of {k} (Best-of-{k}, test)"
        for select in args.selects:
            cell = f"{variant}.{select}.k{k}"
            bon_label = bon_reward if select == "reward" else f"bon@critic-k{k}"
            amc_label = chosen[select].label
            rows = {
                "single": single,
                "bon": (outcomes(results, bon_label, test), calls(results, bon_label, test)),
                "amc": (outcomes(results, amc_label, test), calls(results, amc_label, test)),
            }
            for method, (values, spent) in rows.items():
                estimate = bootstrap_mean(values, rng)
                metrics[f"{cell}.{method}.success"] = estimate.value
                metrics[f"{cell}.{method}.ci_low"] = estimate.low
                metrics[f"{cell}.{method}.ci_high"] = estimate.high
                metrics[f"{cell}.{method}.calls"] = spent
                units[f"{cell}.{method}.success"] = "fraction of test tasks solved"
                units[f"{cell}.{method}.ci_low"] = "95% bootstrap CI, low"
                units[f"{cell}.{method}.ci_high"] = "95% bootstrap CI, high"
                units[f"{cell}.{method}.calls"] = "mean policy calls per task"
            diff = paired_difference(rows["amc"][0], rows["bon"][0], rng)
            for name, value in (("diff", diff.value), ("ci_low", diff.low), ("ci_high", diff.high)):
                metrics[f"{cell}.amc_minus_bon.{name}"] = value
                units[f"{cell}.amc_minus_bon.{name}"] = "paired success difference AMC - BoN"
            guard = choices[f"{select}.k{k}"].get("guard")
            if guard is not None:
                metrics[f"{cell}.guard.trusted"] = float(guard["trusted"])
                metrics[f"{cell}.guard.p_value"] = guard["p_value"]
                units[f"{cell}.guard.trusted"] = "1: do-no-harm guard keeps AMC (validation)"
                units[f"{cell}.guard.p_value"] = "one-sided exact sign test, validation"
            shown = " ".join(f"{m} {metrics[f'{cell}.{m}.success']:.2f}" for m in rows)
            print(f"{cell}: {shown} diff {diff.format()}", flush=True)
    return metrics, units, choices


def schedule_summary(choices: dict[str, Any]) -> dict[str, Any]:
    """Per cell: the best grid point of each schedule family (every / fixed steps / ESS)."""
    summary = {}
    for cell, choice in choices.items():
        best: dict[str, dict[str, Any]] = {}
        for row in choice["grid"]:
            schedule = MethodSpec.parse(row["method"]).schedule
            family = schedule if schedule == "every" else schedule.split(":")[0]
            key = (row["success"], -(row["calls"] or 0.0))
            if family not in best or key > (best[family]["success"], -best[family]["calls"]):
                best[family] = {k: row[k] for k in row if k != "label"}
        summary[cell] = best
    return summary


def main() -> None:
    args = arguments()
    start = time.perf_counter()
    prior = args.prior
    root = RUNS / prior
    root.mkdir(parents=True, exist_ok=True)
    table = TaskTable.from_amc_splits(SPLITS)
    split = partition(table, args)
    policy = local_context(make_policy(PRIORS[prior]))
    sweep = eps_sweep(table, split["test"]) if prior == "expert" else None
    trajectories = collect(root, table, policy, split["critic"], args.rollouts, args.workers)
    critics: dict[str, Any] = {"plan": TextCraftPlanCritic(max_steps=MAX_STEPS)}
    if "learned" in args.critics:
        critics["learned"], held_out, fit_info = train_critic(trajectories)
    else:  # nothing to fit: measure the critics on all the prior data (none of it is tuned on)
        held_out = make_examples(trajectories, "success", terminal=True)
        fit_info = {"not_trained": "the learned critic was not asked for (--critics)"}
    learned = {f"{prior}.learned": fit_info} if "learned" in critics else {}
    context = {"root": root, "table": table, "policy": policy, "split": split}
    context["critic_configs"] = learned
    metrics: dict[str, Any] = {f"{prior}.n_tasks": len(split["test"])}
    units: dict[str, str] = {f"{prior}.n_tasks": "test tasks"}
    variants: dict[str, Any] = {}
    for name in args.critics:
        variant = prior if name == MAIN_CRITIC else f"{prior}.{name}"
        held = held_out_metrics(critics[name], held_out)
        print(f"{name} critic on held-out tasks: {held}", flush=True)
        found, found_units, choices = run_variant(variant, critics[name], args, context)
        metrics |= found
        units |= found_units
        metrics[f"{variant}.within_task_auroc"] = held.get("within_task_auroc")
        units[f"{variant}.within_task_auroc"] = (
            "critic AUROC among states of one task at one step (held-out training tasks)"
        )
        for key, value in held.items():
            metrics[f"{variant}.critic_heldout.{key}"] = value
            units[f"{variant}.critic_heldout.{key}"] = "critic metric on held-out training tasks"
        variants[name] = {
            "metrics_prefix": variant,
            "schedule_families": schedule_summary(choices),
            "choices": choices,
        }
    for key in (f"{prior}.pass_at_1", f"{prior}.pass_at_8"):
        metrics.setdefault(key, None)
        units.setdefault(key, "prior success rate: one sample / any of 8 (Best-of-8, test)")
    metrics[f"{prior}.wall_s"] = round(time.perf_counter() - start, 1)
    units[f"{prior}.wall_s"] = "s for this prior (resumed phases cost ~0)"
    critic_config = {
        "plan": "TextCraftPlanCritic (hand-written; reads only the conversation)",
        "learned": fit_info | {"trained_on": "prior data on the critic tasks"},
        "main": MAIN_CRITIC,
    }
    merge_and_write(prior, args, split, critic_config, variants, metrics, units, sweep)


def local_context(policy: Any) -> Any:
    """The local prior with KV-cache room for every history in flight (others unchanged).

    AMC keeps ``workers x K`` histories of up to ~2,000 tokens in flight, and the
    engine serves at most half its cells of prompts in one group. 32,768 cells
    hold 16 such histories; at the default 8 (2 workers x K = 4) the default
    16,384 cells evaluated the same tokens (2.5 against 2.7 calls/s on two AMC-4
    tasks). The cache size changes where prompts are kept, not the model.
    """
    if not isinstance(policy, LocalPolicy):
        return policy
    name = policy.name
    policy = LocalPolicy(dataclasses.replace(policy.config, n_ctx=LOCAL_N_CTX))
    policy.name = name
    return policy


def seen_in_training(prior: str, test: list[str]) -> dict[str, Any] | None:
    """Which test goals the prior's shipped adapter was trained on (``None``: no adapter).

    The adapter learned on agentmc's own TextCraft training split, which is not the
    paper's: many of the paper's test goals are among its training goals. AMC and
    Best-of-N steer the same prior, so their difference stays fair; absolute success
    rates are not held-out figures.
    """
    adapter = shipped_adapter("textcraft") if prior == "local" else None
    if adapter is None:
        return None
    ours, paper = default_table(), TaskTable.from_amc_splits(SPLITS)
    trained = {ours.goals[i] for i in ours.splits["train"]}
    seen = [t for t in test if paper.goals[int(t)] in trained]
    return {"adapter": adapter.name, "n_seen": len(seen), "n_test": len(test), "seen": seen}


def merge_and_write(prior, args, split, critic_info, variants, metrics, units, sweep) -> None:
    """Keep the other prior's keys from an earlier run; replace this prior's."""
    path = RESULTS / f"{NAME}.json"
    old: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    keep = {k: v for k, v in old.get("metrics", {}).items() if not k.startswith(prior + ".")}
    keep_units = {k: v for k, v in old.get("units", {}).items() if k in keep}
    config = dict(old.get("config", {}))
    config["common"] = {
        "tasks": "AMC paper TextCraft tables (../shared/data/amc-splits)",
        "seed": SEED,
        "max_steps": MAX_STEPS,
        "budget": "K x 20 policy calls per task for every method of a K",
        "bon_critic": "Best-of-K judged by the critic's score of each finished attempt",
        "amc": "tuned on the tune tasks (validation), see <prior>.choices",
        "guard": "deployable cells: library do-no-harm rule on the guard tasks; reported, "
        "not applied to the amc figures",
        "load_avg_at_end": list(os.getloadavg()),
    }
    config[prior] = {
        "policy": PRIORS[prior],
        "synthetic": prior == "expert",
        "ks": list(args.ks),
        "selects": list(args.selects),
        "grid": {
            "betas": list(args.betas),
            "schedules": list(args.schedules),
            "deployable_selects": list(args.deployable_selects),
        },
        "n_tasks": {name: len(ids) for name, ids in split.items()},
        "rollouts_per_critic_task": args.rollouts,
        "critics": critic_info,
        "variants": variants,
        "eps_sweep": sweep,
        "test_tasks_in_prior_training": seen_in_training(prior, split["test"]),
        "local_n_ctx": LOCAL_N_CTX if prior == "local" else None,
    }
    write_result(NAME, keep | metrics, keep_units | units, config)


if __name__ == "__main__":
    try:
        main()
    except DataError as error:  # e.g. a run directory made with other settings
        raise SystemExit(f"{NAME}: error: {error}") from None
