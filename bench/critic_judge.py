"""The embedded model as an LLM judge next to a trained critic, at equal total cost.

Two measurements on the AMC paper's TextCraft test tasks (step cap 12, prior
``noisy-expert:eps=0.95``, a synthetic stand-in for an LLM agent: the testbed
of ``bench/critic_refresh.py``):

1. **Judge quality and price.** The embedded SmolLM2-135M (``local:generate``)
   as a zero-shot judge (:class:`agentmc.critics.judge.JudgeCritic`, the
   paper's prompt) rates ``N_STATES`` states of fresh prior episodes
   (running states and finished attempts); reported: AUROC for success,
   the spread of its ratings, seconds and tokens per request. The trained
   hashed critic (the last version of ``critic_refresh``) scores the same
   states, in CPU seconds.
2. **Equal total cost.** ``agentmc eval`` runs zero-shot SMC with the judge
   (``smc:K:critic{critic=judge:local:generate}``) and AMC with the trained
   critic on the same ``N_TASKS`` tasks and seeds, under one per-task cap of
   ``K x 12`` calls that counts the judge's requests too (checkpoints at
   steps 4 and 8 to keep the judge's share small). Success, agent calls,
   judge calls and tokens, and critic CPU seconds per task.

The embedded model is slow on a shared CPU, so both are small: they show
what a judge costs and whether this one can rank, not a precise success gap.
Measured (2026-12-05): SmolLM2-135M answers "100%" for every state (one
distinct rating, AUROC 0.5), about 720 prompt+completion tokens and 5-36 s
per request on the shared CPU; the trained critic reaches AUROC 0.91 on the
same states at ~2 ms CPU each. At equal total calls the judge spends 12 of
about 50 calls per task on ratings that carry no information.

Run after ``bench/critic_refresh.py``: ``.venv/bin/python bench/critic_judge.py``
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
from common import write_result
from critic_refresh import MAX_STEPS, POLICY, RUNS, SEED, table, tasks_flags

from agentmc.cli.main import main as agentmc
from agentmc.cli.rollout import task_index
from agentmc.critics.artifact import load
from agentmc.critics.evaluate import auroc
from agentmc.critics.judge import JudgeCritic
from agentmc.critics.targets import make_examples
from agentmc.data.store import RunStore
from agentmc.envs import make, task_ids
from agentmc.policies import make_policy
from agentmc.rollout import arollout
from agentmc.seeding import task_rng
from agentmc.types import Usage

NAME = "critic_judge"
JUDGE = "local:generate"
N_STATES = 12
N_TASKS = 8
K = 4


def latest_critic():
    versions = sorted(RUNS.glob("critic-v*"), key=lambda p: int(p.name.split("v")[-1]))
    if not versions:
        raise SystemExit("run bench/critic_refresh.py first (it trains the critic compared here)")
    return versions[-1]


def states():
    policy, tasks = make_policy(POLICY), table()

    async def play():
        out = []
        for task in task_ids("textcraft", "test", tasks=tasks)[: N_STATES // 2]:
            env = make("textcraft", task_id=task, tasks=tasks, max_steps=MAX_STEPS)
            out.append(await arollout(env, policy, task_rng(SEED + 7, task_index(task), 0)))
        return out

    examples = make_examples(asyncio.run(play()), "success", terminal=True)
    rng = np.random.default_rng(SEED)
    finals = np.flatnonzero(examples.is_terminal)
    running = rng.choice(np.flatnonzero(~examples.is_terminal), size=N_STATES - finals.size)
    mask = np.zeros(len(examples), dtype=bool)
    mask[np.concatenate([finals, running])] = True
    return examples.subset(mask)


def main() -> None:
    start = time.perf_counter()
    critic_path = latest_critic()
    sample = states()
    judge = JudgeCritic(make_policy(JUDGE), policy_spec=JUDGE)
    t0 = time.perf_counter()
    # One request at a time: the embedded model batches concurrent prompts into one
    # context, and a dozen judge prompts do not fit in it.
    scored = [asyncio.run(judge.avalues_with_usage([h])) for h in sample.histories]
    ratings = np.concatenate([values for values, _ in scored])
    usage = sum((u for _, u in scored), Usage())
    judge_s = time.perf_counter() - t0
    trained = load(critic_path, env_id="textcraft")
    t0 = time.process_time()
    values = trained.values(sample.histories)
    trained_cpu_s = time.process_time() - t0
    metrics: dict[str, float | int | None] = {
        "judge.auroc": auroc(ratings, sample.success),
        "judge.distinct_ratings": len(set(np.round(ratings, 3).tolist())),
        "judge.mean_rating": float(np.mean(ratings)),
        "judge.s_per_request": judge_s / max(usage.calls, 1),
        "judge.tokens_per_request": usage.tokens / max(usage.calls, 1),
        "judge.unparsed": judge.unparsed,
        "trained.auroc": auroc(values, sample.success),
        "trained.cpu_s_per_state": trained_cpu_s / len(sample),
    }
    units = {
        "judge.auroc": "AUROC",
        "judge.distinct_ratings": "ratings",
        "judge.mean_rating": "probability",
        "judge.s_per_request": "s",
        "judge.tokens_per_request": "tokens",
        "judge.unparsed": "replies",
        "trained.auroc": "AUROC",
        "trained.cpu_s_per_state": "CPU s",
    }
    print(metrics, flush=True)

    out = RUNS / "judge-vs-trained"
    # a seeded draw of test tasks (the ids are sorted by recipe depth)
    ids = task_ids("textcraft", "test", tasks=table())
    chosen = [ids[i] for i in sorted(np.random.default_rng(SEED).permutation(len(ids))[:N_TASKS])]
    methods = [f"smc:{K}:critic{{critic=judge:{JUDGE}}}", f"amc:{K}:critic"]
    code = agentmc(
        [
            "eval",
            "--out",
            str(out),
            "--methods",
            *methods,
            "--critic",
            str(critic_path),
            "--schedule",
            "steps:4,8",
            "--budget",
            f"calls:{K * MAX_STEPS}",
            *tasks_flags("test"),
            "--task-ids",
            *chosen,
            "--policy",
            POLICY,
            "--guard-tasks",
            "0",
            "--no-report",
            "--no-progress",
            "--workers",
            "1",
            "--seed",
            str(SEED),
        ]
    )
    if code != 0:
        raise SystemExit(f"agentmc eval failed with {code}")
    rows = [r["data"] for r in RunStore.open(out).records("result")]
    for prefix, rows_of in (
        ("smc_judge", [r for r in rows if r["method"].startswith("smc")]),
        ("amc_trained", [r for r in rows if r["method"].startswith("amc")]),
    ):
        for key in ("success", "calls", "judge_calls", "judge_tokens", "total_calls"):
            metrics[f"{prefix}.{key}"] = float(np.mean([float(r[key]) for r in rows_of]))
            units[f"{prefix}.{key}"] = "share of tasks" if key == "success" else f"{key} per task"
        metrics[f"{prefix}.critic_cpu_s"] = float(np.mean([r["critic_cpu_s"] for r in rows_of]))
        units[f"{prefix}.critic_cpu_s"] = "CPU s per task"
        metrics[f"{prefix}.wall_s"] = float(np.mean([r["wall_s"] for r in rows_of]))
        units[f"{prefix}.wall_s"] = "s per task"
    metrics = {k: (None if v is None else round(float(v), 4)) for k, v in metrics.items()}
    write_result(
        NAME,
        metrics,
        units,
        {
            "judge": f"{JUDGE}: the embedded SmolLM2-135M-Instruct, the paper's judge prompt "
            "(agentmc.critics.judge.PROMPT), temperature 0",
            "trained_critic": str(critic_path.relative_to(RUNS.parent.parent)),
            "prior": f"{POLICY} (synthetic stand-in), step cap {MAX_STEPS}",
            "states": f"{len(sample)} states of fresh prior episodes on the paper's test "
            f"tasks ({int(sample.is_terminal.sum())} finished attempts)",
            "equal_cost": f"{N_TASKS} paper test tasks (seeded draw: {', '.join(chosen)}), "
            f"K={K}, checkpoints steps 4,8, per-task "
            f"cap {K * MAX_STEPS} calls counting judge requests; same seeds",
            "wall_s": round(time.perf_counter() - start, 1),
            "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "seed": SEED,
        },
    )


if __name__ == "__main__":
    main()
