"""Run records as flat tables for pandas, Spark or a spreadsheet: Parquet or CSV.

:func:`run_tables` reads a run directory (``agentmc eval``, ``demo``, ``run``,
``rollout`` or ``collect``) and returns three tables, each a list of flat rows:

``results``
    One row per (method, task): the result row every report reads (method,
    selection mode, split, success, return, steps, calls, tokens, cost, wall
    time, synthetic, failures) plus the episode's K, resampling count,
    log-evidence, stop reason and selected particle. For a rollout/collect run,
    one row per trajectory (``method`` is the policy name).
``steps``
    One row per step of each selected (or recorded) trajectory: action, reply,
    observation, reward, terminated/truncated, parsed, and that step's usage.
``particles``
    One row per (method, task, step, particle) of SMC-family runs: the action
    the particle took, its return so far, whether it was done, its weight and
    critic value at a checkpoint, and its ancestor when the step resampled.

:func:`write_tables` writes them as ``<name>.parquet`` (needs ``agentmc[export]``)
or ``<name>.csv`` (standard library only), atomically.

Example:
    >>> import tempfile
    >>> store = RunStore.create_or_resume(tempfile.mkdtemp(), command="rollout", seed=0, config={})
    >>> store.append("trajectory", {"env_id": "toy", "task_id": "1", "task": "t", "turns": [],
    ...                             "policy": "p", "synthetic": True}, key="1/0")
    >>> tables = run_tables(store)
    >>> len(tables["results"]), tables["results"][0]["method"], tables["particles"]
    (1, 'p', [])
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from agentmc.data.store import RunStore
from agentmc.errors import ConfigError, DataError, require

__all__ = ["FORMATS", "run_tables", "write_tables"]

Format = Literal["parquet", "csv"]
FORMATS = ("parquet", "csv")
Table = list[dict[str, Any]]

RESULT_FIELDS = (
    "method",
    "selection",
    "split",
    "task_id",
    "success",
    "return",
    "steps",
    "calls",
    "tokens",
    "cost",
    "wall_s",
    "synthetic",
    "budget_exhausted",
    "failed_particles",
    "error",
)


def _finite(value: Any) -> Any:
    """NaN and infinities become null: Parquet and CSV readers disagree on them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _result_row(data: dict[str, Any]) -> dict[str, Any]:
    episode = data.get("episode") or {}
    diagnostics = episode.get("diagnostics") or {}
    config = diagnostics.get("config") or {}
    row = {name: data.get(name) for name in RESULT_FIELDS}
    row["task_id"] = str(row["task_id"])
    beta = config.get("beta")
    row.update(
        {
            "kind": diagnostics.get("kind"),
            "particles": config.get("n_particles"),
            "beta": None if beta is None else float(beta),
            "schedule": config.get("schedule"),
            "resampler": config.get("resampler"),
            "prompt_tokens": episode.get("prompt_tokens"),
            "completion_tokens": episode.get("completion_tokens"),
            "n_resamplings": diagnostics.get("n_resamplings"),
            "log_evidence": diagnostics.get("log_evidence"),
            "stop_reason": diagnostics.get("stop_reason"),
            "selected_particle": diagnostics.get("selected"),
            "policy": diagnostics.get("policy"),
            "critic": diagnostics.get("critic"),
        }
    )
    return {k: _finite(v) for k, v in row.items()}


def _step_rows(method: str, task_id: str, trajectory: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for number, turn in enumerate(trajectory.get("turns") or [], 1):
        usage = turn.get("usage") or {}
        yield {
            "method": method,
            "task_id": task_id,
            "step": number,
            "action": turn.get("action"),
            "reply": turn.get("reply"),
            "observation": turn.get("observation"),
            "reward": _finite(float(turn.get("reward", 0.0))),
            "terminated": bool(turn.get("terminated", False)),
            "truncated": bool(turn.get("truncated", False)),
            "parsed": bool(turn.get("parsed", True)),
            "calls": usage.get("calls"),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "cost": _finite(usage.get("cost")),
        }


def _particle_rows(method: str, task_id: str, episode: dict[str, Any]) -> Iterable[dict[str, Any]]:
    diagnostics = episode.get("diagnostics") or {}
    checkpoints = {int(c["t"]): c for c in diagnostics.get("checkpoints") or []}
    ancestors = {int(e["t"]): e["ancestors"] for e in diagnostics.get("genealogy") or []}
    for step in diagnostics.get("particles") or []:
        t = int(step["t"])
        checkpoint = checkpoints.get(t) or {}
        log_weights = checkpoint.get("log_weights") or []
        values = checkpoint.get("values") or []
        for i, action in enumerate(step["actions"]):
            yield {
                "method": method,
                "task_id": task_id,
                "step": t,
                "particle": i,
                "action": action,
                "return_so_far": _finite(float(step["rewards"][i])),
                "done": bool(step["done"][i]),
                "success": bool(step["success"][i]),
                "failed": bool(step["failed"][i]),
                "checkpoint": bool(checkpoint),
                "log_weight": _finite(log_weights[i]) if i < len(log_weights) else None,
                "critic_value": _finite(values[i]) if i < len(values) else None,
                "resampled": t in ancestors,
                # particle i after this step's resampling continues this old particle
                "ancestor": int(ancestors[t][i]) if t in ancestors else None,
            }


def run_tables(store: RunStore) -> dict[str, Table]:
    """The ``results``, ``steps`` and ``particles`` tables of a run (see the module docstring).

    Raises:
        DataError: The run has neither results nor trajectories.
    """
    results: Table = []
    steps: Table = []
    particles: Table = []
    for record in store.records():
        data = record["data"]
        if record["kind"] in ("result", "episode"):
            row = _result_row(data)
            results.append(row)
            episode = data.get("episode") or {}
            steps.extend(_step_rows(row["method"], row["task_id"], episode.get("trajectory") or {}))
            particles.extend(_particle_rows(row["method"], row["task_id"], episode))
        elif record["kind"] == "trajectory":
            meta = data.get("meta") or {}
            method = str(data.get("policy", "?"))
            task_id = str(data["task_id"])
            usage = data.get("usage") or {}
            results.append(
                {
                    "method": method,
                    "selection": "none",
                    "split": meta.get("split"),
                    "task_id": task_id,
                    "sample": meta.get("sample"),
                    "success": bool(data.get("success")),
                    "return": _finite(data.get("return")),
                    "steps": data.get("n_steps"),
                    "calls": usage.get("calls"),
                    "tokens": (usage.get("prompt_tokens") or 0)
                    + (usage.get("completion_tokens") or 0),
                    "cost": _finite(usage.get("cost")),
                    "synthetic": bool(data.get("synthetic")),
                    "error": data.get("error"),
                }
            )
            for row in _step_rows(method, task_id, data):
                row["sample"] = meta.get("sample")
                steps.append(row)
    if not results:
        raise DataError(f"{store.path}: no results or trajectories to export")
    return {"results": results, "steps": steps, "particles": particles}


def _columns(rows: Table) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def _write_csv(path: Path, rows: Table) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=_columns(rows))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()}
            )


def _write_parquet(path: Path, rows: Table) -> None:
    pa = require("pyarrow", "export")
    import pyarrow.parquet as pq

    columns = _columns(rows)
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    pq.write_table(table, path)


def write_tables(tables: dict[str, Table], out_dir: str | Path, fmt: Format) -> list[Path]:
    """Write each non-empty table as ``out_dir/<name>.<fmt>``; returns the paths.

    Each file is written next to its final name and renamed into place, so an
    interrupted export never leaves a half-written file under the final name.

    Raises:
        ConfigError: Unknown format.
        MissingExtraError: Parquet without pyarrow.
        DataError: ``out_dir`` cannot be written.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: choose {' or '.join(FORMATS)}")
    if fmt == "parquet":
        require("pyarrow", "export")  # fail before writing anything
    out_dir = Path(out_dir)
    written = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, rows in tables.items():
            if not rows:
                continue
            path = out_dir / f"{name}.{fmt}"
            tmp = out_dir / f".{name}.{fmt}.tmp"
            (_write_parquet if fmt == "parquet" else _write_csv)(tmp, rows)
            os.replace(tmp, path)
            written.append(path)
    except OSError as error:
        raise DataError(f"cannot write to {out_dir}: {error.strerror or error}") from None
    return written
