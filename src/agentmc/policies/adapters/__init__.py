"""LoRA adapters that ship with agentmc: the embedded model, trained for one environment.

An environment with a shipped adapter makes the plain ``local`` policy spec
mean the embedded SmolLM2-135M *with* that adapter, in the decoding mode and
prompt it was trained with; ``local:MODE`` is always the bare model. Each
adapter is a llama.cpp LoRA GGUF beside a manifest, ``<env_id>.json``, that
records how it was built (the commands, the commit, the seeds), what it was
trained on (the training split only), its SHA-256 and where it was measured.

The one adapter today, ``textcraft-g2po``, is the fine-tuned prior of ``agentmc
sft`` after two iterations of G2PO (``agentmc train --policy lm``) on
TextCraft's training split: on the 54 validation tasks it beats a uniformly
random valid action, where the bare model loses to it
(``bench/results/local_policy.json``).

Example:
    >>> adapter = shipped_adapter("textcraft")
    >>> adapter.name, adapter.mode, adapter.path.suffix
    ('textcraft-g2po', 'choose', '.gguf')
    >>> shipped_adapter("webshop") is None
    True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from agentmc.errors import DataError
from agentmc.policies.prompts import PromptFormat

__all__ = ["ShippedAdapter", "shipped_adapter"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShippedAdapter:
    """A shipped adapter and the settings it was trained with.

    Attributes:
        name: Its name in policy names, e.g. ``"textcraft-g2po"``.
        path: The llama.cpp LoRA GGUF.
        mode: The ``local`` decoding mode its training episodes were played in.
        prompt: The prompt format it was trained on.
        sha256: The GGUF's SHA-256, as the manifest records it.
        manifest: The whole manifest (provenance and measurements).
    """

    name: str
    path: Path
    mode: str
    prompt: PromptFormat
    sha256: str
    manifest: dict[str, Any]

    def verify(self) -> None:
        """Check the file against the manifest's SHA-256.

        Raises:
            DataError: The file is missing or differs (a partial checkout, or an
                adapter rebuilt without updating the manifest).
        """
        try:
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError as error:
            raise DataError(f"shipped adapter {self.name}: {error}") from None
        if digest != self.sha256:
            raise DataError(
                f"shipped adapter {self.path} does not match its manifest "
                f"(sha256 {digest[:12]}..., expected {self.sha256[:12]}...)"
            )


@cache
def shipped_adapter(env_id: str) -> ShippedAdapter | None:
    """The adapter shipped for ``env_id``, or ``None`` if there is none.

    The file is checked against the manifest's SHA-256 once per process.

    Raises:
        DataError: The manifest exists but is unreadable or names no file, or the
            file does not match it.
    """
    manifest_path = HERE / f"{env_id}.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        adapter = ShippedAdapter(
            name=manifest["name"],
            path=HERE / manifest["file"],
            mode=manifest["mode"],
            prompt=PromptFormat(**manifest["prompt"]),
            sha256=manifest["sha256"],
            manifest=manifest,
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"cannot read the adapter manifest {manifest_path}: {error}") from None
    if not adapter.path.is_file():
        raise DataError(f"the shipped adapter {adapter.path} is missing (a partial install?)")
    adapter.verify()
    return adapter
