"""Tuned, not hand-set: choose AMC's beta, schedule and deployable selection on validation tasks.

AMC has settings the paper hand-tuned: the temperature ``beta``, the
resampling schedule (a checkpoint set such as ``steps:4``, or an ESS
threshold) and, in deployment, how the answer is picked (``critic`` or
``weight``; both hide the true reward). :func:`tune_specs` expands one method
into a grid of fully specified methods; an evaluation runs all of them on
*validation* tasks at the budget the test evaluation will use (same tasks and
seeds for every grid point), and :func:`choose` picks the one that solved the
most tasks (ties: fewer policy calls, then grid order). The grid, every
point's validation figures and the choice are recorded (``agentmc tune``
writes them to ``tuned.json``), and ``agentmc eval --tuned tuned.json`` runs
the chosen spec on the test split. Choosing on the test split would be
selection on the outcome; choosing on validation keeps the test figures honest.

A deployable method is tuned over deployable selections only, and a
``reward``-selection method over ``reward`` only: the grid never mixes
selection modes.

Example:
    >>> base = MethodSpec.parse("amc:8:critic")
    >>> grid = TuneGrid(betas=(0.3, 1.0), schedules=("steps:4", "ess:0.5"))
    >>> [s.text for s in tune_specs(base, grid)][:3]
    ['amc:8:critic:beta=0.3:steps=4', 'amc:8:critic:beta=0.3:ess=0.5', 'amc:8:critic:steps=4']
    >>> len(tune_specs(base, grid))  # 2 betas x 2 schedules x 2 deployable selections
    8
    >>> choose(base, tune_specs(base, grid)[:2], {"amc@critic-k8-beta0.3-steps:4": [1, 0],
    ...     "amc@critic-k8-beta0.3-ess:0.5": [1, 1]}).chosen
    'amc:8:critic:beta=0.3:ess=0.5'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.errors import ConfigError, DataError
from agentmc.methods import SELECTS, MethodSpec
from agentmc.smc.sampler import SMCConfig, check_beta
from agentmc.smc.selection import DEPLOYABLE

__all__ = [
    "DEFAULT_BETAS",
    "DEFAULT_SCHEDULES",
    "TUNED_FILE",
    "TuneChoice",
    "TuneGrid",
    "choose",
    "read_tuned",
    "tune_specs",
]

TUNED_FILE = "tuned.json"
"""The file ``agentmc tune`` writes its choices to, in its run directory."""

DEFAULT_BETAS: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0)
"""Betas tried by default: greedy to mild tilts (rewards and critic values are in [0, 1];
bench/amc_deployable chose 0.03 in every TextCraft cell)."""
DEFAULT_SCHEDULES: tuple[str, ...] = ("every", "steps:4", "steps:3,6,9,12", "ess:0.5")
"""Every step, checkpoint sets (the paper's kind) and one ESS threshold."""


@dataclass(frozen=True)
class TuneGrid:
    """The settings to try.

    Attributes:
        betas: Temperatures of the target, each > 0.
        schedules: Schedule specs (see :func:`agentmc.smc.parse_schedule`).
        selects: Selection modes to try; empty: the spec's own mode for
            ``reward`` specs, both deployable modes for deployable ones.
    """

    betas: tuple[float, ...] = DEFAULT_BETAS
    schedules: tuple[str, ...] = DEFAULT_SCHEDULES
    selects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.betas:
            raise ConfigError("tune needs at least one beta, e.g. --betas 0.1 1")
        if not self.schedules:
            raise ConfigError("tune needs at least one schedule, e.g. --schedules every steps:4")
        for beta in self.betas:
            try:
                check_beta(beta)
            except ConfigError as error:
                raise ConfigError(f"tune betas {list(self.betas)}: {error}") from None
        for schedule in self.schedules:
            SMCConfig(schedule=schedule, max_steps=None)
        for select in self.selects:
            if select not in SELECTS:
                raise ConfigError(f"tune selects must be in {', '.join(SELECTS)}, got {select!r}")


def tune_specs(base: MethodSpec, grid: TuneGrid) -> list[MethodSpec]:
    """The grid around ``base`` (its kind, K and resampler), in a fixed order, without repeats.

    Raises:
        ConfigError: ``base`` is not SMC/AMC (nothing to tune), or the grid mixes
            deployable and ``reward`` selection for it.
    """
    if base.kind not in ("smc", "amc"):
        raise ConfigError(f"method {base.label} has no beta or schedule to tune; use smc or amc")
    deployable = base.select in DEPLOYABLE
    selects = grid.selects or (DEPLOYABLE if deployable else (base.select,))
    if any((s in DEPLOYABLE) != deployable for s in selects):
        raise ConfigError(
            f"method {base.label}: tune selections {list(selects)} mix reward and deployable "
            "modes; a deployable method is tuned over critic/weight only"
        )
    specs: dict[MethodSpec, None] = {}
    for select in selects:
        for beta in grid.betas:
            for schedule in grid.schedules:
                settings = replace(base.smc, beta=float(beta), schedule=schedule)
                specs[MethodSpec(base.kind, select=select, smc=settings)] = None  # type: ignore[arg-type]
    return list(specs)


@dataclass(frozen=True)
class TuneChoice:
    """The outcome of tuning one method on validation tasks.

    Attributes:
        base: The method as asked for (``MethodSpec.text``).
        chosen: The chosen fully specified method (``MethodSpec.text``).
        n_tasks: Validation tasks every grid point ran on.
        grid: One entry per grid point: ``method`` (text), ``label``, ``success``,
            ``calls`` (mean policy calls per task, ``None`` if unknown).
        rule: How the choice was made, in words.
    """

    base: str
    chosen: str
    n_tasks: int
    grid: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    rule: str = "most validation tasks solved; ties: fewer policy calls, then grid order"

    @property
    def chosen_spec(self) -> MethodSpec:
        return MethodSpec.parse(self.chosen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "chosen": self.chosen,
            "chosen_label": self.chosen_spec.label,
            "n_tasks": self.n_tasks,
            "grid": [dict(g) for g in self.grid],
            "rule": self.rule,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuneChoice:
        return cls(
            str(data["base"]),
            str(data["chosen"]),
            int(data["n_tasks"]),
            tuple(dict(g) for g in data.get("grid", ())),
            str(data.get("rule", cls.rule)),
        )


def choose(
    base: MethodSpec,
    specs: Sequence[MethodSpec],
    success: Mapping[str, Sequence[float]],
    calls: Mapping[str, Sequence[float]] | None = None,
) -> TuneChoice:
    """Pick the grid point that solved the most validation tasks.

    Args:
        base: The method being tuned.
        specs: The grid (:func:`tune_specs`), in order.
        success: Label -> success per validation task (same tasks, same order, for all).
        calls: Label -> policy calls per task (tie-break: fewer is better).

    Returns:
        The :class:`TuneChoice`, with every grid point's figures.

    Raises:
        ConfigError: A grid point has no results, or points ran on different numbers of tasks.
    """
    missing = [s.label for s in specs if s.label not in success]
    if missing:
        raise ConfigError(f"tuning results missing for {', '.join(missing)}")
    sizes = {len(success[s.label]) for s in specs}
    if len(sizes) != 1 or 0 in sizes:
        raise ConfigError(f"grid points ran on different or no task counts: {sorted(sizes)}")
    rows: list[dict[str, Any]] = []
    keys: list[tuple[float, float, int]] = []
    for index, spec in enumerate(specs):
        spent = None if calls is None or spec.label not in calls else calls[spec.label]
        mean_success = float(np.mean(success[spec.label]))
        mean_calls = None if spent is None else float(np.mean(spent))
        rows.append(
            {"method": spec.text, "label": spec.label, "success": mean_success, "calls": mean_calls}
        )
        keys.append((mean_success, -(mean_calls or 0.0), -index))
    best = max(range(len(rows)), key=keys.__getitem__)
    return TuneChoice(base.text, specs[best].text, sizes.pop(), tuple(rows))


def read_tuned(path: Path) -> dict[str, Any]:
    """Read a ``tuned.json`` (a run directory holding one is accepted too).

    Raises:
        DataError: Missing or malformed file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / TUNED_FILE
    try:
        data = json.loads(path.read_text())
        [str(c["base"]) + str(c["chosen"]) for c in data["choices"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: not a tuned.json written by agentmc tune ({error})") from None
    return data
