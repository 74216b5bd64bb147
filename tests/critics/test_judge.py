from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from agentmc.critics.core import History, avalues
from agentmc.critics.judge import JudgeConfig, JudgeCritic, parse_rating
from agentmc.errors import ConfigError, PolicyError
from agentmc.policies.core import Completion, Policy
from agentmc.types import Message


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("70", 0.7),
        ("70%", 0.7),
        ("Chance of success: 85 percent.", 0.85),
        ("Rating: 7/10", 0.7),
        ("I'd say about 40 out of 100.", 0.4),
        ("0.25", 0.25),
        ("1.0", 1.0),
        ("The agent has taken 3 steps of 12. Rating: 60", 0.6),
        ("After step 4 I estimate 30%", 0.3),
        ("<think>maybe 90? no</think> 20", 0.2),
        ("100", 1.0),
        ("0", 0.0),
    ],
)
def test_parse_rating(reply, expected):
    assert parse_rating(reply) == pytest.approx(expected)


@pytest.mark.parametrize("reply", ["", "no idea", "It depends.", "score: 250", "-"])
def test_parse_rating_without_number(reply):
    assert parse_rating(reply) is None


class FakeJudge:
    """Replies with a fixed text per task; records what it was asked."""

    name = "fake-judge"
    synthetic = True

    def __init__(self, replies: dict[str, list[str]], fail: bool = False) -> None:
        self.replies = replies
        self.fail = fail
        self.requests: list[tuple[str, int | None]] = []

    async def complete(self, messages, *, n=1, temperature=1.0, seed=None, candidates=None):
        await asyncio.sleep(0)
        if self.fail:
            raise PolicyError("server down")
        prompt = messages[-1].content
        self.requests.append((prompt, seed))
        for key, texts in self.replies.items():
            if key in prompt:
                return [Completion(texts[i % len(texts)]) for i in range(n)]
        return [Completion("no opinion")] * n


def history(task: str, turns: int = 0) -> History:
    messages = []
    for i in range(turns):
        messages += [Message("assistant", f"get {i}"), Message("user", f"Got {i}")]
    return History(task, tuple(messages))


def test_judge_values_and_unparsed_fallback():
    policy = FakeJudge({"easy": ["90"], "hard": ["Rating: 1/10"], "mixed": ["80%", "20%"]})
    assert isinstance(policy, Policy)
    critic = JudgeCritic(policy, JudgeConfig(n_samples=2, neutral=0.5, reward_scale=2.0))
    histories = [history("easy task"), history("hard task"), history("mixed"), history("odd")]
    values = critic.values(histories)
    np.testing.assert_allclose(values, [1.8, 0.2, 1.0, 1.0])
    assert critic.stats() == {"requests": 4, "replies": 8, "unparsed": 2}


def test_judge_is_async_and_seeded_by_content():
    policy = FakeJudge({"t": ["50"]})
    critic = JudgeCritic(policy)
    h = [history("t1", 2), history("t2", 1), history("t1", 2)]

    async def run():
        return await avalues(critic, h)

    np.testing.assert_allclose(asyncio.run(run()), [0.5, 0.5, 0.5])
    seeds = [seed for _, seed in policy.requests]
    assert seeds[0] == seeds[2] != seeds[1]

    async def sync_inside_loop():
        critic.values(h)

    with pytest.raises(ConfigError, match="avalues"):
        asyncio.run(sync_inside_loop())


def test_judge_prompt_truncates_from_left_and_warns_once(caplog):
    critic = JudgeCritic(FakeJudge({}), JudgeConfig(max_chars=400, last_turns=50))
    long = history("Goal: craft stick.", 40)
    with caplog.at_level(logging.WARNING, logger="agentmc"):
        first = critic.prompt(long)
        critic.prompt(long)
    assert sum("cut from the left" in r.getMessage() for r in caplog.records) == 1
    assert "Goal: craft stick." in first and "Got 39" in first and "Got 0\n" not in first


def test_judge_propagates_policy_failure():
    critic = JudgeCritic(FakeJudge({}, fail=True))
    with pytest.raises(PolicyError):
        critic.values([history("t")])
