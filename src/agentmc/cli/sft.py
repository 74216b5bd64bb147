"""``agentmc sft``: fine-tune the embedded model on an environment's scripted expert.

Trains LoRA adapters on SmolLM2-135M by behaviour cloning: states from
noisy-expert episodes on the training split, labelled with the clean expert's
action (see :mod:`agentmc.rl.sft`; needs the ``torch`` extra). The run
directory is an agent (``trained:DIR``, played through llama.cpp). Running the
same command again resumes an interrupted run; a larger ``--samples`` extends a
finished one.

Example::

    agentmc sft --out runs/sft --samples 512
    agentmc eval --policy trained:runs/sft --methods single bon:4 amc:4 --split validation
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentmc.cli.common import parse
from agentmc.errors import ConfigError


@dataclass(frozen=True)
class Config:
    """Fine-tune the embedded model on an environment's scripted expert."""

    out: Path
    """Run directory (created; an existing run with the same settings is resumed)."""
    env: str = "textcraft"
    """Environment id (it needs a registered expert and valid_actions())."""
    split: Literal["train", "validation", "test", "all"] = "train"
    """Task split whose episodes supply the states."""
    n_tasks: int | None = None
    """Use the first N tasks of the split only (default: all)."""
    episodes_per_task: int = 2
    """Noisy-expert episodes per task."""
    eps: float = 0.3
    """Per-step chance that the state-visiting expert plays a random valid action."""
    samples: int = 512
    """Labelled states to train on."""
    batch_size: int = 16
    """States per optimiser step."""
    learning_rate: float = 1e-3
    """AdamW step size."""
    lora_rank: int = 8
    """Rank of the LoRA adapters."""
    seed: int = 0
    """Root seed (episode seeds, sample order, adapter initialisation)."""
    checkpoint_every: int = 4
    """Save the checkpoint every N batches (and at the end)."""

    def __post_init__(self) -> None:
        for name in ("episodes_per_task", "samples", "batch_size", "lora_rank", "checkpoint_every"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be >= 1, got {getattr(self, name)}")
        if self.n_tasks is not None and self.n_tasks < 1:
            raise ConfigError(f"--n-tasks must be at least 1, got {self.n_tasks}")
        if not 0 <= self.eps <= 1:
            raise ConfigError(f"--eps must be in [0, 1], got {self.eps}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate must be > 0, got {self.learning_rate}")


def main(name: str, argv: list[str]) -> int:
    return run(parse(Config, name, argv))


def run(config: Config) -> int:
    from agentmc.errors import require

    require("torch", "torch")
    from agentmc.rl.lm import LoRAConfig
    from agentmc.rl.lm_trainer import LMRunDirectory
    from agentmc.rl.sft import SFTConfig, train_sft

    sft = SFTConfig(
        env_id=config.env, split=config.split, n_tasks=config.n_tasks,
        episodes_per_task=config.episodes_per_task, eps=config.eps, samples=config.samples,
        batch_size=config.batch_size, learning_rate=config.learning_rate,
        lora=LoRAConfig(rank=config.lora_rank, alpha=2.0 * config.lora_rank), seed=config.seed,
    )  # fmt: skip
    done = LMRunDirectory(config.out).done()
    if done:
        print(f"resuming {config.out} after batch {done}/{sft.n_batches}")

    def on_batch(record: dict) -> None:
        print(
            f"batch {record['batch'] + 1}/{sft.n_batches}  label log-prob "
            f"{record['log_prob']:.3f}  (uniform {record['uniform_prob']:.3f}, "
            f"label {record['label_prob']:.3f})  {record['seconds']:.0f} s",
            flush=True,
        )

    train_sft(sft, config.out, on_batch=on_batch, checkpoint_every=config.checkpoint_every)
    print(f"policy: {config.out} (use as policy spec trained:{config.out})")
    return 0
