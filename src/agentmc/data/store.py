"""Append-only run records: one directory per run, resumable.

A run directory holds ``run.json`` (what produced it: command, root seed,
config, package version, git revision, creation time) and ``records.jsonl``,
one JSON object per line: ``{"kind": ..., "key": ..., "data": {...}}``. Every
record is flushed as soon as it is written, so a killed run loses at most the
line being written. Keys name units of work (``"single/17/0"``); a resumed run
skips the keys that are already done.

Reading tolerates a truncated last line (a run killed mid-write): it is
reported and skipped. Before appending to such a file the fragment is moved to
``records.partial`` so that new records start on a clean line and nothing is
silently dropped. A corrupt line anywhere else is an error that names the
file and line, and nothing is modified.

Example:
    >>> import tempfile
    >>> store = RunStore.create_or_resume(tempfile.mkdtemp(), command="demo", seed=0, config={})
    >>> store.append("note", {"text": "hello"}, key="n/0")
    >>> store.done_keys("note")
    {'n/0'}
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentmc.data.trajectory import Trajectory
from agentmc.errors import DataError

FORMAT_VERSION = 1
META_FILE = "run.json"
RECORDS_FILE = "records.jsonl"
PARTIAL_FILE = "records.partial"

log = logging.getLogger("agentmc")


def git_revision() -> str | None:
    """The git revision of the agentmc source tree, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass(frozen=True)
class RunMeta:
    """What produced a run directory."""

    command: str
    seed: int
    config: dict[str, Any]
    agentmc_version: str
    format_version: int
    git_revision: str | None
    python: str
    created: str

    @classmethod
    def new(cls, command: str, seed: int, config: dict[str, Any]) -> RunMeta:
        from agentmc import __version__

        return cls(
            command=command,
            seed=seed,
            config=config,
            agentmc_version=__version__,
            format_version=FORMAT_VERSION,
            git_revision=git_revision(),
            python=platform.python_version(),
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        )


def _json_safe(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, default=str))


class RunStore:
    """A run directory: metadata plus append-only records. See the module docstring."""

    def __init__(self, path: str | Path, meta: RunMeta) -> None:
        self.path = Path(path)
        self.meta = meta
        self.truncated_tail: str | None = None

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS_FILE

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> RunStore:
        """Open an existing run directory (for reading or resuming)."""
        path = Path(path)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise DataError(f"{path} is not an agentmc run directory (no {META_FILE})")
        try:
            raw = json.loads(meta_path.read_text(encoding="utf-8"))
            meta = RunMeta(**raw)
        except OSError as error:
            raise DataError(f"cannot read {meta_path}: {error.strerror or error}") from None
        except (ValueError, TypeError) as error:
            raise DataError(f"{meta_path}: unreadable run metadata ({error})") from None
        if meta.format_version != FORMAT_VERSION:
            from agentmc import __version__

            raise DataError(
                f"{path} was written by agentmc {meta.agentmc_version} (run format "
                f"{meta.format_version}); agentmc {__version__} reads format {FORMAT_VERSION}. "
                "Re-run into a new directory."
            )
        return cls(path, meta)

    @classmethod
    def create_or_resume(
        cls,
        path: str | Path,
        *,
        command: str,
        seed: int,
        config: dict[str, Any],
        mutable: Iterable[str] = (),
    ) -> RunStore:
        """Create a run directory, or resume one made by the same command and settings.

        Args:
            path: The run directory.
            command: The command that writes it (``"rollout"``, ``"eval"``, ...).
            seed: Root seed.
            config: Settings that determine the results (JSON-serialisable).
            mutable: Config keys allowed to differ on resume (e.g. worker counts,
                the number of tasks, which only extends the run).

        Raises:
            DataError: The directory is not writable, or it holds a different run.
        """
        path = Path(path)
        config = _json_safe(config)
        if not (path / META_FILE).exists() and any(
            (path / name).exists() for name in (RECORDS_FILE, PARTIAL_FILE)
        ):
            raise DataError(
                f"{path} holds records but no {META_FILE}, so what made them is unknown; "
                "choose a new output directory (or restore its run.json)"
            )
        if (path / META_FILE).exists():
            store = cls.open(path)
            old = store.meta
            changed = sorted(
                key
                for key in set(old.config) | set(config)
                if key not in set(mutable) and old.config.get(key) != config.get(key)
            )
            if old.command != command or old.seed != seed or changed:
                what = (
                    f"command {old.command!r}"
                    if old.command != command
                    else f"seed {old.seed}"
                    if old.seed != seed
                    else ", ".join(
                        f"{k}={old.config.get(k)!r} (now {config.get(k)!r})" for k in changed
                    )
                )
                raise DataError(
                    f"{path} holds a run made with different settings ({what}); "
                    "choose a new output directory to start a fresh run"
                )
            return store
        try:
            path.mkdir(parents=True, exist_ok=True)
            meta = RunMeta.new(command, seed, config)
            tmp = path / (META_FILE + ".tmp")
            tmp.write_text(json.dumps(asdict(meta), indent=2) + "\n", encoding="utf-8")
            tmp.replace(path / META_FILE)
        except OSError as error:
            raise DataError(f"cannot write to {path}: {error.strerror or error}") from None
        return cls(path, meta)

    # -- writing -----------------------------------------------------------------------

    def _repair_tail(self) -> None:
        """Move a truncated last line aside so that appends start on a fresh line."""
        path = self.records_path
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            data = path.read_bytes()
            cut = data.rfind(b"\n") + 1
            with (self.path / PARTIAL_FILE).open("ab") as partial:
                partial.write(data[cut:] + b"\n")
            handle.truncate(cut)
        log.warning("%s: moved a truncated last record to %s", path, PARTIAL_FILE)

    def append(self, kind: str, data: dict[str, Any], *, key: str | None = None) -> None:
        """Append one record and flush it to disk."""
        line = json.dumps({"kind": kind, "key": key, "data": data}, ensure_ascii=False)
        try:
            self._repair_tail()
            with self.records_path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
                out.flush()
                os.fsync(out.fileno())
        except OSError as error:
            raise DataError(f"cannot write to {self.records_path}: {error}") from None

    def write_trajectory(self, trajectory: Trajectory, *, key: str, kind: str = "trajectory"):
        """Append a trajectory record."""
        self.append(kind, trajectory.to_dict(), key=key)

    # -- reading -----------------------------------------------------------------------

    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Yield records (``{"kind", "key", "data"}``), optionally of one kind.

        Raises:
            DataError: The file cannot be read, or a line other than a torn last
                one is not a JSON record (bad UTF-8 included); names file and line.
        """
        path = self.records_path
        self.truncated_tail = None
        try:
            if not path.exists():
                return
            data = path.read_bytes()
        except OSError as error:
            raise DataError(f"cannot read {path}: {error.strerror or error}") from None
        lines = data.split(b"\n")
        torn = lines.pop()  # after the last newline: empty unless the last write was cut
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict) or "kind" not in record:
                    raise ValueError("not a record object")
            except ValueError as error:  # UnicodeDecodeError is a ValueError
                raise DataError(
                    f"{path}:{number}: corrupt record ({error}); the file was not modified"
                ) from None
            if kind is None or record["kind"] == kind:
                yield record
        if torn.strip():
            # A kill mid-write leaves a fragment without its newline, possibly cut inside
            # a multi-byte character: skipped here, moved aside before the next append.
            self.truncated_tail = torn.decode("utf-8", errors="replace")
            log.warning("%s: ignoring a truncated last line (%d bytes)", path, len(torn))

    def trajectories(self, kind: str = "trajectory") -> list[Trajectory]:
        """All trajectory records, in the order written."""
        try:
            return [Trajectory.from_dict(r["data"]) for r in self.records(kind)]
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{self.records_path}: malformed trajectory ({error})") from None

    def done_keys(self, kind: str | None = None) -> set[str]:
        """Keys of the records already written (what a resumed run skips)."""
        return {r["key"] for r in self.records(kind) if r.get("key") is not None}

    def compact(self) -> None:
        """Rewrite ``records.jsonl`` in canonical order (kind, then natural key order).

        Records are appended in completion order, which depends on timing; after a
        run finishes, compaction makes the file a deterministic function of the
        seed and settings (same seed, same bytes). The rewrite is atomic: a crash
        leaves either the old or the new file, never a mix.
        """
        records = list(self.records())
        ordered = sorted(records, key=lambda r: (r["kind"], natural_key(r.get("key") or "")))
        if ordered == records and self.truncated_tail is None:
            return  # already canonical: nothing to write (the directory may be read-only)
        tmp = self.path / (RECORDS_FILE + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as out:
                for record in ordered:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
            if self.truncated_tail is not None:
                self._repair_tail()  # keep the torn fragment in records.partial
            tmp.replace(self.records_path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise DataError(
                f"cannot rewrite {self.records_path}: {error.strerror or error}"
            ) from None


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers numerically: ``"t/2" < "t/10"``."""
    import re

    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
