"""Benchmark result files: ``bench/results/<name>.json`` (design.md section 9)."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    from agentmc import __version__

    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        revision = None
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "agentmc": __version__,
        "git_revision": revision,
    }


def write_result(name: str, metrics: dict, units: dict, config: dict) -> Path:
    """Write one benchmark result and return its path (a non-finite metric is written as null)."""
    metrics = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()
    }
    missing = set(metrics) - set(units)
    if missing:
        raise ValueError(f"metrics without units: {sorted(missing)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {
        "benchmark": name,
        "metrics": metrics,
        "units": units,
        "config": config,
        "machine": machine(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(json.dumps(metrics, indent=2))
    return path
