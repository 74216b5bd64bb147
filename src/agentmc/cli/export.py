r"""``agentmc export RUN_DIR``: a run's records as Parquet or CSV tables, optionally tracked.

Writes ``results`` (one row per method and task), ``steps`` (one row per step
of each selected trajectory) and ``particles`` (one row per particle per step
of SMC-family runs) into ``RUN_DIR/export`` (see :mod:`agentmc.eval.export`).
``--track mlflow`` / ``--track wandb`` also logs the run's config, metrics and
report to an experiment tracker (see :mod:`agentmc.eval.tracking`).

Example:
    agentmc export runs/eval --format parquet
    agentmc export runs/eval --format csv --out /tmp/tables --track mlflow
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from agentmc.cli.common import parse


@dataclass(frozen=True)
class Config:
    """Export a run's records as Parquet or CSV tables."""

    run: Annotated[Path, tyro.conf.Positional]
    """Run directory (from `agentmc eval`, `demo`, `run`, `rollout` or `collect`)."""
    format: Literal["parquet", "csv"] = "parquet"
    """`parquet` (needs agentmc[export]) or `csv` (no extra needed)."""
    out: Path | None = None
    """Where to write the tables (default: RUN_DIR/export)."""
    track: Literal["none", "mlflow", "wandb"] = "none"
    """Also log config, metrics and report to MLflow (agentmc[mlflow]) or W&B (agentmc[wandb])."""
    track_project: str = "agentmc"
    """MLflow experiment / W&B project name for --track."""


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    from agentmc.data.store import RunStore
    from agentmc.errors import require
    from agentmc.eval.export import run_tables, write_tables
    from agentmc.eval.tracking import track_run

    store = RunStore.open(config.run)
    if config.track != "none":
        require(config.track, config.track)  # before writing anything
    tables = run_tables(store)
    paths = write_tables(tables, config.out or store.path / "export", config.format)
    for path in paths:
        rows = len(tables[path.name.split(".")[0]])
        print(f"wrote {path} ({rows} rows)")
    logged = track_run(store, config.track, project=config.track_project)
    if logged:
        print(f"logged to {logged}")
    return 0
