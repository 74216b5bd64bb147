import pytest

from agentmc.policies.parsing import parse_action


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("get 1 oak log", "get 1 oak log"),
        ("  get 1 oak log.  ", "get 1 oak log"),
        ("> get 1 oak log", "get 1 oak log"),
        ("Action: craft 4 oak planks using 1 oak log", "craft 4 oak planks using 1 oak log"),
        ("**Action:** inventory", "inventory"),
        ("Thought: first logs\nAction: get 2 oak logs", "get 2 oak logs"),
        ("Thought: hmm\nget 2 oak logs\nmore text", "get 2 oak logs"),
        ('"inventory"', "inventory"),
        ("`inventory`", "inventory"),
        ("- get 3 sticks", "get 3 sticks"),
        ("1. get 3 sticks", "get 3 sticks"),
        ("get   2    sticks", "get 2 sticks"),
    ],
)
def test_parse_action_extracts_the_action(reply, expected):
    assert parse_action(reply) == (expected, True)


@pytest.mark.parametrize("reply", ["", "   ", "\n\n", "Thought: nothing to do"])
def test_unparseable_reply_is_flagged_and_passed_through(reply):
    action, parsed = parse_action(reply)
    assert parsed is False
    assert action == reply.strip()
