"""AgentGym HTTP protocol: play remote environment servers, or serve ours.

:class:`AgentGymEnv` is a :class:`~agentmc.envs.core.TextEnv` backed by any
AgentGym-style server (``/create``, ``/reset``, ``/step``, ``/observation``,
``/close``); :func:`create_app` / :func:`serve` expose any agentmc environment
over the same protocol (``agentmc serve``). Both need the ``server`` extra
(``pip install 'agentmc[server]'``).

Example:
    >>> from agentmc.envs.agentgym import AgentGymConfig, AgentGymEnv
    >>> env = AgentGymEnv(AgentGymConfig(base_url="http://127.0.0.1:36001"), task_id="0")
    >>> observation, info = env.reset(seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from agentmc.envs.agentgym.client import (
    AgentGymConfig,
    AgentGymEnv,
    AgentGymSnapshot,
    EnvServerError,
    tasks_from_server,
)
from agentmc.envs.agentgym.server import (
    BackgroundServer,
    ServerConfig,
    SessionPool,
    create_app,
    serve,
)

__all__ = [
    "AgentGymConfig",
    "AgentGymEnv",
    "AgentGymSnapshot",
    "BackgroundServer",
    "EnvServerError",
    "ServerConfig",
    "SessionPool",
    "create_app",
    "serve",
    "tasks_from_server",
]
