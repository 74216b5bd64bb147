"""``agentmc collect``: the prior policy's trajectories on the training split, for critics.

The first step of "does AMC help my agent?": run the agent you will steer (the
prior) on the **training** tasks, several independent episodes per task, and
record every trajectory. ``agentmc critic train --data DIR`` then fits a value
model on them. Test tasks are refused: they are held out for evaluation, and a
critic that has seen them would make AMC look better than it is.

It is ``agentmc rollout`` with other defaults (``--split train``,
``--samples-per-task 4``) and ``collect`` recorded as the command, so it is
resumable the same way: run the same command again after an interruption and
only the missing (task, sample) pairs run. Episodes of synthetic stand-in
policies (``noisy-expert``) are labelled synthetic in the records and in every
critic trained on them.

Example::

    agentmc collect --out runs/prior --policy noisy-expert --n-tasks 100
    agentmc critic train --data runs/prior --backend hashed --out critics/textcraft
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentmc.cli import rollout
from agentmc.cli.common import TaskOptions, parse
from agentmc.errors import ConfigError


def _train_tasks() -> TaskOptions:
    return TaskOptions(split="train")


@dataclass(frozen=True)
class Config(rollout.Config):
    """Collect prior trajectories on the training split (critic training data)."""

    tasks: TaskOptions = field(default_factory=_train_tasks)
    samples_per_task: int = 4
    """Independent episodes per task (critics learn from the spread of outcomes)."""


def held_out_tasks(tasks: TaskOptions, selected: list[str]) -> list[str]:
    """The ids in ``selected`` that belong to the environment's test split."""
    from agentmc.envs import task_ids

    test = set(task_ids(tasks.env, "test", **tasks.env_kwargs()))
    return [task for task in selected if task in test]


def main(name: str, argv: list[str]) -> int:
    config = parse(Config, name, argv)
    if config.tasks.split in ("test", "all") and not config.tasks.task_ids:
        raise ConfigError(
            f"--split {config.tasks.split} includes the test tasks, which are held out for "
            "evaluation; collect on --split train (or validation)"
        )
    if config.tasks.task_ids:
        leaked = held_out_tasks(config.tasks, config.tasks.select())
        if leaked:
            raise ConfigError(
                f"--task-ids {', '.join(leaked[:5])}{' ...' if len(leaked) > 5 else ''} "
                "are test tasks, held out for evaluation; collect on training tasks"
            )
    return rollout.run(config, command="collect")
