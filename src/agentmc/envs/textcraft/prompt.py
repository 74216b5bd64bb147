"""TextCraft's prompt: instructions and two worked examples, registered with the environment.

:class:`~agentmc.policies.prompts.PromptFormat` finds it by environment id
through the registry entry of ``textcraft`` (``prompt=``), so the policies
never import TextCraft.

Example:
    >>> PROMPT.examples[0].task.splitlines()[-1]
    'Goal: craft ender eye.'
    >>> [action for _, action, _ in PROMPT.examples[1].steps][:2]
    ['craft 8 cookie using 2 wheat, 1 cocoa beans', 'get 2 wheat']
"""

from __future__ import annotations

from agentmc.envs.knowledge import EnvPrompt, Example

__all__ = ["PROMPT"]


def _steps(*pairs: str) -> tuple[tuple[str, str, str], ...]:
    """``(action, observation, action, observation, ...)`` as example steps without thoughts."""
    return tuple(("", pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2))


# Written for agentmc (not taken from the TextCraft or AMC prompts). Two tasks of our
# own *train* split, played by backward chaining, with the observations our environment
# really gives: try the goal's recipe, read what the failure says is missing, get it if
# it is a basic item or craft it with its listed command, then try again. A small model
# can follow this by copying from the last observation; with a single worked example
# and no failures, SmolLM2-135M copied the recipe list instead and did worse than a
# uniformly random valid action (bench/results/local_policy.json).
PROMPT = EnvPrompt(
    "You are crafting Minecraft items in a text game. The task lists crafting "
    "commands and a goal. Try to craft the goal with its command. If it fails, the "
    "message says what is missing: 'get N item' if it is a basic item, or craft it "
    "first with its listed command, then try the goal again. Many listed commands are "
    "not needed.",
    (
        Example(
            "Crafting commands:\n"
            "craft 4 end rod using 1 popped chorus fruit, 1 blaze rod\n"
            "craft 1 ender eye using 1 ender pearl, 1 blaze powder\n"
            "craft 1 magma cream using 1 blaze powder, 1 slime ball\n"
            "craft 3 fire charge using 1 gunpowder, 1 blaze powder, 1 coal\n"
            "craft 1 brewing stand using 1 blaze rod, 3 stone crafting materials\n"
            "craft 2 blaze powder using 1 blaze rod\n"
            "\n"
            "Goal: craft ender eye.",
            _steps(
                "craft 1 ender eye using 1 ender pearl, 1 blaze powder",
                "Could not craft ender eye. You need 1 ender pearl but have 0. "
                "You need 1 blaze powder but have 0.",
                "get 1 ender pearl",
                "Got 1 ender pearl",
                "craft 1 ender eye using 1 ender pearl, 1 blaze powder",
                "Could not craft ender eye. You need 1 blaze powder but have 0.",
                "craft 2 blaze powder using 1 blaze rod",
                "Could not craft blaze powder. You need 1 blaze rod but have 0.",
                "get 1 blaze rod",
                "Got 1 blaze rod",
                "craft 2 blaze powder using 1 blaze rod",
                "Crafted 2 blaze powder",
                "craft 1 ender eye using 1 ender pearl, 1 blaze powder",
                "Crafted 1 ender eye",
            ),
        ),
        Example(
            "Crafting commands:\n"
            "craft 1 bread using 3 wheat\n"
            "craft 1 cake using 3 milk bucket, 2 sugar, 3 wheat, 1 egg\n"
            "craft 1 brown dye using 1 cocoa beans\n"
            "craft 1 hay block using 9 wheat\n"
            "craft 8 cookie using 2 wheat, 1 cocoa beans\n"
            "\n"
            "Goal: craft cookie.",
            _steps(
                "craft 8 cookie using 2 wheat, 1 cocoa beans",
                "Could not craft cookie. You need 2 wheat but have 0. "
                "You need 1 cocoa beans but have 0.",
                "get 2 wheat",
                "Got 2 wheat",
                "craft 8 cookie using 2 wheat, 1 cocoa beans",
                "Could not craft cookie. You need 1 cocoa beans but have 0.",
                "get 1 cocoa beans",
                "Got 1 cocoa beans",
                "craft 8 cookie using 2 wheat, 1 cocoa beans",
                "Crafted 8 cookie",
            ),
        ),
    ),
)
