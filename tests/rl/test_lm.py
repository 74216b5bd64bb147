"""LoRA policy and trainer on the embedded model's tokenizer with a tiny random model."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gguf")

from agentmc.rl.lm import LMPolicy, LoRAConfig, StepSample, batch_log_probs, trie_log_probs  # noqa: E402
from agentmc.rl.lm_trainer import LMTrainConfig, train_lm  # noqa: E402
from agentmc.rl.sft import SFTConfig, _sample, expert_steps, train_sft  # noqa: E402
from agentmc.types import Message  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    from agentmc.errors import MissingExtraError
    from agentmc.policies.local import default_model_path

    try:
        path = default_model_path()
    except MissingExtraError as error:
        pytest.skip(str(error))
    return transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def tiny_policy(tokenizer, seed=0):
    import peft

    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(config).eval()
    lora = LoRAConfig(rank=4)
    model = peft.get_peft_model(
        model,
        peft.LoraConfig(
            r=lora.rank, lora_alpha=lora.alpha, target_modules=list(lora.target_modules)
        ),
    )
    for name, parameter in model.named_parameters():  # make the adapters matter at once
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.02)
    return LMPolicy(model, tokenizer, threads=1)


def test_trie_log_probs_match_token_by_token_walk():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 3, 10, generator=generator)
    logits[1:, 0] = logits[0, 0]  # as a model gives them: same prefix, same logits
    logits[1, 1] = logits[0, 1]
    candidates = [(1, 2, 3), (1, 4), (5,)]
    got = trie_log_probs(logits, candidates).numpy()

    def lsm(values, allowed):
        return values[allowed] - torch.logsumexp(values[allowed], 0)

    # candidate 0: branch {1, 5} at token 0, branch {2, 4} at token 1, forced 3
    want0 = lsm(logits[0, 0], [1, 5])[0] + lsm(logits[0, 1], [2, 4])[0]
    want1 = lsm(logits[1, 0], [1, 5])[0] + lsm(logits[1, 1], [2, 4])[1]
    want2 = lsm(logits[2, 0], [1, 5])[1]
    np.testing.assert_allclose(got, [want0, want1, want2], rtol=1e-5)
    assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-6)
    hidden = torch.randn(3, 3, 4, generator=generator)
    weight = torch.randn(10, 4, generator=generator)
    from agentmc.rl.lm import trie_log_probs_hidden

    np.testing.assert_allclose(
        trie_log_probs_hidden(hidden, weight, candidates).numpy(),
        trie_log_probs(hidden @ weight.T, candidates).numpy(),
        rtol=1e-5,
    )


def test_policy_plays_candidates_and_batch_matches_sampling(tokenizer):
    policy = tiny_policy(tokenizer)
    messages = (
        Message("user", "Crafting commands:\ncraft 4 stick using 2 planks\n\nGoal: craft stick."),
    )
    candidates = ["inventory", "get 2 planks", "craft 4 stick using 2 planks"]
    completions = asyncio.run(policy.complete(messages, n=3, seed=1, candidates=candidates))
    assert all(c.text in candidates for c in completions)
    assert completions[0].usage.calls == 1 and completions[1].usage.calls == 0
    suffix, options = policy.encode_step(messages, candidates)
    pick = candidates.index(completions[0].text)
    sample = StepSample(suffix, options, pick, completions[0].logprob)
    chosen, full = batch_log_probs(policy, [sample])
    assert chosen[0] == pytest.approx(completions[0].logprob, abs=1e-5)
    assert np.exp(full[0]).sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "weights",
    [[[1.0, 0.0], [0.0, -0.5]], [[1.0, 0.2], [0.1, -0.5]]],
    ids=["taken-action-only", "all-candidates"],
)
def test_backward_through_shared_prefix_equals_plain_backward(tokenizer, weights):
    policy = tiny_policy(tokenizer)
    messages = (Message("user", "Goal: craft stick."),)
    suffix, options = policy.encode_step(messages, ["inventory", "get 1 oak logs"])
    samples = [StepSample(suffix, options, 0, 0.0), StepSample(suffix, options, 1, 0.0)]
    policy.model.zero_grad()
    chosen, _ = batch_log_probs(policy, samples, [np.array(w) for w in weights])
    grads = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}
    policy.model.zero_grad()
    whole = torch.tensor([list(policy.prefix) + list(suffix)])
    total = 0.0
    for sample, weight in zip(samples, weights, strict=True):
        rows = [list(whole[0]) + list(o) for o in options]
        length = max(len(r) for r in rows)
        batch = torch.tensor([r + [0] * (length - len(r)) for r in rows])
        logits = policy.model(batch).logits[:, whole.shape[1] - 1 :]
        log_probs = trie_log_probs(logits, options)
        assert float(log_probs[sample.chosen]) == pytest.approx(
            chosen[samples.index(sample)], abs=1e-5
        )
        total = total + (torch.tensor(weight) * log_probs).sum()
    total.backward()
    assert grads
    for name, parameter in policy.model.named_parameters():
        if parameter.grad is not None:
            torch.testing.assert_close(grads[name], parameter.grad, rtol=1e-4, atol=1e-6)


def test_train_lm_runs_resumes_and_saves(tokenizer, tmp_path):
    config = LMTrainConfig(
        estimator="g2po", iterations=1, tasks_per_iteration=1, group_size=2, max_steps=3,
        n_tasks=2, learning_rate=1e-2,
    )  # fmt: skip
    before = {n: p.detach().clone() for n, p in tiny_policy(tokenizer).model.named_parameters()}
    policy, history = train_lm(config, tmp_path, policy=tiny_policy(tokenizer))
    assert len(history) == 1 and history[0]["env_steps"] > 0
    changed = [n for n, p in policy.model.named_parameters() if "lora" in n
               and not torch.equal(p.detach(), before[n])]  # fmt: skip
    assert changed, "one optimisation step should move the adapters"
    longer = LMTrainConfig(**{**config.__dict__, "iterations": 2})
    _, history2 = train_lm(longer, tmp_path, policy=tiny_policy(tokenizer))
    assert [r["iteration"] for r in history2] == [0, 1]
    assert history2[0]["env_steps"] == history[0]["env_steps"]
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [0, 1]
    loaded = LMPolicy.load(
        tmp_path, base_model=(tiny_policy(tokenizer, seed=5).model.base_model.model, tokenizer)
    )
    assert loaded.name == "lm-g2po"
    with pytest.raises(Exception, match="other settings"):
        train_lm(LMTrainConfig(**{**config.__dict__, "group_size": 3}), tmp_path,
                 policy=tiny_policy(tokenizer))  # fmt: skip


def test_trained_spec_loads_a_lora_run_and_plays_it(tokenizer, tmp_path, monkeypatch):
    import agentmc.rl.lm as lm
    from agentmc.envs import make
    from agentmc.policies import make_policy
    from agentmc.rollout import arollout

    trained = tiny_policy(tokenizer)
    trained.name = "lm-g2po"
    trained.save(tmp_path)
    base = tiny_policy(tokenizer).model.base_model.model  # same seed: same base weights
    monkeypatch.setattr(lm, "load_base", lambda path=None: (base, tokenizer))
    policy = make_policy(f"trained:{tmp_path}")
    assert isinstance(policy, LMPolicy) and policy.name == "lm-g2po"
    messages = (Message("user", "Goal: craft stick."),)
    options = ["inventory", "get 1 oak logs"]
    [want] = asyncio.run(trained.complete(messages, seed=3, candidates=options))
    [got] = asyncio.run(policy.complete(messages, seed=3, candidates=options))
    assert got.text == want.text and got.logprob == pytest.approx(want.logprob, abs=1e-5)
    trajectory = asyncio.run(
        arollout(make("textcraft", task_id="0"), policy, np.random.default_rng(0), max_steps=2)
    )
    assert trajectory.n_steps > 0 and trajectory.policy == "lm-g2po"
    assert policy.usage.calls == 1 + trajectory.n_steps and policy.usage.tokens > 0
    assert policy.cpu_seconds > 0


@pytest.mark.parametrize("permuted", [True, False])
def test_exported_adapter_moves_llama_cpp_as_peft_moves_torch(tmp_path, monkeypatch, permuted):
    pytest.importorskip("llama_cpp")
    import agentmc.rl.lm as lm
    from agentmc.policies.local import LocalConfig, LocalPolicy

    torch.manual_seed(0)
    policy = LMPolicy.from_base(lora=LoRAConfig(rank=4, target_modules=("q_proj", "k_proj")))
    with torch.no_grad():
        for name, parameter in policy.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.3)
    if not permuted:  # what a converter that forgets llama.cpp's rotary row order writes
        monkeypatch.setattr(lm, "_rope_rows", lambda weights, heads: weights)
    path = lm.export_gguf_adapter(policy.model, tmp_path / "adapter.gguf")
    prompt = "Goal: craft 1 stick.\nCrafting commands:\ncraft 4 stick using 2 planks\n>"
    replies = [" get 2 oak planks\n", " inventory\n", " craft 4 stick using 2 planks\n"]

    def torch_scores() -> np.ndarray:
        out = []
        for reply in replies:
            ids = policy.tokenizer(prompt)["input_ids"]
            tail = policy.tokenizer(reply, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                rows = policy.model(torch.tensor([ids + tail])).logits[0].log_softmax(-1)
            out.append(sum(float(rows[len(ids) - 1 + j, t]) for j, t in enumerate(tail)))
        return np.array(out)

    def llama_scores(adapter) -> np.ndarray:
        config = LocalConfig(adapter=adapter and str(adapter), n_threads=1, n_slots=2)
        engine = LocalPolicy(config).engine
        ids = engine.tokenize(prompt, special=True)
        return np.array(
            [engine.score_alone(ids, engine.tokenize(r, special=False)) for r in replies]
        )

    with policy.model.disable_adapter():
        torch_shift = torch_scores()
    torch_shift = torch_scores() - torch_shift
    llama_shift = llama_scores(path) - llama_scores(None)
    assert np.abs(torch_shift).max() > 2.0, "the random adapter should matter"
    # llama.cpp rounds activations to 8 bits in its quantised matmuls: seen here, the
    # right export is off by at most 11% of the shift, the unpermuted one by 190%
    error = (np.abs(llama_shift - torch_shift) / np.maximum(1.0, np.abs(torch_shift))).max()
    assert (error < 0.2) if permuted else (error > 0.5), (torch_shift, llama_shift)


def test_expert_steps_label_visited_states_with_the_clean_expert():
    from agentmc.policies.expert import expert_plan

    config = SFTConfig(eps=0.5, episodes_per_task=2)
    steps = expert_steps(config, ["0", "1"])
    assert len(steps) > 4
    for step in steps:
        assert step.action in step.candidates
        assert expert_plan(step.messages).plan[0] == step.action
    # the noisy expert strays, so some states are off the clean expert's own path
    clean = expert_steps(SFTConfig(eps=0.0, episodes_per_task=1), ["0", "1"])
    assert {s.messages for s in steps} - {s.messages for s in clean}
    assert expert_steps(config, ["0", "1"]) == steps  # seeded


def test_train_sft_raises_label_likelihood_resumes_and_saves(tokenizer, tmp_path):
    config = SFTConfig(n_tasks=2, samples=8, batch_size=4, learning_rate=2e-2, eps=0.3)
    steps = expert_steps(config, ["0", "1"])
    probe = tiny_policy(tokenizer)
    samples = [_sample(probe, s) for s in steps[:8]]
    before, _ = batch_log_probs(probe, samples)
    policy, history = train_sft(config, tmp_path, tasks=["0", "1"], policy=tiny_policy(tokenizer))
    assert [r["batch"] for r in history] == [0, 1]
    longer = SFTConfig(**{**config.__dict__, "samples": 16})
    policy, history = train_sft(longer, tmp_path, tasks=["0", "1"], policy=tiny_policy(tokenizer))
    assert [r["batch"] for r in history] == [0, 1, 2, 3]
    after, _ = batch_log_probs(policy, [_sample(policy, s) for s in steps[:8]])
    assert np.mean(after) > np.mean(before) + 0.1
    saved = json.loads((tmp_path / "lm_policy.json").read_text())
    assert saved["name"] == "lm-sft-textcraft" and saved["meta"]["n_labelled_states"] == len(steps)
    with pytest.raises(Exception, match="other settings"):
        train_sft(SFTConfig(**{**config.__dict__, "eps": 0.1}), tmp_path, tasks=["0", "1"],
                  policy=tiny_policy(tokenizer))  # fmt: skip


def test_trained_spec_plays_an_embedded_lora_run_through_llama_cpp(tmp_path):
    pytest.importorskip("llama_cpp")
    from agentmc.policies import make_policy
    from agentmc.policies.local import LocalPolicy

    torch.manual_seed(0)
    trained = LMPolicy.from_base(lora=LoRAConfig(rank=4), threads=1)
    with torch.no_grad():
        for name, parameter in trained.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.3)
    trained.name = "lm-sft-textcraft"
    trained.save(tmp_path, gguf=True)
    policy = make_policy(f"trained:{tmp_path}")
    assert isinstance(policy, LocalPolicy) and policy.name == "lm-sft-textcraft"
    assert policy.config.mode == "choose"
    assert policy.config.adapter == str(tmp_path / "adapter.gguf")
    task = "Goal: craft stick.\nCrafting commands:\ncraft 4 stick using 2 planks"
    messages = (Message("user", task),)
    options = ["inventory", "get 2 planks", "craft 4 stick using 2 planks"]
    got = {c.text: c.logprob for c in asyncio.run(
        policy.complete(messages, n=64, seed=0, candidates=options))}  # fmt: skip
    suffix, tokens = trained.encode_step(messages, options)
    with torch.no_grad():
        exact = trained.step_log_probs(suffix, tokens, trained._prefix_kv()).numpy()
        with trained.model.disable_adapter():
            trained.invalidate()
            plain = trained.step_log_probs(suffix, tokens, trained._prefix_kv()).numpy()
    assert np.abs(exact - plain).max() > 1.0, "the random adapter should matter"
    assert len(got) > 1
    for text, log_prob in got.items():  # the same trie-constrained distribution, up to rounding
        assert log_prob == pytest.approx(exact[options.index(text)], abs=0.3), (text, exact)


def test_train_lm_starts_from_saved_adapters_and_plays_them_in_llama_cpp(tmp_path):
    pytest.importorskip("llama_cpp")
    from dataclasses import asdict

    from agentmc.errors import ConfigError
    from agentmc.policies.local import LocalConfig, LocalPolicy
    from agentmc.rl.lm import export_gguf_adapter

    torch.manual_seed(0)
    lora = LoRAConfig(rank=4)
    start = LMPolicy.from_base(lora=lora, threads=1)
    with torch.no_grad():
        for name, parameter in start.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.3)
    start.meta = {"config": {"lora": asdict(lora)}, "model_path": None}
    start.save(tmp_path / "sft", gguf=True)
    config = LMTrainConfig(
        init=str(tmp_path / "sft"), lora=lora, rollouts="llama", kl_coef=0.1, iterations=1,
        tasks_per_iteration=1, group_size=2, max_steps=2, n_tasks=1, learning_rate=1e-3,
    )  # fmt: skip
    policy, history = train_lm(config, tmp_path / "run")
    assert history[0]["rollouts"] == "llama" and history[0]["env_steps"] > 0
    # the KL is to the starting adapters, measured before the update: zero, where the KL to
    # the plain model would be large (these adapters move log-probabilities by nats)
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-6)
    moved = [torch.dist(p, dict(start.model.named_parameters())[n]).item()
             for n, p in policy.model.named_parameters() if "lora_B" in n]  # fmt: skip
    assert max(moved) < 0.1, "training continues from the saved adapters, not from zero"
    with pytest.raises(ConfigError, match="not the ones"):
        train_lm(LMTrainConfig(**{**config.__dict__, "lora": LoRAConfig(rank=8)}), tmp_path / "x")

    # the trainer rewrites one adapter file per iteration: the engine follows the file
    target = tmp_path / "rollout.gguf"
    messages = (Message("user", "Goal: craft stick."),)
    options = ["inventory", "get 2 planks", "craft 4 stick using 2 planks"]
    replies = []
    for model in (start.model, policy.model):
        export_gguf_adapter(model, tmp_path / "next.gguf").replace(target)
        local = LocalPolicy(LocalConfig(mode="choose", adapter=str(target), n_threads=1))
        [reply] = asyncio.run(local.complete(messages, seed=0, candidates=options))
        replies.append((local.engine, reply.logprob))
    assert replies[0][0] is not replies[1][0]
    from agentmc.policies import local as local_module

    assert not any(replies[0][0] is e for e in local_module._ENGINES.values())
