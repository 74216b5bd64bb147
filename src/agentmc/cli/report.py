"""``agentmc report RUN_DIR``: Markdown and self-contained HTML reports for an evaluation.

Reads the results of ``agentmc eval`` or ``agentmc demo`` back from the run
directory (nothing is re-run) and writes ``report.md``, ``report.html`` and
the PNG plots, by default next to the records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from agentmc.cli.common import parse
from agentmc.errors import ConfigError, DataError


@dataclass(frozen=True)
class Config:
    """Write Markdown and HTML reports for a run directory."""

    run: Annotated[Path, tyro.conf.Positional]
    """Run directory written by `agentmc eval` or `agentmc demo`."""
    out: Path | None = None
    """Where to write the report (default: the run directory)."""
    critic: Path | None = None
    """Critic for the calibration plot (default: the one the run used, if any)."""
    seed: int = 0
    """Seed for the bootstrap intervals."""


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    import numpy as np

    from agentmc.cli.eval import load_critic
    from agentmc.data.store import RunStore
    from agentmc.eval.harness import build_report
    from agentmc.eval.report import write_report

    out = config.out or config.run
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; the report needs a directory")
    store = RunStore.open(config.run)
    critic_path = config.critic or store.meta.config.get("critic")
    env_id = store.meta.config.get("tasks", {}).get("env", "textcraft")
    critic = load_critic(None if critic_path is None else Path(critic_path), env_id)
    report = build_report(store, np.random.default_rng(config.seed), critic=critic)
    try:
        md, html = write_report(config.out or store.path, report)
    except OSError as error:
        raise DataError(f"cannot write the report to {out}: {error.strerror or error}") from None
    print(f"wrote {md} and {html}")
    return 0
