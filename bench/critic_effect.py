"""What the critic buys AMC: hashed critic vs zero critic at equal K, same tasks, same seeds.

Same setting as ``bench/amc_quality.py`` (its task table, clumsy noisy-expert
agent, hashed critic trained on noisy-expert trajectories of training tasks;
synthetic agent, labelled so in the JSON). AMC with K = 8 particles and
resampling after every step, ``reward`` selection (with a zero critic the
deployable modes have nothing to rank by, so ``reward`` is the only mode in
which the two critics can be compared), beta = 0.1 (the value amc_quality tuned
on training tasks). Reports success with 95% intervals and the paired
difference on the same 100 test tasks.

Not measured: the embedding critic (scoring takes minutes per 10,000 states on
this CPU, see critic_speed_embedding.json) and the LLM-judge critic (needs an
LLM; the embedded one scores about one history per second here).

Run: ``python bench/critic_effect.py`` (about 20 seconds).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from amc_quality import (
    MISTAKE_PROB,
    N_CRITIC_TASKS,
    N_TEST,
    SEED,
    WASTE_PROB,
    collect,
    evaluate,
    success,
    task_table,
)
from common import write_result

from agentmc.critics.fit import FitConfig, fit
from agentmc.envs import task_ids
from agentmc.eval.metrics import bootstrap_mean, paired_difference
from agentmc.methods import MethodSpec
from agentmc.policies.expert import NoisyExpertPolicy

K = 8
BETA = 0.1


def main() -> None:
    start = time.perf_counter()
    table, source = task_table()
    kwargs = {} if table is None else {"tasks": table}
    train = task_ids("textcraft", "train", **kwargs)[:N_CRITIC_TASKS]
    test = task_ids("textcraft", "test", **kwargs)[:N_TEST]
    policy = NoisyExpertPolicy(mistake_prob=MISTAKE_PROB, waste_prob=WASTE_PROB)
    critic = fit(
        asyncio.run(collect(table, train, policy)),
        FitConfig(backend="hashed", target="return", seed=SEED),
    ).critic
    rng = np.random.default_rng(SEED)
    spec = MethodSpec("amc", K, "reward", beta=BETA)
    outcomes = {
        name: success(asyncio.run(evaluate(spec, table, test, policy, c)))
        for name, c in (("hashed", critic), ("zero", None))
    }
    bon = success(asyncio.run(evaluate(MethodSpec("bon", K), table, test, policy, None)))
    metrics, units = {}, {}
    for name, values in (*outcomes.items(), ("bon", bon)):
        estimate = bootstrap_mean(values, rng)
        label = f"amc_{name}_critic" if name != "bon" else "bon"
        metrics |= {
            f"{label}.success": estimate.value,
            f"{label}.ci_low": estimate.low,
            f"{label}.ci_high": estimate.high,
        }
    diff = paired_difference(outcomes["hashed"], outcomes["zero"], rng)
    metrics |= {
        "hashed_minus_zero.diff": diff.value,
        "hashed_minus_zero.ci_low": diff.low,
        "hashed_minus_zero.ci_high": diff.high,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    units = {k: ("s" if k == "wall_s" else "success rate") for k in metrics}
    write_result(
        "critic_effect",
        metrics,
        units,
        config={
            "policy": "noisy-expert (synthetic)",
            "mistake_prob": MISTAKE_PROB,
            "waste_prob": WASTE_PROB,
            "tasks": source,
            "n_test": len(test),
            "n_critic_tasks": len(train),
            "particles": K,
            "beta": BETA,
            "schedule": "every",
            "select": "reward",
            "seed": SEED,
        },
    )


if __name__ == "__main__":
    main()
