"""Critic quality on held-out tasks: AUROC for final success at turns 2, 4 and 8.

Pipeline (the same code as ``agentmc collect`` -> ``agentmc critic train``):
noisy-expert TextCraft episodes (synthetic stand-in policy) on the train
split, 4 per task, train each critic with the split by task, then score the
states of fresh noisy-expert episodes on the **test** split (tasks no critic
has seen). Reported per critic: AUROC of the value for the episode's final
success over all states and at the state after exactly 2, 4 and 8 turns (with
95% intervals from a bootstrap over test tasks, since states of one task are
correlated), Spearman correlation with the Monte-Carlo return, MSE.

Critics: hashed (ridge on returns, logistic on success) and hashed with
``last_turns=0`` (task text and step number only: how much the history adds),
written to ``critic_quality.json``; with ``--embedding``, the embedding critic
(bundled MiniLM + MLP, ``[embed]`` extra; slow on a busy 2-core CPU), written
to ``critic_quality_embedding.json``.

Run: ``.venv/bin/python bench/critic_quality.py [--embedding]``
"""

from __future__ import annotations

import sys
import time

import numpy as np
from common import write_result
from critic_data import noisy_expert_episodes

from agentmc.critics.evaluate import auroc, critic_metrics
from agentmc.critics.fit import FitConfig, fit
from agentmc.critics.targets import make_examples

SEED = 0
TRAIN_SAMPLES, TEST_SAMPLES = 4, 10
TURNS = (2, 4, 8)
N_BOOT = 300


def task_bootstrap(values, success, task_ids, rng, n_boot=N_BOOT) -> list[float] | None:
    """95% percentile interval of AUROC, resampling whole tasks with replacement."""
    tasks = sorted(set(task_ids))
    rows = {t: [] for t in tasks}
    for i, t in enumerate(task_ids):
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


def main() -> None:
    train = noisy_expert_episodes("train", TRAIN_SAMPLES, SEED)
    test = noisy_expert_episodes("test", TEST_SAMPLES, SEED + 1)
    embedding = "--embedding" in sys.argv[1:]
    critics = [
        ("hashed_return", FitConfig(backend="hashed", target="return", seed=SEED)),
        ("hashed_success", FitConfig(backend="hashed", target="success", seed=SEED)),
        ("hashed_return_no_history", FitConfig(backend="hashed", last_turns=0, seed=SEED)),
    ]
    if embedding:
        critics = [("embedding_return", FitConfig(backend="embedding", seed=SEED))]
    metrics, units, intervals = {}, {}, {}
    rng = np.random.default_rng(SEED)
    for label, config in critics:
        start = time.perf_counter()
        result = fit(train, config)
        train_s = time.perf_counter() - start
        examples = make_examples(test, "success" if config.target == "success" else "return")
        found, values = critic_metrics(result.critic, examples)
        metrics[f"{label}_auroc_all"] = round(found["auroc_success"], 4)
        units[f"{label}_auroc_all"] = "AUROC"
        for turn in TURNS:
            key = f"{label}_auroc_turn_{turn}"
            value = found[f"auroc_turn_{turn}"]
            metrics[key] = None if value is None else round(value, 4)
            units[key] = "AUROC"
            mask = examples.steps == turn
            intervals[key] = task_bootstrap(
                values[mask],
                examples.success[mask],
                [examples.task_ids[i] for i in np.flatnonzero(mask)],
                rng,
            )
        metrics[f"{label}_spearman_return"] = round(found["spearman"], 4)
        units[f"{label}_spearman_return"] = "rho"
        metrics[f"{label}_mse"] = round(found["mse"], 5)
        units[f"{label}_mse"] = "squared " + ("success" if config.target == "success" else "return")
        metrics[f"{label}_train_s"] = round(train_s, 2)
        units[f"{label}_train_s"] = "s"
        print(label, {k: v for k, v in metrics.items() if k.startswith(label)})
    test_examples = make_examples(test)
    write_result(
        "critic_quality_embedding" if embedding else "critic_quality",
        metrics,
        units,
        {
            "policy": "noisy-expert (synthetic stand-in), default slip rates",
            "env": "textcraft",
            "train": f"train split, {TRAIN_SAMPLES} episodes per task ({len(train)} episodes)",
            "test": f"test split, {TEST_SAMPLES} episodes per task ({len(test)} episodes), "
            "tasks unseen by every critic",
            "train_success_rate": round(float(np.mean([t.success for t in train])), 4),
            "test_success_rate": round(float(np.mean([t.success for t in test])), 4),
            "test_states_at_turn": {str(t): int(np.sum(test_examples.steps == t)) for t in TURNS},
            "failures_at_turn": {
                str(t): int(np.sum((test_examples.steps == t) & (test_examples.success == 0)))
                for t in TURNS
            },
            "auroc_95ci_task_bootstrap": intervals,
            "bootstrap_resamples": N_BOOT,
            "val_fraction": 0.2,
            "last_turns": 10,
            "seed": SEED,
        },
    )


if __name__ == "__main__":
    main()
