"""``agentmc serve``: expose an environment over the AgentGym HTTP protocol.

Other frameworks (AgentGym's own clients, anything that speaks ``/create``,
``/reset``, ``/step``) can then play agentmc environments; ``data_idx`` indexes
the task list of ``--split`` (``GET /tasks`` lists it). The server binds
127.0.0.1 unless told otherwise; any other address needs a token, read from
the environment variable named by ``--token-env`` (never from a flag, so it
does not show up in process lists)::

    agentmc serve --env textcraft --port 36001
    AGENTMC_SERVE_TOKEN=... agentmc serve --env textcraft --host 0.0.0.0
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentmc.cli.common import TaskOptions, parse
from agentmc.envs.agentgym.server import ServerConfig, is_loopback
from agentmc.errors import ConfigError


@dataclass(frozen=True)
class Config:
    """Serve an environment over the AgentGym HTTP protocol."""

    env: str = "textcraft"
    """Environment id to serve."""
    split: Literal["train", "validation", "test", "all"] = "all"
    """Tasks that `data_idx` indexes, in order."""
    max_steps: int | None = None
    """Step cap per episode (default: the environment's own)."""
    reward: Literal["sparse", "dense"] = "sparse"
    """Reward: 1 on success only, or shaped progress reward (where supported)."""
    goals_csv: Path | None = None
    """TextCraft: id -> goal table (tab-separated `item<TAB>depth`, row i = task i)."""
    split_csv: Path | None = None
    """TextCraft: file with the ids of --split, one per line (with --goals-csv)."""
    host: str = "127.0.0.1"
    """Address to bind; anything but loopback requires a token."""
    port: int = 36001
    """TCP port."""
    token_env: str = "AGENTMC_SERVE_TOKEN"
    """Environment variable holding the token clients must send (if set)."""
    max_body_bytes: int = 65536
    """Largest request body accepted."""
    idle_timeout_s: float = 600.0
    """Close sessions idle for this long."""
    max_envs: int = 256
    """Most sessions open at once."""


def build(config: Config) -> tuple[Callable, list[str], ServerConfig]:
    """What ``main`` serves: the environment factory, its task ids and the server settings.

    Raises:
        ConfigError: Invalid server settings (e.g. a public host without a token).
        UnknownNameError: Unknown environment id.
    """
    token = os.environ.get(config.token_env) or None
    if not is_loopback(config.host) and not token:
        raise ConfigError(
            f"host {config.host!r} accepts connections from other machines: put a token of at "
            f"least 8 characters in the environment variable {config.token_env} "
            "(see --token-env), or bind 127.0.0.1"
        )
    server = ServerConfig(
        host=config.host,
        port=config.port,
        token=token,
        max_body_bytes=config.max_body_bytes,
        idle_timeout_s=config.idle_timeout_s,
        max_envs=config.max_envs,
    )
    tasks = TaskOptions(
        env=config.env,
        split=config.split,
        max_steps=config.max_steps,
        reward=config.reward,
        goals_csv=config.goals_csv,
        split_csv=config.split_csv,
    )
    return tasks.make, tasks.select(), server


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    from agentmc.envs.agentgym.server import serve

    make_env, task_ids, server = build(config)
    guard = "token required" if server.token else "no token"
    print(
        f"serving {config.env} ({len(task_ids)} {config.split} tasks) on "
        f"http://{server.host}:{server.port} ({guard}); Ctrl-C stops"
    )
    serve(make_env, task_ids, server)
    return 0
