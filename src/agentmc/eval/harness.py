"""Compare methods on the same tasks, with the same seeds, at equal budget.

An evaluation is a list of *entries* (a method, optionally with its own
policy, e.g. an RL-trained one) run on every task of a split. Every (entry,
task) pair is one unit of work in a :class:`~agentmc.data.store.RunStore`, so
an interrupted evaluation resumes where it stopped. All entries draw their
randomness from the same per-task generator (common random numbers), which
makes paired comparisons on the same tasks sharp.

*Equal budget*: one per-task cap (policy calls, tokens or cost) applies to
every entry; a method that cannot fit even its first step in the cap is
rejected up front, and every table shows what each method actually spent.

*Do no harm*: a critic that cannot tell good trajectories from bad ones makes
AMC worse than plain Best-of-N (the paper lost on TextCraft this way). Before
the test split, each deployable AMC entry (``select`` of ``weight`` or
``critic``) is run next to Best-of-N with the same K and selection mode on
validation tasks (same tasks, same seeds). The rule (:func:`guard_decision`):
AMC is kept only if it ran on at least ``MIN_GUARD_TASKS`` (30) tasks and
solves significantly more of them than Best-of-N by the one-sided exact sign
(McNemar) test on the tasks where the two disagree, ``p <= GUARD_ALPHA``
(0.05). Otherwise the entry runs as Best-of-N on the test split under the
label ``amc→bon@...``, and the report gives both methods' validation figures,
the disagreements, the p-value and the rule.

Why this rule: falling back costs nothing (Best-of-N is the yardstick), while
trusting a harmful AMC costs success, so AMC must show evidence; a strict
``>`` on a handful of tasks trusts AMC half the time when the two are equal.
The exact test on paired outcomes needs no random resampling (the decision is
reproducible), is valid for the few disagreements 30 tasks give, and is the
paired comparison the reports already show.

Example:
    >>> from agentmc.eval.harness import Entry
    >>> [Entry.parse(text).label for text in ["single", "bon:8", "amc:8:critic"]]
    ['single', 'bon@reward-k8', 'amc@critic-k8']
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from agentmc.critics.core import History
from agentmc.data.store import RunStore
from agentmc.data.trajectory import Trajectory
from agentmc.errors import ConfigError, DataError
from agentmc.eval.metrics import mcnemar
from agentmc.eval.report import Report
from agentmc.eval.runner import RunCounts, Unit, check_complete, run_units
from agentmc.eval.summary import compare, summarize
from agentmc.methods import SETTINGS, Budget, EpisodeResult, MethodSpec, arun_method
from agentmc.policies.core import Policy
from agentmc.rollout import ReplyLimits
from agentmc.seeding import task_rng
from agentmc.smc.selection import DEPLOYABLE

MIN_GUARD_TASKS = 30
"""Fewest validation tasks on which the do-no-harm guard may trust AMC."""
GUARD_ALPHA = 0.05
"""Level of the guard's one-sided exact sign test (AMC solves more tasks than Best-of-N)."""
GUARD_RULE = (
    f"AMC kept iff n >= {MIN_GUARD_TASKS} validation tasks and the one-sided exact sign "
    f"(McNemar) test on the tasks where AMC and Best-of-N disagree gives p <= {GUARD_ALPHA:g}"
)


@dataclass(frozen=True)
class Entry:
    """One row of the comparison: a method, the policy it runs and the critic it uses.

    Text form: ``METHOD[{critic=CRITIC}][=POLICY]``, e.g. ``amc:8:critic``,
    ``single=trained:runs/g2po``, ``smc:8:critic{critic=judge}``,
    ``amc:8:critic{critic=runs/critic}``. CRITIC is a critic artifact path,
    ``judge`` (the evaluation's own policy rates the histories, zero-shot),
    ``judge:POLICY`` (another model judges) or ``zero``.

    Attributes:
        spec: The method.
        policy: A policy spec for this entry only (``None``: the evaluation's policy),
            e.g. ``trained:runs/g2po`` for an RL-trained agent.
        critic: A critic for this entry only (``None``: the evaluation's ``--critic``).
    """

    spec: MethodSpec
    policy: str | None = None
    critic: str | None = None

    @classmethod
    def parse(cls, text: str) -> Entry:
        """Parse the text form (see the class docstring).

        The method's own ``key=value`` settings (``amc:8:beta=0.3=trained:runs/g2po``)
        are not taken for the policy separator.

        Raises:
            ConfigError: An empty ``=POLICY``, an unclosed ``{``, or an option other
                than ``critic=``.
        """
        critic, rest = cls._critic_option(text)
        method, policy = cls.split(rest)
        if policy == "":
            raise ConfigError(f"method {text!r}: nothing after '='; expected METHOD=POLICY")
        return cls(MethodSpec.parse(method), policy, critic)

    @staticmethod
    def _critic_option(text: str) -> tuple[str | None, str]:
        """``(critic or None, text without its {critic=...} option)``."""
        if "{" not in text:
            return None, text
        start = text.index("{")
        end = text.find("}", start)
        if end < 0:
            raise ConfigError(f"method {text!r}: '{{' without '}}'; e.g. amc:8{{critic=PATH}}")
        key, sep, value = text[start + 1 : end].partition("=")
        if key.strip() != "critic" or not sep or not value.strip():
            raise ConfigError(
                f"method {text!r}: the only option is {{critic=PATH|judge|judge:POLICY|zero}}"
            )
        return value.strip(), text[:start] + text[end + 1 :]

    @classmethod
    def split(cls, text: str) -> tuple[str, str | None]:
        """``(method, policy)`` of ``METHOD[{...}][=POLICY]`` (policy ``None`` when absent)."""
        text = cls._critic_option(text)[1]
        for index, char in enumerate(text):
            if char == "=":
                key = text[:index].rsplit(":", 1)[-1].strip().lower()
                if key not in SETTINGS:
                    return text[:index], text[index + 1 :]
        return text, None

    @property
    def label(self) -> str:
        label = self.spec.label if self.policy is None else f"{self.spec.label}[{self.policy}]"
        return label if self.critic is None else f"{label}{{critic={self.critic}}}"


def check_budget(budget: Budget, entry: Entry) -> None:
    """Reject a method whose first step alone exceeds the calls cap (K calls per step).

    Raises:
        ConfigError: Naming the method, its K and the cap.
    """
    if budget.max_calls is not None and entry.spec.particles > budget.max_calls:
        raise ConfigError(
            f"method {entry.label} needs {entry.spec.particles} policy calls per step, "
            f"more than the budget of {budget.max_calls} calls per task; lower K or raise "
            "--budget"
        )


@dataclass(frozen=True)
class GuardResult:
    """The do-no-harm check of one AMC entry on validation tasks.

    Attributes:
        label: The AMC entry.
        baseline: Its Best-of-N yardstick.
        n_tasks: Validation tasks both ran on.
        amc_success: AMC's success rate there.
        baseline_success: Best-of-N's success rate there.
        trusted: Whether AMC runs on the test split.
        only_amc: Tasks only AMC solved.
        only_baseline: Tasks only Best-of-N solved.
        p_value: One-sided exact sign test of "AMC solves more".
        rule: The decision rule, in words.
    """

    label: str
    baseline: str
    n_tasks: int
    amc_success: float
    baseline_success: float
    trusted: bool
    only_amc: int = 0
    only_baseline: int = 0
    p_value: float = 1.0
    rule: str = GUARD_RULE

    @property
    def reason(self) -> str:
        verdict = "kept" if self.trusted else f"replaced by {self.baseline} on the test split"
        return (
            f"{self.label}: on {self.n_tasks} validation tasks AMC solved "
            f"{self.amc_success:.0%} vs {self.baseline_success:.0%} for {self.baseline} "
            f"at equal budget (only AMC {self.only_amc}, only Best-of-N {self.only_baseline}, "
            f"one-sided sign test p = {self.p_value:.3g}); {verdict}. Rule: {self.rule}"
        )


def guard_decision(
    amc: Sequence[bool],
    baseline: Sequence[bool],
    *,
    label: str = "amc",
    baseline_label: str = "bon",
) -> GuardResult:
    """Apply the do-no-harm rule to paired validation outcomes (same tasks, same order).

    Args:
        amc: AMC's success per validation task.
        baseline: Best-of-N's success on the same tasks.
        label: AMC's label (for the reason).
        baseline_label: Best-of-N's label.

    Returns:
        The :class:`GuardResult`; ``trusted`` iff ``n >= MIN_GUARD_TASKS`` and
        the one-sided exact sign test gives ``p <= GUARD_ALPHA``.

    Example:
        >>> guard_decision([True] * 5 + [False] * 25, [False] * 30).trusted
        True
        >>> guard_decision([True] * 5 + [False] * 24, [False] * 29).trusted  # too few tasks
        False
    """
    ours, theirs = np.asarray(amc, dtype=bool), np.asarray(baseline, dtype=bool)
    if ours.shape != theirs.shape:
        raise ValueError(f"paired outcomes differ in shape: {ours.shape} vs {theirs.shape}")
    test = mcnemar(ours, theirs, alternative="greater")
    n = len(ours)
    return GuardResult(
        label,
        baseline_label,
        n,
        float(ours.mean()) if n else 0.0,
        float(theirs.mean()) if n else 0.0,
        trusted=n >= MIN_GUARD_TASKS and test.p_value <= GUARD_ALPHA,
        only_amc=test.only_a,
        only_baseline=test.only_b,
        p_value=test.p_value,
    )


@dataclass(frozen=True)
class Plan:
    """What an evaluation runs.

    Attributes:
        entries: The methods to compare.
        split: Name of the split the tasks come from (named in every table).
        task_ids: The tasks.
        seed: Root seed; task ``t`` uses ``task_rng(seed, stable_index(t))`` for every method.
        budget: Per-task caps for every method, with what ``calls`` counts (every
            request sent, retries included, as billed, or only answered ones);
            ``None``: no cap.
        guard_task_ids: Validation tasks for the do-no-harm check (empty: no check).
        temperature: Policy sampling temperature.
    """

    entries: tuple[Entry, ...]
    split: str
    task_ids: tuple[str, ...]
    seed: int = 0
    budget: Budget | None = None
    guard_task_ids: tuple[str, ...] = ()
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not self.entries:
            raise ConfigError("no methods to evaluate; pass e.g. --methods single bon:8 amc:8")
        labels = [e.label for e in self.entries]
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        if duplicates:
            raise ConfigError(f"method(s) listed twice: {', '.join(duplicates)}")
        if not self.task_ids:
            raise ConfigError(f"no tasks selected from split {self.split!r}")
        if self.budget is not None:
            for entry in self.entries:
                check_budget(self.budget, entry)

    def guarded(self) -> list[Entry]:
        """Entries that get the do-no-harm check."""
        if not self.guard_task_ids:
            return []
        return [e for e in self.entries if e.spec.kind == "amc" and e.spec.select in DEPLOYABLE]


def stable_index(task_id: str) -> int:
    """A task's seed index: a hash of its id, so it does not depend on list order."""
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "little")


def baseline_of(entry: Entry) -> Entry:
    """Best-of-N with the same K, selection mode and policy: the do-no-harm yardstick."""
    spec = replace(entry.spec, kind="bon")
    return Entry(spec, entry.policy, entry.critic)


def fallback_label(entry: Entry) -> str:
    return "amc→" + baseline_of(entry).label


def row(result: EpisodeResult, *, label: str, split: str, synthetic: bool) -> dict[str, Any]:
    """The flat result row summaries and reports read (see :mod:`agentmc.eval.summary`)."""
    diagnostics = result.diagnostics or {}
    failed = int(diagnostics.get("failed_particles", 0) or 0)
    return {
        "method": label,
        "selection": result.selection,
        "split": split,
        "task_id": result.task_id,
        "success": bool(result.success),
        "return": float(result.reward),
        "steps": int(result.steps),
        "calls": int(result.calls),
        "tokens": int(result.prompt_tokens + result.completion_tokens),
        "cost": result.cost,
        "judge_calls": result.judge_calls,
        "judge_tokens": result.judge_tokens,
        "critic_cpu_s": result.critic_cpu_s,
        "total_calls": int(result.calls) + result.judge_calls,
        "total_tokens": int(result.prompt_tokens + result.completion_tokens) + result.judge_tokens,
        "total_cost": _total_cost(result),
        "wall_s": float(result.wall_s),
        "synthetic": synthetic,
        "budget_exhausted": bool(diagnostics.get("budget_exhausted", False)),
        "failed_particles": failed,
        "error": f"{failed} particle(s) failed" if failed else None,
        "attempts": int(diagnostics.get("attempts", result.calls) or 0),
        "retries": int(diagnostics.get("retries", 0) or 0),
        "infrastructure_failed": bool(diagnostics.get("infrastructure_failed", False)),
    }


def result_record(
    result: EpisodeResult, *, label: str, split: str, synthetic: bool
) -> dict[str, Any]:
    """A result record of ``agentmc eval`` and ``agentmc run``: the row plus the episode."""
    return row(result, label=label, split=split, synthetic=synthetic) | {
        "episode": result.to_dict()
    }


def _total_cost(result: EpisodeResult) -> float | None:
    """Agent plus judge dollars (``None`` when either is unknown)."""
    judge = (result.critic_spend or {}).get("cost", 0.0)
    if result.cost is None or judge is None:
        return None
    return float(result.cost) + float(judge)


PolicyFactory = Callable[[str | None], Policy]
EnvFactory = Callable[[str], Any]


@dataclass
class Evaluation:
    """Runs a :class:`Plan` into a run store; call :meth:`run` (resumable).

    Attributes:
        plan: What to run.
        store: Where records go.
        make_env: ``task_id -> fresh environment``.
        make_policy: ``policy spec or None -> policy`` (``None``: the shared policy);
            called once per distinct spec.
        critic: The critic AMC, SMC and critic selection use (``None``: zero critic).
        make_critic: ``entry.critic text -> critic`` for entries with their own critic
            (``{critic=...}``); called once per distinct text.
        workers: (entry, task) units in flight at once.
        progress: Show progress bars.
        limits: Caps on reply and action length (default :class:`~agentmc.rollout.ReplyLimits`).
    """

    plan: Plan
    store: RunStore
    make_env: EnvFactory
    make_policy: PolicyFactory
    critic: Any = None
    workers: int = 4
    progress: bool = True
    make_critic: Callable[[str], Any] | None = None
    limits: ReplyLimits | None = None
    _policies: dict[str | None, Policy] = field(default_factory=dict, init=False)
    _critics: dict[str, Any] = field(default_factory=dict, init=False)
    counts: RunCounts | None = field(default=None, init=False)
    """What the last :meth:`run` did (``failed``: units left to a re-run)."""
    n_units: int = field(default=0, init=False)

    def critic_for(self, entry: Entry) -> Any:
        """The entry's own critic, else the evaluation's."""
        if entry.critic is None:
            return self.critic
        if entry.critic not in self._critics:
            if self.make_critic is None:
                raise ConfigError(f"method {entry.label} names a critic but none can be loaded")
            self._critics[entry.critic] = self.make_critic(entry.critic)
        return self._critics[entry.critic]

    def policy(self, spec: str | None) -> Policy:
        if spec not in self._policies:
            self._policies[spec] = self.make_policy(spec)
        return self._policies[spec]

    async def _episode(self, entry: Entry, task_id: str) -> EpisodeResult:
        plan = self.plan
        return await arun_method(
            entry.spec,
            lambda: self.make_env(task_id),
            self.policy(entry.policy),
            task_rng(plan.seed, stable_index(task_id)),
            critic=self.critic_for(entry),
            budget=plan.budget,
            temperature=plan.temperature,
            task_id=task_id,
            limits=self.limits,
        )

    async def _run_phase(
        self, kind: str, split: str, pairs: Sequence[tuple[Entry, str, str]], description: str
    ) -> RunCounts:
        """Run ``(entry, label, task)`` units not yet in the store as records of ``kind``."""

        async def work(unit: Unit) -> tuple[str, dict[str, Any]]:
            entry, label, task_id = unit.payload
            result = await self._episode(entry, task_id)
            synthetic = bool(getattr(self.policy(entry.policy), "synthetic", False))
            return kind, result_record(result, label=label, split=split, synthetic=synthetic)

        units = [Unit(f"{kind}/{label}/{task}", (e, label, task)) for e, label, task in pairs]
        return await run_units(
            self.store,
            units,
            work,
            workers=self.workers,
            description=description,
            progress=self.progress,
            summary=_running_summary,
        )

    async def guard(self) -> list[GuardResult]:
        """The do-no-harm check on validation tasks (cached in the store)."""
        guarded = self.plan.guarded()
        if not guarded:
            return []
        pairs: list[tuple[Entry, str, str]] = []
        for entry in guarded:
            base = baseline_of(entry)
            for task in self.plan.guard_task_ids:
                pairs.append((entry, entry.label, task))
                pairs.append((base, base.label, task))
        unique = list({(label, task): (e, label, task) for e, label, task in pairs}.values())
        counts = await self._run_phase(
            "guard", "validation", unique, "do-no-harm check (validation)"
        )
        # the check compares methods task by task: with units missing it cannot decide
        check_complete(counts, len(unique), "units of the do-no-harm check (validation)")
        success: dict[tuple[str, str], bool] = {
            (d["method"], d["task_id"]): bool(d["success"])
            for d in (r["data"] for r in self.store.records("guard"))
        }
        results = []
        decided = self.store.done_keys("guard-decision")
        for entry in guarded:
            baseline = baseline_of(entry).label
            ours = [success[(entry.label, t)] for t in self.plan.guard_task_ids]
            theirs = [success[(baseline, t)] for t in self.plan.guard_task_ids]
            result = guard_decision(ours, theirs, label=entry.label, baseline_label=baseline)
            if f"decision/{entry.label}" not in decided:
                data = dataclasses.asdict(result) | {"reason": result.reason}
                self.store.append("guard-decision", data, key=f"decision/{entry.label}")
            results.append(result)
        return results

    async def run(self) -> tuple[list[dict[str, Any]], list[GuardResult]]:
        """Run the guard (if any), then every entry on every task; returns rows and guards."""
        guards = {g.label: g for g in await self.guard()}
        pairs = []
        for entry in self.plan.entries:
            check = guards.get(entry.label)
            if check is not None and not check.trusted:
                runs, label = baseline_of(entry), fallback_label(entry)
            else:
                runs, label = entry, entry.label
            pairs += [(runs, label, task) for task in self.plan.task_ids]
        self.counts = await self._run_phase(
            "result", self.plan.split, pairs, f"evaluating ({self.plan.split})"
        )
        self.n_units = len(pairs)
        rows = [_strip(r["data"]) for r in self.store.records("result")]
        return rows, list(guards.values())


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "episode"}


def _running_summary(records: list[dict[str, Any]]) -> str:
    by_method: dict[str, list[bool]] = {}
    for r in records:
        by_method.setdefault(r["method"], []).append(bool(r["success"]))
    return "  ".join(f"{m} {sum(v)}/{len(v)}" for m, v in by_method.items())


def build_report(
    store: RunStore, rng: np.random.Generator, *, critic: Any = None, title: str | None = None
) -> Report:
    """Everything a report shows, read back from an evaluation's run store.

    Args:
        store: A run written by :class:`Evaluation` (``agentmc eval`` / ``demo``) or by
            ``agentmc run``.
        rng: Generator for the bootstrap intervals.
        critic: If given, its values on the states of the ``single`` runs' trajectories
            are paired with their final success for the calibration plot.
        title: Report title (default: from the run's command).
    """
    # `agentmc eval` / `demo` write "result" records, `agentmc run` writes "episode" ones
    records = [r["data"] for r in store.records() if r["kind"] in ("result", "episode")]
    if not records:
        raise DataError(f"{store.path}: no evaluation results to report on")
    order = {label: i for i, label in enumerate(store.meta.config.get("methods", []))}

    def position(method: str) -> int:
        if method.startswith("amc→bon"):
            method = "amc" + method[len("amc→bon") :]
        return order.get(method, len(order))

    records.sort(key=lambda r: position(r["method"]))
    rows = [_strip(r) for r in records]
    summaries = summarize(rows, rng)
    methods = [s.method for s in summaries]
    baseline = next((m for m in methods if m == "single"), methods[0])
    comparisons = [compare(rows, m, baseline, rng) for m in methods if m != baseline]
    notes = [r["data"]["reason"] for r in store.records("guard-decision")]
    ess: dict[str, list[list[float]]] = {}
    for record in records:
        trace = _ess_trace(record.get("episode", {}))
        if trace:
            ess.setdefault(record["method"], []).append(trace)
    calibration = None
    if critic is not None:
        calibration = _calibration(critic, [r for r in records if r["method"] == baseline])
    meta = store.meta
    config = meta.config
    details = {
        "split": ", ".join(sorted({str(r["split"]) for r in rows})),
        "tasks": len({r["task_id"] for r in rows}),
        "policy": config.get("policy", {}).get("policy", "?"),
        "budget": config.get("budget") or "none (every method reports what it spent)",
        "seed": meta.seed,
        "run": str(store.path),
    }
    ranking = candidate_ranking(records)
    if ranking:
        details["critic ranking of finished candidates (within task)"] = ranking
    from agentmc.eval.report import critic_details

    return Report(
        title=title or f"agentmc {meta.command}: {', '.join(methods)}",
        summaries=summaries,
        comparisons=comparisons,
        rows=rows,
        details=details,
        notes=notes,
        ess=ess,
        calibration=calibration,
        records=records,
        critic=critic_details(config.get("critic")),
    )


def candidate_ranking(records: Sequence[dict[str, Any]]) -> str:
    """How well each method's critic ordered its own K final candidates, task by task.

    Over pairs of candidates of one task with different outcomes (solved or not),
    the share the critic scored the solved one higher (ties half): the within-task
    AUROC of the critic on the finished attempts this evaluation produced, which
    is what critic selection acted on. Empty when no method scored candidates.
    """
    from agentmc.critics.evaluate import pair_concordance

    parts = []
    methods: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        episode = record.get("episode") or {}
        if episode.get("candidate_values") and len(episode["candidate_values"]) > 1:
            methods.setdefault(record["method"], []).append(episode)
    for method, episodes in methods.items():
        values, solved, groups = [], [], []
        for index, episode in enumerate(episodes):
            values += episode["candidate_values"]
            solved += [float(r > 0) for r in episode["candidates_rewards"]]
            groups += [index] * len(episode["candidate_values"])
        score, pairs, _ = pair_concordance(np.array(values), np.array(solved), groups)
        if score is not None:
            parts.append(f"{method}: AUROC {score:.2f} over {pairs} pairs")
    return "; ".join(parts)


def _ess_trace(episode: dict[str, Any]) -> list[float]:
    """ESS / K before each resampling decision, from an episode's SMC diagnostics."""
    diagnostics = episode.get("diagnostics") or {}
    k = (diagnostics.get("config") or {}).get("n_particles") or 0
    if k <= 1 or diagnostics.get("config", {}).get("schedule") in (None, "none"):
        return []
    return [float(c["ess"]) / k for c in diagnostics.get("checkpoints") or []]


def _calibration(critic: Any, records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Critic values of every state of the given runs' trajectories, and their final success."""
    histories, outcomes = [], []
    for record in records:
        trajectory = Trajectory.from_dict(record["episode"]["trajectory"])
        for n in range(len(trajectory.turns)):
            histories.append(History.from_trajectory(trajectory, n))
            outcomes.append(float(record["success"]))
    if not histories:
        return np.zeros(0), np.zeros(0)
    return np.asarray(critic.values(histories), dtype=float), np.asarray(outcomes)
