"""Multi-turn text environments: the protocol, the registry, the checker.

An environment is one task instance with Gymnasium's ``reset``/``step`` plus
``snapshot``/``restore`` for forking (see :mod:`agentmc.envs.core`). Create
one by name and task id, list task ids per split, and check a new environment
against the contract:

Example:
    >>> from agentmc.envs import check_env, make, task_ids
    >>> test_ids = task_ids("textcraft", "test")
    >>> env = make("textcraft", task_id=test_ids[0], reward="dense")
    >>> task, info = env.reset(seed=0)
    >>> result = env.step("inventory")
    >>> result.observation
    'Inventory: You are not carrying anything.'
    >>> check_env(env)

Built in: ``textcraft`` (:mod:`agentmc.envs.textcraft`) and the toy
``guess-number`` (:mod:`agentmc.envs.toy`).
"""

from __future__ import annotations

from agentmc.envs.checker import EnvCheckError, check_env
from agentmc.envs.core import StepResult, TextEnv, valid_actions
from agentmc.envs.registry import env_ids, make, register, task_ids

__all__ = [
    "EnvCheckError",
    "StepResult",
    "TextEnv",
    "check_env",
    "env_ids",
    "make",
    "register",
    "task_ids",
    "valid_actions",
]
