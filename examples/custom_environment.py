"""Bring your own environment: define it, register it, check it, play it, steer it with AMC.

The environment is a combination lock. Task ``i`` hides a 3-digit code (digits
1-4); the agent says ``press N``. A right digit clicks, a wrong one resets the
lock, and the reward is 1 only when it opens (sparse). A random agent rarely
hears three clicks in a row, so Best-of-N and reward-weighted SMC see almost no
signal until the end. AMC adds a critic that listens for clicks: the twist
``V(h)`` moves particles toward histories with more clicks, without the true
reward (it is hidden in the deployable ``critic`` selection).

The registration also hands over what the lock knows about itself: the
prompt a model is shown, what "the same state" is for G2PO credit
assignment, and a scripted expert that the synthetic ``noisy-expert`` policy
follows. agentmc's policies and learners find all three by the id ``lock``.

Everything is offline: the agent is agentmc's ``RandomPolicy``, a synthetic
stand-in for an LLM (swap in ``agentmc.make_policy("local")`` or
``"openai:MODEL"``). Run it with ``python examples/custom_environment.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

import agentmc
from agentmc.envs.knowledge import EnvPrompt, Example, ExpertPlan, StateSpace
from agentmc.policies.prompts import PromptFormat
from agentmc.rl import state_keys
from agentmc.rollout import rollout

# -- 1. The environment: reset/step (Gymnasium's names) plus snapshot/restore -----------

DIGITS, LENGTH, MAX_STEPS = 4, 3, 10
ACTIONS = [f"press {d}" for d in range(1, DIGITS + 1)]


@dataclass(frozen=True)
class LockState:
    """Snapshot: immutable, so SMC can fork particles by sharing it."""

    progress: int = 0  # right digits pressed in a row
    steps: int = 0
    terminated: bool = False
    truncated: bool = False


class LockEnv:
    """One lock (one task). No base class: agentmc environments are a Protocol."""

    env_id = "lock"
    max_steps = MAX_STEPS  # check_env reads the cap to test truncation

    def __init__(self, task_id: str) -> None:
        if task_id not in list_lock_tasks("all"):
            raise agentmc.ConfigError(f"unknown lock task {task_id!r}: use 0..{DIGITS**LENGTH - 1}")
        self.task_id = task_id
        index = int(task_id)  # the code is the task number written in base DIGITS
        self.code = [(index // DIGITS**k) % DIGITS + 1 for k in range(LENGTH)]
        self.state = LockState()

    def reset(self, *, seed=None, options=None):
        self.state = LockState()
        task = f"Open a lock with a {LENGTH}-digit code (digits 1-{DIGITS}). Say 'press N'."
        return task, {"max_steps": MAX_STEPS}

    def step(self, action: str) -> agentmc.StepResult:
        state = self.state
        if state.terminated or state.truncated:
            return agentmc.StepResult("It is over.", 0.0, state.terminated, state.truncated, {})
        steps = state.steps + 1
        action = " ".join(action.lower().split())  # malformed text gets feedback, never raises
        if action not in ACTIONS:
            text, progress = f"Say 'press N' with N from 1 to {DIGITS}.", state.progress
        elif int(action[-1]) != self.code[state.progress]:
            text, progress = f"Clunk. The lock resets (0/{LENGTH}).", 0
        elif state.progress + 1 < LENGTH:
            text, progress = f"Click ({state.progress + 1}/{LENGTH}).", state.progress + 1
        else:
            text, progress = "The lock opens!", LENGTH
        opened = progress == LENGTH
        truncated = not opened and steps >= MAX_STEPS
        self.state = LockState(progress, steps, opened, truncated)
        info = {"success": opened} if opened or truncated else {}
        return agentmc.StepResult(text, 1.0 if opened else 0.0, opened, truncated, info)

    def valid_actions(self) -> list[str]:  # optional: lets RandomPolicy and local:score choose
        return list(ACTIONS)

    def snapshot(self) -> LockState:
        return self.state

    def restore(self, snapshot: LockState) -> None:
        self.state = snapshot

    def close(self) -> None:
        pass


def list_lock_tasks(split: str = "all") -> list[str]:
    """Every 5th task is a test task, the next one validation, the rest train."""
    ids = range(DIGITS**LENGTH)
    keep = {"test": {0}, "validation": {1}, "train": {2, 3, 4}, "all": set(range(5))}[split]
    return [str(i) for i in ids if i % 5 in keep]


# What the lock knows about itself (optional): a prompt, its states, a scripted expert.

PROMPT = EnvPrompt(
    "You are opening a combination lock. Say 'press N'. A click means the digit was right; "
    "a clunk resets the lock, so start the code again.",
    (Example("Open a lock with a 2-digit code (digits 1-4). Say 'press N'.",
             (("", "press 1", "Click (1/2)."), ("", "press 3", "The lock opens!"))),),
)  # fmt: skip


def progress(level: int, action: str, observation: str) -> int:
    """What decides the rest of an episode: the right digits pressed in a row."""
    if observation == "The lock opens!":
        return LENGTH
    heard = re.search(r"\((\d)/", observation)  # "Click (2/3)." or "... resets (0/3)."
    return int(heard.group(1)) if heard else level


STATES = StateSpace(start=lambda task: 0, advance=progress,
                    render=lambda level: f"{level} of {LENGTH} digits right",
                    description="digits right in a row")  # fmt: skip


def lock_expert(task: str, steps) -> ExpertPlan | None:
    """Try each digit in turn; remember the digits that clicked (it reads only the transcript)."""
    if not task.startswith("Open a lock"):
        return None  # not a lock task: another environment's expert may know it
    known: list[int] = []  # the code's digits learnt so far
    tried: set[int] = set()  # wrong digits for the next position
    level = 0
    for action, observation in steps:
        after = progress(level, action, observation)
        digit = int(action[-1]) if action in ACTIONS else None
        if digit is not None and after == level + 1 and len(known) == level:
            known.append(digit)
            tried = set()
        elif digit is not None and after == 0 and len(known) == level:
            tried.add(digit)
        level = after
    if level == LENGTH:
        return ExpertPlan((), done=True)
    guess = next(d for d in range(1, DIGITS + 1) if d not in tried)
    plan = [f"press {d}" for d in known[level:]] + [f"press {guess}"]
    return ExpertPlan(tuple(plan), valid_actions=lambda: ACTIONS)


# -- 2. Register it, then use it by name like a built-in --------------------------------

agentmc.register("lock", LockEnv, list_lock_tasks, description="Example: open a combination lock",
                 prompt=PROMPT, state_space=STATES, expert=lock_expert)  # fmt: skip
env = agentmc.make("lock", task_id="5")
agentmc.check_env(env)  # determinism, snapshot independence, malformed actions, truncation
print(f"registered 'lock': {len(agentmc.task_ids('lock', 'test'))} test tasks; check_env passed")

# -- 3. One episode of the random agent (a synthetic stand-in) --------------------------

policy = agentmc.RandomPolicy()
trajectory = rollout(env, policy, np.random.default_rng(0))
print(f"\nrandom agent (synthetic) on task 5, success={trajectory.success}:")
for turn in trajectory.turns[:4]:
    print(f"  {turn.action:8s} -> {turn.observation}")

# The noisy expert (synthetic too) follows lock_expert and slips on 20% of steps.
expert = agentmc.make_policy("noisy-expert:eps=0.2")
played = rollout(agentmc.make("lock", task_id="5"), expert, np.random.default_rng(0))
steps = [(turn.action, turn.observation) for turn in played.turns]
print(f"\nnoisy expert (synthetic) on task 5, success={played.success} in {played.n_steps} steps")
print(f"  G2PO states: {state_keys('lock', played.task, steps)[:4]} ...")
print(f"  prompt: {PromptFormat(env_id='lock').system[:45]}...")

# -- 4. A critic is any object with values(histories) -> one float per history ----------


class ClickCritic:
    """V(h) = share of the code heard clicking in the last observation (hand-written)."""

    name = "clicks"

    def values(self, histories) -> np.ndarray:
        def value(history) -> float:
            last = history.messages[-1].content if history.messages else ""
            if last == "The lock opens!":
                return 1.0
            heard = re.search(r"\((\d)/", last)  # "Click (2/3)." or "... resets (0/3)."
            return int(heard.group(1)) / LENGTH if heard else 0.0

        return np.array([value(history) for history in histories])


# -- 5. Compare methods on the test tasks, same seeds for each ---------------------------

METHODS = ["single", "bon:8", "smc:8", "amc:8:critic:beta=0.1"]
tasks = agentmc.task_ids("lock", "test")
print(f"\nsuccess on {len(tasks)} test tasks (random agent, synthetic; 8 particles):")
for text in METHODS:
    spec = agentmc.MethodSpec.parse(text)
    results = [
        agentmc.run_method(
            spec,
            lambda task=task: agentmc.make("lock", task_id=task),
            policy,
            np.random.default_rng([7, int(task)]),
            critic=ClickCritic() if spec.kind == "amc" else None,
        )
        for task in tasks
    ]
    success = np.mean([result.success for result in results])
    calls = np.mean([result.calls for result in results])
    print(f"  {spec.label:28s} selection={results[0].selection:6s} "
          f"success={success:.2f}  calls/task={calls:.0f}")  # fmt: skip
