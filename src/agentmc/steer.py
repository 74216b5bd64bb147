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
parent (resampling is a gather), so cloning is O(1). A remote environment (one
with ``astep``, e.g. a Ray proxy) is driven from a worker thread, one whole
phase (all particles' restores and steps) per hop, so its round trips do not
stall the event loop that other tasks' policy calls share.

Weights. At a checkpoint the sampler adds
``((R - R_last) + (V(h) - V_last)) / beta`` to each running particle's log
weight, where ``R`` is :meth:`AgentModel.returns` and ``V`` the critic; a
particle that finished gets ``V = 0`` and is frozen (a candidate for final
selection, never stepped again). The model computes critic values inside
:meth:`AgentModel.propose` (asynchronously, batched, only at checkpoint steps)
and stores them on the state, so an LLM-judge critic never blocks the loop.

Seeing the reward or not. ``observe_reward=True`` (the simulator-planning
setting, paired with ``select="reward"``) lets the environment's reward into
the weights. ``observe_reward=False`` (the deployment setting, paired with
``select="weight"`` or ``"critic"``) keeps every true reward out of the run:
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from agentmc.critics.core import Critic, History
from agentmc.data.trajectory import Trajectory, Turn
from agentmc.envs.core import StepResult, TextEnv, valid_actions
from agentmc.errors import DataError, FatalPolicyError, PolicyError
from agentmc.policies.core import Policy
from agentmc.rollout import AgentAction, ReplyLimits, act, is_success, make_turn
from agentmc.seeding import draw_seed
from agentmc.smc.model import Spend
from agentmc.smc.schedules import Schedule
from agentmc.types import BoolArray, FloatArray, Message, Usage

T = TypeVar("T")

__all__ = ["AgentModel", "AgentState", "critic_values"]

#: Step cap used when the environment does not report its own (``reset`` info ``max_steps``).
DEFAULT_STEP_CAP = 50


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
        value: Critic value ``V(h)`` of this state (set at checkpoint steps; 0 otherwise).
        score: Critic score of the final history once finished with the reward
            hidden (the stand-in return), else 0.
    """

    snapshot: Any
    messages: tuple[Message, ...]
    turns: tuple[Turn, ...] = ()
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    success: bool = False
    error: str | None = None
    value: float = 0.0
    score: float = 0.0

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


async def critic_values(
    critic: Critic, histories: Sequence[History], *, task_id: str, step: int
) -> FloatArray:
    """Critic values of ``histories``, checked finite.

    Args:
        critic: Any critic (``avalues`` is awaited when it has one).
        histories: B histories.
        task_id: Named in the error message.
        step: Named in the error message.

    Returns:
        Shape ``(B,)`` float64.

    Raises:
        DataError: If the critic returns the wrong number of values, NaN or an infinity.
    """
    name = getattr(critic, "name", type(critic).__name__)
    method = getattr(critic, "avalues", None)
    if method is not None and asyncio.iscoroutinefunction(method):
        raw = await method(histories)
    else:
        raw = critic.values(histories)
    values = np.asarray(raw, dtype=np.float64).reshape(-1)
    if values.shape != (len(histories),):
        raise DataError(
            f"critic {name!r} returned {values.shape[0]} values for {len(histories)} histories "
            f"on task {task_id!r} at step {step}"
        )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataError(
            f"critic {name!r} returned a non-finite value ({values[bad[0]]}) on task "
            f"{task_id!r} at step {step}; fix or retrain the critic"
        )
    return values


class AgentModel:
    """The AMC particle model over one task.

    It satisfies ``ParticleModel``, ``ValueFunction`` and ``SupportsSpend``.

    Args:
        env: The task's environment (this model resets it and owns it).
        policy: The black-box agent.
        critic: Optional value function over histories; ``None`` means ``V = 0``.
        schedule: Checkpoint schedule of the run, to compute critic values only
            where the sampler asks for them (``None``: after every step).
        temperature: Sampling temperature passed to the policy.
        observe_reward: Whether true rewards enter the weights (see the module docstring).
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
        schedule: Schedule | None = None,
        temperature: float = 1.0,
        observe_reward: bool = True,
        task_id: str | None = None,
        count_failed_attempts: bool = True,
        limits: ReplyLimits | None = None,
    ) -> None:
        self.env = env
        self.policy = policy
        self.critic = critic
        self.schedule = schedule
        self.temperature = temperature
        self.observe_reward = observe_reward
        self.count_failed_attempts = count_failed_attempts
        self.limits = limits
        self.task_id = str(task_id or getattr(env, "task_id", ""))
        self.usage = Usage()
        self.n_failed = 0
        self.failures: list[str] = []
        self.seed: int | None = None
        self.task = ""
        self._reset_info: dict[str, Any] | None = None
        self._remote = callable(getattr(env, "astep", None))

    # -- set-up ---------------------------------------------------------------------------

    def _reset(self, seed: int | None) -> AgentState:
        self.seed = seed
        self.task, info = self.env.reset(seed=seed)
        self._reset_info = dict(info)
        return AgentState(self.env.snapshot(), (Message("user", self.task),))

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
        seeds = [draw_seed(rng) for _ in states]
        candidates = await self._on_env(lambda: [self._candidates(state) for state in states])
        decisions = await asyncio.gather(
            *(
                self._decide(state, np.random.default_rng(seed), options)
                for state, seed, options in zip(states, seeds, candidates, strict=True)
            )
        )
        moved = await self._on_env(
            lambda: [
                self._apply(t, state, decision)
                for state, decision in zip(states, decisions, strict=True)
            ]
        )
        if self.critic is not None:
            moved = await self._attach_values(t, moved)
        return moved

    def returns(self, states: Sequence[AgentState]) -> FloatArray:
        """Return so far: the true reward, or with the reward hidden the critic's stand-in."""
        if self.observe_reward:
            return np.array([state.reward for state in states], dtype=np.float64)
        return np.array([state.score for state in states], dtype=np.float64)

    def is_done(self, states: Sequence[AgentState]) -> BoolArray:
        return np.array([state.done for state in states], dtype=bool)

    # -- ValueFunction / SupportsSpend ------------------------------------------------------

    def values(self, t: int, states: Sequence[AgentState]) -> FloatArray:
        """The critic values computed during :meth:`propose` of step ``t``."""
        return np.array([state.value for state in states], dtype=np.float64)

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

    async def _on_env(self, phase: Callable[[], T]) -> T:
        """Run one phase of environment work: inline, or in a thread for a remote environment."""
        return await asyncio.to_thread(phase) if self._remote else phase()

    def _candidates(self, state: AgentState) -> list[str] | None:
        self.env.restore(state.snapshot)
        return valid_actions(self.env)

    async def _decide(
        self, state: AgentState, rng: np.random.Generator, candidates: list[str] | None
    ) -> AgentAction | PolicyError:
        try:
            return await act(
                self.policy,
                state.messages,
                rng,
                temperature=self.temperature,
                candidates=candidates,
                limits=self.limits,
            )
        except FatalPolicyError:
            raise  # a bad key or an unknown model: no other particle or task would fare better
        except PolicyError as failure:
            return failure

    def _apply(self, t: int, state: AgentState, decision: AgentAction | PolicyError) -> AgentState:
        if isinstance(decision, PolicyError):
            self.n_failed += 1
            message = f"step {t}: {decision}"
            self.failures.append(message)
            # Counted as a failed call with unknown tokens (the requests it sent still
            # count as attempts); the failed step earns nothing.
            self.usage = self.usage + Usage(failed_attempts=decision.attempts)
            return replace(state, error=message, value=0.0, score=0.0)
        self.usage = self.usage + decision.usage
        self.env.restore(state.snapshot)
        result: StepResult = self.env.step(decision.action)
        snapshot = self.env.snapshot()
        turn = make_turn(decision, result)
        done = bool(result.terminated or result.truncated)
        return AgentState(
            snapshot=snapshot,
            messages=state.messages
            + (Message("assistant", decision.reply), Message("user", result.observation)),
            turns=state.turns + (turn,),
            reward=state.reward + float(result.reward),
            terminated=bool(result.terminated),
            truncated=bool(result.truncated),
            success=is_success(result) if done else False,
        )

    async def _attach_values(self, t: int, states: list[AgentState]) -> list[AgentState]:
        """Critic values for running states at checkpoints, and scores of newly finished ones."""
        assert self.critic is not None
        checkpoint = self.schedule is None or self.schedule.is_checkpoint(t)
        live = [i for i, s in enumerate(states) if checkpoint and not s.done]
        ended = [
            i for i, s in enumerate(states) if not self.observe_reward and s.done and not s.failed
        ]
        wanted = live + ended
        if not wanted:
            return states
        values = await critic_values(
            self.critic, [states[i].history() for i in wanted], task_id=self.task_id, step=t
        )
        out = list(states)
        for i, value in zip(wanted, values.tolist(), strict=True):
            if states[i].done:
                out[i] = replace(states[i], score=value)
            else:
                out[i] = replace(states[i], value=value)
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
