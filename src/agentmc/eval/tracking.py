"""Optional experiment tracking: log a run's config, metrics and report to MLflow or W&B.

Off by default and never required: ``--track mlflow`` (extra ``agentmc[mlflow]``)
or ``--track wandb`` (extra ``agentmc[wandb]``) on ``agentmc eval``, ``run`` and
``export``. A missing library is a one-line error naming the extra, raised
before anything is logged. What is logged, from the run directory alone:

- parameters: the run's command, seed, package version, git revision and its
  config (flattened to ``a.b.c`` keys);
- metrics: per method, success rate with its 95% interval, mean return, calls,
  tokens, cost and wall time per task (keys ``<method>/<metric>``, with
  characters the trackers reject replaced by ``_``);
- artifacts: ``report.html``, ``report.md``, the plots and the per-task pages,
  when the run directory (or ``report_dir``) has them, plus ``run.json``.

Where it goes is each library's own configuration: MLflow's
``MLFLOW_TRACKING_URI`` (a tracking server, or a local folder ``file:/path/mlruns``,
which MLflow 3 accepts with ``MLFLOW_ALLOW_FILE_STORE=true``), W&B's login or
``WANDB_MODE=offline``. A tracker that fails is one line on stderr; the run
directory is untouched and can be logged again later with ``agentmc export``.

Example:
    >>> flatten({"tasks": {"env": "textcraft", "ids": [1, 2]}, "seed": 0})
    {'tasks.env': 'textcraft', 'tasks.ids': '[1, 2]', 'seed': 0}
    >>> metric_key("single[trained:runs/g2po]", "success")
    'single_trained_runs/g2po_/success'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentmc.data.store import RunStore
from agentmc.errors import AgentmcError, ConfigError, require

__all__ = [
    "TRACKERS",
    "Tracker",
    "TrackingError",
    "flatten",
    "metric_key",
    "run_metrics",
    "track_run",
]


class TrackingError(AgentmcError):
    """An experiment tracker refused the run or could not be reached."""

Tracker = Literal["none", "mlflow", "wandb"]
TRACKERS = ("none", "mlflow", "wandb")
#: Longest parameter value logged (MLflow refuses longer ones).
MAX_PARAM = 500


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> ``{"a.b": value}``; lists and long values become JSON text."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(list(value))[:MAX_PARAM]
        elif isinstance(value, str):
            out[name] = value[:MAX_PARAM]
        else:
            out[name] = value
    return out


def metric_key(method: str, metric: str) -> str:
    """A metric name both trackers accept: ``<method>/<metric>``, odd characters as ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", method) + "/" + metric


def run_metrics(store: RunStore, seed: int = 0) -> dict[str, float]:
    """Per-method summary metrics of a run (see the module docstring); finite values only."""
    from agentmc.eval.summary import summarize

    rows = [
        {k: v for k, v in r["data"].items() if k != "episode"}
        for r in store.records()
        if r["kind"] in ("result", "episode")
    ]
    if not rows:
        trajectories = store.trajectories()
        rows = [
            {
                "method": t.policy,
                "task_id": t.task_id,
                "success": t.success,
                "return": t.total_return,
                "steps": t.n_steps,
                "calls": t.usage.calls,
                "tokens": t.usage.tokens,
                "cost": t.usage.cost,
                "wall_s": None,
            }
            for t in trajectories
        ]
    metrics: dict[str, float] = {}
    for s in summarize(rows, np.random.default_rng(seed)) if rows else []:
        values = {
            "success": s.success.value,
            "success_low": s.success.low,
            "success_high": s.success.high,
            "mean_return": s.mean_return.value,
            "calls_per_task": s.calls.value,
            "tokens_per_task": s.tokens.value,
            "cost_per_task": s.cost.value,
            "wall_s_per_task": s.wall_s.value,
            "tasks": float(s.n_tasks),
        }
        for name, value in values.items():
            if value is not None and np.isfinite(value):
                metrics[metric_key(s.method, name)] = float(value)
    return metrics


def _artifacts(store: RunStore, report_dir: Path | None) -> list[Path]:
    directory = report_dir or store.path
    names = ["report.html", "report.md", "summary.json"]
    files = [directory / n for n in names if (directory / n).is_file()]
    files += sorted(directory.glob("*.png"))
    files.append(store.path / "run.json")
    return files


def _run_name(store: RunStore) -> str:
    return f"agentmc-{store.meta.command}-{store.path.name}"


def _params(store: RunStore) -> dict[str, Any]:
    meta = store.meta
    params = {
        "command": meta.command,
        "seed": meta.seed,
        "agentmc_version": meta.agentmc_version,
        "git_revision": meta.git_revision or "unknown",
    }
    params.update(flatten(meta.config, "config."))
    return {k: ("null" if v is None else v) for k, v in params.items()}


def _mlflow(store: RunStore, project: str, metrics: dict[str, float], report_dir: Path | None):
    mlflow = require("mlflow", "mlflow")
    mlflow.set_experiment(project)
    with mlflow.start_run(run_name=_run_name(store)) as run:
        mlflow.log_params(_params(store))
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"agentmc.run_dir": str(store.path.resolve())})
        for path in _artifacts(store, report_dir):
            mlflow.log_artifact(str(path))
        tasks = (report_dir or store.path) / "tasks"
        if tasks.is_dir():
            mlflow.log_artifacts(str(tasks), artifact_path="tasks")
        return f"mlflow run {run.info.run_id} (experiment {project!r}, {mlflow.get_tracking_uri()})"


def _wandb(store: RunStore, project: str, metrics: dict[str, float], report_dir: Path | None):
    wandb = require("wandb", "wandb")
    run = wandb.init(project=project, name=_run_name(store), config=_params(store), reinit=True)
    try:
        run.summary.update(metrics)
        artifact = wandb.Artifact(f"{_run_name(store)}-report", type="report")
        for path in _artifacts(store, report_dir):
            artifact.add_file(str(path))
        tasks = (report_dir or store.path) / "tasks"
        if tasks.is_dir():
            artifact.add_dir(str(tasks), name="tasks")
        run.log_artifact(artifact)
        report = (report_dir or store.path) / "report.html"
        if report.is_file():
            run.log({"report": wandb.Html(report.read_text(encoding="utf-8"))})
        return f"wandb run {run.id} (project {project!r})"
    finally:
        run.finish()


def track_run(
    store: RunStore,
    tracker: Tracker,
    *,
    project: str = "agentmc",
    report_dir: str | Path | None = None,
) -> str | None:
    """Log ``store`` to ``tracker``; returns a one-line description (``None`` for ``"none"``).

    Raises:
        ConfigError: Unknown tracker.
        MissingExtraError: The tracker's library is not installed (nothing was logged).
        TrackingError: The tracker refused or could not be reached.
    """
    if tracker not in TRACKERS:
        raise ConfigError(f"unknown tracker {tracker!r}: choose one of {', '.join(TRACKERS)}")
    if tracker == "none":
        return None
    require(tracker, tracker)  # a missing library fails before any work
    metrics = run_metrics(store)
    directory = None if report_dir is None else Path(report_dir)
    log = _mlflow if tracker == "mlflow" else _wandb
    try:
        return log(store, project, metrics, directory)
    except Exception as error:  # the tracker's own errors: unreachable server, refused store
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrackingError(
            f"{tracker} logging failed ({first}); the run directory {store.path} is intact, "
            f"log it later with `agentmc export {store.path} --track {tracker}`"
        ) from None
