from __future__ import annotations

import pytest

from agentmc.errors import ConfigError
from agentmc.policies.parsing import parse_action
from agentmc.policies.prompts import (
    ENV_PROMPTS,
    EnvPrompt,
    Example,
    PromptFormat,
    env_prompt,
    register_env_prompt,
)
from agentmc.types import Message

TASK = "Crafting commands:\ncraft 4 stick using 2 planks\n\nGoal: craft stick."
CONVERSATION = (
    Message("user", TASK),
    Message("assistant", "get 1 oak logs"),
    Message("user", "Got 1 oak logs"),
    Message("assistant", "Thought: planks next.\nAction: craft 4 oak planks using 1 oak logs"),
    Message("user", "Crafted 4 minecraft:oak_planks"),
)


def test_plain_completion_ends_at_the_action_cue_and_shows_history():
    text = PromptFormat(style="plain").completion(CONVERSATION)
    assert text.endswith(
        "> get 1 oak logs\nGot 1 oak logs\n> Thought: planks next.\n"
        "Action: craft 4 oak planks using 1 oak logs\n"
        "Crafted 4 minecraft:oak_planks\n>"
    )
    assert "Example task:" in text and "Your task:\n" + TASK in text
    assert text.count("Goal: craft ender eye.") == 1


def test_every_prompt_of_a_task_extends_the_previous_one():
    """Prefix caches (llama.cpp, vLLM) rely on this."""
    fmt = PromptFormat(style="plain")
    shorter = fmt.completion(CONVERSATION[:3])
    longer = fmt.completion(CONVERSATION)
    assert longer.startswith(shorter)


def test_react_completion_uses_observation_lines_and_stop():
    fmt = PromptFormat(style="react")
    text = fmt.completion(CONVERSATION[:3])
    assert "Action: craft 1 ender eye using 1 ender pearl, 1 blaze powder" in text
    assert text.endswith("get 1 oak logs\nObservation: Got 1 oak logs\n")
    assert fmt.stop == ("\nObservation:",)


def test_example_replies_parse_back_to_their_actions():
    for style in ("plain", "react"):
        fmt = PromptFormat(style=style)
        for example in fmt.examples:
            for thought, action, _ in example.steps:
                assert parse_action(fmt._reply(thought, action)) == (action, True)


def test_chat_layout():
    messages = PromptFormat(style="react").chat(CONVERSATION)
    assert messages[0]["role"] == "system" and "Action: <the action>" in messages[0]["content"]
    assert "Example task:" in messages[0]["content"]
    assert "Observation: Crafted 1 ender eye" in messages[0]["content"]
    assert messages[1:] == [m.as_dict() for m in CONVERSATION]


def test_no_examples_and_window():
    fmt = PromptFormat(style="plain", n_examples=0, max_turns=1)
    text = fmt.completion(CONVERSATION)
    assert "Example task" not in text and "get 1 oak logs" not in text
    assert text.endswith("Crafted 4 minecraft:oak_planks\n>") and TASK in text
    assert fmt.window(CONVERSATION[:4])[1:] == list(CONVERSATION[1:4])


def test_unknown_environment_gets_generic_instructions():
    fmt = PromptFormat(env_id="my-own-env")
    assert fmt.examples == () and "text environment" in fmt.system


def test_register_env_prompt():
    prompt = EnvPrompt("Say up.", (Example("Climb.", (("", "up", "Level 1."),)),))
    register_env_prompt("climb-test", prompt)
    try:
        assert env_prompt("climb-test") is prompt
        assert "> up\nLevel 1.\n" in PromptFormat(env_id="climb-test").completion(
            [Message("user", "Go")]
        )
    finally:
        del ENV_PROMPTS["climb-test"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"style": "json"}, "style"),
        ({"n_examples": -1}, "n_examples"),
        ({"max_turns": -2}, "max_turns"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PromptFormat(**kwargs)


def test_bad_conversations_are_config_errors():
    fmt = PromptFormat()
    with pytest.raises(ConfigError, match="start with the task"):
        fmt.completion([])
    with pytest.raises(ConfigError, match="alternate"):
        fmt.completion([Message("user", "t"), Message("user", "again")])
