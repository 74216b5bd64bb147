"""The SMC sampler: an async stepper over a :class:`~agentmc.smc.model.ParticleModel`, no I/O.

Each step advances every unfinished particle with one prior move (all of them
in one ``await model.propose``, which a model may run concurrently). At a
checkpoint (the schedule decides; the last step always is one), every particle
not yet finished gets the weight increment

    ``log_w += ((R - R_last) + (V(h) - V_last)) / beta``;  ``R_last, V_last = R, V(h)``

where ``R`` is its return so far and ``V`` the value function (zero if none),
awaited here, at checkpoints only, so the model never needs to know the schedule.
A particle that has finished gets ``V = 0`` (its return is known exactly) and
is frozen: it keeps its weight, stays a candidate in later resamplings, and is
never stepped again. ``V_last`` starts at 0. When the schedule says so, the
sampler draws ancestors from the normalised weights, gathers the particles
(clones share their state objects), adds the log mean weight to the
log-evidence and resets the weights to uniform.

The final ``log_evidence`` estimates ``log Z = log E_p[exp(R / beta)]``; its
exponential is unbiased for Z for every resampler, schedule and value function.
At every checkpoint, :attr:`CheckpointRecord.log_evidence` holds the running
estimate (past resampling factors times the current mean weight), whose
exponential is unbiased for ``E_p[exp((R_t + V(h_t)) / beta)]``, which equals Z
when ``V`` is the exact soft value.

Example:
    >>> import numpy as np
    >>> from agentmc.smc.exact import TreeModel, random_tree
    >>> model = TreeModel(random_tree(depth=3, branching=2, rng=np.random.default_rng(0)))
    >>> config = SMCConfig(n_particles=8, beta=1.0, schedule="every", max_steps=3)
    >>> result = run_smc(model, config, rng=np.random.default_rng(0))
    >>> len(result.states), result.n_steps, result.stop_reason
    (8, 3, 'finished')
    >>> [record.t for record in result.checkpoints]
    [1, 2, 3]

References:
    Del Moral (2004), *Feynman-Kac Formulae*. Chopin and Papaspiliopoulos (2020),
    *An Introduction to Sequential Monte Carlo*, chapters 10-11 (unbiased
    normalising-constant estimates, ESS-triggered resampling). Zhao, Lawson et
    al. (2024), "Probabilistic inference in language models via twisted SMC".
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic

import numpy as np

from agentmc.errors import ConfigError
from agentmc.smc.budget import Budget
from agentmc.smc.model import ParticleModel, Spend, State, SupportsSpend, ValueFunction
from agentmc.smc.resampling import DEFAULT_RESAMPLER, Resampler, get_resampler
from agentmc.smc.schedules import BudgetAware, Schedule, ScheduleContext, parse_schedule
from agentmc.smc.weights import LogWeights, WeightError
from agentmc.types import BoolArray, FloatArray, IntArray


def check_beta(beta: Any) -> float:
    """``beta`` as a float, or the one error every layer (spec string, flag, config) gives.

    Raises:
        ConfigError: ``beta`` is not a number > 0 (``inf``, no tilt, is allowed).
    """
    if isinstance(beta, bool) or not isinstance(beta, int | float | np.floating) or not beta > 0:
        raise ConfigError(
            f"beta must be > 0 (use inf for no tilt, i.e. Best-of-N), got {beta!r}"
        )
    return float(beta)


@dataclass(frozen=True)
class SMCConfig:
    """How to run SMC over one task: the one place K, beta, schedule and budget are declared.

    :class:`agentmc.methods.MethodSpec` holds one (without a step cap or budget,
    which the task and the run add), and the command line reads its flags from these
    fields' docstrings.
    """

    n_particles: int = 8
    """K, the number of particles (>= 1)."""
    beta: float = 1.0
    """Temperature of the target ``p(tau) exp(R(tau) / beta)``; > 0, ``inf`` means no tilt."""
    resampler: str = DEFAULT_RESAMPLER
    """Resampling scheme: systematic, stratified, residual or multinomial."""
    schedule: str = "every"
    """When to resample: 'none', 'every', 'steps:4,12', 'ess:0.5' or 'budget:0.8:INNER'."""
    max_steps: int | None = 20
    """Step cap: particles still running after this many steps are finalised as they are
    (``None``: none of its own, the run goes on until every particle is done)."""
    budget: Budget = field(default_factory=Budget)
    """Spending caps (calls, tokens, dollars); the run stops before a step would exceed one."""
    _parsed_schedule: Schedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.n_particles, bool) or not isinstance(self.n_particles, int | np.integer):
            raise ConfigError(f"n_particles must be an integer >= 1, got {self.n_particles!r}")
        if self.n_particles < 1:
            raise ConfigError(f"n_particles must be >= 1, got {self.n_particles}")
        object.__setattr__(self, "n_particles", int(self.n_particles))
        object.__setattr__(self, "beta", check_beta(self.beta))
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        get_resampler(self.resampler)
        schedule = parse_schedule(self.schedule)
        object.__setattr__(self, "schedule", schedule.spec)
        object.__setattr__(self, "_parsed_schedule", schedule)
        last = schedule.last_step
        if last is not None and self.max_steps is not None and last > self.max_steps:
            raise ConfigError(
                f"schedule {self.schedule!r} checkpoints at step {last}, beyond the step cap "
                f"max_steps={self.max_steps}; drop that step or raise max_steps"
            )
        if not isinstance(self.budget, Budget):
            raise ConfigError(f"budget must be a Budget, got {self.budget!r}")

    @property
    def parsed_schedule(self) -> Schedule:
        """The schedule object for :attr:`schedule`, parsed when the config was made."""
        return self._parsed_schedule

    @property
    def resample(self) -> Resampler:
        """The resampling function for :attr:`resampler`."""
        return get_resampler(self.resampler)

    @property
    def has_budget(self) -> bool:
        """Whether any budget cap is set."""
        return self.budget.has_caps

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (``beta = inf`` becomes the string ``"inf"``; caps flat)."""
        return {
            "n_particles": self.n_particles,
            "beta": self.beta if math.isfinite(self.beta) else "inf",
            "resampler": self.resampler,
            "schedule": self.schedule,
            "max_steps": self.max_steps,
            **self.budget.as_dict(),
        }


class _QuietHeap:
    """Keeps the garbage collector from rescanning particle states, step after step.

    Every step of a large run makes thousands of long-lived objects (states,
    messages, turns); CPython's collector scans each of them again in its middle
    and full collections, and a full collection walks the whole heap, so at
    K = 1024 collection cost a third of a step and made the slowest steps 10-30
    times the median. While runs of at least :data:`QUIET_HEAP_PARTICLES`
    particles go on, automatic collection is off and the objects alive after each
    step are frozen (``gc.freeze``), so nothing is scanned twice. Acyclic garbage
    (nearly all of it) is still freed at once by reference counting; cyclic
    garbage is reclaimed in batches: once the objects frozen since the last batch
    outnumber three times those frozen before it (and a million), everything is
    unfrozen and collected once, amortised O(1) per object. When the last of
    overlapping runs ends, everything is unfrozen and collection is back on. A
    process that froze objects itself (a pre-forking server) is left alone.
    """

    runs = 0
    active = False
    enabled = True
    base = 0
    grown = 0

    @classmethod
    @contextlib.contextmanager
    def during_run(cls, n_particles: int) -> Iterator[None]:
        if n_particles < QUIET_HEAP_PARTICLES:
            yield
            return
        if cls.runs == 0 and gc.get_freeze_count() == 0:
            cls.active, cls.enabled = True, gc.isenabled()
            gc.disable()
            gc.freeze()
            cls.base, cls.grown = gc.get_freeze_count(), 0
        cls.runs += 1
        try:
            yield
        finally:
            cls.runs -= 1
            if cls.runs == 0 and cls.active:
                gc.unfreeze()
                if cls.enabled:
                    gc.enable()
                cls.active = False

    @classmethod
    def after_step(cls) -> None:
        if not cls.active:
            return
        cls.grown += gc.get_count()[0]  # tracked objects made (net) since the last freeze
        if cls.grown > max(3 * cls.base, 1_000_000):
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            cls.base, cls.grown = gc.get_freeze_count(), 0
        else:
            gc.freeze()


#: Runs with at least this many particles keep the collector quiet (see ``_QuietHeap``).
QUIET_HEAP_PARTICLES = 128


def _frozen(array: np.ndarray) -> np.ndarray:
    copy = np.array(array)
    copy.setflags(write=False)
    return copy


@dataclass(frozen=True)
class SMCState:
    """A snapshot of the particle system after one step.

    Attributes:
        t: Steps taken so far.
        states: The K particle states.
        log_weights: Current (accumulated) log weights.
        finished: Shape ``(K,)``: particles frozen with their final weight.
        log_evidence: Running log-evidence estimate (past resampling factors
            plus the current log mean weight).
        checkpoint: Whether this step was a checkpoint.
        resampled: Whether this step resampled.
        ancestors: Shape ``(K,)`` ancestor indices if it resampled, else ``None``.
        complete: Whether the run is over.
        proposed: The K states after this step's moves, before any resampling
            (the same as ``states`` when it did not resample): what the pruned
            particles did, for genealogy views.
    """

    t: int
    states: tuple[Any, ...]
    log_weights: LogWeights
    finished: BoolArray
    log_evidence: float
    checkpoint: bool
    resampled: bool
    ancestors: IntArray | None
    complete: bool
    proposed: tuple[Any, ...] = ()


#: Per-step observer: ``collector(state) -> value``; values land in ``SMCResult.collected``.
Collector = Callable[[SMCState], Any]


@dataclass(frozen=True)
class CheckpointRecord:
    """Diagnostics of one checkpoint.

    Attributes:
        t: Step after which the checkpoint happened.
        ess: Effective sample size of the weights before any resampling.
        resampled: Whether the particles were resampled.
        n_unique_ancestors: Distinct ancestors drawn (``None`` if not resampled).
        log_evidence: Running log-evidence estimate at this checkpoint.
        n_running: Particles still running after this checkpoint.
        n_finished: Particles finished (frozen) after this checkpoint.
        budget_spent: Largest fraction of a capped budget spent, or ``None``.
        final: Whether this was the last checkpoint of the run.
        log_weights: Shape ``(K,)``: every particle's log weight before any
            resampling (what the ancestors were drawn from); ``None`` for weight zero.
        values: Shape ``(K,)``: the value ``V(h)`` each particle's weight used at
            this checkpoint (0 for finished particles and without a value function).
    """

    t: int
    ess: float
    resampled: bool
    n_unique_ancestors: int | None
    log_evidence: float
    n_running: int
    n_finished: int
    budget_spent: float | None
    final: bool
    log_weights: tuple[float | None, ...] = ()
    values: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "ess": self.ess,
            "resampled": self.resampled,
            "n_unique_ancestors": self.n_unique_ancestors,
            "log_evidence": self.log_evidence,
            "n_running": self.n_running,
            "n_finished": self.n_finished,
            "budget_spent": self.budget_spent,
            "final": self.final,
            "log_weights": list(self.log_weights),
            "values": list(self.values),
        }


@dataclass(frozen=True)
class Ancestry:
    """One resampling event: after step ``t``, particle j copies old particle ``ancestors[j]``."""

    t: int
    ancestors: IntArray

    def as_dict(self) -> dict[str, Any]:
        return {"t": self.t, "ancestors": self.ancestors.tolist()}


@dataclass(frozen=True)
class SMCResult(Generic[State]):
    """What a finished run returns.

    Attributes:
        states: The K final particle states.
        log_weights: Final log weights; ``normalized`` gives ``W``.
        log_evidence: ``log Zhat``: sum of the log mean weights of every
            resampling event plus the final log mean weight.
        returns: Final returns ``R`` of the particles, shape ``(K,)``.
        checkpoints: One record per checkpoint, in order.
        genealogy: One entry per resampling event, in order.
        n_steps: Steps taken.
        stop_reason: ``"finished"`` (every particle done), ``"max_steps"``, or
            ``"budget:calls"`` / ``"budget:tokens"`` / ``"budget:cost"``.
        resampling_stopped_at: First checkpoint at which a budget-aware schedule
            declined to resample because of the budget, else ``None``.
        spent: The model's spend at the end, if it reports one.
        config: The configuration used.
        collected: Values of the user's collectors, one list per name.
    """

    states: tuple[State, ...]
    log_weights: LogWeights
    log_evidence: float
    returns: FloatArray
    checkpoints: tuple[CheckpointRecord, ...]
    genealogy: tuple[Ancestry, ...]
    n_steps: int
    stop_reason: str
    resampling_stopped_at: int | None
    spent: Spend | None
    config: SMCConfig
    collected: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def weights(self) -> FloatArray:
        """Final normalised weights ``W``, shape ``(K,)``."""
        return self.log_weights.normalized

    @property
    def n_resamplings(self) -> int:
        return len(self.genealogy)

    def lineage(self, index: int) -> list[int]:
        """Slots that final particle ``index`` occupied, from the start to the end.

        Entry 0 is its root among the initial particles; the last entry is ``index``.
        """
        slots = [int(index)]
        for event in reversed(self.genealogy):
            slots.append(int(event.ancestors[slots[-1]]))
        return slots[::-1]

    def diagnostics(self) -> dict[str, Any]:
        """JSON-safe diagnostics (no particle states)."""
        return {
            "config": self.config.as_dict(),
            "log_evidence": self.log_evidence,
            "weights": self.weights.tolist(),
            "returns": self.returns.tolist(),
            "n_steps": self.n_steps,
            "stop_reason": self.stop_reason,
            "resampling_stopped_at": self.resampling_stopped_at,
            "n_resamplings": self.n_resamplings,
            "checkpoints": [record.as_dict() for record in self.checkpoints],
            "genealogy": [event.as_dict() for event in self.genealogy],
            "spent": None if self.spent is None else vars(self.spent).copy(),
        }


def _as_vector(values: Any, size: int, what: str, t: int) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (size,):
        raise WeightError(f"{what} at step {t} returned shape {array.shape}, expected ({size},)")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise WeightError(
            f"{what} at step {t} returned non-finite values {array[bad].tolist()} "
            f"for particles {bad.tolist()}"
        )
    return array


class SMC(Generic[State]):
    """Sequential Monte Carlo over a particle model.

    ``await smc.step()`` advances one step and returns an :class:`SMCState`;
    ``await smc.run()`` steps to the end and returns an :class:`SMCResult`.

    Args:
        model: The particle model (prior moves, returns, termination).
        config: Number of particles, beta, resampler, schedule, caps.
        rng: The run's generator; the sampler splits it into independent
            streams for initial states, proposals and resampling, so the
            proposals do not depend on how often resampling drew numbers.
        value_fn: Optional critic ``V`` (reward units), awaited at checkpoints;
            ``None`` means ``V = 0``.
        collectors: Optional per-step observers ``name -> collector(state)``.

    Raises:
        ConfigError: If a budget cap is set but the model does not report its spend,
            or ``value_fn.values`` is not a coroutine function.
    """

    def __init__(
        self,
        model: ParticleModel[State],
        config: SMCConfig,
        rng: np.random.Generator,
        value_fn: ValueFunction[State] | None = None,
        collectors: Mapping[str, Collector] | None = None,
    ) -> None:
        if config.has_budget and not isinstance(model, SupportsSpend):
            raise ConfigError(
                "a budget cap (max_calls/max_tokens/max_cost) needs a model with spent(); "
                f"{type(model).__name__} has none"
            )
        if value_fn is not None and not inspect.iscoroutinefunction(
            getattr(value_fn, "values", None)
        ):
            raise ConfigError(
                f"value_fn {type(value_fn).__name__} needs `async def values(self, t, states)`; "
                "the sampler awaits it at checkpoints"
            )
        self.model = model
        self.config = config
        self.value_fn = value_fn
        self.collectors = dict(collectors or {})
        self.collected: dict[str, list[Any]] = {name: [] for name in self.collectors}
        self._schedule = config.parsed_schedule
        self._resample = config.resample
        init_rng, self._propose_rng, self._resample_rng = rng.spawn(3)
        n = config.n_particles
        self._states: list[Any] = list(model.initial(n, init_rng))
        if len(self._states) != n:
            raise WeightError(f"model.initial returned {len(self._states)} states, expected {n}")
        self._done = np.asarray(model.is_done(self._states), dtype=bool).copy()
        self._reward_last = _as_vector(model.returns(self._states), n, "model.returns", 0).copy()
        self._value_last = np.zeros(n)
        self._finished = np.zeros(n, dtype=bool)
        self._log_weights = LogWeights.uniform(n)
        self._log_evidence_past = 0.0
        self._t = 0
        self._complete = False
        self._stop_reason = "finished"
        self._resampling_stopped_at: int | None = None
        self._checkpoints: list[CheckpointRecord] = []
        self._genealogy: list[Ancestry] = []

    @property
    def complete(self) -> bool:
        return self._complete

    def _budget(self, upcoming_calls: int) -> tuple[float | None, str | None]:
        """(largest fraction of a capped budget spent, which cap stops the next step)."""
        budget = self.config.budget
        if not budget.has_caps:
            return None, None
        spend = self.model.spent()  # type: ignore[attr-defined]
        fractions: list[float] = []
        reason = None
        if budget.max_calls is not None:
            fractions.append(spend.calls / budget.max_calls)
            if spend.calls + upcoming_calls > budget.max_calls:
                reason = "budget:calls"
        if budget.max_tokens is not None:
            fractions.append(spend.tokens / budget.max_tokens)
            if spend.tokens >= budget.max_tokens:
                reason = reason or "budget:tokens"
        if budget.max_cost is not None:
            if spend.cost is None:
                raise ConfigError(
                    "max_cost is set but the policy's cost is unknown; set prices or cap "
                    "calls/tokens instead"
                )
            fractions.append(spend.cost / budget.max_cost)
            if spend.cost >= budget.max_cost:
                reason = reason or "budget:cost"
        return max(fractions), reason

    async def step(self) -> SMCState:
        """Advance every running particle one step; weigh and resample if scheduled."""
        if self._complete:
            raise RuntimeError("this SMC run is complete; build a new SMC to sample again")
        running = np.flatnonzero(~self._finished & ~self._done)
        stop = None
        if running.size:
            _, stop = self._budget(int(running.size))
        if running.size and stop is None:
            t = self._t + 1
            moved = list(
                await self.model.propose(t, [self._states[i] for i in running], self._propose_rng)
            )
            if len(moved) != running.size:
                raise WeightError(
                    f"model.propose at step {t} returned {len(moved)} states, "
                    f"expected {running.size}"
                )
            for slot, particle in zip(running, moved, strict=True):
                self._states[slot] = particle
            self._done[running] = np.asarray(self.model.is_done(moved), dtype=bool)
            self._t = t
        t = self._t
        still_running = bool(np.any(~self._finished & ~self._done))
        cap = self.config.max_steps
        final = stop is not None or not still_running or (cap is not None and t >= cap)
        if final:
            self._stop_reason = stop or ("max_steps" if still_running else "finished")
        checkpoint = final or self._schedule.is_checkpoint(t)
        proposed = tuple(self._states)
        resampled, ancestors = False, None
        if checkpoint:
            resampled, ancestors = await self._checkpoint(t, final)
        self._complete = final
        state = SMCState(
            t=t,
            states=tuple(self._states),
            log_weights=self._log_weights,
            finished=_frozen(self._finished),
            log_evidence=self._log_evidence_past + self._log_weights.log_mean,
            checkpoint=checkpoint,
            resampled=resampled,
            ancestors=ancestors,
            complete=final,
            proposed=proposed,
        )
        for name, collector in self.collectors.items():
            self.collected[name].append(collector(state))
        return state

    async def _checkpoint(self, t: int, final: bool) -> tuple[bool, IntArray | None]:
        pending = np.flatnonzero(~self._finished)
        states = [self._states[i] for i in pending]
        returns = _as_vector(self.model.returns(states), pending.size, "model.returns", t)
        done = self._done[pending]
        values = np.zeros(pending.size)
        if not final and self.value_fn is not None:
            live = np.flatnonzero(~done)
            if live.size:
                values[live] = _as_vector(
                    await self.value_fn.values(t, [states[j] for j in live]),
                    live.size,
                    "value function",
                    t,
                )
        increment = (
            (returns - self._reward_last[pending]) + (values - self._value_last[pending])
        ) / self.config.beta
        self._log_weights = self._log_weights.add_at(pending, increment)
        self._reward_last[pending] = returns
        self._value_last[pending] = values
        all_values = np.zeros(self.config.n_particles)
        all_values[pending] = values
        if final:
            self._finished[:] = True
        else:
            self._finished[pending] = done
        log_weights = self._log_weights
        budget_spent, _ = self._budget(0)
        resample = False
        if not final:
            context = ScheduleContext(self.config.n_particles, budget_spent)
            resample = self._schedule.should_resample(t, log_weights, context)
            if (
                self._resampling_stopped_at is None
                and isinstance(self._schedule, BudgetAware)
                and budget_spent is not None
                and budget_spent >= self._schedule.max_spent
            ):
                self._resampling_stopped_at = t
        running_log_evidence = self._log_evidence_past + log_weights.log_mean
        ancestors = None
        if resample:
            ancestors = self._resample(log_weights.normalized, self._resample_rng, len(log_weights))
            ancestors.setflags(write=False)
            self._states = [self._states[i] for i in ancestors]
            self._done = self._done[ancestors]
            self._finished = self._finished[ancestors]
            self._reward_last = self._reward_last[ancestors]
            self._value_last = self._value_last[ancestors]
            self._log_evidence_past += log_weights.log_mean
            self._log_weights = LogWeights.uniform(len(log_weights))
            self._genealogy.append(Ancestry(t, ancestors))
        self._checkpoints.append(
            CheckpointRecord(
                t=t,
                ess=log_weights.ess,
                resampled=resample,
                n_unique_ancestors=None if ancestors is None else int(np.unique(ancestors).size),
                log_evidence=running_log_evidence,
                n_running=int(np.sum(~self._finished & ~self._done)),
                n_finished=int(np.sum(self._finished)),
                budget_spent=budget_spent,
                final=final,
                log_weights=tuple(
                    float(w) if math.isfinite(w) else None for w in log_weights.log_w.tolist()
                ),
                values=tuple(all_values.tolist()),
            )
        )
        return resample, ancestors

    async def run(self) -> SMCResult[State]:
        """Step until every particle is finished, the step cap or a budget cap.

        While runs of 128 particles or more go on, the objects alive after each step
        are kept out of the garbage collector's scans (see :class:`_QuietHeap`);
        cyclic garbage is still reclaimed, in batches.
        """
        with _QuietHeap.during_run(self.config.n_particles):
            while not self._complete:
                await self.step()
                _QuietHeap.after_step()
        return self.result()

    def result(self) -> SMCResult[State]:
        """The result of a complete run.

        Raises:
            RuntimeError: If the run is not complete yet.
        """
        if not self._complete:
            raise RuntimeError("the SMC run is not complete; await run() first")
        states = tuple(self._states)
        returns = _as_vector(self.model.returns(states), len(states), "model.returns", self._t)
        returns.setflags(write=False)
        spent = self.model.spent() if isinstance(self.model, SupportsSpend) else None
        return SMCResult(
            states=states,
            log_weights=self._log_weights,
            log_evidence=self._log_evidence_past + self._log_weights.log_mean,
            returns=returns,
            checkpoints=tuple(self._checkpoints),
            genealogy=tuple(self._genealogy),
            n_steps=self._t,
            stop_reason=self._stop_reason,
            resampling_stopped_at=self._resampling_stopped_at,
            spent=spent,
            config=self.config,
            collected={name: list(values) for name, values in self.collected.items()},
        )


def run_smc(
    model: ParticleModel[State],
    config: SMCConfig,
    rng: np.random.Generator,
    value_fn: ValueFunction[State] | None = None,
    collectors: Mapping[str, Collector] | None = None,
) -> SMCResult[State]:
    """Run SMC to completion from synchronous code (inside async code, ``await SMC(...).run()``).

    Args:
        model: The particle model.
        config: The sampler configuration.
        rng: The run's generator.
        value_fn: Optional critic in reward units.
        collectors: Optional per-step observers.

    Returns:
        The :class:`SMCResult`.
    """
    return asyncio.run(SMC(model, config, rng, value_fn, collectors).run())
