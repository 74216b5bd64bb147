import asyncio

import pytest

from agentmc.errors import DataError, PolicyError
from agentmc.policies.replay import ReplayPolicy, request_key
from agentmc.policies.scripted import ScriptedPolicy
from agentmc.types import Message

LIVE = ScriptedPolicy(lambda m: {"left": 0.5, "right": 0.5})
HISTORY = (Message("user", "go"),)


def test_replay_returns_exactly_what_was_recorded(tmp_path):
    path = tmp_path / "calls.jsonl"
    recorder = ReplayPolicy(path, LIVE, mode="record")
    recorded = [asyncio.run(recorder.complete(HISTORY, seed=s))[0] for s in range(10)]
    player = ReplayPolicy(path, mode="replay")
    replayed = [asyncio.run(player.complete(HISTORY, seed=s))[0] for s in range(10)]
    assert replayed == recorded


def test_replay_fails_clearly_on_an_unseen_request(tmp_path):
    path = tmp_path / "calls.jsonl"
    asyncio.run(ReplayPolicy(path, LIVE, mode="record").complete(HISTORY, seed=0))
    with pytest.raises(PolicyError, match="no recorded reply"):
        asyncio.run(ReplayPolicy(path, mode="replay").complete(HISTORY, seed=99))


def test_missing_or_corrupt_recording_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no recording"):
        ReplayPolicy(tmp_path / "absent.jsonl", mode="replay")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "x", "completions": []}\nnot json\n')
    with pytest.raises(DataError, match="bad.jsonl:2"):
        ReplayPolicy(bad, mode="replay")


def test_request_key_depends_on_everything_that_changes_the_reply():
    base = request_key(HISTORY, 1, 1.0, 0, None)
    assert base == request_key(HISTORY, 1, 1.0, 0, None)
    assert base != request_key(HISTORY, 2, 1.0, 0, None)
    assert base != request_key(HISTORY, 1, 0.5, 0, None)
    assert base != request_key(HISTORY, 1, 1.0, 1, None)
    assert base != request_key(HISTORY, 1, 1.0, 0, ["up"])
    assert base != request_key((Message("user", "stop"),), 1, 1.0, 0, None)
