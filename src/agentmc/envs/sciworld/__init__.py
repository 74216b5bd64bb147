"""ScienceWorld (extra ``agentmc[sciworld]``, needs Java): science tasks in a text world.

Task ids follow AgentGym's numbering (:mod:`agentmc.envs.sciworld.tasks`);
snapshots are move histories replayed on pooled simulators
(:mod:`agentmc.envs.sciworld.simulator`); the game itself is in
:mod:`agentmc.envs.sciworld.env`. Importing this package starts no JVM.

Example:
    >>> from agentmc.envs import make, task_ids
    >>> len(task_ids("sciworld", "test"))
    1171
    >>> env = make("sciworld", task_id="0", max_steps=30)   # doctest: +SKIP
"""

from __future__ import annotations

from agentmc.envs.sciworld.env import SciWorldConfig, SciWorldEnv, SciWorldState, make_sciworld
from agentmc.envs.sciworld.simulator import (
    History,
    Move,
    ReplayError,
    Simulator,
    SimulatorPool,
    check_java,
    default_pool,
)
from agentmc.envs.sciworld.tasks import TASK_TYPES, SciWorldTasks, TaskType, list_task_ids

__all__ = [
    "TASK_TYPES",
    "History",
    "Move",
    "ReplayError",
    "SciWorldConfig",
    "SciWorldEnv",
    "SciWorldState",
    "SciWorldTasks",
    "Simulator",
    "SimulatorPool",
    "TaskType",
    "check_java",
    "default_pool",
    "list_task_ids",
    "make_sciworld",
]
