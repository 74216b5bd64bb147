r"""TextCraft's state for graph credit assignment: the goal and the inventory.

TextCraft's observations alias states badly: "Got 1 oak logs" is printed
whatever else the agent holds, and "Inventory: ..." only when asked. What
determines the rest of an episode is the goal and the inventory (plus the step
count, deliberately left out: states that differ only in how long it took to
reach them are the same state for credit assignment). This fold rebuilds the
inventory from the transcript alone, so it works on stored trajectories and
inside a live policy, without access to the environment:

- ``Got N item``: add ``N item``;
- ``Crafted N item``: add ``N item`` and remove the inputs the action named
  (a successful craft used exactly those);
- ``Inventory: [a] (n) ...``: replace the inventory with the listing;
- anything else (failed commands, feedback): no change.

The state text is ``goal: ...``, ``inventory: ...`` and ``last: <latest
observation>`` lines. The key keeps the goal and inventory lines only, so the
same inventory reached by different paths is one node.

Example:
    >>> task = "craft 1 stick using 2 oak planks\n\nGoal: craft stick."
    >>> texts = TEXTCRAFT_STATE_SPACE.texts(task, [
    ...     ("get 2 oak planks", "Got 2 oak planks"),
    ...     ("craft 1 stick using 2 oak planks", "Crafted 1 stick")])
    >>> print(texts[1])
    goal: stick
    inventory: oak planks 2
    last: Got 2 oak planks
    >>> textcraft_key(texts[2])
    ('stick', (('stick', 1),))
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass

from agentmc.envs.textcraft.commands import Craft, parse_command
from agentmc.envs.textcraft.recipes import name_key
from agentmc.rl.states import StateSpace

_GOAL = re.compile(r"goal:\s*craft\s+(.+?)\.?\s*$", re.IGNORECASE | re.MULTILINE)
_GOT = re.compile(r"^got (\d+) (.+?)\s*$", re.IGNORECASE)
_CRAFTED = re.compile(r"^crafted (\d+) (.+?)\s*$", re.IGNORECASE)
_LISTED = re.compile(r"\[([^\]]+)\]\s*\((\d+)\)")


@dataclass(frozen=True, slots=True)
class CraftState:
    """Goal, inventory (sorted ``(item, count)`` pairs) and the latest observation."""

    goal: str
    inventory: tuple[tuple[str, int], ...] = ()
    last: str = ""


def start(task: str) -> CraftState:
    """The initial state: the goal from the task's ``Goal: craft X.`` line, nothing held."""
    matches = _GOAL.findall(task)
    return CraftState(name_key(matches[-1]) if matches else "", (), "")


def advance(state: CraftState, action: str, observation: str) -> CraftState:
    """Apply one step's observation (and, for a successful craft, its action)."""
    text = observation.strip()
    held = dict(state.inventory)
    if match := _GOT.match(text):
        item = name_key(match.group(2))
        held[item] = held.get(item, 0) + int(match.group(1))
    elif match := _CRAFTED.match(text):
        command = parse_command(action)
        if isinstance(command, Craft):
            for name, n in command.inputs:
                held[name] = held.get(name, 0) - n
        item = name_key(match.group(2))
        held[item] = held.get(item, 0) + int(match.group(1))
    elif text.lower().startswith("inventory:"):
        held = {name_key(name): int(n) for name, n in _LISTED.findall(text)}
    inventory = tuple(sorted((k, v) for k, v in held.items() if v > 0))
    return CraftState(state.goal, inventory, text)


def render(state: CraftState) -> str:
    """``goal: ...`` / ``inventory: item n, ...`` / ``last: ...`` lines."""
    held = ", ".join(f"{item} {n}" for item, n in state.inventory) or "nothing"
    return f"goal: {state.goal}\ninventory: {held}\nlast: {state.last}"


def textcraft_key(text: str) -> Hashable:
    """``(goal, ((item, count), ...))`` from a rendered state; the ``last`` line is ignored."""
    goal = ""
    inventory: tuple[tuple[str, int], ...] = ()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == "goal":
            goal = value.strip()
        elif name == "inventory" and value.strip() != "nothing":
            pairs = (part.strip().rsplit(" ", 1) for part in value.split(","))
            inventory = tuple(sorted((item, int(n)) for item, n in pairs))
    return goal, inventory


TEXTCRAFT_STATE_SPACE = StateSpace(
    start=start,
    advance=advance,
    render=render,
    key=textcraft_key,
    description="goal and inventory, folded from the transcript (step count ignored)",
)
