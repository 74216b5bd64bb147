"""Inference methods on one code path: single run, Best-of-N, zero-shot SMC and AMC.

A :class:`MethodSpec` names a method in a short string form that the CLI, the
evaluation harness and reports share:

=====================  ===================================================================
``single``             one plain agent run (K = 1, no selection; selection ``"none"``)
``bon:8``              Best-of-N: 8 independent runs, keep the best by true reward
``bon:8:critic``       Best-of-N, keep the highest critic score (no true reward used)
``amc:8``              AMC with a trained critic, 8 particles, best final true reward
``amc:8:weight``       AMC, sample the answer from the final weights
``smc:8:critic``       zero-shot SMC (any critic, e.g. the LLM judge), highest critic score
=====================  ===================================================================

Settings follow as ``key=value`` parts: ``beta=0.3``, the schedule as
``steps=4,12``, ``ess=0.5`` or ``schedule=SPEC`` (any form of
:func:`agentmc.smc.parse_schedule`, e.g. ``schedule=none``), and
``resampler=residual``; e.g. ``amc:8:critic:beta=0.3:steps=4``. The label
(``amc@critic-k8-beta0.3-steps:4``) parses back to the same spec, so a
recorded result names exactly what ran. Settings that cannot change a
method's results are dropped: beta for Best-of-N unless it samples by weight,
and schedule and resampler for ``single`` and Best-of-N.

A spec holds the :class:`~agentmc.smc.SMCConfig` it runs (:attr:`MethodSpec.smc`),
the one place K, beta, schedule and resampler are declared and checked; a run
adds the environment's step cap and the :class:`~agentmc.smc.Budget`.

Every method runs through :class:`agentmc.steer.AgentModel` and the SMC
sampler: ``single`` is K = 1 with no resampling, Best-of-N is K particles
with no resampling (the final weights are ``exp(R / beta)``), SMC and AMC
resample on the spec's schedule. So budgets, concurrency (one
``asyncio.gather`` per step over all particles) and failure accounting are the
same for all of them.

Selection modes (design.md section 2), always recorded in the result:

- ``reward``: the environment's final reward is visible (planning in a
  simulator). The weights use it, and the answer is the candidate with the
  best true return: comparable to Best-of-N by reward (pass@K).
- ``weight``: the deployment setting. True rewards are hidden from the whole
  run (:class:`agentmc.steer.HiddenReward`): a finished particle's return is
  the critic's score of its final history (0 without a critic), and the answer
  is drawn from the final weights. For Best-of-N that is a draw with
  probability ``∝ exp(score / beta)``.
- ``critic``: also deployment: rewards hidden, and the answer is the candidate
  whose final history the critic scores highest.

Failed particles (a policy call that failed after its retries) are never
selected while another candidate exists, and ``diagnostics["failed_particles"]``
counts them. An episode whose particles *all* failed has
``diagnostics["infrastructure_failed"]``: it says nothing about the method, so
runs keep it out of results and retry it on resume. ``diagnostics["attempts"]``
and ``["retries"]`` count the requests sent, failed ones included.

What a method spends, all of it (so equal-cost comparisons are honest):
``calls``/``prompt_tokens``/``completion_tokens``/``cost`` are the agent's;
``critic`` holds the critic's (an LLM judge's requests, tokens and dollars,
and the CPU seconds and wall seconds spent scoring, see
:mod:`agentmc.critics.meter`). A budget cap counts judge requests and tokens
too. With K > 1, ``particles`` keeps every finished particle's trajectory,
shared prefixes once (:mod:`agentmc.data.particles`), so a critic can later be
trained on everything a run generated.

Example:
    >>> import asyncio
    >>> import numpy as np
    >>> from agentmc.envs import make
    >>> from agentmc.policies.expert import NoisyExpertPolicy
    >>> spec = MethodSpec.parse("bon:4")
    >>> result = asyncio.run(arun_method(spec, lambda: make("textcraft", task_id="3"),
    ...                                  NoisyExpertPolicy(), np.random.default_rng(0)))
    >>> result.method, result.selection, result.calls > 0
    ('bon@reward-k4', 'reward', True)
    >>> EpisodeResult.from_dict(result.to_dict()) == result
    True
    >>> spec = MethodSpec.parse("amc:8:critic:beta=0.3:steps=4")
    >>> spec.label, spec.text, MethodSpec.parse(spec.label) == spec
    ('amc@critic-k8-beta0.3-steps:4', 'amc:8:critic:beta=0.3:steps=4', True)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np

from agentmc.critics.core import Critic
from agentmc.critics.meter import MeteredCritic
from agentmc.data.particles import pack, unpack
from agentmc.data.trajectory import Trajectory
from agentmc.envs.core import TextEnv
from agentmc.errors import ConfigError, UnknownNameError
from agentmc.policies.core import Policy
from agentmc.rollout import ReplyLimits
from agentmc.smc.budget import Budget
from agentmc.smc.resampling import DEFAULT_RESAMPLER, RESAMPLERS
from agentmc.smc.sampler import SMC, SMCConfig, SMCState
from agentmc.smc.selection import SELECTION_MODES, SelectionMode, select_particle
from agentmc.smc.weights import LogWeights
from agentmc.steer import AgentModel, HiddenReward

__all__ = [
    "KINDS",
    "SETTINGS",
    "Budget",
    "EpisodeResult",
    "Kind",
    "MethodSpec",
    "Select",
    "arun_method",
    "critic_choice",
    "run_method",
]

Kind = Literal["single", "bon", "smc", "amc"]
KINDS: tuple[str, ...] = get_args(Kind)
Select = SelectionMode
"""The selection literal, defined once in :mod:`agentmc.smc.selection`."""
SELECTS: tuple[str, ...] = SELECTION_MODES

_FORMS = (
    "'single', 'bon:8', 'bon:8:critic', 'amc:8', 'amc:8:weight', 'smc:8:critic', "
    "'amc:8:critic:beta=0.3:steps=4' (settings: beta=, steps=, ess=, schedule=, resampler=)"
)
SETTINGS: tuple[str, ...] = ("beta", "steps", "ess", "schedule", "resampler")
"""Keys of the ``key=value`` settings in a method string."""
_LABEL = re.compile(r"^(?P<kind>[a-z]+)@(?P<select>[a-z]+)-k(?P<k>\d+)(?P<rest>(-.+)?)$")


def _number(value: float) -> str:
    """Shortest text that reads back as ``value`` (``0.3``, ``inf``, ``1e-05``)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


@dataclass(frozen=True, init=False)
class MethodSpec:
    """Which method to run: its kind, its final selection and the sampler settings it runs.

    ``MethodSpec("amc", 8, "critic", beta=0.3, schedule="steps:4")`` and
    ``MethodSpec("amc", select="critic", smc=SMCConfig(n_particles=8, ...))`` build
    the same spec; K, beta, schedule and resampler live only in :attr:`smc` (the
    properties below read them), so they are declared and validated once, in
    :class:`~agentmc.smc.SMCConfig`. ``dataclasses.replace(spec, beta=0.3)`` works
    as for a plain dataclass.
    """

    kind: Kind
    """``single``, ``bon`` (Best-of-N), ``smc`` (zero-shot SMC, any critic) or ``amc``."""
    select: SelectionMode
    """Final selection: ``reward``, ``weight`` or ``critic`` (``reward`` for ``single``)."""
    smc: SMCConfig
    """The sampler settings this method runs (K, beta, schedule, resampler): no step cap
    and no budget, which the task and the run add (:func:`arun_method`). ``single``
    and Best-of-N never resample (schedule ``none``)."""

    def __init__(
        self,
        kind: Kind,
        particles: int | None = None,
        select: SelectionMode = "reward",
        beta: float | None = None,
        schedule: str | None = None,
        resampler: str | None = None,
        *,
        smc: SMCConfig | None = None,
    ) -> None:
        if kind not in KINDS:
            raise UnknownNameError(f"unknown method {kind!r}; valid forms: {_FORMS}")
        if select not in SELECTS:
            raise ConfigError(f"select must be one of {', '.join(SELECTS)}, got {select!r}")
        given = {
            "n_particles": particles,
            "beta": beta,
            "schedule": schedule,
            "resampler": resampler,
        }
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if smc is None:
            smc = SMCConfig(n_particles=1, max_steps=None)
        # settings that cannot change this method's results are normalised away, so two
        # specs are equal exactly when they run the same thing (and labels round-trip)
        if kind in ("single", "bon"):
            changes |= {"schedule": "none", "resampler": DEFAULT_RESAMPLER}
            if kind == "single" or select != "weight":
                changes["beta"] = 1.0
        config = replace(smc, **changes, max_steps=None, budget=Budget())
        if kind == "single" and config.n_particles != 1:
            raise ConfigError(
                f"method 'single' runs one episode (particles=1), got "
                f"particles={config.n_particles}; use 'bon:K' for K runs"
            )
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "select", "reward" if kind == "single" else select)
        object.__setattr__(self, "smc", config)

    @property
    def particles(self) -> int:
        """K (N for Best-of-N): :attr:`SMCConfig.n_particles`."""
        return self.smc.n_particles

    @property
    def beta(self) -> float:
        """Temperature of the target ``p(tau) exp(R / beta)``: :attr:`SMCConfig.beta`."""
        return self.smc.beta

    @property
    def schedule(self) -> str:
        """Resampling schedule (``none`` for single and Best-of-N): :attr:`SMCConfig.schedule`."""
        return self.smc.schedule

    @property
    def resampler(self) -> str:
        """Resampling scheme: :attr:`SMCConfig.resampler`."""
        return self.smc.resampler

    @classmethod
    def parse(cls, text: str) -> MethodSpec:
        """Build a spec from ``KIND[:K[:SELECT]][:key=value...]`` or from its label.

        Examples: ``"amc:8:critic"``, ``"amc:8:critic:beta=0.3:steps=4"``,
        ``"amc@critic-k8-beta0.3-steps:4"``.

        Raises:
            UnknownNameError: Unknown kind (the message lists the valid forms).
            ConfigError: Malformed K, selection or setting.
        """
        text = str(text).strip()
        label = _LABEL.match(text.lower())
        if label is not None:
            return cls._from_label(text, label)
        parts = [part.strip() for part in text.split(":")]
        kind = parts[0].lower()
        if kind not in KINDS:
            raise UnknownNameError(f"unknown method {text!r}; valid forms: {_FORMS}")
        head = 3 if len(parts) > 2 and "=" not in parts[2] else 2
        settings = cls._settings(text, parts[head:])
        parts = parts[:head]
        if kind == "single":
            if len(parts) > 1 and parts[1] not in ("", "1"):
                raise ConfigError(f"method {text!r}: 'single' takes no K; valid forms: {_FORMS}")
            return cls("single", **settings)
        if len(parts) < 2 or not parts[1]:
            raise ConfigError(f"method {text!r} needs K, e.g. '{kind}:8'; valid forms: {_FORMS}")
        try:
            particles = int(parts[1])
        except ValueError:
            raise ConfigError(
                f"method {text!r}: K must be an integer, got {parts[1]!r}; valid forms: {_FORMS}"
            ) from None
        select = parts[2].lower() if len(parts) == 3 else "reward"
        if select not in SELECTS:
            raise ConfigError(
                f"method {text!r}: selection must be one of {', '.join(SELECTS)}, got {select!r}"
            )
        return cls(kind, particles, select, **settings)  # type: ignore[arg-type]

    @staticmethod
    def _settings(text: str, parts: list[str]) -> dict[str, Any]:
        """Read ``key=value`` parts (one without ``=`` continues the previous value)."""
        pairs: list[list[str]] = []
        for part in parts:
            key, sep, value = part.partition("=")
            if sep:
                pairs.append([key.strip().lower(), value.strip()])
            elif pairs:
                pairs[-1][1] += ":" + part
            else:
                raise ConfigError(
                    f"method {text!r}: too many ':' parts ({part!r} is not a key=value "
                    f"setting); valid forms: {_FORMS}"
                )
        settings: dict[str, Any] = {}
        for key, value in pairs:
            if key not in SETTINGS:
                raise ConfigError(
                    f"method {text!r}: unknown setting {key!r}; use {', '.join(SETTINGS)}"
                )
            field_name = "schedule" if key in ("steps", "ess") else key
            if field_name in settings:
                raise ConfigError(f"method {text!r}: {field_name} given twice")
            if key == "beta":
                try:
                    settings["beta"] = float(value)
                except ValueError:
                    raise ConfigError(f"method {text!r}: beta={value!r} is not a number") from None
            elif key in ("steps", "ess"):
                settings["schedule"] = f"{key}:{value}"
            else:
                settings[key] = value
        return settings

    @classmethod
    def _from_label(cls, text: str, match: re.Match[str]) -> MethodSpec:
        """Rebuild a spec from :attr:`label` (``amc@critic-k8-beta0.3-steps:4-residual``)."""
        kind, select, rest = match["kind"], match["select"], match["rest"]
        if kind not in KINDS:
            raise UnknownNameError(f"unknown method {text!r}; valid forms: {_FORMS}")
        tokens: list[str] = []
        for token in rest.split("-")[1:]:
            if tokens and tokens[-1][-1:] in ("e", "E") and tokens[-1][:4] == "beta":
                tokens[-1] += "-" + token  # a negative exponent: beta1e-05
            else:
                tokens.append(token)
        settings: dict[str, Any] = {}
        for token in tokens:
            if token.startswith("beta"):
                try:
                    settings["beta"] = float(token[4:])
                except ValueError:
                    raise ConfigError(f"method {text!r}: {token!r} is not beta<number>") from None
            elif token in RESAMPLERS:
                settings["resampler"] = token
            else:
                settings["schedule"] = token
        return cls(kind, int(match["k"]), select, **settings)  # type: ignore[arg-type]

    @property
    def text(self) -> str:
        """The ``KIND:K:SELECT[:key=value...]`` form (:meth:`parse` reads it back)."""
        if self.kind == "single":
            return "single"
        parts = [self.kind, str(self.particles), self.select]
        if self.beta != 1.0:
            parts.append(f"beta={_number(self.beta)}")
        kind, _, argument = self.schedule.partition(":")
        if self.kind not in ("smc", "amc"):
            pass  # single and Best-of-N never resample: no schedule to name
        elif kind in ("steps", "ess"):
            parts.append(f"{kind}={argument}")
        elif self.schedule != "every":
            parts.append(f"schedule={self.schedule}")
        if self.resampler != DEFAULT_RESAMPLER:
            parts.append(f"resampler={self.resampler}")
        return ":".join(parts)

    @property
    def label(self) -> str:
        """``single``, or ``KIND@SELECT-kK`` plus any non-default setting that changes results.

        Best-of-N ignores beta unless it samples by weight, so its label leaves it out.
        """
        if self.kind == "single":
            return "single"
        label = f"{self.kind}@{self.select}-k{self.particles}"
        if self.beta != 1.0:
            label += f"-beta{_number(self.beta)}"
        if self.kind in ("smc", "amc"):
            if self.schedule != "every":
                label += f"-{self.schedule}"
            if self.resampler != DEFAULT_RESAMPLER:
                label += f"-{self.resampler}"
        return label

    @property
    def selection(self) -> str:
        """The selection mode recorded with results (``"none"`` for ``single``)."""
        return "none" if self.kind == "single" else self.select

    @property
    def observe_reward(self) -> bool:
        """Whether true rewards may steer the run (only with ``reward`` selection)."""
        return self.kind == "single" or self.select == "reward"


@dataclass
class EpisodeResult:
    """One method on one task: the selected trajectory, the cost, and SMC diagnostics.

    Attributes:
        task_id: The task.
        method: The method's label (:attr:`MethodSpec.label`).
        selection: ``"reward"``, ``"weight"``, ``"critic"``, or ``"none"`` for ``single``.
        success: Whether the selected trajectory solved the task.
        reward: True return of the selected trajectory.
        steps: Steps of the selected trajectory.
        calls: Policy requests over all particles.
        prompt_tokens: Prompt tokens over all particles.
        completion_tokens: Completion tokens over all particles.
        cost: US dollars over all particles (``None`` when some price is unknown).
        wall_s: Wall-clock seconds of the whole episode.
        trajectory: The selected trajectory (``meta`` says which particle and how).
        candidates_rewards: True final returns of the K candidates (for analysis only).
        candidate_values: Critic scores of the K final histories, or ``None`` without a critic.
        critic_spend: What the critic cost: judge ``calls``, ``prompt_tokens``,
            ``completion_tokens``, ``cost``, and ``cpu_s``, ``wall_s``, ``histories``
            (``None`` without a critic).
        particles: Every finished particle's trajectory packed by
            :func:`agentmc.data.particles.pack` (``None`` for K = 1: the trajectory is all),
            what critics train on (``diagnostics["particles"]`` is the per-step display form).
        diagnostics: Per-checkpoint ESS, resampled flag, unique ancestors, running
            log-evidence, every particle's log weight and critic value (``checkpoints``),
            what every particle did at every step (``particles``, see
            :func:`particle_step`), ``log_evidence``, ``genealogy``,
            ``failed_particles``, ``failures``, ``budget_exhausted``, ``stop_reason``, ...
    """

    task_id: str
    method: str
    selection: str
    success: bool
    reward: float
    steps: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    wall_s: float
    trajectory: Trajectory
    candidates_rewards: list[float]
    candidate_values: list[float] | None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    critic_spend: dict[str, Any] | None = None
    particles: dict[str, Any] | None = None

    @property
    def judge_calls(self) -> int:
        return int((self.critic_spend or {}).get("calls", 0))

    @property
    def judge_tokens(self) -> int:
        spend = self.critic_spend or {}
        return int(spend.get("prompt_tokens", 0)) + int(spend.get("completion_tokens", 0))

    @property
    def critic_cpu_s(self) -> float:
        return float((self.critic_spend or {}).get("cpu_s", 0.0))

    def trajectories(self) -> list[Trajectory]:
        """Every kept particle's trajectory (the selected one alone for K = 1)."""
        if self.particles is None:
            return [self.trajectory]
        from agentmc.data.particles import unpack

        return unpack(self.particles)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        extra: dict[str, Any] = {}
        if self.critic_spend is not None:
            extra["critic_spend"] = self.critic_spend
        if self.particles is not None:
            extra["particles"] = self.particles
        return extra | {
            "task_id": self.task_id,
            "method": self.method,
            "selection": self.selection,
            "success": self.success,
            "reward": self.reward,
            "steps": self.steps,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "wall_s": self.wall_s,
            "trajectory": self.trajectory.to_dict(),
            "candidates_rewards": list(self.candidates_rewards),
            "candidate_values": (
                None if self.candidate_values is None else list(self.candidate_values)
            ),
            "diagnostics": self.diagnostics,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeResult:
        cost = data.get("cost")
        values = data.get("candidate_values")
        return cls(
            task_id=str(data["task_id"]),
            method=data["method"],
            selection=data["selection"],
            success=bool(data["success"]),
            reward=float(data["reward"]),
            steps=int(data["steps"]),
            calls=int(data["calls"]),
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
            cost=None if cost is None else float(cost),
            wall_s=float(data["wall_s"]),
            trajectory=Trajectory.from_dict(data["trajectory"]),
            candidates_rewards=[float(v) for v in data["candidates_rewards"]],
            candidate_values=None if values is None else [float(v) for v in values],
            diagnostics=dict(data.get("diagnostics", {})),
            critic_spend=data.get("critic_spend"),
            particles=data.get("particles"),
        )


#: Actions longer than this are cut in the per-step particle record (the selected
#: trajectory keeps the full text).
ACTION_CHARS = 120


def particle_step(state: SMCState) -> dict[str, Any]:
    """What every particle did at one step, before resampling (for genealogy views).

    Returns:
        ``{"t", "actions", "rewards", "done", "success", "failed"}``, each list of length K;
        ``actions[i]`` is ``None`` when particle ``i`` did not move at this step.
    """
    t = state.t
    actions: list[str | None] = []
    for particle in state.proposed:
        moved = len(particle.turns) == t and t > 0
        actions.append(particle.turns[-1].action[:ACTION_CHARS] if moved else None)
    return {
        "t": t,
        "actions": actions,
        "rewards": [float(p.reward) for p in state.proposed],
        "done": [bool(p.done) for p in state.proposed],
        "success": [bool(p.success) for p in state.proposed],
        "failed": [bool(p.failed) for p in state.proposed],
    }


async def arun_method(
    spec: MethodSpec,
    make_env: Callable[[], TextEnv],
    policy: Policy,
    rng: np.random.Generator,
    *,
    critic: Critic | None = None,
    budget: Budget | None = None,
    temperature: float = 1.0,
    task_id: str = "",
    limits: ReplyLimits | None = None,
) -> EpisodeResult:
    """Run one method on one task.

    Args:
        spec: The method.
        make_env: Builds a fresh environment for the task (called once; particles
            fork it with snapshots).
        policy: The black-box agent.
        rng: The episode's generator (same generator state and a deterministic
            policy give the same result).
        critic: Value function for SMC/AMC twisting and for ``critic``/``weight``
            selection; ``None`` is the zero critic. Best-of-N and single use it
            only to score final histories.
        budget: Optional caps; the run stops before a step would exceed one, and
            ``diagnostics["budget_exhausted"]`` says so.
        temperature: Policy sampling temperature.
        task_id: Task label (default: the environment's ``task_id``).
        limits: Caps on reply and action length (default :class:`~agentmc.rollout.ReplyLimits`).

    Returns:
        The :class:`EpisodeResult`.

    Raises:
        ConfigError: ``critic`` selection without a critic; a schedule step beyond
            the environment's step cap.
        DataError: The critic returned NaN or an infinity (names task and step).
    """
    if spec.kind != "single" and spec.select == "critic" and critic is None:
        raise ConfigError(
            f"method {spec.label} selects by critic but no critic was given; pass --critic PATH "
            "or use reward/weight selection"
        )
    budget = budget or Budget()
    start = time.perf_counter()
    meter = None if critic is None else MeteredCritic(critic)
    critic = meter
    smc_rng, select_rng = rng.spawn(2)
    env = make_env()
    try:
        model = AgentModel(
            env,
            policy,
            critic,
            temperature=temperature,
            task_id=task_id or None,
            count_failed_attempts=budget.count == "attempts",
            limits=limits,
        )
        task_id = model.task_id
        try:
            config = replace(spec.smc, max_steps=model.step_cap, budget=budget)
        except ConfigError as error:
            raise ConfigError(f"method {spec.label} on task {task_id!r}: {error}") from None
        steered = critic is not None and spec.kind in ("smc", "amc")
        sampler = SMC(
            model if spec.observe_reward else HiddenReward(model),
            config,
            smc_rng,
            value_fn=model if steered else None,
            collectors={"particles": particle_step},
        )
        result = await sampler.run()
        states = result.states
        rewards = np.array([state.reward for state in states], dtype=np.float64)
        failed = np.array([state.failed for state in states], dtype=bool)
        scores = None if critic is None else await model.values(result.n_steps, states)
        if spec.kind == "single":
            index = 0
        else:
            index = select_particle(
                spec.select,
                log_weights=result.log_weights,
                rng=select_rng,
                returns=rewards,
                scores=scores,
                eligible=~failed,
            )
        lineage = result.lineage(index)
        trajectory = model.trajectory(
            states[index],
            meta={
                "method": spec.label,
                "selection": spec.selection,
                "particle": index,
                "lineage": lineage,
            },
        )
        particles = None
        if spec.particles > 1:
            particles = pack(
                [
                    model.trajectory(state, meta={"method": spec.label, "particle": i})
                    for i, state in enumerate(states)
                ]
            )
    finally:
        env.close()
    usage = model.usage
    diagnostics = result.diagnostics()
    diagnostics.update(
        {
            "particles": result.collected["particles"],
            "kind": spec.kind,
            "selected": index,
            "observe_reward": spec.observe_reward,
            "critic": None if critic is None else getattr(critic, "name", type(critic).__name__),
            "failed_particles": model.n_failed,
            "failures": list(model.failures),
            # every particle failed for reasons outside the agent (policy errors after
            # retries): not a result; runs record it apart and retry it on resume
            "infrastructure_failed": bool(failed.all()),
            "attempts": usage.attempts,
            "retries": max(usage.failed_attempts - model.n_failed, 0),
            "budget_exhausted": result.stop_reason.startswith("budget"),
            "budget": budget.as_dict() | {"count": budget.count},
            "policy": policy.name,
            "synthetic": bool(getattr(policy, "synthetic", False)),
        }
    )
    return EpisodeResult(
        task_id=task_id,
        method=spec.label,
        selection=spec.selection,
        success=bool(trajectory.success),
        reward=float(rewards[index]),
        steps=trajectory.n_steps,
        calls=usage.calls,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost=None if usage.cost is None else float(usage.cost),
        wall_s=time.perf_counter() - start,
        trajectory=trajectory,
        candidates_rewards=rewards.tolist(),
        candidate_values=None if scores is None else scores.tolist(),
        diagnostics=diagnostics,
        critic_spend=None if meter is None else meter.spend(),
        particles=particles,
    )


def run_method(
    spec: MethodSpec,
    make_env: Callable[[], TextEnv],
    policy: Policy,
    rng: np.random.Generator,
    **kwargs: Any,
) -> EpisodeResult:
    """Synchronous :func:`arun_method` (starts an event loop)."""
    import asyncio

    return asyncio.run(arun_method(spec, make_env, policy, rng, **kwargs))


def critic_choice(result: EpisodeResult) -> int:
    """The particle ``bon:K:critic`` keeps, chosen among the samples of a ``bon:K`` run.

    Best-of-K draws the same K samples whichever selection it reports (same seed,
    no resampling, no step depends on the reward), so its critic-selected answer
    needs no second run: the highest critic score among the particles that did not
    fail, ties to the lower index. That is the separate run's choice whenever the
    tied particles' final weights are equal, as they are when every particle
    finished (a hidden-reward weight is then the score); a budget that stops
    particles mid-episode can break such a tie the other way.

    Raises:
        ConfigError: ``result`` is not a Best-of-K run with critic scores.
    """
    if not result.method.startswith("bon@") or result.candidate_values is None:
        raise ConfigError(
            f"critic_choice needs a Best-of-K run scored by a critic, got {result.method!r}"
            + (" without critic scores" if result.candidate_values is None else "")
        )
    k = len(result.candidates_rewards)
    trajectories = [result.trajectory] if result.particles is None else unpack(result.particles)
    failed = np.array([trajectory.error is not None for trajectory in trajectories])
    return select_particle(
        "critic",
        log_weights=LogWeights(np.zeros(k)),
        rng=np.random.default_rng(0),  # not used by critic selection
        scores=np.asarray(result.candidate_values, dtype=np.float64),
        eligible=~failed,
    )
