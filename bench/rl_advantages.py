"""Graph building + advantages for 128 trajectories x 50 steps (goal: < 50 ms).

Synthetic rollouts (labelled as such): random walks over a small state space so
that rollouts of a group overlap and loop, sparse terminal rewards. Two batch
shapes: 16 groups of 8 (a usual GRPO batch) and 1 group of 128 (the largest
graph). Times are medians over repeats of the full estimator call
(``agentmc.rl.estimate``): graph, node values, edge TD errors, standardisation
and the trajectory-level GRPO part. Text canonicalisation (``state_keys`` on
TextCraft-like observation text) is timed separately, since a rollout worker
can compute keys as it goes.

Run: ``.venv/bin/python bench/rl_advantages.py``
"""

from __future__ import annotations

import time

import numpy as np
from common import write_result

from agentmc.rl import Episode, estimate, state_keys

N_TRAJECTORIES, N_STEPS, N_STATES, REPEATS = 128, 50, 200, 15


def synthetic_batch(rng: np.random.Generator, n_groups: int) -> list[list[Episode]]:
    per_group = N_TRAJECTORIES // n_groups
    groups = []
    for g in range(n_groups):
        group = []
        for _ in range(per_group):
            # random walk on a ring with jumps: overlapping paths and cycles
            moves = rng.choice([-1, 1, 2], size=N_STEPS)
            states = np.concatenate([[0], np.cumsum(moves)]) % N_STATES
            actions = rng.integers(0, 10, N_STEPS)
            rewards = np.zeros(N_STEPS)
            rewards[-1] = float(rng.random() < 0.3)
            group.append(
                Episode(f"task-{g}", tuple(states.tolist()), tuple(actions.tolist()), rewards)
            )
        groups.append(group)
    return groups


def median_ms(function, repeats: int = REPEATS) -> float:
    function()  # warm caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main() -> None:
    rng = np.random.default_rng(0)
    metrics, units = {}, {}
    for n_groups in (16, 1):
        batch = synthetic_batch(rng, n_groups)
        for name in ("grpo", "rloo", "g2po", "gigpo"):
            key = f"{name}_ms_{n_groups}x{N_TRAJECTORIES // n_groups}"
            metrics[key] = round(median_ms(lambda b=batch, n=name: estimate(b, n)), 3)
            units[key] = "ms"
        [result] = estimate(batch[:1], "g2po")
        metrics[f"g2po_nodes_{n_groups}x{N_TRAJECTORIES // n_groups}"] = result.stats["n_nodes"]
        units[f"g2po_nodes_{n_groups}x{N_TRAJECTORIES // n_groups}"] = "nodes in the first graph"
    observations = [
        (f"get {i % 7} oak planks", f"Got {i % 7} oak planks\n(Step {i}/50)")
        for i in range(N_STEPS)
    ]
    task = "Crafting commands:\ncraft 1 stick using 2 oak planks\n\nGoal: craft stick."
    metrics["text_keys_ms_128x50"] = round(
        median_ms(lambda: [state_keys("textcraft", task, observations) for _ in range(128)], 5), 3
    )
    units["text_keys_ms_128x50"] = "ms"
    metrics["g2po_over_goal"] = round(metrics["g2po_ms_16x8"] / 50.0, 3)
    units["g2po_over_goal"] = "fraction of the 50 ms goal (16 groups of 8)"
    metrics["g2po_over_grpo"] = round(metrics["g2po_ms_16x8"] / metrics["grpo_ms_16x8"], 2)
    units["g2po_over_grpo"] = "ratio, same run"
    write_result(
        "rl_advantages",
        metrics,
        units,
        {
            "trajectories": N_TRAJECTORIES,
            "steps": N_STEPS,
            "states": N_STATES,
            "repeats": REPEATS,
            "data": "synthetic random walks (sparse terminal reward 0/1, p=0.3)",
        },
    )


if __name__ == "__main__":
    main()
