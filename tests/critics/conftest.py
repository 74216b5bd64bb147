"""Synthetic crafting-like trajectories whose success is predictable from the text.

Each task needs ``need`` useful steps. Every step is useful ("Got ..."/"Crafted
...") with a task-specific probability, else a failure ("Could not find ...").
Reaching ``need`` useful steps terminates with reward 1; ``max_steps`` steps
truncate. A good critic therefore ranks states by useful steps so far, task
difficulty and steps left. All data is synthetic (policy label "synthetic-test").
"""

from __future__ import annotations

import numpy as np
import pytest

from agentmc.data.trajectory import Trajectory, Turn

ITEMS = ["oak log", "oak planks", "stick", "cobblestone", "iron ingot", "string", "wool"]


def synthetic_trajectories(
    n_tasks: int,
    samples_per_task: int,
    seed: int = 0,
    *,
    env_id: str = "synthetic-craft",
    max_steps: int = 10,
) -> list[Trajectory]:
    rng = np.random.default_rng(seed)
    out = []
    for task in range(n_tasks):
        goal = ITEMS[task % len(ITEMS)]
        need = 3 + task % 4
        p_good = 0.25 + 0.5 * ((task * 7919) % 11) / 10
        text = f"Crafting commands: craft {goal} using things.\nGoal: craft {goal} (task {task})."
        for sample in range(samples_per_task):
            turns, good = [], 0
            for step in range(max_steps):
                item = ITEMS[int(rng.integers(len(ITEMS)))]
                if rng.random() < p_good:
                    good += 1
                    action, obs = (
                        (f"get 1 {item}", f"Got 1 {item}")
                        if step % 2 == 0
                        else (f"craft {item}", f"Crafted 1 minecraft:{item.replace(' ', '_')}")
                    )
                else:
                    action, obs = f"get 1 {item}", f"Could not find {item}"
                done = good >= need
                truncated = not done and step == max_steps - 1
                turns.append(
                    Turn(
                        reply=f"Action: {action}",
                        action=action,
                        observation=obs,
                        reward=1.0 if done else 0.0,
                        terminated=done,
                        truncated=truncated,
                    )
                )
                if done:
                    break
            out.append(
                Trajectory(
                    env_id=env_id,
                    task_id=str(task),
                    task=text,
                    turns=tuple(turns),
                    policy="synthetic-test",
                    synthetic=True,
                    success=good >= need,
                    seed=sample,
                )
            )
    return out


@pytest.fixture(scope="session")
def craft_data() -> list[Trajectory]:
    return synthetic_trajectories(40, 4, seed=1)


@pytest.fixture(scope="session")
def craft_heldout() -> list[Trajectory]:
    return synthetic_trajectories(60, 3, seed=2)[40 * 3 :]


@pytest.fixture(scope="session")
def tiny_transformer(tmp_path_factory, craft_data):
    """A randomly initialised 2-layer BERT (hidden 32) with a word-level tokenizer, on disk.

    The vocabulary is the words of the synthetic trajectories, so nothing is
    downloaded; skipped when the torch extra is absent.
    """
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    from agentmc.critics.core import History
    from agentmc.critics.text import render

    words: set[str] = set()
    pre = pre_tokenizers.BertPreTokenizer()
    for trajectory in craft_data[:40]:
        text = render(History.from_trajectory(trajectory), 50)
        words.update(token for token, _ in pre.pre_tokenize_str(text))
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *sorted(words)])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre
    path = tmp_path_factory.mktemp("tiny-bert")
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]"
    ).save_pretrained(path)
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    transformers.BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def make_trajectories():
    """:func:`synthetic_trajectories` itself, for tests that need their own draws."""
    return synthetic_trajectories
