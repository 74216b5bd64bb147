"""Critic quality on held-out tasks: within-task ranking first, pooled metrics beside.

Pipeline (the same code as ``agentmc collect`` -> ``agentmc critic train``):
episodes of the synthetic noisy expert ``noisy-expert:eps=0.85`` (a stand-in
for an LLM agent: a uniformly random valid action with probability 0.85 per
step, the prior of ``bench/amc_deployable.py``) on the built-in TextCraft
train split, train each critic with the split by task, then score the states
of fresh episodes on the **test** split (tasks no critic has seen).

Reported per critic:

- ``within_task_auroc`` / ``_pairwise_accuracy`` / ``_spearman``: among
  histories of one task at one step (identical histories left out), what
  resampling compares;
- ``final_within_task_auroc``: among finished attempts of one task, what
  critic selection (deployable Best-of-N / AMC) compares;
- pooled AUROC for final success over all running states and at turns 2, 4
  and 8 (95% intervals from a bootstrap over test tasks), Spearman, MSE.

Critics: hashed ridge on returns and logistic on success, each plain and with
the within-task ranking rows (``rank_weight``), all trained on final states
too; ``hashed_success_ranked_plan`` adds the TextCraft progress features
(``plan_features``: the remaining plan's length and the earliest finishing
step, read from the conversation; the learned critic of
``bench/amc_deployable.py``); ``textcraft_plan`` is the hand-written
:class:`~agentmc.critics.textcraft.TextCraftPlanCritic` (no training).

Yardsticks, not critics:

- ``plan_length_reference``: minus the length of the expert's own remaining
  plan from the state (read with the expert's internals, so only possible
  for this synthetic prior);
- ``mc_value_reference``: the prior's own success rate over ``MC_ROLLOUTS``
  fresh episodes from each state (the environment replayed to the state:
  uses the simulator, so no critic can do this), on the running states that
  enter a within-task pair. It estimates the true value of each state, so its
  within-task AUROC is about the best any critic can reach on this metric
  (a little below it, the estimates being noisy: with 16 episodes per state
  it scored 0.66, with 64 0.68, the plan length 0.69): how much of the
  outcome the history decides when the future is this noisy.

Run: ``.venv/bin/python bench/critic_quality.py`` (about 20 minutes on 2 busy cores,
most of it the Monte-Carlo yardstick).
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
from common import write_result

from agentmc.cli.rollout import task_index
from agentmc.critics.evaluate import auroc, critic_metrics, history_keys, within_task_metrics
from agentmc.critics.fit import FitConfig, fit
from agentmc.critics.hashed import HashedConfig
from agentmc.critics.targets import make_examples
from agentmc.critics.textcraft import TextCraftPlanCritic
from agentmc.data.trajectory import Trajectory
from agentmc.envs import make, task_ids
from agentmc.envs.core import valid_actions
from agentmc.policies import make_policy
from agentmc.rollout import act, arollout, is_success
from agentmc.seeding import task_rng
from agentmc.types import Message

SEED = 0
POLICY = "noisy-expert:eps=0.85"
TRAIN_SAMPLES, TEST_SAMPLES = 6, 8
#: Prior episodes per state of the Monte-Carlo value yardstick.
MC_ROLLOUTS = 64
TURNS = (2, 4, 8)
N_BOOT = 300
RANK_WEIGHT = 1.0
WITHIN = ("within_task_auroc", "within_task_pairwise_accuracy", "within_task_spearman")


def episodes(split: str, samples: int, seed: int) -> list[Trajectory]:
    """``samples`` episodes of every task of ``split``, seeded as ``agentmc collect`` seeds."""
    policy = make_policy(POLICY)

    async def play() -> list[Trajectory]:
        out = []
        for task in task_ids("textcraft", split):
            for sample in range(samples):
                env = make("textcraft", task_id=task)
                rng = task_rng(seed, task_index(task), sample)
                out.append(await arollout(env, policy, rng, meta={"split": split}))
        return out

    return asyncio.run(play())


def task_bootstrap(values, success, task_ids_, rng, n_boot=N_BOOT) -> list[float] | None:
    """95% percentile interval of AUROC, resampling whole tasks with replacement."""
    tasks = sorted(set(task_ids_))
    rows: dict[str, list[int]] = {t: [] for t in tasks}
    for i, t in enumerate(task_ids_):
        rows[t].append(i)
    index = [np.array(rows[t]) for t in tasks]
    draws = []
    for _ in range(n_boot):
        pick = np.concatenate([index[i] for i in rng.integers(len(tasks), size=len(tasks))])
        score = auroc(values[pick], success[pick])
        if score is not None:
            draws.append(score)
    if len(draws) < n_boot // 2:
        return None
    return [round(float(np.percentile(draws, 2.5)), 3), round(float(np.percentile(draws, 97.5)), 3)]


def plan_length_scores(examples) -> np.ndarray:
    """Minus the noisy expert's remaining plan length at each state (synthetic yardstick)."""
    from agentmc.envs.textcraft.expert import plan_from_history

    scores = []
    for history in examples.histories:
        _, _, plan = plan_from_history(history.task, history.messages)
        scores.append(-float(len(plan)) if plan else -99.0)
    return np.asarray(scores)


def mc_value_scores(examples, trajectories, rollouts: int, seed: int) -> np.ndarray:
    """The prior's success rate over ``rollouts`` episodes from each state (synthetic yardstick).

    Only states of a (task, step) group with both outcomes are scored (the
    others enter no within-task pair); the rest are NaN. The environment is
    reset with the trajectory's seed and replayed to the state, and the replay
    is checked against the recorded observations. Identical histories are scored once.
    """
    policy = make_policy(POLICY)
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, int], set[float]] = {}
    for task, step, success in zip(
        examples.task_ids, examples.steps, examples.success, strict=True
    ):
        groups.setdefault((task, int(step)), set()).add(float(success))

    async def value(trajectory: Trajectory, t: int) -> float:
        wins = 0
        for _ in range(rollouts):
            env = make("textcraft", task_id=trajectory.task_id)
            task, _ = env.reset(seed=trajectory.seed)
            messages = (Message("user", task),)
            for turn in trajectory.turns[:t]:
                result = env.step(turn.action)
                if result.observation != turn.observation:
                    raise RuntimeError(f"task {trajectory.task_id}: the replay diverged")
                messages += (Message("assistant", turn.reply), Message("user", turn.observation))
            while True:
                decision = await act(policy, messages, rng, candidates=valid_actions(env))
                result = env.step(decision.action)
                messages += (
                    Message("assistant", decision.reply),
                    Message("user", result.observation),
                )
                if result.terminated or result.truncated:
                    wins += is_success(result)
                    break
        return wins / rollouts

    async def score_all() -> np.ndarray:
        out = np.full(len(examples), np.nan)
        seen: dict[object, float] = {}
        for i, history in enumerate(examples.histories):
            step = int(examples.steps[i])
            if len(groups[(examples.task_ids[i], step)]) < 2:
                continue
            if history not in seen:
                seen[history] = await value(trajectories[int(examples.episode[i])], step)
            out[i] = seen[history]
        return out

    return asyncio.run(score_all())


def rounded(value):
    return None if value is None else round(float(value), 4)


def main() -> None:
    start = time.perf_counter()
    train = episodes("train", TRAIN_SAMPLES, SEED)
    test = episodes("test", TEST_SAMPLES, SEED + 1)
    generate_s = time.perf_counter() - start
    critics = [
        ("hashed_return", FitConfig(target="return", seed=SEED), HashedConfig()),
        (
            "hashed_return_ranked",
            FitConfig(target="return", seed=SEED),
            HashedConfig(rank_weight=RANK_WEIGHT),
        ),
        ("hashed_success", FitConfig(target="success", seed=SEED), HashedConfig()),
        (
            "hashed_success_ranked",
            FitConfig(target="success", seed=SEED),
            HashedConfig(rank_weight=RANK_WEIGHT),
        ),
        (
            "hashed_success_ranked_plan",
            FitConfig(target="success", seed=SEED),
            HashedConfig(rank_weight=RANK_WEIGHT, plan_features=True),
        ),
    ]
    metrics: dict[str, float | int | None] = {}
    units: dict[str, str] = {}
    intervals: dict[str, list[float] | None] = {}
    rng = np.random.default_rng(SEED)

    def record(label: str, found: dict, values: np.ndarray, examples) -> None:
        for key in (*WITHIN, "final_within_task_auroc", "final_auroc"):
            if key in found:
                metrics[f"{label}_{key}"] = rounded(found[key])
                units[f"{label}_{key}"] = "rho" if key.endswith("spearman") else "AUROC"
        metrics[f"{label}_within_task_pairs"] = found["within_task_pairs"]
        units[f"{label}_within_task_pairs"] = "pairs"
        metrics[f"{label}_auroc_all"] = rounded(found["auroc_success"])
        units[f"{label}_auroc_all"] = "AUROC"
        running = ~examples.is_terminal
        for turn in TURNS:
            key = f"{label}_auroc_turn_{turn}"
            metrics[key] = rounded(found.get(f"auroc_turn_{turn}"))
            units[key] = "AUROC"
            mask = running & (examples.steps == turn)
            intervals[key] = task_bootstrap(
                values[mask],
                examples.success[mask],
                [examples.task_ids[i] for i in np.flatnonzero(mask)],
                rng,
            )

    for label, config, backend in critics:
        t0 = time.perf_counter()
        result = fit(train, config, backend)
        train_s = time.perf_counter() - t0
        examples = make_examples(
            test, "success" if config.target == "success" else "return", terminal=True
        )
        found, values = critic_metrics(result.critic, examples)
        record(label, found, values, examples)
        metrics[f"{label}_spearman_return"] = rounded(found["spearman"])
        units[f"{label}_spearman_return"] = "rho"
        metrics[f"{label}_mse"] = rounded(found["mse"])
        units[f"{label}_mse"] = "squared " + config.target
        metrics[f"{label}_train_s"] = round(train_s, 2)
        units[f"{label}_train_s"] = "s"
        print(label, {k: v for k, v in metrics.items() if k.startswith(label)}, flush=True)

    examples = make_examples(test, "success", terminal=True)
    found, values = critic_metrics(TextCraftPlanCritic(), examples)
    record("textcraft_plan", found, values, examples)
    print("textcraft_plan", {k: v for k, v in metrics.items() if k.startswith("textcraft")})

    running = make_examples(test)
    t0 = time.perf_counter()
    mc = mc_value_scores(running, test, MC_ROLLOUTS, SEED + 2)
    mc_s = time.perf_counter() - t0
    scored = np.flatnonzero(~np.isnan(mc))
    keys = history_keys(running.histories)
    mc_reference = within_task_metrics(
        mc[scored],
        running.targets[scored],
        running.success[scored],
        [running.task_ids[i] for i in scored],
        running.steps[scored],
        [keys[i] for i in scored],
    )
    for key in (*WITHIN, "within_task_pairs"):
        name = f"mc_value_reference_{key}"
        metrics[name] = rounded(mc_reference[key]) if key in WITHIN else mc_reference[key]
        units[name] = "pairs" if key.endswith("pairs") else "rho" if "spearman" in key else "AUROC"
    metrics["mc_value_reference_states"] = int(scored.size)
    units["mc_value_reference_states"] = "running states scored (those in a within-task group)"
    print("mc_value_reference", mc_reference, f"{mc_s:.0f} s", flush=True)
    scores = plan_length_scores(running)
    reference = within_task_metrics(
        scores,
        running.targets,
        running.success,
        running.task_ids,
        running.steps,
        history_keys(running.histories),
    )
    for key in WITHIN:
        name = f"plan_length_reference_{key}"
        metrics[name] = rounded(reference[key])
        units[name] = "rho" if key.endswith("spearman") else "AUROC"
    best = max((metrics[f"{label}_within_task_auroc"] or 0.0, label) for label, _, _ in critics)
    load = os.getloadavg()
    write_result(
        "critic_quality",
        metrics,
        units,
        {
            "policy": f"{POLICY} (synthetic stand-in for an LLM agent)",
            "env": "textcraft (built-in splits, step cap 20)",
            "train": f"train split, {TRAIN_SAMPLES} episodes per task ({len(train)} episodes)",
            "test": f"test split, {TEST_SAMPLES} episodes per task ({len(test)} episodes), "
            "tasks unseen by every critic",
            "train_success_rate": round(float(np.mean([t.success for t in train])), 4),
            "test_success_rate": round(float(np.mean([t.success for t in test])), 4),
            "within_task": "pairs of different histories of one test task at one step "
            "(running states); final_*: finished attempts of one task",
            "final_states_in_training": True,
            "rank_weight": RANK_WEIGHT,
            "best_within_task_auroc": {"critic": best[1], "value": best[0]},
            "goal": "within-task AUROC >= 0.8 (issue 14): met on finished attempts "
            "(final_within_task_auroc), not on running states, where even the true value "
            f"of each state, estimated from {MC_ROLLOUTS} fresh prior episodes "
            "(mc_value_reference), ranks at "
            f"{metrics['mc_value_reference_within_task_auroc']}: with 85% random steps the "
            "outcome is mostly decided by the future, not the history",
            "mc_rollouts": MC_ROLLOUTS,
            "mc_value_reference_s": round(mc_s, 1),
            "auroc_95ci_task_bootstrap": intervals,
            "bootstrap_resamples": N_BOOT,
            "generate_s": round(generate_s, 1),
            "load_avg_1_5_15": [round(x, 2) for x in load],
            "seed": SEED,
        },
    )


if __name__ == "__main__":
    main()
