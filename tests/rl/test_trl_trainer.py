"""One real TRL GRPOTrainer optimisation step with G2PO per-turn advantages (tiny random model)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("trl")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf")
datasets = pytest.importorskip("datasets")

from agentmc.rl.estimators import estimate  # noqa: E402
from agentmc.rl.graph import Episode  # noqa: E402
from agentmc.rl.trl_trainer import (  # noqa: E402
    StepCreditGRPOTrainer,
    episode_return,
    make_rollout_func,
    token_advantages_for_episodes,
)


def test_token_advantages_follow_turn_spans():
    episodes = [
        {"group": "t", "states": ["s", "a", "win"], "actions": ["x", "y"], "rewards": [0.0, 1.0],
         "terminated": True, "spans": [(0, 2), (5, 6)]},
        {"group": "t", "states": ["s", "b"], "actions": ["z"], "rewards": [0.0],
         "terminated": True, "spans": [(0, 3)]},
    ]  # fmt: skip
    got = token_advantages_for_episodes(episodes, 7, estimator="g2po")
    [want] = estimate(
        [[Episode("t", ("s", "a", "win"), ("x", "y"), np.array([0.0, 1.0])),
          Episode("t", ("s", "b"), ("z",), np.array([0.0]))]], "g2po")  # fmt: skip
    np.testing.assert_allclose(got[0], [want.steps[0][0]] * 2 + [0, 0, 0, want.steps[0][1], 0])
    np.testing.assert_allclose(got[1], [want.steps[1][0]] * 3 + [0] * 4)


def test_one_real_grpo_step_with_g2po_advantages(tmp_path, monkeypatch):
    from agentmc.errors import MissingExtraError
    from agentmc.policies.local import default_model_path

    try:
        path = default_model_path()
    except MissingExtraError as error:
        pytest.skip(str(error))
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(config)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    seen = []

    class Recording(StepCreditGRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            seen.append((inputs, output))
            return output

    args = trl_config(tmp_path)
    trainer = Recording(
        model=model,
        reward_funcs=episode_return,
        args=args,
        train_dataset=datasets.Dataset.from_dict({"prompt": ["0", "1"]}),
        processing_class=tokenizer,
        rollout_func=make_rollout_func("textcraft", max_steps=3),
        step_estimator="g2po",
    )
    trainer.train()
    assert seen, "the trainer generated and scored completions"
    inputs, output = seen[0]
    episodes = [row["agentmc_episode"] for row in inputs]
    assert len({e["group"] for e in episodes}) >= 1 and len(episodes) == 4
    want = token_advantages_for_episodes(episodes, output["completion_ids"].shape[1])
    np.testing.assert_allclose(output["advantages"].numpy(), want, rtol=1e-6)
    moved = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert moved, "one optimisation step should change the weights"


def trl_config(tmp_path):
    import trl

    return trl.GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2,
        max_steps=1, learning_rate=1e-2, use_cpu=True, report_to=[], logging_steps=1,
        save_strategy="no", max_completion_length=256, bf16=False, beta=0.0,
    )  # fmt: skip
