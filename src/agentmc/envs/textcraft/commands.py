"""Parse TextCraft commands leniently: case, spacing, ``minecraft:`` prefixes, underscores.

Three commands exist::

    get N item
    craft N item using N a, N b
    inventory

:func:`parse_command` turns a string into a :class:`Get`, :class:`Craft`,
:class:`Inventory` or :class:`BadCommand` (with feedback text); it never
raises. Item names come back in :func:`~agentmc.envs.textcraft.recipes.name_key`
form (``oak planks``); resolving them against a recipe book is the caller's
job. The same parser reads the recipe lines of a task text, which are written
as craft commands.

Example:
    >>> parse_command("Craft 4 Oak_Planks using 1 minecraft:oak_logs.")
    Craft(output='oak planks', count=4, inputs=(('oak logs', 1),))
    >>> parse_command("get 3 string")
    Get(item='string', count=3)
    >>> parse_command("craft").message
    "Crafting commands are of the form 'craft N item using N a, N b'."
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentmc.envs.textcraft.recipes import name_key

__all__ = [
    "BadCommand",
    "Command",
    "Craft",
    "Get",
    "Inventory",
    "MAX_COUNT",
    "USAGE",
    "parse_command",
]

MAX_COUNT = 10_000
"""Largest count accepted in one command."""

USAGE = "Valid commands: 'get N item', 'craft N item using N a, N b', 'inventory'."
CRAFT_FORM = "Crafting commands are of the form 'craft N item using N a, N b'."
GET_FORM = "Get commands are of the form 'get N item', e.g. 'get 2 oak logs'."

_QUOTES = "\"'`“”‘’"
_INVENTORY = re.compile(r"^(?:check |show |open |look at |view )?(?:the |my )?(?:inventory|inv)$")
_GET = re.compile(r"^get (\S+) (.+)$")
_CRAFT = re.compile(r"^craft (?:(\S+) )?(.+?) using (.+)$")
_COUNT_ITEM = re.compile(r"^(\S+) (.+)$")


@dataclass(frozen=True, slots=True)
class Get:
    """``get N item``."""

    item: str
    count: int


@dataclass(frozen=True, slots=True)
class Craft:
    """``craft N item using N a, N b``; ``count`` is None when not given."""

    output: str
    count: int | None
    inputs: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Inventory:
    """``inventory``."""


@dataclass(frozen=True, slots=True)
class BadCommand:
    """An action that is not a command; ``message`` is the feedback to show."""

    message: str


Command = Get | Craft | Inventory | BadCommand


def _echo(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _count(text: str) -> int | None:
    if not text.isdigit() or len(text) > 6:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_COUNT else None


def _clean(action: str) -> str:
    text = action.strip().strip(_QUOTES).strip().rstrip(".!;").strip().strip(_QUOTES)
    return name_key(text).replace(" ,", ",")


def parse_command(action: str) -> Command:
    """Parse one action string. Never raises.

    Args:
        action: What the agent said.

    Returns:
        The command, or :class:`BadCommand` with a one-line explanation.
    """
    if not isinstance(action, str):
        return BadCommand(f"Actions must be text. {USAGE}")
    text = _clean(action)
    if not text:
        if action.strip():
            return BadCommand(f"Could not understand {_echo(action.strip())!r}. {USAGE}")
        return BadCommand(f"Empty action. {USAGE}")
    if _INVENTORY.match(text):
        return Inventory()
    verb = text.split(" ", 1)[0]
    if verb == "get":
        match = _GET.match(text)
        if not match:
            return BadCommand(GET_FORM)
        n_get = _count(match.group(1))
        if n_get is None:
            if not match.group(1).isdigit():
                return BadCommand(f"Say how many to get. {GET_FORM}")
            return BadCommand(f"Counts must be whole numbers from 1 to {MAX_COUNT}.")
        return Get(match.group(2).strip(), n_get)
    if verb == "craft":
        match = _CRAFT.match(text)
        if not match:
            return BadCommand(CRAFT_FORM)
        raw_count, output, raw_inputs = match.groups()
        count: int | None = None
        if raw_count is not None:
            count = _count(raw_count)
            if count is None:
                if raw_count.isdigit():
                    return BadCommand(f"Counts must be whole numbers from 1 to {MAX_COUNT}.")
                output = f"{raw_count} {output}"  # "craft oak planks using ..."
        inputs: list[tuple[str, int]] = []
        for part in raw_inputs.split(","):
            part = part.strip()
            if not part:
                continue
            item_match = _COUNT_ITEM.match(part)
            n = _count(item_match.group(1)) if item_match else None
            if item_match is None or n is None:
                return BadCommand(
                    f"Wrong ingredient format: {_echo(part)!r} (write 'N item'). {CRAFT_FORM}"
                )
            inputs.append((item_match.group(2).strip(), n))
        if not inputs:
            return BadCommand(CRAFT_FORM)
        return Craft(output.strip(), count, tuple(inputs))
    return BadCommand(f"Could not understand {_echo(action.strip())!r}. {USAGE}")
