from __future__ import annotations

import pytest

from agentmc.envs.textcraft.commands import (
    BadCommand,
    Craft,
    Get,
    Inventory,
    parse_command,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("get 2 oak logs", Get("oak logs", 2)),
        ("  GET   2  Minecraft:Oak_Logs. ", Get("oak logs", 2)),
        ("`get 1 flint and steel`", Get("flint and steel", 1)),
        ("inventory", Inventory()),
        ("Check inventory", Inventory()),
        (
            "craft 4 oak planks using 1 oak logs",
            Craft("oak planks", 4, (("oak logs", 1),)),
        ),
        (
            "craft 1 bed using 3 white_wool ,3 oak planks",
            Craft("bed", 1, (("white wool", 3), ("oak planks", 3))),
        ),
        ("craft stick using 2 oak planks", Craft("stick", None, (("oak planks", 2),))),
    ],
)
def test_lenient_parsing(text, expected):
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Empty action"),
        ("!!!", "Could not understand"),
        ("craft", "craft N item using N a, N b"),
        ("craft 1 stick using planks", "Wrong ingredient format"),
        ("get oak logs", "Say how many"),
        ("get 0 oak logs", "from 1 to"),
        ("get " + "9" * 5000 + " x", "from 1 to"),
        ("dance", "Valid commands"),
        ("x" * 10_000, "..."),
    ],
)
def test_bad_commands_get_feedback(text, fragment):
    command = parse_command(text)
    assert isinstance(command, BadCommand)
    assert fragment in command.message
    assert len(command.message) < 300


def test_non_string_action_is_feedback_not_an_exception():
    assert isinstance(parse_command(None), BadCommand)  # type: ignore[arg-type]
