"""A training run on disk: settings, learning curve, checkpoints, trained policy.

One directory per run, written as the run goes so that an interrupted run
loses nothing and continues where it stopped:

- ``config.json``: the :class:`~agentmc.rl.trainer.GRPOConfig` and task pool;
  a resumed run must have the same settings (only ``iterations`` may grow).
- ``history.jsonl``: one learning-curve record per iteration (``env_steps``,
  ``success_rate``, ...), appended and flushed after every iteration.
- ``checkpoint.npz``: weights, Adam moments and the iteration count, replaced
  atomically (write to a temporary file, then rename).
- ``policy.json`` + ``policy.npz``: the trained policy, loadable with
  :func:`agentmc.rl.policy.load_trained_policy` (also from the run directory).
- ``learning_curve.png``: success rate against environment steps.

Records appended after the last checkpoint belong to iterations that a resume
replays. Since the batches of iteration ``i`` depend only on ``(seed, i)`` and
the checkpoint holds the exact weights and optimiser state, the replay
reproduces them (up to wall-clock ``seconds``), so
:meth:`RunDirectory.resume_state` cuts the file back to the checkpoint and the
resumed run writes them again: the file always describes one consistent run.

Example:
    >>> import tempfile
    >>> from agentmc.rl.trainer import GRPOConfig
    >>> run = RunDirectory(tempfile.mkdtemp())
    >>> run.resume_state(GRPOConfig(iterations=2), ["0", "1"]) is None  # fresh run
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.errors import ConfigError, DataError
from agentmc.rl.optim import AdamState
from agentmc.rl.trainer import GRPOConfig, TrainState

CHECKPOINT_FORMAT = 1


def _comparable(config: GRPOConfig, tasks: Sequence[str]) -> dict[str, Any]:
    """Settings that must match for a resume (everything but ``iterations``)."""
    settings = asdict(replace(config, iterations=1))
    settings.pop("iterations")
    return {"config": settings, "tasks": list(tasks)}


class RunDirectory:
    """Files of one training run (see the module docstring for the layout).

    Args:
        path: The run directory (created on first write).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def history_path(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.npz"

    @property
    def policy_path(self) -> Path:
        return self.path / "policy.json"

    @property
    def plot_path(self) -> Path:
        return self.path / "learning_curve.png"

    def history(self) -> list[dict[str, Any]]:
        """The learning-curve records on disk (a torn last line is ignored)."""
        if not self.history_path.exists():
            return []
        lines = self.history_path.read_text().splitlines()
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):
                    break  # interrupted while writing the last line
                raise DataError(f"{self.history_path}:{number} is not valid JSON") from None
        return records

    def resume_state(self, config: GRPOConfig, tasks: Sequence[str]) -> TrainState | None:
        """Prepare the directory for ``config``; return the state to continue from.

        A new or empty directory gets ``config.json`` and returns ``None``. A
        directory of an earlier run with the same settings returns its last
        checkpoint (``None`` if it stopped before the first one).

        Raises:
            ConfigError: The directory holds a run with other settings.
            DataError: Unreadable files.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        config_file = self.path / "config.json"
        wanted = _comparable(config, tasks)
        if config_file.exists():
            try:
                saved = json.loads(config_file.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise DataError(f"cannot read {config_file}: {error}") from None
            if {k: saved.get(k) for k in wanted} != json.loads(json.dumps(wanted)):
                raise ConfigError(
                    f"{self.path} holds a run with other settings (see its config.json); "
                    "use another --out directory, or the same settings to resume"
                )
        state = self._read_checkpoint(config) if self.checkpoint_path.exists() else None
        document = {**wanted, "iterations": config.iterations}
        config_file.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        done = 0 if state is None else state.iteration
        records: dict[int, dict[str, Any]] = {}
        for record in self.history():
            records.setdefault(int(record["iteration"]), record)
        missing = [i for i in range(done) if i not in records]
        if missing:
            raise DataError(
                f"{self.history_path} lacks iterations {missing[:5]} of the checkpoint; "
                "the run directory was edited or truncated"
            )
        kept = [records[i] for i in range(done)]
        if len(kept) != len(records) or self.history_path.exists():
            self._write_history(kept)  # iterations after the checkpoint are replayed
        return None if state is None else replace(state, history=tuple(kept))

    def _write_history(self, records: Sequence[dict[str, Any]]) -> None:
        temporary = self.path / "history.tmp.jsonl"
        temporary.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        os.replace(temporary, self.history_path)

    def _read_checkpoint(self, config: GRPOConfig) -> TrainState:
        try:
            with np.load(self.checkpoint_path) as data:
                if int(data["format"]) != CHECKPOINT_FORMAT:
                    raise DataError(f"{self.checkpoint_path}: unknown checkpoint format")
                iteration = int(data["iteration"])
                weights = np.array(data["weights"])
                optimiser = AdamState(
                    np.array(data["adam_mean"]), np.array(data["adam_second"]),
                    int(data["adam_count"]),
                )  # fmt: skip
        except (OSError, ValueError, KeyError) as error:
            raise DataError(f"cannot read {self.checkpoint_path}: {error}") from None
        if iteration > config.iterations:
            raise ConfigError(
                f"{self.path} already holds {iteration} iterations; "
                f"--iterations {config.iterations} would go back"
            )
        history = tuple({"iteration": i} for i in range(iteration))
        return TrainState(iteration, weights, optimiser, history)

    def append(self, record: dict[str, Any]) -> None:
        """Append one learning-curve record and flush it to disk."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self.history_path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def save_checkpoint(self, state: TrainState) -> None:
        """Replace the checkpoint atomically."""
        temporary = self.path / "checkpoint.tmp.npz"
        np.savez_compressed(
            temporary,
            format=CHECKPOINT_FORMAT,
            iteration=state.iteration,
            weights=state.weights,
            adam_mean=state.optimiser.mean,
            adam_second=state.optimiser.second,
            adam_count=state.optimiser.step,
        )
        os.replace(temporary, self.checkpoint_path)
