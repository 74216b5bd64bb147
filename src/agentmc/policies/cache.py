"""On-disk request cache: an interrupted evaluation does not pay twice.

A request (model, endpoint, prompt, sampling parameters, seed) is hashed into
a key; its completions are stored in one small JSON file per key under the
cache directory (``ab/abcdef....json``), written atomically (temporary file,
then rename), so a crash never leaves a half-written entry and several
processes may share the directory.

Only seeded requests are cached: a request without a seed asks for a fresh
random sample each time, and replaying one would silently turn independent
samples into copies. The API key is never part of the key or the file.

A cache hit returns the completions with the usage the original call
reported: budgets compare methods by what a call costs, and a resumed run must
count the same cost as an uninterrupted one. The policy counts hits
separately, which is what was actually spent.

Example:
    >>> import tempfile
    >>> from agentmc.policies.core import Completion
    >>> cache = RequestCache(tempfile.mkdtemp())
    >>> key = request_key({"model": "m", "prompt": "hi", "seed": 1})
    >>> cache.get(key) is None
    True
    >>> cache.put(key, [Completion("hello")])
    >>> [c.text for c in cache.get(key)]
    ['hello']
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agentmc.errors import ConfigError
from agentmc.policies.core import Completion
from agentmc.types import Usage

__all__ = ["CACHE_FORMAT", "RequestCache", "request_key"]

CACHE_FORMAT = 1
"""Bumped when the entry layout changes; entries of other formats are ignored."""

logger = logging.getLogger(__name__)


def request_key(request: Mapping[str, Any]) -> str:
    """A stable hex digest of a JSON-serialisable request description.

    Args:
        request: Everything that determines the reply (no secrets).

    Returns:
        64 hexadecimal characters (SHA-256 of the canonical JSON).
    """
    canonical = json.dumps(
        {"format": CACHE_FORMAT, **request}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class RequestCache:
    """Completions stored by request key in a directory.

    Args:
        directory: Where entries live; created if missing.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        # created on the first put: building a policy writes nothing
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(f"cache directory {str(self.directory)!r} is a file")

    def __repr__(self) -> str:
        return f"RequestCache({str(self.directory)!r})"

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[Completion] | None:
        """The stored completions, or ``None`` on a miss (or an unreadable entry)."""
        path = self._path(key)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            logger.warning("ignoring unreadable cache entry %s: %s", path, error)
            return None
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            return None
        try:
            return [
                Completion(c["text"], c.get("logprob"), Usage.from_dict(c.get("usage", {})))
                for c in data["completions"]
            ]
        except (KeyError, TypeError, ValueError) as error:
            logger.warning("ignoring malformed cache entry %s: %s", path, error)
            return None

    def put(self, key: str, completions: Sequence[Completion]) -> None:
        """Store ``completions`` under ``key`` atomically (last writer wins)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # the cache saves money; it never stops a run
            logger.warning("request cache %s is not writable: %s", self.directory, error)
            return
        record = {
            "format": CACHE_FORMAT,
            "completions": [
                {"text": c.text, "logprob": c.logprob, "usage": c.usage.as_dict()}
                for c in completions
            ],
        }
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(record, file)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        if not self.directory.is_dir():
            return 0
        return sum(1 for _ in self.directory.glob("??/*.json"))
