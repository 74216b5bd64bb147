"""ScienceWorld costs: JVM start, steps/s, replay clone cost, AMC step cost at K = 8.

ScienceWorld has no native save, so a clone is "reload the task and replay the
history" on a pooled simulator. This measures:

* ``jvm_start_s``: starting one simulator (Java + py4j).
* ``step_ms`` / ``steps_per_s``: one ``env.step`` when a simulator already sits
  at the state (gold action sequences of three tasks, warm JVM).
* ``valid_actions_ms``: ``env.valid_actions()`` (the AMC adapter asks for it every step).
* ``clone_ms_depth_{0,5,10,20}``: the first step after ``restore`` of a snapshot
  taken after d moves, when the only simulator sits elsewhere in the same task
  (reload + replay d moves + the step); ``restore_us``: ``restore`` itself (O(1)).
* ``amc_step_s_k8_pool{8,2}``: wall time per SMC step of AMC with K = 8
  particles (schedule ``steps:4,12``, beta = 0.1) on one task, with a synthetic
  noisy-gold policy (the simulator's gold action with probability 0.8, else a
  wasted action), with 8 and with 2 pooled simulators; ``replayed_moves_*``
  counts the moves replayed to serve clones.

Timings on a shared 2-core machine are noisy; compare the numbers of one run.

Run: ``.venv/bin/python bench/sciworld.py`` (about 2 minutes; needs the sciworld
extra and Java). Writes ``bench/results/sciworld.json``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from common import write_result

from agentmc.envs import make
from agentmc.envs.sciworld import SciWorldTasks, Simulator, SimulatorPool
from agentmc.policies.core import Completion
from agentmc.smc import SMCConfig, run_smc
from agentmc.steer import AgentModel
from agentmc.types import Message

TASKS = ("find-living-thing", "power-component", "chemistry-mix")
CLONE_TASK = "boil"  # 39 gold actions
AMC_TASK = "chemistry-mix"  # 23 gold actions, score rises along the way
WASTED = ("look around", "inventory", "look at agent", "wait1")


def task_id(name: str) -> str:
    return str(SciWorldTasks.agentgym().games.index((name, 0)))


class NoisyGoldPolicy:
    """Synthetic stand-in: the gold action with probability ``p_gold``, else a wasted action.

    Progress is the number of gold actions already played in order, read from
    the conversation, so clones continue where their history left off.
    """

    name = "noisy-gold (synthetic)"
    synthetic = True

    def __init__(self, gold: Sequence[str], p_gold: float = 0.7) -> None:
        self.gold = list(gold)
        self.p_gold = p_gold

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        progress = 0
        for message in messages:
            if message.role == "assistant" and progress < len(self.gold):
                progress += message.content == self.gold[progress]
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            if progress < len(self.gold) and rng.random() < self.p_gold:
                out.append(Completion(self.gold[progress]))
            else:
                out.append(Completion(WASTED[int(rng.integers(len(WASTED)))]))
        return out


def main() -> None:
    metrics: dict[str, float] = {}
    units: dict[str, str] = {}

    start = time.perf_counter()
    probe = Simulator()
    metrics["jvm_start_s"] = time.perf_counter() - start
    units["jvm_start_s"] = "s"
    probe.close()

    pool = SimulatorPool(1)
    times: list[float] = []
    valid: list[float] = []
    for name in TASKS:
        env = make("sciworld", task_id=task_id(name), pool=pool, max_steps=100, candidates=True)
        env.reset()
        gold = env.gold_actions()
        for repeat in range(2):  # the first pass warms the JIT
            env.reset()
            for action in gold:
                t0 = time.perf_counter()
                result = env.step(action)
                if repeat:
                    times.append(time.perf_counter() - t0)
                if result.terminated:
                    break
            assert result.info["success"], name
        t0 = time.perf_counter()
        env.valid_actions()
        valid.append(time.perf_counter() - t0)
    metrics["step_ms"] = 1e3 * float(np.median(times))
    metrics["steps_per_s"] = len(times) / float(np.sum(times))
    metrics["step_ms_p90"] = 1e3 * float(np.quantile(times, 0.9))
    units["step_ms_p90"] = "ms"
    metrics["valid_actions_ms"] = 1e3 * float(np.median(valid))
    units.update(step_ms="ms (median)", steps_per_s="steps/s", valid_actions_ms="ms (median)")

    # Clone cost: restore a deep snapshot where no simulator sits, then step.
    env = make("sciworld", task_id=task_id(CLONE_TASK), pool=pool, max_steps=100)
    env.reset()
    gold = env.gold_actions()
    # Another particle of the same task, elsewhere in the game (the AMC case).
    other = make("sciworld", task_id=task_id(CLONE_TASK), pool=pool)
    for depth in (0, 5, 10, 20):
        costs, restores = [], []
        for _ in range(5):
            env.reset()
            for action in gold[:depth]:
                env.step(action)
            saved = env.snapshot()
            other.reset()
            other.step("inventory")  # the only simulator now sits elsewhere
            t0 = time.perf_counter()
            env.restore(saved)
            restores.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            env.step(gold[depth])
            costs.append(time.perf_counter() - t0)
        metrics[f"clone_ms_depth_{depth}"] = 1e3 * float(np.median(costs))
        units[f"clone_ms_depth_{depth}"] = "ms (median of 5; reload + replay + 1 step)"
        metrics["restore_us"] = 1e6 * float(np.median(restores))
        units["restore_us"] = "us"
    pool.close()

    # AMC at K = 8 on one task, with 8 and 2 pooled simulators.
    config = SMCConfig(n_particles=8, beta=0.1, schedule="steps:4,12", max_steps=30)
    for size in (8, 2):
        pool = SimulatorPool(size)
        pool.start()  # JVM launches are measured above, not here
        env = make("sciworld", task_id=task_id(AMC_TASK), pool=pool, max_steps=30)
        env.reset()
        policy = NoisyGoldPolicy(env.gold_actions(), p_gold=0.8)
        model = AgentModel(env, policy)
        for simulator in pool._idle:
            simulator.starts = simulator.replayed = 0
        t0 = time.perf_counter()
        result = run_smc(model, config, np.random.default_rng(0))
        wall = time.perf_counter() - t0
        steps = result.n_steps
        replayed = sum(s.replayed for s in pool._idle)
        starts = sum(s.starts for s in pool._idle)
        metrics[f"amc_step_s_k8_pool{size}"] = wall / max(steps, 1)
        metrics[f"amc_wall_s_k8_pool{size}"] = wall
        metrics[f"replayed_moves_k8_pool{size}"] = replayed
        metrics[f"task_loads_k8_pool{size}"] = starts
        units.update(
            {
                f"amc_step_s_k8_pool{size}": "s per SMC step (all 8 particles)",
                f"amc_wall_s_k8_pool{size}": "s",
                f"replayed_moves_k8_pool{size}": "moves",
                f"task_loads_k8_pool{size}": "loads",
            }
        )
        metrics[f"amc_smc_steps_pool{size}"] = steps
        metrics[f"amc_success_pool{size}"] = float(np.mean([s.success for s in result.states]))
        units[f"amc_smc_steps_pool{size}"] = "steps"
        units[f"amc_success_pool{size}"] = "fraction of final particles"
        pool.close()

    write_result(
        "sciworld",
        metrics,
        units,
        {
            "tasks": list(TASKS),
            "amc_task": AMC_TASK,
            "amc": config.as_dict(),
            "clone_task": CLONE_TASK,
            "policy": "noisy-gold (synthetic): gold action w.p. 0.8, else a wasted action",
        },
    )


if __name__ == "__main__":
    main()
