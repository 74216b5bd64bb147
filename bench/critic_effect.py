"""What the critic buys AMC: hashed critic vs zero critic at equal K, same tasks, same seeds.

Same setting as ``bench/amc_quality.py`` (its task table, clumsy noisy-expert
agent, hashed critic trained on noisy-expert trajectories of training tasks;
synthetic agent, labelled so in the JSON). AMC with K = 8 particles and
resampling after every step, ``reward`` selection (with a zero critic the
deployable modes have nothing to rank by, so ``reward`` is the only mode in
which the two critics can be compared), beta = 0.1 (the value amc_quality tuned
on training tasks). Reports success with 95% intervals and the paired
difference on the same 100 test tasks.

With ``--embedding`` the embedding critic (bundled MiniLM + MLP, extra
``agentmc[embed]``) is measured beside the hashed one, on the same data, and
the result goes to ``critic_effect_embedding.json`` (tens of minutes here: it
embeds every training state and every state AMC scores). Not measured: the
LLM-judge critic (the embedded model scores about one history per second here,
hours for the ~16,000 states of one AMC run).

Run: ``python bench/critic_effect.py [--embedding]`` (about 20 seconds without).
"""

from __future__ import annotations

import asyncio
import sys
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
    backends = ["hashed", "embedding"] if "--embedding" in sys.argv[1:] else ["hashed"]
    data = asyncio.run(collect(table, train, policy))
    critics = {
        backend: fit(data, FitConfig(backend=backend, target="return", seed=SEED)).critic
        for backend in backends
    }
    rng = np.random.default_rng(SEED)
    spec = MethodSpec("amc", K, "reward", beta=BETA)
    outcomes = {
        name: success(asyncio.run(evaluate(spec, table, test, policy, c)))
        for name, c in (*critics.items(), ("zero", None))
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
    for backend in backends:
        diff = paired_difference(outcomes[backend], outcomes["zero"], rng)
        metrics |= {
            f"{backend}_minus_zero.diff": diff.value,
            f"{backend}_minus_zero.ci_low": diff.low,
            f"{backend}_minus_zero.ci_high": diff.high,
        }
    metrics["wall_s"] = round(time.perf_counter() - start, 1)
    units = {k: ("s" if k == "wall_s" else "success rate") for k in metrics}
    write_result(
        "critic_effect_embedding" if "embedding" in backends else "critic_effect",
        metrics,
        units,
        config={
            "policy": "noisy-expert (synthetic)",
            "mistake_prob": MISTAKE_PROB,
            "waste_prob": WASTE_PROB,
            "tasks": source,
            "critics": [*backends, "zero"],
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
