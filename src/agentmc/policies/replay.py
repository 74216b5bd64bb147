"""Record and replay policy calls, keyed by a hash of the request.

``ReplayPolicy`` makes runs against paid or slow models reproducible: in
``"record"`` mode it forwards each request to the wrapped policy and appends
the reply to a JSONL file; in ``"replay"`` mode it answers from that file and
fails clearly on a request it has not seen; ``"auto"`` replays what it has and
records the rest. The key covers everything that determines the reply
(messages, n, temperature, seed, candidates), so the same seed replays the same
run. Replayed calls keep the usage that was recorded, so budgets and costs of a
replayed run equal those of the original.

Example:
    >>> import asyncio, tempfile, pathlib
    >>> from agentmc.policies.scripted import ScriptedPolicy
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "calls.jsonl"
    >>> live = ScriptedPolicy(lambda m: {"wait": 1.0})
    >>> recorder = ReplayPolicy(path, live, mode="record")
    >>> asyncio.run(recorder.complete((), seed=1))[0].text
    'wait'
    >>> asyncio.run(ReplayPolicy(path, mode="replay").complete((), seed=1))[0].text
    'wait'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from agentmc.errors import ConfigError, DataError, PolicyError
from agentmc.policies.core import Completion, Policy
from agentmc.types import Message, Usage

Mode = Literal["record", "replay", "auto"]


def request_key(
    messages: Sequence[Message],
    n: int,
    temperature: float,
    seed: int | None,
    candidates: Sequence[str] | None,
) -> str:
    """Stable hash of a request (independent of process and hash seed)."""
    payload = {
        "messages": [m.as_dict() for m in messages],
        "n": n,
        "temperature": temperature,
        "seed": seed,
        "candidates": None if candidates is None else list(candidates),
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ReplayPolicy:
    """Answer requests from a recording, optionally recording new ones.

    Args:
        path: JSONL file of recorded calls (created in record/auto mode).
        policy: The live policy to record from (required unless mode is "replay").
        mode: "record", "replay" or "auto".
    """

    synthetic = True

    def __init__(self, path: str | Path, policy: Policy | None = None, mode: Mode = "auto"):
        if mode not in ("record", "replay", "auto"):
            raise ConfigError(f"mode must be 'record', 'replay' or 'auto', not {mode!r}")
        if mode != "replay" and policy is None:
            raise ConfigError(f"ReplayPolicy in {mode!r} mode needs a live policy to record from")
        self.path = Path(path)
        self.policy = policy
        self.mode = mode
        self.name = f"replay({policy.name})" if policy is not None else "replay"
        self._table = self._load()

    def _load(self) -> dict[str, list[Completion]]:
        table: dict[str, list[Completion]] = {}
        if not self.path.exists():
            if self.mode == "replay":
                raise DataError(f"no recording at {self.path}: record one with mode='record'")
            return table
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    table[record["key"]] = [
                        Completion(c["text"], c.get("logprob"), Usage.from_dict(c["usage"]))
                        for c in record["completions"]
                    ]
                except (ValueError, KeyError, TypeError) as error:
                    raise DataError(f"{self.path}:{number}: corrupt recording ({error})") from None
        return table

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        key = request_key(messages, n, temperature, seed, candidates)
        if self.mode != "record" and key in self._table:
            return list(self._table[key])
        if self.mode == "replay" or self.policy is None:
            raise PolicyError(f"no recorded reply for request {key[:12]} in {self.path}")
        completions = await self.policy.complete(
            messages, n=n, temperature=temperature, seed=seed, candidates=candidates
        )
        self._table[key] = list(completions)
        record = {
            "key": key,
            "completions": [
                {"text": c.text, "logprob": c.logprob, "usage": c.usage.as_dict()}
                for c in completions
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return completions
