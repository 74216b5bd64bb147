from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from agentmc.errors import ConfigError, PolicyError
from agentmc.policies.openai_compat import ClientLimits, OpenAIConfig, OpenAIPolicy
from agentmc.policies.pricing import Price, PriceTable
from agentmc.policies.prompts import PromptFormat
from agentmc.testing import Fault, OpenAITestServer
from agentmc.types import Message, Usage

TASK = (Message("user", "Crafting commands:\ncraft 4 stick using 2 planks\n\nGoal: craft stick."),)
SECRET = "sk-test-7f3c9e1d2b4a68"
FAST = ClientLimits(backoff_initial_s=0.01, backoff_max_s=0.05, deadline_s=10.0)
#: Both transports share retries, errors and usage; the fault tests run on each.
TRANSPORTS = ("aiohttp", "sdk")


def task(i: int) -> tuple[Message, ...]:
    """A distinct one-message conversation (distinct prompts are never grouped)."""
    return (Message("user", f"Goal: craft stick number {i}."),)


def make(server: OpenAITestServer, **kwargs) -> OpenAIPolicy:
    limits = kwargs.pop("limits", FAST)
    kwargs.setdefault("allow_no_key", True)
    prices = kwargs.pop("prices", None)
    config = OpenAIConfig(model="test-model", base_url=server.base_url, limits=limits, **kwargs)
    return OpenAIPolicy(config, prices=prices)


def run(policy: OpenAIPolicy, messages=TASK, **kwargs):
    return asyncio.run(policy.complete(messages, **kwargs))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chat_n_in_one_request_with_usage_on_first(openai_server, transport):
    policy = make(openai_server, transport=transport)
    replies = run(policy, n=3, seed=1)
    assert [r.text for r in replies] == ["get 1 oak logs"] * 3
    assert len(openai_server.completion_requests()) == 1
    assert openai_server.completion_requests()[0].body["n"] == 3
    assert replies[0].usage.calls == 1 and replies[0].usage.completion_tokens == 12
    assert all(r.usage == Usage() for r in replies[1:])
    assert replies[0].usage.cost is None  # the default price table does not know test-model


def test_chat_request_carries_system_prompt_examples_and_conversation(openai_server):
    policy = make(openai_server, prompt=PromptFormat(style="react"))
    run(policy)
    body = openai_server.completion_requests()[0].body
    roles = [m["role"] for m in body["messages"]]
    assert roles[0] == "system" and "Action:" in body["messages"][0]["content"]
    assert body["messages"][-1] == TASK[0].as_dict()
    assert "\nAction: craft 1 ender eye" in body["messages"][0]["content"]
    assert body["stop"] == ["\nObservation:"]


def test_completion_mode_sends_transcript_and_stops_at_newline():
    server = OpenAITestServer(replies=[" get 1 oak logs\nGot 1 oak logs\n> craft"])
    with server:
        policy = make(server, mode="completion", prompt=PromptFormat(style="plain"))
        (reply,) = run(policy)
    body = server.completion_requests()[0].body
    assert body["prompt"].endswith("Goal: craft stick.\n>")
    assert body["stop"] == ["\n"]
    assert reply.text == " get 1 oak logs"


def test_cost_from_price_table_adds_up_over_concurrent_calls(openai_server):
    prices = PriceTable({"test-model": Price(1.0, 2.0)})
    policy = make(openai_server, prices=prices)

    async def many():
        return await asyncio.gather(*(policy.complete(TASK, n=2, seed=i) for i in range(10)))

    results = asyncio.run(many())
    total = Usage()
    for replies in results:
        for reply in replies:
            total = total + reply.usage
    assert total == policy.usage
    assert total.calls == 10 and total.completion_tokens == 10 * 2 * 4
    expected = (total.prompt_tokens * 1.0 + total.completion_tokens * 2.0) / 1e6
    assert total.cost == pytest.approx(expected)


def test_server_without_n_gets_one_request_per_sample():
    with OpenAITestServer(replies=["a", "b", "c", "d", "e", "f"], supports_n=False) as server:
        policy = make(server)
        first = run(policy, n=3, seed=5)
        assert len(server.completion_requests()) == 3  # one with n=3 (1 answer) + 2 top-ups
        second = run(policy, n=2, seed=6)
        requests = server.completion_requests()
    assert len(requests) == 5 and all("n" not in r.body for r in requests[3:])
    assert len(first) == 3 and len(second) == 2
    seeds = [r.body["seed"] for r in requests[:3]]
    assert seeds[0] == 5 and len(set(seeds)) == 3  # each sample gets its own seed
    assert sum(r.usage.calls for r in first) == 3


@pytest.mark.parametrize(
    "fault",
    [
        Fault("rate_limit", retry_after=0.01),
        Fault("server_error", status=503),
        Fault("malformed_json"),
        Fault("truncated"),
        Fault("disconnect"),
        Fault("timeout", delay_s=5.0),
    ],
    ids=lambda f: f.kind,
)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_retries_recover_from_each_fault(openai_server, fault, transport):
    limits = ClientLimits(
        backoff_initial_s=0.01, backoff_max_s=0.05, request_timeout_s=0.3, deadline_s=10
    )
    policy = make(openai_server, limits=limits, transport=transport)
    openai_server.inject(fault, fault)
    (reply,) = run(policy, seed=0)
    assert reply.text == "get 1 oak logs"
    assert policy.stats["retries"] == 2
    assert len(openai_server.completion_requests()) == 3
    assert policy.usage.calls == 1  # failed attempts carry no usage


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_truncated_stream_is_retried_and_streaming_collects_usage(openai_server, transport):
    policy = make(openai_server, stream=True, transport=transport)
    openai_server.inject(Fault("truncated"))
    replies = run(policy, n=2, seed=0)
    assert [r.text for r in replies] == ["get 1 oak logs"] * 2
    assert policy.stats["retries"] == 1
    assert replies[0].usage.completion_tokens == 8 and replies[1].usage == Usage()


def test_identical_concurrent_calls_share_one_request_with_n():
    with OpenAITestServer(replies=["a", "b", "c", "d", "e"]) as server:
        policy = make(server)

        async def many():
            same = [policy.complete(TASK, seed=i) for i in range(5)]
            return await asyncio.gather(*same, policy.complete(task(0), seed=9))

        results = asyncio.run(many())
        requests = server.completion_requests()
    assert len(requests) == 2
    (grouped,) = [r for r in requests if r.body.get("n") == 5]
    assert grouped.body["seed"] == 0  # the first member's seed
    assert [len(replies) for replies in results] == [1] * 6
    assert len({replies[0].text for replies in results[:5]}) == 5  # one choice per caller
    # The request's usage (prompt billed once) rides on one member; the sum is what was billed.
    total = Usage()
    for replies in results:
        total = total + replies[0].usage
    assert total == policy.usage and total.calls == 2
    assert [r[0].usage.calls for r in results[:5]] == [1, 0, 0, 0, 0]
    assert policy.stats["grouped_calls"] == 5 and policy.stats["requests"] == 2


def test_grouping_falls_back_to_one_request_per_call_without_n():
    with OpenAITestServer(replies=["a", "b", "c", "d"], supports_n=False) as server:
        policy = make(server)

        async def many(seeds):
            return await asyncio.gather(*(policy.complete(TASK, seed=s) for s in seeds))

        first = asyncio.run(many([10, 11, 12, 13]))
        assert len(server.completion_requests()) == 4  # n=4 answered once, then 3 top-ups
        second = asyncio.run(many([20, 21]))
        requests = server.completion_requests()
    assert [len(r) for r in first + second] == [1] * 6
    assert sorted(r.body["seed"] for r in requests[:4]) == [10, 11, 12, 13]  # each its own
    assert all("n" not in r.body for r in requests[4:])  # remembered: no more n
    assert sorted(r.body["seed"] for r in requests[4:]) == [20, 21]
    assert policy.usage.calls == 6


def test_grouping_off_sends_one_request_per_call(openai_server):
    policy = make(openai_server, group_requests=False)

    async def many():
        return await asyncio.gather(*(policy.complete(TASK, seed=i) for i in range(3)))

    asyncio.run(many())
    requests = openai_server.completion_requests()
    assert len(requests) == 3 and all("n" not in r.body for r in requests)


def test_grouped_calls_are_cached_one_entry_per_caller(openai_server, tmp_path):
    async def many(policy, seeds):
        return await asyncio.gather(*(policy.complete(TASK, seed=s) for s in seeds))

    first = asyncio.run(many(make(openai_server, cache_dir=str(tmp_path)), [1, 2, 3]))
    again = make(openai_server, cache_dir=str(tmp_path))  # a resumed run
    second = asyncio.run(many(again, [1, 2, 3, 4]))  # three hits, one new call
    assert second[:3] == first and again.stats["cache_hits"] == 3
    requests = openai_server.completion_requests()
    assert len(requests) == 2 and "n" not in requests[1].body and requests[1].body["seed"] == 4
    assert run(again, seed=2) == first[1]  # the same entry serves a lone call


def test_deadline_counts_time_at_the_server_not_in_our_queue():
    # One request at a time, 0.3 s each: the fourth call waits 0.9 s in our own queue,
    # longer than the 0.5 s deadline, but spends only 0.3 s at the server.
    with OpenAITestServer(latency_s=0.3) as server:
        limits = ClientLimits(max_concurrency=1, deadline_s=0.5, backoff_initial_s=0.01)
        policy = make(server, limits=limits)

        async def many():
            return await asyncio.gather(*(policy.complete(task(i)) for i in range(4)))

        results = asyncio.run(many())
    assert len(results) == 4 and policy.stats["failures"] == 0


def test_retry_after_is_honoured(openai_server):
    policy = make(openai_server)
    openai_server.inject(Fault("rate_limit", retry_after=0.6))
    start = time.monotonic()
    run(policy)
    assert time.monotonic() - start >= 0.6
    gap = openai_server.requests[1].time - openai_server.requests[0].time
    assert gap >= 0.6


def test_deadline_stops_a_failing_server():
    with OpenAITestServer(fault_rates={"server_error": 1.0}) as server:
        limits = ClientLimits(
            backoff_initial_s=0.05, backoff_max_s=0.2, deadline_s=1.0, max_attempts=1000
        )
        policy = make(server, limits=limits)
        start = time.monotonic()
        with pytest.raises(PolicyError, match=r"HTTP 500.*|deadline") as info:
            run(policy)
        elapsed = time.monotonic() - start
    assert elapsed < 1.5
    message = str(info.value)
    assert "\n" not in message and "test-model" in message and "attempts" in message
    assert policy.stats["failures"] == 1


def test_max_attempts_stops_before_deadline():
    with OpenAITestServer(fault_rates={"server_error": 1.0}) as server:
        policy = make(server, limits=ClientLimits(backoff_initial_s=0.01, max_attempts=3))
        with pytest.raises(PolicyError, match="3 attempts"):
            run(policy)
        assert len(server.completion_requests()) == 3


def test_unreachable_server_fails_with_one_line_after_deadline():
    with OpenAITestServer() as server:
        url = server.base_url  # the port is free again once the server stops
    config = OpenAIConfig(
        model="m",
        base_url=url,
        allow_no_key=True,
        limits=ClientLimits(backoff_initial_s=0.05, deadline_s=0.8, max_attempts=100),
    )
    start = time.monotonic()
    with pytest.raises(PolicyError, match="connection failed") as info:
        run(OpenAIPolicy(config))
    # It gives up once the next backoff would pass the deadline, never after it.
    assert time.monotonic() - start < 0.8 + 0.5
    assert "attempts" in str(info.value)
    assert url in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_model_fails_at_once(openai_server, transport):
    config = OpenAIConfig(
        model="no-such-model",
        base_url=openai_server.base_url,
        allow_no_key=True,
        transport=transport,
    )
    with pytest.raises(PolicyError, match="'no-such-model' is not served"):
        run(OpenAIPolicy(config))
    assert len(openai_server.completion_requests()) == 1


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("AGENTMC_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="AGENTMC_TEST_KEY"):
        OpenAIPolicy(OpenAIConfig(model="m", api_key_env="AGENTMC_TEST_KEY"))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_key_never_in_logs_records_reprs_or_errors(monkeypatch, caplog, tmp_path, transport):
    monkeypatch.setenv("AGENTMC_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)  # the SDK, httpx and ours at their most verbose
    with OpenAITestServer(api_key=SECRET) as server:
        config = OpenAIConfig(
            model="test-model",
            base_url=server.base_url,
            api_key_env="AGENTMC_TEST_KEY",
            cache_dir=str(tmp_path / "cache"),
            limits=FAST,
            transport=transport,
        )
        policy = OpenAIPolicy(config)
        server.inject(Fault("rate_limit", retry_after=0), Fault("server_error"))
        replies = run(policy, n=2, seed=3)
        server.inject(Fault("echo_auth"))  # a proxy that quotes the Authorization header
        with pytest.raises(PolicyError) as info:
            run(policy, seed=4)
        assert all(r.authorized for r in server.completion_requests())
    assert "***" in str(info.value)
    texts = [caplog.text, repr(policy), repr(config), repr(replies), str(info.value)]
    texts += [repr(info.value.__context__), repr(info.value.__cause__)]
    texts += [p.read_text() for p in (tmp_path / "cache").rglob("*.json")]
    texts += [json.dumps(r.body) for r in server.requests]
    assert all(SECRET not in text for text in texts)
    assert "retrying" in caplog.text  # the logs were captured at all


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_key_is_a_clear_error(monkeypatch, transport):
    monkeypatch.setenv("AGENTMC_TEST_KEY", "sk-wrong-key-123456")
    with OpenAITestServer(api_key=SECRET) as server:
        config = OpenAIConfig(
            model="test-model",
            base_url=server.base_url,
            api_key_env="AGENTMC_TEST_KEY",
            transport=transport,
        )
        with pytest.raises(PolicyError, match=r"refused the API key.*\$AGENTMC_TEST_KEY") as info:
            run(OpenAIPolicy(config))
    assert "sk-wrong-key-123456" not in str(info.value)


def test_budget_stops_further_calls(openai_server):
    prices = PriceTable({"test-model": Price(10_000.0, 10_000.0)})
    limits = ClientLimits(max_cost_usd=0.25)
    policy = make(openai_server, prices=prices, limits=limits)
    run(policy)  # about (prompt + 4) * 0.01 dollars, well over 0.25 with the system prompt
    assert policy.usage.cost > 0.25
    with pytest.raises(PolicyError, match="budget exhausted"):
        run(policy)
    assert len(openai_server.completion_requests()) == 1


def test_budget_needs_a_known_price(openai_server):
    with pytest.raises(ConfigError, match="max_cost_usd needs the price of 'test-model'"):
        make(openai_server, limits=ClientLimits(max_cost_usd=1.0))


def test_cache_replays_seeded_requests_only(openai_server, tmp_path):
    policy = make(openai_server, cache_dir=str(tmp_path))
    first = run(policy, n=2, seed=11)
    again = make(openai_server, cache_dir=str(tmp_path))  # a resumed run: a new policy
    second = run(again, n=2, seed=11)
    assert second == first and again.stats["cache_hits"] == 1
    assert len(openai_server.completion_requests()) == 1
    run(again, n=2, seed=None)
    run(again, n=2, seed=None)
    assert len(openai_server.completion_requests()) == 3


def test_concurrency_limit_caps_requests_in_flight():
    with OpenAITestServer(latency_s=0.2) as server:
        policy = make(server, limits=ClientLimits(max_concurrency=2))

        async def many():
            await asyncio.gather(*(policy.complete(task(i)) for i in range(6)))

        start = time.monotonic()
        asyncio.run(many())
        elapsed = time.monotonic() - start
    assert elapsed >= 0.6  # 6 requests, 2 at a time, 0.2 s each


def test_requests_per_minute_limit_delays_the_burst_beyond_capacity():
    with OpenAITestServer() as server:
        policy = make(server, limits=ClientLimits(requests_per_minute=60))

        async def many():
            await asyncio.gather(*(policy.complete(task(i)) for i in range(62)))

        start = time.monotonic()
        asyncio.run(many())
        elapsed = time.monotonic() - start
    assert elapsed >= 1.5  # the bucket holds 60; the next two drain at one per second


def test_policy_survives_repeated_event_loops(openai_server):
    policy = make(openai_server)
    for seed in range(3):
        assert run(policy, seed=seed)[0].text == "get 1 oak logs"


def test_logprobs_are_summed_when_the_server_sends_them():
    # The test server sends no logprobs: the total is unknown, never zero.
    with OpenAITestServer() as server:
        (reply,) = run(make(server, logprobs=True))
    assert reply.logprob is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": ""}, "model"),
        ({"model": "m", "mode": "edit"}, "mode"),
        ({"model": "m", "base_url": "localhost:8000"}, "base_url"),
        ({"model": "m", "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "samples_per_request": "all"}, "samples_per_request"),
        ({"model": "m", "transport": "curl"}, "transport"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        OpenAIConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"deadline_s": 0}, "deadline_s"),
        ({"requests_per_minute": -1}, "requests_per_minute"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_limits_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ClientLimits(**kwargs)


def test_bad_call_arguments(openai_server):
    policy = make(openai_server)
    with pytest.raises(ConfigError, match="n must be"):
        run(policy, n=0)
    with pytest.raises(ConfigError, match="temperature"):
        run(policy, temperature=-1.0)
