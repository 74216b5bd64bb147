"""Graph building + advantages for 128 trajectories x 50 steps (goal: < 50 ms).

Synthetic rollouts (labelled as such): random walks over a small state space so
that rollouts of a group overlap and loop, sparse terminal rewards. Two batch
shapes: 16 groups of 8 (a usual GRPO batch) and 1 group of 128 (the largest
graph). Times are medians over repeats of the full estimator call
(``agentmc.rl.estimate``): graph, node values, edge TD errors, standardisation
and the trajectory-level GRPO part. Text canonicalisation (``state_keys`` on
TextCraft-like observation text) is timed separately, since a rollout worker
can compute keys as it goes.

``g2po_text_end_to_end_ms`` (goal: < 10 ms; the reference implementation takes
125 ms) is G2PO as the reference implementation gets it:
128 recorded TextCraft trajectories of up to 50 steps (16 tasks x 8), text
observations, to per-token advantages: ``trajectory_advantages`` (observation
text -> state ids -> graph -> per-step advantages in row order) then
``token_advantages`` over a ``(rows, 48)`` float32 response mask (48: the local
policy's ``max_tokens``). Its parts: ``keys`` (``column_state_ids`` alone, on
the same text), ``broadcast``, and ``graph`` (the rest, derived). For
comparison on the same run: ``episodes_path`` (``group_trajectories(ids=True)``
+ ``estimate``) and ``keyed_path`` (``group_trajectories()`` with a key per
step, the route before). Wall-clock medians over 25 runs, and the same parts
in CPU time of this thread (``*_cpu_ms``: what other processes on a shared
machine do not inflate by preemption). The
trajectories are real TextCraft observations played by a scripted stand-in
policy (labelled as such in the config): uniformly random valid actions with
5% gold-plan moves, on train tasks of recipe depth >= 3, so that most rollouts
run the full 50 steps.

Run: ``.venv/bin/python bench/rl_advantages.py``
"""

from __future__ import annotations

import os
import time

import numpy as np
from common import write_result

from agentmc.data.trajectory import Trajectory, Turn
from agentmc.envs import make, task_ids
from agentmc.rl import Episode, estimate, group_trajectories, state_keys, trajectory_advantages
from agentmc.rl.rows import token_advantages
from agentmc.rl.states import column_state_ids

N_TRAJECTORIES, N_STEPS, N_STATES, REPEATS = 128, 50, 200, 15
TEXT_GROUPS, MAX_TOKENS, GOLD_MOVES, MIN_DEPTH = 16, 48, 0.05, 3


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


def textcraft_rollouts(rng: np.random.Generator) -> list[Trajectory]:
    """Real TextCraft transcripts from a scripted stand-in policy (see the module doc)."""
    pool = []
    for task_id in task_ids("textcraft", "train"):
        env = make("textcraft", task_id=task_id, max_steps=N_STEPS)
        if env.reset()[1]["depth"] >= MIN_DEPTH:
            pool.append(task_id)
    out = []
    per_group = N_TRAJECTORIES // TEXT_GROUPS
    for index in rng.choice(len(pool), TEXT_GROUPS, replace=False):
        env = make("textcraft", task_id=pool[index], max_steps=N_STEPS)
        candidates = env.valid_actions()
        for _ in range(per_group):
            task, _ = env.reset()
            turns, done = [], False
            while not done:
                plan = env.gold_plan() if rng.random() < GOLD_MOVES else ()
                action = plan[0] if plan else candidates[rng.integers(len(candidates))]
                result = env.step(action)
                done = result.terminated or result.truncated
                turns.append(
                    Turn(
                        action,
                        action,
                        result.observation,
                        result.reward,
                        result.terminated,
                        result.truncated,
                    )
                )
            out.append(
                Trajectory(
                    "textcraft",
                    env.task_id,
                    task,
                    tuple(turns),
                    "scripted-random",
                    synthetic=True,
                    success=bool(turns[-1].terminated),
                )
            )
    return out


def response_mask(trajectories: list[Trajectory]) -> np.ndarray:
    """``(rows, MAX_TOKENS)`` float32: about one token per 4 characters of the action."""
    lengths = [min(MAX_TOKENS, 1 + len(t.action) // 4) for r in trajectories for t in r.turns]
    return (np.arange(MAX_TOKENS)[None, :] < np.array(lengths)[:, None]).astype(np.float32)


def text_end_to_end(trajectories: list[Trajectory], mask: np.ndarray) -> dict[str, float]:
    """Seconds (wall and CPU) for text trajectories -> per-token G2PO advantages."""
    started, cpu = time.perf_counter(), time.thread_time()
    rows, _ = trajectory_advantages(trajectories, "g2po")
    advantages, cpu_advantages = time.perf_counter(), time.thread_time()
    tokens = token_advantages(rows, mask)
    done, cpu_done = time.perf_counter(), time.thread_time()
    assert tokens.shape == mask.shape
    return {
        "total": done - started,
        "broadcast": done - advantages,
        "total_cpu": cpu_done - cpu,
        "broadcast_cpu": cpu_done - cpu_advantages,
    }


def text_keys(trajectories: list[Trajectory]) -> dict[str, float]:
    """State ids alone, from the same text columns trajectory_advantages reads."""
    started, cpu = time.perf_counter(), time.thread_time()
    column_state_ids(
        "textcraft",
        [t.task for t in trajectories],
        [len(t.turns) for t in trajectories],
        [turn.action for t in trajectories for turn in t.turns],
        [turn.observation for t in trajectories for turn in t.turns],
    )
    return {"keys": time.perf_counter() - started, "keys_cpu": time.thread_time() - cpu}


def episodes_path(trajectories: list[Trajectory], mask: np.ndarray, ids: bool) -> None:
    """The same advantages through episodes: group_trajectories, estimate, concatenate."""
    results = estimate(group_trajectories(trajectories, ids=ids), "g2po")
    token_advantages(np.concatenate([s for result in results for s in result.steps]), mask)


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
    trajectories = textcraft_rollouts(rng)
    mask = response_mask(trajectories)
    load_before = [round(x, 2) for x in os.getloadavg()]
    text_end_to_end(trajectories, mask)  # warm caches
    parts = [text_end_to_end(trajectories, mask) | text_keys(trajectories) for _ in range(25)]

    def median(part: str) -> float:
        return 1000 * float(np.median([p[part] for p in parts]))

    for suffix, unit in (("", "ms, wall-clock median"), ("_cpu", "ms, CPU time of this thread")):
        total, keys, broadcast = (median(f"{p}{suffix}") for p in ("total", "keys", "broadcast"))
        metrics[f"g2po_text_end_to_end{suffix}_ms"] = round(total, 3)
        units[f"g2po_text_end_to_end{suffix}_ms"] = f"{unit} (keys + graph + broadcast)"
        metrics[f"g2po_text_keys{suffix}_ms"] = round(keys, 3)
        units[f"g2po_text_keys{suffix}_ms"] = f"{unit}, state ids from the text alone"
        metrics[f"g2po_text_graph{suffix}_ms"] = round(total - keys - broadcast, 3)
        units[f"g2po_text_graph{suffix}_ms"] = f"{unit}, derived: end_to_end - keys - broadcast"
        metrics[f"g2po_text_broadcast{suffix}_ms"] = round(broadcast, 3)
        units[f"g2po_text_broadcast{suffix}_ms"] = unit
    metrics["g2po_text_episodes_path_ms"] = round(
        median_ms(lambda: episodes_path(trajectories, mask, True), 5), 3
    )
    units["g2po_text_episodes_path_ms"] = "ms, median: group_trajectories(ids=True) + estimate"
    metrics["g2po_text_keyed_path_ms"] = round(
        median_ms(lambda: episodes_path(trajectories, mask, False), 3), 3
    )
    units["g2po_text_keyed_path_ms"] = "ms, median: group_trajectories() (a key per step)"
    metrics["g2po_text_rows"] = int(mask.shape[0])
    units["g2po_text_rows"] = "step rows (128 trajectories, up to 50 steps each)"
    metrics["g2po_text_successes"] = sum(t.success for t in trajectories)
    units["g2po_text_successes"] = "successful trajectories of 128"
    metrics["g2po_text_over_goal"] = round(metrics["g2po_text_end_to_end_ms"] / 10.0, 3)
    units["g2po_text_over_goal"] = "fraction of the 10 ms goal (keys + graph + broadcast)"
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
            "text_data": (
                f"TextCraft, {TEXT_GROUPS} train tasks of depth >= {MIN_DEPTH} x "
                f"{N_TRAJECTORIES // TEXT_GROUPS} rollouts, max {N_STEPS} steps, scripted "
                f"stand-in policy (uniform random valid actions, {GOLD_MOVES:.0%} gold-plan "
                "moves), sparse reward"
            ),
            "text_response_tokens": MAX_TOKENS,
            "seed": 0,
            "load_average_before_text": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
    )


if __name__ == "__main__":
    main()
