from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agentmc.critics.baselines import ConstantCritic, ZeroCritic
from agentmc.critics.core import Critic, History, avalues
from agentmc.critics.text import render, segments
from agentmc.errors import DataError
from agentmc.types import Message


def conversation(n):
    out = [Message("system", "be good"), Message("user", "Goal: craft stick.")]
    for i in range(n):
        out += [Message("assistant", f"get {i} log"), Message("user", f"Got {i} log")]
    return out


def test_history_from_messages_and_turns():
    h = History.from_messages(conversation(3))
    assert h.task == "Goal: craft stick."
    assert h.n_turns == 3
    assert h.turns()[-1] == ("get 2 log", "Got 2 log")
    with pytest.raises(DataError, match="first user message"):
        History.from_messages([Message("assistant", "hi")])


def test_window_keeps_last_turns_and_says_what_is_hidden():
    h = History.from_messages(conversation(12))
    parts = segments(h, last_turns=10)
    assert parts.step == 12
    assert len(parts.turns) == 10
    assert parts.turns[0].startswith("> get 2 log")
    text = render(h, last_turns=3)
    assert "STEP 12" in text and "(9 earlier turns not shown)" in text
    assert "get 11 log" in text and "get 8 log" not in text
    assert segments(h, last_turns=0).turns == ()


def test_baselines_and_protocol():
    histories = [History("t"), History("u")]
    assert isinstance(ZeroCritic(), Critic)
    np.testing.assert_array_equal(ZeroCritic().values(histories), [0.0, 0.0])
    np.testing.assert_array_equal(ConstantCritic(0.25).values(histories), [0.25, 0.25])
    assert ZeroCritic().name == "zero"


def test_avalues_uses_async_method_and_checks_shape():
    class Async:
        name = "async"

        async def avalues(self, histories):
            return [1.0] * len(histories)

        def values(self, histories):
            raise AssertionError("the sync method must not be used")

    class Broken:
        name = "broken"

        def values(self, histories):
            return [1.0, float("nan")]

    histories = [History("t"), History("u")]
    np.testing.assert_array_equal(asyncio.run(avalues(Async(), histories)), [1.0, 1.0])
    with pytest.raises(DataError, match="non-finite"):
        asyncio.run(avalues(Broken(), histories))
    with pytest.raises(DataError, match="2 values for 3"):
        asyncio.run(avalues(Broken(), [*histories, History("v")]))
