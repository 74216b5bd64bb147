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

A registration may also bring what the environment knows about itself
(:mod:`agentmc.envs.knowledge`): the prompt models see (:class:`EnvPrompt`),
what "the same state" is for G2PO (:class:`StateSpace`) and a scripted
expert (returning an :class:`ExpertPlan`). Policies and learners look them up
with :func:`knowledge` by environment id, so they never import an environment.
"""

from __future__ import annotations

from agentmc.envs.checker import EnvCheckError, check_env
from agentmc.envs.core import StepResult, TextEnv, valid_actions
from agentmc.envs.knowledge import EnvPrompt, Example, ExpertPlan, StateSpace
from agentmc.envs.registry import env_ids, knowledge, make, register, task_ids

__all__ = [
    "EnvCheckError",
    "EnvPrompt",
    "Example",
    "ExpertPlan",
    "StateSpace",
    "StepResult",
    "TextEnv",
    "check_env",
    "env_ids",
    "knowledge",
    "make",
    "register",
    "task_ids",
    "valid_actions",
]
