"""Critic artifacts: a directory with ``critic.json`` and the model files.

``save(critic, path)`` writes::

    path/
      critic.json     format version, backend, config, env id, package version,
                      training-data fingerprint, metrics, sha256 of every file
      model files     backend-specific (numpy .npz, safetensors, adapter configs)

``load(path, env_id=...)`` checks everything before building the critic: the
format version, the environment (a critic trained on one environment is
refused for another), and the sha256 of every model file (a corrupt or
truncated artifact is refused with a one-line :class:`DataError`, never a
traceback from deep inside a model loader).

No backend uses pickle: linear models are stored as numpy arrays (``.npz``
loaded with ``allow_pickle=False``) and neural ones as safetensors, so loading
an artifact from elsewhere cannot run code.

The training-data fingerprint (:func:`fingerprint`) is the sha256 over the
sorted canonical JSON of the training trajectories: two critics trained on the
same trajectories, in any order, record the same fingerprint.

Example:
    >>> import tempfile
    >>> from agentmc.critics.hashed import HashedCritic, HashedConfig  # doctest: +SKIP
    >>> critic = HashedCritic.train(train, val, HashedConfig(), rng)   # doctest: +SKIP
    >>> save(critic, tempfile.mkdtemp() + "/critic")                   # doctest: +SKIP
    >>> load(path, env_id="textcraft").values(histories)               # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agentmc.critics.core import History
from agentmc.errors import DataError, UnknownNameError
from agentmc.types import FloatArray

if TYPE_CHECKING:
    from agentmc.data.trajectory import Trajectory

log = logging.getLogger("agentmc")

#: Version of the artifact layout; bumped when an old reader could misread a new artifact.
FORMAT_VERSION = 1
META_FILE = "critic.json"

#: backend name -> "module:Class" of a :class:`TrainableCritic`, imported on use.
BACKENDS: dict[str, str] = {
    "hashed": "agentmc.critics.hashed:HashedCritic",
    "embedding": "agentmc.critics.embedding:EmbeddingCritic",
    "lora": "agentmc.critics.lora:LoraCritic",
    "judge": "agentmc.critics.judge:JudgeCritic",
}


@dataclass(frozen=True)
class Provenance:
    """Where a trained critic comes from.

    Attributes:
        env_id: Environment of the training trajectories.
        target: What it predicts (``"return"``, ``"success"``, ``"td"``).
        last_turns: Window N of turns the critic reads.
        data_fingerprint: :func:`fingerprint` of the training trajectories.
        n_trajectories: Training trajectories (train and validation together).
        n_examples: Training states (train split only).
        metrics: Validation metrics measured at training time.
        synthetic_data: True if the training trajectories came from a stand-in policy.
        train_tasks: Task ids the model was fitted on (sorted); for a refreshed
            critic, those of every version in its lineage.
        val_tasks: Task ids held out for validation and model selection (sorted; all
            versions).
        version: 1 for a critic trained from scratch, parent's + 1 for a refresh.
        parent: The critic this one was warm-started from (``path``, ``version``,
            ``data_fingerprint``, ``created``), else ``None``.
        lineage: One entry per version, oldest first: ``version``,
            ``data_fingerprint`` and the ``data`` directories it learned from.
    """

    env_id: str
    target: str
    last_turns: int
    data_fingerprint: str
    n_trajectories: int = 0
    n_examples: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    synthetic_data: bool = False
    train_tasks: list[str] = field(default_factory=list)
    val_tasks: list[str] = field(default_factory=list)
    version: int = 1
    parent: dict[str, Any] | None = None
    lineage: list[dict[str, Any]] = field(default_factory=list)


class TrainableCritic(Protocol):
    """What a backend implements to be trained, saved and loaded."""

    name: str
    provenance: Provenance

    def values(self, histories: Sequence[History]) -> FloatArray: ...

    def config_dict(self) -> dict[str, Any]:
        """The backend config, JSON-safe (recorded in ``critic.json``)."""
        ...

    def libraries(self) -> dict[str, str]:
        """Versions of the libraries the model files depend on."""
        ...

    def save_files(self, directory: Path) -> None:
        """Write the model files into ``directory`` (which exists and is empty)."""
        ...

    @classmethod
    def load_files(
        cls, directory: Path, config: dict[str, Any], provenance: Provenance
    ) -> TrainableCritic:
        """Rebuild the critic from files already checked against their sha256."""
        ...


def backend_class(name: str) -> type[TrainableCritic]:
    """The critic class of a backend, imported on first use.

    Raises:
        UnknownNameError: If ``name`` is not a backend.
        MissingExtraError: If the backend's extra is not installed.
    """
    if name not in BACKENDS:
        raise UnknownNameError(f"unknown critic backend {name!r}; choose from {sorted(BACKENDS)}")
    module, _, attribute = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def fingerprint(trajectories: Sequence[Trajectory]) -> str:
    """``"sha256:<hex>"`` over the sorted canonical JSON of ``trajectories``.

    Independent of the order of the trajectories.
    """
    lines = sorted(
        json.dumps(t.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        for t in trajectories
    )
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(critic: TrainableCritic, path: str | Path) -> Path:
    """Write ``critic`` as an artifact directory at ``path``.

    The directory is written next to ``path`` first and moved into place, so a
    crash never leaves a half-written artifact under ``path``. An existing
    artifact at ``path`` is replaced; any other existing non-empty directory is
    refused.

    Replacing takes two renames: the finished new artifact becomes
    ``.NAME.new``, then the old one moves to ``.NAME.old`` and ``.NAME.new`` to
    ``path``. A process killed in between leaves those names behind, and the
    next :func:`save` or :func:`load` finishes the swap (:func:`recover`), so
    ``path`` is never lost. Artifacts get ordinary permissions (the umask's),
    so others can read a shared critic.

    Raises:
        DataError: If ``path`` holds something that is not a critic artifact, or
            cannot be written.
    """
    from agentmc import __version__

    path = Path(path)
    try:
        recover(path)
    except OSError as error:
        raise DataError(f"cannot write critic artifact {path}: {error}") from None
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not _is_artifact(path))):
        raise DataError(f"{path} exists and is not a critic artifact; choose another --out")
    new, old = _swap_names(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700: others could not read it
        critic.save_files(staging)
        files = {
            str(p.relative_to(staging)): file_sha256(p)
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        meta = {
            "format_version": FORMAT_VERSION,
            "backend": critic.name,
            "config": critic.config_dict(),
            "env_id": critic.provenance.env_id,
            "agentmc_version": __version__,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "provenance": asdict(critic.provenance),
            "libraries": critic.libraries(),
            "files": files,
        }
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(new, ignore_errors=True)
        staging.rename(new)  # complete from here on: recover() rolls it forward
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        new.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        raise DataError(f"cannot write critic artifact {path}: {error}") from None
    return path


def _swap_names(path: Path) -> tuple[Path, Path]:
    """The hidden siblings a replacing :func:`save` uses: the new artifact, the old one."""
    return path.with_name(f".{path.name}.new"), path.with_name(f".{path.name}.old")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def recover(path: str | Path) -> None:
    """Finish a replacing :func:`save` that was killed between its renames.

    With ``path`` missing, a complete ``.NAME.new`` is moved into place (roll
    forward), else ``.NAME.old`` is moved back (roll back). Leftovers of an
    interrupted save (``.NAME.old`` once ``path`` exists, staging directories
    ``.NAME.tmp-*`` an hour old) are removed. Nothing happens without leftovers.
    """
    path = Path(path)
    new, old = _swap_names(path)
    if not path.exists():
        if _is_artifact(new):
            new.rename(path)
            log.warning("critic %s: finished an interrupted save", path)
        elif _is_artifact(old):
            old.rename(path)
            log.warning("critic %s: rolled back an interrupted save", path)
    if path.exists():
        for leftover in (new, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    if path.parent.is_dir():
        cutoff = time.time() - 3600  # a staging directory this old belongs to a dead save
        for staging in path.parent.glob(f".{path.name}.tmp-*"):
            if staging.is_dir() and staging.stat().st_mtime < cutoff:
                shutil.rmtree(staging, ignore_errors=True)


def _is_artifact(path: Path) -> bool:
    return (path / META_FILE).is_file()


def read_meta(path: str | Path) -> dict[str, Any]:
    """Read and check ``critic.json`` (format, files present and intact).

    Raises:
        DataError: Missing, corrupt, truncated or incompatible artifact.
    """
    from agentmc import __version__

    path = Path(path)
    try:
        recover(path)
    except OSError as error:  # e.g. a read-only directory: read what is there
        log.warning("critic %s: could not finish an interrupted save (%s)", path, error)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise DataError(f"{path} is not a critic artifact (no {META_FILE}); train one first")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        version = meta["format_version"]
        backend, files = meta["backend"], meta["files"]
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise ValueError("'files' must map file names to sha256 digests")
        if not isinstance(meta["provenance"], dict):
            raise ValueError("'provenance' must be an object")
        Provenance(**meta["provenance"])
        dict(meta["config"])
    except OSError as error:
        raise DataError(f"cannot read {meta_path}: {error.strerror or error}") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise DataError(
            f"{meta_path} is corrupt or truncated ({error}); retrain the critic"
        ) from None
    if version != FORMAT_VERSION:
        raise DataError(
            f"critic {path} has artifact format {version} (written by agentmc "
            f"{meta.get('agentmc_version')}); agentmc {__version__} reads format "
            f"{FORMAT_VERSION}: retrain it with this version"
        )
    if backend not in BACKENDS:
        raise DataError(
            f"critic {path} uses unknown backend {backend!r}; known: {sorted(BACKENDS)}"
        )
    for name, expected in sorted(files.items()):
        file = path / name
        if not file.is_file():
            raise DataError(
                f"critic {path} is incomplete: {name} is missing; retrain or re-copy it"
            )
        try:
            digest = file_sha256(file)
        except OSError as error:
            raise DataError(f"cannot read {file}: {error.strerror or error}") from None
        if digest != expected:
            raise DataError(
                f"critic {path} is corrupt or truncated: {name} does not match the sha256 "
                f"recorded in {META_FILE}; retrain or re-copy it"
            )
    return meta


def load(path: str | Path, *, env_id: str | None = None) -> TrainableCritic:
    """Load a critic artifact, checking its version, environment and file hashes.

    Args:
        path: The artifact directory written by :func:`save`.
        env_id: If given, the environment the critic will be used on; a critic
            trained on another environment is refused.

    Returns:
        The critic, ready to call ``values``.

    Raises:
        DataError: Missing, corrupt, truncated or incompatible artifact, or
            trained for another environment.
        MissingExtraError: The backend's extra is not installed.
    """
    path = Path(path)
    meta = read_meta(path)  # finishes an interrupted save first
    if env_id is not None and meta["env_id"] != env_id:
        raise DataError(
            f"critic {path} was trained on environment {meta['env_id']!r}, "
            f"not {env_id!r}; train one on {env_id!r} trajectories"
        )
    cls = backend_class(meta["backend"])
    _warn_on_library_drift(path, meta.get("libraries") or {})
    provenance = Provenance(**meta["provenance"])
    try:
        return cls.load_files(path, dict(meta["config"]), provenance)
    except (KeyError, ValueError, TypeError, RuntimeError, OSError, zipfile.BadZipFile) as error:
        raise DataError(f"critic {path} could not be loaded ({error}); retrain it") from None


def _warn_on_library_drift(path: Path, recorded: dict[str, str]) -> None:
    """Log one warning if installed libraries differ from those the critic was saved with.

    Model files are plain arrays (no pickle), so a different version still loads;
    numerics (tokenizers, hash functions, kernels) may shift slightly, which is
    worth knowing when comparing runs.
    """
    from importlib.metadata import PackageNotFoundError, version

    drift = []
    for name, saved in sorted(recorded.items()):
        try:
            now = version(name)
        except PackageNotFoundError:
            continue
        if now.split("+")[0] != str(saved).split("+")[0]:
            drift.append(f"{name} {saved} -> {now}")
    if drift:
        log.warning("critic %s was saved with other library versions: %s", path, "; ".join(drift))
