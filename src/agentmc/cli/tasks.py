"""``agentmc tasks``: list an environment's tasks per split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agentmc.cli.common import TaskOptions, parse


@dataclass(frozen=True)
class Config:
    """List an environment's tasks per split."""

    tasks: TaskOptions = TaskOptions()
    """Which environment and tasks."""
    show: Literal["counts", "ids", "text"] = "counts"
    """Print split sizes, the task ids of the chosen split, or their full task texts."""


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    from agentmc.envs import task_ids

    options = config.tasks
    if config.show == "counts":
        for split in ("train", "validation", "test"):
            ids = task_ids(options.env, split, **options.env_kwargs())
            more = ", ..." if len(ids) > 5 else ""
            print(f"{split:<10} {len(ids):>5} tasks  ({', '.join(ids[:5])}{more})")
        return 0
    for task_id in options.select():
        if config.show == "ids":
            print(task_id)
        else:
            env = options.make(task_id)
            text, _ = env.reset(seed=0)
            print(f"## {options.env} task {task_id}\n{text}\n")
    return 0
