"""AMC steering: an environment, a black-box policy and a critic as an SMC particle model.

:class:`AgentModel` is the one adapter between agents and :mod:`agentmc.smc`.
A particle is an :class:`AgentState`: an environment snapshot, the immutable
conversation so far (a tuple whose :class:`~agentmc.types.Message` objects
clones share), the turns taken and the reward collected. One SMC step asks the
policy for the next action of *every* running particle at once (one
``asyncio.gather``; the policy's own semaphore or rate limiter bounds how many
requests are in flight), then steps each particle's environment.

Environments are forked with ``snapshot()/restore()`` only, never by replaying
history: the model owns one environment instance and, for each particle,
restores that particle's snapshot, steps, and takes the new snapshot. This is
safe under asyncio because no ``await`` happens between a restore and the
snapshot that follows it. A resampled clone is the *same* state object as its
parent (resampling is a gather), so cloning is O(1). The valid actions of a
state are read when it is made and kept on it, so asking for them costs no
restore. A remote environment (:mod:`agentmc.envs.core` says what makes one)
is moved with :func:`~agentmc.envs.core.aadvance`: with a batched ``aadvance``
(the Ray proxy) all particles of a step in **one** round trip (restore, step
and snapshot of each, done where the environment lives), otherwise from a worker
thread, one whole phase per hop, so its round trips do not stall the event loop
that other tasks' policy calls share.

Per step, one vectorised draw gives every particle its policy seed (no
generator is built per particle), and the usage of all calls is summed once.

Weights. At a checkpoint the sampler adds
``((R - R_last) + (V(h) - V_last)) / beta`` to each running particle's log
weight, where ``R`` is :meth:`AgentModel.returns` and ``V`` the critic; a
particle that finished gets ``V = 0`` and is frozen (a candidate for final
selection, never stepped again). :meth:`AgentModel.values` is the value
function: the sampler awaits it at its checkpoints only (batched; an LLM-judge
critic never blocks the loop), so the model need not know the schedule.

Seeing the reward or not. :class:`AgentModel` lets the environment's reward into
the weights (the simulator-planning setting, paired with ``select="reward"``).
:class:`HiddenReward` wraps it for the deployment setting (paired with
``select="weight"`` or ``"critic"``): every true reward is kept out of the run,
``returns`` is 0 while a particle runs, and a finished particle's return is the
critic's score of its final history (0 without a critic). The true rewards are
still recorded on the states for the report, never used for decisions.

Failures. A policy call that fails for good (:class:`~agentmc.errors.PolicyError`
after the policy's retries) marks that particle failed: it is done, the failed
step earns nothing, it is never selected while another candidate exists, and
:attr:`AgentModel.n_failed` counts it. A
:class:`~agentmc.errors.FatalPolicyError` (bad key, unknown model) is raised
at once: no other particle would fare better. A critic that returns NaN or an infinity
is a :class:`~agentmc.errors.DataError` naming the task and the step.

Example:
    >>> import numpy as np
    >>> from agentmc.envs import make
    >>> from agentmc.policies.expert import NoisyExpertPolicy
    >>> from agentmc.smc import SMCConfig, run_smc
    >>> model = AgentModel(make("textcraft", task_id="0"), NoisyExpertPolicy())
    >>> config = SMCConfig(n_particles=4, schedule="every", max_steps=model.step_cap)
    >>> result = run_smc(model, config, np.random.default_rng(0))
    >>> len(result.states), result.stop_reason
    (4, 'finished')
    >>> model.trajectory(result.states[0]).env_id
    'textcraft'
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from agentmc.critics.core import Critic, History, avalues
from agentmc.data.trajectory import Trajectory, Turn
from agentmc.envs.core import Moved, TextEnv, aadvance, advance_env, is_remote, valid_actions
from agentmc.errors import FatalPolicyError, PolicyError
from agentmc.policies.core import Policy
from agentmc.rollout import AgentAction, ReplyLimits, is_success, make_turn, to_action
from agentmc.seeding import draw_seed
from agentmc.smc.model import Spend
from agentmc.types import BoolArray, FloatArray, Message, Usage

__all__ = ["AgentModel", "AgentState", "HiddenReward", "advance_env"]

T = TypeVar("T")

#: Step cap used when the environment does not report its own (``reset`` info ``max_steps``).
DEFAULT_STEP_CAP = 50

#: Policy seeds are drawn from ``[0, _SEED_BOUND)``, as :func:`agentmc.seeding.draw_seed` does.
_SEED_BOUND = 2**31 - 1

@dataclass(frozen=True, slots=True)
class AgentState:
    """One particle: where the agent stands on one task. Immutable; clones share it.

    Attributes:
        snapshot: The environment's snapshot after the last step.
        messages: The conversation so far, starting with the task message.
        turns: The steps taken, in order.
        reward: True return collected so far (the environment's rewards).
        terminated: The task ended (success or failure).
        truncated: The step cap ended the episode.
        success: The environment's verdict on the final step.
        error: Why the particle failed (a policy call that failed for good), else ``None``.
        score: Critic score of the final history once finished under
            :class:`HiddenReward` (the stand-in return), else 0.
        candidates: The environment's valid actions in this state (``None`` if it
            offers none), passed to the policy as a hint.
    """

    snapshot: Any
    messages: tuple[Message, ...]
    turns: tuple[Turn, ...] = ()
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    success: bool = False
    error: str | None = None
    score: float = 0.0
    candidates: tuple[str, ...] | None = None

    @property
    def done(self) -> bool:
        """Finished: terminated, truncated or failed."""
        return self.terminated or self.truncated or self.error is not None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def n_steps(self) -> int:
        return len(self.turns)

    def history(self) -> History:
        """The critic's view of this state."""
        return History(task=self.messages[0].content, messages=self.messages[1:])


async def _eager_gather(coroutines: list[Coroutine[Any, Any, T]]) -> tuple[list[T], bool]:
    """``asyncio.gather`` that first runs each coroutine inline up to its first suspension.

    A policy that answers without waiting (the synthetic ones) then costs no task at
    all; one that waits goes on in a task from where it stopped. All calls are
    issued, in order, before the first await, as with ``gather`` (Python 3.12's
    eager task factory does the same, but there the first segment runs as the new
    task; here it runs in the caller's, so a task-bound construct entered before
    the first suspension, such as ``asyncio.timeout``, would be bound to the caller:
    use this only for policies that answer at once).

    Returns:
        The results in order, and whether any coroutine suspended.
    """
    results: list[Any] = [None] * len(coroutines)
    pending: list[tuple[int, Coroutine[Any, Any, T]]] = []
    for index, coroutine in enumerate(coroutines):
        try:
            waiting = coroutine.send(None)
        except StopIteration as stop:
            results[index] = stop.value
        except BaseException:
            for unstarted in coroutines[index + 1 :]:
                unstarted.close()
            for _, started in pending:
                started.close()
            raise
        else:
            pending.append((index, _resume(coroutine, waiting)))
    if pending:
        finished = await asyncio.gather(*(awaitable for _, awaitable in pending))
        for (index, _), value in zip(pending, finished, strict=True):
            results[index] = value
    return results, bool(pending)


async def _resume(coroutine: Coroutine[Any, Any, T], waiting: Any) -> T:
    """Drive a started coroutine to its end from inside a task (see :func:`_eager_gather`)."""
    while True:
        try:
            if waiting is None:  # a bare yield (``asyncio.sleep(0)``): give the loop a turn
                await asyncio.sleep(0)
            else:  # it waits on this future: wait here, then let it read the outcome
                waiting._asyncio_future_blocking = False
                await asyncio.wait((waiting,))
        except asyncio.CancelledError:  # this task was cancelled: pass it on
            try:
                waiting = coroutine.throw(asyncio.CancelledError())
            except StopIteration as stop:
                return stop.value
            continue
        try:
            waiting = coroutine.send(None)
        except StopIteration as stop:
            return stop.value


class AgentModel:
    """The AMC particle model over one task.

    It satisfies ``ParticleModel``, ``ValueFunction`` and ``SupportsSpend``.

    Args:
        env: The task's environment (this model resets it and owns it).
        policy: The black-box agent.
        critic: Optional value function over histories (:meth:`values`; ``None``
            means ``V = 0``), also what :class:`HiddenReward` scores final histories with.
        temperature: Sampling temperature passed to the policy.
        task_id: Task label for error messages (default: ``env.task_id``).
        count_failed_attempts: Whether the calls budget counts requests that failed
            and were retried (the default: what a provider bills) or only answers.
        limits: Caps on reply and action length (default :class:`~agentmc.rollout.ReplyLimits`).
    """

    def __init__(
        self,
        env: TextEnv,
        policy: Policy,
        critic: Critic | None = None,
        *,
        temperature: float = 1.0,
        task_id: str | None = None,
        count_failed_attempts: bool = True,
        limits: ReplyLimits | None = None,
    ) -> None:
        self.env = env
        self.policy = policy
        self.critic = critic
        self.temperature = temperature
        self.count_failed_attempts = count_failed_attempts
        self.limits = limits
        self.task_id = str(task_id or getattr(env, "task_id", ""))
        self.usage = Usage()
        self.n_failed = 0
        self.failures: list[str] = []
        self.seed: int | None = None
        self.task = ""
        self._reset_info: dict[str, Any] | None = None
        # Synthetic policies answer at once: their calls run inline, without a task each.
        # One that turns out to wait goes back to plain tasks from the next step on.
        self._inline = bool(getattr(policy, "synthetic", False))

    # -- set-up ---------------------------------------------------------------------------

    def _reset(self, seed: int | None) -> AgentState:
        self.seed = seed
        self.task, info = self.env.reset(seed=seed)
        self._reset_info = dict(info)
        return AgentState(
            self.env.snapshot(), (Message("user", self.task),), candidates=self._valid_actions()
        )

    def _valid_actions(self) -> tuple[str, ...] | None:
        actions = valid_actions(self.env)
        return None if actions is None else tuple(actions)

    @property
    def step_cap(self) -> int:
        """The environment's own step cap (``reset`` info ``max_steps``), else 50."""
        if self._reset_info is None:
            self._reset(None)
        cap = (self._reset_info or {}).get("max_steps")
        return int(cap) if isinstance(cap, int) and cap > 0 else DEFAULT_STEP_CAP

    # -- ParticleModel ----------------------------------------------------------------------

    def initial(self, n_particles: int, rng: np.random.Generator) -> list[AgentState]:
        """Reset the environment once; every particle starts from that one shared state."""
        start = self._reset(draw_seed(rng))
        return [start] * n_particles

    async def propose(
        self, t: int, states: Sequence[AgentState], rng: np.random.Generator
    ) -> list[AgentState]:
        """One step for every given particle: concurrent policy calls, then environment steps."""
        seeds = rng.integers(0, _SEED_BOUND, size=len(states)).tolist()
        calls = [self._decide(state, seed) for state, seed in zip(states, seeds, strict=True)]
        if self._inline:
            decisions, waited = await _eager_gather(calls)
            self._inline = not waited
        else:
            decisions = list(await asyncio.gather(*calls))
        moving = [
            (state.snapshot, decision.action)
            for state, decision in zip(states, decisions, strict=True)
            if not isinstance(decision, PolicyError)
        ]
        if is_remote(self.env):
            moves = await aadvance(self.env, moving)
        else:
            moves = self._advance(moving)
        return self._after(t, states, decisions, iter(moves))

    def returns(self, states: Sequence[AgentState]) -> FloatArray:
        """Return so far: the true reward (:class:`HiddenReward` hides it)."""
        return np.array([state.reward for state in states], dtype=np.float64)

    def is_done(self, states: Sequence[AgentState]) -> BoolArray:
        return np.array([state.done for state in states], dtype=bool)

    # -- ValueFunction / SupportsSpend ------------------------------------------------------

    async def values(self, t: int, states: Sequence[AgentState]) -> FloatArray:
        """The critic's values of the histories of ``states`` after step ``t`` (zeros without one).

        The sampler's value function ``V(h)``; also the final scores of the deployable
        modes.

        Raises:
            DataError: The critic returned NaN, an infinity or the wrong number of
                values (the message names the task and the step).
        """
        if self.critic is None:
            return np.zeros(len(states))
        return await avalues(
            self.critic,
            [state.history() for state in states],
            where=f" on task {self.task_id!r} at step {t}",
        )

    def spent(self) -> Spend:
        """What the budget counts.

        Every request sent (failed attempts included, as providers bill them), or only
        answered ones with ``count_failed_attempts=False``.
        """
        usage = self.usage
        judged = getattr(self.critic, "usage", None)  # a metered critic's judge requests count too
        if isinstance(judged, Usage):
            usage = usage + judged
        calls = usage.attempts if self.count_failed_attempts else usage.calls
        return Spend(calls=calls, tokens=usage.tokens, cost=usage.cost)

    # -- helpers ----------------------------------------------------------------------------

    async def _decide(self, state: AgentState, seed: int) -> AgentAction | PolicyError:
        """:func:`agentmc.rollout.act_seeded`, inlined: one coroutine less per particle-step."""
        try:
            completions = await self.policy.complete(
                state.messages,
                n=1,
                temperature=self.temperature,
                seed=seed,
                candidates=state.candidates,
            )
            return to_action(self.policy.name, completions, state.candidates, self.limits)
        except FatalPolicyError:
            raise  # a bad key or an unknown model: no other particle or task would fare better
        except PolicyError as failure:
            return failure

    def _advance(self, moving: Sequence[tuple[Any, str]]) -> list[Moved]:
        """Restore, step and snapshot this model's environment once per ``(snapshot, action)``."""
        return advance_env(self.env, moving)

    def _after(
        self,
        t: int,
        states: Sequence[AgentState],
        decisions: Sequence[AgentAction | PolicyError],
        moves: Iterator[Moved],
    ) -> list[AgentState]:
        """The particles' new states from their decisions and environment moves (in order)."""
        calls = prompt_tokens = completion_tokens = failed_attempts = 0
        cost: float | None = 0.0
        out: list[AgentState] = []
        # Clones of one parent that give the same reply (at the same cost) reach the same
        # state: they share one immutable object, as resampled clones already do.
        made: dict[tuple[Any, ...], AgentState] = {}
        for state, decision in zip(states, decisions, strict=True):
            if isinstance(decision, PolicyError):
                self.n_failed += 1
                message = f"step {t}: {decision}"
                self.failures.append(message)
                # Counted as a failed call with unknown tokens (the requests it sent still
                # count as attempts); the failed step earns nothing.
                failed_attempts += decision.attempts
                out.append(replace(state, error=message, score=0.0))
                continue
            usage = decision.usage
            calls += usage.calls
            failed_attempts += usage.failed_attempts
            prompt_tokens += usage.prompt_tokens
            completion_tokens += usage.completion_tokens
            cost = None if cost is None or usage.cost is None else cost + usage.cost
            moved = next(moves)
            key = (id(state), id(moved), decision)
            child = made.get(key)
            if child is not None:
                out.append(child)
                continue
            result, snapshot, candidates = moved
            done = bool(result.terminated or result.truncated)
            child = made[key] = AgentState(
                snapshot,
                state.messages
                + (Message("assistant", decision.reply), Message("user", result.observation)),
                state.turns + (make_turn(decision, result),),
                state.reward + float(result.reward),
                bool(result.terminated),
                bool(result.truncated),
                is_success(result) if done else False,
                None,
                0.0,
                candidates,
            )
            out.append(child)
        self.usage = self.usage + Usage(
            calls, prompt_tokens, completion_tokens, cost, failed_attempts
        )
        return out

    def trajectory(self, state: AgentState, meta: dict[str, Any] | None = None) -> Trajectory:
        """The episode a particle played, as a :class:`Trajectory`."""
        return Trajectory(
            env_id=getattr(self.env, "env_id", ""),
            task_id=self.task_id,
            task=self.task,
            turns=state.turns,
            policy=self.policy.name,
            synthetic=bool(getattr(self.policy, "synthetic", False)),
            success=state.success,
            seed=self.seed,
            error=state.error,
            meta=dict(meta or {}),
        )


class HiddenReward:
    """The deployment setting: ``model`` with every true reward kept out of the run.

    A particle's return is 0 while it runs; once it finishes (without failing) it
    is the critic's score of its final history (0 without a critic), computed in
    the step it finishes, one batched call per step. Everything else is the
    model's: its moves, termination and spend, and its critic as the value
    function (pass ``value_fn=model``). The true rewards stay on the states
    (:attr:`AgentState.reward`) for the report, never used for decisions.

    Args:
        model: The adapter to hide the reward of (its ``critic`` gives the scores).

    Example:
        >>> from agentmc.envs import make
        >>> from agentmc.policies.expert import NoisyExpertPolicy
        >>> from agentmc.smc import SMCConfig, run_smc
        >>> model = AgentModel(make("textcraft", task_id="0"), NoisyExpertPolicy())
        >>> config = SMCConfig(n_particles=4, max_steps=model.step_cap)
        >>> result = run_smc(HiddenReward(model), config, np.random.default_rng(0))
        >>> result.returns.tolist(), any(state.reward > 0 for state in result.states)
        ([0.0, 0.0, 0.0, 0.0], True)
    """

    def __init__(self, model: AgentModel) -> None:
        self.model = model

    def initial(self, n_particles: int, rng: np.random.Generator) -> list[AgentState]:
        return self.model.initial(n_particles, rng)

    async def propose(
        self, t: int, states: Sequence[AgentState], rng: np.random.Generator
    ) -> list[AgentState]:
        """The model's step, then the critic's score of every history that just ended."""
        moved = await self.model.propose(t, states, rng)
        ended = [i for i, state in enumerate(moved) if state.done and not state.failed]
        if self.model.critic is None or not ended:
            return moved
        scores = await self.model.values(t, [moved[i] for i in ended])
        for i, score in zip(ended, scores.tolist(), strict=True):
            moved[i] = replace(moved[i], score=score)
        return moved

    def returns(self, states: Sequence[AgentState]) -> FloatArray:
        """The critic's scores of finished histories (0 while running, failed or without one)."""
        return np.array([state.score for state in states], dtype=np.float64)

    def is_done(self, states: Sequence[AgentState]) -> BoolArray:
        return self.model.is_done(states)

    def spent(self) -> Spend:
        return self.model.spent()
