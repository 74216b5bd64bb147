"""Critic train time on 10,000 states and scoring time for 10,000 states, per CPU backend.

Goals (issue 6): the hashed backend trains in < 30 s and scores 10,000 states
in < 2 s on this CPU.

Data: noisy-expert TextCraft episodes (synthetic stand-in policy). Training
states come from the train split (whole tasks held out for validation, as
``agentmc critic train`` does), cut to exactly 10,000; the scored states come
from the test split, so every text is new to the critic. Scoring is timed
cold, on a freshly loaded artifact (the embedding backend's text cache is
empty, as in a new AMC run), and warm (a second pass over the same states);
the latency of one AMC checkpoint call (16 particles, fresh states) is the
median over 50 batches.

Backends: ``hashed`` (ridge on returns and logistic on success; writes
``critic_speed.json``) and, with ``--embedding``, the ``embedding`` backend
(bundled all-MiniLM-L6-v2 + MLP, needs the ``[embed]`` extra; writes
``critic_speed_embedding.json``; tens of minutes on a busy 2-core box, so it is
not part of the default run). The LoRA backend is a GPU backend and is not
timed here.

Run: ``.venv/bin/python bench/critic_speed.py [--embedding]``
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np
from common import write_result
from critic_data import noisy_expert_episodes

from agentmc.critics.artifact import backend_class, load, save
from agentmc.critics.fit import default_backend_config, split_by_task
from agentmc.critics.targets import make_examples

N_STATES = 10_000
BATCH, N_BATCHES = 16, 50
SEED = 0


def first_states(examples, n):
    mask = np.zeros(len(examples), dtype=bool)
    mask[:n] = True
    return examples.subset(mask)


def time_backend(backend: str, target: str, train, val, score) -> dict[str, float]:
    cls = backend_class(backend)
    config = default_backend_config(backend)
    start = time.perf_counter()
    critic = cls.train(
        train, val, config, target=target, last_turns=10, rng=np.random.default_rng(SEED)
    )
    train_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        save(critic, f"{tmp}/critic")
        fresh = load(f"{tmp}/critic")
        start = time.perf_counter()
        fresh.values(score.histories)
        cold_s = time.perf_counter() - start
        start = time.perf_counter()
        fresh.values(score.histories)
        warm_s = time.perf_counter() - start
        fresh = load(f"{tmp}/critic")
        latencies = []
        for b in range(N_BATCHES):
            batch = score.histories[b * BATCH : (b + 1) * BATCH]
            start = time.perf_counter()
            fresh.values(batch)
            latencies.append(time.perf_counter() - start)
    return {
        "train_s": train_s,
        "score_cold_s": cold_s,
        "score_warm_s": warm_s,
        "checkpoint_call_ms": 1000 * float(np.median(latencies)),
    }


def main() -> None:
    train_all = make_examples(noisy_expert_episodes("train", 6, SEED), "return")
    val_mask = split_by_task(train_all.task_ids, 0.2, np.random.default_rng(SEED))
    train = first_states(train_all.subset(~val_mask), N_STATES)
    val = train_all.subset(val_mask)
    test = make_examples(noisy_expert_episodes("test", 20, SEED + 1), "return")
    # Shuffle scored states so a checkpoint batch mixes tasks and steps like AMC particles.
    order = np.random.default_rng(SEED).permutation(len(test))[:N_STATES]
    score = test.subset(np.isin(np.arange(len(test)), order))
    assert len(train) == N_STATES and len(score) == N_STATES, (len(train), len(score))

    def success_view(examples):
        return type(examples)(**{**examples.__dict__, "targets": examples.success.copy()})

    embedding = "--embedding" in sys.argv[1:]
    runs = [("embedding", "return")] if embedding else [("hashed", "return"), ("hashed", "success")]
    metrics, units = {}, {}
    for backend, target in runs:
        tr, va = (train, val) if target == "return" else (success_view(train), success_view(val))
        result = time_backend(backend, target, tr, va, score)
        for key, value in result.items():
            name = f"{backend}_{target}_{key}"
            metrics[name] = round(value, 4)
            units[name] = "ms" if key.endswith("_ms") else "s"
    if not embedding:
        metrics["hashed_train_goal_met"] = bool(metrics["hashed_return_train_s"] < 30)
        metrics["hashed_score_goal_met"] = bool(metrics["hashed_return_score_cold_s"] < 2)
        units["hashed_train_goal_met"] = units["hashed_score_goal_met"] = "bool"
    write_result(
        "critic_speed_embedding" if embedding else "critic_speed",
        metrics,
        units,
        {
            "n_train_states": N_STATES,
            "n_val_states": len(val),
            "n_scored_states": N_STATES,
            "train_data": "noisy-expert (synthetic) on the TextCraft train split, 6 per task",
            "scored_data": "noisy-expert (synthetic) on the TextCraft test split, shuffled",
            "last_turns": 10,
            "checkpoint_batch": BATCH,
            "backends": [f"{b}/{t}" for b, t in runs],
            "lora": "GPU backend, not timed on this CPU",
            "goals": {"hashed_train_s": 30, "hashed_score_cold_s": 2},
        },
    )


if __name__ == "__main__":
    main()
